import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { TurnPage, TurnView, UsageView } from '@threadline/contracts';
import { eventually } from '@threadline/testing';
import { Api, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack } from './stack';
import { startStackWithEnv } from './stack-env';

// POST /query (seed 004) offline: no AGENT_BASE_URL, so the built-in echo agent answers, and the
// whole flow (session, history, logged turn, session context) runs through the five services.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStackWithEnv({ AGENT_BASE_URL: '', AGENT_HISTORY_TURNS: '10' });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** The `/query` answer as a client reads it (seed 004 shape). */
const QueryAnswer = z.object({
  response: z.string(),
  thread_id: z.string(),
  turn_id: z.string(),
  usage: UsageView,
  metadata: z.object({
    thread_id: z.string(),
    user_id: z.string().nullable(),
    query_count: z.number().int(),
    agent_type: z.string(),
    model: z.string().nullable(),
    execution_time_ms: z.number().int().nullable(),
    created_session: z.boolean(),
    context_turns: z.number().int().nullable(),
    usage_source: z.string(),
  }),
});
type QueryAnswer = z.infer<typeof QueryAnswer>;

function answerOf(reply: Reply): QueryAnswer {
  if (reply.status !== 200)
    throw new Error(`expected 200 from /query, got HTTP ${reply.status} ${reply.text}`);
  return QueryAnswer.parse(reply.json);
}

async function eventCount(): Promise<number> {
  const [row] = await stack.database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  return row?.n ?? -1;
}

