import { z } from 'zod';
import {
  type AgentResponseData,
  CONVERSATION_CATEGORY,
  ConversationEvents,
  type EventEnvelope,
  EventRegistry,
  type ParsedEvent,
  SESSION_CATEGORY,
  SessionEvents,
  type ToolCallData,
  type TurnView,
} from '@threadline/contracts';
import type { Projection, Sql } from '@threadline/event-store';
import { roundUsd } from '../usage/price-table';
import type { ConversationDomainEvent } from './conversation.decider';
import { COLUMNS, findTurn, toRecord, type TurnRecord } from './turns.read-model';

/** Knows the conversation and session events and their upcasters (none yet). */
const turnsEvents = [...ConversationEvents, ...SessionEvents] as const;
export const turnsEventRegistry = new EventRegistry(turnsEvents);

type AgentResponseView = TurnView['agent_responses'][number];
type ToolCallView = TurnView['tool_calls'][number];
type Opening = Extract<ConversationDomainEvent, { type: 'TurnLogged.v1' | 'TurnStarted.v1' }>;
type Change = Exclude<ConversationDomainEvent, Opening>;

const responseView = (r: AgentResponseData): AgentResponseView => ({
  agent_name: r.agentName,
  response: r.response,
  turn_order: r.turnOrder,
  model: r.model,
  started_at: r.startedAt,
  execution_time_ms: r.executionTimeMs,
  usage: {
    input_tokens: r.usage.inputTokens,
    output_tokens: r.usage.outputTokens,
    cached_tokens: r.usage.cachedTokens,
    reasoning_tokens: r.usage.reasoningTokens,
    total_tokens: r.usage.totalTokens,
  },
  usage_source: r.usageSource,
  cost_usd: r.costUsd,
});

const toolCallView = (c: ToolCallData, updatedAt: string): ToolCallView => ({
  tool_call_id: c.toolCallId,
  name: c.name,
  request: c.request,
  status: c.status,
  result: c.result,
  error: c.error,
  updated_at: updatedAt,
});

/** `view` with `usage` and `cost_usd` recomputed as sums over its agent responses (tokens, USD). */
function withTotals(view: TurnView): TurnView {
  const usage = { input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0 };
  let cost = 0;
  for (const r of view.agent_responses) {
    usage.input_tokens += r.usage.input_tokens;
    usage.output_tokens += r.usage.output_tokens;
    usage.cached_tokens += r.usage.cached_tokens;
    usage.reasoning_tokens += r.usage.reasoning_tokens;
    usage.total_tokens += r.usage.total_tokens;
    cost += r.cost_usd;
  }
  return { ...view, usage, cost_usd: roundUsd(cost) };
}

/** The view of a turn opened by `TurnLogged` (whole) or `TurnStarted` (in progress). Pure. */
export function openedTurnView(event: Opening): TurnView {
  const e = event.data;
  const base = {
    turn_id: e.turnId,
    session_id: e.sessionId,
    user_id: e.userId,
    conversation_turn: e.conversationTurn,
    user_input: e.userInput,
    vector_cache_hit: e.vectorCacheHit,
    started_at: e.startedAt,
    usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0 },
    cost_usd: 0,
  };
  if (event.type === 'TurnStarted.v1') {
    return {
      ...base,
      agent_responses: [],
      tool_calls: [],
      processing_time_ms: null,
      status: 'in_progress',
      error: null,
      completed_at: null,
      updated_at: e.startedAt,
    };
  }
  const l = event.data;
  return withTotals({
    ...base,
    agent_responses: l.agentResponses.map(responseView),
    tool_calls: l.toolCalls.map((c) => toolCallView(c, l.completedAt)),
    processing_time_ms: l.processingTimeMs,
    status: l.status,
    error: l.error,
    completed_at: l.completedAt,
    updated_at: l.completedAt,
  });
}

/**
 * The view after a later event of the turn, or null when the event deletes it. Pure. `AgentResponded`
 * appends the response (arrival order) and recomputes the totals; `ToolCallRecorded` replaces the call
 * with the same id or appends it; `TurnCompleted` / `TurnFailed` close the turn (`completed_at` is the
 * time it closed either way), keeping earlier values for what they leave null.
 */
