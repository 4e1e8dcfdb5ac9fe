import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  type CommandContext,
  isErased,
  SESSION_CATEGORY,
  type SessionWriteReply,
  sessionStreamId,
} from '@threadline/contracts';
import { EventStore, type EventStoreTransaction, eventMetadata } from '@threadline/event-store';
import {
  decide,
  evolve,
  initialState,
  SessionAlreadyExistsError,
  type SessionCommand,
  SessionLimitReachedError,
  SessionNotFoundError,
  type SessionState,
} from './session.decider';
import { activeSessionsOfUser, lastActivityOf } from './session-lifecycle.read-model';
import { SESSION_LIMITS, type SessionLimits } from './session-limits';
import { SessionsProjection, sessionEventRegistry } from './sessions.projection';
import { findCurrentSession, findSession, type SessionRecord } from './sessions.read-model';

/** Token of the clock commands are stamped with: `() => Date` (tests may pin it). */
export const SESSION_CLOCK = Symbol('SESSION_CLOCK');
export type Clock = () => Date;

/** The outcome of deciding one command: the state it was decided on and what was appended. */
interface Decided {
  state: SessionState;
  /** Global position of the last appended event; null when the command appended nothing. */
  appendedPosition: number | null;
}

/**
 * Runs the Session aggregate's commands: in one event-store transaction, claims the idempotency key
 * (a retry gets the stored first reply), reads the stream, folds it with `evolve`, calls `decide`,
 * appends with the version read as expected version and the `sessions` projection inline, reads the
 * session back from the read model and stores the reply for retries. A `STREAM.VERSION_CONFLICT`
 * (another writer appended between read and append) reruns the whole transaction, at most
 * `COMMAND_ATTEMPTS` (runCommand of the event store) times; the client's own `If-Match` mismatch is `SESSION.VERSION_MISMATCH` and
 * is not retried.
 */
@Injectable()
export class SessionCommandHandler {
  constructor(
    private readonly store: EventStore,
    private readonly projection: SessionsProjection,
    @Inject(SESSION_CLOCK) private readonly clock: Clock,
    @Inject(SESSION_LIMITS) private readonly limits: SessionLimits,
  ) {}

  /**
   * Decides `command` against the stream of session `sessionId` of the context's tenant and appends
   * the events (if any) with the inline projection. Throws the decider's DomainErrors and
   * `StreamVersionConflictError` when another writer appended since the read.
   */
  async decideAndAppend(
    tx: EventStoreTransaction,
    context: CommandContext,
    sessionId: string,
    command: SessionCommand,
    userId: string | null,
  ): Promise<Decided> {
    const streamId = sessionStreamId(context.tenantId, sessionId);
    const stored = await tx.readStream(streamId, { tenantId: context.tenantId });
    // An erased session (its user's data was erased) is gone for good; its id stays taken.
    if (stored.some(isErased)) {
      throw command.type === 'CreateSession'
        ? new SessionAlreadyExistsError(sessionId)
        : new SessionNotFoundError(sessionId);
    }
    const state = stored.map((e) => sessionEventRegistry.parse(e)).reduce(evolve, initialState());
    const events = decide(command, state, this.clock());
    if (events.length === 0) return { state, appendedPosition: null };
    const owner = state.status === 'none' || state.status === 'deleted' ? null : state.session.userId;
    const result = await tx.append(streamId, SESSION_CATEGORY, state.version, events, {
      metadata: eventMetadata(context, userId ?? owner),
      inline: this.projection.inline,
    });
    return { state, appendedPosition: result.lastGlobalPosition };
  }

  /** A write's reply: the session read back in the same transaction, and the write's position. */
  async replyFor(
    tx: EventStoreTransaction,
    tenantId: string,
    sessionId: string,
    decided: Decided,
    created: boolean,
  ): Promise<SessionWriteReply> {
    const record = await findSession(tx.sql, tenantId, sessionId);
    if (!record) {
      // The row commits with every append; its absence means the read model is broken, not a user error.
      throw new Error(
        `sessions read model has no row for ${tenantId}/${sessionId} at version ${decided.state.version}`,
      );
    }
    return replyOf(record, decided.appendedPosition, created);
  }

  /**
   * Creates a session (new random UUID when `sessionId` is not given). A session of a user is first
   * made room for under the per-user limit ({@link makeRoomFor}): this may end the user's least
   * recently active sessions (reason `replaced`) in the same transaction, or throw
   * SESSION.LIMIT_REACHED.
   */
  async create(
    tx: EventStoreTransaction,
    context: CommandContext,
    input: {
      sessionId?: string | undefined;
      userId?: string | undefined;
      title?: string | undefined;
      metadata?: SessionCommandMetadata;
      createdFrom?: string | undefined;
    },
  ): Promise<SessionWriteReply> {
    const sessionId = input.sessionId ?? randomUUID();
    const userId = input.userId ?? null;
    if (userId !== null) await this.makeRoomFor(tx, context, userId);
    const decided = await this.decideAndAppend(
      tx,
      context,
      sessionId,
      {
        type: 'CreateSession',
        data: {
          sessionId,
          userId,
          title: input.title,
          metadata: input.metadata,
          createdFrom: input.createdFrom ?? null,
        },
      },
      userId,
    );
    return this.replyFor(tx, context.tenantId, sessionId, decided, true);
  }

