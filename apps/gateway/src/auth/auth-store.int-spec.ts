import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { Db, type Sql } from '@threadline/event-store';
import { createTestDatabase, expectDomainError, type TestDatabase } from '@threadline/testing';
import { ApiKeyStore } from './api-keys';
import { AuthConfig } from './auth.config';
import { Authenticator } from './authenticator';
import { runKeysCli } from './keys-command';
import { gatewayMigrations } from './migrations';
import { RateLimiter } from './rate-limiter';
import { resolveTokenSecret, UserTokens } from './user-tokens';

let database: TestDatabase;
let second: Db;

beforeAll(async () => {
  database = await createTestDatabase(gatewayMigrations, 4);
  // A second pool stands for a second gateway instance on the same database.
  second = await Db.connect({ url: database.url, poolSize: 2 });
});

afterAll(async () => {
  await second?.close();
  await database?.drop();
});

describe('ApiKeyStore', () => {
  it('keeps no character of the secret in any column, nor in `keys list`', async () => {
    const keys = new ApiKeyStore(database.db);
    const created = await keys.create({ tenantId: 'acme', role: 'service', name: 'listed' });
    const secret = created.key.slice('tlk_'.length, 'tlk_'.length + 6);
    const rows = await database.db.query<Record<string, unknown>>(
      'SELECT * FROM api_keys WHERE key_id = $1',
      [created.record.key_id],
    );
    const stored = Object.entries(rows[0] ?? {}).filter(([column]) => column !== 'key_hash');
    expect(stored.length).toBeGreaterThan(0);
    expect(JSON.stringify(stored)).not.toContain(secret);
    const out = new PassThrough();
    let printed = '';
    out.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    expect(
      await runKeysCli(['list', '--tenant', 'acme'], {
        databaseUrl: database.url,
        defaultTenant: 'acme',
        stdout: out,
      }),
    ).toBe(0);
    expect(printed).toContain(created.record.key_id);
    expect(printed).not.toContain(secret);
  });

  it('finds an active key by the key itself, and nothing once revoked', async () => {
    const keys = new ApiKeyStore(database.db);
    const created = await keys.create({ tenantId: 'acme', role: 'service', name: 'backend', rateLimit: 7 });
    expect(await keys.findActive(created.key)).toEqual({
      keyId: created.record.key_id,
      tenantId: 'acme',
      role: 'service',
      rateLimit: 7,
    });
    const [row] = await database.db.query<{ key_hash: string }>(
      'SELECT key_hash FROM api_keys WHERE key_id = $1',
      [created.record.key_id],
    );
    expect(row?.key_hash).not.toContain(created.key);
    // Change the last character (to another one: a key may already end in 'A').
    const tampered = `${created.key.slice(0, -1)}${created.key.endsWith('A') ? 'B' : 'A'}`;
    expect(await keys.findActive(tampered)).toBeNull();

    const revoked = await keys.revoke(created.record.key_id);
    expect(revoked?.revoked_at).not.toBeNull();
    expect(await keys.findActive(created.key)).toBeNull();
    expect(await keys.findActiveById(created.record.key_id)).toBeNull();
    expect(await keys.revoke('key_000000000000')).toBeNull();
  });

  it('bootstrap makes one admin key on an empty table, even when run concurrently', async () => {
    await database.db.query('DELETE FROM api_keys');
    const stores = [new ApiKeyStore(database.db), new ApiKeyStore(second)];
    const results = await Promise.all([0, 1, 2, 3].map((i) => stores[i % 2]!.bootstrap('acme')));
    const made = results.filter((r) => r !== null);
    expect(made).toHaveLength(1);
    expect(made[0]?.record).toMatchObject({ role: 'admin', tenant_id: 'acme' });
    expect(await new ApiKeyStore(database.db).bootstrap('acme')).toBeNull();
  });
});

