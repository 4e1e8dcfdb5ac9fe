import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  CompleteTurn,
  DeleteTurn,
  FailTurn,
  GetTurn,
  ListSessionTurns,
  ListUserTurns,
  LogTurn,
  RecordTurnResponse,
  type ReplyOf,
  type RequestOf,
} from '@threadline/contracts';
import { Db, EventStore, runCommand } from '@threadline/event-store';
import { RequestHandler } from '@threadline/messaging';
import { ConversationCommandHandler, loadSessionLifecycle } from './conversation.command-handler';
import { type ConversationState, SessionNotFoundError, TurnNotFoundError } from './conversation.decider';
import { LogTurnBatcher } from './log-turn.batcher';
import { findTurn, listSessionTurns, listUserTurns, TurnWriteReplySchema } from './turns.read-model';

/**
 * The chat-log-service's NATS commands and queries on turns (subjects derived from the contracts in
 * `libs/contracts/src/conversation`). Payloads are parsed with their zod schema before they reach a
 * method (`@RequestHandler`), write replies with theirs before they leave (query replies are built
 * from rows parsed with the view's field schemas in `turns.read-model.ts`, not parsed twice); errors
 * travel as `{ code, message, details }`. Everything is filtered by tenant, and by user when the caller
 * is scoped to one (another user's session is SESSION.NOT_FOUND, another user's turn TURN.NOT_FOUND;
 * ARCHITECTURE rule 9). Write replies carry `position`, the global position of the last event the
 * write appended (a retry with the same idempotency key answers the first reply, position included).
 */
@Controller()
export class ConversationController {
  constructor(
    private readonly store: EventStore,
    private readonly commands: ConversationCommandHandler,
    private readonly db: Db,
    private readonly logTurns: LogTurnBatcher,
  ) {}

  /**
   * Logs a whole turn (`status` completed|failed) or starts one (`in_progress`) in session `sessionId`,
   * group-committed with the LogTurns that arrive at the same time (see {@link LogTurnBatcher}).
   * Errors: SESSION.NOT_FOUND, SESSION.ALREADY_ENDED, TURN.ALREADY_EXISTS, REQUEST.INVALID.
   */
  @RequestHandler(LogTurn)
  logTurn(@Payload() p: RequestOf<typeof LogTurn>): Promise<ReplyOf<typeof LogTurn>> {
    return this.logTurns.logTurn(p);
  }

  /**
   * Appends an agent response (usage and cost metered) or records a tool call (a known `tool_call_id`
   * updates it) on an open turn. Errors: TURN.NOT_FOUND, TURN.NOT_OPEN.
   */
  @RequestHandler(RecordTurnResponse)
  recordTurnResponse(
    @Payload() p: RequestOf<typeof RecordTurnResponse>,
  ): Promise<ReplyOf<typeof RecordTurnResponse>> {
    return runCommand(this.store, RecordTurnResponse, p, async (tx) => {
      const sessionId = await this.commands.sessionOfTurn(tx.sql, p.context.tenantId, p.turnId, p.userId);
      const scope = { sessionId, turnId: p.turnId, actingUserId: p.userId };
      const { agent_response: response, tool_call: toolCall } = p.body;
      const position = await this.commands.decideAndAppend(
        tx,
        p.context,
        response !== undefined
          ? { type: 'RecordAgentResponse', data: { ...scope, response } }
          : toolCall !== undefined
            ? { type: 'RecordToolCall', data: { ...scope, toolCall } }
            : unreachableBody(),
      );
      return TurnWriteReplySchema.parse(
        await this.commands.replyFor(tx, p.context.tenantId, p.turnId, position),
      );
    });
  }

  /** Completes an open turn. Errors: TURN.NOT_FOUND, TURN.NOT_OPEN. */
  @RequestHandler(CompleteTurn)
  completeTurn(@Payload() p: RequestOf<typeof CompleteTurn>): Promise<ReplyOf<typeof CompleteTurn>> {
    return runCommand(this.store, CompleteTurn, p, async (tx) => {
      const sessionId = await this.commands.sessionOfTurn(tx.sql, p.context.tenantId, p.turnId, p.userId);
      const position = await this.commands.decideAndAppend(tx, p.context, {
        type: 'CompleteTurn',
        data: {
          sessionId,
          turnId: p.turnId,
          actingUserId: p.userId,
          processingTimeMs: p.body.processing_time_ms,
          vectorCacheHit: p.body.vector_cache_hit,
        },
      });
      return TurnWriteReplySchema.parse(
        await this.commands.replyFor(tx, p.context.tenantId, p.turnId, position),
      );
    });
  }

