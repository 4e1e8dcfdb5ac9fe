import { randomUUID } from 'node:crypto';
import { SessionHistoryPage, SessionStateView } from '@threadline/contracts';
import { Api, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

// The workflow-state routes of issue 4 (seed 003), over HTTP against the five built services
// running as processes. Each test uses sessions of its own.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStack();
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const describeReply = (reply: Reply) => `HTTP ${reply.status} ${reply.text.slice(0, 500)}`;

function stateOf(reply: Reply, status = 200): SessionStateView {
  if (reply.status !== status)
    throw new Error(`expected HTTP ${status} with a state, got ${describeReply(reply)}`);
  return SessionStateView.parse(reply.json);
}

function historyOf(reply: Reply): SessionHistoryPage {
  if (reply.status !== 200) throw new Error(`expected HTTP 200 with history, got ${describeReply(reply)}`);
  return SessionHistoryPage.parse(reply.json);
}

async function eventCount(): Promise<number> {
  const [row] = await stack.database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  return row?.n ?? -1;
}

async function newSession(): Promise<string> {
  return sessionOf(await api.post('/sessions', { user_id: `u-${randomUUID().slice(0, 8)}` }), 201).session_id;
}

const toolPath = (sessionId: string, name: string) =>
  `/sessions/${sessionId}/tool-calls/${encodeURIComponent(name)}`;

describe('GET and PATCH /sessions/{id}/state', () => {
  it('starts empty at version 0, merges patches (nested, null removes) and tags each version', async () => {
    const id = await newSession();
    const empty = await api.get(`/sessions/${id}/state`);
    expect(stateOf(empty)).toMatchObject({
      version: 0,
      constraints: null,
      tool_calls: [],
      is_complete: true,
    });
    expect(empty.headers.get('etag')).toBe('"0"');

    const first = await api.patch(`/sessions/${id}/state`, {
      constraints: { kpi: ['orders'], cfc: ['CFC-1'], time_filter: { start_date: '2025-02-09' } },
      strategy: '## Comprehensive Strategy',
      response_plan: { insights: [{ type: 'trend' }] },
      status: 'processing',
    });
    expect(stateOf(first)).toMatchObject({
      version: 1,
      strategy: '## Comprehensive Strategy',
      status: 'processing',
    });
    expect(first.headers.get('etag')).toBe('"1"');
    expect(Number(first.headers.get('x-threadline-position'))).toBeGreaterThan(0);

    // RFC 7396's own media type is accepted too.
    const second = await api.request('PATCH', `/sessions/${id}/state`, {
      raw: JSON.stringify({
        constraints: { cfc: null, time_filter: { end_date: '2025-03-11' } },
        status: null,
        summary: 'Done',
      }),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    const expected = {
      version: 2,
      constraints: { kpi: ['orders'], time_filter: { start_date: '2025-02-09', end_date: '2025-03-11' } },
      strategy: '## Comprehensive Strategy',
      response_plan: { insights: [{ type: 'trend' }] },
      summary: 'Done',
      status: null,
    };
    expect(stateOf(second)).toMatchObject(expected);
    const current = await api.get(`/sessions/${id}/state`);
    expect(stateOf(current)).toMatchObject(expected);
    expect(current.headers.get('etag')).toBe('"2"');
  });

  it('answers 412 for a stale If-Match and appends nothing; a current one passes', async () => {
    const id = await newSession();
    stateOf(await api.patch(`/sessions/${id}/state`, { summary: 'a' }));
    const before = await eventCount();
    const stale = await api.patch(
      `/sessions/${id}/state`,
      { summary: 'b' },
      { headers: { 'if-match': '"0"' } },
    );
    expect(problemOf(stale, 412).code).toBe('SESSION.VERSION_MISMATCH');
    expect(await eventCount()).toBe(before);
    const ok = await api.patch(`/sessions/${id}/state`, { summary: 'b' }, { headers: { 'if-match': '"1"' } });
    expect(stateOf(ok)).toMatchObject({ version: 2, summary: 'b' });
  });

  it('answers 400 for bad input and appends nothing', async () => {
    const id = await newSession();
    const before = await eventCount();
    const bad: [string, Reply][] = [
      ['unknown field', await api.patch(`/sessions/${id}/state`, { tool_calls: [] })],
      ['summary not text', await api.patch(`/sessions/${id}/state`, { summary: 42 })],
      ['empty patch', await api.patch(`/sessions/${id}/state`, {})],
      [
        'too large',
        await api.patch(`/sessions/${id}/state`, { constraints: { blob: 'x'.repeat(70 * 1024) } }),
      ],
      [
        'bad If-Match',
        await api.patch(`/sessions/${id}/state`, { summary: 'a' }, { headers: { 'if-match': '*' } }),
      ],
      ['malformed JSON', await api.request('PATCH', `/sessions/${id}/state`, { raw: '{"summary":' })],
      ['bad session id', await api.patch(`/sessions/${'x'.repeat(200)}/state`, { summary: 'a' })],
    ];
    for (const [what, reply] of bad) {
      const problem = problemOf(reply, reply.status === 413 ? 413 : 400);
      expect([what, problem.code]).toEqual([
        what,
        reply.status === 413 ? 'REQUEST.TOO_LARGE' : 'REQUEST.INVALID',
      ]);
    }
    expect(problemOf(bad[0]![1], 400).errors?.length).toBeGreaterThan(0);
    expect(await eventCount()).toBe(before);
  });

  it('travels in time with ?version= and ?at=', async () => {
    const id = await newSession();
    const v1 = stateOf(await api.patch(`/sessions/${id}/state`, { summary: 'one' }));
    const v2 = stateOf(await api.patch(`/sessions/${id}/state`, { summary: 'two', status: 'x' }));
    const v1Again = await api.get(`/sessions/${id}/state?version=1`);
    expect(stateOf(v1Again)).toEqual(v1);
    expect(v1Again.headers.get('etag')).toBe('"1"');
    expect(stateOf(await api.get(`/sessions/${id}/state?version=0`))).toMatchObject({
      version: 0,
      summary: null,
    });
    const history = historyOf(await api.get(`/sessions/${id}/history`));
    const times = history.events.filter((e) => e.stream === 'session_state').map((e) => e.time);
    const atSecond = stateOf(await api.get(`/sessions/${id}/state?at=${encodeURIComponent(times[1]!)}`));
    expect(atSecond).toEqual(v2);
    const before = stateOf(await api.get(`/sessions/${id}/state?at=2001-01-01T00:00:00Z`));
    expect(before).toMatchObject({ version: 0, summary: null });
    for (const query of [
      'version=3',
      'version=-1',
      'version=abc',
      'at=yesterday',
      `version=1&at=${times[0]}`,
      'other=1',
    ]) {
      expect([query, problemOf(await api.get(`/sessions/${id}/state?${query}`), 400).code]).toEqual([
        query,
        'REQUEST.INVALID',
      ]);
    }
  });
});

describe('PUT /sessions/{id}/tool-calls/{name}', () => {
  it('plans tool calls, records status, result and error, and computes is_complete', async () => {
    const id = await newSession();
    const name = 'Orders Trend for CFC-1';
    const planned = stateOf(
      await api.request('PUT', toolPath(id, name), { json: { status: 'pending', description: 'orders' } }),
    );
    expect(planned).toMatchObject({ version: 1, is_complete: false });
    expect(planned.tool_calls).toEqual([
      expect.objectContaining({ name, description: 'orders', status: 'pending', result: null }),
    ]);
    stateOf(
      await api.request('PUT', toolPath(id, 'spokes'), { json: { status: 'failed', error: 'timeout' } }),
    );
    const result = {
      sql: 'SELECT week_date, SUM(orders) FROM orders GROUP BY 1',
      data: [{ week_date: '2025-02-09', total_orders: 1200 }],
    };
    const done = await api.request('PUT', toolPath(id, name), { json: { status: 'completed', result } });
    expect(stateOf(done).is_complete).toBe(false);
    expect(done.headers.get('etag')).toBe(`"${stateOf(done).version}"`);
    const all = stateOf(await api.request('PUT', toolPath(id, 'spokes'), { json: { status: 'completed' } }));
    expect(all.is_complete).toBe(true);
    expect(all.tool_calls.map((t) => [t.name, t.status, t.error])).toEqual([
      [name, 'completed', null],
      ['spokes', 'completed', null],
    ]);
    expect(all.tool_calls[0]?.result).toEqual(result);
    expect(stateOf(await api.get(`/sessions/${id}/state`))).toEqual(all);

    const stale = await api.request('PUT', toolPath(id, 'spokes'), {
      json: { status: 'running' },
      headers: { 'if-match': '"1"' },
    });
    expect(problemOf(stale, 412).code).toBe('SESSION.VERSION_MISMATCH');
  });

  it('answers 400 for a bad status, an error without failed, or a bad name; nothing appended', async () => {
    const id = await newSession();
    const before = await eventCount();
    for (const reply of [
      await api.request('PUT', toolPath(id, 'q'), { json: { status: 'done' } }),
      await api.request('PUT', toolPath(id, 'q'), { json: { status: 'completed', error: 'boom' } }),
      await api.request('PUT', toolPath(id, 'q'), { json: { status: 'running', extra: 1 } }),
      await api.request('PUT', toolPath(id, 'q'), { json: {} }),
      await api.request('PUT', toolPath(id, 'x'.repeat(201)), { json: { status: 'running' } }),
      await api.request('PUT', toolPath(id, 'tab\there'), { json: { status: 'running' } }),
    ]) {
      expect(problemOf(reply, 400).code).toBe('REQUEST.INVALID');
    }
    expect(await eventCount()).toBe(before);
  });
});

describe('GET /sessions/{id}/history', () => {
  it('pages the lifecycle and state events in order, oldest first', async () => {
    const id = await newSession();
    stateOf(await api.patch(`/sessions/${id}/state`, { status: 'created' }));
    stateOf(await api.request('PUT', toolPath(id, 'q'), { json: { status: 'running' } }));
    sessionOf(await api.post(`/sessions/${id}/end`), 200);
    stateOf(await api.patch(`/sessions/${id}/state`, { summary: 'after the end' }));

    const seen: SessionHistoryPage['events'] = [];
    let url: string | null = `/sessions/${id}/history?limit=2`;
    let pages = 0;
    while (url !== null) {
      const page = historyOf(await api.get(url));
      pages += 1;
      seen.push(...page.events);
      url =
        page.next_cursor === null
          ? null
          : `/sessions/${id}/history?limit=2&cursor=${encodeURIComponent(page.next_cursor)}`;
    }
    expect(pages).toBe(3);
    expect(seen.map((e) => `${e.stream}:${e.type}@${e.version}`)).toEqual([
      'session:SessionCreated.v1@1',
      'session_state:SessionStateUpdated.v1@1',
      'session_state:ToolCallPlanned.v1@2',
      'session_state:ToolCallStatusChanged.v1@3',
      'session:SessionEnded.v1@2',
      'session_state:SessionStateUpdated.v1@4',
    ]);
    expect(seen[3]?.data).toMatchObject({ name: 'q', status: 'running' });
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.position).toBeGreaterThan(seen[i - 1]!.position);
      expect(Date.parse(seen[i]!.time)).toBeGreaterThanOrEqual(Date.parse(seen[i - 1]!.time));
    }
    for (const query of ['limit=0', 'limit=201', 'cursor=garbage', 'sort=desc']) {
      expect([query, problemOf(await api.get(`/sessions/${id}/history?${query}`), 400).code]).toEqual([
        query,
        'REQUEST.INVALID',
      ]);
    }
  });
});

describe('unknown and deleted sessions', () => {
  it('answer 404 on every state route, and appending nothing', async () => {
    const deleted = await newSession();
    stateOf(await api.patch(`/sessions/${deleted}/state`, { summary: 'x' }));
    expect((await api.delete(`/sessions/${deleted}`)).status).toBe(204);
    for (const id of ['never-created', deleted]) {
      const before = await eventCount();
      const replies = [
        await api.get(`/sessions/${id}/state`),
        await api.get(`/sessions/${id}/state?version=1`),
        await api.patch(`/sessions/${id}/state`, { summary: 'y' }),
        await api.request('PUT', toolPath(id, 'q'), { json: { status: 'running' } }),
        await api.get(`/sessions/${id}/history`),
      ];
      for (const reply of replies) expect(problemOf(reply, 404).code).toBe('SESSION.NOT_FOUND');
      expect(await eventCount()).toBe(before);
    }
  });
});
