import { z } from 'zod';
import { IsoDate, SessionId, TenantId, UserId } from '../common';
import { defineQuery } from '../define-message';
import { ConversationEvents } from '../conversation/conversation.events';
import { SessionEvents } from '../session/session.events';
import { SessionStatus } from '../session/session.views';
import { UserErasedV1 } from '../user/user.events';

/** Category of the analytics queries: subjects `<prefix>.qry.analytics.<Name>`. */
export const ANALYTICS_CATEGORY = 'analytics';

/**
 * Every event definition the usage statistics are computed from (session, conversation and user
 * streams): the analytics-projector's usage_stats projection reads these, and so does the bench's
 * measure of what reading them costs.
 */
export const UsageStatsEvents = [...SessionEvents, ...ConversationEvents, UserErasedV1] as const;

const Count = z.number().int().min(0);
const Usd = z.number().min(0).describe('USD');
const Ms = z.number().min(0).describe('Milliseconds');

/** Sessions by status (deleted sessions are not counted anywhere). */
export const SessionStatusCounts = z.object({
  active: Count,
  ended: Count,
  expired: Count,
  total: Count,
});
export type SessionStatusCounts = z.infer<typeof SessionStatusCounts>;

/** Token totals, in tokens. `total_tokens` is the sum of the responses' reported or estimated totals. */
export const TokenTotals = z.object({
  total_tokens_in: Count,
  total_tokens_out: Count,
  total_tokens_cached: Count,
  total_tokens: Count,
});

/** Tool calls by their latest status. */
export const ToolCallCounts = z.object({
  pending: Count,
  running: Count,
  completed: Count,
  failed: Count,
  total: Count,
});

/** Every stats answer says how far the projection had got: the highest global position applied. */
const AsOf = {
  as_of_position: z
    .number()
    .int()
    .min(0)
    .describe('Highest global event position the analytics projection had applied for this answer'),
};

/**
 * `GET /sessions/{session_id}/stats` (seed 002's session summary plus cost and the rest).
 *
 * - `interactions`: turns in the session (in progress, completed and failed; deleted turns not counted).
 * - `avg_response_time_ms` / `p95_response_time_ms`: over the turns that have a response time: the
 *   turn's `processing_time_ms`, else the sum of its agents' `execution_time_ms`. p95 is exact
 *   (Postgres `percentile_cont(0.95)`, linear interpolation). null when no turn has one.
 * - `duration_ms`: from the first activity (session creation or earliest turn start) to the last
 *   (latest turn start or end), ms.
 * - `vector_cache_hit_rate`: turns with a vector cache hit / turns; null without turns.
 * - `errors`: failed turns plus failed tool calls.
 */
export const SessionStatsView = z.object({
  session_id: SessionId,
  user_id: UserId.nullable(),
  status: SessionStatus,
  interactions: Count,
  turns_completed: Count,
  turns_failed: Count,
  turns_in_progress: Count,
  ...TokenTotals.shape,
  cost_usd: Usd,
  avg_response_time_ms: Ms.nullable(),
  p95_response_time_ms: Ms.nullable(),
  duration_ms: Ms,
  created_at: IsoDate,
  first_activity_at: IsoDate,
  last_activity_at: IsoDate,
  tool_calls: ToolCallCounts,
  vector_cache_hit_rate: z.number().min(0).max(1).nullable(),
  errors: Count,
  ...AsOf,
});
export type SessionStatsView = z.infer<typeof SessionStatsView>;

/**
 * `GET /users/{user_id}/stats`: the user's sessions by status, and over their non-deleted sessions:
 * turns, tokens, cost (USD) and the last activity (latest turn start or end, or session creation;
 * null when the user has no session). A user with no session has zeros (users are not registered).
 */
export const UserStatsView = z.object({
  user_id: UserId,
  sessions: SessionStatusCounts,
  turns: Count,
  turns_failed: Count,
  ...TokenTotals.shape,
  cost_usd: Usd,
  last_activity_at: IsoDate.nullable(),
  ...AsOf,
});
export type UserStatsView = z.infer<typeof UserStatsView>;

/**
 * Usage of one agent or one model: agent responses (`calls`), tokens, cost (USD) and execution time
 * (ms; average and exact p95 with `percentile_cont(0.95)` over the responses that report one).
 */
export const UsageFigures = z.object({
  turns: Count.describe('Distinct turns with at least one response in the group'),
  calls: Count.describe('Agent responses'),
  ...TokenTotals.shape,
  cost_usd: Usd,
  avg_execution_time_ms: Ms.nullable(),
  p95_execution_time_ms: Ms.nullable(),
});
export type UsageFigures = z.infer<typeof UsageFigures>;

export const AgentUsage = z.object({ agent_name: z.string(), ...UsageFigures.shape });
export const ModelUsage = z.object({
  model: z.string().nullable().describe('null: responses logged without a model'),
  ...UsageFigures.shape,
});

/**
 * `GET /sessions/stats`: the tenant's figures (deleted sessions excluded everywhere).
 * `events_projected`: events of the tenant's session and conversation streams the live read model
 * has applied. `head_position`: highest global position in the event store of the stream types the
 * projection follows; `projection_lag` = `head_position - as_of_position` (positions, all tenants).
 */
