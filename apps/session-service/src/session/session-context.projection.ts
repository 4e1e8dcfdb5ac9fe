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
 * rules 5 and 6). `applyBatch` (and `apply`, a batch of one) locks the sessions' rows, folds the
 * events into their states with the pure `evolveSessionContext` and writes them back; the runner hands
 * it the events committed together (live group commit, rebuild batches). `last_activity_at` only moves forward
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
  async apply(sql: Sql, event: ParsedEvent<typeof ConversationEvents>): Promise<void> {
    await this.applyBatch(sql, [event]);
  }

  /**
   * Applies events in order with two statements whatever their number: locks and reads the rows of
   * their sessions (in key order, so concurrent batches cannot deadlock), folds each session's events
   * in memory with `evolveSessionContext`, and writes every changed row back with its latest activity
   * time. Leaves the rows `apply` of each event in turn leaves. Throws when a row's columns do not parse.
   */
  async applyBatch(sql: Sql, events: readonly ParsedEvent<typeof ConversationEvents>[]): Promise<void> {
    if (events.length === 0) return;
    const keyOf = (tenantId: string, sessionId: string) => `${tenantId}\u0000${sessionId}`;
    const wanted = new Map<string, { tenant_id: string; session_id: string }>();
    for (const event of events) {
      const tenantId = event.envelope.metadata.tenantId;
      wanted.set(keyOf(tenantId, event.data.sessionId), {
        tenant_id: tenantId,
        session_id: event.data.sessionId,
      });
    }
    const rows = await sql.query<Record<string, unknown> & { tenant_id: string; session_id: string }>(
      `SELECT s.tenant_id, s.session_id, s.turn_count, s.context, s.context_turn
       FROM sessions s JOIN json_to_recordset($1::json) AS u(tenant_id text, session_id text)
         ON s.tenant_id = u.tenant_id AND s.session_id = u.session_id
       ORDER BY s.tenant_id, s.session_id
       FOR UPDATE OF s`,
      [JSON.stringify([...wanted.values()])],
    );
    // Sessions without a row (deleted, or never in this database) keep nothing.
    const sessions = new Map<string, { state: SessionContextState; activity: string[] }>();
    for (const row of rows) {
      const current = ContextRow.parse(row);
      sessions.set(keyOf(row.tenant_id, row.session_id), {
        state: { turnCount: current.turn_count, context: current.context, turn: current.context_turn },
        activity: [],
      });
    }
    for (const event of events) {
      const session = sessions.get(keyOf(event.envelope.metadata.tenantId, event.data.sessionId));
      if (!session) continue;
      session.state = evolveSessionContext(session.state, event);
      const at = activityTimeOf(event);
      if (at !== null) session.activity.push(at);
    }
    if (sessions.size === 0) return;
    const updates = [...sessions].map(([key, { state, activity }]) => ({
      ...wanted.get(key),
      turn_count: state.turnCount,
      context: state.context,
      context_turn: state.turn,
      activity,
    }));
    // last_activity_at only moves forward: GREATEST ignores the NULL of a session without activity times.
    await sql.query(
      `UPDATE sessions s SET turn_count = u.turn_count, context = u.context, context_turn = u.context_turn,
         last_activity_at = GREATEST(s.last_activity_at,
           (SELECT max(a::timestamptz) FROM json_array_elements_text(u.activity) AS a))
       FROM json_to_recordset($1::json)
         AS u(tenant_id text, session_id text, turn_count int, context jsonb, context_turn jsonb, activity json)
       WHERE s.tenant_id = u.tenant_id AND s.session_id = u.session_id`,
      [JSON.stringify(updates)],
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
