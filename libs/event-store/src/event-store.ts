import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { EventEnvelope, EventMetadata } from '@threadline/contracts';
import { DomainError } from '@threadline/platform';
import { appendPrepared, appendPreparedMany, AppendBatcher, prepareAppend } from './append';
import type { Db, Sql, TransactionOptions } from './db';
import { EVENT_COLUMNS, toEnvelope } from './stored-event';

export { EVENT_COLUMNS, toEnvelope } from './stored-event';

/**
 * What `append` checks before writing (ARCHITECTURE rule 4):
 * a number is the exact current version (0 = the stream has no events yet),
 * `no_stream` the stream must not exist, `stream_exists` it must exist, `any` no check.
 */
export type ExpectedVersion = number | 'no_stream' | 'stream_exists' | 'any';

/** An event to append: its versioned type name (`SessionCreated.v1`) and its data. */
export interface NewEvent {
  type: string;
  data: unknown;
}

export interface AppendOptions {
  /** Stored in each event's metadata; `tenantId` is also a column. */
  metadata: EventMetadata;
  /**
   * Called inside the append's transaction with the stored events, to update the caller's inline
   * read model atomically with the append.
   */
  inline?: (tx: Sql, events: EventEnvelope[]) => Promise<void>;
}

export interface AppendResult {
  /** The stream's version after the append (= stream position of its last event). */
  nextExpectedVersion: number;
  /** Global position of the last appended event. */
  lastGlobalPosition: number;
  events: EventEnvelope[];
}

/** One append of {@link EventStoreTransaction.appendMany}: the arguments of `append`, without `inline`. */
export interface ManyAppend {
  streamId: string;
  streamType: string;
  expected: ExpectedVersion;
  events: readonly NewEvent[];
  opts: Omit<AppendOptions, 'inline'>;
}

/** A request's claim of an idempotency key (see {@link EventStoreTransaction.claimIdempotencyKey}). */
export interface IdempotencyClaim {
  tenantId: string;
  key: string;
  /** What the key is bound to (compared by SHA-256 of its JSON). */
  request: unknown;
}

/** Position in commit order, the checkpoint of every tail of the event store (relay, rebuilds). */
export interface CommitPosition {
  transactionId: string;
  globalPosition: number;
}
export const START: CommitPosition = { transactionId: '0', globalPosition: 0 };

/** The same idempotency key came with a different request (Stripe's rule): HTTP 422. */
export class IdempotencyKeyReusedError extends DomainError {
  constructor(key: string) {
    super('REQUEST.INVALID', `Idempotency key ${key} was already used for a different request`, {
      idempotencyKey: key,
    });
  }
}

/** What {@link EventStoreTransaction.readStream} reads of a stream. */
export interface ReadStreamOptions {
  /** First stream position wanted (default 1). */
  from?: number;
  /** Last stream position wanted, inclusive (default the last). */
  to?: number;
  /** At most this many events (default all). */
  limit?: number;
  direction?: 'forward' | 'backward';
  /**
   * Only events of this tenant: a stream of another tenant reads as empty (as if it did not exist).
   * Stream ids are `<type>:<tenant>:<id>`, and a tenant id made before tenant ids were refused a `:`
   * could make one tenant's stream id another's (tenant `a` + session `b:c`, tenant `a:b` + session
   * `c`): every read for a tenant passes its tenant. (Appends to another tenant's stream are refused.)
   */
  tenantId?: string;
}

/**
 * The operations of one event-store transaction. Obtained from {@link EventStore.transaction};
 * everything done through it commits or rolls back together.
 */
export class EventStoreTransaction {
  constructor(readonly sql: Sql) {}

  /**
   * Reads one stream, oldest first (see {@link ReadStreamOptions}).
   */
  async readStream(streamId: string, opts: ReadStreamOptions = {}): Promise<EventEnvelope[]> {
    return readStreamWith(this.sql, streamId, opts);
  }

  /**
   * Appends `events` to `streamId` if its version matches `expected`; throws
   * {@link StreamVersionConflictError} (code `STREAM.VERSION_CONFLICT`) otherwise. When the metadata
   * carries an idempotency key, event ids are derived from it (a retry yields the same event_ids).
   */
  async append(
    streamId: string,
    streamType: string,
    expected: ExpectedVersion,
    events: readonly NewEvent[],
    opts: AppendOptions,
  ): Promise<AppendResult> {
    const stored = await appendPrepared(
      this.sql,
      prepareAppend(streamId, streamType, expected, events, opts),
    );
    if (opts.inline) await opts.inline(this.sql, stored.events);
    return stored;
  }

  /**
   * Appends to DISTINCT streams in ONE statement (the multi-stream statement of the `AppendBatcher`),
   * each with its own expected version. Returns, in order, each append's result, or null when its
   * stream's version did not match (that append wrote nothing; the others are written, and the caller
   * decides what the conflict means). No inline projection: the caller projects the results, in the
   * same transaction. Throws what the statement throws; the transaction is then unusable.
   */
  async appendMany(appends: readonly ManyAppend[]): Promise<(AppendResult | null)[]> {
    return appendPreparedMany(
      this.sql,
      appends.map((a) => prepareAppend(a.streamId, a.streamType, a.expected, a.events, a.opts)),
    );
  }