export const GlobalStatsView = z.object({
  sessions: SessionStatusCounts,
  active_sessions: Count.describe('Same as sessions.active (seed 004)'),
  users: Count.describe('Distinct users with at least one session'),
  turns: Count,
  turns_failed: Count,
  ...TokenTotals.shape,
  cost_usd: Usd,
  by_agent: z.array(AgentUsage),
  by_model: z.array(ModelUsage),
  events_projected: Count,
  head_position: Count,
  projection_lag: Count,
  ...AsOf,
});
export type GlobalStatsView = z.infer<typeof GlobalStatsView>;

export const UsageGroupBy = z.enum(['day', 'model', 'agent']);
export type UsageGroupBy = z.infer<typeof UsageGroupBy>;

/**
 * One row of `GET /stats/usage`: `day` (UTC, `YYYY-MM-DD`) and `model` with `group_by=day` (per day
 * and per model), `model` with `group_by=model`, `agent_name` with `group_by=agent`. A response counts
 * on the day of its `started_at`, else of the turn's start (whole turns) or of its arrival (`AgentResponded`).
 */
export const UsageRow = z.object({
  day: z.string().optional(),
  model: z.string().nullable().optional(),
  agent_name: z.string().optional(),
  ...UsageFigures.shape,
});
export type UsageRow = z.infer<typeof UsageRow>;

/** `GET /stats/usage`: rows over `[from, to)`, ordered by day then model, or by name. */
export const UsageStatsView = z.object({
  from: IsoDate,
  to: IsoDate,
  group_by: UsageGroupBy,
  rows: z.array(UsageRow),
  ...AsOf,
});
export type UsageStatsView = z.infer<typeof UsageStatsView>;

/**
 * Read-your-writes: answer only once the projection has applied `minPosition` (a write's `position`),
 * waiting a bounded time (the projector's `STATS_WAIT_MS`), else SERVICE.UNAVAILABLE (HTTP 503).
 */
const MinPosition = { minPosition: z.number().int().min(0).optional() };

export const GetGlobalStats = defineQuery(
  ANALYTICS_CATEGORY,
  'GetGlobalStats',
  z.object({ tenantId: TenantId, ...MinPosition }),
  GlobalStatsView,
);

/** SESSION.NOT_FOUND for an unknown or deleted session, or one of another user when `userId` is given. */
export const GetSessionStats = defineQuery(
  ANALYTICS_CATEGORY,
  'GetSessionStats',
  z.object({ tenantId: TenantId, sessionId: SessionId, userId: UserId.optional(), ...MinPosition }),
  SessionStatsView,
);

export const GetUserStats = defineQuery(
  ANALYTICS_CATEGORY,
  'GetUserStats',
  z.object({ tenantId: TenantId, userId: UserId, ...MinPosition }),
  UserStatsView,
);

/** `from` inclusive, `to` exclusive; `userId` restricts to one user's turns. */
export const GetUsage = defineQuery(
  ANALYTICS_CATEGORY,
  'GetUsage',
  z
    .object({
      tenantId: TenantId,
      from: IsoDate,
      to: IsoDate,
      groupBy: UsageGroupBy,
      userId: UserId.optional(),
      ...MinPosition,
    })
    .refine((q) => Date.parse(q.from) <= Date.parse(q.to), {
      message: 'from must not be after to',
      path: ['from'],
    }),
  UsageStatsView,
);

// ---- HTTP ----

/** `min_position` query parameter of every stats route (a write's `position`). */
export const MinPositionQuery = z.strictObject({
  min_position: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Wait (bounded) until the stats include this global position; 503 if they do not in time'),
});

const DayOrInstant = z.union([z.iso.date(), IsoDate]);

/**
 * `GET /stats/usage` query. `from`/`to`: a UTC day (`2025-01-31`, `to` includes the whole day) or an
 * ISO instant (`to` exclusive). Defaults: `to` now, `from` 30 days before `to`. `group_by` default `day`.
 */
export const UsageQuery = z.strictObject({
  from: DayOrInstant.optional(),
  to: DayOrInstant.optional(),
  group_by: UsageGroupBy.default('day'),
  ...MinPositionQuery.shape,
});
export type UsageQuery = z.infer<typeof UsageQuery>;

const DAY_MS = 86_400_000;
const isDay = (v: string) => /^\d{4}-\d{2}-\d{2}$/.test(v);

/**
 * Turns `UsageQuery`'s `from`/`to` into the instants of `GetUsage` (`from` inclusive, `to` exclusive):
 * a day `to` means the end of that day (UTC). `now` in ms since the epoch.
 */
export function usageRange(
  query: Pick<UsageQuery, 'from' | 'to'>,
  now: number,
): { from: string; to: string } {
  const to =
    query.to === undefined
      ? now
      : isDay(query.to)
        ? Date.parse(`${query.to}T00:00:00Z`) + DAY_MS
        : Date.parse(query.to);
  const from =
    query.from === undefined
      ? to - 30 * DAY_MS
      : isDay(query.from)
        ? Date.parse(`${query.from}T00:00:00Z`)
        : Date.parse(query.from);
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}
