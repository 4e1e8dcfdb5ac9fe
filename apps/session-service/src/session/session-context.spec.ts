import { type AgentResponseData, EMPTY_SESSION_CONTEXT } from '@threadline/contracts';
import {
  activityTimeOf,
  type ConversationDomainEvent,
  evolveSessionContext,
  initialSessionContextState,
  LAST_RESPONSE_MAX_CHARS,
  lastAgentResponse,
  type SessionContextState,
  truncateResponse,
} from './session-context';

const usage = { inputTokens: 10, outputTokens: 5, cachedTokens: 0, reasoningTokens: 0, totalTokens: 15 };

const response = (over: Partial<AgentResponseData> = {}): AgentResponseData => ({
  agentName: 'planner',
  response: 'Sure.',
  turnOrder: 0,
  model: 'gpt-4o-mini',
  startedAt: '2025-01-01T10:00:00.000Z',
  executionTimeMs: 120,
  usage,
  usageSource: 'reported',
  costUsd: 0.0001,
  ...over,
});

type Logged = Extract<ConversationDomainEvent, { type: 'TurnLogged.v1' }>['data'];
const logged = (over: Partial<Logged> = {}): ConversationDomainEvent => ({
  type: 'TurnLogged.v1',
  data: {
    turnId: 't1',
    sessionId: 's1',
    userId: 'u1',
    conversationTurn: 1,
    userInput: 'Plan my week',
    agentResponses: [response()],
    toolCalls: [],
    vectorCacheHit: false,
    processingTimeMs: 300,
    status: 'completed',
    error: null,
    startedAt: '2025-01-01T10:00:00.000Z',
    completedAt: '2025-01-01T10:00:01.000Z',
    ...over,
  },
});
const started = (turnId: string, userInput: string): ConversationDomainEvent => ({
  type: 'TurnStarted.v1',
  data: {
    turnId,
    sessionId: 's1',
    userId: 'u1',
    conversationTurn: 1,
    userInput,
    vectorCacheHit: false,
    startedAt: '2025-01-01T11:00:00.000Z',
  },
});
const responded = (turnId: string, r: AgentResponseData): ConversationDomainEvent => ({
  type: 'AgentResponded.v1',
  data: { turnId, sessionId: 's1', agentResponse: r, respondedAt: '2025-01-01T11:00:02.000Z' },
});
const completed = (turnId: string, processingTimeMs: number | null): ConversationDomainEvent => ({
  type: 'TurnCompleted.v1',
  data: {
    turnId,
    sessionId: 's1',
    processingTimeMs,
    vectorCacheHit: null,
    completedAt: '2025-01-01T11:00:03.000Z',
  },
});
const failed = (turnId: string, error: string): ConversationDomainEvent => ({
  type: 'TurnFailed.v1',
  data: { turnId, sessionId: 's1', error, processingTimeMs: 900, failedAt: '2025-01-01T11:00:04.000Z' },
});
const deleted = (turnId: string): ConversationDomainEvent => ({
  type: 'TurnDeleted.v1',
  data: { turnId, sessionId: 's1', deletedAt: '2025-01-02T00:00:00.000Z' },
});
const toolCall = (turnId: string): ConversationDomainEvent => ({
  type: 'ToolCallRecorded.v1',
  data: {
    turnId,
    sessionId: 's1',
    toolCall: {
      toolCallId: 'c1',
      name: 'search',
      request: { q: 'x' },
      status: 'completed',
      result: [1],
      error: null,
    },
    recordedAt: '2025-01-01T11:00:02.500Z',
  },
});

const fold = (events: ConversationDomainEvent[], from: SessionContextState = initialSessionContextState()) =>
  events.reduce(evolveSessionContext, from);

describe('truncateResponse', () => {
  it('keeps a text of at most 500 characters and cuts a longer one to exactly 500', () => {
    expect(LAST_RESPONSE_MAX_CHARS).toBe(500);
    const exact = 'a'.repeat(500);
    expect(truncateResponse(exact)).toBe(exact);
    const long = `${'b'.repeat(499)}cdef`;
    expect(truncateResponse(long)).toBe(`${'b'.repeat(499)}c`);
    expect(truncateResponse(long)).toHaveLength(500);
  });

  it('counts code points: an emoji is one character and never split', () => {
    const emojis = '😀'.repeat(501); // 1002 UTF-16 units
    const cut = truncateResponse(emojis);
    expect(Array.from(cut)).toHaveLength(500);
    expect(cut).toBe('😀'.repeat(500));
    const short = '😀'.repeat(300); // 600 units, 300 characters: kept whole
    expect(truncateResponse(short)).toBe(short);
  });
});

describe('lastAgentResponse', () => {
  it('is the response with the highest turn order (the later one on a tie), undefined for none', () => {
    expect(lastAgentResponse([])).toBeUndefined();
    const a = response({ agentName: 'a', turnOrder: 2 });
    const b = response({ agentName: 'b', turnOrder: 1 });
    const c = response({ agentName: 'c', turnOrder: 2 });
    expect(lastAgentResponse([a, b])?.agentName).toBe('a');
    expect(lastAgentResponse([a, b, c])?.agentName).toBe('c');
  });
});

