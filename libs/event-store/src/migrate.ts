import type { MigrationInterface } from 'typeorm';
import { MigrationExecutor } from 'typeorm';
import { Db } from './db';
import { eventStoreMigrations } from './migrations';

// Any fixed 64-bit key shared by every process that migrates this database.
const MIGRATION_LOCK_KEY = 7_345_201_001;

/**
 * Runs every pending migration of `db`'s DataSource. Safe to run concurrently (several services
 * starting at once): a session advisory lock serializes the runs, and a run that got the lock
 * second finds nothing pending. The migrations run on the connection that holds the lock, so a pool
 * of one connection is enough. Each migration runs in its own transaction. Returns the names of the
 * migrations it applied. Throws when a migration fails (that migration is rolled back; earlier ones stay).
 */
export async function migrate(db: Db): Promise<string[]> {
  const runner = db.dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const executor = new MigrationExecutor(db.dataSource, runner);
    executor.transaction = 'each';
    const applied = await executor.executePendingMigrations();
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}

/** Creates the database named in `url` if it does not exist (connects to the `postgres` database). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`Database name must be letters, digits and _: ${name}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const db = await Db.connect({ url: admin.toString(), poolSize: 1, applicationName: 'threadline-migrate' });
  try {
    const found = await db.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.length === 0) {
      await db.query(`CREATE DATABASE "${name}"`).catch((error: unknown) => {
        // Another process created it between our check and our CREATE.
        if (!(error instanceof Error && /already exists|duplicate key/.test(error.message))) throw error;
      });
    }
  } finally {
    await db.close();
  }
}

/**
 * A service's `node main.js migrate`: creates the database of `url` when missing, then applies the
 * event store's migrations and `migrations` (the service's read models) under the migration advisory
 * lock, so it is safe while other services migrate. Returns the names of the migrations it applied.
 * @throws when Postgres is unreachable or a migration fails.
 */
export async function migrateDatabase(
  url: string,
  applicationName: string,
  migrations: (new () => MigrationInterface)[],
): Promise<string[]> {
  await ensureDatabase(url);
  const db = await Db.connect({
    url,
    poolSize: 2,
    applicationName,
    migrations: [...eventStoreMigrations, ...migrations],
  });
  try {
    return await migrate(db);
  } finally {
    await db.close();
  }
}