  /**
   * Get-or-create of a user's current session (their most recently active active session, else a new
   * one). Serialized per tenant and user by a transaction lock (`current-session:<tenant>:<user>`)
   * taken first, so concurrent calls for one user yield one session: the first creates it, the
   * others find it once the first commits.
   */
  async getOrCreateCurrent(
    tx: EventStoreTransaction,
    context: CommandContext,
    input: { userId: string; title?: string | undefined; metadata?: SessionCommandMetadata },
  ): Promise<SessionWriteReply> {
    // Taken before looking: the second caller waits for the first to commit, then sees its session
    // (READ COMMITTED: the next statement's snapshot includes the first caller's commit).
    await tx.lock(`current-session:${context.tenantId}:${input.userId}`);
    const current = await findCurrentSession(tx.sql, context.tenantId, input.userId);
    if (current) return replyOf(current, null, false);
    return this.create(tx, context, { userId: input.userId, title: input.title, metadata: input.metadata });
  }

  /**
   * The per-user limit (issue 4; `MAX_SESSIONS_PER_USER`, `MAX_SESSIONS_POLICY`): before a session of
   * `userId` starts, the user may have at most `max - 1` active sessions. Serialized per tenant and
   * user by the same transaction lock as get-or-create (`current-session:<tenant>:<user>`), taken
   * before counting, so concurrent starts count each other's committed sessions and never leave more
   * than `max` active. Policy `end_oldest` ends the surplus, least recently active first, with
   * SessionEnded reason `replaced`; `reject` throws SESSION.LIMIT_REACHED (HTTP 409). No-op when the
   * limit is 0 (none).
   */
  private async makeRoomFor(
    tx: EventStoreTransaction,
    context: CommandContext,
    userId: string,
  ): Promise<void> {
    const max = this.limits.maxSessionsPerUser;
    if (max === 0) return;
    await tx.lock(`current-session:${context.tenantId}:${userId}`);
    const active = await activeSessionsOfUser(tx.sql, context.tenantId, userId);
    const surplus = active.length - (max - 1);
    if (surplus <= 0) return;
    if (this.limits.policy === 'reject') throw new SessionLimitReachedError(userId, max);
    for (const sessionId of active.slice(0, surplus)) {
      await this.decideAndAppend(
        tx,
        context,
        sessionId,
        { type: 'EndSession', data: { sessionId, reason: 'replaced' } },
        userId,
      );
    }
  }

  /**
   * Expires session `sessionId` if its last activity is at or before `idleCutoff` (ISO-8601; the
   * cleanup pass's now minus the timeout `idleTimeoutMs`, ms). Locks the session's stream row first (`FOR UPDATE`): a turn being decided on the active
   * session holds it `FOR SHARE` (chat-log-service), so this waits for it to commit and then sees its
   * activity; a turn decided afterwards sees the session expired. The last activity is
   * {@link lastActivityOf}. Answers `expired: false` when the decider appends nothing (not idle long
   * enough, or already ended or expired). Throws SESSION.NOT_FOUND for an unknown or deleted session.
   */
  async expire(
    tx: EventStoreTransaction,
    context: CommandContext,
    sessionId: string,
    idleCutoff: string,
    idleTimeoutMs: number,
  ): Promise<{ expired: boolean; position: number | null }> {
    await tx.sql.query('SELECT version FROM streams WHERE stream_id = $1 FOR UPDATE', [
      sessionStreamId(context.tenantId, sessionId),
    ]);
    const lastActivityAt = await lastActivityOf(tx.sql, context.tenantId, sessionId);
    if (lastActivityAt === null) throw new SessionNotFoundError(sessionId);
    const decided = await this.decideAndAppend(
      tx,
      context,
      sessionId,
      { type: 'ExpireSession', data: { sessionId, lastActivityAt, idleCutoff, idleTimeoutMs } },
      null,
    );
    return { expired: decided.appendedPosition !== null, position: decided.appendedPosition };
  }
}

type SessionCommandMetadata = Extract<SessionCommand, { type: 'CreateSession' }>['data']['metadata'];

function replyOf(
  record: SessionRecord,
  appendedPosition: number | null,
  created: boolean,
): SessionWriteReply {
  return { session: record.view, position: appendedPosition ?? record.lastGlobalPosition, created };
}
