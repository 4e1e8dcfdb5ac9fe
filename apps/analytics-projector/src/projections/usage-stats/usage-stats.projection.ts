import {
  CONVERSATION_CATEGORY,
  ConversationEvents,
  type ParsedEvent,
  SESSION_CATEGORY,
  SessionEvents,
  type ToolCallData,
  type AgentResponseData,
  USER_CATEGORY,
  UserErasedV1,
} from '@threadline/contracts';
import type { Projection, ProjectionVersioning, Sql } from '@threadline/event-store';

/** Every event definition the usage-stats projection reads (session, conversation and user streams). */
export const UsageStatsEvents = [...SessionEvents, ...ConversationEvents, UserErasedV1] as const;
export type UsageStatsEvent = ParsedEvent<typeof UsageStatsEvents>;

/** Name of the projection (checkpoint `projection:usage_stats@v<n>`). */
export const USAGE_STATS = 'usage_stats';
/** Version n of the read model lives in schema `analytics_usage_v<n>`. */
export const USAGE_STATS_SCHEMA_PREFIX = 'analytics_usage';

/**
 * The tables of one version (created with `search_path` set to the version's schema). Facts, not
 * counters: each turn, agent response and tool call is one row, and every figure (sums, averages,
 * exact p95 with `percentile_cont`) is computed from them when asked (see `stats.queries.ts`). Why
 * not counter rows: a tenant's counter row would be updated by every turn of the tenant, serializing
 * concurrent handlers on one row lock, and many updates of one row in one transaction cost O(N^2)
 * (see the session_counts migration). A deleted session's facts are deleted and its row kept as a
 * tombstone (`deleted_at`), so turn events that arrive after the deletion (another stream, another
 * consumer) are not counted either. No column holds a processing time (now()): a rebuild gives
 * exactly the rows incremental handling gave.
 */
export const USAGE_STATS_DDL = [
  `CREATE TABLE stats_sessions (
     tenant_id  text        NOT NULL,
     session_id text        NOT NULL,
     user_id    text,
     status     text        NOT NULL CHECK (status IN ('active', 'ended', 'expired')),
     created_at timestamptz NOT NULL,
     ended_at   timestamptz,
     deleted_at timestamptz,
     PRIMARY KEY (tenant_id, session_id)
   )`,
  `CREATE TABLE stats_turns (
     tenant_id          text        NOT NULL,
     turn_id            text        NOT NULL,
     session_id         text        NOT NULL,
     user_id            text,
     status             text        NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
     vector_cache_hit   boolean     NOT NULL,
     processing_time_ms integer,
     started_at         timestamptz NOT NULL,
     ended_at           timestamptz,
     PRIMARY KEY (tenant_id, turn_id)
   )`,
  `CREATE TABLE stats_responses (
     tenant_id         text        NOT NULL,
     turn_id           text        NOT NULL,
     event_position    bigint      NOT NULL,
     idx               integer     NOT NULL,
     session_id        text        NOT NULL,
     user_id           text,
     agent_name        text        NOT NULL,
     model             text,
     at                timestamptz NOT NULL,
     input_tokens      bigint      NOT NULL,
     output_tokens     bigint      NOT NULL,
     cached_tokens     bigint      NOT NULL,
     total_tokens      bigint      NOT NULL,
     cost_usd          numeric     NOT NULL,
     execution_time_ms integer,
     PRIMARY KEY (tenant_id, turn_id, event_position, idx)
   )`,
  `CREATE TABLE stats_tool_calls (
     tenant_id    text NOT NULL,
     turn_id      text NOT NULL,
     tool_call_id text NOT NULL,
     session_id   text NOT NULL,
     name         text NOT NULL,
     status       text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
     PRIMARY KEY (tenant_id, turn_id, tool_call_id)
   )`,
  `CREATE INDEX stats_turns_session ON stats_turns (tenant_id, session_id)`,
  `CREATE INDEX stats_responses_session ON stats_responses (tenant_id, session_id)`,
  `CREATE INDEX stats_tool_calls_session ON stats_tool_calls (tenant_id, session_id)`,
] as const;

