import { z } from 'zod';
import { Metadata, SessionId, UserId } from '../common';
import { SessionSort, SessionStatusFilter, SortOrder } from '../session/session.queries';

const Title = z.string().max(255);

/** `POST /sessions` body (seed 004 shape; `session_id` is optional and 409 when taken). */
export const CreateSessionBody = z.strictObject({
  user_id: UserId.optional(),
  session_id: SessionId.optional(),
  title: Title.optional(),
  metadata: Metadata.optional(),
  created_from: z.string().max(64).optional(),
});

/** `PATCH /sessions/{session_id}` body: metadata is a merge patch, a `null` value removes a key. */
export const UpdateSessionBody = z
  .strictObject({ title: Title.optional(), metadata: Metadata.optional() })
  .refine((b) => b.title !== undefined || b.metadata !== undefined, 'give title or metadata');

/** `POST /users/{user_id}/sessions/current` body. */
export const CurrentSessionBody = z.strictObject({ title: Title.optional(), metadata: Metadata.optional() });

export const SessionIdParams = z.strictObject({ session_id: SessionId });
export const UserIdParams = z.strictObject({ user_id: UserId });

/** `GET /users/{user_id}/sessions` query; `metadata.<key>=<value>` filters are read separately. */
export const ListUserSessionsQuery = z.object({
  status: SessionStatusFilter.default('all'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
  sort: SessionSort.default('created_at'),
  order: SortOrder.default('desc'),
});

/** `GET /sessions` query (operators' list). */
export const ListSessionsQuery = z.strictObject({
  status: SessionStatusFilter.default('all'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});

/** `If-Match` header: a version as sent back in `ETag` (`"3"` or `3`, weak `W/"3"` accepted). */
export const IfMatchHeader = z
  .string()
  .regex(/^(W\/)?"?\d+"?$/, 'an ETag as returned by GET, e.g. "3"')
  .transform((v) => Number(v.replace(/^W\//, '').replaceAll('"', '')));

/** `Idempotency-Key` header: a retried request with the same key gets the first answer. */
export const IdempotencyKeyHeader = z.string().min(1).max(200);
