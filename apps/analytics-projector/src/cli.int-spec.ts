import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { DeadLetters, EventStore, ProjectionRunner, runProjectionsCli, START } from '@threadline/event-store';
import { createTestDatabase, eventually, type TestDatabase } from '@threadline/testing';
import { ANALYTICS_DURABLE } from './config';
import { analyticsMigrations } from './migrations';
import { analyticsEventRegistry, analyticsProjections } from './projections/projections';
import { UsageStatsProjection } from './projections/usage-stats/usage-stats.projection';
import {
  appendSessionScenario,
  expectedScenarioSessions,
  readSessionFigures,
} from './projections/usage-stats/usage-stats.scenario';

let tdb: TestDatabase;
let store: EventStore;
let runner: ProjectionRunner;

beforeAll(async () => {
  tdb = await createTestDatabase(analyticsMigrations);
  store = new EventStore(tdb.db);
  runner = new ProjectionRunner(tdb.db, store, analyticsEventRegistry(), new UsageStatsProjection());
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

/** Runs the CLI as `npm run projections -- <argv>` would, capturing stdout and stderr. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        append(chunk.toString());
        done();
      },
    });
  const code = await runProjectionsCli(argv, {
    projections: analyticsProjections(),
    registry: analyticsEventRegistry(),
    databaseUrl: tdb.url,
    migrations: analyticsMigrations,
    durable: ANALYTICS_DURABLE,
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
    progress: false,
  });
  return { code, out, err };
}

const StatusJson = z.array(
  z.object({
    name: z.string(),
    version: z.number().nullable(),
    streamTypes: z.array(z.string()),
    checkpoint: z.number(),
    head: z.number(),
    lag: z.number(),
    streams: z.number().optional(),
    deadLetters: z.number().nullable().optional(),
  }),
);
const ListRow = (json: string) => StatusJson.parse(JSON.parse(json)).find((r) => r.name === 'usage_stats');

describe('projections CLI', () => {
  it('lists, rebuilds, and lists again with no lag', async () => {
    const tenant = `t-${randomUUID().slice(0, 8)}`;
    const events = await appendSessionScenario(store, tenant);
    const head = Math.max(...events.map((e) => e.globalPosition));
    // An event of a stream type the projection does not follow: replayed by a rebuild, never part of its lag.
    await store.append('other:1', 'other', 'any', [{ type: 'Other.v1', data: {} }], {
      metadata: { tenantId: tenant },
    });

    const before = await cli('list', '--json');
    expect(before.code).toBe(0);
    expect(StatusJson.parse(JSON.parse(before.out))).toEqual([
      {
        name: 'usage_stats',
        version: 1,
        streamTypes: ['session', 'conversation', 'user'],
        checkpoint: 0,
        head,
        lag: head,
      },
    ]);

    const text = await cli('list');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^projection\s+version\s+stream_types\s+checkpoint\s+head\s+lag\n/);
    expect(text.out).toMatch(
      new RegExp(`\\nusage_stats\\s+1\\s+session,conversation,user\\s+0\\s+${head}\\s+${head}\\n`),
    );

    expect(await untilAllTailable(store)).toBe(events.length + 1);
    // A new version beside the live one, only the events it follows.
    const rebuild = await cli('rebuild', 'usage_stats', '--batch-size', '4');
    expect(rebuild).toMatchObject({ code: 0, err: '' });
    expect(rebuild.out).toMatch(
      new RegExp(
        `^rebuilt usage_stats: replayed ${events.length} events in \\d+\\.\\d{3} s \\(\\d+ events/s\\); checkpoint ${head}; version 2 live\\n` +
          `phases: replay \\d+\\.\\d s, finish \\d+\\.\\d s, indexes \\d+\\.\\d s, analyze \\d+\\.\\d s, switch \\d+\\.\\d s\\n$`,
      ),
    );
    expect(ListRow((await cli('list', '--json')).out)).toMatchObject({
      version: 2,
      checkpoint: head,
      head,
      lag: 0,
    });
    expect(await readSessionFigures(runner, tenant)).toEqual(expectedScenarioSessions);

    // Rebuilding again (every projection: no name) gives the same figures.
    const again = await cli('rebuild');
    expect(again.code).toBe(0);
    expect(again.out).toContain(`replayed ${events.length} events`);
    expect(again.out).toContain('version 3 live');
    expect(await readSessionFigures(runner, tenant)).toEqual(expectedScenarioSessions);
  }, 30_000);

  it('fails clearly on an unknown projection, a bad option or an unknown command', async () => {
    const unknown = await cli('rebuild', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('Unknown projection nope; known: usage_stats');

    const bad = await cli('rebuild', 'usage_stats', '--batch-size', '0');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('not a positive integer: 0');

    const noCommand = await cli('frobnicate');
    expect(noCommand.code).not.toBe(0);
    expect(noCommand.err).toContain("unknown command 'frobnicate'");
  });

  it('shows dead letters in status and re-applies them with retry', async () => {
    // An event appended after the last rebuild that the live consumer dead-lettered (never applied).
    const tenant = `t-${randomUUID().slice(0, 8)}`;
    const events = await appendSessionScenario(store, tenant);
    const consumer = `${ANALYTICS_DURABLE}-session`;
    const letters = new DeadLetters(tdb.db);
    for (const e of events) {
      await letters.record({
        consumer,
        subject: `x.evt.session.${e.eventType}`,
        payload: JSON.stringify(e),
        error: 'Error: database was down',
        attempts: 5,
        eventId: e.eventId,
        eventType: e.eventType,
        streamId: e.streamId,
        globalPosition: e.globalPosition,
      });
    }
    expect((await readSessionFigures(runner, tenant)).sessions.total).toBe(0);

    const status = await cli('status', '--json');
    expect(ListRow(status.out)?.deadLetters).toBe(events.length);
    const statusText = await cli('status');
    expect(statusText.out).toContain(`dead letters: ${consumer}=${events.length}`);

    const listed = await cli('dead-letters', '--consumer', consumer);
    expect(listed.code).toBe(0);
    expect(listed.out.trim().split('\n')).toHaveLength(events.length + 1);
    expect(listed.out).toContain('Error: database was down');

    // Retry only the first one, then the rest: the runner backfills and skips as needed.
    const [first] = (await letters.list(consumer)).map((r) => r.id);
    const one = await cli('retry', consumer, '--id', String(first));
    expect(one.code).toBe(0);
    expect(one.out).toMatch(
      /^retried #\d+ SessionCreated\.v1 session:.*@1: usage_stats=applied\n1 retried, 0 failed\n$/,
    );

    const rest = await cli('retry', consumer);
    expect(rest.code).toBe(0);
    expect(rest.out).toContain(`${events.length - 1} retried, 0 failed`);
    expect(await readSessionFigures(runner, tenant)).toEqual(expectedScenarioSessions);
    expect(await letters.list(consumer)).toEqual([]);

    const none = await cli('dead-letters');
    expect(none.out).toBe('no dead letters\n');
    expect(ListRow((await cli('status', '--json')).out)?.deadLetters).toBe(0);
  });

  it('reports a dead letter it cannot retry and keeps it', async () => {
    const letters = new DeadLetters(tdb.db);
    await letters.record({
      consumer: 'poison-session',
      subject: 'x',
      payload: 'not json',
      error: 'SyntaxError',
      attempts: 1,
    });
    const result = await cli('retry', 'poison-session');
    expect(result.code).toBe(1);
    expect(result.err).toContain('its payload is not an event envelope');
    expect(await letters.list('poison-session')).toHaveLength(1);
  });
});
