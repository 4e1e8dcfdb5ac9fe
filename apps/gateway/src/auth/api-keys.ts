import { createHash, hash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { TenantId } from '@threadline/contracts';
import type { Db, Sql } from '@threadline/event-store';
import { KEY_ROLES, type KeyRole } from './caller';

/** Every API key starts with this, so a leaked key is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = 'tlk_';
/** Random bytes in a key: 256 bits, so guessing one is hopeless and a fast hash is enough. */
const KEY_BYTES = 32;

/** An API key as written: `tlk_` + 43 base64url characters. */
export const ApiKeyText = z.string().regex(/^tlk_[A-Za-z0-9_-]{43}$/);

/** Key ids: `key_` + 12 hex characters (public: shown in listings, used to revoke). */
export const KeyId = z.string().regex(/^key_[0-9a-f]{12}$/, 'a key id looks like key_0123456789ab');

export const KeyRoleSchema = z.enum(KEY_ROLES);

/** What `create` takes: tenant, role, a free-text name, and an optional per-window rate limit. */
export const NewApiKey = z.strictObject({
  tenantId: TenantId,
  role: KeyRoleSchema,
  name: z.string().max(200).default(''),
  rateLimit: z.number().int().min(1).max(10_000_000).optional(),
});
export type NewApiKey = z.input<typeof NewApiKey>;

/** A stored key, without its hash. Dates are ISO-8601. */
export const ApiKeyRecord = z.object({
  key_id: KeyId,
  tenant_id: z.string(),
  role: KeyRoleSchema,
  name: z.string(),
  rate_limit: z.number().int().nullable(),
  created_at: z.coerce.date().transform((d) => d.toISOString()),
  revoked_at: z.coerce
    .date()
    .nullable()
    .transform((d) => d?.toISOString() ?? null),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecord>;

/** A new key: its record and the key itself, which exists only here (shown once, never stored). */
export interface CreatedApiKey {
  key: string;
  record: ApiKeyRecord;
}

/**
 * SHA-256 (hex) of an API key: what is stored and looked up. A fast hash is right here, unlike for
 * passwords: a key carries 256 random bits, so there is no dictionary to try and no brute force
 * that a slow hash (bcrypt, argon2) would slow down further; the fast hash keeps the per-request
 * lookup one indexed equality match, and a stolen table still yields no usable key.
 */
export const hashApiKey = (key: string): string =>
  // `crypto.hash` (Node >= 20.12) is the one-shot digest: ~4x cheaper than `createHash` per call.
  typeof hash === 'function'
    ? hash('sha256', key, 'hex')
    : createHash('sha256').update(key, 'utf8').digest('hex');

/** A fresh random key (`tlk_` + base64url of 32 bytes from the OS CSPRNG) and a fresh key id. */
export function generateApiKey(): { key: string; keyId: string } {
  return {
    key: API_KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64url'),
    keyId: `key_${randomBytes(6).toString('hex')}`,
  };
}

const COLUMNS = 'key_id, tenant_id, role, name, rate_limit, created_at, revoked_at';

/** The active key a request presented: who it is and its rate limit (null: the default). */
export interface ActiveKey {
  keyId: string;
  tenantId: string;
  role: KeyRole;
  rateLimit: number | null;
}

const ActiveKeyRow = z.object({
  key_id: z.string(),
  tenant_id: z.string(),
  role: KeyRoleSchema,
  rate_limit: z.number().int().nullable(),
});

// Any fixed 64-bit key: serializes "create the first admin key" across concurrent starts.
const BOOTSTRAP_LOCK_KEY = 7_345_201_777;

/**
 * The `api_keys` table (gateway migration `GatewayAuth1732700000000`). All SQL is parameterized.
 * Errors: whatever Postgres throws (unreachable, missing table: run `main.js migrate`).
 */
export class ApiKeyStore {
  constructor(private readonly db: Db) {}

  /** Creates a key; the returned `key` is the only copy there will ever be. */
  async create(input: NewApiKey, sql: Sql = this.db): Promise<CreatedApiKey> {
    const data = NewApiKey.parse(input);
    const { key, keyId } = generateApiKey();
    const [row] = await sql.query(
      `INSERT INTO api_keys (key_id, tenant_id, role, name, key_hash, rate_limit)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [keyId, data.tenantId, data.role, data.name, hashApiKey(key), data.rateLimit ?? null],
    );
    return { key, record: ApiKeyRecord.parse(row) };
  }

  /** Every key (of `tenantId` when given), oldest first, revoked ones included. */
  async list(tenantId?: string): Promise<ApiKeyRecord[]> {
    const rows = await this.db.query(
      `SELECT ${COLUMNS} FROM api_keys WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY created_at, key_id`,
      [tenantId ?? null],
    );
    return rows.map((row) => ApiKeyRecord.parse(row));
  }

  /**
   * Revokes a key: it (and every user token it minted) answers 401 from the next request on, at most
   * `AUTH_KEY_CACHE_MS` later on a gateway that used it recently (gateways cache active keys).
   * Returns the record, or null when there is no such key. Revoking a revoked key changes nothing.
   */
  async revoke(keyId: string): Promise<ApiKeyRecord | null> {
    const [row] = await this.db.query(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE key_id = $1 RETURNING ${COLUMNS}`,
      [keyId],
    );
    return row ? ApiKeyRecord.parse(row) : null;
  }

  /** The active (not revoked) key whose hash is `hashApiKey(key)`, or null. */
  async findActive(key: string): Promise<ActiveKey | null> {
    return this.findActiveByHash(hashApiKey(key));
  }

  /** The active (not revoked) key whose `hashApiKey` is `keyHash`, or null. */
  async findActiveByHash(keyHash: string): Promise<ActiveKey | null> {
    const [row] = await this.db.query(
      `SELECT key_id, tenant_id, role, rate_limit FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
      [keyHash],
    );
    return row ? toActive(ActiveKeyRow.parse(row)) : null;
  }

  /** The active key `keyId` (the minter of a user token), or null when unknown or revoked. */
  async findActiveById(keyId: string): Promise<ActiveKey | null> {
    const [row] = await this.db.query(
      `SELECT key_id, tenant_id, role, rate_limit FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL`,
      [keyId],
    );
    return row ? toActive(ActiveKeyRow.parse(row)) : null;
  }

  /**
   * `npm start` on an empty database: creates an admin key of `tenantId` when the database has no
   * key at all (revoked ones count), and returns it; null when keys exist. Safe when several
   * processes run it at once (a transaction-scoped advisory lock serializes them).
   */
  async bootstrap(tenantId: string): Promise<CreatedApiKey | null> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK_KEY]);
      const [any] = await tx.query('SELECT 1 FROM api_keys LIMIT 1');
      if (any) return null;
      return this.create({ tenantId, role: 'admin', name: 'first admin key (npm start)' }, tx);
    });
  }
}

const toActive = (row: z.infer<typeof ActiveKeyRow>): ActiveKey => ({
  keyId: row.key_id,
  tenantId: row.tenant_id,
  role: row.role,
  rateLimit: row.rate_limit,
});
