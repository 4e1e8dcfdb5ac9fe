import { randomBytes } from 'node:crypto';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dropDatabase, testDatabaseAdminUrl } from '@threadline/testing';
import { Db } from './db';
import { eventStoreMigrations } from './migrations';
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
