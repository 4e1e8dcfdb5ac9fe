import { ToolCallStatus } from '../conversation/conversation.events';
import { z } from 'zod';
import { CommandContext, IsoDate, SessionId, TenantId, UserId } from '../common';
import { defineCommand, defineQuery } from '../define-message';
import { StatePatch, ToolCallDescription, ToolCallError, ToolCallName, ToolCallResult } from './state.events';
import { SessionHistoryPage, SessionStateView, SessionStateWriteReply } from './state.views';

const Scope = UserId.optional().describe('When set, the caller is scoped to this user');
const ExpectedVersion = z.number().int().min(0).optional().describe("From If-Match: the state's version");

/** Applies a merge patch to a session's workflow state (`PATCH /sessions/{id}/state`). */
export const UpdateSessionState = defineCommand(
  'session_state',
  'UpdateSessionState',
  z.object({
    context: CommandContext,
    sessionId: SessionId,
    userId: Scope,
    patch: StatePatch,
    expectedVersion: ExpectedVersion,
  }),
  SessionStateWriteReply,
);

/**
 * Sets a tool call's status, result and error (`PUT /sessions/{id}/tool-calls/{name}`), planning it
 * first when the session has no tool call of that name.
 */
export const SetToolCallStatus = defineCommand(
  'session_state',
  'SetToolCallStatus',
  z.object({
    context: CommandContext,
    sessionId: SessionId,
    userId: Scope,
    name: ToolCallName,
    status: ToolCallStatus,
    result: ToolCallResult.optional(),
    error: ToolCallError.optional(),
    description: ToolCallDescription.optional(),
    expectedVersion: ExpectedVersion,
  }),
  SessionStateWriteReply,
);

/** A session's workflow state: current, or as it was at `version` or at time `at` (not both). */
export const GetSessionState = defineQuery(
  'session_state',
  'GetSessionState',
  z
    .object({
      tenantId: TenantId,
      sessionId: SessionId,
      userId: Scope,
      version: z.number().int().min(0).optional(),
      at: IsoDate.optional(),
    })
    .refine((q) => q.version === undefined || q.at === undefined, 'give version or at, not both'),
  SessionStateView,
);

/** A session's events (lifecycle and state streams), oldest first, keyset-paged. */
export const GetSessionHistory = defineQuery(
  'session_state',
  'GetSessionHistory',
  z.object({
    tenantId: TenantId,
    sessionId: SessionId,
    userId: Scope,
    limit: z.number().int().min(1).max(200),
    cursor: z.string().max(512).optional(),
  }),
  SessionHistoryPage,
);
