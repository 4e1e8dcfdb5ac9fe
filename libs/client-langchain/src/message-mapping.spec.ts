import {
  AIMessage,
  type BaseMessage,
  HumanMessage,
  mapChatMessagesToStoredMessages,
  SystemMessage,
  ToolMessage,
} from '@langchain/core/messages';
import type { LogTurnInput, Turn } from '@threadline/client';
import { messagesOfTurn, TRANSCRIPT_TOOL_NAME, turnOfMessages } from './message-mapping';

// The mapping alone; ThreadlineChatMessageHistory's specs run it against the real stack.

/** What a stored turn of `input` looks like once the API has filled in its defaults (JSON, as sent). */
function turnOf(input: LogTurnInput): Turn {
  const body = JSON.parse(JSON.stringify(input)) as LogTurnInput;
  const now = new Date(0).toISOString();
  const zero = { input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0 };
  return {
    turn_id: 't1',
    session_id: 's1',
    user_id: null,
    conversation_turn: 1,
    user_input: body.user_input,
    agent_responses: (body.agent_responses ?? []).map((r, i) => ({
      agent_name: r.agent_name,
      response: r.response,
      turn_order: r.turn_order ?? i,
      model: r.model ?? null,
      started_at: null,
      execution_time_ms: null,
      usage: { ...zero, ...r.usage },
      usage_source: r.usage === undefined ? 'estimated' : 'reported',
      cost_usd: 0,
    })),
    tool_calls: (body.tool_calls ?? []).map((c, i) => ({
      tool_call_id: c.tool_call_id ?? `c${i}`,
      name: c.name,
      request: c.request ?? null,
      status: c.status ?? 'completed',
      result: c.result ?? null,
      error: c.error ?? null,
      updated_at: now,
    })),
    usage: zero,
    cost_usd: 0,
    vector_cache_hit: false,
    processing_time_ms: null,
    status: 'completed',
    error: null,
    started_at: now,
    completed_at: now,
    updated_at: now,
  };
}

const stored = (messages: BaseMessage[]) =>
  JSON.parse(JSON.stringify(mapChatMessagesToStoredMessages(messages))) as unknown;

const exchange = (): BaseMessage[] => [
  new SystemMessage('You answer about the weather.'),
  new HumanMessage({ content: 'Weather in Paris?', id: 'h-1' }),
  new AIMessage({
    content: '',
    id: 'run-1',
    tool_calls: [{ id: 'call_1', name: 'weather', args: { city: 'Paris' }, type: 'tool_call' }],
    usage_metadata: {
      input_tokens: 12,
      output_tokens: 5,
      total_tokens: 17,
      input_token_details: { cache_read: 4 },
      output_token_details: { reasoning: 2 },
    },
    response_metadata: { model_name: 'gpt-4o-mini', finish_reason: 'tool_calls' },
  }),
  new ToolMessage({ content: '18 C, sunny', tool_call_id: 'call_1', name: 'weather' }),
  new AIMessage({
    content: 'It is sunny, 18 C.',
    id: 'run-2',
    usage_metadata: { input_tokens: 30, output_tokens: 8, total_tokens: 38 },
    response_metadata: { model_name: 'gpt-4o-mini' },
  }),
];

