import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { type EventEnvelope, USER_CATEGORY, userStreamId } from '@threadline/contracts';
import { EventStore, ProjectionRunner, RebuildInProgressError, type Sql } from '@threadline/event-store';
import { NotFoundError } from '@threadline/platform';
import { createTestDatabase, readAllSettled, type TestDatabase } from '@threadline/testing';
import { analyticsMigrations } from '../../migrations';
import { analyticsEventRegistry } from '../projections';
import { globalStats, sessionStats, usageStats, userStats } from './stats.queries';
import { UsageStatsProjection } from './usage-stats.projection';
import {
  aggregatesFromFacts,
  appendConversation,
  appendSession,
  at,
  created,
  dumpUsageStats,
  coffeeDialogs,
  importDialogs,
  logged,
  response,
  toolCall,
} from './usage-stats.scenario';

let tdb: TestDatabase;
let store: EventStore;
let runner: ProjectionRunner;

const newTenant = () => `t-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  tdb = await createTestDatabase(analyticsMigrations);
  store = new EventStore(tdb.db);
  runner = new ProjectionRunner(tdb.db, store, analyticsEventRegistry(), new UsageStatsProjection());
});

afterAll(async () => {
  await tdb?.drop();
});

async function handleAll(events: readonly EventEnvelope[]): Promise<string[]> {
  const outcomes: string[] = [];
  for (const e of events) outcomes.push(await runner.handle(e));
  return outcomes;
}

/**
 * u1's s1: a whole turn (two agents, two tool calls, cache hit, 400 ms) and an incremental one (one
 * agent, a tool call recorded running then completed, completed without processing time: 300 ms from
 * its agent); u1's s2: a failed turn, then the session is deleted; u2's s3: created and ended.
 * Returns [session events, conversation events].
 */
async function appendSmallScenario(tenant: string): Promise<[EventEnvelope[], EventEnvelope[]]> {
  const sessions = [
    ...(await appendSession(store, tenant, 's1', [created('s1', 'u1')])),
    ...(await appendSession(store, tenant, 's2', [created('s2', 'u1')])),
    ...(await appendSession(store, tenant, 's3', [
      created('s3', 'u2'),
      { type: 'SessionEnded.v1', data: { sessionId: 's3', reason: 'user', endedAt: at(9) } },
    ])),
  ];
  const turns = [
    ...(await appendConversation(store, tenant, 's1', [
      logged('t1', 's1', 'u1', {
        agentResponses: [
          response('planner', 'gpt-4o', { in: 100, out: 50 }, 0.01, 200),
          response('critic', 'gpt-4o-mini', { in: 10, out: 5 }, 0.001, 100),
        ],
        toolCalls: [toolCall('c1', 'completed'), toolCall('c2', 'failed')],
        vectorCacheHit: true,
        processingTimeMs: 400,
      }),
    ])),
    ...(await appendConversation(store, tenant, 's1', [
      {
        type: 'TurnStarted.v1',
        data: {
          turnId: 't2',
          sessionId: 's1',
          userId: 'u1',
          conversationTurn: 2,
          userInput: 'more',
          vectorCacheHit: false,
          startedAt: at(3),
        },
      },
    ])),
    ...(await appendConversation(store, tenant, 's1', [
      {
        type: 'AgentResponded.v1',
        data: {
          turnId: 't2',
          sessionId: 's1',
          agentResponse: response('planner', 'gpt-4o', { in: 20, out: 10 }, 0.002, 300),
          respondedAt: at(4),
        },
      },
      {
        type: 'ToolCallRecorded.v1',
        data: { turnId: 't2', sessionId: 's1', toolCall: toolCall('c3', 'running'), recordedAt: at(4) },
      },
    ])),
    ...(await appendConversation(store, tenant, 's1', [
      {
        type: 'ToolCallRecorded.v1',
        data: { turnId: 't2', sessionId: 's1', toolCall: toolCall('c3', 'completed'), recordedAt: at(4) },
      },
      {
        type: 'TurnCompleted.v1',
        data: {
          turnId: 't2',
          sessionId: 's1',
          processingTimeMs: null,
          vectorCacheHit: null,
          completedAt: at(5),
        },
      },
    ])),
    ...(await appendConversation(store, tenant, 's2', [
      logged('t3', 's2', 'u1', {
        userInput: 'x',
        agentResponses: [response('planner', 'gpt-4o', { in: 1000, out: 1000 }, 1, 5000)],
        processingTimeMs: 1000,
        status: 'failed',
        error: 'boom',
        startedAt: at(6),
        completedAt: at(7),
      }),
    ])),
  ];
  sessions.push(
    ...(await appendSession(store, tenant, 's2', [
      { type: 'SessionDeleted.v1', data: { sessionId: 's2', deletedAt: at(8) } },
    ])),
  );
  return [sessions, turns];
}

const read = <T>(fn: (sql: Sql, asOf: number) => Promise<T>) => runner.read(fn);

/** The aggregates the projection kept equal their definition over the facts (every tenant). */
async function expectAggregatesOfFacts(): Promise<void> {
  const [kept, defined] = await read(async (sql) => [
    await dumpUsageStats(sql),
    await aggregatesFromFacts(sql),
  ]);
  expect(Object.keys(defined).length).toBe(5);
  for (const [table, rows] of Object.entries(defined)) {
    expect({ table, rows: kept[table] }).toEqual({ table, rows });
  }
}

async function allFigures(tenant: string, sessionId = 's1') {
  const live = await runner.liveVersion();
  return read(async (sql, asOf) => {
    const strip = <T extends { as_of_position: number }>(v: T) => ({ ...v, as_of_position: 0 });
    const g = await globalStats(sql, asOf, {
      tenantId: tenant,
      positionsKey: runner.positionsKey(live?.version ?? null),
      streamTypes: runner.projection.streamTypes,
    });
    return {
      s1: strip(await sessionStats(sql, asOf, { tenantId: tenant, sessionId })),
      u1: strip(await userStats(sql, asOf, { tenantId: tenant, userId: 'u1' })),
      global: { ...strip(g), head_position: 0, projection_lag: 0 },
      day: strip(
        await usageStats(sql, asOf, { tenantId: tenant, from: at(0), to: at(0, 2), groupBy: 'day' }),
      ),
    };
  });
}

describe('usage_stats projection', () => {
  it('computes the session, user, global and usage figures of given events', async () => {
    const tenant = newTenant();
    const [sessions, turns] = await appendSmallScenario(tenant);
    expect(await handleAll([...sessions, ...turns])).toEqual([...sessions, ...turns].map(() => 'applied'));
    const last = Math.max(...[...sessions, ...turns].map((e) => e.globalPosition));
    expect(await runner.position()).toBe(last);

    const figures = await read(async (sql, asOf) => {
      expect(asOf).toBe(last);
      return {
        s1: await sessionStats(sql, asOf, { tenantId: tenant, sessionId: 's1' }),
        u1: await userStats(sql, asOf, { tenantId: tenant, userId: 'u1' }),
        nobody: await userStats(sql, asOf, { tenantId: tenant, userId: 'nobody' }),
        model: await usageStats(sql, asOf, { tenantId: tenant, from: at(0), to: at(0, 2), groupBy: 'model' }),
        agent: await usageStats(sql, asOf, { tenantId: tenant, from: at(0), to: at(0, 2), groupBy: 'agent' }),
        empty: await usageStats(sql, asOf, {
          tenantId: tenant,
          from: at(0, 2),
          to: at(0, 3),
          groupBy: 'day',
        }),
      };
    });
    expect(figures.s1).toEqual({
      session_id: 's1',
      user_id: 'u1',
      status: 'active',
      interactions: 2,
      turns_completed: 2,
      turns_failed: 0,
      turns_in_progress: 0,
      total_tokens_in: 130,
      total_tokens_out: 65,
      total_tokens_cached: 0,
      total_tokens: 195,
      cost_usd: 0.013,
      avg_response_time_ms: 350,
      p95_response_time_ms: 395, // 300 + 0.95 * (400 - 300), linear interpolation
      duration_ms: 5 * 60_000,
      created_at: at(0),
      first_activity_at: at(0),
      last_activity_at: at(5),
      tool_calls: { pending: 0, running: 0, completed: 2, failed: 1, total: 3 },
      vector_cache_hit_rate: 0.5,
      errors: 1,
      as_of_position: last,
    });
    // s2 was deleted: its failed turn and its 2,000 tokens count nowhere.
    expect(figures.u1).toEqual({
      user_id: 'u1',
      sessions: { active: 1, ended: 0, expired: 0, total: 1 },
      turns: 2,
      turns_failed: 0,
      total_tokens_in: 130,
      total_tokens_out: 65,
      total_tokens_cached: 0,
      total_tokens: 195,
      cost_usd: 0.013,
      last_activity_at: at(5),
      as_of_position: last,
    });
    expect(figures.nobody).toMatchObject({
      sessions: { total: 0 },
      turns: 0,
      total_tokens: 0,
      last_activity_at: null,
    });
    expect(figures.model.rows).toEqual([
      {
        model: 'gpt-4o',
        turns: 2,
        calls: 2,
        total_tokens_in: 120,
        total_tokens_out: 60,
        total_tokens_cached: 0,
        total_tokens: 180,
        cost_usd: 0.012,
        avg_execution_time_ms: 250,
        p95_execution_time_ms: 295,
      },
      {
        model: 'gpt-4o-mini',
        turns: 1,
        calls: 1,
        total_tokens_in: 10,
        total_tokens_out: 5,
        total_tokens_cached: 0,
        total_tokens: 15,
        cost_usd: 0.001,
        avg_execution_time_ms: 100,
        p95_execution_time_ms: 100,
      },
    ]);
    expect(figures.agent.rows.map((r) => [r.agent_name, r.calls])).toEqual([
      ['critic', 1],
      ['planner', 2],
    ]);
    expect(figures.empty.rows).toEqual([]);
    await expect(
      read((sql, asOf) => sessionStats(sql, asOf, { tenantId: tenant, sessionId: 's2' })),
    ).rejects.toThrow(NotFoundError);
    await expect(
      read((sql, asOf) => sessionStats(sql, asOf, { tenantId: tenant, sessionId: 's1', userId: 'u2' })),
    ).rejects.toThrow('Session s1 not found');

    const all = await allFigures(tenant);
    expect(all.global).toMatchObject({
      sessions: { active: 1, ended: 1, expired: 0, total: 2 },
      active_sessions: 1,
      users: 2,
      turns: 2,
      turns_failed: 0,
      total_tokens: 195,
      cost_usd: 0.013,
      events_projected: sessions.length + turns.length,
    });
    expect(
      all.global.by_agent.map((a) => [
        a.agent_name,
        a.calls,
        a.avg_execution_time_ms,
        a.p95_execution_time_ms,
      ]),
    ).toEqual([
      ['critic', 1, 100, 100],
      ['planner', 2, 250, 295],
    ]);
    expect(all.day.rows.map((r) => [r.day, r.model, r.turns, r.calls])).toEqual([
      ['2025-01-01', 'gpt-4o', 2, 2],
      ['2025-01-01', 'gpt-4o-mini', 1, 1],
    ]);
    // The aggregates kept equal their definition over the facts.
    await expectAggregatesOfFacts();
  });

  it('counts a turn once per agent and model when its responses arrive one event at a time', async () => {
    const tenant = newTenant();
    const respond = (agent: string, model: string | null, ms: number) => ({
      type: 'AgentResponded.v1' as const,
      data: {
        turnId: 't1',
        sessionId: 's1',
        agentResponse: response(agent, model, { in: 10, out: 1 }, 0.5, ms),
        respondedAt: at(2),
      },
    });
    const events = [
      ...(await appendSession(store, tenant, 's1', [created('s1', 'u1')])),
      ...(await appendConversation(store, tenant, 's1', [
        {
          type: 'TurnStarted.v1',
          data: {
            turnId: 't1',
            sessionId: 's1',
            userId: 'u1',
            conversationTurn: 1,
            userInput: 'hi',
            vectorCacheHit: false,
            startedAt: at(1),
          },
        },
        respond('planner', 'gpt-4o', 100),
        respond('planner', 'gpt-4o', 300),
        respond('critic', 'gpt-4o', 200),
        respond('critic', null, 200),
      ])),
    ];
    // One transaction per event: each response after the first meets the turn's earlier rows.
    await handleAll(events);
    const g = (await allFigures(tenant)).global;
    expect(g.by_agent.map((a) => [a.agent_name, a.turns, a.calls, a.p95_execution_time_ms])).toEqual([
      ['critic', 1, 2, 200],
      ['planner', 1, 2, 290],
    ]);
    expect(g.by_model.map((m) => [m.model, m.turns, m.calls])).toEqual([
      [null, 1, 1],
      ['gpt-4o', 1, 3],
    ]);
    expect(g).toMatchObject({ turns: 1, cost_usd: 2, total_tokens_in: 40 });
    await expectAggregatesOfFacts();
  });

  it('keeps the aggregates of the facts when a user is erased and a turn deleted', async () => {
    const tenant = newTenant();
    const [sessions, turns] = await appendSmallScenario(tenant);
    await handleAll([...sessions, ...turns]);
    const deleted = await appendConversation(store, tenant, 's1', [
      { type: 'TurnDeleted.v1', data: { turnId: 't2', sessionId: 's1', deletedAt: at(10) } },
    ]);
    await handleAll(deleted);
    const afterTurnDeleted = await allFigures(tenant);
    expect(afterTurnDeleted.global).toMatchObject({ turns: 1, total_tokens: 165 });
    expect(afterTurnDeleted.global.by_agent.map((a) => [a.agent_name, a.turns, a.calls])).toEqual([
      ['critic', 1, 1],
      ['planner', 1, 1],
    ]);
    await expectAggregatesOfFacts();

    const { events: erased } = await store.append(
      userStreamId(tenant, 'u1'),
      USER_CATEGORY,
      'any',
      [
        {
          type: 'UserErased.v1',
          data: {
            userId: 'u1',
            sessionIds: ['s1', 's2'],
            sessions: 2,
            turns: 2,
            events: 9,
            erasedAt: at(11),
          },
        },
      ],
      { metadata: { tenantId: tenant } },
    );
    await handleAll(erased);
    await expectAggregatesOfFacts();
    const g = await read(async (sql, asOf) =>
      globalStats(sql, asOf, {
        tenantId: tenant,
        positionsKey: runner.positionsKey((await runner.liveVersion(sql))?.version ?? null),
        streamTypes: runner.projection.streamTypes,
      }),
    );
    expect(g).toMatchObject({
      sessions: { active: 0, ended: 1, expired: 0, total: 1 },
      users: 1,
      turns: 0,
      total_tokens: 0,
      by_agent: [],
      by_model: [],
    });
  });

  it('gives the same figures when every event is delivered twice, and skips a whole replay', async () => {
    const [once, twice] = [newTenant(), newTenant()];
    const [s1, t1] = await appendSmallScenario(once);
    await handleAll([...s1, ...t1]);
    const [s2, t2] = await appendSmallScenario(twice);
    const outcomes: string[] = [];
    for (const e of [...s2, ...t2]) outcomes.push(await runner.handle(e), await runner.handle(e));
    expect(outcomes).toEqual([...s2, ...t2].flatMap(() => ['applied', 'skipped']));
    expect(await allFigures(twice)).toEqual(await allFigures(once));
    await expectAggregatesOfFacts();
    const before = await read((sql) => dumpUsageStats(sql));
    expect(await handleAll([...s2, ...t2])).toEqual([...s2, ...t2].map(() => 'skipped'));
    expect(await read((sql) => dumpUsageStats(sql))).toEqual(before);
  });

  it('gives the same figures when conversation events arrive before or after the session deletion', async () => {
    const [inOrder, late] = [newTenant(), newTenant()];
    const [s1, t1] = await appendSmallScenario(inOrder);
    await handleAll([...s1, ...t1]);
    const [s2, t2] = await appendSmallScenario(late);
    // Another consumer: every session event (the deletion of s2 included) before any turn.
    await handleAll(s2);
    await handleAll([...t2].reverse()); // and the turns backwards: each stream backfills from the store
    expect(await allFigures(late)).toEqual(await allFigures(inOrder));
    await expectAggregatesOfFacts();
  });

  it('leaves out the facts a conversation commits after its session was deleted', async () => {
    // Commit order: the session, its deletion, then a turn of its conversation (a LogTurn that raced
    // the deletion). The rebuild below replays this tenant in bulk and must leave the turn out too.
    const tenant = newTenant();
    const events = [
      ...(await appendSession(store, tenant, 's1', [created('s1', 'u1')])),
      ...(await appendSession(store, tenant, 's1', [
        { type: 'SessionDeleted.v1', data: { sessionId: 's1', deletedAt: at(2) } },
      ])),
      ...(await appendConversation(store, tenant, 's1', [
        logged('t1', 's1', 'u1', {
          userInput: 'too late',
          agentResponses: [response('planner', 'gpt-4o', { in: 10, out: 5 }, 0.01, 200)],
          toolCalls: [toolCall('c1', 'completed')],
          processingTimeMs: 300,
          startedAt: at(3),
          completedAt: at(4),
        }),
      ])),
    ];
    expect(await handleAll(events)).toEqual(events.map(() => 'applied'));
    const factsOf = (dump: Record<string, unknown[]>) =>
      Object.fromEntries(
        ['stats_turns', 'stats_responses', 'stats_tool_calls'].map((table) => [
          table,
          (dump[table] ?? []).filter((r) => (r as { tenant_id: string }).tenant_id === tenant).length,
        ]),
      );
    const incremental = await read((sql) => dumpUsageStats(sql));
    expect(factsOf(incremental)).toEqual({ stats_turns: 0, stats_responses: 0, stats_tool_calls: 0 });
    await expectAggregatesOfFacts();
    // A bulk replay of one event per batch: the turn's batch finds the tombstone an earlier batch wrote.
    await readAllSettled(store, undefined, 25_000);
    await runner.rebuild({ batchSize: 1 });
    expect(await read((sql) => dumpUsageStats(sql))).toEqual(incremental);
  });

  it('rebuilds a new version equal row for row to the incremental one, answering queries throughout', async () => {
    const tenant = newTenant();
    const dialogs = coffeeDialogs(120);
    await importDialogs(store, tenant, dialogs);
    const events = await readAllSettled(store, undefined, 25_000);
    await handleAll(events);
    const incremental = await read((sql) => dumpUsageStats(sql));
    const figures = await allFigures(tenant, 's-1');
    const versionBefore = (await runner.liveVersion())?.version;
    const positionBefore = await runner.position();
    expect(incremental['stats_turns']?.length).toBeGreaterThan(150);

    // Queries in a loop for the whole rebuild; live events keep coming and are handled meanwhile.
    let rebuilding = true;
    let answered = 0;
    // The first failures, and how many there were (a loop that failed on every query would otherwise
    // hold thousands of diffs).
    const failures: unknown[] = [];
    let failed = 0;
    const queries = (async () => {
      while (rebuilding) {
        try {
          const f = await allFigures(tenant, 's-1');
          expect(f).toEqual(figures);
          answered += 1;
        } catch (error) {
          failed += 1;
          if (failures.length < 3) failures.push(error);
        }
      }
    })();
    const liveTenant = newTenant();
    const live = (async () => {
      const [s, t] = await appendSmallScenario(liveTenant);
      // As the relay does: delivered once below the xmin horizon, which the rebuild's catch-up reads up
      // to (a transaction anywhere on the server that began before the appends holds it back).
      await readAllSettled(store, undefined, 25_000);
      await handleAll([...s, ...t]);
    })();
    const progress: number[] = [];
    let result: Awaited<ReturnType<typeof runner.rebuild>>;
    try {
      result = await runner.rebuild({ batchSize: 250, onProgress: (n) => progress.push(n) });
      await live;
    } finally {
      // Also when the rebuild fails: the query loop must end with the test.
      rebuilding = false;
      await queries;
    }

    expect({ failed, failures }).toEqual({ failed: 0, failures: [] });
    expect(answered).toBeGreaterThan(1);
    expect(progress.length).toBeGreaterThan(2);
    expect(result.version).toBe((versionBefore ?? 0) + 1);
    expect((await runner.liveVersion())?.version).toBe(result.version);
    expect(await runner.position()).toBeGreaterThanOrEqual(positionBefore);
    process.stdout.write(
      `usage_stats rebuild: ${result.events} events in ${result.tookMs.toFixed(0)} ms ` +
        `(${Math.round(result.events / (result.tookMs / 1000))} events/s, batch 250, with queries running)\n`,
    );
    // The old version's schema is gone.
    const schemas = await tdb.db.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'analytics_usage_v%' ORDER BY nspname`,
    );
    expect(schemas.map((s) => s.nspname)).toEqual([`analytics_usage_v${result.version}`]);
    // Its tables were analyzed before queries read them (the planner needs their statistics).
    const unanalyzed = await tdb.db.query<{ relname: string }>(
      `SELECT relname FROM pg_stat_user_tables WHERE schemaname = $1 AND last_analyze IS NULL`,
      [`analytics_usage_v${result.version}`],
    );
    expect(unanalyzed).toEqual([]);

    // Row for row: the imported tenant as the incremental run made it, and the live tenant's events
    // handled during the rebuild were not lost by the switch.
    const onlyTenant = (dump: Record<string, unknown[]>, t: string) =>
      Object.fromEntries(
        Object.entries(dump).map(([k, rows]) => [
          k,
          rows.filter((r) => (r as { tenant_id: string }).tenant_id === t),
        ]),
      );
    const rebuilt = await read((sql) => dumpUsageStats(sql));
    expect(onlyTenant(rebuilt, tenant)).toEqual(onlyTenant(incremental, tenant));
    // Every tenant of the earlier tests too: their deletions, erasures and re-recorded tool calls were
    // replayed in bulk (facts only, lookup indexes created by the first batch that needed them, the
    // aggregates counted at the end) and give the rows incremental handling gave.
    const exceptTenant = (dump: Record<string, unknown[]>, t: string) =>
      Object.fromEntries(
        Object.entries(dump).map(([k, rows]) => [
          k,
          rows.filter((r) => (r as { tenant_id: string }).tenant_id !== t),
        ]),
      );
    // Compared row by row (jest's toEqual of the whole dumps ran out of memory here): the first row
    // that differs, per table, or none.
    const others = exceptTenant(rebuilt, liveTenant);
    const firstDifference = Object.entries(incremental).map(([table, rows]) => {
      const got = others[table] ?? [];
      const at = rows.findIndex((row, i) => !isDeepStrictEqual(row, got[i]));
      return {
        table,
        rows: got.length,
        difference: at < 0 ? null : { incremental: rows[at], rebuilt: got[at] },
      };
    });
    expect(firstDifference).toEqual(
      Object.entries(incremental).map(([table, rows]) => ({ table, rows: rows.length, difference: null })),
    );
    expect(rebuilt['stats_response_cells']?.length).toBeGreaterThan(10);
    await expectAggregatesOfFacts();
    expect(await allFigures(tenant, 's-1')).toEqual(figures);
    const [ls, lt] = [
      await store.readStream(`session:${liveTenant}:s1`),
      await store.readStream(`conversation:${liveTenant}:s1`),
    ];
    expect(await handleAll([...ls, ...lt])).toEqual([...ls, ...lt].map(() => 'skipped'));
    expect((await allFigures(liveTenant)).s1.interactions).toBe(2);

    // And a second rebuild yields the same rows again (replay twice = once).
    await readAllSettled(store, undefined, 25_000);
    await runner.rebuild();
    expect(await read((sql) => dumpUsageStats(sql))).toEqual(rebuilt);
  }, 120_000);

  it('refuses a second rebuild of the same projection while one runs', async () => {
    const first = runner.rebuild({ batchSize: 50 });
    const second = runner.rebuild({ batchSize: 50 });
    const results = await Promise.allSettled([first, second]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(RebuildInProgressError);
  }, 60_000);
});
