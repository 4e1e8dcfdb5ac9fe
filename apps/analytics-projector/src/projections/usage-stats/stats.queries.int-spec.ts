import { EventStore, ProjectionRunner, type Sql } from '@threadline/event-store';
import { createTestDatabase, type TestDatabase } from '@threadline/testing';
import { analyticsMigrations } from '../../migrations';
import { analyticsEventRegistry } from '../projections';
import {
  globalStats,
  percentileCont,
  sessionStats,
  sessionStatsOfVersion,
  type VersionTarget,
} from './stats.queries';
import { RECOUNT_AGGREGATES, UsageStatsProjection } from './usage-stats.projection';

// The queries against their definitions: facts written straight into the live version's tables
// (pseudo-random, `setseed`: the same rows every run) with their aggregates recounted from them, figures
// compared with the plain aggregates that define them (count(DISTINCT), avg, percentile_cont over the facts).

let tdb: TestDatabase;
let runner: ProjectionRunner;
let live: VersionTarget;

const read = <T>(fn: (sql: Sql, asOf: number) => Promise<T>): Promise<T> => runner.read(fn);

/** Sessions of two tenants with turns, responses (several per agent per turn, null models and times) and tool calls. */
async function insertFacts(sql: Sql): Promise<void> {
  await sql.query(`SELECT setseed(0.3)`);
  await sql.query(
    `INSERT INTO stats_sessions
     SELECT t, 's' || n, CASE WHEN n % 7 = 0 THEN NULL ELSE 'u' || (n % 13) END,
            (ARRAY['active', 'ended', 'expired'])[1 + n % 3], timestamptz '2026-01-01' + n * interval '1 hour',
            NULL, CASE WHEN n % 11 = 0 THEN timestamptz '2026-02-01' END
     FROM generate_series(1, 120) n, (VALUES ('t1'), ('t2')) v(t)`,
  );
  await sql.query(
    `INSERT INTO stats_turns
     SELECT row_number() OVER (), s.tenant_id, s.session_id || '-t' || k, s.session_id, s.user_id,
            (ARRAY['in_progress', 'completed', 'failed'])[1 + (k + length(s.session_id)) % 3], random() < 0.3,
            CASE WHEN random() < 0.5 THEN floor(random() * 900)::int END,
            s.created_at + k * interval '1 minute',
            CASE WHEN random() < 0.7 THEN s.created_at + k * interval '1 minute' + interval '5 seconds' END
     FROM stats_sessions s, generate_series(1, 1 + abs(hashtext(s.session_id)) % 9) k`,
  );
  await sql.query(
    `INSERT INTO stats_responses
     SELECT t.global_position * 10 + p, i, t.tenant_id, t.turn_id, t.session_id, t.user_id,
            (ARRAY['a1', 'a2', 'a3', 'B'])[1 + floor(random() * 4)::int],
            (ARRAY['m1', 'm2', NULL])[1 + floor(random() * 3)::int], t.started_at + i * interval '1 second',
            floor(random() * 1000)::bigint, floor(random() * 300)::bigint, floor(random() * 50)::bigint,
            floor(random() * 1400)::bigint, round((random() / 100)::numeric, 7),
            CASE WHEN random() < 0.85 THEN floor(random() * 97)::int * 7 END
     FROM stats_turns t, generate_series(1, 1 + abs(hashtext(t.turn_id)) % 3) p,
          generate_series(0, abs(hashtext(t.turn_id || 'x')) % 3) i`,
  );
  await sql.query(
    `INSERT INTO stats_tool_calls
     SELECT t.global_position, k, t.tenant_id, t.turn_id, 'tc' || k, t.session_id, 'tool',
            (ARRAY['pending', 'running', 'completed', 'failed'])[1 + floor(random() * 4)::int]
     FROM stats_turns t, generate_series(1, abs(hashtext(t.turn_id)) % 3) k`,
  );
  for (const step of RECOUNT_AGGREGATES) await step(sql);
}

beforeAll(async () => {
  tdb = await createTestDatabase(analyticsMigrations);
  runner = new ProjectionRunner(
    tdb.db,
    new EventStore(tdb.db),
    analyticsEventRegistry(),
    new UsageStatsProjection(),
  );
  await runner.ensureLive();
  const version = await runner.liveVersion();
  if (!version) throw new Error('no live version');
  live = {
    projection: runner.projection.name,
    version: version.version,
    schema: version.schema,
    checkpoint: runner.checkpointOf(version.version),
  };
  await tdb.db.transaction(async (sql) => {
    await sql.query(`SELECT set_config('search_path', $1 || ', public', true)`, [live.schema]);
    await insertFacts(sql);
  });
});

afterAll(async () => {
  await tdb?.drop();
});

const FIGURES = `count(DISTINCT turn_id) AS turns, count(*) AS calls,
  COALESCE(sum(input_tokens), 0) AS total_tokens_in, COALESCE(sum(output_tokens), 0) AS total_tokens_out,
  COALESCE(sum(cached_tokens), 0) AS total_tokens_cached, COALESCE(sum(total_tokens), 0) AS total_tokens,
  COALESCE(sum(cost_usd), 0) AS cost_usd, avg(execution_time_ms)::float8 AS avg_execution_time_ms,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95_execution_time_ms`;

