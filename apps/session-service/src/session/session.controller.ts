import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  CreateSession,
  DeleteSession,
  EndSession,
  ExpireSession,
  GetCurrentSession,
  GetOrCreateCurrentSession,
  GetSession,
  ListIdleSessions,
  ListRetiredSessions,
  ListSessions,
  ListUserSessions,
  type ReplyOf,
  type RequestOf,
  UpdateSession,
} from '@threadline/contracts';
import { Db, EventStore, runCommand } from '@threadline/event-store';
import { RequestHandler } from '@threadline/messaging';
import { DomainError } from '@threadline/platform';
import { SessionStatesProjection } from '../state/session-states.projection';
import { SessionCommandHandler } from './session.command-handler';
import { SessionNotFoundError } from './session.decider';
import { listCleanupCandidates } from './session-lifecycle.read-model';
import { findCurrentSession, findSession, listSessions } from './sessions.read-model';

/**
 * The session-service's NATS commands and queries (subjects derived from the contracts in
 * `libs/contracts/src/session`). Payloads are parsed with their zod schema before they reach a
 * method (`@RequestHandler`); errors travel as `{ code, message, details }` replies. Every query is
 * filtered by tenant, and by user when the caller is scoped to one (another user's session is
 * SESSION.NOT_FOUND, ARCHITECTURE rule 9).
 */
@Controller()
export class SessionController {
  constructor(
    private readonly store: EventStore,
    private readonly commands: SessionCommandHandler,
    private readonly db: Db,
    private readonly states: SessionStatesProjection,
  ) {}

  /**
   * Creates a session; SESSION.ALREADY_EXISTS when the given `sessionId` was ever used in the tenant.
   * Over the per-user limit: ends the user's least recently active session (reason `replaced`) or
   * SESSION.LIMIT_REACHED, per `MAX_SESSIONS_POLICY`.
   */
  @RequestHandler(CreateSession)
  createSession(@Payload() p: RequestOf<typeof CreateSession>): Promise<ReplyOf<typeof CreateSession>> {
    return runCommand(this.store, CreateSession, p, (tx) => this.commands.create(tx, p.context, p));
  }

  /**
   * Title change and/or metadata merge patch. Errors: SESSION.NOT_FOUND, SESSION.VERSION_MISMATCH
   * (stale `expectedVersion`), SESSION.ALREADY_ENDED. A no-op appends nothing and answers the session.
   */
  @RequestHandler(UpdateSession)
  updateSession(@Payload() p: RequestOf<typeof UpdateSession>): Promise<ReplyOf<typeof UpdateSession>> {
    return runCommand(this.store, UpdateSession, p, async (tx) => {
      const decided = await this.commands.decideAndAppend(
        tx,
        p.context,
        p.sessionId,
        {
          type: 'UpdateSession',
          data: {
            sessionId: p.sessionId,
            actingUserId: p.userId,
            title: p.title,
            metadata: p.metadata,
            expectedVersion: p.expectedVersion,
          },
        },
        p.userId ?? null,
      );
      return this.commands.replyFor(tx, p.context.tenantId, p.sessionId, decided, false);
    });
  }

  /** Ends a session (idempotent: an ended session is answered as it is). Errors: SESSION.NOT_FOUND. */
  @RequestHandler(EndSession)
  endSession(@Payload() p: RequestOf<typeof EndSession>): Promise<ReplyOf<typeof EndSession>> {
    return runCommand(this.store, EndSession, p, async (tx) => {
      const decided = await this.commands.decideAndAppend(
        tx,
        p.context,
        p.sessionId,
        { type: 'EndSession', data: { sessionId: p.sessionId, actingUserId: p.userId, reason: p.reason } },
        p.userId ?? null,
      );
      return this.commands.replyFor(tx, p.context.tenantId, p.sessionId, decided, false);
    });
  }

  /**
   * Deletes a session; afterwards it is SESSION.NOT_FOUND everywhere. Its `sessions` row goes with the
   * append (inline projection), its workflow state row (`session_states`) in the same transaction; its
   * turns leave the chat-log-service's read model when SessionDeleted reaches it over JetStream.
   * Answers the deletion's position.
   */
  @RequestHandler(DeleteSession)
  deleteSession(@Payload() p: RequestOf<typeof DeleteSession>): Promise<ReplyOf<typeof DeleteSession>> {
    return runCommand(this.store, DeleteSession, p, async (tx) => {
      const decided = await this.commands.decideAndAppend(
        tx,
        p.context,
        p.sessionId,
        { type: 'DeleteSession', data: { sessionId: p.sessionId, actingUserId: p.userId } },
        p.userId ?? null,
      );
      if (decided.appendedPosition === null)
        throw new Error(`DeleteSession of ${p.sessionId} appended nothing`);
      await this.states.deleteState(tx.sql, p.context.tenantId, p.sessionId);
      return { position: decided.appendedPosition };
    });
  }

