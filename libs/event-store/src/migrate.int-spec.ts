import { randomBytes } from 'node:crypto';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dropDatabase, testDatabaseAdminUrl } from '@threadline/testing';
import { Db } from './db';
import { EventStore } from './event-store';
import { eventStoreMigrations } from './migrations';
import { EventStore1732190400000 } from './migrations/1732190400000-event-store';
import { DeadLetterIdentity1732900000000 } from './migrations/1732900000000-dead-letter-identity';
import { ensureDatabase, migrate } from './migrate';

// `migrate` against the real Postgres: safe when several services start at once on a fresh database.

/** A read-model migration that would fail (duplicate table) or leave two rows if it ran twice. */
class Counter1800000000000 implements MigrationInterface {
  name = 'Counter1800000000000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(
      'CREATE TABLE migrate_runs (id int GENERATED ALWAYS AS IDENTITY, at timestamptz DEFAULT now())',
    );
    await q.query('INSERT INTO migrate_runs DEFAULT VALUES');
    await q.query('SELECT pg_sleep(0.05)'); // widen the window in which a second runner could interfere
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE migrate_runs');
  }
}

const migrations = [...eventStoreMigrations, Counter1800000000000];
const names = [...eventStoreMigrations.map((m) => new m().name), 'Counter1800000000000'];

function freshUrl(): string {
  const url = new URL(testDatabaseAdminUrl());
  url.pathname = `/tl_test_migrate_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  return url.toString();
}

describe('migrate', () => {
  const urls: string[] = [];
  const dbs: Db[] = [];
  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.close()));
    for (const url of urls) await dropDatabase(url);
  });

  it('three concurrent runs on a fresh database apply each migration exactly once', async () => {
    const url = freshUrl();
    urls.push(url);
    await Promise.all([ensureDatabase(url), ensureDatabase(url), ensureDatabase(url)]);
    const three = await Promise.all(
      [1, 2, 3].map((i) => Db.connect({ url, poolSize: 3, migrations, applicationName: `m${i}` })),
    );
    dbs.push(...three);

    const applied = await Promise.all(three.map((db) => migrate(db)));
    expect(applied.flat().sort()).toEqual([...names].sort());
    expect(applied.filter((a) => a.length > 0)).toHaveLength(1); // the first runner did all, the others nothing

    const db = three[0]!;
    const rows = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY id');
    expect(rows.map((r) => r.name)).toEqual(names);
    const [runs] = await db.query<{ n: string }>('SELECT count(*) AS n FROM migrate_runs');
    expect(Number(runs?.n)).toBe(1);
    // And again: nothing pending.
    expect(await migrate(three[1]!)).toEqual([]);
  });

  it('works with a pool of one connection (the lock and the migrations share it)', async () => {
    const url = freshUrl();
    urls.push(url);
    await ensureDatabase(url);
    const db = await Db.connect({ url, poolSize: 1, migrations });
    dbs.push(db);
    expect(await migrate(db)).toEqual(names);
    // The session lock was released before the connection went back to the pool.
    const [locks] = await db.query<{
      n: string;
    }>(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    expect(Number(locks?.n)).toBe(0);
  });

  it('ensureDatabase refuses a name that is not letters, digits and _', async () => {
    const url = new URL(testDatabaseAdminUrl());
    url.pathname = '/bad-name';
    await expect(ensureDatabase(url.toString())).rejects.toThrow(/letters, digits and _/);
  });
});

describe('migration EventDataJson1733000000000', () => {
  // Data that a text type and a binary one could disagree on: escapes, non-ASCII text, small and
  // large numbers, nulls, nesting, an empty object and array.
  const data = [
    { text: 'line 1\nline "2"\t\\ café ☕ 😀', cost: 0.0000846, tokens: 412, ratio: -1.5e-7 },
    { nested: { list: [1, 'two', null, { three: [] }], empty: {} }, missing: null },
    {},
  ];
  const metadata = { tenantId: 'migration' };

  it('keeps the data of events appended before it, and appends store their data as the text sent', async () => {
    const url = freshUrl();
    await ensureDatabase(url);
    const before = await Db.connect({
      url,
      poolSize: 1,
      migrations: [EventStore1732190400000, DeadLetterIdentity1732900000000],
    });
    let after: Db | undefined;
    try {
      await migrate(before);
      const old = await new EventStore(before).append(
        'widget-1',
        'widget',
        'no_stream',
        data.map((d) => ({ type: 'Noted.v1', data: d })),
        { metadata },
      );
      await before.close();

      after = await Db.connect({ url, poolSize: 1, migrations: eventStoreMigrations });
      expect(await migrate(after)).toEqual(['EventDataJson1733000000000']);
      const [column] = await after.query<{ data_type: string }>(
        `SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'data'`,
      );
      expect(column?.data_type).toBe('json');
      const store = new EventStore(after);
      const read = await store.readStream('widget-1');
      expect(read.map((e) => e.data)).toEqual(data);
      expect(read.map((e) => e.eventId)).toEqual(old.events.map((e) => e.eventId));

      await store.append('widget-1', 'widget', 3, [{ type: 'Noted.v1', data: data[0] }], { metadata });
      const [stored] = await after.query<{ text: string; field: string }>(
        `SELECT data::text AS text, data->>'text' AS field FROM events WHERE stream_position = 4`,
      );
      expect(stored).toEqual({ text: JSON.stringify(data[0]), field: data[0]?.text });
      expect((await store.readStream('widget-1', { from: 4 })).map((e) => e.data)).toEqual([data[0]]);
    } finally {
      await before.close().catch(() => undefined);
      await after?.close();
      await dropDatabase(url);
    }
  });
});