export function changedTurnView(view: TurnView, event: Change): TurnView | null {
  switch (event.type) {
    case 'AgentResponded.v1':
      return withTotals({
        ...view,
        agent_responses: [...view.agent_responses, responseView(event.data.agentResponse)],
        updated_at: event.data.respondedAt,
      });
    case 'ToolCallRecorded.v1': {
      const call = toolCallView(event.data.toolCall, event.data.recordedAt);
      const index = view.tool_calls.findIndex((c) => c.tool_call_id === call.tool_call_id);
      const toolCalls =
        index < 0 ? [...view.tool_calls, call] : view.tool_calls.map((c, i) => (i === index ? call : c));
      return { ...view, tool_calls: toolCalls, updated_at: event.data.recordedAt };
    }
    case 'TurnCompleted.v1': {
      const e = event.data;
      return {
        ...view,
        status: 'completed',
        processing_time_ms: e.processingTimeMs ?? view.processing_time_ms,
        vector_cache_hit: e.vectorCacheHit ?? view.vector_cache_hit,
        completed_at: e.completedAt,
        updated_at: e.completedAt,
      };
    }
    case 'TurnFailed.v1': {
      const e = event.data;
      return {
        ...view,
        status: 'failed',
        error: e.error,
        processing_time_ms: e.processingTimeMs ?? view.processing_time_ms,
        completed_at: e.failedAt,
        updated_at: e.failedAt,
      };
    }
    case 'TurnDeleted.v1':
      return null;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

const TenantOfRow = z.object({ tenant_id: z.string() });

/** Whether `event` is a later event of a turn (not its opening, not a session event). */
function isTurnChange(event: ParsedEvent<typeof turnsEvents>): event is Change & typeof event {
  switch (event.type) {
    case 'AgentResponded.v1':
    case 'ToolCallRecorded.v1':
    case 'TurnCompleted.v1':
    case 'TurnFailed.v1':
    case 'TurnDeleted.v1':
      return true;
    case 'TurnLogged.v1':
    case 'TurnStarted.v1':
    case 'SessionCreated.v1':
    case 'SessionTitleChanged.v1':
    case 'SessionMetadataUpdated.v1':
    case 'SessionEnded.v1':
    case 'SessionExpired.v1':
    case 'SessionDeleted.v1':
      return false;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/** A turn's row of `turns` as JSON (the columns `save` writes), for `json_populate_recordset`. */
function turnRow(tenantId: string, v: TurnView, version: number, global: number): Record<string, unknown> {
  return {
    tenant_id: tenantId,
    turn_id: v.turn_id,
    session_id: v.session_id,
    user_id: v.user_id,
    conversation_turn: v.conversation_turn,
    user_input: v.user_input,
    agent_responses: v.agent_responses,
    tool_calls: v.tool_calls,
    input_tokens: v.usage.input_tokens,
    output_tokens: v.usage.output_tokens,
    cached_tokens: v.usage.cached_tokens,
    reasoning_tokens: v.usage.reasoning_tokens,
    total_tokens: v.usage.total_tokens,
    cost_usd: v.cost_usd,
    status: v.status,
    error: v.error,
    vector_cache_hit: v.vector_cache_hit,
    processing_time_ms: v.processing_time_ms,
    started_at: v.started_at,
    completed_at: v.completed_at,
    updated_at: v.updated_at,
    version,
    last_global_position: global,
  };
}

/**
 * The `turns` read model (tables `turns` and `turn_ids` of migration `Turns1732400000000`).
 *
 * Used inline: {@link inline} is the `inline` callback of `EventStoreTransaction.append`, so a turn's
 * row commits with its events and a write's reply (and any query after it) sees it. It is also a
 * {@link Projection} over the `conversation` and `session` stream types, so a `ProjectionRunner` can
 * rebuild it from the event store: of the session events only `SessionDeleted` matters (the session's
 * turns leave the read model; live, the same happens from JetStream, see `SessionDeletionsController`).
 *
 * Idempotent (ARCHITECTURE rule 6): a row's `version` is the stream position of the last event applied
 * to it and an event at or below it changes nothing; `turn_ids.deleted` keeps a deleted turn from
 * coming back when its first event is replayed. Times come from the events, never from the clock.
 */
export class TurnsProjection implements Projection<ParsedEvent<typeof turnsEvents>> {
  readonly name = 'turns';
  readonly streamTypes = [CONVERSATION_CATEGORY, SESSION_CATEGORY] as const;

  /** The `inline` callback of `append`: applies the just-stored conversation events in its transaction. */
  readonly inline = async (sql: Sql, events: EventEnvelope[]): Promise<void> => {
    for (const envelope of events) await this.apply(sql, turnsEventRegistry.parse(envelope));
  };

  /** Applies one stored event of a followed stream type. Throws for invalid data or a foreign event. */
  async apply(sql: Sql, parsed: ParsedEvent<typeof turnsEvents>): Promise<void> {
    switch (parsed.type) {
      case 'SessionDeleted.v1':
        await this.deleteSessionTurns(sql, parsed.envelope.metadata.tenantId, parsed.data.sessionId);
        return;
      case 'SessionCreated.v1':
      case 'SessionTitleChanged.v1':
      case 'SessionMetadataUpdated.v1':
      case 'SessionEnded.v1':
      case 'SessionExpired.v1':
        return;
      case 'TurnLogged.v1':
      case 'TurnStarted.v1':
      case 'AgentResponded.v1':
      case 'ToolCallRecorded.v1':
      case 'TurnCompleted.v1':
      case 'TurnFailed.v1':
      case 'TurnDeleted.v1':
        await this.applyConversationEvent(sql, parsed, parsed.envelope);
        return;
      default: {
        const unreachable: never = parsed;
        return unreachable;
      }
    }
  }

  /**
   * The inline projection of turns just opened, many in ONE statement (the LogTurn batch, see
   * `LogTurnBatcher`). Each entry holds the events one append stored for one new turn: its opening
   * event (`TurnLogged` / `TurnStarted`), then its `AgentResponded` / `ToolCallRecorded` events. Each is
   * folded in memory with the pure functions {@link apply} uses ({@link openedTurnView},
   * {@link changedTurnView}), which gives the row `apply` would leave after its events one by one, and
   * written as `save` writes an opening (`turn_ids` first; nothing for an id marked deleted or a row
   * already there). Returns each turn's row as stored (`RETURNING`: what a read-back would see), in
   * order. Throws for an entry that does not open a turn, and when a row was not written: these are
   * new turns, so either means the read model does not match the events.
   */
  async openTurns(sql: Sql, appended: readonly EventEnvelope[][]): Promise<TurnRecord[]> {
    const rows = appended.map((events) => {
      const [first, ...rest] = events.map((e) => turnsEventRegistry.parse(e));
      if (first?.type !== 'TurnLogged.v1' && first?.type !== 'TurnStarted.v1')
        throw new Error(`a new turn's events start with ${first?.type ?? 'nothing'}, not its opening`);
      let view = openedTurnView(first);
      for (const event of rest) {
        const next = isTurnChange(event) ? changedTurnView(view, event) : null;
        if (next === null) throw new Error(`a new turn's events hold a ${event.type}`);
        view = next;
      }
      const last = events[events.length - 1]!;
      return {
        tenantId: last.metadata.tenantId,
        view,
        version: last.streamPosition,
        global: last.globalPosition,
      };
    });
    const stored = await sql.query(
      `WITH r AS (SELECT * FROM json_populate_recordset(NULL::turns, $1::json)),
       id AS (INSERT INTO turn_ids (tenant_id, turn_id, session_id) SELECT tenant_id, turn_id, session_id FROM r
              ON CONFLICT (tenant_id, turn_id) DO UPDATE SET deleted = turn_ids.deleted
              RETURNING tenant_id, turn_id, deleted)
       INSERT INTO turns (${COLUMNS})
       SELECT ${COLUMNS} FROM r JOIN id USING (tenant_id, turn_id) WHERE NOT id.deleted
       ON CONFLICT (tenant_id, turn_id) DO NOTHING
       RETURNING ${COLUMNS}`,
      [JSON.stringify(rows.map((r) => turnRow(r.tenantId, r.view, r.version, r.global)))],
    );
    const records = new Map<string, TurnRecord>();
    for (const row of stored) {
      const record = toRecord(row);
      records.set(`${TenantOfRow.parse(row).tenant_id}\u0000${record.view.turn_id}`, record);
    }
    return rows.map((r) => {
      const record = records.get(`${r.tenantId}\u0000${r.view.turn_id}`);
      if (!record)
        throw new Error(`turns read model wrote no row for new turn ${r.tenantId}/${r.view.turn_id}`);
      return record;
    });
  }

  /** Empties the read model (start of a rebuild). */
  async reset(sql: Sql): Promise<void> {
    await sql.query('DELETE FROM turns');
    await sql.query('DELETE FROM turn_ids');
  }

  /**
   * Removes every turn of a deleted session from the read model and marks their ids deleted.
   * Idempotent: a second call finds nothing to remove. Returns the number of rows removed.
   */
  async deleteSessionTurns(sql: Sql, tenantId: string, sessionId: string): Promise<number> {
    await sql.query(
      'UPDATE turn_ids SET deleted = true WHERE tenant_id = $1 AND session_id = $2 AND NOT deleted',
      [tenantId, sessionId],
    );
    const removed = await sql.query(
      'DELETE FROM turns WHERE tenant_id = $1 AND session_id = $2 RETURNING turn_id',
      [tenantId, sessionId],
    );
    return removed.length;
  }

  private async applyConversationEvent(
    sql: Sql,
    event: ConversationDomainEvent,
    envelope: EventEnvelope,
  ): Promise<void> {
    const tenantId = envelope.metadata.tenantId;
    const position = envelope.streamPosition;
    const global = envelope.globalPosition;
    switch (event.type) {
      case 'TurnLogged.v1':
      case 'TurnStarted.v1': {
        await this.save(sql, tenantId, openedTurnView(event), position, global, 'open');
        return;
      }
      case 'AgentResponded.v1':
      case 'ToolCallRecorded.v1':
      case 'TurnCompleted.v1':
      case 'TurnFailed.v1':
      case 'TurnDeleted.v1': {
        const turnId = event.data.turnId;
        if (event.type === 'TurnDeleted.v1') {
          await sql.query('UPDATE turn_ids SET deleted = true WHERE tenant_id = $1 AND turn_id = $2', [
            tenantId,
            turnId,
          ]);
        }
        const current = await findTurn(sql, tenantId, turnId, { forUpdate: true });
        if (!current || current.version >= position) return;
        const next = changedTurnView(current.view, event);
        if (next === null) {
          await sql.query('DELETE FROM turns WHERE tenant_id = $1 AND turn_id = $2', [tenantId, turnId]);
          return;
        }
        await this.save(sql, tenantId, next, position, global, 'update');
        return;
      }
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  /**
   * Writes a turn's row. `open` (the turn's first event) registers its id in `turn_ids` in the same
   * statement and writes nothing when the id is marked deleted (a replay after a deletion) or the row
   * exists (a replay); `update` replaces a row of a lower version.
   */
  private async save(
    sql: Sql,
    tenantId: string,
    v: TurnView,
    position: number,
    global: number,
    mode: 'open' | 'update',
  ): Promise<void> {
    const conflict =
      mode === 'open'
        ? 'DO NOTHING'
        : `DO UPDATE SET agent_responses = EXCLUDED.agent_responses, tool_calls = EXCLUDED.tool_calls,
             input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
             cached_tokens = EXCLUDED.cached_tokens, reasoning_tokens = EXCLUDED.reasoning_tokens,
             total_tokens = EXCLUDED.total_tokens, cost_usd = EXCLUDED.cost_usd, status = EXCLUDED.status,
             error = EXCLUDED.error, vector_cache_hit = EXCLUDED.vector_cache_hit,
             processing_time_ms = EXCLUDED.processing_time_ms, completed_at = EXCLUDED.completed_at,
             updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
             last_global_position = EXCLUDED.last_global_position
           WHERE turns.version < EXCLUDED.version`;
    // Opening: the id goes into turn_ids first (kept forever); a deleted id stops the row.
    const registerId =
      mode === 'open'
        ? `WITH id AS (INSERT INTO turn_ids (tenant_id, turn_id, session_id) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, turn_id) DO UPDATE SET deleted = turn_ids.deleted RETURNING deleted) `
        : '';
    await sql.query(
      `${registerId}INSERT INTO turns (tenant_id, turn_id, session_id, user_id, conversation_turn, user_input,
                          agent_responses, tool_calls, input_tokens, output_tokens, cached_tokens, reasoning_tokens,
                          total_tokens, cost_usd, status, error, vector_cache_hit, processing_time_ms, started_at,
                          completed_at, updated_at, version, last_global_position)
       SELECT $1, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
               $19::timestamptz, $20::timestamptz, $21::timestamptz, $22, $23
       ${mode === 'open' ? 'WHERE NOT (SELECT deleted FROM id)' : ''}
       ON CONFLICT (tenant_id, turn_id) ${conflict}`,
      [
        tenantId,
        v.turn_id,
        v.session_id,
        v.user_id,
        v.conversation_turn,
        v.user_input,
        JSON.stringify(v.agent_responses),
        JSON.stringify(v.tool_calls),
        v.usage.input_tokens,
        v.usage.output_tokens,
        v.usage.cached_tokens,
        v.usage.reasoning_tokens,
        v.usage.total_tokens,
        v.cost_usd,
        v.status,
        v.error,
        v.vector_cache_hit,
        v.processing_time_ms,
        v.started_at,
        v.completed_at,
        v.updated_at,
        position,
        global,
      ],
    );
  }
}
