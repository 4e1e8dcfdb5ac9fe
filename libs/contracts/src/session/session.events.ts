import { z } from 'zod';
import { IsoDate, Metadata, MetadataPatch, SessionId, UserId } from '../common';
import { defineEvent, type EventOf, type EventUnion } from '../define-message';

/** Stream type of the Session aggregate; its streams are `session:<tenantId>:<sessionId>`. */
export const SESSION_CATEGORY = 'session';

export const SessionCreatedV1 = defineEvent(
  SESSION_CATEGORY,
  'SessionCreated',
  1,
  z.object({
    sessionId: SessionId,
    userId: UserId.nullable(),
    title: z.string().max(255),
    metadata: Metadata,
    createdFrom: z.string().max(64).nullable(),
    startedAt: IsoDate,
  }),
);
export type SessionCreatedV1 = EventOf<typeof SessionCreatedV1>;

export const SessionTitleChangedV1 = defineEvent(
  SESSION_CATEGORY,
  'SessionTitleChanged',
  1,
  z.object({ sessionId: SessionId, title: z.string().max(255), changedAt: IsoDate }),
);
export type SessionTitleChangedV1 = EventOf<typeof SessionTitleChangedV1>;

/** `patch` is an RFC 7396 merge patch of the top-level metadata keys: `null` removes a key. */
export const SessionMetadataUpdatedV1 = defineEvent(
  SESSION_CATEGORY,
  'SessionMetadataUpdated',
  1,
  z.object({ sessionId: SessionId, patch: MetadataPatch, updatedAt: IsoDate }),
);
export type SessionMetadataUpdatedV1 = EventOf<typeof SessionMetadataUpdatedV1>;

export const SessionEndReason = z.enum(['user', 'replaced', 'admin']);
export type SessionEndReason = z.infer<typeof SessionEndReason>;

export const SessionEndedV1 = defineEvent(
  SESSION_CATEGORY,
  'SessionEnded',
  1,
  z.object({ sessionId: SessionId, reason: SessionEndReason, endedAt: IsoDate }),
);
export type SessionEndedV1 = EventOf<typeof SessionEndedV1>;

export const SessionDeletedV1 = defineEvent(
  SESSION_CATEGORY,
  'SessionDeleted',
  1,
  z.object({ sessionId: SessionId, deletedAt: IsoDate }),
);
export type SessionDeletedV1 = EventOf<typeof SessionDeletedV1>;

/**
 * An active session was idle longer than the timeout and was expired by the cleanup policy
 * (cleanup-worker, `SESSION_TIMEOUT_HOURS`). Afterwards it takes no turns and no updates, like an
 * ended one. `lastActivityAt` is the activity the decision was made on (session writes and turns);
 * `idleMs` = `expiredAt - lastActivityAt` (ms); `timeoutMs` the timeout in force (ms).
 */
export const SessionExpiredV1 = defineEvent(
  SESSION_CATEGORY,
  'SessionExpired',
  1,
  z.object({
    sessionId: SessionId,
    lastActivityAt: IsoDate,
    idleMs: z.number().int().min(0).describe('Milliseconds between the last activity and the expiry'),
    timeoutMs: z.number().int().min(0).describe('The idle timeout in force, milliseconds'),
    expiredAt: IsoDate,
  }),
);
export type SessionExpiredV1 = EventOf<typeof SessionExpiredV1>;

/** Every event of the Session aggregate, latest versions (readers only ever see these). */
export const SessionEvents = [
  SessionCreatedV1,
  SessionTitleChangedV1,
  SessionMetadataUpdatedV1,
  SessionEndedV1,
  SessionDeletedV1,
  SessionExpiredV1,
] as const;

/** Every Session event, a discriminated union on `type`. */
export type SessionEvent = EventUnion<typeof SessionEvents>;

/** The stream id of a session: tenant-qualified so two tenants may use the same session id. */
export const sessionStreamId = (tenantId: string, sessionId: string): string =>
  `${SESSION_CATEGORY}:${tenantId}:${sessionId}`;
