import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateSessionBody, LogTurnBody, type SessionView, type TurnView } from '@threadline/contracts';
import { parseDataset } from './dataset';
import { ApiClient } from './http';
import { importPlans } from './importer';
import { planDialogs, type DialogPlan } from './mapping';
import { readBack, spread } from './readback';

// Unit spec of the importer and the read-back against an in-memory stand-in for the API's
// routes (the e2e against the real stack calls runDemo). The stand-in parses bodies with the API's
// own zod schemas, numbers turns, and honours Idempotency-Key, so that faults can be injected:
// an answer lost after the write, a turn silently not stored, a rejected body.

const FIXTURE = join(__dirname, 'fixtures/dialogs.json');
const NOW = '2025-01-01T00:00:00.000Z';

interface Faults {
  /** Store the n-th POST .../turns but answer 503 (the client must retry and not log it twice). */
  loseAnswerOfTurn?: number;
  /** Answer 201 to the n-th POST .../turns without storing it. */
  dropTurn?: number;
  /** Answer 400 to POST /sessions for this title. */
  rejectTitle?: string;
}

function fakeApi(faults: Faults = {}) {
  const sessions = new Map<string, SessionView>();
  const turns = new Map<string, TurnView[]>();
  const answered = new Map<string, { status: number; body: unknown }>();
  let turnPosts = 0;
  const json = (status: number, body: unknown): Response =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json' },
    });

  const handle = (method: string, url: URL, body: unknown): { status: number; body: unknown } => {
    const path = url.pathname;
    let m: RegExpExecArray | null;
    if (method === 'POST' && path === '/sessions') {
      const input = CreateSessionBody.parse(body);
      if (input.title === faults.rejectTitle)
        return { status: 400, body: { code: 'REQUEST.INVALID', detail: 'bad title' } };
      const id = `s${sessions.size + 1}`;
      const view: SessionView = {
        session_id: id,
        thread_id: id,
        user_id: input.user_id ?? null,
        title: input.title ?? '',
        status: 'active',
        metadata: input.metadata ?? {},
        created_from: input.created_from ?? null,
        created_at: NOW,
        updated_at: NOW,
        last_activity_at: NOW,
        ended_at: null,
        version: 1,
        turn_count: 0,
        context: {
          last_query: null,
          last_response: null,
          last_agent_used: null,
          last_execution_time_ms: null,
          error_count: 0,
          last_error: null,
        },
      };
      sessions.set(id, view);
      turns.set(id, []);
      return { status: 201, body: view };
    }
    if ((m = /^\/sessions\/([^/]+)\/turns$/.exec(path)) && method === 'POST') {
      const id = m[1] ?? '';
      const input = LogTurnBody.parse(body);
      const list = turns.get(id);
      const session = sessions.get(id);
      if (!list || !session) return { status: 404, body: { code: 'SESSION.NOT_FOUND' } };
      turnPosts += 1;
      if (turnPosts === faults.dropTurn) return { status: 201, body: {} };
      const tokens = (s: string): number => s.split(/\s+/).filter(Boolean).length;
      const responses = input.agent_responses.map((r) => {
        const usage = {
          input_tokens: tokens(input.user_input),
          output_tokens: tokens(r.response),
          cached_tokens: 0,
          reasoning_tokens: 0,
        };
        return {
          agent_name: r.agent_name,
          response: r.response,
          turn_order: r.turn_order ?? 0,
          model: r.model ?? null,
          started_at: null,
          execution_time_ms: null,
          usage: { ...usage, total_tokens: usage.input_tokens + usage.output_tokens },
          usage_source: 'estimated' as const,
          cost_usd: (usage.input_tokens + usage.output_tokens) * 1e-6,
        };
      });
      const sum = (k: 'input_tokens' | 'output_tokens' | 'total_tokens'): number =>
        responses.reduce((n, r) => n + r.usage[k], 0);
      const turn: TurnView = {
        turn_id: `${id}-t${list.length + 1}`,
        session_id: id,
        user_id: session.user_id,
        conversation_turn: list.length + 1,
        user_input: input.user_input,
        agent_responses: responses,
        tool_calls: input.tool_calls.map((c, i) => ({
          tool_call_id: `c${i}`,
          name: c.name,
          request: c.request ?? null,
          status: c.status,
          result: c.result ?? null,
          error: null,
          updated_at: NOW,
        })),
        usage: {
          input_tokens: sum('input_tokens'),
          output_tokens: sum('output_tokens'),
          cached_tokens: 0,
          reasoning_tokens: 0,
          total_tokens: sum('total_tokens'),
        },
        cost_usd: responses.reduce((n, r) => n + r.cost_usd, 0),
        vector_cache_hit: false,
        processing_time_ms: null,
        status: 'completed',
        error: null,
        started_at: NOW,
        completed_at: NOW,
        updated_at: NOW,
      };
      list.push(turn);
      sessions.set(id, { ...session, turn_count: list.length });
      if (turnPosts === faults.loseAnswerOfTurn)
        return { status: 503, body: { code: 'SERVICE.UNAVAILABLE' } };
      return { status: 201, body: { turn, position: turnPosts } };
    }
    if ((m = /^\/sessions\/([^/]+)\/turns$/.exec(path)) && method === 'GET') {
      const list = turns.get(m[1] ?? '') ?? [];
      const last = Number(url.searchParams.get('last') ?? '200');
      return { status: 200, body: { turns: list.slice(-last), next_cursor: null } };
    }
    if ((m = /^\/users\/([^/]+)\/sessions$/.exec(path)) && method === 'GET') {
      const run = url.searchParams.get('metadata.demo_run');
      const mine = [...sessions.values()].filter(
        (s) => s.user_id === m?.[1] && s.metadata['demo_run'] === run,
      );
      return { status: 200, body: { sessions: mine.slice(0, 1), next_cursor: null, total: mine.length } };
    }
    if ((m = /^\/sessions\/([^/]+)$/.exec(path)) && method === 'GET') {
      const session = sessions.get(m[1] ?? '');
      return session ? { status: 200, body: session } : { status: 404, body: { code: 'SESSION.NOT_FOUND' } };
    }
    return { status: 404, body: { code: 'ROUTE.NOT_FOUND' } };
  };

  const fetchFn: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const method = init?.method ?? 'GET';
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const key = headers['idempotency-key'];
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    const previous = key === undefined ? undefined : answered.get(key);
    if (previous && previous.status < 300) return Promise.resolve(json(previous.status, previous.body));
    const answer = handle(method, url, body);
    // A lost answer: the write happened, so the key remembers the success the client never saw.
    if (key !== undefined)
      answered.set(key, answer.status === 503 ? { status: 201, body: answer.body } : answer);
    return Promise.resolve(json(answer.status, answer.body));
  };
  return { fetch: fetchFn, sessions, turns };
}

