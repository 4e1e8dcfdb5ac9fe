import type { AgentInputItem } from '@openai/agents-core';
import type { LogTurnInput, Turn } from '@threadline/client';
import { itemsOfTurn, TRANSCRIPT_TOOL_NAME, turnOfItems } from './item-mapping';

// The mapping alone; ThreadlineSession's specs run it against the real stack with a real Runner.

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

/** The items the runner hands `addItems` for a run with a reasoning step and one function call. */
const runItems = (): AgentInputItem[] => [
  { type: 'message', role: 'user', content: 'Weather in Paris?' },
  {
    type: 'reasoning',
    id: 'rs_1',
    content: [{ type: 'input_text', text: 'Look it up.' }],
    providerData: { k: 1 },
  },
  {
    type: 'function_call',
    callId: 'call_1',
    name: 'weather',
    arguments: '{"city":"Paris"}',
    status: 'completed',
  },
  {
    type: 'function_call_result',
    name: 'weather',
    callId: 'call_1',
    status: 'completed',
    output: { type: 'text', text: '18 C, sunny' },
  },
  {
    type: 'message',
    id: 'msg_1',
    role: 'assistant',
    status: 'completed',
    content: [{ type: 'output_text', text: 'Sunny, 18 C.' }],
  },
];

describe('turnOfItems', () => {
  it('puts a run into the fields Threadline counts: the input, each assistant message, each function call', () => {
    const body = turnOfItems(runItems(), { agentName: 'geo', model: 'scripted-1' });
    expect(body.user_input).toBe('Weather in Paris?');
    expect(body.agent_responses).toEqual([
      { agent_name: 'geo', response: 'Sunny, 18 C.', turn_order: 0, model: 'scripted-1' },
    ]);
    expect(body.tool_calls?.[0]).toEqual({
      tool_call_id: 'call_1',
      name: 'weather',
      request: { city: 'Paris' },
      status: 'completed',
      result: { type: 'text', text: '18 C, sunny' },
    });
    expect(body.tool_calls?.[1]).toMatchObject({
      tool_call_id: TRANSCRIPT_TOOL_NAME,
      name: TRANSCRIPT_TOOL_NAME,
    });
    expect(body.tool_calls).toHaveLength(2);
  });

  it('keeps arguments that are not canonical JSON as the string they are; an incomplete result is a failed call', () => {
    const body = turnOfItems(
      [
        { type: 'function_call', callId: 'a', name: 'f', arguments: '{ "x": 1 }' },
        { type: 'function_call', callId: 'b', name: 'g', arguments: 'not json' },
        { type: 'function_call_result', callId: 'a', name: 'f', status: 'incomplete', output: 'partial' },
      ],
      { agentName: 'bot' },
    );
    expect(body.tool_calls?.slice(0, 2)).toEqual([
      {
        tool_call_id: 'a',
        name: 'f',
        request: '{ "x": 1 }',
        status: 'failed',
        result: 'partial',
        error: 'incomplete',
      },
      { tool_call_id: 'b', name: 'g', request: 'not json', status: 'pending' },
    ]);
    expect(body.user_input).toBe('');
  });
});

describe('itemsOfTurn', () => {
  it('gives back exactly the items written, reasoning and provider data included', () => {
    const items = runItems();
    expect(itemsOfTurn(turnOf(turnOfItems(items, { agentName: 'geo' })))).toEqual(items);
  });

  it('reads a turn logged without the adapter from its fields', () => {
    const turn = turnOf({
      user_input: 'What is 2+2?',
      agent_responses: [{ agent_name: 'math', response: '4' }],
      tool_calls: [
        { tool_call_id: 'c1', name: 'calc', request: { expr: '2+2' }, status: 'completed', result: 4 },
      ],
    });
    expect(itemsOfTurn(turn)).toEqual([
      { type: 'message', role: 'user', content: 'What is 2+2?' },
      { type: 'function_call', callId: 'c1', name: 'calc', arguments: '{"expr":"2+2"}', status: 'completed' },
      { type: 'function_call_result', callId: 'c1', name: 'calc', status: 'completed', output: '4' },
      {
        type: 'message',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: '4' }],
      },
    ]);
  });

  it('refuses a transcript entry that is not a list of items', () => {
    const turn = turnOf(turnOfItems([{ role: 'user', content: 'hi' }], { agentName: 'a' }));
    const entry = turn.tool_calls.find((c) => c.tool_call_id === TRANSCRIPT_TOOL_NAME);
    if (entry === undefined) throw new Error('no transcript entry');
    entry.result = [42];
    expect(() => itemsOfTurn(turn)).toThrow(/not a list of agent items/);
  });
});
