import {
  CONVERSATION_CATEGORY,
  type ParsedEvent,
  SESSION_CATEGORY,
  type ToolCallData,
  type AgentResponseData,
  USER_CATEGORY,
  type UsageStatsEvents,
} from '@threadline/contracts';
import { z } from 'zod';
import type { Projection, ProjectionVersioning, Sql, SqlTransaction } from '@threadline/event-store';

/** An event of {@link UsageStatsEvents}, parsed. */
export type UsageStatsEvent = ParsedEvent<typeof UsageStatsEvents>;

/** Name of the projection (checkpoint `projection:usage_stats@v<n>`). */
export const USAGE_STATS = 'usage_stats';
/** Version n of the read model lives in schema `analytics_usage_v<n>`. */
export const USAGE_STATS_SCHEMA_PREFIX = 'analytics_usage';

/**
 * The tables of one version (created with `search_path` set to the version's schema). Facts, and
 * aggregates kept from them.
 *
 * Facts: each turn, agent response and tool call is one row, from which the per-session, per-user and
 * usage figures are computed when asked (see `stats.queries.ts`). Each fact row is keyed by the global
 * position of the event that recorded it (and its index in the event): a rebuild replays in commit
 * order, so its inserts append to the right edge of the primary keys instead of landing at random
 * leaves of indexes keyed by random turn ids, which outgrew shared_buffers at a million turns (a
 * rebuild wrote 2M responses in 41 s with a turn-keyed primary key, 20 s keyed by position, measured
 * with `INSERT ... SELECT` on this machine). Every event that changes a fact names its session, so
 * facts are found through the `(tenant_id, session_id)` indexes (small: B-tree deduplication keeps one
 * entry per session and page). A turn id is used once per tenant (the conversation decider's
 * TURN.ALREADY_EXISTS), so turns need no unique key of their own.
 *
 * Aggregates (`stats_session_counts`, `stats_turn_counts`, `stats_response_cells`, `stats_agent_turns`,
 * `stats_model_turns`): what the tenant-wide figures need, kept in the transaction that changes the
 * facts, from the rows each statement actually inserted, updated or deleted (see `Deltas`), so the
 * global stats read O(cells) rows, not O(turns). Responses are counted per (agent, model, execution
 * time) cell: sums are exact (numeric), and averages and the exact p95 come from the cells' counts.
 * A row whose counts fell to zero stays, and counts as absent.
 *
 * A deleted session's facts are deleted and its row kept as a tombstone (`deleted_at`), so turn events
 * that arrive after the deletion (another stream, another consumer) are not counted either. No column
 * holds a processing time (now()): a rebuild gives exactly the rows incremental handling gave.
 *
 * Every text column is in the "C" collation: ids and names are compared byte by byte, which lets
 * Postgres sort them with abbreviated keys instead of calling the C library's strcoll per comparison
 * (a database's own collation, C.UTF-8 here, is not known to Postgres to sort as C does). Equality is
 * the same in any deterministic collation, and a parameter's default collation yields to the
 * column's. Measured on 2M responses: an index on (tenant_id, session_id) built in 3.3 s instead of
 * 4.6 s, and `count(DISTINCT turn_id)` per agent took 3.9 s instead of 7.1 s.
 */
