import {
  AgentRespondedV1,
  LogTurnBody,
  ToolCallRecordedV1,
  TurnCompletedV1,
  TurnDeletedV1,
  TurnFailedV1,
  TurnLoggedV1,
  TurnStartedV1,
} from '@threadline/contracts';
import { DomainError } from '@threadline/platform';
import { DeciderSpecification } from '@threadline/testing';
import { SHIPPED_PRICE_TABLE } from '../usage/price-table';
import { UsageMeter } from '../usage/usage-meter';
import {
  type ConversationCommand,
  type ConversationDomainEvent,
  type ConversationState,
  type DeciderEvent,
  decide,
  evolve,
  initialState,
  sessionLifecycleEventOf,
} from './conversation.decider';

const now = new Date('2025-01-02T03:04:05.678Z');
const at = now.toISOString();
const earlier = '2025-01-01T00:00:00.000Z';
const meter = new UsageMeter(SHIPPED_PRICE_TABLE);

/** Ids handed out by the decider, in order: tc-1, tc-2, ... (fresh per `when`). */
let ids = 0;
const newId = () => `tc-${++ids}`;

const spec = DeciderSpecification<ConversationState, ConversationCommand, DeciderEvent>({
  decide: (command, state) => {
    ids = 0;
    return decide(command, state, { now, newId, meter });
  },
  evolve,
  initialState,
});

const created = (userId: string | null = 'u1'): DeciderEvent => ({
  type: 'SessionCreated.v1',
  data: { sessionId: 's1', userId, title: 'Chat', metadata: {}, createdFrom: null, startedAt: earlier },
});
const ended: DeciderEvent = {
  type: 'SessionEnded.v1',
  data: { sessionId: 's1', reason: 'user', endedAt: earlier },
};
const sessionDeleted: DeciderEvent = {
  type: 'SessionDeleted.v1',
  data: { sessionId: 's1', deletedAt: earlier },
};

const usage0 = { inputTokens: 10, outputTokens: 5, cachedTokens: 0, reasoningTokens: 0, totalTokens: 15 };
const logged = (
  turnId: string,
  n: number,
  status: 'completed' | 'failed' = 'completed',
): ConversationDomainEvent => ({
  type: 'TurnLogged.v1',
  data: {
    turnId,
    sessionId: 's1',
    userId: 'u1',
    conversationTurn: n,
    userInput: `question ${n}`,
    agentResponses: [],
    toolCalls: [],
    vectorCacheHit: false,
    processingTimeMs: null,
    status,
    error: null,
    startedAt: earlier,
    completedAt: earlier,
  },
});
const started = (turnId: string, n: number): ConversationDomainEvent => ({
  type: 'TurnStarted.v1',
  data: {
    turnId,
    sessionId: 's1',
    userId: 'u1',
    conversationTurn: n,
    userInput: 'hello world',
    vectorCacheHit: false,
    startedAt: earlier,
  },
});
const responded = (turnId: string, turnOrder: number): ConversationDomainEvent => ({
  type: 'AgentResponded.v1',
  data: {
    turnId,
    sessionId: 's1',
    agentResponse: {
      agentName: 'GenAgent',
      response: 'ok',
      turnOrder,
      model: null,
      startedAt: null,
      executionTimeMs: null,
      usage: usage0,
      usageSource: 'reported',
      costUsd: 0,
    },
    respondedAt: earlier,
  },
});
const toolCall = (turnId: string, status: 'pending' | 'completed' = 'pending'): ConversationDomainEvent => ({
  type: 'ToolCallRecorded.v1',
  data: {
    turnId,
    sessionId: 's1',
    toolCall: {
      toolCallId: 'call-1',
      name: 'orders_trend',
      request: { cfc: 'CFC-1' },
      status,
      result: null,
      error: null,
    },
    recordedAt: earlier,
  },
});
const completed = (turnId: string): ConversationDomainEvent => ({
  type: 'TurnCompleted.v1',
  data: { turnId, sessionId: 's1', processingTimeMs: null, vectorCacheHit: null, completedAt: earlier },
});
const turnDeleted = (turnId: string): ConversationDomainEvent => ({
  type: 'TurnDeleted.v1',
  data: { turnId, sessionId: 's1', deletedAt: earlier },
});

const body = (over: Partial<Record<keyof LogTurnBody, unknown>> = {}): LogTurnBody =>
  LogTurnBody.parse({ user_input: 'hello world', ...over });
