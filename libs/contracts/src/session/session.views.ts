import { z } from 'zod';
import { IsoDate, Metadata, SessionId, UserId } from '../common';

export const SessionStatus = z.enum(['active', 'ended', 'expired']);
export type SessionStatus = z.infer<typeof SessionStatus>;

/** A session as the HTTP API returns it (snake_case, as the seed HTTP APIs do). */
export const SessionView = z.object({
  session_id: SessionId,
  thread_id: SessionId.describe('Same as session_id; the name the seed APIs use'),
  user_id: UserId.nullable(),
  title: z.string(),
  status: SessionStatus,
  metadata: Metadata,
  created_from: z.string().nullable(),
  created_at: IsoDate,
  updated_at: IsoDate,
  last_activity_at: IsoDate,
  ended_at: IsoDate.nullable(),
  version: z.number().int().describe('Stream version of the session; the ETag'),
});
export type SessionView = z.infer<typeof SessionView>;

/** The answer of a session command: the session after it, and the global position of the last event appended. */
export const SessionWriteReply = z.object({
  session: SessionView,
  position: z.number().int().describe('Global position of the last event this write appended'),
  created: z.boolean().describe('true when the command created the session'),
});
export type SessionWriteReply = z.infer<typeof SessionWriteReply>;

export const SessionPage = z.object({
  sessions: z.array(SessionView),
  next_cursor: z.string().nullable(),
  total: z.number().int(),
});
export type SessionPage = z.infer<typeof SessionPage>;
