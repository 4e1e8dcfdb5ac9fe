import { z } from 'zod';
import type {
  GlobalStatsView,
  SessionStatsView,
  UsageFigures,
  UsageGroupBy,
  UsageRow,
  UsageStatsView,
  UserStatsView,
} from '@threadline/contracts';
import { NotFoundError } from '@threadline/platform';
import type { Sql } from '@threadline/event-store';

// Every query here runs inside `ProjectionRunner.read`: search_path is the live version's schema, and
// one REPEATABLE READ snapshot covers all statements of one answer and its as_of_position.

const num = z.coerce.number();
const numOrNull = z.coerce.number().nullable();
const dateOrNull = z.date().nullable();

const TOKEN_SUMS = `
  COALESCE(sum(input_tokens), 0) AS total_tokens_in, COALESCE(sum(output_tokens), 0) AS total_tokens_out,
  COALESCE(sum(cached_tokens), 0) AS total_tokens_cached, COALESCE(sum(total_tokens), 0) AS total_tokens,
  COALESCE(sum(cost_usd), 0) AS cost_usd`;
const TokenSums = z.object({
  total_tokens_in: num,
  total_tokens_out: num,
  total_tokens_cached: num,
  total_tokens: num,
  cost_usd: num,
});

const STATUS_COUNTS = `
  count(*) FILTER (WHERE status = 'active') AS active, count(*) FILTER (WHERE status = 'ended') AS ended,
  count(*) FILTER (WHERE status = 'expired') AS expired, count(*) AS total`;
const StatusCounts = z.object({ active: num, ended: num, expired: num, total: num });

const USAGE_FIGURES = `
  count(DISTINCT turn_id) AS turns, count(*) AS calls, ${TOKEN_SUMS},
  avg(execution_time_ms)::float8 AS avg_execution_time_ms,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95_execution_time_ms`;
const UsageFiguresRow = TokenSums.extend({
  turns: num,
  calls: num,
  avg_execution_time_ms: numOrNull,
  p95_execution_time_ms: numOrNull,
});

const SessionStatsRow = z.object({
  user_id: z.string().nullable(),
  status: z.enum(['active', 'ended', 'expired']),
  created_at: z.date(),
  deleted_at: dateOrNull,
  interactions: num,
  turns_completed: num,
  turns_failed: num,
  turns_in_progress: num,
  cache_hits: num,
  avg_response_time_ms: numOrNull,
  p95_response_time_ms: numOrNull,
  first_turn_at: dateOrNull,
  last_turn_at: dateOrNull,
  ...TokenSums.shape,
  tools_pending: num,
  tools_running: num,
  tools_completed: num,
  tools_failed: num,
  tools_total: num,
});

/**
 * The session row and its three aggregates in one statement (`$1` tenant, `$2` session), over the
 * tables of `schema` (qualified names) or of the search_path (null). The session row is found by its
 * primary key alone (`deleted_at` is checked on the row, not in the scan): a condition on `deleted_at`
 * would also match the partial index `stats_sessions_user`, which a planner without statistics (a
 * version just rebuilt) picks, scanning the whole tenant.
 */
