import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { EventStore, ProjectionRunner, Relay } from '@threadline/event-store';
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
import { analyticsEventRegistry } from './projections/projections';
import { UsageStatsProjection } from './projections/usage-stats/usage-stats.projection';
import {
  appendSessionScenario,
  expectedScenarioSessions,
  readSessionFigures,
} from './projections/usage-stats/usage-stats.scenario';

// The real path: event store -> relay -> JetStream -> the analytics app's durable consumer -> usage_stats.
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
  const runner = new ProjectionRunner(tdb.db, store, analyticsEventRegistry(), new UsageStatsProjection());
  const [t1, t2] = [`t-${randomUUID().slice(0, 8)}`, `t-${randomUUID().slice(0, 8)}`];
  await appendSessionScenario(store, t1);
  const last = await appendSessionScenario(store, t2);

  await eventually(
    async () => {
      expect(await readSessionFigures(runner, t1)).toEqual(expectedScenarioSessions);
      expect(await readSessionFigures(runner, t2)).toEqual(expectedScenarioSessions);
      return true;
    },
    25_000,
    'usage_stats session figures of both tenants',
  );
  expect(await runner.position()).toBe(Math.max(...last.map((e) => e.globalPosition)));
  expect(await tdb.db.query('SELECT * FROM dead_letters')).toEqual([]);
}, 30_000);