export const USAGE_STATS_DDL = [
  `CREATE TABLE stats_sessions (
     tenant_id  text COLLATE "C" NOT NULL,
     session_id text COLLATE "C" NOT NULL,
     user_id    text COLLATE "C",
     status     text COLLATE "C" NOT NULL CHECK (status IN ('active', 'ended', 'expired')),
     created_at timestamptz NOT NULL,
     ended_at   timestamptz,
     deleted_at timestamptz,
     PRIMARY KEY (tenant_id, session_id)
   )`,
  `CREATE TABLE stats_turns (
     global_position    bigint      PRIMARY KEY,
     tenant_id          text COLLATE "C" NOT NULL,
     turn_id            text COLLATE "C" NOT NULL,
     session_id         text COLLATE "C" NOT NULL,
     user_id            text COLLATE "C",
     status             text COLLATE "C" NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
     vector_cache_hit   boolean     NOT NULL,
     processing_time_ms integer,
     started_at         timestamptz NOT NULL,
     ended_at           timestamptz
   )`,
  `CREATE TABLE stats_responses (
     global_position   bigint      NOT NULL,
     idx               integer     NOT NULL,
     tenant_id         text COLLATE "C" NOT NULL,
     turn_id           text COLLATE "C" NOT NULL,
     session_id        text COLLATE "C" NOT NULL,
     user_id           text COLLATE "C",
     agent_name        text COLLATE "C" NOT NULL,
     model             text COLLATE "C",
     at                timestamptz NOT NULL,
     input_tokens      bigint      NOT NULL,
     output_tokens     bigint      NOT NULL,
     cached_tokens     bigint      NOT NULL,
     total_tokens      bigint      NOT NULL,
     cost_usd          numeric     NOT NULL,
     execution_time_ms integer,
     PRIMARY KEY (global_position, idx)
   )`,
  `CREATE TABLE stats_tool_calls (
     global_position bigint  NOT NULL,
     idx             integer NOT NULL,
     tenant_id       text COLLATE "C" NOT NULL,
     turn_id         text COLLATE "C" NOT NULL,
     tool_call_id    text COLLATE "C" NOT NULL,
     session_id      text COLLATE "C" NOT NULL,
     name            text COLLATE "C" NOT NULL,
     status          text COLLATE "C" NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
     PRIMARY KEY (global_position, idx)
   )`,
  // The tombstones alone: every fact inserted is checked against them (NOT_DELETED), a probe of this
  // small index instead of the primary key (4,500 turns: 8 ms instead of 40).
  `CREATE INDEX stats_sessions_deleted ON stats_sessions (tenant_id, session_id) WHERE deleted_at IS NOT NULL`,
  `CREATE TABLE stats_session_counts (
     tenant_id text COLLATE "C" NOT NULL,
     user_id   text COLLATE "C",
     status    text COLLATE "C" NOT NULL,
     sessions  bigint NOT NULL,
     UNIQUE NULLS NOT DISTINCT (tenant_id, user_id, status)
   )`,
  `CREATE TABLE stats_turn_counts (
     tenant_id text COLLATE "C" NOT NULL,
     status    text COLLATE "C" NOT NULL,
     turns     bigint NOT NULL,
     PRIMARY KEY (tenant_id, status)
   )`,
  `CREATE TABLE stats_response_cells (
     tenant_id         text COLLATE "C" NOT NULL,
     agent_name        text COLLATE "C" NOT NULL,
     model             text COLLATE "C",
     execution_time_ms integer,
     calls             bigint  NOT NULL,
     input_tokens      numeric NOT NULL,
     output_tokens     numeric NOT NULL,
     cached_tokens     numeric NOT NULL,
     total_tokens      numeric NOT NULL,
     cost_usd          numeric NOT NULL,
     UNIQUE NULLS NOT DISTINCT (tenant_id, agent_name, model, execution_time_ms)
   )`,
  `CREATE TABLE stats_agent_turns (
     tenant_id  text COLLATE "C" NOT NULL,
     agent_name text COLLATE "C" NOT NULL,
     turns      bigint NOT NULL,
     PRIMARY KEY (tenant_id, agent_name)
   )`,
  `CREATE TABLE stats_model_turns (
     tenant_id text COLLATE "C" NOT NULL,
     model     text COLLATE "C",
     turns     bigint NOT NULL,
     UNIQUE NULLS NOT DISTINCT (tenant_id, model)
   )`,
] as const;

/**
 * The indexes every change of an existing fact finds its rows by (a turn closed, a response's user
 * looked up, a tool call re-recorded, a turn or session deleted). A rebuild's bulk replay creates them
 * only when a batch first needs them (see `UsageStatsProjection.replay`): a bulk replay of whole turns
 * never does, and building them once after the load is cheaper than maintaining them row by row
 * (inserting 9,000 responses into 1.6M: 73-80 ms with the session index, 43-48 ms without, EXPLAIN
 * ANALYZE on this machine). `IF NOT EXISTS`: `createIndexes` runs after such a replay.
 */
const USAGE_STATS_LOOKUP_INDEXES = [
  `CREATE INDEX IF NOT EXISTS stats_turns_session ON stats_turns (tenant_id, session_id)`,
  `CREATE INDEX IF NOT EXISTS stats_responses_session ON stats_responses (tenant_id, session_id)`,
  `CREATE INDEX IF NOT EXISTS stats_tool_calls_session ON stats_tool_calls (tenant_id, session_id)`,
] as const;

/**
 * Secondary indexes of a version: the lookup indexes, and those only queries use. Built after a
 * rebuild's bulk replay, or right after `USAGE_STATS_DDL` for a version created empty.
 */
export const USAGE_STATS_INDEXES = [
  ...USAGE_STATS_LOOKUP_INDEXES,
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
  'stats_session_counts',
  'stats_turn_counts',
  'stats_response_cells',
  'stats_agent_turns',
  'stats_model_turns',
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
  global_position: number;
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
  session_id: string;
  turn_id: string;
  status: 'completed' | 'failed';
  vector_cache_hit: boolean | null;
  processing_time_ms: number | null;
  ended_at: string;
}
interface ResponseRow {
  global_position: number;
  idx: number;
  tenant_id: string;
  turn_id: string;
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
  global_position: number;
  idx: number;
  tenant_id: string;
  turn_id: string;
  tool_call_id: string;
  session_id: string;
  name: string;
  status: ToolCallData['status'];
}
interface TurnKey {
  tenant_id: string;
  session_id: string;
  turn_id: string;
}

