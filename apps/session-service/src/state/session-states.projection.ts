import { z } from 'zod';
import {
  type EventEnvelope,
  EventRegistry,
  JsonValue,
  type ParsedEvent,
  SESSION_CATEGORY,
  SESSION_STATE_CATEGORY,
  SessionEvents,
  SessionStateEvents,
  StateStatus,
  StateSummary,
  ToolCallStatus,
} from '@threadline/contracts';
import type { Projection, Sql } from '@threadline/event-store';
import {
  evolve,
  initialState,
  isComplete,
  type StateDocument,
  type ToolCall,
  type WorkflowState,
} from './state.decider';

/** Knows the workflow-state events and their upcasters (none yet). */
export const stateEventRegistry = new EventRegistry(SessionStateEvents);

/** What the `session_states` projection follows: the state events, and the session events for deletion. */
const sessionStatesEvents = [...SessionStateEvents, ...SessionEvents] as const;
/** The registry of a `ProjectionRunner` of {@link SessionStatesProjection}. */
export const sessionStatesEventRegistry = new EventRegistry(sessionStatesEvents);

/** The state document as stored in `session_states.document` (parsed when read back, never cast). */
const StoredDocument = z.object({
  constraints: JsonValue.optional(),
  strategy: JsonValue.optional(),
  response_plan: JsonValue.optional(),
  summary: StateSummary.optional(),
  status: StateStatus.optional(),
});

const StoredToolCall = z.object({
  name: z.string(),
  description: z.string().nullable(),
  status: ToolCallStatus,
  result: JsonValue.nullable(),
  error: z.string().nullable(),
  plannedAt: z.string(),
  updatedAt: z.string(),
});

const StateRow = z.object({
  session_id: z.string(),
  version: z.coerce.number().int().min(1),
  document: StoredDocument,
  tool_calls: z.array(StoredToolCall),
  updated_at: z.date(),
  last_global_position: z.coerce.number().int(),
});

/** A row of `session_states`: the workflow part of the state, and the last event's global position. */
export interface StateRecord {
  state: WorkflowState;
  lastGlobalPosition: number;
}

/** Parses a `session_states` row into the decider's state (the session part is not kept there). */
function toRecord(row: unknown): StateRecord {
  const r = StateRow.parse(row);
  const document: StateDocument = {};
  for (const [key, value] of Object.entries(r.document)) {
    if (value !== undefined) Object.assign(document, { [key]: value });
  }
  const toolCalls: ToolCall[] = r.tool_calls;
  return {
    state: {
      ...initialState(),
      version: r.version,
      document,
      toolCalls,
      updatedAt: r.updated_at.toISOString(),
    },
    lastGlobalPosition: r.last_global_position,
  };
}

/**
 * The session's state row, or null when the session has no state event (yet). `tenantId` scoped;
 * says nothing about whether the session exists (check the `sessions` read model for that).
 */
export async function findStateRecord(
  sql: Sql,
  tenantId: string,
  sessionId: string,
): Promise<StateRecord | null> {
  const [row] = await sql.query(
    `SELECT session_id, version, document, tool_calls, updated_at, last_global_position
     FROM session_states WHERE tenant_id = $1 AND session_id = $2`,
    [tenantId, sessionId],
  );
  return row === undefined ? null : toRecord(row);
}

/**
 * The `session_states` read model (migration `SessionStates1732600000000`).
 *
 * Inline: `inline` is the `inline` callback of `EventStoreTransaction.append`, so a session's state
 * row commits with its events and a read right after a write sees it. Also a {@link Projection}
 * (`session_states`, stream types `session_state` and `session`, registry
 * `sessionStatesEventRegistry`) so a `ProjectionRunner` can rebuild it.
 *
 * Each event is folded with the decider's own `evolve` over the stored row, so the current state and
 * a time-travel fold of the stream (`?version=`, `?at=`) can never disagree. Idempotent: an event at
 * or below the row's `version` changes nothing (ARCHITECTURE rule 6). Times come from the events.
 */
export class SessionStatesProjection implements Projection<ParsedEvent<typeof sessionStatesEvents>> {
  readonly name = 'session_states';
  readonly streamTypes = [SESSION_STATE_CATEGORY, SESSION_CATEGORY] as const;

  /** The `inline` callback of `append`: applies the just-stored events in the append's transaction. */
  readonly inline = async (sql: Sql, events: EventEnvelope[]): Promise<void> => {
    for (const envelope of events) await this.apply(sql, stateEventRegistry.parse(envelope));
  };

  /**
   * Applies one stored state event, or a session event: `SessionDeleted` removes the session's state
   * row (a rebuild replays it after the state events, so a deleted session's state never comes back);
   * the other session events change nothing. Throws for invalid stored rows or event data.
   */
  async apply(sql: Sql, event: ParsedEvent<typeof sessionStatesEvents>): Promise<void> {
    switch (event.type) {
      case 'SessionDeleted.v1':
        await this.deleteState(sql, event.envelope.metadata.tenantId, event.data.sessionId);
        return;
      case 'SessionCreated.v1':
      case 'SessionTitleChanged.v1':
      case 'SessionMetadataUpdated.v1':
      case 'SessionEnded.v1':
      case 'SessionExpired.v1':
        return;
      case 'SessionStateUpdated.v1':
      case 'ToolCallPlanned.v1':
      case 'ToolCallStatusChanged.v1':
        await this.applyStateEvent(sql, event);
        return;
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  /** Removes the state row of session `sessionId` (its deletion); answers whether there was one. */
  async deleteState(sql: Sql, tenantId: string, sessionId: string): Promise<boolean> {
    const removed = await sql.query(
      'DELETE FROM session_states WHERE tenant_id = $1 AND session_id = $2 RETURNING session_id',
      [tenantId, sessionId],
    );
    return removed.length > 0;
  }

  private async applyStateEvent(sql: Sql, event: ParsedEvent<typeof SessionStateEvents>): Promise<void> {
    const tenantId = event.envelope.metadata.tenantId;
    const sessionId = event.data.sessionId;
    const position = event.envelope.streamPosition;
    const current = await findStateRecord(sql, tenantId, sessionId);
    const before = current?.state ?? initialState();
    if (position <= before.version) return;
    const after = evolve(before, event);
    await sql.query(
      `INSERT INTO session_states (tenant_id, session_id, version, document, tool_calls, tool_call_count,
                                   is_complete, updated_at, last_global_position)
       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8::timestamptz, $9)
       ON CONFLICT (tenant_id, session_id) DO UPDATE SET version = EXCLUDED.version,
         document = EXCLUDED.document, tool_calls = EXCLUDED.tool_calls,
         tool_call_count = EXCLUDED.tool_call_count, is_complete = EXCLUDED.is_complete,
         updated_at = EXCLUDED.updated_at, last_global_position = EXCLUDED.last_global_position`,
      [
        tenantId,
        sessionId,
        // The stream position, not a count: a fold that started mid-stream still records where it is.
        position,
        JSON.stringify(after.document),
        JSON.stringify(after.toolCalls),
        after.toolCalls.length,
        isComplete(after.toolCalls),
        after.updatedAt,
        event.envelope.globalPosition,
      ],
    );
  }

  /** Empties the read model (start of a rebuild). */
  async reset(sql: Sql): Promise<void> {
    await sql.query('DELETE FROM session_states');
  }
}
