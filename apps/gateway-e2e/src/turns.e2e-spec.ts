import { randomUUID } from 'node:crypto';
import { TurnPage, TurnView } from '@threadline/contracts';
import { eventually } from '@threadline/testing';
import { Api, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack } from './stack';
import { startStackWithEnv } from './stack-env';

// The turn routes of issue 3, over HTTP against the five built services running as processes.
// Each test uses users and sessions of its own.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStackWithEnv({ AGENT_BASE_URL: '' });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

const describeReply = (reply: Reply) => `HTTP ${reply.status} ${reply.text.slice(0, 500)}`;

function turnOf(reply: Reply, status: number): TurnView {
  if (reply.status !== status)
    throw new Error(`expected HTTP ${status} with a turn, got ${describeReply(reply)}`);
  return TurnView.parse(reply.json);
}

function turnsOf(reply: Reply): TurnPage {
  if (reply.status !== 200) throw new Error(`expected HTTP 200 with turns, got ${describeReply(reply)}`);
  return TurnPage.parse(reply.json);
}

async function eventCount(): Promise<number> {
  const [row] = await stack.database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  return row?.n ?? -1;
}

async function newSession(user: string): Promise<string> {
  return sessionOf(await api.post('/sessions', { user_id: user }), 201).session_id;
}

const position = (reply: Reply) => Number(reply.headers.get('x-threadline-position'));