  /**
   * Expires a session whose last activity is at or before `idleCutoff` (sent by the cleanup-worker);
   * `expired: false` when it had activity since, or is already ended or expired. Errors: SESSION.NOT_FOUND.
   */
  @RequestHandler(ExpireSession)
  expireSession(@Payload() p: RequestOf<typeof ExpireSession>): Promise<ReplyOf<typeof ExpireSession>> {
    return runCommand(this.store, ExpireSession, p, (tx) =>
      this.commands.expire(tx, p.context, p.sessionId, p.idleCutoff, p.idleTimeoutMs),
    );
  }

  /** A batch of active sessions idle since before `idleBefore`, oldest first (the expiry policy's input). */
  @RequestHandler(ListIdleSessions)
  listIdleSessions(
    @Payload() p: RequestOf<typeof ListIdleSessions>,
  ): Promise<ReplyOf<typeof ListIdleSessions>> {
    return listCleanupCandidates(this.db, 'idle', {
      before: p.idleBefore,
      limit: p.limit,
      tenantId: p.tenantId,
      after: p.after,
    });
  }

  /** A batch of ended and expired sessions that ended before `endedBefore` (the retention policy's input). */
  @RequestHandler(ListRetiredSessions)
  listRetiredSessions(
    @Payload() p: RequestOf<typeof ListRetiredSessions>,
  ): Promise<ReplyOf<typeof ListRetiredSessions>> {
    return listCleanupCandidates(this.db, 'retired', {
      before: p.endedBefore,
      limit: p.limit,
      tenantId: p.tenantId,
      after: p.after,
    });
  }

  /** The user's most recent active session (`created: false`), or a new one (`created: true`). */
  @RequestHandler(GetOrCreateCurrentSession)
  getOrCreateCurrentSession(
    @Payload() p: RequestOf<typeof GetOrCreateCurrentSession>,
  ): Promise<ReplyOf<typeof GetOrCreateCurrentSession>> {
    return runCommand(this.store, GetOrCreateCurrentSession, p, (tx) =>
      this.commands.getOrCreateCurrent(tx, p.context, p),
    );
  }

  /** One session. Errors: SESSION.NOT_FOUND (unknown, deleted, or not the scoped user's). */
  @RequestHandler(GetSession)
  async getSession(@Payload() p: RequestOf<typeof GetSession>): Promise<ReplyOf<typeof GetSession>> {
    const record = await findSession(this.db, p.tenantId, p.sessionId, p.userId);
    if (!record) throw new SessionNotFoundError(p.sessionId);
    return record.view;
  }

  /** A user's sessions, keyset-paged, filtered by status and metadata. Errors: REQUEST.INVALID (cursor). */
  @RequestHandler(ListUserSessions)
  listUserSessions(
    @Payload() p: RequestOf<typeof ListUserSessions>,
  ): Promise<ReplyOf<typeof ListUserSessions>> {
    return listSessions(this.db, {
      tenantId: p.tenantId,
      userId: p.userId,
      status: p.status,
      sort: p.sort,
      order: p.order,
      limit: p.limit,
      ...(p.cursor !== undefined ? { cursor: p.cursor } : {}),
      ...(p.metadata !== undefined ? { metadata: p.metadata } : {}),
    });
  }

  /** The user's current (most recently active) active session. Errors: SESSION.NOT_FOUND when none. */
  @RequestHandler(GetCurrentSession)
  async getCurrentSession(
    @Payload() p: RequestOf<typeof GetCurrentSession>,
  ): Promise<ReplyOf<typeof GetCurrentSession>> {
    const record = await findCurrentSession(this.db, p.tenantId, p.userId);
    if (!record)
      throw new DomainError('SESSION.NOT_FOUND', `User ${p.userId} has no active session`, {
        userId: p.userId,
      });
    return record.view;
  }

  /** Every session of the tenant, newest first, keyset-paged (operators' list). */
  @RequestHandler(ListSessions)
  listSessions(@Payload() p: RequestOf<typeof ListSessions>): Promise<ReplyOf<typeof ListSessions>> {
    return listSessions(this.db, {
      tenantId: p.tenantId,
      status: p.status,
      sort: 'created_at',
      order: 'desc',
      limit: p.limit,
      ...(p.cursor !== undefined ? { cursor: p.cursor } : {}),
    });
  }
}
