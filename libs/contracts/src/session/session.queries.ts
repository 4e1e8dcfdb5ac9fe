import { z } from 'zod';
import { IsoDate, SessionId, TenantId, UserId } from '../common';
import { defineQuery } from '../define-message';
import { SessionPage, SessionStatus, SessionView } from './session.views';

export const SessionStatusFilter = z.enum(['active', 'ended', 'expired', 'all']);
export const SessionSort = z.enum(['created_at', 'last_activity_at']);
export const SortOrder = z.enum(['asc', 'desc']);

export const GetSession = defineQuery(
  'session',
  'GetSession',
  z.object({ tenantId: TenantId, sessionId: SessionId, userId: UserId.optional() }),
  SessionView,
);

export const ListUserSessions = defineQuery(
  'session',
  'ListUserSessions',
  z.object({
    tenantId: TenantId,
    userId: UserId,
    status: SessionStatusFilter,
    limit: z.number().int().min(1).max(200),
    cursor: z.string().max(512).optional(),
    sort: SessionSort,
    order: SortOrder,
    metadata: z.record(z.string().max(128), z.string().max(1024)).optional(),
  }),
  SessionPage,
);

export const GetCurrentSession = defineQuery(
  'session',
  'GetCurrentSession',
  z.object({ tenantId: TenantId, userId: UserId }),
  SessionView,
);

export const ListSessions = defineQuery(
  'session',
  'ListSessions',
  z.object({
    tenantId: TenantId,
    status: SessionStatusFilter,
    limit: z.number().int().min(1).max(200),
    cursor: z.string().max(512).optional(),
  }),
  SessionPage,
);

/** Keyset position in a cleanup listing: the last candidate of the previous batch. */
export const CleanupCursor = z.object({ at: IsoDate, tenantId: TenantId, sessionId: SessionId });
export type CleanupCursor = z.infer<typeof CleanupCursor>;

/**
 * A batch of cleanup candidates in `(at, tenant_id, session_id)` order; `at` is the last activity
 * (idle listing) or the end time (retention listing). `next` is the cursor of the next batch, null
 * when this batch is the last.
 */
export const CleanupCandidates = z.object({
  sessions: z.array(
    z.object({ tenant_id: TenantId, session_id: SessionId, user_id: UserId.nullable(), at: IsoDate }),
  ),
  next: CleanupCursor.nullable(),
});
export type CleanupCandidates = z.infer<typeof CleanupCandidates>;

const CleanupListing = {
  limit: z.number().int().min(1).max(1000),
  tenantId: TenantId.optional().describe('Only this tenant; every tenant when absent'),
  after: CleanupCursor.optional(),
};

/** Active sessions whose last activity is before `idleBefore` (oldest first), for the expiry policy. */
export const ListIdleSessions = defineQuery(
  'session',
  'ListIdleSessions',
  z.object({ idleBefore: IsoDate, ...CleanupListing }),
  CleanupCandidates,
);

/** Ended and expired sessions that ended before `endedBefore` (oldest first), for the retention policy. */
export const ListRetiredSessions = defineQuery(
  'session',
  'ListRetiredSessions',
  z.object({ endedBefore: IsoDate, ...CleanupListing }),
  CleanupCandidates,
);

export { SessionStatus };