describe('POST /sessions/{session_id}/turns', () => {
  it('logs a whole turn: 201, the numbered turn, Location and the write position', async () => {
    const user = uid('ada');
    const sessionId = await newSession(user);
    const reply = await api.post(`/sessions/${sessionId}/turns`, {
      user_input: 'What is the capital of France?',
      agent_responses: [
        {
          agent_name: 'geo',
          response: 'Paris.',
          model: 'gpt-4o-mini',
          execution_time_ms: 120,
          usage: { input_tokens: 12, output_tokens: 2, total_tokens: 14 },
        },
      ],
      tool_calls: [{ name: 'lookup', request: { q: 'France' }, result: { capital: 'Paris' } }],
      processing_time_ms: 150,
    });
    const turn = turnOf(reply, 201);
    expect(turn).toMatchObject({
      session_id: sessionId,
      user_id: user,
      conversation_turn: 1,
      user_input: 'What is the capital of France?',
      status: 'completed',
      processing_time_ms: 150,
    });
    expect(turn.agent_responses).toEqual([
      expect.objectContaining({
        agent_name: 'geo',
        response: 'Paris.',
        model: 'gpt-4o-mini',
        usage_source: 'reported',
        usage: expect.objectContaining({ input_tokens: 12, output_tokens: 2, total_tokens: 14 }) as unknown,
      }),
    ]);
    expect(turn.tool_calls).toEqual([
      expect.objectContaining({ name: 'lookup', status: 'completed', result: { capital: 'Paris' } }),
    ]);
    expect(reply.headers.get('location')).toBe(`/turns/${turn.turn_id}`);
    expect(position(reply)).toBeGreaterThan(0);

    const second = turnOf(
      await api.post(`/sessions/${sessionId}/turns`, { user_input: 'And of Spain?' }),
      201,
    );
    expect(second.conversation_turn).toBe(2);
    expect(turnOf(await api.get(`/turns/${turn.turn_id}`), 200)).toEqual(turn);
  });

  it('estimates usage a client did not report', async () => {
    const sessionId = await newSession(uid('est'));
    const turn = turnOf(
      await api.post(`/sessions/${sessionId}/turns`, {
        user_input: 'Tell me a long story about dragons and castles.',
        agent_responses: [
          { agent_name: 'bard', response: 'Once upon a time there was a dragon.', model: 'gpt-4o' },
        ],
      }),
      201,
    );
    const [response] = turn.agent_responses;
    expect(response?.usage_source).toBe('estimated');
    expect(response?.usage.input_tokens).toBeGreaterThan(0);
    expect(response?.usage.output_tokens).toBeGreaterThan(0);
  });

  it('logs a turn incrementally: start, responses and tool calls, complete; then it is closed', async () => {
    const sessionId = await newSession(uid('inc'));
    const start = await api.post(`/sessions/${sessionId}/turns`, {
      user_input: 'Book a table',
      status: 'in_progress',
    });
    const open = turnOf(start, 201);
    expect(open).toMatchObject({ status: 'in_progress', agent_responses: [], completed_at: null });
    const id = open.turn_id;

    const first = await api.post(`/turns/${id}/responses`, {
      agent_response: { agent_name: 'planner', response: 'Searching restaurants.' },
    });
    expect(turnOf(first, 200).agent_responses).toHaveLength(1);
    expect(position(first)).toBeGreaterThan(position(start));
    const tool = turnOf(
      await api.post(`/turns/${id}/responses`, {
        tool_call: {
          tool_call_id: 'call-1',
          name: 'find_restaurant',
          request: { city: 'Rome' },
          status: 'running',
        },
      }),
      200,
    );
    expect(tool.tool_calls).toEqual([expect.objectContaining({ tool_call_id: 'call-1', status: 'running' })]);
    const done = turnOf(
      await api.post(`/turns/${id}/responses`, {
        tool_call: { tool_call_id: 'call-1', name: 'find_restaurant', status: 'completed', result: ['Roma'] },
      }),
      200,
    );
    expect(done.tool_calls).toEqual([
      expect.objectContaining({ tool_call_id: 'call-1', status: 'completed', result: ['Roma'] }),
    ]);
    const second = turnOf(
      await api.post(`/turns/${id}/responses`, {
        agent_response: { agent_name: 'booker', response: 'Booked at Roma.' },
      }),
      200,
    );
    // Numbered by the service in arrival order.
    expect(second.agent_responses.map((r) => r.agent_name)).toEqual(['planner', 'booker']);
    const [planner, booker] = second.agent_responses;
    expect(booker?.turn_order).toBeGreaterThan(planner?.turn_order ?? Infinity);

    const completed = turnOf(await api.post(`/turns/${id}/complete`, { processing_time_ms: 900 }), 200);
    expect(completed).toMatchObject({ status: 'completed', processing_time_ms: 900 });
    expect(completed.completed_at).not.toBeNull();

    const before = await eventCount();
    expect(problemOf(await api.post(`/turns/${id}/complete`, {}), 409).code).toBe('TURN.NOT_OPEN');
    expect(
      problemOf(
        await api.post(`/turns/${id}/responses`, { agent_response: { agent_name: 'x', response: 'y' } }),
        409,
      ).code,
    ).toBe('TURN.NOT_OPEN');
    expect(problemOf(await api.post(`/turns/${id}/fail`, { error: 'late' }), 409).code).toBe('TURN.NOT_OPEN');
    expect(await eventCount()).toBe(before);
  });

  it('fails an open turn, keeping what it holds', async () => {
    const sessionId = await newSession(uid('fail'));
    const open = turnOf(
      await api.post(`/sessions/${sessionId}/turns`, { user_input: 'Q', status: 'in_progress' }),
      201,
    );
    await api.post(`/turns/${open.turn_id}/responses`, {
      agent_response: { agent_name: 'a', response: 'partial' },
    });
    const failed = turnOf(await api.post(`/turns/${open.turn_id}/fail`, { error: 'tool timed out' }), 200);
    expect(failed).toMatchObject({ status: 'failed', error: 'tool timed out', user_input: 'Q' });
    expect(failed.agent_responses.map((r) => r.response)).toEqual(['partial']);
  });

  it('rejects a turn for an unknown session (404), an ended one (409) and a taken turn_id (409)', async () => {
    const before = await eventCount();
    expect(problemOf(await api.post(`/sessions/${uid('nope')}/turns`, { user_input: 'x' }), 404).code).toBe(
      'SESSION.NOT_FOUND',
    );
    expect(await eventCount()).toBe(before);

    const sessionId = await newSession(uid('end'));
    const turnId = uid('turn');
    turnOf(await api.post(`/sessions/${sessionId}/turns`, { turn_id: turnId, user_input: 'one' }), 201);
    expect(
      problemOf(await api.post(`/sessions/${sessionId}/turns`, { turn_id: turnId, user_input: 'two' }), 409)
        .code,
    ).toBe('TURN.ALREADY_EXISTS');
    sessionOf(await api.post(`/sessions/${sessionId}/end`), 200);
    expect(problemOf(await api.post(`/sessions/${sessionId}/turns`, { user_input: 'late' }), 409).code).toBe(
      'SESSION.ALREADY_ENDED',
    );
  });

  it('answers 400 for bad input on every write, appending nothing', async () => {
    const sessionId = await newSession(uid('bad'));
    const open = turnOf(
      await api.post(`/sessions/${sessionId}/turns`, { user_input: 'Q', status: 'in_progress' }),
      201,
    );
    const before = await eventCount();
    const bad: [string, string, unknown][] = [
      ['POST', `/sessions/${sessionId}/turns`, { user_input: 'x', status: 'done' }],
      ['POST', `/sessions/${sessionId}/turns`, { agent_responses: [] }],
      ['POST', `/sessions/${sessionId}/turns`, { user_input: 'x', agent_responses: [{ agent_name: 'a' }] }],
      ['POST', `/turns/${open.turn_id}/responses`, {}],
      ['POST', `/turns/${open.turn_id}/responses`, { tool_call: { name: 't', status: 'weird' } }],
      ['POST', `/turns/${open.turn_id}/complete`, { vector_cache_hit: 'yes' }],
      ['POST', `/turns/${open.turn_id}/fail`, { error: '' }],
      ['POST', '/turns/bad%20id/complete', {}],
    ];
    for (const [method, path, json] of bad) {
      const problem = problemOf(await api.request(method, path, { json }), 400);
      expect(problem.code).toBe('REQUEST.INVALID');
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    expect(
      problemOf(await api.request('POST', `/sessions/${sessionId}/turns`, { raw: '{"user_input":' }), 400)
        .code,
    ).toBe('REQUEST.INVALID');
    expect(await eventCount()).toBe(before);
    expect(turnOf(await api.get(`/turns/${open.turn_id}`), 200)).toMatchObject({ status: 'in_progress' });
  });

  it('answers 404 for unknown turns on every route', async () => {
    const id = uid('missing');
    const before = await eventCount();
    expect(problemOf(await api.get(`/turns/${id}`), 404).code).toBe('TURN.NOT_FOUND');
    expect(problemOf(await api.delete(`/turns/${id}`), 404).code).toBe('TURN.NOT_FOUND');
    expect(
      problemOf(
        await api.post(`/turns/${id}/responses`, { agent_response: { agent_name: 'a', response: 'r' } }),
        404,
      ).code,
    ).toBe('TURN.NOT_FOUND');
    expect(problemOf(await api.post(`/turns/${id}/complete`, {}), 404).code).toBe('TURN.NOT_FOUND');
    expect(problemOf(await api.post(`/turns/${id}/fail`, { error: 'e' }), 404).code).toBe('TURN.NOT_FOUND');
    expect(problemOf(await api.get(`/sessions/${uid('nope')}/turns`), 404).code).toBe('SESSION.NOT_FOUND');
    expect(await eventCount()).toBe(before);
  });
});

describe('reading and deleting turns', () => {
  it('lists a session’s turns: asc and desc, cursor paging, last=N', async () => {
    const sessionId = await newSession(uid('list'));
    for (const n of [1, 2, 3, 4, 5]) {
      turnOf(await api.post(`/sessions/${sessionId}/turns`, { user_input: `q${n}` }), 201);
    }
    const inputs = (page: TurnPage) => page.turns.map((t) => t.user_input);
    const all = turnsOf(await api.get(`/sessions/${sessionId}/turns`));
    expect(inputs(all)).toEqual(['q1', 'q2', 'q3', 'q4', 'q5']);
    expect(all.next_cursor).toBeNull();
    expect(inputs(turnsOf(await api.get(`/sessions/${sessionId}/turns?order=desc`)))).toEqual([
      'q5',
      'q4',
      'q3',
      'q2',
      'q1',
    ]);
    const page1 = turnsOf(await api.get(`/sessions/${sessionId}/turns?limit=2`));
    expect(inputs(page1)).toEqual(['q1', 'q2']);
    expect(page1.next_cursor).not.toBeNull();
    const page2 = turnsOf(
      await api.get(
        `/sessions/${sessionId}/turns?limit=2&cursor=${encodeURIComponent(page1.next_cursor ?? '')}`,
      ),
    );
    expect(inputs(page2)).toEqual(['q3', 'q4']);
    expect(inputs(turnsOf(await api.get(`/sessions/${sessionId}/turns?last=2`)))).toEqual(['q4', 'q5']);
  });

  it('deletes a turn: 204 with the position, then 404 and gone from every list', async () => {
    const user = uid('del');
    const sessionId = await newSession(user);
    const keep = turnOf(await api.post(`/sessions/${sessionId}/turns`, { user_input: 'keep me' }), 201);
    const drop = turnOf(await api.post(`/sessions/${sessionId}/turns`, { user_input: 'drop me' }), 201);
    const deleted = await api.delete(`/turns/${drop.turn_id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect(position(deleted)).toBeGreaterThan(0);
    expect(problemOf(await api.get(`/turns/${drop.turn_id}`), 404).code).toBe('TURN.NOT_FOUND');
    expect(problemOf(await api.delete(`/turns/${drop.turn_id}`), 404).code).toBe('TURN.NOT_FOUND');
    expect(turnsOf(await api.get(`/sessions/${sessionId}/turns`)).turns.map((t) => t.turn_id)).toEqual([
      keep.turn_id,
    ]);
    expect(turnsOf(await api.get(`/users/${user}/turns`)).turns.map((t) => t.turn_id)).toEqual([
      keep.turn_id,
    ]);
    // The session's turn count follows (session-service, from the events).
    await eventually(
      async () => {
        const session = sessionOf(await api.get(`/sessions/${sessionId}`), 200);
        return session.turn_count === 1 ? session : undefined;
      },
      10_000,
      'turn_count 1 after the delete',
    );
  });

  it('lists a user’s turns across sessions, newest first, with user_input and q filters', async () => {
    const user = uid('cross');
    const s1 = await newSession(user);
    const s2 = await newSession(user);
    turnOf(await api.post(`/sessions/${s1}/turns`, { user_input: 'How do volcanoes erupt?' }), 201);
    turnOf(await api.post(`/sessions/${s2}/turns`, { user_input: 'Best pizza in Naples' }), 201);
    turnOf(await api.post(`/sessions/${s1}/turns`, { user_input: 'Are volcanoes dangerous?' }), 201);
    turnOf(
      await api.post(`/sessions/${await newSession(uid('other'))}/turns`, { user_input: 'volcanoes too' }),
      201,
    );

    const inputs = (page: TurnPage) => page.turns.map((t) => t.user_input);
    expect(inputs(turnsOf(await api.get(`/users/${user}/turns`)))).toEqual([
      'Are volcanoes dangerous?',
      'Best pizza in Naples',
      'How do volcanoes erupt?',
    ]);
    expect(inputs(turnsOf(await api.get(`/users/${user}/turns?limit=1`)))).toEqual([
      'Are volcanoes dangerous?',
    ]);
    expect(
      inputs(
        turnsOf(
          await api.get(`/users/${user}/turns?user_input=${encodeURIComponent('Best pizza in Naples')}`),
        ),
      ),
    ).toEqual(['Best pizza in Naples']);
    expect(inputs(turnsOf(await api.get(`/users/${user}/turns?q=volcano`))).sort()).toEqual([
      'Are volcanoes dangerous?',
      'How do volcanoes erupt?',
    ]);
    expect(turnsOf(await api.get(`/users/${uid('nobody')}/turns`)).turns).toEqual([]);
    expect(problemOf(await api.get(`/users/${user}/turns?limit=500`), 400).code).toBe('REQUEST.INVALID');
  });
});
