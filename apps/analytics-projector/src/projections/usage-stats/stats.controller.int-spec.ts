import { randomUUID } from 'node:crypto';
import { EventStore, ProjectionRunner } from '@threadline/event-store';
import { createTestDatabase, expectDomainError, type TestDatabase } from '@threadline/testing';
import { analyticsMigrations } from '../../migrations';
import { analyticsEventRegistry } from '../projections';
import { waitForPosition } from './stats.controller';
import { UsageStatsProjection } from './usage-stats.projection';
import { appendSession, created } from './usage-stats.scenario';

// Read-your-writes waits (`min_position`) against a real runner of usage_stats.

let tdb: TestDatabase;
let store: EventStore;

beforeAll(async () => {
  tdb = await createTestDatabase(analyticsMigrations);
  store = new EventStore(tdb.db);
});

afterAll(async () => {
  await tdb?.drop();
});

const newRunner = () =>
  new ProjectionRunner(tdb.db, store, analyticsEventRegistry(), new UsageStatsProjection());

describe('waitForPosition', () => {
  it('resolves as soon as the runner has handled the event, without waiting for a poll', async () => {
    const runner = newRunner();
    await runner.ensureLive();
    const [event] = await appendSession(store, `t-${randomUUID().slice(0, 8)}`, 's1', [created('s1', 'u1')]);
    // A poll interval far beyond the test's patience: only the runner's notification can end the wait.
    const waiting = waitForPosition(runner, event!.globalPosition, 30_000, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await runner.handle(event!);
    const handled = Date.now();
    await waiting;
    expect(Date.now() - handled).toBeLessThan(100);
    expect(await runner.position()).toBeGreaterThanOrEqual(event!.globalPosition);
  });

  it('sees a checkpoint moved by another process at its next poll', async () => {
    const runner = newRunner();
    const other = newRunner(); // e.g. another instance of the projector
    await runner.ensureLive();
    const [event] = await appendSession(store, `t-${randomUUID().slice(0, 8)}`, 's1', [created('s1', 'u1')]);
    const started = Date.now();
    const waiting = waitForPosition(runner, event!.globalPosition, 30_000, 100);
    await other.handle(event!);
    await waiting;
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('times out with SERVICE.UNAVAILABLE and the position reached', async () => {
    const runner = newRunner();
    const asOf = await runner.position();
    const started = Date.now();
    const error = await expectDomainError(waitForPosition(runner, asOf + 1000, 120), 'SERVICE.UNAVAILABLE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(error.message).toBe(
      `The stats have not reached position ${asOf + 1000} within 120 ms (they are at ${asOf}); retry`,
    );
    expect(error.details).toEqual({ min_position: asOf + 1000, as_of_position: asOf });
  });
});
