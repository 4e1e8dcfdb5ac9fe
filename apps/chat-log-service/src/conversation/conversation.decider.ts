import {
  type AgentResponseData,
  type AgentResponseInput,
  type ConversationEvent,
  type SessionEvent,
  type LogTurnBody,
  type ToolCallData,
  type ToolCallInput,
} from '@threadline/contracts';
import { DomainError, ValidationError } from '@threadline/platform';
import type { Meter, Metered } from '../usage/usage-meter';

// ---------------------------------------------------------------------------------------------------
// Events

/** The conversation events, a discriminated union on `type`. */
export type ConversationDomainEvent = ConversationEvent;

/** The events of the session's own stream (`session:<tenant>:<id>`) that decide whether it takes turns. */
export type SessionLifecycleEvent = Extract<
  SessionEvent,
  { type: 'SessionCreated.v1' | 'SessionEnded.v1' | 'SessionExpired.v1' | 'SessionDeleted.v1' }
>;

/**
 * The lifecycle event among a session stream's events, or null for the others: title and metadata
 * changes do not decide whether a session takes turns; `SessionExpired` counts as an end. (Types this
 * service does not know yet are skipped before parsing, by `loadSessionLifecycle`.)
 */
export function sessionLifecycleEventOf(event: SessionEvent): SessionLifecycleEvent | null {
  switch (event.type) {
    case 'SessionCreated.v1':
    case 'SessionEnded.v1':
    case 'SessionExpired.v1':
    case 'SessionDeleted.v1':
      return event;
    case 'SessionTitleChanged.v1':
    case 'SessionMetadataUpdated.v1':
      return null;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/** Everything the decider folds: the session's lifecycle, then its conversation. */
export type DeciderEvent = SessionLifecycleEvent | ConversationDomainEvent;

// ---------------------------------------------------------------------------------------------------
// State

export type TurnStatus = 'in_progress' | 'completed' | 'failed' | 'deleted';

/** What the decider keeps of one turn. A deleted turn stays (its id and number remain taken). */
export interface TurnState {
  turnId: string;
  userId: string | null;
  conversationTurn: number;
  userInput: string;
  status: TurnStatus;
  /** Agent responses recorded so far (the default `turnOrder` of the next one is this + 1). */
  responses: number;
  /** Tool calls in first-recorded order, each at its latest record. */
  toolCalls: readonly ToolCallData[];
}

/**
 * State of one conversation (`conversation:<tenant>:<sessionId>`) and of its session's lifecycle.
 * `version` is the conversation stream's version (conversation events folded; session events do
 * not move it), the expected version of the next append. `lastTurnNumber` is the highest
 * `conversationTurn` ever given (deleted turns included), so numbers never repeat.
 */
export interface ConversationState {
  session: { status: 'none' | 'active' | 'ended' | 'deleted'; userId: string | null };
  version: number;
  lastTurnNumber: number;
  turns: Readonly<Record<string, TurnState>>;
}

export const initialState = (): ConversationState => ({
  session: { status: 'none', userId: null },
  version: 0,
  lastTurnNumber: 0,
  turns: {},
});

// ---------------------------------------------------------------------------------------------------
// Commands (domain shapes; the controller maps the NATS payloads, snake_case bodies included, onto them)

/** `actingUserId`, when set, scopes the caller to one user (another user's data is "not found"). */
interface Scoped {
  sessionId: string;
  turnId: string;
  actingUserId?: string | undefined;
}

export type ConversationCommand =
  | { type: 'LogTurn'; data: Scoped & { turn: LogTurnBody } }
  | { type: 'RecordAgentResponse'; data: Scoped & { response: AgentResponseInput } }
  | { type: 'RecordToolCall'; data: Scoped & { toolCall: ToolCallInput } }
  | {
      type: 'CompleteTurn';
      data: Scoped & { processingTimeMs?: number | undefined; vectorCacheHit?: boolean | undefined };
    }
  | { type: 'FailTurn'; data: Scoped & { error: string; processingTimeMs?: number | undefined } }
  | { type: 'DeleteTurn'; data: Scoped };

/**
 * What `decide` needs besides state and command: `now` stamps events and fills missing times,
 * `newId` names tool calls sent without an id, `meter` gives agent responses their usage and cost.
 */
export interface DecideContext {
  now: Date;
  newId: () => string;
  meter: Meter;
}

// ---------------------------------------------------------------------------------------------------
// Errors

/** SESSION.NOT_FOUND (HTTP 404): no such session in the tenant, deleted, or another user's. */
export class SessionNotFoundError extends DomainError {
  constructor(sessionId: string) {
    super('SESSION.NOT_FOUND', `Session ${sessionId} not found`, { sessionId });
  }
}

/** SESSION.ALREADY_ENDED (HTTP 409): an ended (or expired) session takes no new turns. */
export class SessionAlreadyEndedError extends DomainError {
  constructor(sessionId: string) {
    super('SESSION.ALREADY_ENDED', `Session ${sessionId} has ended and takes no new turns`, { sessionId });
  }
}

/** TURN.NOT_FOUND (HTTP 404): no such turn, deleted (alone or with its session), or another user's. */
export class TurnNotFoundError extends DomainError {
  constructor(turnId: string) {
    super('TURN.NOT_FOUND', `Turn ${turnId} not found`, { turnId });
  }
}

/** TURN.ALREADY_EXISTS (HTTP 409): the given `turn_id` was used before in the tenant (even if deleted). */
export class TurnAlreadyExistsError extends DomainError {
  constructor(turnId: string) {
    super('TURN.ALREADY_EXISTS', `Turn ${turnId} already exists`, { turnId });
  }
}

/** TURN.NOT_OPEN (HTTP 409): responses, tool calls, complete and fail need a turn still in progress. */
export class TurnNotOpenError extends DomainError {
  constructor(turnId: string, status: TurnStatus) {
    super('TURN.NOT_OPEN', `Turn ${turnId} is ${status}, not in progress`, { turnId, status });
  }
}

// ---------------------------------------------------------------------------------------------------
// decide

/** The session, if it takes a new turn from this caller. */
function sessionTakingTurns(state: ConversationState, sessionId: string, actingUserId: string | undefined) {
  const session = state.session;
  switch (session.status) {
    case 'none':
    case 'deleted':
      throw new SessionNotFoundError(sessionId);
    case 'active':
    case 'ended':
      if (actingUserId !== undefined && session.userId !== actingUserId)
        throw new SessionNotFoundError(sessionId);
      if (session.status === 'ended') throw new SessionAlreadyEndedError(sessionId);
      return session;
    default: {
      const unreachable: never = session.status;
      return unreachable;
    }
  }
}

/** The turn, if it exists for this caller: a deleted turn, or any turn of a deleted session, is gone. */
function existingTurn(state: ConversationState, turnId: string, actingUserId: string | undefined): TurnState {
  const turn = state.turns[turnId];
  if (!turn || turn.status === 'deleted') throw new TurnNotFoundError(turnId);
  if (state.session.status === 'none' || state.session.status === 'deleted')
    throw new TurnNotFoundError(turnId);
  if (actingUserId !== undefined && turn.userId !== actingUserId) throw new TurnNotFoundError(turnId);
  return turn;
}

function openTurn(state: ConversationState, turnId: string, actingUserId: string | undefined): TurnState {
  const turn = existingTurn(state, turnId, actingUserId);
  if (turn.status !== 'in_progress') throw new TurnNotOpenError(turnId, turn.status);
  return turn;
}

/** An agent response as stored: the client's fields, the default `turnOrder`, and its metered usage and cost. */
function agentResponseOf(
  input: AgentResponseInput,
  defaultOrder: number,
  metered: Metered,
): AgentResponseData {
  return {
    agentName: input.agent_name,
    response: input.response,
    turnOrder: input.turn_order ?? defaultOrder,
    model: input.model ?? null,
    startedAt: input.started_at ?? null,
    executionTimeMs: input.execution_time_ms ?? null,
    ...metered,
  };
}

/**
 * A tool call record merged onto the previous record of the same id (seed 003's
 * `update_tool_call_status`): `name` and `status` are the new ones; `request`, `result` and `error`
 * keep their previous value when the new record leaves them out (an explicit `null` clears them).
 */
export function mergeToolCall(
  previous: ToolCallData | undefined,
  input: ToolCallInput,
  toolCallId: string,
): ToolCallData {
  return {
    toolCallId,
    name: input.name,
    request: input.request !== undefined ? input.request : (previous?.request ?? null),
    status: input.status,
    result: input.result !== undefined ? input.result : (previous?.result ?? null),
    error: input.error !== undefined ? input.error : (previous?.error ?? null),
  };
}

/** `toolCalls` with `call` in place of the call with its id, or appended. */
function withToolCall(toolCalls: readonly ToolCallData[], call: ToolCallData): ToolCallData[] {
  const index = toolCalls.findIndex((c) => c.toolCallId === call.toolCallId);
  if (index < 0) return [...toolCalls, call];
  return toolCalls.map((c, i) => (i === index ? call : c));
}

function validateLogTurn(body: LogTurnBody): void {
  if (body.status !== 'in_progress') return;
  const closing = (['completed_at', 'error', 'processing_time_ms'] as const).filter(
    (k) => body[k] !== undefined,
  );
  if (closing.length > 0) {
    throw new ValidationError(
      'A turn started in progress takes these fields when it is completed or failed',
      closing.map((path) => ({ path, message: 'not allowed with status "in_progress"' })),
    );
  }
}

/**
 * Decides the events of a command against the conversation and session state.
 *
 * - LogTurn: a whole turn (`status` completed|failed) is one `TurnLogged`; `status: "in_progress"` is
 *   `TurnStarted`, then one `AgentResponded` / `ToolCallRecorded` per response / tool call of the body.
 *   `conversationTurn` is the next number of the conversation (1, 2, 3 ...; deleted turns keep theirs).
 *   The turn's user is the caller's, else the session's. Agent responses without `turn_order` are
 *   numbered 1, 2, ... in body order; usage and cost come from `ctx.meter`. Missing `started_at` /
 *   `completed_at` are `ctx.now`. Throws SESSION.NOT_FOUND (no session, deleted, another user's),
 *   SESSION.ALREADY_ENDED, TURN.ALREADY_EXISTS (the id was used in this conversation, even if deleted),
 *   REQUEST.INVALID (`completed_at`, `error` or `processing_time_ms` with `in_progress`).
 * - RecordAgentResponse: `AgentResponded` (default `turnOrder` = responses so far + 1; input tokens
 *   estimated from the turn's user input). RecordToolCall: `ToolCallRecorded`, merged onto an earlier
 *   record of the same `tool_call_id` (see {@link mergeToolCall}); a new id when none is given.
 * - CompleteTurn: `TurnCompleted`. FailTurn: `TurnFailed`.
 *   These four throw TURN.NOT_FOUND, then TURN.NOT_OPEN when the turn is completed or failed. A turn
 *   already open when its session ended can still be finished: it began while the session was active.
 * - DeleteTurn: `TurnDeleted` (any status). Throws TURN.NOT_FOUND (also when already deleted).
 * TURN.NOT_FOUND covers turns of a deleted session too (they were deleted with it).
 */
export function decide(
  command: ConversationCommand,
  state: ConversationState,
  ctx: DecideContext,
): ConversationDomainEvent[] {
  const at = ctx.now.toISOString();
  switch (command.type) {
    case 'LogTurn': {
      const { sessionId, turnId, actingUserId, turn: body } = command.data;
      const session = sessionTakingTurns(state, sessionId, actingUserId);
      if (state.turns[turnId]) throw new TurnAlreadyExistsError(turnId);
      validateLogTurn(body);
      const conversationTurn = state.lastTurnNumber + 1;
      const userId = actingUserId ?? session.userId;
      const startedAt = body.started_at ?? at;
      // One budget for the whole turn: its user_input is counted once, not once per response.
      const metered = ctx.meter.measureAll(body.agent_responses, body.user_input);
      const responses = body.agent_responses.map((r, i) => agentResponseOf(r, i + 1, metered[i]!));
      let toolCalls: ToolCallData[] = [];
      for (const input of body.tool_calls) {
        const id = input.tool_call_id ?? ctx.newId();
        toolCalls = withToolCall(
          toolCalls,
          mergeToolCall(
            toolCalls.find((c) => c.toolCallId === id),
            input,
            id,
          ),
        );
      }
      if (body.status === 'in_progress') {
        return [
          {
            type: 'TurnStarted.v1',
            data: {
              turnId,
              sessionId,
              userId,
              conversationTurn,
              userInput: body.user_input,
              vectorCacheHit: body.vector_cache_hit,
              startedAt,
            },
          },
          ...responses.map((agentResponse): ConversationDomainEvent => ({
            type: 'AgentResponded.v1',
            data: { turnId, sessionId, agentResponse, respondedAt: at },
          })),
          ...toolCalls.map((toolCall): ConversationDomainEvent => ({
            type: 'ToolCallRecorded.v1',
            data: { turnId, sessionId, toolCall, recordedAt: at },
          })),
        ];
      }
      return [
        {
          type: 'TurnLogged.v1',
          data: {
            turnId,
            sessionId,
            userId,
            conversationTurn,
            userInput: body.user_input,
            agentResponses: responses,
            toolCalls,
            vectorCacheHit: body.vector_cache_hit,
            processingTimeMs: body.processing_time_ms ?? null,
            status: body.status,
            error: body.error ?? null,
            startedAt,
            completedAt: body.completed_at ?? at,
          },
        },
      ];
    }
    case 'RecordAgentResponse': {
      const { sessionId, turnId, actingUserId, response } = command.data;
      const turn = openTurn(state, turnId, actingUserId);
      const agentResponse = agentResponseOf(
        response,
        turn.responses + 1,
        ctx.meter.measure(response, turn.userInput),
      );
      return [{ type: 'AgentResponded.v1', data: { turnId, sessionId, agentResponse, respondedAt: at } }];
    }
    case 'RecordToolCall': {
      const { sessionId, turnId, actingUserId, toolCall: input } = command.data;
      const turn = openTurn(state, turnId, actingUserId);
      const id = input.tool_call_id ?? ctx.newId();
      const toolCall = mergeToolCall(
        turn.toolCalls.find((c) => c.toolCallId === id),
        input,
        id,
      );
      return [{ type: 'ToolCallRecorded.v1', data: { turnId, sessionId, toolCall, recordedAt: at } }];
    }
    case 'CompleteTurn': {
      const { sessionId, turnId, actingUserId } = command.data;
      openTurn(state, turnId, actingUserId);
      return [
        {
          type: 'TurnCompleted.v1',
          data: {
            turnId,
            sessionId,
            processingTimeMs: command.data.processingTimeMs ?? null,
            vectorCacheHit: command.data.vectorCacheHit ?? null,
            completedAt: at,
          },
        },
      ];
    }
    case 'FailTurn': {
      const { sessionId, turnId, actingUserId } = command.data;
      openTurn(state, turnId, actingUserId);
      return [
        {
          type: 'TurnFailed.v1',
          data: {
            turnId,
            sessionId,
            error: command.data.error,
            processingTimeMs: command.data.processingTimeMs ?? null,
            failedAt: at,
          },
        },
      ];
    }
    case 'DeleteTurn': {
      const { sessionId, turnId, actingUserId } = command.data;
      existingTurn(state, turnId, actingUserId);
      return [{ type: 'TurnDeleted.v1', data: { turnId, sessionId, deletedAt: at } }];
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// evolve

function withTurn(
  state: ConversationState,
  turnId: string,
  change: (turn: TurnState) => TurnState,
): ConversationState {
  const version = state.version + 1;
  const turn = state.turns[turnId];
  // An event for a turn the stream never opened (which decide never produces) only moves the version.
  if (!turn) return { ...state, version };
  return { ...state, version, turns: { ...state.turns, [turnId]: change(turn) } };
}

/**
 * Folds one event: session lifecycle events set the session's status (and do not move `version`);
 * every conversation event moves `version` by one.
 */
export function evolve(state: ConversationState, event: DeciderEvent): ConversationState {
  switch (event.type) {
    case 'SessionCreated.v1':
      return { ...state, session: { status: 'active', userId: event.data.userId } };
    case 'SessionEnded.v1':
    case 'SessionExpired.v1': // an expired session takes no turns, like an ended one (issue 4)
      return state.session.status === 'active'
        ? { ...state, session: { ...state.session, status: 'ended' } }
        : state;
    case 'SessionDeleted.v1':
      return { ...state, session: { ...state.session, status: 'deleted' } };
    case 'TurnLogged.v1':
    case 'TurnStarted.v1': {
      const e = event.data;
      const turn: TurnState = {
        turnId: e.turnId,
        userId: e.userId,
        conversationTurn: e.conversationTurn,
        userInput: e.userInput,
        status: event.type === 'TurnLogged.v1' ? event.data.status : 'in_progress',
        responses: event.type === 'TurnLogged.v1' ? event.data.agentResponses.length : 0,
        toolCalls: event.type === 'TurnLogged.v1' ? event.data.toolCalls : [],
      };
      return {
        ...state,
        version: state.version + 1,
        lastTurnNumber: Math.max(state.lastTurnNumber, e.conversationTurn),
        turns: { ...state.turns, [e.turnId]: turn },
      };
    }
    case 'AgentResponded.v1':
      return withTurn(state, event.data.turnId, (t) => ({ ...t, responses: t.responses + 1 }));
    case 'ToolCallRecorded.v1':
      return withTurn(state, event.data.turnId, (t) => ({
        ...t,
        toolCalls: withToolCall(t.toolCalls, event.data.toolCall),
      }));
    case 'TurnCompleted.v1':
      return withTurn(state, event.data.turnId, (t) => ({ ...t, status: 'completed' }));
    case 'TurnFailed.v1':
      return withTurn(state, event.data.turnId, (t) => ({ ...t, status: 'failed' }));
    case 'TurnDeleted.v1':
      return withTurn(state, event.data.turnId, (t) => ({ ...t, status: 'deleted' }));
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
