import { randomUUID } from 'node:crypto';
import { sessionStreamId, type SessionView, UserStatsView } from '@threadline/contracts';
import { eventually } from '@threadline/testing';
import { Api, pageOf, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

// The sessions API of issue 2, driven over HTTP against the five built services running as processes
// (`npm test` builds them first). Each test uses users and sessions of its own.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStack();
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

async function eventCount(): Promise<number> {
  const [row] = await stack.database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  return row?.n ?? -1;
}

/** Global position of the last event of a session's stream (what `X-Threadline-Position` must say). */
async function lastPosition(sessionId: string): Promise<number> {
  const [row] = await stack.database.db.query<{ p: string | null }>(
    'SELECT max(global_position)::text AS p FROM events WHERE stream_id = $1',
    [sessionStreamId(stack.tenantId, sessionId)],
  );
  return Number(row?.p);
}

async function createSession(body: Record<string, unknown>): Promise<SessionView> {
  return sessionOf(await api.post('/sessions', body), 201);
}

const etagOf = (reply: Reply) => reply.headers.get('etag');
const ids = (sessions: readonly SessionView[]) => sessions.map((s) => s.session_id);

describe('service endpoints', () => {
  it('GET /health answers 200 while Postgres and NATS are up', async () => {
    const reply = await api.get('/health');
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: 'ok', checks: { postgres: 'up', nats: 'up' } });
  });

  it('GET /docs serves the API docs, and /docs/json the OpenAPI document of the sessions routes', async () => {
    const page = await api.get('/docs', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const doc = await api.get('/docs/json');
    expect(doc.status).toBe(200);
    const openapi = doc.json as { openapi?: string; paths?: Record<string, unknown> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths ?? {})).toEqual(
      expect.arrayContaining([
        '/sessions',
        '/sessions/{session_id}',
        '/users/{user_id}/sessions',
        '/users/{user_id}/sessions/current',
      ]),
    );
  });
});

describe('POST /sessions', () => {
  it('creates a session with a generated id: 201, the session, ETag and the write position', async () => {
    const user = uid('alice');
    const reply = await api.post('/sessions', {
      user_id: user,
      title: 'Trip planning',
      metadata: { channel: 'web' },
    });
    const session = sessionOf(reply, 201);
    expect(session).toMatchObject({
      user_id: user,
      title: 'Trip planning',
      status: 'active',
      metadata: { channel: 'web' },
      ended_at: null,
      version: 1,
    });
    expect(session.session_id).not.toBe('');
    expect(session.thread_id).toBe(session.session_id);
    expect(etagOf(reply)).toBe('"1"');
    expect(Number(reply.headers.get('x-threadline-position'))).toBe(await lastPosition(session.session_id));
  });

  it('creates a session under a given session_id, and a taken id is 409 appending nothing', async () => {
    const id = uid('given');
    const created = await createSession({ session_id: id, user_id: uid('bob'), created_from: 'e2e' });
    expect(created.session_id).toBe(id);
    expect(created.created_from).toBe('e2e');

    const before = await eventCount();
    const problem = problemOf(await api.post('/sessions', { session_id: id, user_id: uid('other') }), 409);
    expect(problem.code).toBe('SESSION.ALREADY_EXISTS');
    expect(await eventCount()).toBe(before);
  });

  it('retried with the same Idempotency-Key: the same answer, one session, one event', async () => {
    const key = randomUUID();
    const body = { user_id: uid('idem'), title: 'Once' };
    const before = await eventCount();
    const first = await api.post('/sessions', body, { headers: { 'idempotency-key': key } });
    const retry = await api.post('/sessions', body, { headers: { 'idempotency-key': key } });
    const session = sessionOf(first, 201);
    expect(retry.status).toBe(first.status);
    expect(retry.json).toEqual(first.json);
    expect(await eventCount()).toBe(before + 1);
    expect(
      pageOf(await api.get(`/users/${body.user_id}/sessions`)).sessions.map((s) => s.session_id),
    ).toEqual([session.session_id]);
  });
});