  /** Fails an open turn with an error message. Errors: TURN.NOT_FOUND, TURN.NOT_OPEN. */
  @RequestHandler(FailTurn)
  failTurn(@Payload() p: RequestOf<typeof FailTurn>): Promise<ReplyOf<typeof FailTurn>> {
    return runCommand(this.store, FailTurn, p, async (tx) => {
      const sessionId = await this.commands.sessionOfTurn(tx.sql, p.context.tenantId, p.turnId, p.userId);
      const position = await this.commands.decideAndAppend(tx, p.context, {
        type: 'FailTurn',
        data: {
          sessionId,
          turnId: p.turnId,
          actingUserId: p.userId,
          error: p.body.error,
          processingTimeMs: p.body.processing_time_ms,
        },
      });
      return TurnWriteReplySchema.parse(
        await this.commands.replyFor(tx, p.context.tenantId, p.turnId, position),
      );
    });
  }

  /** Deletes a turn: it leaves the `turns` read model at once. Answers the deletion's position. Errors: TURN.NOT_FOUND. */
  @RequestHandler(DeleteTurn)
  deleteTurn(@Payload() p: RequestOf<typeof DeleteTurn>): Promise<ReplyOf<typeof DeleteTurn>> {
    return runCommand(this.store, DeleteTurn, p, async (tx) => {
      const sessionId = await this.commands.sessionOfTurn(tx.sql, p.context.tenantId, p.turnId, p.userId);
      const position = await this.commands.decideAndAppend(tx, p.context, {
        type: 'DeleteTurn',
        data: { sessionId, turnId: p.turnId, actingUserId: p.userId },
      });
      return { position };
    });
  }

  /**
   * One turn. Errors: TURN.NOT_FOUND (unknown, deleted, not the scoped user's, or its session is gone:
   * read from the session's own stream, as the `turns` rows of a deleted session leave only once the
   * deletion arrives over JetStream).
   */
  @RequestHandler(GetTurn)
  async getTurn(@Payload() p: RequestOf<typeof GetTurn>): Promise<ReplyOf<typeof GetTurn>> {
    const record = await findTurn(this.db, p.tenantId, p.turnId, { userId: p.userId });
    if (!record) throw new TurnNotFoundError(p.turnId);
    const { session } = await loadSessionLifecycle(this.db, p.tenantId, record.view.session_id);
    if (!servesTurns(session.status)) throw new TurnNotFoundError(p.turnId);
    return record.view;
  }

  /**
   * A session's turns by number (`limit`/`cursor`/`order`, or `last=N`: the N most recent, ascending).
   * Errors: SESSION.NOT_FOUND (unknown or deleted session, or another user's; read from the session's
   * own stream, so a session created a moment ago is found), REQUEST.INVALID (cursor).
   */
  @RequestHandler(ListSessionTurns)
  async listSessionTurns(
    @Payload() p: RequestOf<typeof ListSessionTurns>,
  ): Promise<ReplyOf<typeof ListSessionTurns>> {
    // Both reads at once (two pooled connections): the page costs no round trip after the session's.
    // The session decides first: an unknown session is SESSION.NOT_FOUND whatever the page's outcome.
    const page = listSessionTurns(this.db, p.tenantId, p.sessionId, p.query);
    page.catch(() => undefined);
    const { session } = await loadSessionLifecycle(this.db, p.tenantId, p.sessionId);
    if (!servesTurns(session.status) || (p.userId !== undefined && session.userId !== p.userId))
      throw new SessionNotFoundError(p.sessionId);
    // Built from rows parsed with the view's own field schemas (`toRecord`): no second parse here.
    return page;
  }

  /** A user's most recent turns across sessions, newest first; `user_input` exact match, `q` full-text. */
  @RequestHandler(ListUserTurns)
  async listUserTurns(@Payload() p: RequestOf<typeof ListUserTurns>): Promise<ReplyOf<typeof ListUserTurns>> {
    return listUserTurns(this.db, p.tenantId, p.userId, p.query);
  }
}

/** Whether a session in `status` answers for its turns (an expired, deleted or unknown one does not). */
function servesTurns(status: ConversationState['session']['status']): boolean {
  return status === 'active' || status === 'ended';
}

/** The body schema refuses a body with neither (or both) of `agent_response` and `tool_call`. */
function unreachableBody(): never {
  throw new Error('TurnResponseBody without agent_response or tool_call passed validation');
}