describe('evolveSessionContext', () => {
  it('starts empty', () => {
    expect(initialSessionContextState()).toEqual({
      turnCount: 0,
      context: EMPTY_SESSION_CONTEXT,
      turn: {
        turnId: null,
        agentTurnOrder: null,
        agentExecutionTimeMs: null,
        processingTimeMs: null,
        errorTurnId: null,
      },
    });
  });

  it('takes a logged turn: query, last response truncated to 500 characters, its agent and execution time', () => {
    const state = fold([
      logged({
        agentResponses: [
          response({ agentName: 'router', turnOrder: 0, response: 'routing', executionTimeMs: 15 }),
          response({ agentName: 'writer', turnOrder: 1, response: 'x'.repeat(2000), executionTimeMs: 840 }),
        ],
      }),
    ]);
    expect(state.turnCount).toBe(1);
    expect(state.context).toEqual({
      last_query: 'Plan my week',
      last_response: 'x'.repeat(500),
      last_agent_used: 'writer',
      last_execution_time_ms: 840,
      error_count: 0,
      last_error: null,
    });
  });

  it("uses the turn's processing time when the response has no execution time", () => {
    const state = fold([
      logged({ agentResponses: [response({ executionTimeMs: null })], processingTimeMs: 333 }),
    ]);
    expect(state.context.last_execution_time_ms).toBe(333);
    const none = fold([logged({ agentResponses: [], processingTimeMs: 50 })]);
    expect(none.context).toMatchObject({
      last_response: null,
      last_agent_used: null,
      last_execution_time_ms: 50,
    });
  });

  it('counts a turn logged as failed, and TurnFailed, as errors with the latest error', () => {
    const state = fold([
      logged({ turnId: 't1', status: 'failed', error: 'backend timeout', agentResponses: [] }),
      logged({ turnId: 't2', userInput: 'again' }),
      started('t3', 'third'),
      failed('t3', 'HTTP 502 from agent'),
    ]);
    expect(state.turnCount).toBe(3);
    expect(state.context.error_count).toBe(2);
    expect(state.context.last_error).toBe('HTTP 502 from agent');
    expect(state.context.last_query).toBe('third');
    expect(state.context.last_execution_time_ms).toBe(900); // the failed turn's processing time
    // A failed turn without a message still counts, and keeps the previous message.
    const silent = fold([logged({ turnId: 't4', status: 'failed', error: null })], state);
    expect(silent.context.error_count).toBe(3);
    expect(silent.context.last_error).toBe('HTTP 502 from agent');
  });

  it('follows an incremental turn: started, responses (highest turn order shown), tool call, completed', () => {
    const afterFirst = fold([logged({ turnId: 't1' })]);
    const opened = fold([started('t2', 'Next question')], afterFirst);
    expect(opened.turnCount).toBe(2);
    // The context describes the new turn: no response yet.
    expect(opened.context).toMatchObject({
      last_query: 'Next question',
      last_response: null,
      last_agent_used: null,
      last_execution_time_ms: null,
    });
    const s = fold(
      [
        responded(
          't2',
          response({ agentName: 'researcher', turnOrder: 1, response: 'found it', executionTimeMs: null }),
        ),
        responded('t2', response({ agentName: 'router', turnOrder: 0, response: 'late router' })), // lower order: ignored
        responded('t1', response({ agentName: 'old', turnOrder: 9 })), // not the latest turn: ignored
        toolCall('t2'),
      ],
      opened,
    );
    expect(s.context).toMatchObject({
      last_response: 'found it',
      last_agent_used: 'researcher',
      last_execution_time_ms: null,
    });
    const done = fold([completed('t2', 1500)], s);
    expect(done.context.last_execution_time_ms).toBe(1500); // no execution time on the response
    const next = fold(
      [
        responded(
          't2',
          response({ agentName: 'summarizer', turnOrder: 2, response: 'y'.repeat(600), executionTimeMs: 70 }),
        ),
      ],
      done,
    );
    expect(next.context).toMatchObject({
      last_response: 'y'.repeat(500),
      last_agent_used: 'summarizer',
      last_execution_time_ms: 70,
    });
    expect(next.turnCount).toBe(2);
  });

  it('decrements the turn count on delete, never below 0, and forgets what the deleted turn showed', () => {
    const state = fold([
      logged({ turnId: 't1', status: 'failed', error: 'boom' }),
      logged({ turnId: 't2', userInput: 'second' }),
    ]);
    const older = fold([deleted('t1')], state);
    expect(older.turnCount).toBe(1);
    // t1 was not the latest turn: the query stays; its error goes, the error count stays.
    expect(older.context).toMatchObject({ last_query: 'second', error_count: 1, last_error: null });
    const latest = fold([deleted('t2')], older);
    expect(latest.turnCount).toBe(0);
    expect(latest.context).toEqual({ ...EMPTY_SESSION_CONTEXT, error_count: 1 });
    expect(fold([deleted('t2'), deleted('unknown')], latest).turnCount).toBe(0);
  });

  it('is pure: the given state is not changed', () => {
    const before = fold([logged()]);
    const copy = structuredClone(before);
    fold([started('t9', 'q'), failed('t9', 'e'), deleted('t9')], before);
    expect(before).toEqual(copy);
  });
});

describe('activityTimeOf', () => {
  it("is the event's own time, and null for a deletion", () => {
    expect(activityTimeOf(logged())).toBe('2025-01-01T10:00:01.000Z');
    expect(activityTimeOf(started('t', 'q'))).toBe('2025-01-01T11:00:00.000Z');
    expect(activityTimeOf(responded('t', response()))).toBe('2025-01-01T11:00:02.000Z');
    expect(activityTimeOf(toolCall('t'))).toBe('2025-01-01T11:00:02.500Z');
    expect(activityTimeOf(completed('t', 1))).toBe('2025-01-01T11:00:03.000Z');
    expect(activityTimeOf(failed('t', 'e'))).toBe('2025-01-01T11:00:04.000Z');
    expect(activityTimeOf(deleted('t'))).toBeNull();
  });
});