describe('GET and HEAD /sessions/{session_id}', () => {
  it('GET returns the session with every field and its version as ETag', async () => {
    const user = uid('carol');
    const created = await createSession({ user_id: user, title: 'Read me', metadata: { lang: 'en' } });
    const reply = await api.get(`/sessions/${created.session_id}`);
    const session = sessionOf(reply, 200);
    expect(session).toEqual(created);
    for (const field of [
      'session_id',
      'user_id',
      'title',
      'status',
      'metadata',
      'created_at',
      'updated_at',
      'last_activity_at',
      'version',
    ]) {
      expect(reply.json).toHaveProperty(field);
    }
    expect(etagOf(reply)).toBe(`"${session.version}"`);
  });

  it('HEAD is 200 for a session and 404 for an unknown one, without a body', async () => {
    const created = await createSession({ user_id: uid('dan') });
    const found = await api.head(`/sessions/${created.session_id}`);
    expect(found.status).toBe(200);
    expect(found.text).toBe('');
    const missing = await api.head(`/sessions/${uid('nope')}`);
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('');
  });

  it('an unknown session is a 404 problem for GET, PATCH, end and DELETE', async () => {
    const id = uid('unknown');
    const before = await eventCount();
    for (const reply of [
      await api.get(`/sessions/${id}`),
      await api.patch(`/sessions/${id}`, { title: 'x' }),
      await api.post(`/sessions/${id}/end`),
      await api.delete(`/sessions/${id}`),
    ]) {
      const problem = problemOf(reply, 404);
      expect(problem.code).toBe('SESSION.NOT_FOUND');
    }
    expect(await eventCount()).toBe(before);
  });
});

describe('PATCH /sessions/{session_id}', () => {
  it('changes the title and merges metadata (null removes a key)', async () => {
    const created = await createSession({
      user_id: uid('erin'),
      title: 'Old',
      metadata: { a: 1, b: 2, nested: { x: 1 } },
    });
    const reply = await api.patch(`/sessions/${created.session_id}`, {
      title: 'New',
      metadata: { b: null, c: 'three' },
    });
    const session = sessionOf(reply, 200);
    expect(session.title).toBe('New');
    expect(session.metadata).toEqual({ a: 1, nested: { x: 1 }, c: 'three' });
    expect(session.version).toBe(created.version + 2); // one title event, one metadata event
    expect(etagOf(reply)).toBe(`"${session.version}"`);
    expect(Number(reply.headers.get('x-threadline-position'))).toBe(await lastPosition(session.session_id));
    expect(sessionOf(await api.get(`/sessions/${created.session_id}`), 200)).toEqual(session);
  });

  it('If-Match: a stale version is 412 and changes nothing; the current version is 200', async () => {
    const created = await createSession({ user_id: uid('fay'), title: 'v1' });
    const path = `/sessions/${created.session_id}`;
    const second = sessionOf(await api.patch(path, { title: 'v2' }), 200);

    const before = await eventCount();
    const stale = problemOf(
      await api.patch(path, { title: 'stale' }, { headers: { 'if-match': `"${created.version}"` } }),
      412,
    );
    expect(stale.code).toMatch(/VERSION/);
    expect(await eventCount()).toBe(before);
    expect(sessionOf(await api.get(path), 200).title).toBe('v2');

    const ok = sessionOf(
      await api.patch(path, { title: 'v3' }, { headers: { 'if-match': `"${second.version}"` } }),
      200,
    );
    expect(ok.title).toBe('v3');
    expect(ok.version).toBe(second.version + 1);
  });
});

describe('POST /sessions/{session_id}/end and DELETE /sessions/{session_id}', () => {
  it('ends a session; ending it again answers the same and appends nothing', async () => {
    const created = await createSession({ user_id: uid('gus') });
    const ended = sessionOf(await api.post(`/sessions/${created.session_id}/end`), 200);
    expect(ended.status).toBe('ended');
    expect(ended.ended_at).not.toBeNull();
    expect(ended.version).toBe(created.version + 1);

    const before = await eventCount();
    const again = sessionOf(await api.post(`/sessions/${created.session_id}/end`), 200);
    expect(again).toEqual(ended);
    expect(await eventCount()).toBe(before);
  });

  it('deletes a session: 204, then 404 on GET and HEAD, and gone from the user list and the operators list', async () => {
    const user = uid('hal');
    const kept = await createSession({ user_id: user, title: 'kept' });
    const doomed = await createSession({ user_id: user, title: 'doomed' });

    const reply = await api.delete(`/sessions/${doomed.session_id}`);
    expect(reply.status).toBe(204);
    expect(reply.text).toBe('');

    expect(problemOf(await api.get(`/sessions/${doomed.session_id}`), 404).code).toBe('SESSION.NOT_FOUND');
    expect((await api.head(`/sessions/${doomed.session_id}`)).status).toBe(404);
    const userPage = pageOf(await api.get(`/users/${user}/sessions`));
    expect(ids(userPage.sessions)).toEqual([kept.session_id]);
    expect(userPage.total).toBe(1);
    const all = await listAllSessions('/sessions?limit=200');
    expect(all).toContain(kept.session_id);
    expect(all).not.toContain(doomed.session_id);
    // Deleted is gone for writes too, and its id stays taken.
    expect((await api.delete(`/sessions/${doomed.session_id}`)).status).toBe(404);
  });
});

