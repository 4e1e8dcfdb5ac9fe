import { z } from 'zod';
import {
  type CleanupCandidates,
  type CleanupCursor,
  conversationStreamId,
  SessionId,
  TenantId,
  UserId,
  isErased,
} from '@threadline/contracts';
import { EventStoreTransaction, type Sql } from '@threadline/event-store';
import { activityTimeOf, conversationEventRegistry } from './session-context';

const CandidateRow = z.object({
  tenant_id: TenantId,
  session_id: SessionId,
  user_id: UserId.nullable(),
  at: z.date(),
});

/** Which listing: idle active sessions (by last activity) or ended/expired ones (by end time). */
export type CleanupListingKind = 'idle' | 'retired';

function listingSql(kind: CleanupListingKind): { column: string; status: string } {
  switch (kind) {
    case 'idle':
      return { column: 'last_activity_at', status: `status = 'active'` };
    case 'retired':
      return { column: 'ended_at', status: `status IN ('ended', 'expired')` };
    default: {
      const unreachable: never = kind;
      return unreachable;
    }
  }
}

/**
 * One batch of cleanup candidates across tenants (or of one tenant), in `(time, tenant_id,
 * session_id)` order, for the cleanup-worker: `idle` lists active sessions whose `last_activity_at` is
 * before `before`; `retired` lists ended and expired sessions whose `ended_at` is before it. At most
 * `limit` rows (1-1000); `next` is the keyset cursor after the last row, null when no row follows.
 * Served by the partial indexes of migration `SessionLifecycle1732600000000`.
 */
export async function listCleanupCandidates(
  sql: Sql,
  kind: CleanupListingKind,
  opts: { before: string; limit: number; tenantId?: string | undefined; after?: CleanupCursor | undefined },
): Promise<CleanupCandidates> {
  const { column, status } = listingSql(kind);
  const params: unknown[] = [opts.before, opts.limit + 1];
  const where = [status, `${column} < $1::timestamptz`];
  if (opts.tenantId !== undefined) {
    params.push(opts.tenantId);
    where.push(`tenant_id = $${params.length}`);
  }
  if (opts.after !== undefined) {
    params.push(opts.after.at, opts.after.tenantId, opts.after.sessionId);
    const n = params.length;
    where.push(`(${column}, tenant_id, session_id) > ($${n - 2}::timestamptz, $${n - 1}, $${n})`);
  }
  const rows = (
    await sql.query(
      `SELECT tenant_id, session_id, user_id, ${column} AS at FROM sessions
       WHERE ${where.join(' AND ')}
       ORDER BY ${column}, tenant_id, session_id
       LIMIT $2`,
      params,
    )
  ).map((row) => CandidateRow.parse(row));
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    sessions: page.map((r) => ({
      tenant_id: r.tenant_id,
      session_id: r.session_id,
      user_id: r.user_id,
      at: r.at.toISOString(),
    })),
    next:
      rows.length > opts.limit && last
        ? { at: last.at.toISOString(), tenantId: last.tenant_id, sessionId: last.session_id }
        : null,
  };
}

/**
 * The user's active sessions, least recently active first (ties: oldest created, then lowest id): the
 * order in which the per-user limit ends them. Read inside the caller's transaction, after the
 * per-user lock, so it includes every committed start of that user.
 */
export async function activeSessionsOfUser(sql: Sql, tenantId: string, userId: string): Promise<string[]> {
  const rows = await sql.query(
    `SELECT session_id FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND status = 'active'
     ORDER BY last_activity_at ASC, created_at ASC, session_id ASC`,
    [tenantId, userId],
  );
  return rows.map((row) => z.object({ session_id: SessionId }).parse(row).session_id);
}

/**
 * The last activity of a session as strongly as the database knows it (ISO-8601), or null when the
 * session has no row: the later of the read model's `last_activity_at` (session writes, and turns the
 * `session_context` projection has applied) and the time of the last event of its conversation
 * stream (a turn the projection has not applied yet). Call it after locking the session's stream so
 * that no turn decided on the active session can commit unseen.
 */
export async function lastActivityOf(sql: Sql, tenantId: string, sessionId: string): Promise<string | null> {
  const [row] = await sql.query(
    'SELECT last_activity_at FROM sessions WHERE tenant_id = $1 AND session_id = $2',
    [tenantId, sessionId],
  );
  if (row === undefined) return null;
  let last = z.object({ last_activity_at: z.date() }).parse(row).last_activity_at.getTime();
  // The latest few events: a trailing TurnDeleted carries no activity time, the turn events before it do.
  const recent = await new EventStoreTransaction(sql).readStream(conversationStreamId(tenantId, sessionId), {
    direction: 'backward',
    limit: 10,
    tenantId,
  });
  for (const envelope of recent) {
    if (isErased(envelope) || !conversationEventRegistry.knows(envelope.eventType)) continue;
    const at = activityTimeOf(conversationEventRegistry.parse(envelope));
    if (at !== null) last = Math.max(last, Date.parse(at));
  }
  return new Date(last).toISOString();
}
