import { Db } from '@threadline/event-store';
import { createTestDatabase, type TestDatabase } from '@threadline/testing';
import { ApiKeyStore } from './api-keys';
import { gatewayMigrations } from './migrations';
import { RateLimiter } from './rate-limiter';
import { resolveTokenSecret } from './user-tokens';

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
  it('is shared by gateway instances: the limit counts requests of both', async () => {
    const a = new RateLimiter(database.db, 3600);
    const b = new RateLimiter(second, 3600);
    const decisions = [];
    for (let i = 0; i < 6; i += 1) decisions.push(await (i % 2 === 0 ? a : b).consume('key:shared', 4));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, false, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([3, 2, 1, 0, 0, 0]);
    const refused = decisions[5]!;
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(3600);
    // Another bucket is not affected.
    expect((await a.consume('key:other', 4)).allowed).toBe(true);
  });

  it('counts concurrent requests exactly (one atomic upsert each)', async () => {
    const limiters = [new RateLimiter(database.db, 3600), new RateLimiter(second, 3600)];
    const decisions = await Promise.all(
      Array.from({ length: 20 }, (_, i) => limiters[i % 2]!.consume('user:acme:race', 10)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
  });

  it('starts a new window after the old one', async () => {
    await database.db.query(
      `INSERT INTO rate_limit_windows (bucket, window_start, count) VALUES ('key:old', now() - interval '2 hours', 99)`,
    );
    const decision = await new RateLimiter(database.db, 60).consume('key:old', 5);
    expect(decision).toMatchObject({ allowed: true, remaining: 4 });
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