describe('turnOfMessages', () => {
  it('puts the exchange into the fields Threadline counts', () => {
    const body = turnOfMessages(exchange(), { agentName: 'assistant' });
    expect(body.user_input).toBe('Weather in Paris?');
    expect(body.agent_responses).toEqual([
      {
        agent_name: 'assistant',
        response: '',
        turn_order: 0,
        model: 'gpt-4o-mini',
        usage: {
          input_tokens: 12,
          output_tokens: 5,
          total_tokens: 17,
          cached_tokens: 4,
          reasoning_tokens: 2,
        },
      },
      {
        agent_name: 'assistant',
        response: 'It is sunny, 18 C.',
        turn_order: 1,
        model: 'gpt-4o-mini',
        usage: { input_tokens: 30, output_tokens: 8, total_tokens: 38 },
      },
    ]);
    expect(body.tool_calls?.[0]).toEqual({
      tool_call_id: 'call_1',
      name: 'weather',
      request: { city: 'Paris' },
      status: 'completed',
      result: '18 C, sunny',
    });
    expect(body.tool_calls?.[1]).toMatchObject({ tool_call_id: TRANSCRIPT_TOOL_NAME, status: 'completed' });
    expect(body.tool_calls).toHaveLength(2);
  });

  it('marks a tool message with status error as a failed call, and an unanswered call as pending', () => {
    const body = turnOfMessages(
      [
        new HumanMessage('go'),
        new AIMessage({
          content: '',
          tool_calls: [
            { id: 'a', name: 'one', args: {} },
            { id: 'b', name: 'two', args: { x: 1 } },
          ],
        }),
        new ToolMessage({ content: 'boom', tool_call_id: 'a', status: 'error' }),
      ],
      { agentName: 'bot' },
    );
    expect(body.tool_calls?.slice(0, 2)).toEqual([
      { tool_call_id: 'a', name: 'one', request: {}, status: 'failed', result: 'boom', error: 'boom' },
      { tool_call_id: 'b', name: 'two', request: { x: 1 }, status: 'pending' },
    ]);
    expect(body.agent_responses?.[0]).not.toHaveProperty('usage');
  });

  it('gives tool calls without a usable id (missing, not an identifier, repeated) ids of their own', () => {
    const body = turnOfMessages(
      [
        new AIMessage({
          content: '',
          tool_calls: [
            { name: 'a', args: {} },
            { id: 'has space', name: 'b', args: {} },
            { id: 'same', name: 'c', args: {} },
            { id: 'same', name: 'd', args: {} },
          ],
        }),
      ],
      { agentName: 'bot' },
    );
    const ids = (body.tool_calls ?? []).map((c) => c.tool_call_id ?? '');
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_\-.:@]{1,128}$/);
    expect(body.user_input).toBe('');
  });
});

describe('messagesOfTurn', () => {
  it('gives back exactly the messages written: human, AI with tool calls and usage, tool, system', () => {
    const messages = exchange();
    const back = messagesOfTurn(turnOf(turnOfMessages(messages, { agentName: 'assistant' })));
    expect(back.map((m) => m.constructor.name)).toEqual([
      'SystemMessage',
      'HumanMessage',
      'AIMessage',
      'ToolMessage',
      'AIMessage',
    ]);
    expect(stored(back)).toEqual(stored(messages));
    const ai = back[2] as AIMessage;
    expect(ai.tool_calls).toEqual(messages[2] && (messages[2] as AIMessage).tool_calls);
    expect(ai.usage_metadata).toEqual((messages[2] as AIMessage).usage_metadata);
    expect(ai.response_metadata['model_name']).toBe('gpt-4o-mini');
    expect((back[3] as ToolMessage).tool_call_id).toBe('call_1');
  });

  it('reads a turn logged without the adapter from its fields', () => {
    const turn = turnOf({
      user_input: 'What is 2+2?',
      agent_responses: [
        {
          agent_name: 'math',
          response: '4',
          model: 'm1',
          usage: { input_tokens: 5, output_tokens: 1, total_tokens: 6 },
        },
      ],
      tool_calls: [
        { tool_call_id: 'c1', name: 'calc', request: { expr: '2+2' }, status: 'completed', result: 4 },
      ],
    });
    const back = messagesOfTurn(turn);
    expect(back.map((m) => m.constructor.name)).toEqual([
      'HumanMessage',
      'AIMessage',
      'ToolMessage',
      'AIMessage',
    ]);
    expect(back[0]?.content).toBe('What is 2+2?');
    expect((back[1] as AIMessage).tool_calls).toEqual([
      { id: 'c1', name: 'calc', args: { expr: '2+2' }, type: 'tool_call' },
    ]);
    expect(back[2]).toMatchObject({ content: '4', tool_call_id: 'c1' });
    const answer = back[3] as AIMessage;
    expect(answer.content).toBe('4');
    expect(answer.name).toBe('math');
    expect(answer.response_metadata['model_name']).toBe('m1');
    expect(answer.usage_metadata).toMatchObject({ input_tokens: 5, output_tokens: 1, total_tokens: 6 });
  });

  it('refuses a transcript entry that is not a list of stored messages', () => {
    const turn = turnOf(turnOfMessages([new HumanMessage('hi')], { agentName: 'a' }));
    const entry = turn.tool_calls.find((c) => c.tool_call_id === TRANSCRIPT_TOOL_NAME);
    if (entry === undefined) throw new Error('no transcript entry');
    entry.result = [{ not: 'a message' }];
    expect(() => messagesOfTurn(turn)).toThrow(/not a list of stored messages/);
  });
});