// Called for every fact of a rebuild (millions): plain concatenation, no array per call.
const key = (a: string, b: string, c?: string): string =>
  c === undefined ? `${a}\u0000${b}` : `${a}\u0000${b}\u0000${c}`;

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
  /** Tool calls recorded by ToolCallRecorded: their rows of earlier batches are replaced. */
  readonly toolCallRecords = new Map<string, TurnKey & { tool_call_id: string }>();
  readonly turnDeletes = new Map<string, TurnKey>();
  /** The sessions of the facts this batch inserts (turns, responses, tool calls), by `key(tenant, session)`. */
  readonly factSessions = new Map<string, { tenant_id: string; session_id: string }>();

  static of(events: readonly UsageStatsEvent[]): BatchFold {
    const fold = new BatchFold();
    for (const event of events) fold.add(event);
    return fold;
  }

  add(event: UsageStatsEvent): void {
    const tenant = event.envelope.metadata.tenantId;
    const position = event.envelope.globalPosition;
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
        this.factOf(tenant, d.sessionId);
        this.turns.set(key(tenant, d.turnId), {
          global_position: position,
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
          this.addResponse(tenant, d.turnId, d.sessionId, d.userId, position, idx, r, d.startedAt),
        );
        d.toolCalls.forEach((call, idx) =>
          this.addToolCall(tenant, d.turnId, d.sessionId, position, idx, call),
        );
        return;
      }
      case 'TurnStarted.v1': {
        const d = event.data;
        this.factOf(tenant, d.sessionId);
        this.turns.set(key(tenant, d.turnId), {
          global_position: position,
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
        this.factOf(tenant, d.sessionId);
        // The turn's user: from the turn row when this batch has it, else looked up when inserting.
        const turn = this.turns.get(key(tenant, d.turnId));
        this.addResponse(
          tenant,
          d.turnId,
          d.sessionId,
          turn ? turn.user_id : undefined,
          position,
          0,
          d.agentResponse,
          d.respondedAt,
        );
        return;
      }
      case 'ToolCallRecorded.v1': {
        const d = event.data;
        this.factOf(tenant, d.sessionId);
        this.toolCallRecords.set(key(tenant, d.turnId, d.toolCall.toolCallId), {
          tenant_id: tenant,
          session_id: d.sessionId,
          turn_id: d.turnId,
          tool_call_id: d.toolCall.toolCallId,
        });
        return this.addToolCall(tenant, d.turnId, d.sessionId, position, 0, d.toolCall);
      }
      case 'TurnCompleted.v1':
        return this.closeTurn({
          tenant_id: tenant,
          session_id: event.data.sessionId,
          turn_id: event.data.turnId,
          status: 'completed',
          vector_cache_hit: event.data.vectorCacheHit,
          processing_time_ms: event.data.processingTimeMs,
          ended_at: event.data.completedAt,
        });
      case 'TurnFailed.v1':
        return this.closeTurn({
          tenant_id: tenant,
          session_id: event.data.sessionId,
          turn_id: event.data.turnId,
          status: 'failed',
          vector_cache_hit: null,
          processing_time_ms: event.data.processingTimeMs,
          ended_at: event.data.failedAt,
        });
      case 'TurnDeleted.v1': {
        const k = key(tenant, event.data.turnId);
        this.turnDeletes.set(k, {
          tenant_id: tenant,
          session_id: event.data.sessionId,
          turn_id: event.data.turnId,
        });
        return;
      }
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  /**
   * Whether writing the batch changes facts of earlier batches (found by the session lookup indexes):
   * turns closed, responses whose user is their turn's, tool calls re-recorded, turns or sessions
   * deleted or erased.
   */
  changesEarlierFacts(): boolean {
    return (
      this.turnUpdates.size > 0 ||
      this.toolCallRecords.size > 0 ||
      this.turnDeletes.size > 0 ||
      this.sessionDeletes.size > 0 ||
      this.sessionErasures.size > 0 ||
      this.responses.some((r) => r.user_id === UNKNOWN_USER)
    );
  }

  /**
   * Whether writing the batch only inserts rows and reads none that an earlier batch wrote: no fact of
   * an earlier batch changes, no session of an earlier batch ends.
   */
  onlyAddsRows(): boolean {
    return !this.changesEarlierFacts() && this.sessionEnds.size === 0;
  }

  private factOf(tenant: string, sessionId: string): void {
    const k = key(tenant, sessionId);
    if (!this.factSessions.has(k)) this.factSessions.set(k, { tenant_id: tenant, session_id: sessionId });
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
    globalPosition: number,
    idx: number,
    r: AgentResponseData,
    fallbackAt: string,
  ): void {
    this.responses.push({
      global_position: globalPosition,
      idx,
      tenant_id: tenant,
      turn_id: turnId,
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

  private addToolCall(
    tenant: string,
    turnId: string,
    sessionId: string,
    globalPosition: number,
    idx: number,
    call: ToolCallData,
  ): void {
    // A later record of the same tool call replaces it (its latest status counts).
    this.toolCalls.set(key(tenant, turnId, call.toolCallId), {
      global_position: globalPosition,
      idx,
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
 * escaped element by element in JavaScript (a rebuild writes about 20,000 rows per batch). With
 * `changes`, the statement is `WITH changed AS (INSERT ... RETURNING *) <changes>` and resolves to the
 * rows of `changes` (whose further parameters are `params`, from `$2`); else to no rows.
 */
async function insertRows<R>(
  sql: Sql,
  table: string,
  columns: readonly Column<R>[],
  rows: readonly R[],
  opts: { select?: string; where?: string; conflict?: string; changes?: string; params?: unknown[] },
): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return [];
  const names = columns.map(([name]) => name).join(', ');
  const record = columns.map(([name, type]) => `${name} ${type}`).join(', ');
  const insert = `INSERT INTO ${table} (${names})
     SELECT ${opts.select ?? names} FROM json_to_recordset($1::json) AS u(${record}) ${opts.where ?? ''}
     ${opts.conflict ?? ''}`;
  const text = opts.changes ? `WITH changed AS (${insert} RETURNING *) ${opts.changes}` : insert;
  return sql.query(text, [JSON.stringify(rows), ...(opts.params ?? [])]);
}

const TURN_COLUMNS: readonly Column<TurnRow>[] = [
  ['global_position', 'bigint'],
  ['tenant_id', 'text'],
  ['turn_id', 'text'],
  ['session_id', 'text'],
  ['user_id', 'text'],
  ['status', 'text'],
  ['vector_cache_hit', 'boolean'],
  ['processing_time_ms', 'integer'],
  ['started_at', 'timestamptz'],
  ['ended_at', 'timestamptz'],
];
const RESPONSE_COLUMNS: readonly Column<ResponseRow>[] = [
  ['global_position', 'bigint'],
  ['idx', 'integer'],
  ['tenant_id', 'text'],
  ['turn_id', 'text'],
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
const TOOL_CALL_COLUMNS: readonly Column<ToolCallRow>[] = [
  ['global_position', 'bigint'],
  ['idx', 'integer'],
  ['tenant_id', 'text'],
  ['turn_id', 'text'],
  ['tool_call_id', 'text'],
  ['session_id', 'text'],
  ['name', 'text'],
  ['status', 'text'],
];

/**
 * A bulk replay's fact rows, loaded with COPY (`SqlTransaction.copyFrom`: at 1.1M events, the JSON
 * parsing of `insertRows` was about half of Postgres's time per inserted row), except those of the
 * sessions in `deleted` (see deletedSessionsOf), which NOT_DELETED leaves out of an INSERT.
 */
async function copyFacts<R extends { tenant_id: string; session_id: string }>(
  tx: SqlTransaction,
  table: string,
  columns: readonly Column<R>[],
  rows: readonly R[],
  deleted: ReadonlySet<string>,
): Promise<void> {
  const kept = deleted.size === 0 ? rows : rows.filter((r) => !deleted.has(key(r.tenant_id, r.session_id)));
  await tx.copyFrom(
    table,
    columns.map(([name]) => name),
    kept,
  );
}

/**
 * The sessions of the batch's new facts that have a tombstone (`key(tenant_id, session_id)`): the
 * NOT_DELETED test, once per batch instead of once per row. Run after the batch's sessions are
 * inserted, as NOT_DELETED runs after them.
 */
async function deletedSessionsOf(sql: Sql, fold: BatchFold): Promise<Set<string>> {
  if (fold.factSessions.size === 0) return new Set();
  const all = [...fold.factSessions.values()];
  const rows = await sql.query<{ tenant_id: string; session_id: string }>(
    `SELECT s.tenant_id, s.session_id FROM unnest($1::text[], $2::text[]) AS u(tenant_id, session_id)
     JOIN stats_sessions s ON s.tenant_id = u.tenant_id AND s.session_id = u.session_id
     WHERE s.deleted_at IS NOT NULL`,
    [all.map((s) => s.tenant_id), all.map((s) => s.session_id)],
  );
  return new Set(rows.map((r) => key(r.tenant_id, r.session_id)));
}

// Facts of a session deleted before they arrived are not inserted (its tombstone says so).
const NOT_DELETED = `WHERE NOT EXISTS (
  SELECT 1 FROM stats_sessions s
  WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id AND s.deleted_at IS NOT NULL)`;

// ---- aggregates ----

// The figures of a delta come back as text (bigint and numeric), and go back into SQL as text: no
// arithmetic in JavaScript, so numeric sums stay exact.
const Figure = z.union([z.string(), z.number()]).transform(String);
const SessionCountDelta = z.object({
  tenant_id: z.string(),
  user_id: z.string().nullable(),
  status: z.string(),
  n: Figure,
});
const TurnCountDelta = z.object({ tenant_id: z.string(), status: z.string(), n: Figure });
const ResponseDelta = z.object({
  kind: z.enum(['cell', 'agent', 'model']),
  tenant_id: z.string(),
  agent_name: z.string().nullable(),
  model: z.string().nullable(),
  execution_time_ms: z.number().int().nullable(),
  calls: Figure,
  input_tokens: Figure.nullable(),
  output_tokens: Figure.nullable(),
  cached_tokens: Figure.nullable(),
  total_tokens: Figure.nullable(),
  cost_usd: Figure.nullable(),
});
type ResponseDelta = z.infer<typeof ResponseDelta>;

/**
 * `SELECT`s over the CTE `changed` (response rows just inserted or deleted, `sign` '' or '-') giving
 * their `ResponseDelta`s: per (agent, model, execution time) cell the calls and sums; per agent and per
 * model the distinct turns added or removed. A deletion removes whole turns (TurnDeleted, or every turn
 * of a session), so its distinct (turn, agent) pairs are the pairs that disappear. An insertion adds
 * the pairs no earlier row has (`newPair`: the sub-select sees the rows before this statement).
 */
function responseDeltas(sign: '' | '-', newPair: (dim: 'agent_name' | 'model') => string): string {
  const pairs = (dim: 'agent_name' | 'model') => `
    SELECT '${dim === 'agent_name' ? 'agent' : 'model'}' AS kind, p.tenant_id,
      ${dim === 'agent_name' ? 'p.agent_name, NULL::text' : 'NULL::text, p.model'},
      NULL::integer, (${sign}count(*))::text,
      NULL::text, NULL::text, NULL::text, NULL::text, NULL::text
    FROM (SELECT DISTINCT tenant_id, session_id, turn_id, ${dim} FROM changed) p
    WHERE ${newPair(dim)}
    GROUP BY p.tenant_id, p.${dim}`;
  return `
    SELECT 'cell' AS kind, tenant_id, agent_name, model, execution_time_ms, (${sign}count(*))::text AS calls,
      (${sign}sum(input_tokens))::text AS input_tokens, (${sign}sum(output_tokens))::text AS output_tokens,
      (${sign}sum(cached_tokens))::text AS cached_tokens, (${sign}sum(total_tokens))::text AS total_tokens,
      (${sign}sum(cost_usd))::text AS cost_usd
    FROM changed GROUP BY tenant_id, agent_name, model, execution_time_ms
    UNION ALL ${pairs('agent_name')}
    UNION ALL ${pairs('model')}`;
}

// A pair of a turn created in this batch ($2 tenants, $3 turn ids) is new: a turn's responses follow its
// TurnLogged / TurnStarted in its stream. Otherwise it is new when no earlier row of the turn has it.
const INSERTED_RESPONSE_DELTAS = responseDeltas(
  '',
  (dim) => `(p.tenant_id, p.turn_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))
      OR NOT EXISTS (SELECT 1 FROM stats_responses x
        WHERE x.tenant_id = p.tenant_id AND x.session_id = p.session_id AND x.turn_id = p.turn_id
          AND x.${dim} IS NOT DISTINCT FROM p.${dim})`,
);
const DELETED_RESPONSE_DELTAS = responseDeltas('-', () => 'true');

/**
 * The definition of each aggregate table: its rows computed from the facts, in the tables' column
 * order. The rows the projection keeps equal these, rows whose counts fell to zero aside (the tests
 * check it after every scenario); a rebuild's bulk replay computes them once, from the facts it wrote.
 */
export const AGGREGATES_FROM_FACTS: Readonly<Record<string, string>> = {
  stats_session_counts: `SELECT tenant_id, user_id, status, count(*) FROM stats_sessions
    WHERE deleted_at IS NULL GROUP BY 1, 2, 3`,
  stats_turn_counts: `SELECT tenant_id, status, count(*) FROM stats_turns GROUP BY 1, 2`,
  stats_response_cells: `SELECT tenant_id, agent_name, model, execution_time_ms, count(*), sum(input_tokens),
    sum(output_tokens), sum(cached_tokens), sum(total_tokens), sum(cost_usd) FROM stats_responses GROUP BY 1, 2, 3, 4`,
  stats_agent_turns: `SELECT tenant_id, agent_name, count(DISTINCT turn_id) FROM stats_responses GROUP BY 1, 2`,
  stats_model_turns: `SELECT tenant_id, model, count(DISTINCT turn_id) FROM stats_responses GROUP BY 1, 2`,
};

/**
 * One step per aggregate table: replaces its rows with its {@link AGGREGATES_FROM_FACTS} definition
 * (search_path: the version's schema). The steps only read facts, so a rebuild runs them at once
 * (`ProjectionVersioning.replay.finish`).
 */
export const RECOUNT_AGGREGATES: readonly ((sql: Sql) => Promise<void>)[] = Object.entries(
  AGGREGATES_FROM_FACTS,
).map(([table, select]) => async (sql: Sql) => {
  await sql.query(`DELETE FROM ${table}`);
  await sql.query(`INSERT INTO ${table} ${select}`);
});

/**
 * The changes of one batch to the aggregates, as the statements that changed the facts returned them,
 * written at the end of the batch with one upsert per aggregate table (each key once, in key order, so
 * that concurrent batches lock the rows they share in the same order and cannot deadlock).
 */
class Deltas {
  private readonly sessions: z.infer<typeof SessionCountDelta>[] = [];
  private readonly turns: z.infer<typeof TurnCountDelta>[] = [];
  private readonly responses: ResponseDelta[] = [];

  /** `kept` false: the aggregates are not kept (a rebuild's bulk replay); every method does nothing. */
  constructor(readonly kept: boolean) {}

  addSessions(rows: readonly unknown[]): void {
    if (this.kept) for (const r of rows) this.sessions.push(SessionCountDelta.parse(r));
  }

  addTurns(rows: readonly unknown[]): void {
    if (this.kept) for (const r of rows) this.turns.push(TurnCountDelta.parse(r));
  }

  addResponses(rows: readonly unknown[]): void {
    if (this.kept) for (const r of rows) this.responses.push(ResponseDelta.parse(r));
  }

  /**
   * Writes every aggregate's deltas in one statement: one upsert per aggregate table with deltas, each a
   * data-modifying CTE (they change different tables; Postgres runs them in the order written, so
   * concurrent batches still lock shared rows in one order). One round trip instead of up to five: a
   * live batch's statements were the analytics consumer's main cost in scenario 1 (`pg` query submits
   * and their writes, 27% of its busy time, node --cpu-prof).
   */
  async write(sql: Sql): Promise<void> {
    if (!this.kept) return;
    const cells = this.responses.filter((d) => d.kind === 'cell');
    const turnsOf = (kind: 'agent' | 'model') =>
      this.responses.filter((d) => d.kind === kind).map((d) => ({ ...d, turns: d.calls }));
    const upserts = [
      upsertOf(
        'stats_session_counts',
        ['tenant_id', 'user_id', 'status'],
        ['sessions'],
        this.sessions.map((d) => ({ ...d, sessions: d.n })),
      ),
      upsertOf(
        'stats_turn_counts',
        ['tenant_id', 'status'],
        ['turns'],
        this.turns.map((d) => ({ ...d, turns: d.n })),
      ),
      upsertOf(
        'stats_response_cells',
        ['tenant_id', 'agent_name', 'model', 'execution_time_ms'],
        ['calls', 'input_tokens', 'output_tokens', 'cached_tokens', 'total_tokens', 'cost_usd'],
        cells,
      ),
      upsertOf('stats_agent_turns', ['tenant_id', 'agent_name'], ['turns'], turnsOf('agent')),
      upsertOf('stats_model_turns', ['tenant_id', 'model'], ['turns'], turnsOf('model')),
    ].filter((u) => u.rows.length > 0);
    if (upserts.length === 0) return;
    await sql.query(
      `WITH ${upserts.map((u, i) => `u${i} AS (${u.statement(`$${i + 1}`)})`).join(',\n')} SELECT 1`,
      upserts.map((u) => JSON.stringify(u.rows)),
    );
  }
}

/**
 * The upsert of one aggregate table's deltas: adds the summed deltas to the rows of `keys` (created at
 * the delta when missing), from the JSON array in parameter `param`. The first of `sums` is the row's
 * count: a key whose count changes by 0 is left alone. Keys in key order (see `Deltas`).
 */
function upsertOf(
  table: string,
  keys: readonly string[],
  sums: readonly [string, ...string[]],
  rows: readonly object[],
): { rows: readonly object[]; statement: (param: string) => string } {
  const types: Record<string, string> = { execution_time_ms: 'integer' };
  const record = [...keys, ...sums].map((c) => `${c} ${types[c] ?? (sums.includes(c) ? 'numeric' : 'text')}`);
  const k = keys.join(', ');
  return {
    rows,
    statement: (param) =>
      `INSERT INTO ${table} (${k}, ${sums.join(', ')})
       SELECT ${k}, ${sums.map((c) => `sum(${c})`).join(', ')}
       FROM json_to_recordset(${param}::json) AS u(${record.join(', ')})
       GROUP BY ${k} HAVING sum(${sums[0]}) <> 0 ORDER BY ${k}
       ON CONFLICT (${k}) DO UPDATE SET ${sums.map((c) => `${c} = ${table}.${c} + EXCLUDED.${c}`).join(', ')}`,
  };
}

/**
 * The `usage_stats` projection (issue 5): per session, user, agent, model and day, from the
 * session and conversation streams. Versioned (one schema per version, see `ProjectionRunner`);
 * applies events in batches with one multi-row statement per table and kind of change, and one
 * upsert per aggregate table.
 *
 * Session rows come from session events (status active / ended / expired; deleted is a tombstone);
 * turn rows from TurnLogged / TurnStarted, closed by TurnCompleted / TurnFailed; one response row per
 * agent response (keyed by the event's global position and its index in the event, so replays give
 * the same keys); one tool-call row per tool call id with its latest status (a ToolCallRecorded
 * replaces the row of an earlier record). TurnDeleted removes a turn's rows; SessionDeleted removes the
 * session's turn, response and tool-call rows; UserErased (stream type `user`) does the same for each
 * of the erased user's sessions and clears the user id of their tombstone rows. Erased events
 * themselves are skipped by the runner (`isErased`). The aggregates follow every change (`Deltas`).
 */
export class UsageStatsProjection implements Projection<UsageStatsEvent> {
  readonly name = USAGE_STATS;
  readonly streamTypes = [SESSION_CATEGORY, CONVERSATION_CATEGORY, USER_CATEGORY] as const;
  readonly versioning: ProjectionVersioning = {
    schemaPrefix: USAGE_STATS_SCHEMA_PREFIX,
    // 2: facts keyed by global position, with the aggregates global stats read (issue 6).
    // 3: text columns in the "C" collation (byte order), see USAGE_STATS_DDL.
    revision: 3,
    create: async (sql: Sql) => {
      for (const ddl of USAGE_STATS_DDL) await sql.query(ddl);
    },
    createIndexes: async (sql: Sql) => {
      for (const ddl of USAGE_STATS_INDEXES) await sql.query(ddl);
    },
    // A rebuild's bulk replay writes the facts only: the aggregates are counted from them once at the
    // end (at 1.1M events the statements returning each batch's deltas took as long again as its inserts:
    // 167 against 80 ms for 9,000 responses, EXPLAIN ANALYZE), and the lookup indexes wait until a batch
    // needs them (see USAGE_STATS_LOOKUP_INDEXES).
    replay: {
      // Folded once: whether the batch is independent and its rows both come from the fold (folding each
      // batch twice cost 1.8 s of the rebuild CLI's ~33 s of CPU at 1.1M events, node --cpu-prof).
      batch: (events: readonly UsageStatsEvent[]) => {
        const fold = BatchFold.of(events);
        return {
          // Batches of new sessions and whole turns only insert rows (and read no row an earlier batch wrote).
          independent: fold.onlyAddsRows(),
          write: (sql: SqlTransaction) => this.write(sql, fold, { bulk: sql }),
        };
      },
      finish: RECOUNT_AGGREGATES,
    },
  };

  async apply(sql: Sql, event: UsageStatsEvent): Promise<void> {
    await this.applyBatch(sql, [event]);
  }

  /** Versioned: a rebuild builds a new schema; nothing to empty. */
  async reset(): Promise<void> {}

  async applyBatch(sql: Sql, events: readonly UsageStatsEvent[]): Promise<void> {
    await this.write(sql, BatchFold.of(events), {});
  }

  // `bulk`: the transaction of a batch of a rebuild's bulk replay (versioning.replay): no aggregates,
  // facts loaded with COPY (see copyFacts), lookup indexes created when first needed.
  private async write(sql: Sql, fold: BatchFold, opts: { bulk?: SqlTransaction }): Promise<void> {
    const bulk = opts.bulk;
    const replay = bulk !== undefined;
    const deltas = new Deltas(!replay);
    // A fact row is keyed by the position of the event that recorded it: live handling may see an
    // event again (redelivery, a backfill racing a delivery), a bulk replay applies each event once, so
    // a conflict there is a defect to surface, not to skip (the check costs 11-13 of 52 ms per 9,000
    // responses, EXPLAIN ANALYZE on this machine).
    const factConflict = replay ? '' : 'ON CONFLICT DO NOTHING';
    if (replay && fold.changesEarlierFacts()) {
      for (const ddl of USAGE_STATS_LOOKUP_INDEXES) await sql.query(ddl);
    }

    deltas.addSessions(
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
        {
          conflict: 'ON CONFLICT DO NOTHING',
          changes: deltas.kept
            ? `SELECT tenant_id, user_id, status, count(*) AS n FROM changed
               WHERE deleted_at IS NULL GROUP BY tenant_id, user_id, status`
            : undefined,
        },
      ),
    );
    if (fold.sessionEnds.size > 0) {
      const ends = [...fold.sessionEnds.values()];
      deltas.addSessions(
        await sql.query(
          `WITH changed AS (
             UPDATE stats_sessions s SET status = u.status, ended_at = u.at
             FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(tenant_id, session_id, status, at)
             WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id AND s.status = 'active'
             RETURNING s.tenant_id, s.user_id, s.status, s.deleted_at)
           SELECT tenant_id, user_id, status, count(*) AS n FROM changed WHERE deleted_at IS NULL
           GROUP BY tenant_id, user_id, status
           UNION ALL
           SELECT tenant_id, user_id, 'active', -count(*) FROM changed WHERE deleted_at IS NULL
           GROUP BY tenant_id, user_id`,
          [
            ends.map((e) => e.tenant_id),
            ends.map((e) => e.session_id),
            ends.map((e) => e.status),
            ends.map((e) => e.at),
          ],
        ),
      );
    }
    const newTurns = [...fold.turns.values()];
    // A bulk replay loads the facts with COPY, without those of sessions deleted before them.
    const deletedSessions = bulk ? await deletedSessionsOf(bulk, fold) : new Set<string>();
    if (bulk) {
      await copyFacts(bulk, 'stats_turns', TURN_COLUMNS, newTurns, deletedSessions);
    } else {
      deltas.addTurns(
        await insertRows<TurnRow>(sql, 'stats_turns', TURN_COLUMNS, newTurns, {
          where: NOT_DELETED,
          conflict: factConflict,
          changes: deltas.kept
            ? 'SELECT tenant_id, status, count(*) AS n FROM changed GROUP BY tenant_id, status'
            : undefined,
        }),
      );
    }
    if (fold.turnUpdates.size > 0) {
      const ups = [...fold.turnUpdates.values()];
      deltas.addTurns(
        await sql.query(
          `WITH changed AS (
             UPDATE stats_turns t SET status = u.status,
               vector_cache_hit = COALESCE(u.vector_cache_hit, t.vector_cache_hit),
               processing_time_ms = COALESCE(u.processing_time_ms, t.processing_time_ms),
               ended_at = u.ended_at
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::integer[], $7::timestamptz[])
               AS u(tenant_id, session_id, turn_id, status, vector_cache_hit, processing_time_ms, ended_at)
             WHERE t.tenant_id = u.tenant_id AND t.session_id = u.session_id AND t.turn_id = u.turn_id
               AND t.status = 'in_progress'
             RETURNING t.tenant_id, t.status)
           SELECT tenant_id, status, count(*) AS n FROM changed GROUP BY tenant_id, status
           UNION ALL
           SELECT tenant_id, 'in_progress', -count(*) FROM changed GROUP BY tenant_id`,
          [
            ups.map((u) => u.tenant_id),
            ups.map((u) => u.session_id),
            ups.map((u) => u.turn_id),
            ups.map((u) => u.status),
            ups.map((u) => u.vector_cache_hit),
            ups.map((u) => u.processing_time_ms),
            ups.map((u) => u.ended_at),
          ],
        ),
      );
    }
    // A response to a turn of an earlier batch takes the turn's user from its row, with INSERT (a bulk
    // replay copies the others).
    const responses = bulk ? fold.responses.filter((r) => r.user_id === UNKNOWN_USER) : fold.responses;
    if (bulk) {
      const known = fold.responses.filter((r) => r.user_id !== UNKNOWN_USER);
      await copyFacts(bulk, 'stats_responses', RESPONSE_COLUMNS, known, deletedSessions);
    }
    deltas.addResponses(
      await insertRows<ResponseRow>(sql, 'stats_responses', RESPONSE_COLUMNS, responses, {
        select: RESPONSE_COLUMNS.map(([name]) =>
          name === 'user_id'
            ? `CASE WHEN u.user_id = '${UNKNOWN_USER}' THEN (SELECT t.user_id FROM stats_turns t
                   WHERE t.tenant_id = u.tenant_id AND t.session_id = u.session_id AND t.turn_id = u.turn_id)
                 ELSE u.user_id END`
            : `u.${name}`,
        ).join(', '),
        where: NOT_DELETED,
        conflict: factConflict,
        ...(deltas.kept && {
          changes: INSERTED_RESPONSE_DELTAS,
          params: [newTurns.map((t) => t.tenant_id), newTurns.map((t) => t.turn_id)],
        }),
      }),
    );
    if (fold.toolCallRecords.size > 0) {
      const recs = [...fold.toolCallRecords.values()];
      await sql.query(
        `DELETE FROM stats_tool_calls x
         USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(tenant_id, session_id, turn_id, tool_call_id)
         WHERE x.tenant_id = u.tenant_id AND x.session_id = u.session_id AND x.turn_id = u.turn_id
           AND x.tool_call_id = u.tool_call_id`,
        [
          recs.map((r) => r.tenant_id),
          recs.map((r) => r.session_id),
          recs.map((r) => r.turn_id),
          recs.map((r) => r.tool_call_id),
        ],
      );
    }
    const toolCalls = [...fold.toolCalls.values()];
    if (bulk) {
      await copyFacts(bulk, 'stats_tool_calls', TOOL_CALL_COLUMNS, toolCalls, deletedSessions);
    } else {
      await insertRows<ToolCallRow>(sql, 'stats_tool_calls', TOOL_CALL_COLUMNS, toolCalls, {
        where: NOT_DELETED,
        conflict: factConflict,
      });
    }
    if (fold.turnDeletes.size > 0) {
      const dels = [...fold.turnDeletes.values()];
      await deleteFacts(
        sql,
        deltas,
        `unnest($1::text[], $2::text[], $3::text[]) AS u(tenant_id, session_id, turn_id)`,
        'x.tenant_id = u.tenant_id AND x.session_id = u.session_id AND x.turn_id = u.turn_id',
        [dels.map((d) => d.tenant_id), dels.map((d) => d.session_id), dels.map((d) => d.turn_id)],
      );
    }
    if (fold.sessionDeletes.size > 0) {
      const dels = [...fold.sessionDeletes.values()];
      const params = [dels.map((d) => d.tenant_id), dels.map((d) => d.session_id)];
      deltas.addSessions(
        await markDeleted(
          sql,
          params,
          dels.map((d) => d.at),
        ),
      );
      await deleteFacts(sql, deltas, SESSIONS, SAME_SESSION, params);
    }
    if (fold.sessionErasures.size > 0) {
      // Last: whatever this batch inserted for an erased session goes too. The tombstone row stays
      // (late facts of the session are not inserted, see NOT_DELETED), without the user id.
      const erased = [...fold.sessionErasures.values()];
      const params = [erased.map((d) => d.tenant_id), erased.map((d) => d.session_id)];
      deltas.addSessions(
        await markDeleted(
          sql,
          params,
          erased.map((d) => d.at),
        ),
      );
      await sql.query(
        `UPDATE stats_sessions s SET user_id = NULL FROM ${SESSIONS}
         WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id`,
        params,
      );
      await deleteFacts(sql, deltas, SESSIONS, SAME_SESSION, params);
    }
    await deltas.write(sql);
  }
}

const SESSIONS = 'unnest($1::text[], $2::text[]) AS u(tenant_id, session_id)';
const SAME_SESSION = 'x.tenant_id = u.tenant_id AND x.session_id = u.session_id';

/**
 * Sets `deleted_at` (`$3`) of the sessions `$1`/`$2` not yet deleted; resolves to the session count
 * deltas (they leave their status's count).
 */
async function markDeleted(sql: Sql, sessions: unknown[], at: string[]): Promise<Record<string, unknown>[]> {
  return sql.query(
    `WITH changed AS (
       UPDATE stats_sessions s SET deleted_at = u.at
       FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(tenant_id, session_id, at)
       WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id AND s.deleted_at IS NULL
       RETURNING s.tenant_id, s.user_id, s.status)
     SELECT tenant_id, user_id, status, -count(*) AS n FROM changed GROUP BY tenant_id, user_id, status`,
    [...sessions, at],
  );
}

/** Deletes the response, tool-call and turn rows `from` (`u`) names with `match`, and their aggregates. */
async function deleteFacts(
  sql: Sql,
  deltas: Deltas,
  from: string,
  match: string,
  params: unknown[],
): Promise<void> {
  deltas.addResponses(
    await sql.query(
      `WITH changed AS (DELETE FROM stats_responses x USING ${from} WHERE ${match} RETURNING x.*)
       ${DELETED_RESPONSE_DELTAS}`,
      params,
    ),
  );
  await sql.query(`DELETE FROM stats_tool_calls x USING ${from} WHERE ${match}`, params);
  deltas.addTurns(
    await sql.query(
      `WITH changed AS (DELETE FROM stats_turns x USING ${from} WHERE ${match} RETURNING x.tenant_id, x.status)
       SELECT tenant_id, status, -count(*) AS n FROM changed GROUP BY tenant_id, status`,
      params,
    ),
  );
}
