import { z } from 'zod';
import { CommandContext, Metadata, SessionId, UserId } from '../common';
import { defineCommand } from '../define-message';
import { SessionEndReason } from './session.events';
import { SessionWriteReply } from './session.views';

const Title = z.string().max(255);

export const CreateSession = defineCommand(
  'session',
  'CreateSession',
  z.object({
    context: CommandContext,
    sessionId: SessionId.optional(),
    userId: UserId.optional(),
    title: Title.optional(),
    metadata: Metadata.optional(),
    createdFrom: z.string().max(64).optional(),
  }),
  SessionWriteReply,
);

/** Title change and/or metadata merge patch; `expectedVersion` comes from `If-Match`. */
export const UpdateSession = defineCommand(
  'session',
  'UpdateSession',
  z.object({
    context: CommandContext,
    sessionId: SessionId,
    userId: UserId.optional().describe('When set, the caller is scoped to this user'),
    title: Title.optional(),
    metadata: Metadata.optional(),
    expectedVersion: z.number().int().min(0).optional(),
  }),
  SessionWriteReply,
);

export const EndSession = defineCommand(
  'session',
  'EndSession',
  z.object({
    context: CommandContext,
    sessionId: SessionId,
    userId: UserId.optional(),
    reason: SessionEndReason.default('user'),
  }),
  SessionWriteReply,
);

export const DeleteSession = defineCommand(
  'session',
  'DeleteSession',
  z.object({ context: CommandContext, sessionId: SessionId, userId: UserId.optional() }),
  z.object({ position: z.number().int() }),
);

/** Get-or-create: the user's most recent active session, or a new one (`created: true`). */
export const GetOrCreateCurrentSession = defineCommand(
  'session',
  'GetOrCreateCurrentSession',
  z.object({
    context: CommandContext,
    userId: UserId,
    title: Title.optional(),
    metadata: Metadata.optional(),
  }),
  SessionWriteReply,
);
