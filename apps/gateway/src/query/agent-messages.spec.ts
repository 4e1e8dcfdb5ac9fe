import { ConfigError } from '@threadline/platform';
import { EMPTY_SESSION_CONTEXT, type SessionView, type TurnView } from '@threadline/contracts';
import { loadGatewayConfig } from '../config';
import { createAgentBackend } from './agent-backend.factory';
import { buildChatMessages, contextTurnsOf, toUsageInput } from './agent-messages';
import { EchoAgentBackend } from './echo.backend';
import { OpenAiCompatibleBackend } from './openai-compatible.backend';
import { QueryBody, QueryReply } from './query.schemas';
import { queryReplyOf, turnIdForKey } from './query.service';

const T0 = '2025-01-01T00:00:00.000Z';
const ZERO = { input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0 };

type Response = TurnView['agent_responses'][number];

function response(text: string, turnOrder: number, extra: Partial<Response> = {}): Response {
  return {
    agent_name: 'agent',
    response: text,
    turn_order: turnOrder,
    model: 'm',
    started_at: T0,
    execution_time_ms: 5,
    usage: ZERO,
    usage_source: 'estimated',
    cost_usd: 0,
    ...extra,
  };
}

function turn(n: number, userInput: string, responses: Response[], extra: Partial<TurnView> = {}): TurnView {
  return {
    turn_id: `t${n}`,
    session_id: 's1',
    user_id: 'u1',
    conversation_turn: n,
    user_input: userInput,
    agent_responses: responses,
    tool_calls: [],
    usage: ZERO,
    cost_usd: 0,
    vector_cache_hit: false,
    processing_time_ms: 7,
    status: 'completed',
    error: null,
    started_at: T0,
    completed_at: T0,
    updated_at: T0,
    ...extra,
  };
}

describe('buildChatMessages', () => {
  it('is the query alone without history or system prompt', () => {
    expect(buildChatMessages(undefined, [], 'hi')).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('puts the system prompt first, then each past turn as user/assistant, oldest first, then the query', () => {
    const history = [turn(2, 'second?', [response('two', 0)]), turn(1, 'first?', [response('one', 0)])];
    expect(buildChatMessages('Be brief.', history, 'third?')).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first?' },
      { role: 'assistant', content: 'one' },
      { role: 'user', content: 'second?' },
      { role: 'assistant', content: 'two' },
      { role: 'user', content: 'third?' },
    ]);
    expect(contextTurnsOf(history)).toBe(2);
  });

  it("joins a turn's agent responses in turn_order into one assistant message", () => {
    const history = [turn(1, 'q', [response('second agent', 1), response('first agent', 0)])];
    expect(buildChatMessages(undefined, history, 'next')).toEqual([
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'first agent\n\nsecond agent' },
      { role: 'user', content: 'next' },
    ]);
  });

  it('leaves out turns nobody answered (failed or in progress) and a blank system prompt', () => {
    const history = [
      turn(1, 'lost', [], { status: 'failed', error: 'boom' }),
      turn(2, 'kept', [response('yes', 0)]),
      turn(3, 'open', [], { status: 'in_progress' }),
    ];
    expect(buildChatMessages('   ', history, 'now')).toEqual([
      { role: 'user', content: 'kept' },
      { role: 'assistant', content: 'yes' },
      { role: 'user', content: 'now' },
    ]);
    expect(contextTurnsOf(history)).toBe(1);
  });
});

describe('toUsageInput', () => {
  it('maps every OpenAI usage field to the turn usage', () => {
    expect(
      toUsageInput({
        prompt_tokens: 120,
        completion_tokens: 30,
        total_tokens: 150,
        prompt_tokens_details: { cached_tokens: 100 },
        completion_tokens_details: { reasoning_tokens: 12 },
      }),
    ).toEqual({
      input_tokens: 120,
      output_tokens: 30,
      cached_tokens: 100,
      reasoning_tokens: 12,
      total_tokens: 150,
    });
  });

  it('keeps only what was reported (null counts as absent)', () => {
    expect(
      toUsageInput({
        prompt_tokens: 9,
        completion_tokens: null,
        prompt_tokens_details: null,
        completion_tokens_details: { reasoning_tokens: null },
      }),
    ).toEqual({ input_tokens: 9 });
  });

  it('is undefined when nothing was reported, so the service estimates', () => {
    expect(toUsageInput(undefined)).toBeUndefined();
    expect(toUsageInput(null)).toBeUndefined();
    expect(toUsageInput({})).toBeUndefined();
    expect(toUsageInput({ prompt_tokens_details: {} })).toBeUndefined();
  });
});