/** Follows `next_cursor` from `path` to the last page; returns every session id in order. */
async function listAllSessions(path: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const url: string =
      cursor === null ? path : `${path}${path.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}`;
    const body = pageOf(await api.get(url));
    out.push(...ids(body.sessions));
    cursor = body.next_cursor;
    if (cursor === null) return out;
  }
  throw new Error(`more than 100 pages at ${path}`);
}

describe('GET /users/{user_id}/sessions', () => {
  const user = uid('ivy');
  const made: SessionView[] = [];

  beforeAll(async () => {
    // Created one after the other: created_at ascending in this order.
    made.push(await createSession({ user_id: user, title: 's0', metadata: { color: 'red', tier: 'gold' } }));
    made.push(await createSession({ user_id: user, title: 's1', metadata: { color: 'blue' } }));
    made.push(await createSession({ user_id: user, title: 's2', metadata: { color: 'red' } }));
    made.push(await createSession({ user_id: user, title: 's3' }));
    sessionOf(await api.post(`/sessions/${made[1]!.session_id}/end`), 200);
    await createSession({ user_id: uid('someone-else'), metadata: { color: 'red' } });
  });

  it('lists every session of the user (newest first by default) with the total', async () => {
    const page = pageOf(await api.get(`/users/${user}/sessions`));
    expect(page.total).toBe(4);
    expect(page.next_cursor).toBeNull();
    expect(ids(page.sessions)).toEqual(ids(made).reverse());
    expect(page.sessions.every((s) => s.user_id === user)).toBe(true);
  });

  it('filters by status', async () => {
    const active = pageOf(await api.get(`/users/${user}/sessions?status=active`));
    expect(active.total).toBe(3);
    expect(active.sessions.every((s) => s.status === 'active')).toBe(true);
    const ended = pageOf(await api.get(`/users/${user}/sessions?status=ended`));
    expect(ids(ended.sessions)).toEqual([made[1]!.session_id]);
    expect(ended.total).toBe(1);
    expect(pageOf(await api.get(`/users/${user}/sessions?status=all`)).total).toBe(4);
  });

  it('pages with limit and cursor, the total counting every page', async () => {
    const first = pageOf(await api.get(`/users/${user}/sessions?limit=3&sort=created_at&order=asc`));
    expect(ids(first.sessions)).toEqual(ids(made.slice(0, 3)));
    expect(first.total).toBe(4);
    expect(first.next_cursor).not.toBeNull();
    const second = pageOf(
      await api.get(
        `/users/${user}/sessions?limit=3&sort=created_at&order=asc&cursor=${encodeURIComponent(first.next_cursor!)}`,
      ),
    );
    expect(ids(second.sessions)).toEqual([made[3]!.session_id]);
    expect(second.next_cursor).toBeNull();
    expect(second.total).toBe(4);
  });

  it('sorts by created_at or last_activity_at, in either order', async () => {
    const asc = pageOf(await api.get(`/users/${user}/sessions?sort=created_at&order=asc`));
    expect(ids(asc.sessions)).toEqual(ids(made));
    const desc = pageOf(await api.get(`/users/${user}/sessions?sort=created_at&order=desc`));
    expect(ids(desc.sessions)).toEqual(ids(made).reverse());
    const byActivity = pageOf(await api.get(`/users/${user}/sessions?sort=last_activity_at&order=desc`));
    const activity = byActivity.sessions.map((s) => Date.parse(s.last_activity_at));
    expect(activity).toEqual([...activity].sort((a, b) => b - a));
    expect(byActivity.total).toBe(4);
  });

  it('filters by metadata.<key>=<value>, several filters combined', async () => {
    const red = pageOf(await api.get(`/users/${user}/sessions?metadata.color=red&order=asc`));
    expect(ids(red.sessions)).toEqual([made[0]!.session_id, made[2]!.session_id]);
    expect(red.total).toBe(2);
    const redGold = pageOf(await api.get(`/users/${user}/sessions?metadata.color=red&metadata.tier=gold`));
    expect(ids(redGold.sessions)).toEqual([made[0]!.session_id]);
    const none = pageOf(await api.get(`/users/${user}/sessions?metadata.color=green`));
    expect(none).toEqual({ sessions: [], next_cursor: null, total: 0 });
  });

  it('rejects a bad status, limit or sort with a 400 naming the parameter', async () => {
    for (const [query, field] of [
      ['status=maybe', 'status'],
      ['limit=0', 'limit'],
      ['limit=abc', 'limit'],
      ['sort=title', 'sort'],
      ['order=sideways', 'order'],
    ] as const) {
      const problem = problemOf(await api.get(`/users/${user}/sessions?${query}`), 400);
      expect(problem.code).toBe('REQUEST.INVALID');
      expect(problem.errors?.map((e) => e.path)).toContain(field);
    }
  });
});