function plans(runId: string, users = 2): DialogPlan[] {
  const dialogs = parseDataset(JSON.parse(readFileSync(FIXTURE, 'utf8')), FIXTURE);
  return planDialogs([...dialogs, ...dialogs, ...dialogs], { users, runId }).flatMap((p) =>
    p.ok ? [p.plan] : [],
  );
}

const OPTIONS = { sample: 10, catchUpMs: 0, concurrency: 3 };

describe('importPlans and readBack', () => {
  it('imports every dialog in order, retrying a lost answer without logging the turn twice, and reads it all back', async () => {
    const api = fakeApi({ loseAnswerOfTurn: 2 });
    const client = new ApiClient({ baseUrl: 'http://api.test', fetch: api.fetch, baseBackoffMs: 1 });
    const progress: number[] = [];
    const result = await importPlans(client, plans('run-a'), {
      concurrency: 3,
      runId: 'run-a',
      onProgress: (p) => progress.push(p.done),
    });

    expect(result.errors).toEqual({});
    expect(client.retries).toBe(1);
    expect(result.outcomes.map((o) => [o.turnsSent, o.toolCallsSent, o.error])).toEqual(
      Array.from({ length: 3 }, () => [
        [4, 4, undefined],
        [2, 0, undefined],
      ]).flat(),
    );
    expect(Math.max(...progress)).toBe(6);
    const stored = [...api.turns.values()];
    expect(stored.map((t) => t.length).sort()).toEqual([2, 2, 2, 4, 4, 4]);
    expect(stored.flat().filter((t) => t.user_input === 'oat, extra foam')).toHaveLength(3);

    const back = await readBack(client, result.outcomes, { ...OPTIONS, runId: 'run-a' });
    expect(back.failures).toEqual([]);
    expect(back.mismatches).toEqual([]);
    expect(back.users).toEqual([
      { userId: 'demo-user-1', created: 3, listed: 3 },
      { userId: 'demo-user-2', created: 3, listed: 3 },
    ]);
    expect(back.sessions).toHaveLength(6);
    expect(back.sessions.reduce((n, s) => n + s.readToolCalls, 0)).toBe(12);
    expect(
      back.sessions.every((s) => s.totalTokens > 0 && s.costUsd > 0 && s.sessionTurnCount === s.sentTurns),
    ).toBe(true);
    expect(back.stats).toBeUndefined(); // GET /sessions/stats is 404 here: skipped
  });

  it('reports a turn the API accepted but did not store as a mismatch', async () => {
    const api = fakeApi({ dropTurn: 3 });
    const client = new ApiClient({ baseUrl: 'http://api.test', fetch: api.fetch, baseBackoffMs: 1 });
    const result = await importPlans(client, plans('run-b'), { concurrency: 1, runId: 'run-b' });
    expect(result.errors).toEqual({});
    const back = await readBack(client, result.outcomes, { ...OPTIONS, runId: 'run-b' });
    // The first dialog's third turn was dropped: its session has 3 turns of 4, numbered 1..3, and
    // the turns from the third on no longer line up with what was sent.
    expect(back.mismatches).toEqual(
      expect.arrayContaining([
        'session s1 (dlg-1): 4 turns sent, 3 read',
        'session s1 (dlg-1) turn 3: user_input differs',
        'session s1 (dlg-1): turn_count 3 after waiting, 4 turns sent',
      ]),
    );
  });

  it('counts a rejected dialog under its status, sends none of its turns, and lists only the created sessions', async () => {
    const api = fakeApi({ rejectTitle: 'Agent speaks first' });
    const client = new ApiClient({ baseUrl: 'http://api.test', fetch: api.fetch, baseBackoffMs: 1 });
    const result = await importPlans(client, plans('run-c'), { concurrency: 4, runId: 'run-c' });
    expect(result.errors).toEqual({ '400': 3 });
    expect(
      result.outcomes.filter((o) => o.error).map((o) => [o.plan.conversationId, o.sessionId, o.turnsSent]),
    ).toEqual([
      ['dlg-2', undefined, 0],
      ['dlg-2', undefined, 0],
      ['dlg-2', undefined, 0],
    ]);
    const back = await readBack(client, result.outcomes, { ...OPTIONS, runId: 'run-c' });
    expect(back.mismatches).toEqual([]);
    // dlg-2 is every second dialog, so all of demo-user-2's sessions were rejected.
    expect(back.users).toEqual([{ userId: 'demo-user-1', created: 3, listed: 3 }]);
    expect(back.sessions.map((s) => s.conversationId)).toEqual(['dlg-1', 'dlg-1', 'dlg-1']);
  });
});

describe('spread', () => {
  it('picks n items evenly, first and last included', () => {
    expect(spread([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)).toEqual([1, 5, 9]);
    expect(spread([1, 2], 5)).toEqual([1, 2]);
    expect(spread([1, 2, 3], 0)).toEqual([]);
  });
});
