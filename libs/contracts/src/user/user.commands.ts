import { z } from 'zod';
import { CommandContext, IsoDate, UserId } from '../common';
import { defineCommand } from '../define-message';

/**
 * The receipt of a user erasure (`DELETE /users/{user_id}`), snake_case as the HTTP API answers it:
 * `sessions_deleted` sessions and `turns_deleted` turns (distinct turn ids) were erased by this call
 * (a repeated erasure answers 0 and 0), `events_erased` event-store rows tombstoned,
 * `jetstream_messages_deleted` messages removed from the JetStream stream, `completed_at` when the
 * erasure finished (ISO-8601).
 */
export const UserErasureReceipt = z.object({
  user_id: UserId,
  sessions_deleted: z.number().int().min(0),
  turns_deleted: z.number().int().min(0),
  events_erased: z.number().int().min(0),
  jetstream_messages_deleted: z.number().int().min(0),
  completed_at: IsoDate,
});
export type UserErasureReceipt = z.infer<typeof UserErasureReceipt>;

/** Erases every session, turn and workflow state of user `userId` (see `UserErasedV1`). */
export const EraseUser = defineCommand(
  'user',
  'EraseUser',
  z.object({ context: CommandContext, userId: UserId }),
  UserErasureReceipt,
);
