import { z } from 'zod';
import { IsoDate, Metadata, SessionId, UserId } from '../common';

export const SessionStatus = z.enum(['active', 'ended', 'expired']);
export type SessionStatus = z.infer<typeof SessionStatus>;

/**
 * What a session knows of its latest turn (seed 004's session "Context"), kept by the session-service's
 * `session_context` projection from the conversation events. Fields are null until known.
 *
 * - `last_query`: the user input of the latest turn (full text).
 * - `last_response`: the text of the latest turn's last agent response (highest `turn_order`), at most
 *   500 characters (Unicode code points; longer responses are cut, no ellipsis).
 * - `last_agent_used`: that response's `agent_name`.
 * - `last_execution_time_ms`: that response's execution time, else the turn's `processing_time_ms` (ms).
 * - `error_count`: failed turns recorded in the session (a turn logged as failed, or a turn that failed).
 * - `last_error`: the error of the latest failed turn.
 *
 * Deleting a turn removes what it contributed to the context (its query, response and error), except
 * `error_count`, which counts failures as they happened.
 */
export const SessionContext = z.object({
  last_query: z.string().nullable(),
  last_response: z.string().nullable().describe('At most 500 characters'),
  last_agent_used: z.string().nullable(),
  last_execution_time_ms: z.number().int().min(0).nullable().describe('Milliseconds'),
  error_count: z.number().int().min(0),
  last_error: z.string().nullable(),
});
export type SessionContext = z.infer<typeof SessionContext>;

/** The context of a session without turns. */
export const EMPTY_SESSION_CONTEXT: SessionContext = Object.freeze({
  last_query: null,
  last_response: null,
  last_agent_used: null,
  last_execution_time_ms: null,
  error_count: 0,
  last_error: null,
});

/**
 * A session as the HTTP API returns it (snake_case, as the seed HTTP APIs do).
 *
 * `turn_count` is the number of turns of the session's conversation (deleted turns not counted); the
 * seeds call it `query_count` (004, session metadata) and `total_turns` (000). `context` is the
 * {@link SessionContext}. Both default when absent (a reply stored before they existed still parses).
 */
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
  turn_count: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('Turns in the conversation; the seeds call it query_count (004) and total_turns (000)'),
  context: SessionContext.default(() => ({ ...EMPTY_SESSION_CONTEXT })),
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
