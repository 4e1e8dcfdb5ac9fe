import { z } from 'zod';
import type {
  GlobalStatsView,
  SessionStatsView,
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

/**
 * The stats of one session (see `SessionStatsView` for the definitions). Throws SESSION.NOT_FOUND
 * when the session is unknown to the read model, deleted, or not `userId`'s (when given).
 */
export async function sessionStats(
  sql: Sql,
  asOf: number,
  q: { tenantId: string; sessionId: string; userId?: string | undefined },
): Promise<SessionStatsView> {
  const params = [q.tenantId, q.sessionId];
  const [session] = await sql.query(
    `SELECT user_id, status, created_at FROM stats_sessions
     WHERE tenant_id = $1 AND session_id = $2 AND deleted_at IS NULL`,
    params,
  );
  const s = session
    ? z
        .object({
          user_id: z.string().nullable(),
          status: z.enum(['active', 'ended', 'expired']),
          created_at: z.date(),
        })
        .parse(session)
    : undefined;
  if (!s || (q.userId !== undefined && s.user_id !== q.userId)) {
    throw new NotFoundError('SESSION.NOT_FOUND', `Session ${q.sessionId} not found`);
  }
  const [turns] = await sql.query(
    `WITH t AS (
       SELECT t.*, COALESCE(t.processing_time_ms::float8, (
         SELECT sum(r.execution_time_ms)::float8 FROM stats_responses r
         WHERE r.tenant_id = t.tenant_id AND r.turn_id = t.turn_id)) AS response_time_ms
       FROM stats_turns t WHERE t.tenant_id = $1 AND t.session_id = $2)
     SELECT count(*) AS interactions,
       count(*) FILTER (WHERE status = 'completed') AS turns_completed,
       count(*) FILTER (WHERE status = 'failed') AS turns_failed,
       count(*) FILTER (WHERE status = 'in_progress') AS turns_in_progress,
       count(*) FILTER (WHERE vector_cache_hit) AS cache_hits,
       avg(response_time_ms) AS avg_response_time_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95_response_time_ms,
       min(started_at) AS first_turn_at,
       max(GREATEST(started_at, ended_at)) AS last_turn_at
     FROM t`,
    params,
  );
  const t = z
    .object({
      interactions: num,
      turns_completed: num,
      turns_failed: num,
      turns_in_progress: num,
      cache_hits: num,
      avg_response_time_ms: numOrNull,
      p95_response_time_ms: numOrNull,
      first_turn_at: dateOrNull,
      last_turn_at: dateOrNull,
    })
    .parse(turns);
  const [tokens] = await sql.query(
    `SELECT ${TOKEN_SUMS} FROM stats_responses WHERE tenant_id = $1 AND session_id = $2`,
    params,
  );
  const [tools] = await sql.query(
    `SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'completed') AS completed, count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) AS total
     FROM stats_tool_calls WHERE tenant_id = $1 AND session_id = $2`,
    params,
  );
  const toolCalls = z
    .object({ pending: num, running: num, completed: num, failed: num, total: num })
    .parse(tools);
  const first = Math.min(s.created_at.getTime(), t.first_turn_at?.getTime() ?? Infinity);
  const last = Math.max(s.created_at.getTime(), t.last_turn_at?.getTime() ?? -Infinity);
  return {
    session_id: q.sessionId,
    user_id: s.user_id,
    status: s.status,
    interactions: t.interactions,
    turns_completed: t.turns_completed,
    turns_failed: t.turns_failed,
    turns_in_progress: t.turns_in_progress,
    ...TokenSums.parse(tokens),
    avg_response_time_ms: t.avg_response_time_ms,
    p95_response_time_ms: t.p95_response_time_ms,
    duration_ms: last - first,
    created_at: s.created_at.toISOString(),
    first_activity_at: new Date(first).toISOString(),
    last_activity_at: new Date(last).toISOString(),
    tool_calls: toolCalls,
    vector_cache_hit_rate: t.interactions > 0 ? t.cache_hits / t.interactions : null,
    errors: t.turns_failed + toolCalls.failed,
    as_of_position: asOf,
  };
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

/**
 * The tenant's figures. `positionsKey` is the live version's `projection_streams` key (events
 * projected are the sum of the tenant's stream positions there); `streamTypes` the followed types.
 */
export async function globalStats(
  sql: Sql,
  asOf: number,
  q: { tenantId: string; positionsKey: string; streamTypes: readonly string[] },
): Promise<GlobalStatsView> {
  const t = [q.tenantId];
  const [sessions] = await sql.query(
    `SELECT ${STATUS_COUNTS}, count(DISTINCT user_id) AS users FROM stats_sessions
     WHERE tenant_id = $1 AND deleted_at IS NULL`,
    t,
  );
  const s = StatusCounts.extend({ users: num }).parse(sessions);
  const [turns] = await sql.query(
    `SELECT count(*) AS turns, count(*) FILTER (WHERE status = 'failed') AS turns_failed
     FROM stats_turns WHERE tenant_id = $1`,
    t,
  );
  const tt = z.object({ turns: num, turns_failed: num }).parse(turns);
  const [tokens] = await sql.query(`SELECT ${TOKEN_SUMS} FROM stats_responses WHERE tenant_id = $1`, t);
  const byAgent = await sql.query(
    `SELECT agent_name, ${USAGE_FIGURES} FROM stats_responses WHERE tenant_id = $1
     GROUP BY agent_name ORDER BY agent_name`,
    t,
  );
  const byModel = await sql.query(
    `SELECT model, ${USAGE_FIGURES} FROM stats_responses WHERE tenant_id = $1
     GROUP BY model ORDER BY model NULLS FIRST`,
    t,
  );
  const prefixes = q.streamTypes.map((type) => `${type}:${q.tenantId}:`);
  const [projected] = await sql.query(
    `SELECT COALESCE(sum(position), 0) AS n FROM projection_streams
     WHERE projection = $1
       AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS p WHERE left(stream_id, length(p)) = p)`,
    [q.positionsKey, prefixes],
  );
  // The newest event of a followed type: walks the primary key backwards, no scan of the table.
  const [head] = await sql.query(
    `SELECT global_position FROM events WHERE stream_type = ANY($1::text[]) ORDER BY global_position DESC LIMIT 1`,
    [[...q.streamTypes]],
  );
  const headPosition = head ? num.parse(head['global_position']) : 0;
  return {
    sessions: s,
    active_sessions: s.active,
    users: s.users,
    turns: tt.turns,
    turns_failed: tt.turns_failed,
    ...TokenSums.parse(tokens),
    by_agent: byAgent.map((r) => ({
      agent_name: z.string().parse(r['agent_name']),
      ...UsageFiguresRow.parse(r),
    })),
    by_model: byModel.map((r) => ({
      model: z.string().nullable().parse(r['model']),
      ...UsageFiguresRow.parse(r),
    })),
    events_projected: num.parse(projected?.['n'] ?? 0),
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