const logTurn = (
  turnId: string,
  over: Partial<Record<keyof LogTurnBody, unknown>> = {},
  actingUserId?: string,
): ConversationCommand => ({
  type: 'LogTurn',
  data: { sessionId: 's1', turnId, actingUserId, turn: body(over) },
});
const scope = (turnId: string, actingUserId?: string) => ({ sessionId: 's1', turnId, actingUserId });

const expectCode = (code: string) => (error: unknown) => {
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
};

describe('Conversation decider', () => {
  it('uses the contracts’ type names and narrows stored events', () => {
    expect(
      [
        TurnLoggedV1,
        TurnStartedV1,
        AgentRespondedV1,
        ToolCallRecordedV1,
        TurnCompletedV1,
        TurnFailedV1,
        TurnDeletedV1,
      ].map((d) => d.type),
    ).toEqual([
      'TurnLogged.v1',
      'TurnStarted.v1',
      'AgentResponded.v1',
      'ToolCallRecorded.v1',
      'TurnCompleted.v1',
      'TurnFailed.v1',
      'TurnDeleted.v1',
    ]);
    expect(
      sessionLifecycleEventOf({
        type: 'SessionTitleChanged.v1',
        data: { sessionId: 's1', title: 'x', changedAt: '2026-01-01T00:00:00.000Z' },
      }),
    ).toBeNull();
  });

  describe('LogTurn', () => {
    it('logs a whole turn as TurnLogged with number 1, metered responses and tool calls', () =>
      spec
        .given([created()])
        .when(
          logTurn('t1', {
            agent_responses: [
              { agent_name: 'GenAgent', response: 'hello world', model: 'gpt-4o' },
              {
                agent_name: 'SummAgent',
                response: 'done',
                turn_order: 7,
                model: 'gpt-4o-mini',
                usage: { input_tokens: 100, output_tokens: 50 },
                execution_time_ms: 120,
              },
            ],
            tool_calls: [
              { name: 'orders_trend', request: { cfc: 'CFC-1' }, status: 'running' },
              { tool_call_id: 'x', name: 'sql', status: 'pending' },
              { tool_call_id: 'x', name: 'sql', status: 'completed', result: { rows: 3 } },
            ],
            processing_time_ms: 900,
            vector_cache_hit: true,
          }),
        )
        .then([
          {
            type: 'TurnLogged.v1',
            data: {
              turnId: 't1',
              sessionId: 's1',
              userId: 'u1',
              conversationTurn: 1,
              userInput: 'hello world',
              agentResponses: [
                {
                  agentName: 'GenAgent',
                  response: 'hello world',
                  turnOrder: 1,
                  model: 'gpt-4o',
                  startedAt: null,
                  executionTimeMs: null,
                  usage: {
                    inputTokens: 2,
                    outputTokens: 2,
                    cachedTokens: 0,
                    reasoningTokens: 0,
                    totalTokens: 4,
                  },
                  usageSource: 'estimated',
                  costUsd: (2 * 2.5 + 2 * 10) / 1e6,
                },
                {
                  agentName: 'SummAgent',
                  response: 'done',
                  turnOrder: 7,
                  model: 'gpt-4o-mini',
                  startedAt: null,
                  executionTimeMs: 120,
                  usage: {
                    inputTokens: 100,
                    outputTokens: 50,
                    cachedTokens: 0,
                    reasoningTokens: 0,
                    totalTokens: 150,
                  },
                  usageSource: 'reported',
                  costUsd: (100 * 0.15 + 50 * 0.6) / 1e6,
                },
              ],
              toolCalls: [
                {
                  toolCallId: 'tc-1',
                  name: 'orders_trend',
                  request: { cfc: 'CFC-1' },
                  status: 'running',
                  result: null,
                  error: null,
                },
                {
                  toolCallId: 'x',
                  name: 'sql',
                  request: null,
                  status: 'completed',
                  result: { rows: 3 },
                  error: null,
                },
              ],
              vectorCacheHit: true,
              processingTimeMs: 900,
              status: 'completed',
              error: null,
              startedAt: at,
              completedAt: at,
            },
          },
        ]));

    it('numbers turns after the last one, deleted turns included', () =>
      spec
        .given([created(), logged('t1', 1), logged('t2', 2), turnDeleted('t2')])
        .when(logTurn('t3', { status: 'failed', error: 'boom', started_at: earlier }))
        .then([
          {
            type: 'TurnLogged.v1',
            data: expect.objectContaining({
              turnId: 't3',
              conversationTurn: 3,
              status: 'failed',
              error: 'boom',
              startedAt: earlier,
              completedAt: at,
            }) as never,
          },
        ]));

    it('starts a turn (in_progress) as TurnStarted, then one event per response and tool call', () =>
      spec
        .given([created(null), logged('t1', 1)])
        .when(
          logTurn(
            't2',
            {
              status: 'in_progress',
              agent_responses: [
                { agent_name: 'GenAgent', response: 'hi', usage: { input_tokens: 1, output_tokens: 1 } },
              ],
              tool_calls: [{ name: 'search', status: 'pending' }],
            },
            undefined,
          ),
        )
        .then([
          {
            type: 'TurnStarted.v1',
            data: {
              turnId: 't2',
              sessionId: 's1',
              userId: null,
              conversationTurn: 2,
              userInput: 'hello world',
              vectorCacheHit: false,
              startedAt: at,
            },
          },
          {
            type: 'AgentResponded.v1',
            data: {
              turnId: 't2',
              sessionId: 's1',
              agentResponse: {
                agentName: 'GenAgent',
                response: 'hi',
                turnOrder: 1,
                model: null,
                startedAt: null,
                executionTimeMs: null,
                usage: {
                  inputTokens: 1,
                  outputTokens: 1,
                  cachedTokens: 0,
                  reasoningTokens: 0,
                  totalTokens: 2,
                },
                usageSource: 'reported',
                costUsd: 0,
              },
              respondedAt: at,
            },
          },
          {
            type: 'ToolCallRecorded.v1',
            data: {
              turnId: 't2',
              sessionId: 's1',
              toolCall: {
                toolCallId: 'tc-1',
                name: 'search',
                request: null,
                status: 'pending',
                result: null,
                error: null,
              },
              recordedAt: at,
            },
          },
        ]));

    it('refuses closing fields on a turn started in progress (REQUEST.INVALID)', () =>
      spec
        .given([created()])
        .when(logTurn('t1', { status: 'in_progress', error: 'x', completed_at: earlier }))
        .thenThrows((error) => {
          expectCode('REQUEST.INVALID')(error);
          expect((error as DomainError).details).toEqual({
            issues: [
              { path: 'completed_at', message: 'not allowed with status "in_progress"' },
              { path: 'error', message: 'not allowed with status "in_progress"' },
            ],
          });
        }));

    it('answers SESSION.NOT_FOUND for an unknown session', () =>
      spec.given([]).when(logTurn('t1')).thenThrows(expectCode('SESSION.NOT_FOUND')));

    it('answers SESSION.NOT_FOUND for a deleted session', () =>
      spec
        .given([created(), sessionDeleted])
        .when(logTurn('t1'))
        .thenThrows(expectCode('SESSION.NOT_FOUND')));

    it('answers SESSION.NOT_FOUND for another user’s session, and for a user-less one to a scoped caller', () => {
      spec
        .given([created('u1')])
        .when(logTurn('t1', {}, 'u2'))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created(null)])
        .when(logTurn('t1', {}, 'u2'))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
    });

    it('answers SESSION.ALREADY_ENDED for an ended session', () =>
      spec.given([created(), ended]).when(logTurn('t1')).thenThrows(expectCode('SESSION.ALREADY_ENDED')));

    it('answers SESSION.ALREADY_ENDED for an expired session, like an ended one', () => {
      const expired: DeciderEvent = {
        type: 'SessionExpired.v1',
        data: { sessionId: 's1', lastActivityAt: earlier, idleMs: 1, timeoutMs: 1, expiredAt: earlier },
      };
      expect(sessionLifecycleEventOf(expired)).toBe(expired);
      spec.given([created(), expired]).when(logTurn('t1')).thenThrows(expectCode('SESSION.ALREADY_ENDED'));
    });

    it('answers TURN.ALREADY_EXISTS for a turn id used before, even a deleted one', () => {
      spec
        .given([created(), logged('t1', 1)])
        .when(logTurn('t1'))
        .thenThrows(expectCode('TURN.ALREADY_EXISTS'));
      spec
        .given([created(), logged('t1', 1), turnDeleted('t1')])
        .when(logTurn('t1'))
        .thenThrows(expectCode('TURN.ALREADY_EXISTS'));
    });

    it('accepts the scoped owner of the session', () =>
      spec
        .given([created('u1')])
        .when(logTurn('t1', {}, 'u1'))
        .then([
          {
            type: 'TurnLogged.v1',
            data: expect.objectContaining({ userId: 'u1', conversationTurn: 1 }) as never,
          },
        ]));
  });

  describe('RecordAgentResponse', () => {
    const command = (turnId: string, actingUserId?: string): ConversationCommand => ({
      type: 'RecordAgentResponse',
      data: {
        ...scope(turnId, actingUserId),
        response: { agent_name: 'SummAgent', response: 'hello world', model: 'gpt-3.5-turbo' },
      },
    });

    it('appends the next response, input tokens estimated from the turn’s user input', () =>
      spec
        .given([created(), started('t1', 1), responded('t1', 1)])
        .when(command('t1'))
        .then([
          {
            type: 'AgentResponded.v1',
            data: {
              turnId: 't1',
              sessionId: 's1',
              agentResponse: {
                agentName: 'SummAgent',
                response: 'hello world',
                turnOrder: 2,
                model: 'gpt-3.5-turbo',
                startedAt: null,
                executionTimeMs: null,
                usage: {
                  inputTokens: 2,
                  outputTokens: 2,
                  cachedTokens: 0,
                  reasoningTokens: 0,
                  totalTokens: 4,
                },
                usageSource: 'estimated',
                costUsd: (2 * 0.5 + 2 * 1.5) / 1e6,
              },
              respondedAt: at,
            },
          },
        ]));

    it('still finishes a turn opened before its session ended', () =>
      spec
        .given([created(), started('t1', 1), ended])
        .when(command('t1'))
        .then([{ type: 'AgentResponded.v1', data: expect.objectContaining({ turnId: 't1' }) as never }]));

    it('answers TURN.NOT_FOUND for an unknown, deleted or another user’s turn, or one of a deleted session', () => {
      spec.given([created()]).when(command('t9')).thenThrows(expectCode('TURN.NOT_FOUND'));
      spec
        .given([created(), started('t1', 1), turnDeleted('t1')])
        .when(command('t1'))
        .thenThrows(expectCode('TURN.NOT_FOUND'));
      spec
        .given([created(), started('t1', 1)])
        .when(command('t1', 'u2'))
        .thenThrows(expectCode('TURN.NOT_FOUND'));
      spec
        .given([created(), started('t1', 1), sessionDeleted])
        .when(command('t1'))
        .thenThrows(expectCode('TURN.NOT_FOUND'));
    });

    it('answers TURN.NOT_OPEN for a completed or failed turn', () => {
      spec
        .given([created(), logged('t1', 1)])
        .when(command('t1'))
        .thenThrows(expectCode('TURN.NOT_OPEN'));
      spec
        .given([created(), logged('t1', 1, 'failed')])
        .when(command('t1'))
        .thenThrows(expectCode('TURN.NOT_OPEN'));
      spec
        .given([created(), started('t1', 1), completed('t1')])
        .when(command('t1'))
        .thenThrows(expectCode('TURN.NOT_OPEN'));
    });
  });

  describe('RecordToolCall', () => {
    const command = (input: Record<string, unknown>): ConversationCommand => ({
      type: 'RecordToolCall',
      data: { ...scope('t1'), toolCall: LogTurnBody.shape.tool_calls.parse([input])[0]! },
    });

    it('records a new tool call with a fresh id', () =>
      spec
        .given([created(), started('t1', 1)])
        .when(command({ name: 'search', request: { q: 'x' } }))
        .then([
          {
            type: 'ToolCallRecorded.v1',
            data: {
              turnId: 't1',
              sessionId: 's1',
              toolCall: {
                toolCallId: 'tc-1',
                name: 'search',
                request: { q: 'x' },
                status: 'completed',
                result: null,
                error: null,
              },
              recordedAt: at,
            },
          },
        ]));

    it('updates the call with the same id, keeping the request it does not repeat', () =>
      spec
        .given([created(), started('t1', 1), toolCall('t1')])
        .when(
          command({
            tool_call_id: 'call-1',
            name: 'orders_trend',
            status: 'completed',
            result: { total: 1200 },
          }),
        )
        .then([
          {
            type: 'ToolCallRecorded.v1',
            data: {
              turnId: 't1',
              sessionId: 's1',
              toolCall: {
                toolCallId: 'call-1',
                name: 'orders_trend',
                request: { cfc: 'CFC-1' },
                status: 'completed',
                result: { total: 1200 },
                error: null,
              },
              recordedAt: at,
            },
          },
        ]));

    it('answers TURN.NOT_OPEN on a closed turn and TURN.NOT_FOUND on an unknown one', () => {
      spec
        .given([created(), logged('t1', 1)])
        .when(command({ name: 'x' }))
        .thenThrows(expectCode('TURN.NOT_OPEN'));
      spec
        .given([created()])
        .when(command({ name: 'x' }))
        .thenThrows(expectCode('TURN.NOT_FOUND'));
    });
  });

  describe('CompleteTurn', () => {
    const command: ConversationCommand = {
      type: 'CompleteTurn',
      data: { ...scope('t1'), processingTimeMs: 1500, vectorCacheHit: true },
    };

    it('completes an open turn', () =>
      spec
        .given([created(), started('t1', 1), responded('t1', 1)])
        .when(command)
        .then([
          {
            type: 'TurnCompleted.v1',
            data: {
              turnId: 't1',
              sessionId: 's1',
              processingTimeMs: 1500,
              vectorCacheHit: true,
              completedAt: at,
            },
          },
        ]));

    it('answers TURN.NOT_OPEN when already completed, TURN.NOT_FOUND when unknown', () => {
      spec
        .given([created(), started('t1', 1), completed('t1')])
        .when(command)
        .thenThrows(expectCode('TURN.NOT_OPEN'));
      spec.given([created()]).when(command).thenThrows(expectCode('TURN.NOT_FOUND'));
    });
  });

  describe('FailTurn', () => {
    const command: ConversationCommand = {
      type: 'FailTurn',
      data: { ...scope('t1'), error: 'backend timeout' },
    };

    it('fails an open turn', () =>
      spec
        .given([created(), started('t1', 1)])
        .when(command)
        .then([
          {
            type: 'TurnFailed.v1',
            data: {
              turnId: 't1',
              sessionId: 's1',
              error: 'backend timeout',
              processingTimeMs: null,
              failedAt: at,
            },
          },
        ]));

    it('answers TURN.NOT_OPEN on a closed turn, TURN.NOT_FOUND for another user', () => {
      spec
        .given([created(), logged('t1', 1)])
        .when(command)
        .thenThrows(expectCode('TURN.NOT_OPEN'));
      spec
        .given([created(), started('t1', 1)])
        .when({ type: 'FailTurn', data: { ...scope('t1', 'u2'), error: 'x' } })
        .thenThrows(expectCode('TURN.NOT_FOUND'));
    });
  });

  describe('DeleteTurn', () => {
    const command: ConversationCommand = { type: 'DeleteTurn', data: scope('t1') };

    it('deletes a turn in any status, also in an ended session', () => {
      const deleted = [{ type: 'TurnDeleted.v1', data: { turnId: 't1', sessionId: 's1', deletedAt: at } }];
      spec
        .given([created(), logged('t1', 1)])
        .when(command)
        .then(deleted as DeciderEvent[]);
      spec
        .given([created(), started('t1', 1)])
        .when(command)
        .then(deleted as DeciderEvent[]);
      spec
        .given([created(), logged('t1', 1), ended])
        .when(command)
        .then(deleted as DeciderEvent[]);
    });

    it('answers TURN.NOT_FOUND when already deleted, unknown, or another user’s', () => {
      spec
        .given([created(), logged('t1', 1), turnDeleted('t1')])
        .when(command)
        .thenThrows(expectCode('TURN.NOT_FOUND'));
      spec.given([created()]).when(command).thenThrows(expectCode('TURN.NOT_FOUND'));
      spec
        .given([created(), logged('t1', 1)])
        .when({ type: 'DeleteTurn', data: scope('t1', 'u2') })
        .thenThrows(expectCode('TURN.NOT_FOUND'));
    });
  });

  describe('evolve', () => {
    it('counts only conversation events in the version and remembers every number', () => {
      const state = [
        created(),
        logged('t1', 1),
        started('t2', 2),
        responded('t2', 1),
        toolCall('t2'),
        toolCall('t2', 'completed'),
        turnDeleted('t1'),
        ended,
      ].reduce(evolve, initialState());
      expect(state.version).toBe(6);
      expect(state.lastTurnNumber).toBe(2);
      expect(state.session).toEqual({ status: 'ended', userId: 'u1' });
      expect(state.turns['t1']?.status).toBe('deleted');
      expect(state.turns['t2']).toMatchObject({ status: 'in_progress', responses: 1 });
      expect(state.turns['t2']?.toolCalls).toHaveLength(1);
      expect(state.turns['t2']?.toolCalls[0]?.status).toBe('completed');
    });

    it('only moves the version for an event of a turn it never saw', () => {
      const state = evolve(initialState(), completed('ghost'));
      expect(state).toEqual({ ...initialState(), version: 1 });
    });
  });
});
