import { z } from 'zod';
import { CommandContext, IsoDate, Metadata, SessionId, TenantId, UserId } from '../common';
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

/**
 * Expires a session if it is still idle: the session-service checks, under the session's stream lock,
 * that its last activity (session writes and turns) is at or before `idleCutoff` (the cleanup pass's
 * `now - timeout`), and appends `SessionExpired` stamped with its own clock (`idleTimeoutMs` is recorded
 * as the timeout in force). Sent by the cleanup-worker. Answers `expired: false`
 * (appending nothing) when the session has seen activity since, or is already ended or expired;
 * SESSION.NOT_FOUND when it does not exist (or was deleted).
 */
export const ExpireSession = defineCommand(
  'session',
  'ExpireSession',
  z.object({
    context: CommandContext,
    sessionId: SessionId,
    idleCutoff: IsoDate.describe('Expire only if the last activity is at or before this instant'),
    idleTimeoutMs: z.number().int().min(1).describe('Milliseconds'),
  }),
  z.object({
    expired: z.boolean(),
    position: z.number().int().nullable().describe('Global position of SessionExpired; null if none'),
  }),
);

/** What one cleanup pass did: sessions expired, sessions deleted (retention), duration in ms. */
export const CleanupReport = z.object({
  expired: z.number().int().min(0),
  deleted: z.number().int().min(0),
  took_ms: z.number().int().min(0).describe('Milliseconds'),
});
export type CleanupReport = z.infer<typeof CleanupReport>;

/**
 * Runs a cleanup pass now (expiry, then retention), handled by the cleanup-worker (queue group
 * `cleanup-worker`). With `tenantId`, the pass covers only that tenant's sessions (what
 * `POST /sessions/cleanup` sends); without, every tenant (what the worker's own timer does).
 */
export const RunSessionCleanup = defineCommand(
  'cleanup',
  'RunSessionCleanup',
  z.object({ tenantId: TenantId.optional() }),
  CleanupReport,
);