  /**
   * Claims an idempotency key for this transaction. Returns `{ replay }` with the first request's
   * stored reply when the key was used before (a concurrent first request is waited for), or `null`
   * when this request is the first. Throws {@link IdempotencyKeyReusedError} when the key was used
   * for a different request (compared by SHA-256 of `request`).
   */
  async claimIdempotencyKey(
    tenantId: string,
    key: string,
    request: unknown,
  ): Promise<{ replay: unknown } | null> {
    const hash = requestHash(request);
    const inserted = await this.sql.query(
      `INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING RETURNING 1`,
      [tenantId, key, hash],
    );
    if (inserted.length > 0) return null;
    const [row] = await this.sql.query<{ request_hash: string; reply: unknown }>(
      'SELECT request_hash, reply FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2',
      [tenantId, key],
    );
    if (!row) return null;
    if (row.request_hash !== hash) throw new IdempotencyKeyReusedError(key);
    return { replay: row.reply };
  }

  /**
   * {@link claimIdempotencyKey} for several keys (distinct `(tenantId, key)`) in two statements at most:
   * one claims every key (in `(tenantId, key)` order, the order any other batch claims them in, so two
   * batches waiting on each other's first requests cannot deadlock), one reads the keys already used.
   * Returns, in order, `null` (claimed: this request is the first), `{ replay }` (the first request's
   * stored reply) or an {@link IdempotencyKeyReusedError} (the key was used for a different request).
   */
  async claimIdempotencyKeys(
    claims: readonly IdempotencyClaim[],
  ): Promise<({ replay: unknown } | null | IdempotencyKeyReusedError)[]> {
    const hashes = claims.map((c) => requestHash(c.request));
    const order = claims.map((_, i) => i).sort((a, b) => compareKeys(claims[a]!, claims[b]!));
    const inserted = KeyRow.array().parse(
      await this.sql.query(
        `INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
         ON CONFLICT DO NOTHING RETURNING tenant_id, idempotency_key`,
        [
          order.map((i) => claims[i]!.tenantId),
          order.map((i) => claims[i]!.key),
          order.map((i) => hashes[i]!),
        ],
      ),
    );
    const claimed = new Set(inserted.map((r) => keyOf(r.tenant_id, r.idempotency_key)));
    const used = claims.filter((c) => !claimed.has(keyOf(c.tenantId, c.key)));
    const stored = new Map<string, z.infer<typeof UsedKeyRow>>();
    if (used.length > 0) {
      const rows = UsedKeyRow.array().parse(
        await this.sql.query(
          `SELECT tenant_id, idempotency_key, request_hash, reply FROM idempotency_keys
           WHERE (tenant_id, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
          [used.map((c) => c.tenantId), used.map((c) => c.key)],
        ),
      );
      for (const row of rows) stored.set(keyOf(row.tenant_id, row.idempotency_key), row);
    }
    return claims.map((c, i) => {
      const row = claimed.has(keyOf(c.tenantId, c.key)) ? undefined : stored.get(keyOf(c.tenantId, c.key));
      if (!row) return null;
      if (row.request_hash !== hashes[i]) return new IdempotencyKeyReusedError(c.key);
      return { replay: row.reply };
    });
  }

  /**
   * Ends the claims of {@link claimIdempotencyKeys} in ONE statement: `saves` store the replies of the
   * requests that claimed their keys, for their retries; `releases` give keys back (their request was
   * refused or will run again on its own), as a rollback of the claim would.
   */
  async settleIdempotencyKeys(
    saves: readonly { tenantId: string; key: string; reply: unknown }[],
    releases: readonly { tenantId: string; key: string }[],
  ): Promise<void> {
    await this.sql.query(
      `WITH saved AS (
         UPDATE idempotency_keys k SET reply = s.reply::jsonb
         FROM unnest($1::text[], $2::text[], $3::text[]) AS s(tenant_id, idempotency_key, reply)
         WHERE k.tenant_id = s.tenant_id AND k.idempotency_key = s.idempotency_key
       )
       DELETE FROM idempotency_keys k USING unnest($4::text[], $5::text[]) AS r(tenant_id, idempotency_key)
       WHERE k.tenant_id = r.tenant_id AND k.idempotency_key = r.idempotency_key`,
      [
        saves.map((s) => s.tenantId),
        saves.map((s) => s.key),
        saves.map((s) => JSON.stringify(s.reply)),
        releases.map((r) => r.tenantId),
        releases.map((r) => r.key),
      ],
    );
  }

  /** Stores the reply of the request that claimed `key`, for its retries. */
  async saveIdempotentReply(tenantId: string, key: string, reply: unknown): Promise<void> {
    await this.sql.query(
      'UPDATE idempotency_keys SET reply = $3 WHERE tenant_id = $1 AND idempotency_key = $2',
      [tenantId, key, JSON.stringify(reply)],
    );
  }

  /** Serializes this transaction with every other one taking the same `key` (released at commit). */
  async lock(key: string): Promise<void> {
    await this.sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
  }
}

/** What an idempotency key is bound to: SHA-256 (hex) of the request's JSON. */
const requestHash = (request: unknown) => createHash('sha256').update(JSON.stringify(request)).digest('hex');
const KeyRow = z.object({ tenant_id: z.string(), idempotency_key: z.string() });
const UsedKeyRow = KeyRow.extend({ request_hash: z.string(), reply: z.unknown() });
const keyOf = (tenantId: string, key: string) => `${tenantId}\u0000${key}`;
const compareKeys = (a: IdempotencyClaim, b: IdempotencyClaim) =>
  a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;

async function readStreamWith(sql: Sql, streamId: string, opts: ReadStreamOptions): Promise<EventEnvelope[]> {
  const backward = opts.direction === 'backward';
  const rows = await sql.query(
    `SELECT ${EVENT_COLUMNS} FROM events
     WHERE stream_id = $1 AND stream_position >= $2 AND stream_position <= $3
       AND ($5::text IS NULL OR tenant_id = $5)
     ORDER BY stream_position ${backward ? 'DESC' : 'ASC'} LIMIT $4`,
    [streamId, opts.from ?? 1, opts.to ?? Number.MAX_SAFE_INTEGER, opts.limit ?? null, opts.tenantId ?? null],
  );
  return rows.map(toEnvelope);
}

/**
 * The Postgres event store: append with optimistic concurrency, read a stream, and tail all
 * events in commit-safe order. Errors: {@link StreamVersionConflictError}, {@link IdempotencyKeyReusedError}.
 */
export class EventStore {
  private readonly batcher: AppendBatcher;

  constructor(readonly db: Db) {
    this.batcher = new AppendBatcher(db);
  }

  /** Runs `fn` in one transaction (READ COMMITTED unless `opts` say otherwise); see {@link EventStoreTransaction}. */
  transaction<T>(fn: (tx: EventStoreTransaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    return this.db.transaction((sql) => fn(new EventStoreTransaction(sql)), opts);
  }

  /**
   * Appends atomically on its own; see {@link EventStoreTransaction.append}. Without `inline`, one
   * statement, group-committed with appends made at the same time, or alone from
   * {@link AppendBatcher.aloneFrom} events (see {@link AppendBatcher}); with `inline`, a transaction
   * around the append and the inline projection.
   */
  async append(
    streamId: string,
    streamType: string,
    expected: ExpectedVersion,
    events: readonly NewEvent[],
    opts: AppendOptions,
  ): Promise<AppendResult> {
    // One statement is atomic on its own; an inline projection needs the transaction around both.
    if (!opts.inline) return this.batcher.append(prepareAppend(streamId, streamType, expected, events, opts));
    return this.transaction((tx) => tx.append(streamId, streamType, expected, events, opts));
  }

  readStream(streamId: string, opts: ReadStreamOptions = {}): Promise<EventEnvelope[]> {
    return readStreamWith(this.db, streamId, opts);
  }

  /**
   * Up to `batch` events after `after`, in commit order: only transactions older than every
   * transaction still running (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`), ordered
   * by `(transaction_id, global_position)`. A slow transaction delays the tail, never makes it skip
   * an event (ARCHITECTURE rule 3; the method of Emmett's PostgreSQL store).
   */
  async readAll(after: CommitPosition, batch: number, sql: Sql = this.db): Promise<EventEnvelope[]> {
    const rows = await sql.query(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY events.transaction_id, events.global_position
       LIMIT $3`,
      [after.transactionId, after.globalPosition, batch],
    );
    return rows.map(toEnvelope);
  }

  /** The highest global position in the store (0 when empty), committed or not yet visible to tails. */
  async headPosition(): Promise<number> {
    const [row] = await this.db.query<{ head: string | null }>(
      'SELECT max(global_position) AS head FROM events',
    );
    return Number(row?.head ?? 0);
  }
}

/** Reads and writes named checkpoints (relay, projections) as commit positions. */
export class Checkpoints {
  constructor(private readonly sql: Sql) {}

  async load(name: string, sql: Sql = this.sql): Promise<CommitPosition> {
    const [row] = await sql.query<{ transaction_id: string; global_position: string }>(
      'SELECT transaction_id::text AS transaction_id, global_position FROM checkpoints WHERE name = $1',
      [name],
    );
    return row ? { transactionId: row.transaction_id, globalPosition: Number(row.global_position) } : START;
  }

  async save(name: string, position: CommitPosition, sql: Sql = this.sql): Promise<void> {
    await sql.query(
      `INSERT INTO checkpoints (name, transaction_id, global_position, updated_at) VALUES ($1, $2::xid8, $3, now())
       ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
         global_position = EXCLUDED.global_position, updated_at = now()`,
      [name, position.transactionId, position.globalPosition],
    );
  }
}