describe('RateLimiter', () => {
  // syncIntervalMs 0: the tests sync by hand, so what each instance knows when is deterministic.
  const limiter = (sql: Sql, windowSeconds = 3600, now?: () => number) =>
    new RateLimiter(sql, windowSeconds, { syncIntervalMs: 0, ...(now ? { now } : {}) });
  const countOf = async (bucket: string): Promise<number | undefined> => {
    const [row] = await database.db.query<{ count: number }>(
      'SELECT count FROM rate_limit_windows WHERE bucket = $1',
      [bucket],
    );
    return row?.count;
  };

  it('one instance enforces the limit exactly, concurrent requests included; refused ones count too', async () => {
    const a = limiter(database.db);
    const decisions = await Promise.all(Array.from({ length: 20 }, () => a.consume('user:acme:race', 10)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    expect(decisions.map((d) => d.remaining).sort((x, y) => y - x)).toEqual([
      9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    const refused = decisions.find((d) => !d.allowed)!;
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(3600);
    // The bucket's first request was counted in the database at once, the other 19 at the sync.
    expect(await countOf('user:acme:race')).toBe(1);
    await a.sync();
    expect(await countOf('user:acme:race')).toBe(20);
    // Another bucket is not affected.
    expect((await a.consume('key:other', 4)).allowed).toBe(true);
    await a.close();
  });

  it('instances share the count through the database, each learning the others at its next sync', async () => {
    const a = limiter(database.db);
    const b = limiter(second);
    const allowed = async (l: RateLimiter, n: number) => {
      const out: boolean[] = [];
      for (let i = 0; i < n; i += 1) out.push((await l.consume('key:shared', 6)).allowed);
      return out;
    };
    expect(await allowed(a, 3)).toEqual([true, true, true]);
    await a.sync();
    // b's first request reads the shared count (a's 3), so b refuses past the 6th of both.
    expect(await allowed(b, 4)).toEqual([true, true, true, false]);
    await b.sync();
    // a has not synced since: it still sees 3 of its own (the documented tolerance) ...
    expect(await allowed(a, 1)).toEqual([true]);
    // ... and refuses once it has learned b's.
    await a.sync();
    expect(await allowed(a, 1)).toEqual([false]);
    await Promise.all([a.close(), b.close()]);
    expect(await countOf('key:shared')).toBe(9);
  });

  it('a restarted instance goes on with the count of the window', async () => {
    const before = limiter(database.db);
    for (let i = 0; i < 3; i += 1) await before.consume('key:restart', 3);
    await before.close(); // the shutdown sync
    const after = limiter(database.db);
    expect(await after.consume('key:restart', 3)).toMatchObject({ allowed: false, remaining: 0 });
    await after.close();
  });

  it('starts a new window after the old one, in the database and in memory', async () => {
    await database.db.query(
      `INSERT INTO rate_limit_windows (bucket, window_start, count) VALUES ('key:old', now() - interval '2 hours', 99)`,
    );
    let clock = Date.now();
    const l = limiter(database.db, 60, () => clock);
    expect(await l.consume('key:old', 5)).toMatchObject({ allowed: true, remaining: 4 });
    for (let i = 0; i < 4; i += 1) await l.consume('key:old', 5);
    expect(await l.consume('key:old', 5)).toMatchObject({ allowed: false, remaining: 0 });
    clock += 60_000;
    expect(await l.consume('key:old', 5)).toMatchObject({ allowed: true, remaining: 4 });
    await l.sync();
    expect(await countOf('key:old')).toBe(1);
    await l.close();
  });

  it('a failed sync keeps its requests for the next one', async () => {
    let failNext = false;
    const flaky: Sql = {
      query: (text, params) => {
        if (!failNext) return database.db.query(text, params);
        failNext = false;
        return Promise.reject(new Error('connection lost'));
      },
    };
    const l = limiter(flaky);
    for (let i = 0; i < 5; i += 1) await l.consume('key:flaky', 100);
    failNext = true;
    await l.sync();
    expect(await countOf('key:flaky')).toBe(1);
    await l.sync();
    expect(await countOf('key:flaky')).toBe(5);
    await l.close();
  });
});

describe('Authenticator', () => {
  const config = (cacheMs: number) =>
    AuthConfig.parse({ AUTH_KEY_CACHE_MS: String(cacheMs), RATE_LIMIT_KEY_REQUESTS: '1000' });
  /** Fastify's reply, as far as the Authenticator uses it: the headers it sets. */
  const replyStub = () => {
    const headers: Record<string, string> = {};
    const reply = {
      headers,
      header(name: string, value: string) {
        headers[name] = value;
        return reply;
      },
    };
    return reply;
  };
  let clock = Date.now();
  const authenticatorOf = async (cacheMs: number) => {
    const tokens = new UserTokens(await resolveTokenSecret(undefined, database.db));
    const limiter = new RateLimiter(database.db, 3600, { syncIntervalMs: 0 });
    limiters.push(limiter);
    const backend = { keys: new ApiKeyStore(database.db), tokens, limiter, now: () => clock };
    return { tokens, auth: new Authenticator({ ...config(cacheMs), DEFAULT_TENANT_ID: 'default' }, backend) };
  };
  const limiters: RateLimiter[] = [];
  afterAll(async () => Promise.all(limiters.map((l) => l.close())));
  const authenticate = (auth: Authenticator, credential: string, reply = replyStub()) =>
    auth.authenticate(`Bearer ${credential}`, reply as unknown as FastifyReply);

  it('a revoked key, and the user tokens it minted, work on from the cache for at most AUTH_KEY_CACHE_MS', async () => {
    const { auth, tokens } = await authenticatorOf(5000);
    const created = await new ApiKeyStore(database.db).create({ tenantId: 'acme', role: 'service' });
    const keyId = created.record.key_id;
    const { token } = await tokens.sign({ tenantId: 'acme', userId: 'alice', keyId, ttlSeconds: 3600 });
    expect(await authenticate(auth, created.key)).toEqual({ tenantId: 'acme', role: 'service', keyId });
    expect(await authenticate(auth, token)).toMatchObject({ role: 'user', userId: 'alice', keyId });

    // Revoked elsewhere (the keys CLI, another pool).
    await new ApiKeyStore(second).revoke(keyId);
    clock += 4999;
    expect(await authenticate(auth, created.key)).toMatchObject({ keyId });
    expect(await authenticate(auth, token)).toMatchObject({ keyId });
    clock += 1;
    const reply = replyStub();
    await expectDomainError(authenticate(auth, created.key, reply), 'REQUEST.UNAUTHORIZED');
    expect(reply.headers['www-authenticate']).toMatch(/^Bearer/);
    await expectDomainError(authenticate(auth, token), 'REQUEST.UNAUTHORIZED');
  });

  it('with AUTH_KEY_CACHE_MS=0 a revoked key is 401 from its next request on', async () => {
    const { auth } = await authenticatorOf(0);
    const created = await new ApiKeyStore(database.db).create({ tenantId: 'acme', role: 'admin' });
    expect(await authenticate(auth, created.key)).toMatchObject({ role: 'admin' });
    await new ApiKeyStore(second).revoke(created.record.key_id);
    await expectDomainError(authenticate(auth, created.key), 'REQUEST.UNAUTHORIZED');
  });

  it('answers 429 with Retry-After past the key\u2019s limit, and RateLimit headers on every answer', async () => {
    const { auth } = await authenticatorOf(5000);
    const created = await new ApiKeyStore(database.db).create({
      tenantId: 'acme',
      role: 'service',
      rateLimit: 2,
    });
    const replies = [replyStub(), replyStub()];
    for (const reply of replies) await authenticate(auth, created.key, reply);
    expect(replies.map((r) => r.headers['ratelimit-remaining'])).toEqual(['1', '0']);
    const refused = replyStub();
    const error = await expectDomainError(authenticate(auth, created.key, refused), 'REQUEST.RATE_LIMITED');
    expect(error.details).toEqual({ retryAfterSeconds: Number(refused.headers['retry-after']) });
    expect(refused.headers).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '0' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});

describe('resolveTokenSecret', () => {
  it('uses AUTH_TOKEN_SECRET when set, else one generated secret shared by every instance', async () => {
    expect((await resolveTokenSecret('x'.repeat(40), database.db)).toString()).toBe('x'.repeat(40));
    const [one, two] = await Promise.all([
      resolveTokenSecret(undefined, database.db),
      resolveTokenSecret(undefined, second),
    ]);
    expect(one.length).toBe(32);
    expect(two.equals(one)).toBe(true);
  });
});
