import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { EventStore, Relay } from '@threadline/event-store';
import { JetStreamPublisher } from '@threadline/messaging';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  testNatsUrl,
  type TestDatabase,
  type TestNats,
} from '@threadline/testing';
import { createAnalyticsProjector } from './app';
import { loadAnalyticsProjectorConfig } from './config';
import { analyticsMigrations } from './migrations';
import {
  appendSessionScenario,
  expectedScenarioCounts,
  readCounts,
} from './projections/session-counts/session-counts.scenario';

// The real path: event store -> relay -> JetStream -> the analytics app's durable consumer -> session_counts.
let tdb: TestDatabase;
let nats: TestNats;
let relay: Relay;
let app: INestApplication | undefined;

beforeAll(async () => {
  tdb = await createTestDatabase(analyticsMigrations);
  nats = await createTestNats();
  relay = new Relay(
    tdb.db,
    new EventStore(tdb.db),
    new JetStreamPublisher(nats.nc, nats.prefix, nats.stream),
    {
      pollIntervalMs: 10,
    },
  );
  relay.start();
  const config = loadAnalyticsProjectorConfig({
    DATABASE_URL: tdb.url,
    DATABASE_POOL_SIZE: '4',
    NATS_URL: testNatsUrl(),
    NATS_STREAM: nats.stream,
    NATS_SUBJECT_PREFIX: nats.prefix,
    LOG_LEVEL: 'warn',
    MIGRATE_ON_START: 'true',
  });
  app = await createAnalyticsProjector(config);
}, 30_000);

// app.close() waits the request transport's shutdown grace period (seconds), hence the hook's timeout.
afterAll(async () => {
  await app?.close();
  await relay?.stop();
  await nats?.cleanup();
  await tdb?.drop();
}, 30_000);

it('counts the sessions of events appended to the store, delivered by the relay over JetStream', async () => {
  const store = new EventStore(tdb.db);
  const [t1, t2] = [`t-${randomUUID().slice(0, 8)}`, `t-${randomUUID().slice(0, 8)}`];
  await appendSessionScenario(store, t1);
  const last = await appendSessionScenario(store, t2);

  await eventually(
    async () => {
      expect(await readCounts(tdb.db, t1)).toEqual(expectedScenarioCounts);
      expect(await readCounts(tdb.db, t2)).toEqual(expectedScenarioCounts);
      return true;
    },
    25_000,
    'session_counts rows of both tenants',
  );
  const [checkpoint] = await tdb.db.query<{ global_position: string }>(
    `SELECT global_position FROM checkpoints WHERE name = 'projection:session_counts'`,
  );
  expect(Number(checkpoint?.global_position)).toBe(Math.max(...last.map((e) => e.globalPosition)));
  expect(await tdb.db.query('SELECT * FROM dead_letters')).toEqual([]);
}, 30_000);
