import { z } from 'zod';
import {
  CONVERSATION_CATEGORY,
  type ConversationEvents,
  EMPTY_SESSION_CONTEXT,
  type ParsedEvent,
  SessionContext,
} from '@threadline/contracts';
import type { Projection, Sql } from '@threadline/event-store';
import {
  activityTimeOf,
  ContextTurn,
  evolveSessionContext,
  type SessionContextState,
} from './session-context';

/** The columns this projection owns, as read back (parsed, never cast). */
const ContextRow = z.object({
  turn_count: z.coerce.number().int().min(0),
  context: SessionContext,
  context_turn: ContextTurn,
});

/**
 * The turn context of each session (columns `turn_count`, `context`, `context_turn` and, shared with
 * the `sessions` projection, `last_activity_at` of the `sessions` table; migration
 * `SessionContext1732210000000`), kept from the conversation events (`conversation:<tenant>:<session>`
 * streams, written by the chat-log-service) that the session-service consumes from JetStream.
 *
 * Run by a `ProjectionRunner` (name `session_context`): each event is applied once, in stream order,
 * in the transaction that also moves the projection's stream position and checkpoint (ARCHITECTURE
 * rules 5 and 6). `apply` locks the session's row, folds the event into its state with the pure
 * `evolveSessionContext` and writes it back; `last_activity_at` only moves forward
 * (`GREATEST(current, event time)`, event time from the event's data, see `activityTimeOf`). The
 * tenant is the event's `metadata.tenantId`, the session its `data.sessionId`. An event of a session
 * that has no row (deleted) changes nothing.
 *
 * Rebuilds: `reset` empties only this projection's columns; `last_activity_at` is kept (replaying
 * with GREATEST gives it back unchanged). The rows themselves belong to the `sessions` projection,
 * whose rebuild recreates them with empty contexts and session-only activity times: after rebuilding
 * `sessions`, rebuild `session_context` too.
 */
export class SessionContextProjection implements Projection<ParsedEvent<typeof ConversationEvents>> {
  readonly name = 'session_context';
  readonly streamTypes = [CONVERSATION_CATEGORY] as const;

  /** Applies one stored conversation event. Throws for a non-conversation event or invalid data. */
  async apply(sql: Sql, parsed: ParsedEvent<typeof ConversationEvents>): Promise<void> {
    const event = parsed;
    const tenantId = parsed.envelope.metadata.tenantId;
    const sessionId = event.data.sessionId;
    const [row] = await sql.query(
      `SELECT turn_count, context, context_turn FROM sessions
       WHERE tenant_id = $1 AND session_id = $2 FOR UPDATE`,
      [tenantId, sessionId],
    );
    if (row === undefined) return; // deleted session (or one this database never had): nothing to keep
    const current = ContextRow.parse(row);
    const state: SessionContextState = {
      turnCount: current.turn_count,
      context: current.context,
      turn: current.context_turn,
    };
    const next = evolveSessionContext(state, event);
    await sql.query(
      `UPDATE sessions SET turn_count = $3, context = $4::jsonb, context_turn = $5::jsonb,
         last_activity_at = GREATEST(last_activity_at, $6::timestamptz)
       WHERE tenant_id = $1 AND session_id = $2`,
      [
        tenantId,
        sessionId,
        next.turnCount,
        JSON.stringify(next.context),
        JSON.stringify(next.turn),
        activityTimeOf(event),
      ],
    );
  }

  /** Empties this projection's columns of every session (start of a rebuild); `last_activity_at` stays. */
  async reset(sql: Sql): Promise<void> {
    await sql.query(
      `UPDATE sessions SET turn_count = 0, context = $1::jsonb, context_turn = '{}'::jsonb
       WHERE turn_count <> 0 OR context <> $1::jsonb OR context_turn <> '{}'::jsonb`,
      [JSON.stringify(EMPTY_SESSION_CONTEXT)],
    );
  }
}