/** Numeric columns as numbers, as the answers carry them. */
const numbers = (rows: Record<string, unknown>[]) =>
  rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        typeof v === 'string' && k !== 'agent_name' && k !== 'model' ? Number(v) : v,
      ]),
    ),
  );

describe('usage_stats queries', () => {
  it.each(['t1', 't2', 'nobody'])(
    "globalStats of tenant %s: the response figures are the plain aggregates' (distinct turns, avg, exact p95)",
    async (tenantId) => {
      const [answer, byAgent, byModel, totals] = await read(async (sql, asOf) => [
        await globalStats(sql, asOf, {
          tenantId,
          positionsKey: runner.positionsKey(live.version),
          streamTypes: runner.projection.streamTypes,
        }),
        numbers(
          await sql.query(
            `SELECT agent_name, ${FIGURES} FROM stats_responses WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`,
            [tenantId],
          ),
        ),
        numbers(
          await sql.query(
            `SELECT model, ${FIGURES} FROM stats_responses WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1 NULLS FIRST`,
            [tenantId],
          ),
        ),
        numbers(
          await sql.query(
            `SELECT count(*) FILTER (WHERE status = 'active') AS active, count(*) AS total,
               count(DISTINCT user_id) AS users,
               (SELECT count(*) FROM stats_turns WHERE tenant_id = $1) AS turns,
               (SELECT COALESCE(sum(cost_usd), 0) FROM stats_responses WHERE tenant_id = $1) AS cost_usd
             FROM stats_sessions WHERE tenant_id = $1 AND deleted_at IS NULL`,
            [tenantId],
          ),
        ),
      ]);
      expect(answer.by_agent).toEqual(byAgent);
      expect(answer.by_model).toEqual(byModel);
      expect(totals[0]).toEqual({
        active: answer.sessions.active,
        total: answer.sessions.total,
        users: answer.users,
        turns: answer.turns,
        cost_usd: answer.cost_usd,
      });
      if (tenantId !== 'nobody') {
        expect(answer.by_agent.map((a) => a.agent_name)).toEqual(['B', 'a1', 'a2', 'a3']);
        expect(answer.by_model.map((m) => m.model)).toEqual([null, 'm1', 'm2']);
        // Several responses of one agent in a turn: distinct turns, not calls.
        expect(answer.by_agent.some((a) => a.turns < a.calls)).toBe(true);
      }
    },
  );

  it('sessionStatsOfVersion answers what sessionStats answers in the runner, in one statement', async () => {
    const sessions = await tdb.db.query<{ tenant_id: string; session_id: string; user_id: string | null }>(
      `SELECT tenant_id, session_id, user_id FROM ${live.schema}.stats_sessions ORDER BY 1, 2`,
    );
    const outcome = async (fn: () => Promise<unknown>) => {
      try {
        return await fn();
      } catch (error) {
        return { thrown: (error as { code?: unknown }).code };
      }
    };
    for (const s of sessions) {
      for (const userId of [undefined, s.user_id ?? 'someone', 'another-user']) {
        const q = { tenantId: s.tenant_id, sessionId: s.session_id, ...(userId ? { userId } : {}) };
        const expected = await outcome(() => read((sql, asOf) => sessionStats(sql, asOf, q)));
        expect(await outcome(() => sessionStatsOfVersion(tdb.db, live, q))).toEqual(expected);
      }
    }
    const unknown = { tenantId: 't1', sessionId: 'unknown' };
    expect(await outcome(() => sessionStatsOfVersion(tdb.db, live, unknown))).toEqual({
      thrown: 'SESSION.NOT_FOUND',
    });
  });

  it('sessionStatsOfVersion answers null for a version that is not live', async () => {
    const q = { tenantId: 't1', sessionId: 's1' };
    expect(await sessionStatsOfVersion(tdb.db, { ...live, version: live.version + 1 }, q)).toBeNull();
  });

  it('percentileCont is percentile_cont over the expanded values', async () => {
    const cases: { value: number | null; count: number }[][] = [
      [],
      [{ value: null, count: 3 }],
      [{ value: 5, count: 1 }],
      [
        { value: 10, count: 19 },
        { value: 20, count: 1 },
      ],
      [
        { value: 7, count: 3 },
        { value: 1, count: 2 },
        { value: null, count: 4 },
        { value: 1000, count: 1 },
        { value: 7, count: 2 },
      ],
      Array.from({ length: 40 }, (_, i) => ({ value: (i * 37) % 101, count: 1 + ((i * 13) % 7) })),
    ];
    for (const cells of cases) {
      const values = cells.flatMap((c) => Array.from({ length: c.count }, () => c.value));
      const [row] = await tdb.db.query<{ p: number | null }>(
        `SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS p FROM unnest($1::int[]) AS v`,
        [values],
      );
      expect(percentileCont(0.95, cells)).toBe(row?.p ?? null);
    }
  });
});
