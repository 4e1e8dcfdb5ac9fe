import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { Db, DeadLetters, ensureDatabase, eventStoreMigrations, migrate } from '@threadline/event-store';
import {
  connectNats,
  deleteEventStream,
  ensureEventStream,
  JetStreamPublisher,
  type NatsConnection,
} from '@threadline/messaging';
import type { MigrationInterface } from 'typeorm';

/** Admin URL of the test Postgres (`TEST_DATABASE_URL`, default the local server's `postgres` database). */
export const testDatabaseAdminUrl = (): string =>
  process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const testNatsUrl = (): string => process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222';

const suffix = () => `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

export interface TestDatabase {
  url: string;
  db: Db;
  /** The `dead_letters` table of this database (a `DeadLetterSink` for `JetStreamEventsServer`). */
  deadLetters: DeadLetters;
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
  const db = await Db.connect({
    url: url.toString(),
    poolSize,
    migrations: [...eventStoreMigrations, ...migrations],
  });
  await migrate(db);
  return {
    url: url.toString(),
    db,
    deadLetters: new DeadLetters(db),
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
  /** The relay's publisher over this stream (`Nats-Msg-Id = eventId`, subject from the contract). */
  publisher: JetStreamPublisher;
  /** Every message now stored in the stream, in stream order (for exactly-once assertions). */
  messages(): Promise<StreamMessage[]>;
  /** Deletes the stream and closes the connection. */
  cleanup(): Promise<void>;
}

/** One stored JetStream message: its sequence, subject, `Nats-Msg-Id` header and UTF-8 body. */
export interface StreamMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  body: string;
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
    publisher: new JetStreamPublisher(nc, prefix, stream),
    messages: () => readStreamMessages(nc, stream),
    cleanup: async () => {
      await deleteEventStream(nc, stream);
      await nc.close();
    },
  };
}

/** Reads every message stored in `stream`, first to last sequence (gaps from deletes are skipped). */
export async function readStreamMessages(nc: NatsConnection, stream: string): Promise<StreamMessage[]> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(stream);
  const out: StreamMessage[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue;
    out.push({
      seq: m.seq,
      subject: m.subject,
      msgId: m.header?.get('Nats-Msg-Id') || undefined,
      body: m.string(),
    });
  }
  return out;
}

/**
 * Polls `probe` (sync or async) every 20 ms until it returns a value other than `undefined`, or fails
 * after `timeoutMs` with the last error the probe threw. A probe that throws counts as "not yet", so
 * `expect` inside a probe waits for the expectation to hold. For waiting on positions and states,
 * never on fixed sleeps.
 */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
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
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${describeError(lastError)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : JSON.stringify(error);
}