function sessionStatsSql(schema: string | null): string {
  const t = (table: string) => (schema === null ? table : `${schema}.${table}`);
  return `
  SELECT s.user_id, s.status, s.created_at, s.deleted_at, t.*, r.*, c.*
  FROM ${t('stats_sessions')} s
  CROSS JOIN LATERAL (
    SELECT count(*) AS interactions,
      count(*) FILTER (WHERE status = 'completed') AS turns_completed,
      count(*) FILTER (WHERE status = 'failed') AS turns_failed,
      count(*) FILTER (WHERE status = 'in_progress') AS turns_in_progress,
      count(*) FILTER (WHERE vector_cache_hit) AS cache_hits,
      avg(response_time_ms) AS avg_response_time_ms,
      percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95_response_time_ms,
      min(started_at) AS first_turn_at,
      max(GREATEST(started_at, ended_at)) AS last_turn_at
    FROM (
      SELECT t.status, t.vector_cache_hit, t.started_at, t.ended_at,
        COALESCE(t.processing_time_ms::float8, x.execution_time_ms) AS response_time_ms
      FROM ${t('stats_turns')} t
      LEFT JOIN (
        SELECT turn_id, sum(execution_time_ms)::float8 AS execution_time_ms FROM ${t('stats_responses')}
        WHERE tenant_id = s.tenant_id AND session_id = s.session_id GROUP BY turn_id) x ON x.turn_id = t.turn_id
      WHERE t.tenant_id = s.tenant_id AND t.session_id = s.session_id) turn) t
  CROSS JOIN LATERAL (
    SELECT ${TOKEN_SUMS} FROM ${t('stats_responses')}
    WHERE tenant_id = s.tenant_id AND session_id = s.session_id) r
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE status = 'pending') AS tools_pending,
      count(*) FILTER (WHERE status = 'running') AS tools_running,
      count(*) FILTER (WHERE status = 'completed') AS tools_completed,
      count(*) FILTER (WHERE status = 'failed') AS tools_failed,
      count(*) AS tools_total
    FROM ${t('stats_tool_calls')} WHERE tenant_id = s.tenant_id AND session_id = s.session_id) c
  WHERE s.tenant_id = $1 AND s.session_id = $2`;
}

const SESSION_STATS_SQL = sessionStatsSql(null);

/** The view of a row of {@link sessionStatsSql} (undefined: no such session). Throws SESSION.NOT_FOUND. */
function toSessionStats(
  row: unknown,
  asOf: number,
  q: { sessionId: string; userId?: string | undefined },
): SessionStatsView {
  const s = row === undefined ? undefined : SessionStatsRow.parse(row);
  if (!s || s.deleted_at !== null || (q.userId !== undefined && s.user_id !== q.userId)) {
    throw new NotFoundError('SESSION.NOT_FOUND', `Session ${q.sessionId} not found`);
  }
  const toolCalls = {
    pending: s.tools_pending,
    running: s.tools_running,
    completed: s.tools_completed,
    failed: s.tools_failed,
    total: s.tools_total,
  };
  const first = Math.min(s.created_at.getTime(), s.first_turn_at?.getTime() ?? Infinity);
  const last = Math.max(s.created_at.getTime(), s.last_turn_at?.getTime() ?? -Infinity);
  return {
    session_id: q.sessionId,
    user_id: s.user_id,
    status: s.status,
    interactions: s.interactions,
    turns_completed: s.turns_completed,
    turns_failed: s.turns_failed,
    turns_in_progress: s.turns_in_progress,
    total_tokens_in: s.total_tokens_in,
    total_tokens_out: s.total_tokens_out,
    total_tokens_cached: s.total_tokens_cached,
    total_tokens: s.total_tokens,
    cost_usd: s.cost_usd,
    avg_response_time_ms: s.avg_response_time_ms,
    p95_response_time_ms: s.p95_response_time_ms,
    duration_ms: last - first,
    created_at: s.created_at.toISOString(),
    first_activity_at: new Date(first).toISOString(),
    last_activity_at: new Date(last).toISOString(),
    tool_calls: toolCalls,
    vector_cache_hit_rate: s.interactions > 0 ? s.cache_hits / s.interactions : null,
    errors: s.turns_failed + toolCalls.failed,
    as_of_position: asOf,
  };
}

/**
 * The stats of one session (see `SessionStatsView` for the definitions), in one statement over the
 * search_path's version (inside `ProjectionRunner.read`). Throws SESSION.NOT_FOUND when the session is
 * unknown to the read model, deleted, or not `userId`'s (when given).
 */
export async function sessionStats(
  sql: Sql,
  asOf: number,
  q: { tenantId: string; sessionId: string; userId?: string | undefined },
): Promise<SessionStatsView> {
  const [row] = await sql.query(SESSION_STATS_SQL, [q.tenantId, q.sessionId]);
  return toSessionStats(row, asOf, q);
}

