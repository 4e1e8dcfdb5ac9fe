import { DeleteSession, ListRetiredSessions, type CleanupCursor } from '@threadline/contracts';
import { isGone, type PassContext, type SessionsPort } from './sessions-port';

/**
 * Retention policy (issue 4, `RETENTION_DAYS`): lists the ended and expired sessions that ended before
 * `now - retentionMs` in batches (oldest end first, keyset cursor) and sends `DeleteSession` for each.
 * `retentionMs` null keeps sessions forever (nothing listed, 0 returned). Stops after `maxBatches`
 * batches. Returns how many sessions were deleted. A session deleted meanwhile is skipped; any other
 * error stops the pass (thrown).
 */
export async function deleteRetiredSessions(
  sessions: SessionsPort,
  pass: PassContext,
  now: Date,
  retentionMs: number | null,
): Promise<number> {
  if (retentionMs === null) return 0;
  const endedBefore = new Date(now.getTime() - retentionMs).toISOString();
  let after: CleanupCursor | undefined;
  let deleted = 0;
  for (let batch = 0; batch < pass.maxBatches; batch += 1) {
    const page = await sessions.request(ListRetiredSessions, {
      endedBefore,
      limit: pass.batchSize,
      ...(pass.tenantId !== undefined ? { tenantId: pass.tenantId } : {}),
      ...(after !== undefined ? { after } : {}),
    });
    for (const candidate of page.sessions) {
      try {
        await sessions.request(DeleteSession, {
          context: { tenantId: candidate.tenant_id, correlationId: pass.correlationId },
          sessionId: candidate.session_id,
        });
        deleted += 1;
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    }
    if (page.next === null) break;
    after = page.next;
  }
  return deleted;
}
