import { z } from 'zod';
import {
  type AgentResponseData,
  ConversationEvents,
  EMPTY_SESSION_CONTEXT,
  type ConversationEvent,
  EventRegistry,
  type SessionContext,
} from '@threadline/contracts';

/** `context.last_response` holds at most this many characters (Unicode code points) of the response. */
export const LAST_RESPONSE_MAX_CHARS = 500;

/** Knows the conversation events and their upcasters (none yet): envelopes become latest-version events. */
export const conversationEventRegistry = new EventRegistry(ConversationEvents);

/** The conversation events this projection folds. */
export type ConversationDomainEvent = ConversationEvent;

// ---------------------------------------------------------------------------------------------------
// State

/**
 * Bookkeeping about the turn the context describes (the `context_turn` column; never returned):
 * `turnId` of the latest turn (null when none, or when it was deleted), the `turnOrder` and execution
 * time (ms) of the response shown in `last_response`, the turn's `processingTimeMs`, and `errorTurnId`,
 * the turn `last_error` came from.
 */
export const ContextTurn = z.object({
  turnId: z.string().nullable().default(null),
  agentTurnOrder: z.number().int().nullable().default(null),
  agentExecutionTimeMs: z.number().int().nullable().default(null),
  processingTimeMs: z.number().int().nullable().default(null),
  errorTurnId: z.string().nullable().default(null),
});
export type ContextTurn = z.infer<typeof ContextTurn>;

export const EMPTY_CONTEXT_TURN: ContextTurn = Object.freeze({
  turnId: null,
  agentTurnOrder: null,
  agentExecutionTimeMs: null,
  processingTimeMs: null,
  errorTurnId: null,
});

/** What the `session_context` projection keeps per session (columns `turn_count`, `context`, `context_turn`). */
export interface SessionContextState {
  /** Turns of the conversation not deleted (never below 0). */
  turnCount: number;
  context: SessionContext;
  turn: ContextTurn;
}

/** The state of a session without turns. */
export const initialSessionContextState = (): SessionContextState => ({
  turnCount: 0,
  context: { ...EMPTY_SESSION_CONTEXT },
  turn: { ...EMPTY_CONTEXT_TURN },
});

/**
 * `text` cut to its first {@link LAST_RESPONSE_MAX_CHARS} characters. Characters are Unicode code
 * points (as Postgres counts them), so a surrogate pair (an emoji) is never split.
 */
export function truncateResponse(text: string, max = LAST_RESPONSE_MAX_CHARS): string {
  if (text.length <= max) return text; // UTF-16 units >= code points: short enough either way
  const points = Array.from(text);
  return points.length <= max ? text : points.slice(0, max).join('');
}

/**
 * The last response of a turn: the one with the highest `turnOrder` (of equal orders, the later one in
 * the list), or undefined when there is none.
 */
export function lastAgentResponse(responses: readonly AgentResponseData[]): AgentResponseData | undefined {
  let last: AgentResponseData | undefined;
  for (const r of responses) if (last === undefined || r.turnOrder >= last.turnOrder) last = r;
  return last;
}

/** `last_execution_time_ms`: the shown response's execution time, else the turn's processing time (ms). */
const executionTimeOf = (turn: ContextTurn): number | null =>
  turn.agentExecutionTimeMs ?? turn.processingTimeMs;

/** The state after the latest turn showed `response` (its last response so far). */
function withResponse(state: SessionContextState, response: AgentResponseData): SessionContextState {
  const turn: ContextTurn = {
    ...state.turn,
    agentTurnOrder: response.turnOrder,
    agentExecutionTimeMs: response.executionTimeMs,
  };
  return {
    ...state,
    turn,
    context: {
      ...state.context,
      last_response: truncateResponse(response.response),
      last_agent_used: response.agentName,
      last_execution_time_ms: executionTimeOf(turn),
    },
  };
}

/** The state after turn `turnId` failed with `error` (null: the logger gave no message). */
function withFailure(state: SessionContextState, turnId: string, error: string | null): SessionContextState {
  return {
    ...state,
    turn: error === null ? state.turn : { ...state.turn, errorTurnId: turnId },
    context: {
      ...state.context,
      error_count: state.context.error_count + 1,
      last_error: error ?? state.context.last_error,
    },
  };
}

/** The state after the latest turn's processing time became known (ms). */
function withProcessingTime(
  state: SessionContextState,
  processingTimeMs: number | null,
): SessionContextState {
  const turn: ContextTurn = {
    ...state.turn,
    processingTimeMs: processingTimeMs ?? state.turn.processingTimeMs,
  };
  return { ...state, turn, context: { ...state.context, last_execution_time_ms: executionTimeOf(turn) } };
}