/**
 * A version of a versioned projection as a one-statement read names it: `projection` and `version` (its
 * `projection_versions` row), `schema` (its tables) and `checkpoint` (its `checkpoints` name, the
 * `as_of_position`). See `ProjectionRunner.liveVersion` and `checkpointOf`.
 */
export interface VersionTarget {
  projection: string;
  version: number;
  schema: string;
  checkpoint: string;
}

const LiveHead = z.object({ live: z.boolean(), as_of: num });
const sessionStatsTexts = new Map<string, string>();

/**
 * {@link sessionStats} of version `target` in ONE statement and no transaction (one round trip instead
 * of the six of `ProjectionRunner.read`): the statement also reads the version's checkpoint (the
 * `as_of_position`) and whether its pointer row still says `live`, all in its one snapshot. Resolves to
 * null when `target` is no longer the live version (a rebuild switched: read the live version again
 * and retry); rejects with Postgres's 42P01 / 3F000 when its tables are already dropped. Throws
 * SESSION.NOT_FOUND as {@link sessionStats}.
 */
export async function sessionStatsOfVersion(
  sql: Sql,
  target: VersionTarget,
  q: { tenantId: string; sessionId: string; userId?: string | undefined },
): Promise<SessionStatsView | null> {
  let text = sessionStatsTexts.get(target.schema);
  if (text === undefined) {
    // Written into the SQL: only names as ProjectionRunner makes them (`<prefix>_v<n>`).
    if (!/^[a-z][a-z0-9_]*$/.test(target.schema)) throw new Error(`Invalid schema name ${target.schema}`);
    text = `SELECT v.live, v.as_of, st.*
     FROM (SELECT EXISTS (SELECT 1 FROM public.projection_versions
                          WHERE projection = $3 AND version = $4 AND status = 'live') AS live,
                  COALESCE((SELECT global_position FROM public.checkpoints WHERE name = $5), 0) AS as_of) v
     LEFT JOIN (${sessionStatsSql(target.schema)}) st ON v.live`;
    sessionStatsTexts.set(target.schema, text);
  }
  const [row] = await sql.query(text, [
    q.tenantId,
    q.sessionId,
    target.projection,
    target.version,
    target.checkpoint,
  ]);
  const head = LiveHead.parse(row);
  if (!head.live) return null;
  return toSessionStats(row?.['created_at'] === null ? undefined : row, head.as_of, q);
}

/** The figures of one user (zeros for a user without sessions). */
export async function userStats(
  sql: Sql,
  asOf: number,
  q: { tenantId: string; userId: string },
): Promise<UserStatsView> {
  const params = [q.tenantId, q.userId];
  const [sessions] = await sql.query(
    `SELECT ${STATUS_COUNTS}, max(created_at) AS last_created_at FROM stats_sessions
     WHERE tenant_id = $1 AND user_id = $2 AND deleted_at IS NULL`,
    params,
  );
  const s = StatusCounts.extend({ last_created_at: dateOrNull }).parse(sessions);
  const [turns] = await sql.query(
    `SELECT count(*) AS turns, count(*) FILTER (WHERE status = 'failed') AS turns_failed,
       max(GREATEST(started_at, ended_at)) AS last_turn_at
     FROM stats_turns WHERE tenant_id = $1 AND user_id = $2`,
    params,
  );
  const t = z.object({ turns: num, turns_failed: num, last_turn_at: dateOrNull }).parse(turns);
  const [tokens] = await sql.query(
    `SELECT ${TOKEN_SUMS} FROM stats_responses WHERE tenant_id = $1 AND user_id = $2`,
    params,
  );
  const lastMs = Math.max(s.last_created_at?.getTime() ?? -Infinity, t.last_turn_at?.getTime() ?? -Infinity);
  return {
    user_id: q.userId,
    sessions: { active: s.active, ended: s.ended, expired: s.expired, total: s.total },
    turns: t.turns,
    turns_failed: t.turns_failed,
    ...TokenSums.parse(tokens),
    last_activity_at: Number.isFinite(lastMs) ? new Date(lastMs).toISOString() : null,
    as_of_position: asOf,
  };
}