describe('/users/{user_id}/sessions/current', () => {
  it('GET is 404 when the user has no active session', async () => {
    const user = uid('nobody');
    expect(problemOf(await api.get(`/users/${user}/sessions/current`), 404).code).toBe('SESSION.NOT_FOUND');
    const ended = await createSession({ user_id: user });
    sessionOf(await api.post(`/sessions/${ended.session_id}/end`), 200);
    expect((await api.get(`/users/${user}/sessions/current`)).status).toBe(404);
  });

  it('POST is get-or-create: 201 with a new session, then 200 with the same one; GET returns it', async () => {
    const user = uid('jay');
    const created = sessionOf(
      await api.post(`/users/${user}/sessions/current`, { title: 'Current', metadata: { k: 'v' } }),
      201,
    );
    expect(created).toMatchObject({
      user_id: user,
      title: 'Current',
      status: 'active',
      metadata: { k: 'v' },
    });
    const again = sessionOf(await api.post(`/users/${user}/sessions/current`, {}), 200);
    expect(again.session_id).toBe(created.session_id);
    expect(sessionOf(await api.get(`/users/${user}/sessions/current`), 200).session_id).toBe(
      created.session_id,
    );
  });

  it('GET returns the most recent active session', async () => {
    const user = uid('kim');
    await createSession({ user_id: user, title: 'older' });
    const newer = await createSession({ user_id: user, title: 'newer' });
    expect(sessionOf(await api.get(`/users/${user}/sessions/current`), 200).session_id).toBe(
      newer.session_id,
    );
  });

  it('two concurrent POSTs for one user yield one session', async () => {
    const user = uid('race');
    const replies = await Promise.all([
      api.post(`/users/${user}/sessions/current`, { title: 'one' }),
      api.post(`/users/${user}/sessions/current`, { title: 'two' }),
    ]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 201]);
    const [a, b] = replies.map((r) => sessionOf(r, r.status));
    expect(a!.session_id).toBe(b!.session_id);
    expect(pageOf(await api.get(`/users/${user}/sessions`)).total).toBe(1);
  });
});

describe('GET /sessions (operators list)', () => {
  it('lists every user sessions, pages with limit and cursor, filters by status', async () => {
    const mine = [
      await createSession({ user_id: uid('op1') }),
      await createSession({ user_id: uid('op2') }),
      await createSession({}),
    ];
    sessionOf(await api.post(`/sessions/${mine[0]!.session_id}/end`), 200);

    const first = pageOf(await api.get('/sessions?limit=2'));
    expect(first.sessions).toHaveLength(2);
    expect(first.next_cursor).not.toBeNull();
    const all = await listAllSessions('/sessions?limit=2');
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(first.total);
    expect(all).toEqual(expect.arrayContaining(ids(mine)));

    const active = await listAllSessions('/sessions?status=active&limit=50');
    expect(active).toEqual(expect.arrayContaining([mine[1]!.session_id, mine[2]!.session_id]));
    expect(active).not.toContain(mine[0]!.session_id);
    const ended = await listAllSessions('/sessions?status=ended');
    expect(ended).toContain(mine[0]!.session_id);
  });
});

