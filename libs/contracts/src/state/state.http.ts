import { ToolCallStatus } from '../conversation/conversation.events';
import { z } from 'zod';
import { IsoDate, SessionId } from '../common';
import { StatePatch, ToolCallDescription, ToolCallError, ToolCallName, ToolCallResult } from './state.events';

/** `PATCH /sessions/{session_id}/state` body: an RFC 7396 merge patch of at least one field. */
export const SessionStatePatchBody = StatePatch.refine(
  (p) => Object.keys(p).length > 0,
  'give at least one of constraints, strategy, response_plan, summary, status',
);

/** `GET /sessions/{session_id}/state` query: `version=N` or `at=<ISO-8601>` for a past state. */
export const SessionStateQuery = z
  .strictObject({
    version: z.coerce.number().int().min(0).optional(),
    at: IsoDate.optional(),
  })
  .refine((q) => q.version === undefined || q.at === undefined, 'give version or at, not both');

/** `PUT /sessions/{session_id}/tool-calls/{name}` path. */
export const ToolCallParams = z.strictObject({ session_id: SessionId, name: ToolCallName });

/**
 * `PUT /sessions/{session_id}/tool-calls/{name}` body: the tool call's status, result and error as a
 * whole (absent is null); `error` only with status `failed`. `description` is used when the call is
 * planned by this request, or replaces the planned one.
 */
export const PutToolCallBody = z
  .strictObject({
    status: ToolCallStatus,
    result: ToolCallResult.optional(),
    error: ToolCallError.optional(),
    description: ToolCallDescription.optional(),
  })
  .refine((b) => b.error === undefined || b.status === 'failed', {
    message: 'error is only allowed with status "failed"',
    path: ['error'],
  });

/** `GET /sessions/{session_id}/history` query. */
export const SessionHistoryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});