const GlobalCounts = StatusCounts.extend({ users: num, turns: num, turns_failed: num });

/**
 * Every figure of the tenant's agent responses (`$1` tenant) from the aggregates the projection keeps:
 * the (agent, model, execution time) cells with their calls and sums (`kind = 'cell'`, for the p95, see
 * {@link percentileCont}), and their roll-ups by agent, by model and over all (`kind`), with `avg` as
 * Postgres's `avg(integer)` computes it over the responses (numeric sum / count, then float8) and the
 * distinct turns of each agent and model (`stats_agent_turns`, `stats_model_turns`). Reads O(cells) rows.
 * Cells whose calls fell to zero (their responses were deleted) count as absent.
 */
const RESPONSE_FIGURES_SQL = `
  WITH cells AS (
    SELECT agent_name, model, execution_time_ms, calls, input_tokens, output_tokens, cached_tokens, total_tokens,
      cost_usd
    FROM stats_response_cells WHERE tenant_id = $1 AND calls > 0),
  rollups AS (
    SELECT GROUPING(agent_name) AS by_all_agents, GROUPING(model) AS by_all_models, agent_name, model,
      sum(calls) AS calls,
      COALESCE(sum(input_tokens), 0) AS total_tokens_in, COALESCE(sum(output_tokens), 0) AS total_tokens_out,
      COALESCE(sum(cached_tokens), 0) AS total_tokens_cached, COALESCE(sum(total_tokens), 0) AS total_tokens,
      COALESCE(sum(cost_usd), 0) AS cost_usd,
      (sum(execution_time_ms::bigint * calls)::numeric
        / NULLIF(sum(calls) FILTER (WHERE execution_time_ms IS NOT NULL), 0))::float8 AS avg_execution_time_ms
    FROM cells
    GROUP BY GROUPING SETS ((agent_name), (model), ()))
  SELECT 'cell' AS kind, agent_name, model, execution_time_ms, calls,
    NULL::numeric AS turns_of_agent, NULL::numeric AS turns_of_model,
    NULL::numeric AS total_tokens_in, NULL::numeric AS total_tokens_out, NULL::numeric AS total_tokens_cached,
    NULL::numeric AS total_tokens, NULL::numeric AS cost_usd, NULL::float8 AS avg_execution_time_ms
  FROM cells
  UNION ALL
  SELECT CASE WHEN by_all_agents = 0 THEN 'agent' WHEN by_all_models = 0 THEN 'model' ELSE 'all' END,
    agent_name, model, NULL, calls,
    CASE WHEN by_all_agents = 0 THEN (SELECT a.turns FROM stats_agent_turns a
      WHERE a.tenant_id = $1 AND a.agent_name = r.agent_name) END,
    CASE WHEN by_all_agents = 1 AND by_all_models = 0 THEN (SELECT m.turns FROM stats_model_turns m
      WHERE m.tenant_id = $1 AND m.model IS NOT DISTINCT FROM r.model) END,
    total_tokens_in, total_tokens_out, total_tokens_cached, total_tokens, cost_usd, avg_execution_time_ms
  FROM rollups r
  ORDER BY kind, agent_name, model NULLS FIRST`;

const ResponseFiguresRow = z.object({
  kind: z.enum(['cell', 'agent', 'model', 'all']),
  agent_name: z.string().nullable(),
  model: z.string().nullable(),
  execution_time_ms: z.number().int().nullable(),
  calls: num,
  turns_of_agent: numOrNull,
  turns_of_model: numOrNull,
  total_tokens_in: numOrNull,
  total_tokens_out: numOrNull,
  total_tokens_cached: numOrNull,
  total_tokens: numOrNull,
  cost_usd: numOrNull,
  avg_execution_time_ms: numOrNull,
});
type ResponseFiguresRow = z.infer<typeof ResponseFiguresRow>;

