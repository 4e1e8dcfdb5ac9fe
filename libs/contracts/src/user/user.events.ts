import { z } from 'zod';
import { IsoDate, SessionId, UserId } from '../common';
import { defineEvent, type EventOf } from '../define-message';

/** Stream type of a user's erasures; its streams are `user:<tenantId>:<userId>`. */
export const USER_CATEGORY = 'user';

/** The stream of the erasures of user `userId` of tenant `tenantId`. */
export const userStreamId = (tenantId: string, userId: string): string =>
  `${USER_CATEGORY}:${tenantId}:${userId}`;

/**
 * A user's data was erased (`DELETE /users/{user_id}`): every event of the listed sessions' streams
 * (session, session-state, conversation) was tombstoned in the event store, and their messages
 * deleted from JetStream. Read models of other services drop the sessions' rows on it (turns,
 * usage stats). Carries no personal data besides the user id: session ids are opaque identifiers.
 * Counts: `sessions` erased, `turns` (distinct turn ids), `events` tombstoned.
 */
export const UserErasedV1 = defineEvent(
  USER_CATEGORY,
  'UserErased',
  1,
  z.object({
    userId: UserId,
    sessionIds: z.array(SessionId),
    sessions: z.number().int().min(0),
    turns: z.number().int().min(0),
    events: z.number().int().min(0),
    erasedAt: IsoDate,
  }),
);
export type UserErasedV1 = EventOf<typeof UserErasedV1>;

export const UserEvents = [UserErasedV1] as const;