/**
 * Secondary indexes of a version that only queries use, built after a rebuild's bulk replay. The
 * session indexes stay in `USAGE_STATS_DDL`: a session deletion in the replay deletes by them.
 */
export const USAGE_STATS_INDEXES = [
  `CREATE INDEX stats_sessions_user ON stats_sessions (tenant_id, user_id) WHERE deleted_at IS NULL`,
  `CREATE INDEX stats_turns_user ON stats_turns (tenant_id, user_id)`,
  `CREATE INDEX stats_responses_user ON stats_responses (tenant_id, user_id)`,
  `CREATE INDEX stats_responses_at ON stats_responses (tenant_id, at)`,
] as const;

/** Every table of a version, for dumps and comparisons. */
export const USAGE_STATS_TABLES = [
  'stats_sessions',
  'stats_turns',
  'stats_responses',
  'stats_tool_calls',
] as const;

interface SessionRow {
  tenant_id: string;
  session_id: string;
  user_id: string | null;
  status: 'active' | 'ended' | 'expired';
  created_at: string;
  ended_at: string | null;
  deleted_at: string | null;
}
interface TurnRow {
  tenant_id: string;
  turn_id: string;
  session_id: string;
  user_id: string | null;
  status: 'in_progress' | 'completed' | 'failed';
  vector_cache_hit: boolean;
  processing_time_ms: number | null;
  started_at: string;
  ended_at: string | null;
}
interface TurnUpdate {
  tenant_id: string;
  turn_id: string;
  status: 'completed' | 'failed';
  vector_cache_hit: boolean | null;
  processing_time_ms: number | null;
  ended_at: string;
}
interface ResponseRow {
  tenant_id: string;
  turn_id: string;
  event_position: number;
  idx: number;
  session_id: string;
  user_id: string | null;
  agent_name: string;
  model: string | null;
  at: string;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  total_tokens: number;
  cost_usd: number;
  execution_time_ms: number | null;
}
interface ToolCallRow {
  tenant_id: string;
  turn_id: string;
  tool_call_id: string;
  session_id: string;
  name: string;
  status: ToolCallData['status'];
}

const key = (...parts: string[]) => parts.join('\u0000');

/**
 * What one batch of events does to the tables, folded in memory: rows created in the batch are
 * changed in memory by the batch's later events; changes to rows of earlier batches are collected
 * and written with one multi-row statement per kind. The statements run in an order that gives the
 * rows sequential application would: inserts, then updates, then turn deletions, then session
 * deletions (which remove the session's facts, whatever this batch inserted for it).
 */
class BatchFold {
  readonly sessions = new Map<string, SessionRow>();
  readonly sessionEnds = new Map<
    string,
    { tenant_id: string; session_id: string; status: 'ended' | 'expired'; at: string }
  >();
  readonly sessionDeletes = new Map<string, { tenant_id: string; session_id: string; at: string }>();
  /** Sessions of an erased user: deleted like SessionDeleted, and their tombstone row loses its user id. */
  readonly sessionErasures = new Map<string, { tenant_id: string; session_id: string; at: string }>();
  readonly turns = new Map<string, TurnRow>();
  readonly turnUpdates = new Map<string, TurnUpdate>();
  readonly responses: ResponseRow[] = [];
  readonly toolCalls = new Map<string, ToolCallRow>();
  readonly turnDeletes = new Map<string, { tenant_id: string; turn_id: string }>();

