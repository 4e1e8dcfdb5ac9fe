import { ExpireSession, ListIdleSessions, type CleanupCursor } from '@threadline/contracts';
import { isGone, type PassContext, type SessionsPort } from './sessions-port';

/** The instant before which a session's last activity makes it idle: `now - timeoutMs` (ISO-8601). */
export const idleCutoff = (now: Date, timeoutMs: number): string =>
  new Date(now.getTime() - timeoutMs).toISOString();

/**
 * Expiry policy (issue 4; seed 004's session timeout): lists the active sessions idle since before
 * `now - timeoutMs` in batches of `batchSize` (oldest activity first, keyset cursor) and sends
 * `ExpireSession` with that cutoff for each. The session-service re-checks the cutoff under the
 * session's lock, so a session that saw activity after it was listed is left alone (not counted). Stops
 * after `maxBatches` batches. Returns how many sessions were expired. A session deleted meanwhile is
 * skipped; any other error stops the pass (thrown).
 */
export async function expireIdleSessions(
  sessions: SessionsPort,
  pass: PassContext,
  now: Date,
  timeoutMs: number,
): Promise<number> {
  const idleBefore = idleCutoff(now, timeoutMs);
  let after: CleanupCursor | undefined;
  let expired = 0;
  for (let batch = 0; batch < pass.maxBatches; batch += 1) {
    const page = await sessions.request(ListIdleSessions, {
      idleBefore,
      limit: pass.batchSize,
      ...(pass.tenantId !== undefined ? { tenantId: pass.tenantId } : {}),
      ...(after !== undefined ? { after } : {}),
    });
    for (const candidate of page.sessions) {
      try {
        const reply = await sessions.request(ExpireSession, {
          context: { tenantId: candidate.tenant_id, correlationId: pass.correlationId },
          sessionId: candidate.session_id,
          idleCutoff: idleBefore,
          idleTimeoutMs: timeoutMs,
        });
        if (reply.expired) expired += 1;
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    }
    if (page.next === null) break;
    after = page.next;
  }
  return expired;
}