describe('POST /query with the offline echo agent', () => {
  it('creates a session without thread_id, answers, and logs the turn with estimated usage', async () => {
    const user = uid('john');
    const reply = await api.post('/query', { query: 'Hello, how are you?', user_id: user });
    const answer = answerOf(reply);
    expect(answer.response).toBe('Echo: Hello, how are you?');
    expect(answer.thread_id).toBe(answer.metadata.thread_id);
    expect(answer.metadata).toMatchObject({
      user_id: user,
      query_count: 1,
      agent_type: 'agent',
      model: 'echo',
      created_session: true,
      context_turns: 0,
      usage_source: 'estimated',
    });
    expect(answer.metadata.execution_time_ms).toBeGreaterThanOrEqual(0);
    expect(answer.usage.input_tokens).toBeGreaterThan(0);
    expect(answer.usage.output_tokens).toBeGreaterThan(0);
    expect(Number(reply.headers.get('x-threadline-position'))).toBeGreaterThan(0);

    const session = sessionOf(await api.get(`/sessions/${answer.thread_id}`), 200);
    expect(session).toMatchObject({ user_id: user, created_from: 'query', status: 'active' });
    const turn = TurnView.parse((await api.get(`/turns/${answer.turn_id}`)).json);
    expect(turn).toMatchObject({
      session_id: answer.thread_id,
      user_id: user,
      conversation_turn: 1,
      user_input: 'Hello, how are you?',
      status: 'completed',
    });
    expect(turn.agent_responses).toEqual([
      expect.objectContaining({
        agent_name: 'agent',
        response: 'Echo: Hello, how are you?',
        model: 'echo',
        usage_source: 'estimated',
      }),
    ]);
    expect(turn.processing_time_ms).toBeGreaterThanOrEqual(turn.agent_responses[0]?.execution_time_ms ?? 0);
    expect(turn.usage).toEqual(answer.usage);
  });

  it('continues a session: query_count increments, the history is sent, the session context follows', async () => {
    const user = uid('jane');
    const first = answerOf(await api.post('/query', { query: 'I am a Python programmer', user_id: user }));
    const second = answerOf(
      await api.post('/query', {
        query: 'What tools do you recommend for work?',
        thread_id: first.thread_id,
        user_id: user,
        agent_type: 'advanced',
        parameters: { temperature: 0.1 },
      }),
    );
    expect(second.thread_id).toBe(first.thread_id);
    expect(second.response).toBe('Echo: What tools do you recommend for work?');
    expect(second.metadata).toMatchObject({
      query_count: 2,
      created_session: false,
      context_turns: 1,
      agent_type: 'advanced',
    });
    const third = answerOf(await api.post('/query', { query: 'Thanks', thread_id: first.thread_id }));
    expect(third.metadata).toMatchObject({ query_count: 3, context_turns: 2, user_id: user });

    const turns = TurnPage.parse((await api.get(`/sessions/${first.thread_id}/turns`)).json).turns;
    expect(turns.map((t) => [t.conversation_turn, t.user_input, t.agent_responses[0]?.agent_name])).toEqual([
      [1, 'I am a Python programmer', 'agent'],
      [2, 'What tools do you recommend for work?', 'advanced'],
      [3, 'Thanks', 'agent'],
    ]);
    const session = await eventually(
      async () => {
        const s = sessionOf(await api.get(`/sessions/${first.thread_id}`), 200);
        return s.turn_count === 3 ? s : undefined;
      },
      10_000,
      'turn_count 3',
    );
    expect(session.context).toMatchObject({
      last_query: 'Thanks',
      last_response: 'Echo: Thanks',
      last_agent_used: 'agent',
      error_count: 0,
    });
  });

  it('creates a session with an unknown thread_id as its id (seed 004)', async () => {
    const threadId = uid('session_123');
    const user = uid('user_456');
    const answer = answerOf(
      await api.post('/query', { query: 'Your question', thread_id: threadId, user_id: user }),
    );
    expect(answer.thread_id).toBe(threadId);
    expect(answer.metadata).toMatchObject({ created_session: true, query_count: 1 });
    expect(sessionOf(await api.get(`/sessions/${threadId}`), 200)).toMatchObject({
      session_id: threadId,
      user_id: user,
      created_from: 'query',
    });
  });

  it("is 404 for another user's session and 409 for an ended one, appending nothing", async () => {
    const owner = uid('owner');
    const mine = answerOf(await api.post('/query', { query: 'private', user_id: owner }));
    const before = await eventCount();
    const stranger = problemOf(
      await api.post('/query', { query: 'let me in', thread_id: mine.thread_id, user_id: uid('mallory') }),
      404,
    );
    expect(stranger.code).toBe('SESSION.NOT_FOUND');
    expect(await eventCount()).toBe(before);

    sessionOf(await api.post(`/sessions/${mine.thread_id}/end`), 200);
    const ended = await eventCount();
    const late = problemOf(
      await api.post('/query', { query: 'still there?', thread_id: mine.thread_id }),
      409,
    );
    expect(late.code).toBe('SESSION.ALREADY_ENDED');
    expect(await eventCount()).toBe(ended);
  });

  it('answers a retry with the same Idempotency-Key with the first answer, logging one turn', async () => {
    const user = uid('retry');
    const headers = { 'idempotency-key': uid('key') };
    const first = answerOf(await api.post('/query', { query: 'once', user_id: user }, { headers }));
    const again = answerOf(await api.post('/query', { query: 'once', user_id: user }, { headers }));
    expect(again.turn_id).toBe(first.turn_id);
    expect(again.thread_id).toBe(first.thread_id);
    expect(again.response).toBe(first.response);
    expect(again.metadata.query_count).toBe(1);
    const turns = TurnPage.parse((await api.get(`/sessions/${first.thread_id}/turns`)).json).turns;
    expect(turns).toHaveLength(1);
    const misuse = problemOf(
      await api.post('/query', { query: 'different', user_id: user }, { headers }),
      400,
    );
    expect(misuse.code).toBe('REQUEST.INVALID');
  });

  it('answers 400 for bad input and creates nothing', async () => {
    const before = await eventCount();
    for (const body of [
      {},
      { query: '' },
      { query: 'x', thread_id: 'bad id' },
      { query: 'x', parameters: { temperature: 9 } },
      { query: 'x', colour: 'red' },
    ]) {
      expect(problemOf(await api.post('/query', body), 400).code).toBe('REQUEST.INVALID');
    }
    expect(problemOf(await api.request('POST', '/query', { raw: '{"query": ' }), 400).code).toBe(
      'REQUEST.INVALID',
    );
    expect(await eventCount()).toBe(before);
  });
});
