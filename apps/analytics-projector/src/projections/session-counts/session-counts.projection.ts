import { z } from 'zod';
import { type ParsedEvent, SESSION_CATEGORY, type SessionEvents } from '@threadline/contracts';
import type { Projection, Sql } from '@threadline/event-store';

/**
 * Status a session is counted under. `deleted` is counted apart from the session statuses of
 * the API (`active`, `ended`, `expired`): a deleted session leaves its previous status's count.
 */
export const CountedStatus = z.enum(['active', 'ended', 'expired', 'deleted']);
export type CountedStatus = z.infer<typeof CountedStatus>;

/** One row of `session_counts_by_tenant` / `session_counts_by_user` (bigints parsed to numbers). */
export const SessionCountsRow = z.object({
  active: z.coerce.number().int(),
  ended: z.coerce.number().int(),
  expired: z.coerce.number().int(),
  deleted: z.coerce.number().int(),
  total: z.coerce.number().int(),
});
export type SessionCountsRow = z.infer<typeof SessionCountsRow>;

/**
 * The `session_counts` projection: per tenant (`session_counts_by_tenant`) and per user
 * (`session_counts_by_user`) the number of sessions by status (active, ended, expired, deleted) and
 * in total (every session ever created, deleted ones included: the four statuses sum to the total).
 * Sessions without a user count only in their tenant's row. It stores each session's counted status
 * (`session_counts_sessions`): SessionEnded and SessionDeleted move the session, and with it one count,
 * from its old status to the new one; the two counts relations are views grouping that table (see the
 * migration for why not counter rows). Applied by a `ProjectionRunner`, event by event, in the
 * transaction that moves its positions and checkpoint (live events that arrive together share one).
 *
 * Throws when an event's type is not a session event, when its data does not match its contract,
 * or when an event refers to a session this projection has no SessionCreated for (a broken stream).
 */
export class SessionCountsProjection implements Projection<ParsedEvent<typeof SessionEvents>> {
  readonly name = 'session_counts';
  readonly streamTypes = [SESSION_CATEGORY] as const;

  async apply(sql: Sql, event: ParsedEvent<typeof SessionEvents>): Promise<void> {
    const tenantId = event.envelope.metadata.tenantId;
    switch (event.type) {
      case 'SessionCreated.v1':
        await sql.query(
          `INSERT INTO session_counts_sessions (tenant_id, session_id, user_id, status) VALUES ($1, $2, $3, 'active')
           ON CONFLICT DO NOTHING`,
          [tenantId, event.data.sessionId, event.data.userId],
        );
        return;
      case 'SessionTitleChanged.v1':
      case 'SessionMetadataUpdated.v1':
        // Counts do not depend on titles or metadata.
        return;
      case 'SessionEnded.v1':
        // Only an active session ends (an end of an ended or deleted one changes nothing).
        await this.transition(sql, tenantId, event.data.sessionId, 'ended', ['active'], event.type);
        return;
      case 'SessionExpired.v1':
        // Only an active session expires.
        await this.transition(sql, tenantId, event.data.sessionId, 'expired', ['active'], event.type);
        return;
      case 'SessionDeleted.v1':
        await this.transition(
          sql,
          tenantId,
          event.data.sessionId,
          'deleted',
          ['active', 'ended', 'expired'],
          event.type,
        );
        return;
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  async reset(sql: Sql): Promise<void> {
    // DELETE, not TRUNCATE: readers keep seeing the old rows until the rebuild commits (MVCC).
    await sql.query('DELETE FROM session_counts_sessions');
  }

  // Moves a session whose status is one of `from` to `to`, in one statement.
  private async transition(
    sql: Sql,
    tenantId: string,
    sessionId: string,
    to: CountedStatus,
    from: CountedStatus[],
    type: string,
  ): Promise<void> {
    const [row] = await sql.query(
      `WITH old AS (
         SELECT status FROM session_counts_sessions WHERE tenant_id = $1 AND session_id = $2 FOR UPDATE
       ), moved AS (
         UPDATE session_counts_sessions SET status = $3
         WHERE tenant_id = $1 AND session_id = $2 AND status = ANY($4::text[]) RETURNING 1
       )
       SELECT (SELECT count(*) FROM old) AS found`,
      [tenantId, sessionId, to, from],
    );
    if (z.object({ found: z.coerce.number() }).parse(row).found === 0) {
      throw new Error(
        `session_counts: ${type} for session ${tenantId}/${sessionId}, which was never created`,
      );
    }
  }
}

/** The counts of one user of one tenant (all zero when the user has no session). */
export async function readUserSessionCounts(
  sql: Sql,
  tenantId: string,
  userId: string,
): Promise<SessionCountsRow> {
  const [row] = await sql.query(
    'SELECT active, ended, expired, deleted, total FROM session_counts_by_user WHERE tenant_id = $1 AND user_id = $2',
    [tenantId, userId],
  );
  return row ? SessionCountsRow.parse(row) : { active: 0, ended: 0, expired: 0, deleted: 0, total: 0 };
}