/**
 * `percentile_cont(fraction) WITHIN GROUP (ORDER BY value)` over the values of `cells` (value, count;
 * null values ignored), with Postgres's own arithmetic (orderedsetaggs.c, float8): the rows at
 * `floor` and `ceil` of `fraction * (n - 1)` (0-based, ascending), interpolated linearly. Null when
 * there is no value.
 */
export function percentileCont(
  fraction: number,
  cells: readonly { value: number | null; count: number }[],
): number | null {
  const sorted = cells
    .filter((c): c is { value: number; count: number } => c.value !== null && c.count > 0)
    .sort((a, b) => a.value - b.value);
  const n = sorted.reduce((sum, c) => sum + c.count, 0);
  if (n === 0) return null;
  const position = fraction * (n - 1);
  const firstRow = Math.floor(position);
  const secondRow = Math.ceil(position);
  const valueAt = (row: number): number => {
    let seen = 0;
    for (const c of sorted) {
      seen += c.count;
      if (row < seen) return c.value;
    }
    throw new Error(`percentileCont: row ${row} of ${n}`);
  };
  const first = valueAt(firstRow);
  if (secondRow === firstRow) return first;
  return first + (valueAt(secondRow) - first) * (position - firstRow);
}

function usageFiguresOf(
  rollup: ResponseFiguresRow,
  turns: number | null,
  cells: readonly ResponseFiguresRow[],
): UsageFigures {
  return {
    turns: turns ?? 0,
    calls: rollup.calls,
    total_tokens_in: rollup.total_tokens_in ?? 0,
    total_tokens_out: rollup.total_tokens_out ?? 0,
    total_tokens_cached: rollup.total_tokens_cached ?? 0,
    total_tokens: rollup.total_tokens ?? 0,
    cost_usd: rollup.cost_usd ?? 0,
    avg_execution_time_ms: rollup.avg_execution_time_ms,
    p95_execution_time_ms: percentileCont(
      0.95,
      cells.map((c) => ({ value: c.execution_time_ms, count: c.calls })),
    ),
  };
}

/**
 * The tenant's figures. `positionsKey` is the live version's `projection_streams` key (events
 * projected are the sum of the tenant's stream positions there); `streamTypes` the followed types.
 * Reads the aggregates the projection keeps (O(cells): statuses x users, agents x models x execution
 * times), never the facts: the same answer as the plain aggregates over the facts (count(DISTINCT),
 * avg, percentile_cont), in milliseconds at a million turns.
 */