describe('bad input: 400 problem naming each bad field, nothing appended', () => {
  // `fields`: the `errors[].path` the problem must name; `mentions`: text the problem must contain
  // (a whole-body issue such as an unknown key has no field path of its own).
  const cases: { name: string; send: () => Promise<Reply>; fields: string[]; mentions?: string }[] = [
    {
      name: 'POST /sessions with a bad user_id and a non-string title',
      send: () => api.post('/sessions', { user_id: 'has spaces', title: 42 }),
      fields: ['user_id', 'title'],
    },
    {
      name: 'POST /sessions with an unknown field',
      send: () => api.post('/sessions', { user_id: 'u', colour: 'red' }),
      fields: [],
      mentions: 'colour',
    },
    {
      name: 'POST /sessions with metadata that is not an object',
      send: () => api.post('/sessions', { metadata: [1, 2] }),
      fields: ['metadata'],
    },
    {
      name: 'POST /sessions with a title of 256 characters',
      send: () => api.post('/sessions', { title: 'x'.repeat(256) }),
      fields: ['title'],
    },
    {
      name: 'POST /sessions with malformed JSON',
      send: () => api.request('POST', '/sessions', { raw: '{"user_id": ' }),
      fields: [],
    },
    {
      name: 'PATCH with an empty body',
      send: () => api.patch('/sessions/some-session', {}),
      fields: [],
      mentions: 'title',
    },
    {
      name: 'PATCH with a bad If-Match',
      send: () =>
        api.patch('/sessions/some-session', { title: 't' }, { headers: { 'if-match': 'yesterday' } }),
      fields: ['if-match'],
    },
    {
      name: 'POST /sessions with an Idempotency-Key of 201 characters',
      send: () => api.post('/sessions', {}, { headers: { 'idempotency-key': 'x'.repeat(201) } }),
      fields: ['idempotency-key'],
    },
    {
      name: 'a session id with forbidden characters',
      send: () => api.get('/sessions/bad%20id'),
      fields: ['session_id'],
    },
    {
      name: 'POST current with a bad title',
      send: () => api.post(`/users/${uid('zed')}/sessions/current`, { title: ['x'] }),
      fields: ['title'],
    },
    {
      name: 'GET /sessions with a bad status',
      send: () => api.get('/sessions?status=sleeping'),
      fields: ['status'],
    },
  ];

  it.each(cases)('$name', async ({ send, fields, mentions }) => {
    const before = await eventCount();
    const problem = problemOf(await send(), 400);
    expect(problem.code).toBe('REQUEST.INVALID');
    expect(problem.detail).not.toBe('');
    const paths = (problem.errors ?? []).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(fields));
    if (mentions !== undefined) expect(JSON.stringify(problem)).toContain(mentions);
    expect(await eventCount()).toBe(before);
  });
});

describe('the relay path: event store -> relay -> JetStream -> analytics projector', () => {
  it("the per-user session counts reach the user's writes", async () => {
    const user = uid('counted');
    const s = [
      await createSession({ user_id: user }),
      await createSession({ user_id: user }),
      await createSession({ user_id: user }),
      await createSession({ user_id: user }),
    ];
    sessionOf(await api.patch(`/sessions/${s[0]!.session_id}`, { title: 'renamed' }), 200);
    sessionOf(await api.post(`/sessions/${s[1]!.session_id}/end`), 200);
    sessionOf(await api.post(`/sessions/${s[2]!.session_id}/end`), 200);
    expect((await api.delete(`/sessions/${s[2]!.session_id}`)).status).toBe(204);

    // The deleted session counts nowhere; read without min_position, as the relay delivers.
    const expected = { active: 2, ended: 1, expired: 0, total: 3 };
    let seen: unknown = 'no answer';
    const counts = await eventually(
      async () => {
        const reply = await api.get(`/users/${user}/stats`);
        if (reply.status !== 200) return undefined;
        const parsed = UserStatsView.parse(reply.json).sessions;
        seen = parsed;
        return (Object.keys(expected) as (keyof typeof expected)[]).every((k) => parsed[k] === expected[k])
          ? parsed
          : undefined;
      },
      20_000,
      `GET /users/${user}/stats sessions = ${JSON.stringify(expected)}`,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; last seen ${JSON.stringify(seen)}`);
    });
    expect(counts).toEqual(expected);
  }, 30_000);
});
