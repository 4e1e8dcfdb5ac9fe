import { randomBytes } from 'node:crypto';
import { Db, ensureDatabase, eventStoreMigrations, migrate } from '@threadline/event-store';
import { connectNats, deleteEventStream, ensureEventStream, type NatsConnection } from '@threadline/messaging';
import type { MigrationInterface } from 'typeorm';

/** Admin URL of the test Postgres (`TEST_DATABASE_URL`, default the local server's `postgres` database). */
export const testDatabaseAdminUrl = (): string =>
  process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const testNatsUrl = (): string => process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222';

const suffix = () => `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

export interface TestDatabase {
  url: string;
  db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file on the real Postgres, migrated with the event store's
 * migrations plus `migrations`. Drop it in `afterAll`.
 */
export async function createTestDatabase(
  migrations: (new () => MigrationInterface)[] = [],
  poolSize = 10,
): Promise<TestDatabase> {
  const url = new URL(testDatabaseAdminUrl());
  url.pathname = `/tl_test_${suffix()}`;
  await ensureDatabase(url.toString());
  const db = await Db.connect({ url: url.toString(), poolSize, migrations: [...eventStoreMigrations, ...migrations] });
  await migrate(db);
  return {
    url: url.toString(),
    db,
    drop: async () => {
      await db.close();
      await dropDatabase(url.toString());
    },
  };
}

/** Drops a test database, disconnecting whoever is still connected. */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = await Db.connect({ url: testDatabaseAdminUrl(), poolSize: 1 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.close();
  }
}

export interface TestNats {
  nc: NatsConnection;
  /** This test file's subject prefix (set by jest-env.setup.js) and its own events stream. */
  prefix: string;
  stream: string;
  /** Deletes the stream and closes the connection. */
  cleanup(): Promise<void>;
}

/** A JetStream events stream of this test file's own on the real NATS server. */
export async function createTestNats(): Promise<TestNats> {
  const prefix = process.env['NATS_SUBJECT_PREFIX'] ?? `tltest_${suffix()}`;
  const stream = `TLTEST_${suffix()}`.toUpperCase();
  const nc = await connectNats({ NATS_URL: testNatsUrl() }, `test-${prefix}`);
  await ensureEventStream(nc, stream, prefix);
  return {
    nc,
    prefix,
    stream,
    cleanup: async () => {
      await deleteEventStream(nc, stream);
      await nc.close();
    },
  };
}

/**
 * Polls `probe` until it returns a value other than `undefined`, or fails after `timeoutMs`.
 * For waiting on positions and states, never on fixed sleeps.
 */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