export async function globalStats(
  sql: Sql,
  asOf: number,
  q: { tenantId: string; positionsKey: string; streamTypes: readonly string[] },
): Promise<GlobalStatsView> {
  const t = [q.tenantId];
  const [counts] = await sql.query(
    `SELECT s.*, t.* FROM
       (SELECT COALESCE(sum(sessions) FILTER (WHERE status = 'active'), 0) AS active,
          COALESCE(sum(sessions) FILTER (WHERE status = 'ended'), 0) AS ended,
          COALESCE(sum(sessions) FILTER (WHERE status = 'expired'), 0) AS expired,
          COALESCE(sum(sessions), 0) AS total,
          count(DISTINCT user_id) FILTER (WHERE sessions > 0) AS users
        FROM stats_session_counts WHERE tenant_id = $1) s,
       (SELECT COALESCE(sum(turns), 0) AS turns,
          COALESCE(sum(turns) FILTER (WHERE status = 'failed'), 0) AS turns_failed
        FROM stats_turn_counts WHERE tenant_id = $1) t`,
    t,
  );
  const c = GlobalCounts.parse(counts);
  const figures = (await sql.query(RESPONSE_FIGURES_SQL, t)).map((r) => ResponseFiguresRow.parse(r));
  const cells = figures.filter((r) => r.kind === 'cell');
  const all = figures.find((r) => r.kind === 'all');
  const prefixes = q.streamTypes.map((type) => `${type}:${q.tenantId}:`);
  // The newest event of a followed type walks the primary key backwards, no scan of the table.
  const [positions] = await sql.query(
    `SELECT (SELECT COALESCE(sum(position), 0) FROM projection_streams
             WHERE projection = $1
               AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS p WHERE left(stream_id, length(p)) = p)) AS projected,
            (SELECT global_position FROM events WHERE stream_type = ANY($3::text[])
             ORDER BY global_position DESC LIMIT 1) AS head`,
    [q.positionsKey, prefixes, [...q.streamTypes]],
  );
  const p = z.object({ projected: num, head: numOrNull }).parse(positions);
  const headPosition = p.head ?? 0;
  return {
    sessions: { active: c.active, ended: c.ended, expired: c.expired, total: c.total },
    active_sessions: c.active,
    users: c.users,
    turns: c.turns,
    turns_failed: c.turns_failed,
    total_tokens_in: all?.total_tokens_in ?? 0,
    total_tokens_out: all?.total_tokens_out ?? 0,
    total_tokens_cached: all?.total_tokens_cached ?? 0,
    total_tokens: all?.total_tokens ?? 0,
    cost_usd: all?.cost_usd ?? 0,
    by_agent: figures
      .filter((r) => r.kind === 'agent')
      .map((r) => ({
        agent_name: z.string().parse(r.agent_name),
        ...usageFiguresOf(
          r,
          r.turns_of_agent,
          cells.filter((x) => x.agent_name === r.agent_name),
        ),
      })),
    by_model: figures
      .filter((r) => r.kind === 'model')
      .map((r) => ({
        model: r.model,
        ...usageFiguresOf(
          r,
          r.turns_of_model,
          cells.filter((x) => x.model === r.model),
        ),
      })),
    events_projected: p.projected,
    head_position: headPosition,
    projection_lag: Math.max(0, headPosition - asOf),
    as_of_position: asOf,
  };
}

const GROUPS: Record<UsageGroupBy, { select: string; groupBy: string; orderBy: string }> = {
  day: {
    select: `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, model`,
    groupBy: '1, 2',
    orderBy: '1, 2 NULLS FIRST',
  },
  model: { select: 'model', groupBy: '1', orderBy: '1 NULLS FIRST' },
  agent: { select: 'agent_name', groupBy: '1', orderBy: '1' },
};

/** Usage over `[from, to)` grouped by day and model, by model, or by agent. */
export async function usageStats(
  sql: Sql,
  asOf: number,
  q: { tenantId: string; from: string; to: string; groupBy: UsageGroupBy; userId?: string | undefined },
): Promise<UsageStatsView> {
  const g = GROUPS[q.groupBy];
  const rows = await sql.query(
    `SELECT ${g.select}, ${USAGE_FIGURES} FROM stats_responses
     WHERE tenant_id = $1 AND at >= $2 AND at < $3 AND ($4::text IS NULL OR user_id = $4)
     GROUP BY ${g.groupBy} ORDER BY ${g.orderBy}`,
    [q.tenantId, q.from, q.to, q.userId ?? null],
  );
  return {
    from: q.from,
    to: q.to,
    group_by: q.groupBy,
    rows: rows.map((r): UsageRow => {
      const figures = UsageFiguresRow.parse(r);
      switch (q.groupBy) {
        case 'day':
          return {
            day: z.string().parse(r['day']),
            model: z.string().nullable().parse(r['model']),
            ...figures,
          };
        case 'model':
          return { model: z.string().nullable().parse(r['model']), ...figures };
        case 'agent':
          return { agent_name: z.string().parse(r['agent_name']), ...figures };
        default: {
          const unreachable: never = q.groupBy;
          return unreachable;
        }
      }
    }),
    as_of_position: asOf,
  };
}
