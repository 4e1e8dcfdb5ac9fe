import { randomUUID } from 'node:crypto';
import {
  SESSION_CATEGORY,
  SessionEndedV1,
  SessionTitleChangedV1,
  sessionStreamId,
  type EventEnvelope,
} from '@threadline/contracts';
import { EventStore, ProjectionRunner, START } from '@threadline/event-store';
import { createTestDatabase, eventually, type TestDatabase } from '@threadline/testing';
import { analyticsMigrations } from '../../migrations';
import { analyticsEventRegistry } from '../projections';
import { SessionCountsProjection, readUserSessionCounts } from './session-counts.projection';
import {
  appendSessionScenario,
  dumpAll,
  expectedScenarioCounts,
  readCounts,
} from './session-counts.scenario';

let tdb: TestDatabase;
let store: EventStore;
let runner: ProjectionRunner;

const newTenant = () => `t-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  tdb = await createTestDatabase(analyticsMigrations);
  store = new EventStore(tdb.db);
  runner = new ProjectionRunner(tdb.db, store, analyticsEventRegistry(), new SessionCountsProjection());
});

afterAll(async () => {
  await tdb?.drop();
});

/**
 * Waits until every event of the database is below the xmin horizon, so a rebuild (which tails in
 * commit-safe order) replays them all: a transaction still open anywhere on the server, e.g. another
 * test file's, holds the horizon back. Tests that wait on it have a 30 s timeout.
 */
async function untilAllTailable(store: EventStore): Promise<number> {
  return eventually(
    async () => {
      const [row] = await store.db.query<{ n: string }>('SELECT count(*) AS n FROM events');
      const visible = await store.readAll(START, 1_000_000);
      return visible.length === Number(row?.n) ? visible.length : undefined;
    },
    25_000,
    'every event below the xmin horizon',
  );
}

async function handleAll(events: readonly EventEnvelope[]): Promise<string[]> {
  const outcomes: string[] = [];
  for (const e of events) outcomes.push(await runner.handle(e));
  return outcomes;
}

describe('session_counts projection', () => {
  it('counts sessions by status per tenant and per user, moving counts on end and delete', async () => {
    const tenant = newTenant();
    const events = await appendSessionScenario(store, tenant);

    expect(await handleAll(events)).toEqual(events.map(() => 'applied'));

    expect(await readCounts(tdb.db, tenant)).toEqual(expectedScenarioCounts);
    expect(await readUserSessionCounts(tdb.db, tenant, 'alice')).toEqual({
      active: 1,
      ended: 1,
      expired: 0,
      deleted: 1,
      total: 3,
    });
    expect(await readUserSessionCounts(tdb.db, tenant, 'nobody')).toEqual({
      active: 0,
      ended: 0,
      expired: 0,
      deleted: 0,
      total: 0,
    });
    expect(await runner.position()).toBe(Math.max(...events.map((e) => e.globalPosition)));
  });

  it('keeps tenants apart', async () => {
    const [t1, t2] = [newTenant(), newTenant()];
    await handleAll(await appendSessionScenario(store, t1));
    const before = await readCounts(tdb.db, t1);
    await handleAll(await appendSessionScenario(store, t2));
    expect(await readCounts(tdb.db, t1)).toEqual(before);
    expect(await readCounts(tdb.db, t2)).toEqual(expectedScenarioCounts);
  });

  it('gives the same rows when every event is delivered twice (each duplicate is skipped)', async () => {
    const tenant = newTenant();
    const events = await appendSessionScenario(store, tenant);
    const outcomes: string[] = [];
    for (const e of events) {
      outcomes.push(await runner.handle(e), await runner.handle(e));
    }
    expect(outcomes).toEqual(events.flatMap(() => ['applied', 'skipped']));
    const once = await readCounts(tdb.db, tenant);
    expect(once).toEqual(expectedScenarioCounts);

    // And the whole replay again, in order: nothing changes.
    expect(await handleAll(events)).toEqual(events.map(() => 'skipped'));
    expect(await readCounts(tdb.db, tenant)).toEqual(once);
  });

  it('backfills from the event store when events arrive out of order', async () => {
    const tenant = newTenant();
    const events = await appendSessionScenario(store, tenant);
    const reversed = [...events].reverse();

    const outcomes = await handleAll(reversed);
    // The first event seen of each stream is its last one: it backfills the rest; the others are then skipped.
    const streams = new Set(events.map((e) => e.streamId));
    const firstSeen = new Set<string>();
    const expectedOutcomes = reversed.map((e) => {
      if (firstSeen.has(e.streamId)) return 'skipped';
      firstSeen.add(e.streamId);
      return e.streamPosition === 1 ? 'applied' : 'backfilled';
    });
    expect(firstSeen.size).toBe(streams.size);
    expect(outcomes).toEqual(expectedOutcomes);
    expect(await readCounts(tdb.db, tenant)).toEqual(expectedScenarioCounts);
  });

  it('does not count an end of a session that is no longer active', async () => {
    const tenant = newTenant();
    const events = await appendSessionScenario(store, tenant);
    await handleAll(events);
    // a1 is ended, b1 deleted: a further end (and a rename) of either changes no count.
    const extra: EventEnvelope[] = [];
    for (const [sessionId, version] of [
      ['a1', 3],
      ['b1', 3],
    ] as const) {
      const result = await store.append(
        sessionStreamId(tenant, sessionId),
        SESSION_CATEGORY,
        version,
        [
          {
            type: SessionEndedV1.type,
            data: { sessionId, reason: 'admin', endedAt: new Date().toISOString() },
          },
          {
            type: SessionTitleChangedV1.type,
            data: { sessionId, title: 'x', changedAt: new Date().toISOString() },
          },
        ],
        { metadata: { tenantId: tenant } },
      );
      extra.push(...result.events);
    }
    expect(await handleAll(extra)).toEqual(['applied', 'applied', 'applied', 'applied']);
    expect(await readCounts(tdb.db, tenant)).toEqual(expectedScenarioCounts);
  });

  it('rebuild() yields exactly the rows incremental handling did', async () => {
    const tenant = newTenant();
    await handleAll(await appendSessionScenario(store, tenant));
    const incremental = await dumpAll(tdb.db, 'session_counts');
    const positionBefore = await runner.position();

    const count = await untilAllTailable(store);
    const result = await runner.rebuild({ batchSize: 7 });

    expect(result.events).toBe(count);
    expect(await dumpAll(tdb.db, 'session_counts')).toEqual(incremental);
    expect(await readCounts(tdb.db, tenant)).toEqual(expectedScenarioCounts);
    expect(await runner.position()).toBe(positionBefore);

    // Live delivery after the rebuild skips what the rebuild applied.
    const events = await store.readStream(sessionStreamId(tenant, 'a1'));
    expect(await handleAll(events)).toEqual(events.map(() => 'skipped'));
  }, 30_000);

  it('rejects an event whose data breaks its contract, and applies nothing of it', async () => {
    const tenant = newTenant();
    const [good] = await appendSessionScenario(store, tenant);
    if (!good) throw new Error('scenario appended nothing');
    const broken: EventEnvelope = { ...good, data: { ...(good.data as object), sessionId: '' } };
    await expect(runner.handle(broken)).rejects.toThrow();
    expect((await readCounts(tdb.db, tenant)).sessions).toEqual([]);
    expect(await runner.handle(good)).toBe('applied');
  });
});

describe('session_counts on a broken stream', () => {
  let broken: TestDatabase;
  afterAll(async () => {
    await broken?.drop();
  });

  it('refuses an end of a session it never saw created, and records nothing', async () => {
    broken = await createTestDatabase(analyticsMigrations);
    const brokenStore = new EventStore(broken.db);
    const brokenRunner = new ProjectionRunner(
      broken.db,
      brokenStore,
      analyticsEventRegistry(),
      new SessionCountsProjection(),
    );
    const { events } = await brokenStore.append(
      sessionStreamId('t1', 'ghost'),
      SESSION_CATEGORY,
      'no_stream',
      [
        {
          type: SessionEndedV1.type,
          data: { sessionId: 'ghost', reason: 'user', endedAt: new Date().toISOString() },
        },
      ],
      { metadata: { tenantId: 't1' } },
    );
    const [ended] = events;
    if (!ended) throw new Error('append returned no event');
    await expect(brokenRunner.handle(ended)).rejects.toThrow(
      'session_counts: SessionEnded.v1 for session t1/ghost, which was never created',
    );
    expect(await readCounts(broken.db, 't1')).toEqual({ tenant: undefined, users: [], sessions: [] });
    expect(await brokenRunner.position()).toBe(0);
    await untilAllTailable(brokenStore);
    await expect(brokenRunner.rebuild()).rejects.toThrow('which was never created');
  }, 30_000);
});