describe('queryReplyOf', () => {
  const session: SessionView = {
    session_id: 's1',
    thread_id: 's1',
    user_id: 'owner',
    title: '',
    status: 'active',
    metadata: {},
    created_from: 'query',
    created_at: T0,
    updated_at: T0,
    last_activity_at: T0,
    ended_at: null,
    version: 1,
    turn_count: 0,
    context: { ...EMPTY_SESSION_CONTEXT },
  };

  it('answers in the seed 004 shape from the logged turn', () => {
    const usage = {
      input_tokens: 3,
      output_tokens: 4,
      cached_tokens: 0,
      reasoning_tokens: 0,
      total_tokens: 7,
    };
    const logged = turn(
      4,
      'q',
      [
        response('b', 1, { agent_name: 'critic' }),
        response('a', 0, { agent_name: 'writer', usage_source: 'reported' }),
      ],
      { usage, cost_usd: 0.25, processing_time_ms: 40 },
    );
    const reply = queryReplyOf(logged, session, false, 3);
    expect(QueryReply.parse(reply)).toEqual(reply);
    expect(reply).toEqual({
      response: 'a\n\nb',
      thread_id: 's1',
      turn_id: 't4',
      usage,
      metadata: {
        thread_id: 's1',
        user_id: 'u1',
        query_count: 4,
        agent_type: 'writer',
        model: 'm',
        execution_time_ms: 5,
        processing_time_ms: 40,
        created_session: false,
        context_turns: 3,
        usage_source: 'reported',
        cost_usd: 0.25,
      },
    });
  });

  it("falls back to the session's user when the turn has none", () => {
    const reply = queryReplyOf(turn(1, 'q', [response('a', 0)], { user_id: null }), session, true, null);
    expect(reply.metadata).toMatchObject({ user_id: 'owner', created_session: true, context_turns: null });
  });
});

describe('QueryBody', () => {
  it('takes the seed 004 body', () => {
    expect(
      QueryBody.parse({
        query: 'Your question',
        agent_type: 'advanced',
        thread_id: 'session_123',
        user_id: 'user_456',
        parameters: {},
      }),
    ).toEqual({
      query: 'Your question',
      agent_type: 'advanced',
      thread_id: 'session_123',
      user_id: 'user_456',
      parameters: {},
    });
  });

  it('rejects an empty query, unknown fields and unknown or out-of-range parameters', () => {
    const issues = QueryBody.safeParse({
      query: '',
      thread: 'x',
      parameters: { temperature: 3, colour: 'red' },
    }).error?.issues;
    expect(issues?.map((i) => [i.path.join('.'), i.code])).toEqual(
      expect.arrayContaining([
        ['query', 'too_small'],
        ['', 'unrecognized_keys'],
        ['parameters.temperature', 'too_big'],
        ['parameters', 'unrecognized_keys'],
      ]),
    );
  });
});

describe('agent configuration', () => {
  it('defaults to the echo agent, gpt-4o-mini, 30 s and 10 turns of history', () => {
    const config = loadGatewayConfig({});
    expect(config).toMatchObject({
      AGENT_MODEL: 'gpt-4o-mini',
      AGENT_TIMEOUT_MS: 30_000,
      AGENT_HISTORY_TURNS: 10,
    });
    expect(config.AGENT_BASE_URL).toBeUndefined();
    expect(createAgentBackend(config)).toBeInstanceOf(EchoAgentBackend);
    expect(createAgentBackend(loadGatewayConfig({ AGENT_BASE_URL: '' }))).toBeInstanceOf(EchoAgentBackend);
  });

  it('uses the OpenAI-compatible backend when AGENT_BASE_URL is set (trailing slash dropped)', () => {
    const config = loadGatewayConfig({
      AGENT_BASE_URL: 'http://127.0.0.1:8000/v1/',
      AGENT_TIMEOUT_MS: '500',
    });
    expect(config.AGENT_BASE_URL).toBe('http://127.0.0.1:8000/v1');
    expect(createAgentBackend(config)).toBeInstanceOf(OpenAiCompatibleBackend);
  });

  it('names every bad AGENT_ variable', () => {
    let error: unknown;
    try {
      loadGatewayConfig({ AGENT_BASE_URL: 'ftp://x', AGENT_TIMEOUT_MS: '5', AGENT_HISTORY_TURNS: '-1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = (error as ConfigError).problems.map((p) => p.split(':')[0]).sort();
    expect(names).toEqual(['AGENT_BASE_URL', 'AGENT_HISTORY_TURNS', 'AGENT_TIMEOUT_MS']);
  });
});

describe('EchoAgentBackend and idempotent turn ids', () => {
  it('echoes the last user message, with model echo and no usage', async () => {
    const reply = await new EchoAgentBackend().complete({
      messages: [
        { role: 'user', content: 'old' },
        { role: 'assistant', content: 'Echo: old' },
        { role: 'user', content: 'new' },
      ],
    });
    expect(reply).toEqual({ content: 'Echo: new', model: 'echo' });
  });

  it('derives one valid turn id per tenant and key', () => {
    const id = turnIdForKey('t1', 'k');
    expect(id).toMatch(/^query-[0-9a-f]{40}$/);
    expect(turnIdForKey('t1', 'k')).toBe(id);
    expect(turnIdForKey('t2', 'k')).not.toBe(id);
  });
});