/**
 * Folds one conversation event into a session's context state (pure; events in stream order):
 *
 * - `TurnLogged` / `TurnStarted` open the latest turn: `turnCount + 1`, `last_query` = its user input,
 *   response fields from its last agent response (none yet for a started turn: null), execution time
 *   from that response or the turn's processing time. A turn logged as failed counts an error.
 * - `AgentResponded` for the latest turn shows that response unless a higher `turnOrder` is shown already.
 * - `TurnCompleted` / `TurnFailed` of the latest turn give its processing time (used when the response
 *   had no execution time); `TurnFailed` (of any turn) counts an error and sets `last_error`.
 * - `TurnDeleted`: `turnCount - 1` (not below 0); when it was the turn the context shows, its query and
 *   response fields become null, and when `last_error` came from it, `last_error` becomes null.
 *   `error_count` is not reduced: it counts failures as they happened (seed 004: "number of errors").
 * - `ToolCallRecorded` changes nothing here (only the session's activity time, see {@link activityTimeOf}).
 */
export function evolveSessionContext(
  state: SessionContextState,
  event: ConversationDomainEvent,
): SessionContextState {
  switch (event.type) {
    case 'TurnLogged.v1': {
      const e = event.data;
      const opened: SessionContextState = {
        turnCount: state.turnCount + 1,
        turn: {
          ...EMPTY_CONTEXT_TURN,
          turnId: e.turnId,
          processingTimeMs: e.processingTimeMs,
          errorTurnId: state.turn.errorTurnId,
        },
        context: {
          ...state.context,
          last_query: e.userInput,
          last_response: null,
          last_agent_used: null,
          last_execution_time_ms: e.processingTimeMs,
        },
      };
      const response = lastAgentResponse(e.agentResponses);
      const answered = response === undefined ? opened : withResponse(opened, response);
      return e.status === 'failed' ? withFailure(answered, e.turnId, e.error) : answered;
    }
    case 'TurnStarted.v1': {
      const e = event.data;
      return {
        turnCount: state.turnCount + 1,
        turn: { ...EMPTY_CONTEXT_TURN, turnId: e.turnId, errorTurnId: state.turn.errorTurnId },
        context: {
          ...state.context,
          last_query: e.userInput,
          last_response: null,
          last_agent_used: null,
          last_execution_time_ms: null,
        },
      };
    }
    case 'AgentResponded.v1': {
      const e = event.data;
      if (e.turnId !== state.turn.turnId) return state;
      const shown = state.turn.agentTurnOrder;
      if (shown !== null && e.agentResponse.turnOrder < shown) return state;
      return withResponse(state, e.agentResponse);
    }
    case 'ToolCallRecorded.v1':
      return state;
    case 'TurnCompleted.v1': {
      const e = event.data;
      return e.turnId === state.turn.turnId ? withProcessingTime(state, e.processingTimeMs) : state;
    }
    case 'TurnFailed.v1': {
      const e = event.data;
      const timed = e.turnId === state.turn.turnId ? withProcessingTime(state, e.processingTimeMs) : state;
      return withFailure(timed, e.turnId, e.error);
    }
    case 'TurnDeleted.v1': {
      const e = event.data;
      let next: SessionContextState = { ...state, turnCount: Math.max(0, state.turnCount - 1) };
      if (e.turnId === state.turn.turnId) {
        next = {
          ...next,
          turn: { ...EMPTY_CONTEXT_TURN, errorTurnId: next.turn.errorTurnId },
          context: {
            ...next.context,
            last_query: null,
            last_response: null,
            last_agent_used: null,
            last_execution_time_ms: null,
          },
        };
      }
      if (e.turnId === next.turn.errorTurnId) {
        next = {
          ...next,
          turn: { ...next.turn, errorTurnId: null },
          context: { ...next.context, last_error: null },
        };
      }
      return next;
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/**
 * The time an event shows activity in the session (ISO 8601, from the event's data, never the clock),
 * or null when it is not activity: a turn's deletion (retention or a user's removal) does not make the
 * session recently active.
 */
export function activityTimeOf(event: ConversationDomainEvent): string | null {
  switch (event.type) {
    case 'TurnLogged.v1':
      return event.data.completedAt;
    case 'TurnStarted.v1':
      return event.data.startedAt;
    case 'AgentResponded.v1':
      return event.data.respondedAt;
    case 'ToolCallRecorded.v1':
      return event.data.recordedAt;
    case 'TurnCompleted.v1':
      return event.data.completedAt;
    case 'TurnFailed.v1':
      return event.data.failedAt;
    case 'TurnDeleted.v1':
      return null;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
