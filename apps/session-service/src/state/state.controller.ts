import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  GetSessionHistory,
  GetSessionState,
  type ReplyOf,
  type RequestOf,
  SetToolCallStatus,
  UpdateSessionState,
} from '@threadline/contracts';
import { Db, EventStore, runCommand } from '@threadline/event-store';
import { RequestHandler } from '@threadline/messaging';
import { findSession } from '../session/sessions.read-model';
import { findStateRecord } from './session-states.projection';
import { StateCommandHandler } from './state.command-handler';
import { initialState, SessionNotFoundError, viewOf } from './state.decider';
import { readHistory, stateAt } from './state.read-model';

/**
 * The session-service's NATS commands and queries on each session's workflow state and history
 * (subjects derived from `libs/contracts/src/state`). Payloads are parsed with their zod schema before
 * they reach a method. Everything is filtered by tenant, and by user when the caller is scoped to one
 * (another user's session is SESSION.NOT_FOUND, ARCHITECTURE rule 9).
 */
@Controller()
export class StateController {
  constructor(
    private readonly store: EventStore,
    private readonly commands: StateCommandHandler,
    private readonly db: Db,
  ) {}

  /**
   * Applies an RFC 7396 merge patch to the state; a patch that changes nothing appends nothing.
   * Errors: SESSION.NOT_FOUND, SESSION.VERSION_MISMATCH (stale `expectedVersion`), REQUEST.INVALID.
   */
  @RequestHandler(UpdateSessionState)
  updateState(
    @Payload() p: RequestOf<typeof UpdateSessionState>,
  ): Promise<ReplyOf<typeof UpdateSessionState>> {
    return runCommand(this.store, UpdateSessionState, p, (tx) =>
      this.commands.execute(tx, p.context, {
        type: 'UpdateSessionState',
        data: {
          sessionId: p.sessionId,
          actingUserId: p.userId,
          patch: p.patch,
          expectedVersion: p.expectedVersion,
        },
      }),
    );
  }

  /**
   * Sets a tool call's status, result and error, planning it when new. Errors: SESSION.NOT_FOUND,
   * SESSION.VERSION_MISMATCH, REQUEST.INVALID (error without status failed, too many tool calls).
   */
  @RequestHandler(SetToolCallStatus)
  setToolCallStatus(
    @Payload() p: RequestOf<typeof SetToolCallStatus>,
  ): Promise<ReplyOf<typeof SetToolCallStatus>> {
    return runCommand(this.store, SetToolCallStatus, p, (tx) =>
      this.commands.execute(tx, p.context, {
        type: 'SetToolCallStatus',
        data: {
          sessionId: p.sessionId,
          actingUserId: p.userId,
          name: p.name,
          status: p.status,
          result: p.result,
          error: p.error,
          description: p.description,
          expectedVersion: p.expectedVersion,
        },
      }),
    );
  }

  /**
   * The current state (from the `session_states` read model; version 0 and all null before the first
   * write), or the state at `version` / at time `at` (folded from the stream). Errors:
   * SESSION.NOT_FOUND (unknown, deleted, or not the scoped user's), REQUEST.INVALID (version past the end).
   */
  @RequestHandler(GetSessionState)
  async getState(@Payload() p: RequestOf<typeof GetSessionState>): Promise<ReplyOf<typeof GetSessionState>> {
    if (!(await findSession(this.db, p.tenantId, p.sessionId, p.userId)))
      throw new SessionNotFoundError(p.sessionId);
    if (p.version !== undefined)
      return viewOf(p.sessionId, await stateAt(this.db, p.tenantId, p.sessionId, { version: p.version }));
    if (p.at !== undefined)
      return viewOf(p.sessionId, await stateAt(this.db, p.tenantId, p.sessionId, { at: p.at }));
    const record = await findStateRecord(this.db, p.tenantId, p.sessionId);
    return viewOf(p.sessionId, record?.state ?? initialState());
  }

  /** A page of the session's events, oldest first. Errors: SESSION.NOT_FOUND, REQUEST.INVALID (cursor). */
  @RequestHandler(GetSessionHistory)
  async getHistory(
    @Payload() p: RequestOf<typeof GetSessionHistory>,
  ): Promise<ReplyOf<typeof GetSessionHistory>> {
    if (!(await findSession(this.db, p.tenantId, p.sessionId, p.userId)))
      throw new SessionNotFoundError(p.sessionId);
    return readHistory(this.db, p.tenantId, p.sessionId, { limit: p.limit, cursor: p.cursor });
  }
}
