import { ToolCallStatus } from '../conversation/conversation.events';
import { z } from 'zod';
import { IsoDate, JsonValue, SessionId } from '../common';
import { ToolCallDescription, ToolCallName } from './state.events';

/** One tool call of a session's workflow, at its latest status. */
export const ToolCallView = z.object({
  name: ToolCallName,
  description: ToolCallDescription.nullable(),
  status: ToolCallStatus,
  result: JsonValue.nullable(),
  error: z.string().nullable(),
  planned_at: IsoDate,
  updated_at: IsoDate,
});
export type ToolCallView = z.infer<typeof ToolCallView>;

/**
 * A session's workflow state (seed 003's session row, without picking "the latest row" by hand).
 * Fields never set are null. `tool_calls` are in planning order. `is_complete` is true when every
 * planned tool call is `completed` (so also when none is planned, as the seed's `all(...)` over an
 * empty list; `tool_calls` tells the two apart). `version` is the state stream's version (the number
 * of state events; 0 before the first), the value of `ETag` and `If-Match`. `updated_at` is the time
 * of the last state event (null at version 0).
 */
export const SessionStateView = z.object({
  session_id: SessionId,
  version: z.number().int().min(0),
  constraints: JsonValue.nullable(),
  strategy: JsonValue.nullable(),
  response_plan: JsonValue.nullable(),
  summary: z.string().nullable(),
  status: z.string().nullable(),
  tool_calls: z.array(ToolCallView),
  is_complete: z.boolean(),
  updated_at: IsoDate.nullable(),
});
export type SessionStateView = z.infer<typeof SessionStateView>;

/** Reply of a state write: the state after it, and the global position of the last event appended. */
export const SessionStateWriteReply = z.object({
  state: SessionStateView,
  position: z.number().int().min(0),
});
export type SessionStateWriteReply = z.infer<typeof SessionStateWriteReply>;

/** Which of a session's streams an event of its history is from. */
export const HistoryStream = z.enum(['session', 'session_state']);

/**
 * One event of a session's history. `version` is its position in its own stream (`stream`),
 * `position` its global position (the order of the history), `time` when it was stored, `data` the
 * event's data as published on JetStream (camelCase, the event contract of `type`).
 */
export const HistoryEntry = z.object({
  event_id: z.uuid(),
  stream: HistoryStream,
  type: z.string(),
  version: z.number().int().min(1),
  position: z.number().int().min(1),
  time: IsoDate,
  data: z.unknown(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

/** A page of a session's history, oldest first; `next_cursor` is null on the last page. */
export const SessionHistoryPage = z.object({
  events: z.array(HistoryEntry),
  next_cursor: z.string().nullable(),
});
export type SessionHistoryPage = z.infer<typeof SessionHistoryPage>;