  add(event: UsageStatsEvent): void {
    const tenant = event.envelope.metadata.tenantId;
    switch (event.type) {
      case 'SessionCreated.v1': {
        const k = key(tenant, event.data.sessionId);
        if (!this.sessions.has(k)) {
          this.sessions.set(k, {
            tenant_id: tenant,
            session_id: event.data.sessionId,
            user_id: event.data.userId,
            status: 'active',
            created_at: event.data.startedAt,
            ended_at: null,
            deleted_at: null,
          });
        }
        return;
      }
      case 'SessionTitleChanged.v1':
      case 'SessionMetadataUpdated.v1':
        return;
      case 'SessionEnded.v1':
        return this.endSession(tenant, event.data.sessionId, 'ended', event.data.endedAt);
      case 'SessionExpired.v1':
        return this.endSession(tenant, event.data.sessionId, 'expired', event.data.expiredAt);
      case 'SessionDeleted.v1': {
        const k = key(tenant, event.data.sessionId);
        const row = this.sessions.get(k);
        if (row) row.deleted_at ??= event.data.deletedAt;
        if (!this.sessionDeletes.has(k)) {
          this.sessionDeletes.set(k, {
            tenant_id: tenant,
            session_id: event.data.sessionId,
            at: event.data.deletedAt,
          });
        }
        return;
      }
      case 'UserErased.v1': {
        for (const sessionId of event.data.sessionIds) {
          this.sessionErasures.set(key(tenant, sessionId), {
            tenant_id: tenant,
            session_id: sessionId,
            at: event.data.erasedAt,
          });
        }
        return;
      }
      case 'TurnLogged.v1': {
        const d = event.data;
        this.turns.set(key(tenant, d.turnId), {
          tenant_id: tenant,
          turn_id: d.turnId,
          session_id: d.sessionId,
          user_id: d.userId,
          status: d.status,
          vector_cache_hit: d.vectorCacheHit,
          processing_time_ms: d.processingTimeMs,
          started_at: d.startedAt,
          ended_at: d.completedAt,
        });
        d.agentResponses.forEach((r, idx) =>
          this.addResponse(
            tenant,
            d.turnId,
            d.sessionId,
            d.userId,
            event.envelope.streamPosition,
            idx,
            r,
            d.startedAt,
          ),
        );
        for (const call of d.toolCalls) this.addToolCall(tenant, d.turnId, d.sessionId, call);
        return;
      }
      case 'TurnStarted.v1': {
        const d = event.data;
        this.turns.set(key(tenant, d.turnId), {
          tenant_id: tenant,
          turn_id: d.turnId,
          session_id: d.sessionId,
          user_id: d.userId,
          status: 'in_progress',
          vector_cache_hit: d.vectorCacheHit,
          processing_time_ms: null,
          started_at: d.startedAt,
          ended_at: null,
        });
        return;
      }
      case 'AgentResponded.v1': {
        const d = event.data;
        // The turn's user: from the turn row when this batch has it, else looked up when inserting.
        const turn = this.turns.get(key(tenant, d.turnId));
        this.addResponse(
          tenant,
          d.turnId,
          d.sessionId,
          turn ? turn.user_id : undefined,
          event.envelope.streamPosition,
          0,
          d.agentResponse,
          d.respondedAt,
        );
        return;
      }
      case 'ToolCallRecorded.v1':
        return this.addToolCall(tenant, event.data.turnId, event.data.sessionId, event.data.toolCall);
      case 'TurnCompleted.v1':
        return this.closeTurn({
          tenant_id: tenant,
          turn_id: event.data.turnId,
          status: 'completed',
          vector_cache_hit: event.data.vectorCacheHit,
          processing_time_ms: event.data.processingTimeMs,
          ended_at: event.data.completedAt,
        });
      case 'TurnFailed.v1':
        return this.closeTurn({
          tenant_id: tenant,
          turn_id: event.data.turnId,
          status: 'failed',
          vector_cache_hit: null,
          processing_time_ms: event.data.processingTimeMs,
          ended_at: event.data.failedAt,
        });
      case 'TurnDeleted.v1': {
        const k = key(tenant, event.data.turnId);
        this.turnDeletes.set(k, { tenant_id: tenant, turn_id: event.data.turnId });
        return;
      }
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  private endSession(tenant: string, sessionId: string, status: 'ended' | 'expired', at: string): void {
    const k = key(tenant, sessionId);
    const row = this.sessions.get(k);
    if (row) {
      // Only an active session ends or expires.
      if (row.status === 'active') Object.assign(row, { status, ended_at: at });
      return;
    }
    // The first end wins: later ones would find the session no longer active.
    if (!this.sessionEnds.has(k))
      this.sessionEnds.set(k, { tenant_id: tenant, session_id: sessionId, status, at });
  }

  private closeTurn(update: TurnUpdate): void {
    const k = key(update.tenant_id, update.turn_id);
    const row = this.turns.get(k);
    if (row) {
      if (row.status !== 'in_progress') return;
      row.status = update.status;
      row.vector_cache_hit = update.vector_cache_hit ?? row.vector_cache_hit;
      row.processing_time_ms = update.processing_time_ms ?? row.processing_time_ms;
      row.ended_at = update.ended_at;
      return;
    }
    if (!this.turnUpdates.has(k)) this.turnUpdates.set(k, update);
  }

  private addResponse(
    tenant: string,
    turnId: string,
    sessionId: string,
    userId: string | null | undefined,
    eventPosition: number,
    idx: number,
    r: AgentResponseData,
    fallbackAt: string,
  ): void {
    this.responses.push({
      tenant_id: tenant,
      turn_id: turnId,
      event_position: eventPosition,
      idx,
      session_id: sessionId,
      // undefined: the turn is in an earlier batch; resolved from stats_turns on insert.
      user_id: userId === undefined ? UNKNOWN_USER : userId,
      agent_name: r.agentName,
      model: r.model,
      at: r.startedAt ?? fallbackAt,
      input_tokens: r.usage.inputTokens,
      output_tokens: r.usage.outputTokens,
      cached_tokens: r.usage.cachedTokens,
      total_tokens: r.usage.totalTokens,
      cost_usd: r.costUsd,
      execution_time_ms: r.executionTimeMs,
    });
  }

  private addToolCall(tenant: string, turnId: string, sessionId: string, call: ToolCallData): void {
    // A later record of the same tool call replaces it (its latest status counts).
    this.toolCalls.set(key(tenant, turnId, call.toolCallId), {
      tenant_id: tenant,
      turn_id: turnId,
      tool_call_id: call.toolCallId,
      session_id: sessionId,
      name: call.name,
      status: call.status,
    });
  }
}

// Marks a response whose user is the turn's, to be read from stats_turns (a sentinel no user id can be:
// ids are at most 128 characters of [A-Za-z0-9_\-.:@]).
const UNKNOWN_USER = '#turn';

type Column<R> = readonly [keyof R & string, string];

/**
 * `INSERT INTO table (cols) SELECT ... FROM json_to_recordset($1::json) AS u(col type, ...)`: one
 * statement, and one parameter, for all `rows` (each an object with the columns' keys). A JSON array
 * is what the driver sends fastest: JSON.stringify is native, where an array parameter per column is
 * escaped element by element in JavaScript (a rebuild writes about 20,000 rows per batch).
 */
async function insertRows<R>(
  sql: Sql,
  table: string,
  columns: readonly Column<R>[],
  rows: readonly R[],
  opts: { select?: string; where?: string; conflict: string },
): Promise<void> {
  if (rows.length === 0) return;
  const names = columns.map(([name]) => name).join(', ');
  const record = columns.map(([name, type]) => `${name} ${type}`).join(', ');
  await sql.query(
    `INSERT INTO ${table} (${names})
     SELECT ${opts.select ?? names} FROM json_to_recordset($1::json) AS u(${record}) ${opts.where ?? ''}
     ${opts.conflict}`,
    [JSON.stringify(rows)],
  );
}

// Facts of a session deleted before they arrived are not inserted (its tombstone says so).
const NOT_DELETED = `WHERE NOT EXISTS (
  SELECT 1 FROM stats_sessions s
  WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id AND s.deleted_at IS NOT NULL)`;

/**
 * The `usage_stats` projection (issue 5): per session, user, agent, model and day, from the
 * session and conversation streams. Versioned (one schema per version, see `ProjectionRunner`);
 * applies events in batches with one multi-row statement per table and kind of change.
 *
 * Session rows come from session events (status active / ended / expired; deleted is a tombstone);
 * turn rows from TurnLogged / TurnStarted, closed by TurnCompleted / TurnFailed; one response row per
 * agent response (keyed by the event's stream position and its index in the event, so replays give
 * the same keys); one tool-call row per tool call id with its latest status. TurnDeleted removes a
 * turn's rows; SessionDeleted removes the session's turn, response and tool-call rows; UserErased
 * (stream type `user`) does the same for each of the erased user's sessions and clears the user id
 * of their tombstone rows. Erased events themselves are skipped by the runner (`isErased`).
 */
export class UsageStatsProjection implements Projection<UsageStatsEvent> {
  readonly name = USAGE_STATS;
  readonly streamTypes = [SESSION_CATEGORY, CONVERSATION_CATEGORY, USER_CATEGORY] as const;
  readonly versioning: ProjectionVersioning = {
    schemaPrefix: USAGE_STATS_SCHEMA_PREFIX,
    create: async (sql: Sql) => {
      for (const ddl of USAGE_STATS_DDL) await sql.query(ddl);
    },
    createIndexes: async (sql: Sql) => {
      for (const ddl of USAGE_STATS_INDEXES) await sql.query(ddl);
    },
  };

  async apply(sql: Sql, event: UsageStatsEvent): Promise<void> {
    await this.applyBatch(sql, [event]);
  }

  /** Versioned: a rebuild builds a new schema; nothing to empty. */
  async reset(): Promise<void> {}

  async applyBatch(sql: Sql, events: readonly UsageStatsEvent[]): Promise<void> {
    const fold = new BatchFold();
    for (const event of events) fold.add(event);

    await insertRows<SessionRow>(
      sql,
      'stats_sessions',
      [
        ['tenant_id', 'text'],
        ['session_id', 'text'],
        ['user_id', 'text'],
        ['status', 'text'],
        ['created_at', 'timestamptz'],
        ['ended_at', 'timestamptz'],
        ['deleted_at', 'timestamptz'],
      ],
      [...fold.sessions.values()],
      { conflict: 'ON CONFLICT DO NOTHING' },
    );
    if (fold.sessionEnds.size > 0) {
      const ends = [...fold.sessionEnds.values()];
      await sql.query(
        `UPDATE stats_sessions s SET status = u.status, ended_at = u.at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(tenant_id, session_id, status, at)
         WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id AND s.status = 'active'`,
        [
          ends.map((e) => e.tenant_id),
          ends.map((e) => e.session_id),
          ends.map((e) => e.status),
          ends.map((e) => e.at),
        ],
      );
    }
    await insertRows<TurnRow>(
      sql,
      'stats_turns',
      [
        ['tenant_id', 'text'],
        ['turn_id', 'text'],
        ['session_id', 'text'],
        ['user_id', 'text'],
        ['status', 'text'],
        ['vector_cache_hit', 'boolean'],
        ['processing_time_ms', 'integer'],
        ['started_at', 'timestamptz'],
        ['ended_at', 'timestamptz'],
      ],
      [...fold.turns.values()],
      { where: NOT_DELETED, conflict: 'ON CONFLICT DO NOTHING' },
    );
    if (fold.turnUpdates.size > 0) {
      const ups = [...fold.turnUpdates.values()];
      await sql.query(
        `UPDATE stats_turns t SET status = u.status,
           vector_cache_hit = COALESCE(u.vector_cache_hit, t.vector_cache_hit),
           processing_time_ms = COALESCE(u.processing_time_ms, t.processing_time_ms),
           ended_at = u.ended_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::integer[], $6::timestamptz[])
           AS u(tenant_id, turn_id, status, vector_cache_hit, processing_time_ms, ended_at)
         WHERE t.tenant_id = u.tenant_id AND t.turn_id = u.turn_id AND t.status = 'in_progress'`,
        [
          ups.map((u) => u.tenant_id),
          ups.map((u) => u.turn_id),
          ups.map((u) => u.status),
          ups.map((u) => u.vector_cache_hit),
          ups.map((u) => u.processing_time_ms),
          ups.map((u) => u.ended_at),
        ],
      );
    }
    const responseColumns: Column<ResponseRow>[] = [
      ['tenant_id', 'text'],
      ['turn_id', 'text'],
      ['event_position', 'bigint'],
      ['idx', 'integer'],
      ['session_id', 'text'],
      ['user_id', 'text'],
      ['agent_name', 'text'],
      ['model', 'text'],
      ['at', 'timestamptz'],
      ['input_tokens', 'bigint'],
      ['output_tokens', 'bigint'],
      ['cached_tokens', 'bigint'],
      ['total_tokens', 'bigint'],
      ['cost_usd', 'numeric'],
      ['execution_time_ms', 'integer'],
    ];
    await insertRows<ResponseRow>(sql, 'stats_responses', responseColumns, fold.responses, {
      // A response to a turn of an earlier batch takes the turn's user from its row.
      select: responseColumns
        .map(([name]) =>
          name === 'user_id'
            ? `CASE WHEN u.user_id = '${UNKNOWN_USER}' THEN (SELECT t.user_id FROM stats_turns t
                 WHERE t.tenant_id = u.tenant_id AND t.turn_id = u.turn_id) ELSE u.user_id END`
            : `u.${name}`,
        )
        .join(', '),
      where: NOT_DELETED,
      conflict: 'ON CONFLICT DO NOTHING',
    });
    await insertRows<ToolCallRow>(
      sql,
      'stats_tool_calls',
      [
        ['tenant_id', 'text'],
        ['turn_id', 'text'],
        ['tool_call_id', 'text'],
        ['session_id', 'text'],
        ['name', 'text'],
        ['status', 'text'],
      ],
      [...fold.toolCalls.values()],
      {
        where: NOT_DELETED,
        conflict: `ON CONFLICT (tenant_id, turn_id, tool_call_id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status`,
      },
    );
    if (fold.turnDeletes.size > 0) {
      const dels = [...fold.turnDeletes.values()];
      const params = [dels.map((d) => d.tenant_id), dels.map((d) => d.turn_id)];
      for (const table of ['stats_responses', 'stats_tool_calls', 'stats_turns']) {
        await sql.query(
          `DELETE FROM ${table} x USING unnest($1::text[], $2::text[]) AS u(tenant_id, turn_id)
           WHERE x.tenant_id = u.tenant_id AND x.turn_id = u.turn_id`,
          params,
        );
      }
    }
    if (fold.sessionDeletes.size > 0) {
      const dels = [...fold.sessionDeletes.values()];
      const params = [dels.map((d) => d.tenant_id), dels.map((d) => d.session_id)];
      await sql.query(
        `UPDATE stats_sessions s SET deleted_at = u.at
         FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(tenant_id, session_id, at)
         WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id AND s.deleted_at IS NULL`,
        [...params, dels.map((d) => d.at)],
      );
      for (const table of ['stats_responses', 'stats_tool_calls', 'stats_turns']) {
        await sql.query(
          `DELETE FROM ${table} x USING unnest($1::text[], $2::text[]) AS u(tenant_id, session_id)
           WHERE x.tenant_id = u.tenant_id AND x.session_id = u.session_id`,
          params,
        );
      }
    }
    if (fold.sessionErasures.size > 0) {
      // Last: whatever this batch inserted for an erased session goes too. The tombstone row stays
      // (late facts of the session are not inserted, see NOT_DELETED), without the user id.
      const erased = [...fold.sessionErasures.values()];
      const params = [erased.map((d) => d.tenant_id), erased.map((d) => d.session_id)];
      await sql.query(
        `UPDATE stats_sessions s SET deleted_at = COALESCE(s.deleted_at, u.at), user_id = NULL
         FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(tenant_id, session_id, at)
         WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id`,
        [...params, erased.map((d) => d.at)],
      );
      for (const table of ['stats_responses', 'stats_tool_calls', 'stats_turns']) {
        await sql.query(
          `DELETE FROM ${table} x USING unnest($1::text[], $2::text[]) AS u(tenant_id, session_id)
           WHERE x.tenant_id = u.tenant_id AND x.session_id = u.session_id`,
          params,
        );
      }
    }
  }
}
