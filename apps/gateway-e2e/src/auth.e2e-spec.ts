import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { eventually } from '@threadline/testing';
import { Api, pageOf, problemOf, type Reply, sessionOf } from './http-client';
import { type CreatedKey, type Stack, startStack } from './stack';

/**
 * Issue 7, the access matrix: every endpoint with no key, a bad key, a revoked key, an expired user
 * token and a token of a revoked key is 401 (the operations come from the OpenAPI document, so new
 * endpoints are covered without editing this file); another tenant's key and another user's token
 * get 404 (or only their own, empty data) for everything of alice (sessions, turns, /query, workflow
 * state and history, stats) and nothing of alice changes; role-restricted routes are 403. A user
 * token creating under an id another user holds gets the 404 a read of that id gives it, not a 409.
 */

const TokenReply = z.object({
  token: z.string(),
  token_type: z.literal('Bearer'),
  user_id: z.string(),
  tenant_id: z.string(),
  expires_at: z.string(),
});

let stack: Stack;
let admin: Api;
let service: Api;
let serviceKey: CreatedKey;
let otherTenant: Api;
let aliceToken: string;
let bobToken: string;
let alice: Api;
let bob: Api;
const marker = `SECRET-${randomBytes(6).toString('hex')}`;
const ALICE = 'alice';
const BOB = 'bob';
let sessionA: string;
let turnA: string;
let openTurnA: string;
/** Global position of alice's last write: stats queries wait for it (`min_position`). */
let positionA: number;

const positionOf = (reply: Reply): number => {
  const value = Number(reply.headers.get('x-threadline-position'));
  if (!Number.isInteger(value)) throw new Error(`no X-Threadline-Position: HTTP ${reply.status}`);
  return value;
};
const UsageOf = z.object({ rows: z.array(z.object({ turns: z.number(), calls: z.number() }).passthrough()) });

async function mint(api: Api, userId: string, ttlSeconds = 600): Promise<string> {
  const reply = await api.post('/auth/user-tokens', { user_id: userId, ttl_seconds: ttlSeconds });
  if (reply.status !== 201) throw new Error(`mint: HTTP ${reply.status} ${reply.text}`);
  return TokenReply.parse(reply.json).token;
}

async function eventCount(where = 'true', params: unknown[] = []): Promise<number> {
  const [row] = await stack.database.db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM events WHERE ${where}`,
    params,
  );
  return Number(row?.n);
}

/** alice's world as the service key sees it: her session, turns, workflow state, history, event count. */
async function aliceSnapshot(): Promise<unknown> {
  const session = sessionOf(await service.get(`/sessions/${sessionA}`), 200);
  const turns = await service.get(`/sessions/${sessionA}/turns?limit=200`);
  const state = await service.get(`/sessions/${sessionA}/state`);
  const history = await service.get(`/sessions/${sessionA}/history?limit=200`);
  expect([state.status, history.status]).toEqual([200, 200]);
  return {
    session,
    turns: turns.json,
    state: state.json,
    history: history.json,
    events: await eventCount(`tenant_id = $1 AND metadata->>'userId' = $2`, [stack.tenantId, ALICE]),
  };
}

beforeAll(async () => {
  stack = await startStack();
  admin = new Api(stack.baseUrl);
  serviceKey = await stack.createKey({ tenantId: stack.tenantId, role: 'service' });
  service = admin.as(serviceKey.key);
  otherTenant = admin.as((await stack.createKey({ tenantId: 'other-tenant', role: 'admin' })).key);
  aliceToken = await mint(service, ALICE);
  bobToken = await mint(service, BOB);
  alice = admin.as(aliceToken);
  bob = admin.as(bobToken);

  const created = sessionOf(
    await service.post('/sessions', { user_id: ALICE, title: marker, metadata: { secret: marker } }),
    201,
  );
  sessionA = created.session_id;
  const turn = await service.post(`/sessions/${sessionA}/turns`, {
    user_input: `${marker} question`,
    agent_responses: [
      {
        agent_name: 'planner',
        response: `${marker} answer`,
        model: 'gpt-4o-mini',
        execution_time_ms: 120,
        usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 },
      },
    ],
  });
  turnA = z.object({ turn_id: z.string() }).parse(turn.json).turn_id;
  const open = await service.post(`/sessions/${sessionA}/turns`, {
    user_input: `${marker} open`,
    status: 'in_progress',
  });
  openTurnA = z.object({ turn_id: z.string() }).parse(open.json).turn_id;
  // alice's workflow state: a summary and a tool call, so "unchanged" has something to compare.
  expect((await service.patch(`/sessions/${sessionA}/state`, { summary: `${marker} plan` })).status).toBe(
    200,
  );
  const tool = await service.request('PUT', `/sessions/${sessionA}/tool-calls/search`, {
    json: { status: 'completed', result: { found: marker } },
  });
  expect(tool.status).toBe(200);
  positionA = positionOf(tool);
  // The session-service follows alice's turns over JetStream (turn_count, context): the snapshots
  // compared by "alice unchanged" must not catch it half-way (seen: turn_count 0, then 2).
  await eventually(
    async () => {
      const view = z
        .object({ turn_count: z.number() })
        .parse((await service.get(`/sessions/${sessionA}`)).json);
      return view.turn_count === 2 ? true : undefined;
    },
    30_000,
    "alice's two turns in her session's turn_count",
  );
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

interface Operation {
  method: string;
  path: string;
  /** The OpenAPI `security` of the operation (absent: a public one). */
  security?: unknown;
}

const OpenApiOperation = z.object({
  security: z.array(z.record(z.string(), z.array(z.string()))).optional(),
});
const OpenApiDoc = z.object({
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
  components: z.object({ securitySchemes: z.record(z.string(), z.unknown()).optional() }),
});

/** Every operation of the OpenAPI document, with alice's ids in its path parameters. */
async function operations(): Promise<Operation[]> {
  const doc = OpenApiDoc.parse((await admin.as(null).get('/docs/json')).json);
  const ids: Record<string, string> = { session_id: sessionA, turn_id: turnA, user_id: ALICE };
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([m]) => ['get', 'head', 'post', 'put', 'patch', 'delete'].includes(m))
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        path: path.replace(/\{([^}]+)\}/g, (_all, name: string) => ids[name] ?? 'x1'),
        security: OpenApiOperation.parse(operation).security,
      })),
  );
}

const send = (api: Api, op: Operation, json?: unknown): Promise<Reply> =>
  ['POST', 'PUT', 'PATCH'].includes(op.method)
    ? api.request(op.method, op.path, { json: json ?? {} })
    : api.request(op.method, op.path);

describe('401 on every endpoint without valid credentials', () => {
  it('no key, a bad key, a revoked key, an expired token, a token of a revoked key, a forged token', async () => {
    const revoked = await stack.createKey({ tenantId: stack.tenantId, role: 'admin' });
    const revokedMinter = await stack.createKey({ tenantId: stack.tenantId, role: 'service' });
    const orphanToken = await mint(admin.as(revokedMinter.key), ALICE);
    const expiring = await mint(service, ALICE, 1);
    await stack.revokeKey(revoked.key_id);
    await stack.revokeKey(revokedMinter.key_id);
    await eventually(async () =>
      (await admin.as(expiring).get('/users/alice/sessions')).status === 401 ? true : undefined,
    );
    const [h, p] = aliceToken.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: BOB })).toString('base64url')}.${aliceToken.split('.')[2]}`;

    const credentials: Record<string, Api> = {
      none: admin.as(null),
      'bad key': admin.as(`tlk_${randomBytes(32).toString('base64url')}`),
      garbage: admin.as('not a key at all'),
      'revoked key': admin.as(revoked.key),
      'expired token': admin.as(expiring),
      'token of a revoked key': admin.as(orphanToken),
      'forged token': admin.as(forged),
    };
    // The document's security requirements are the guard's rule: every operation with one is 401 here.
    const ops = (await operations()).filter((op) => op.security !== undefined);
    expect(ops.length).toBeGreaterThanOrEqual(19);
    const before = await eventCount();
    const failures: string[] = [];
    for (const [name, api] of Object.entries(credentials)) {
      for (const op of ops) {
        const reply = await send(api, op, { user_id: ALICE, query: 'hi', user_input: 'hi' });
        if (
          reply.status !== 401 ||
          (op.method !== 'HEAD' && problemOf(reply, 401).code !== 'REQUEST.UNAUTHORIZED')
        )
          failures.push(`${name}: ${op.method} ${op.path} -> ${reply.status}`);
        else if (reply.headers.get('www-authenticate') === null)
          failures.push(`${name}: no WWW-Authenticate`);
        if (reply.text.includes(marker)) failures.push(`${name}: ${op.method} ${op.path} leaked`);
      }
    }
    expect(failures).toEqual([]);
    expect(await eventCount()).toBe(before);
    // /health stays public.
    expect((await admin.as(null).get('/health')).status).toBe(200);
  }, 120_000);
});

/** Requests at alice's things; what another tenant and another user may answer to each. */
const attacks = (): { op: Operation; body?: unknown; otherTenant: number[]; otherUser: number[] }[] => [
  { op: { method: 'GET', path: `/sessions/${sessionA}` }, otherTenant: [404], otherUser: [404] },
  { op: { method: 'HEAD', path: `/sessions/${sessionA}` }, otherTenant: [404], otherUser: [404] },
  {
    op: { method: 'PATCH', path: `/sessions/${sessionA}` },
    body: { title: 'pwned' },
    otherTenant: [404],
    otherUser: [404],
  },
  { op: { method: 'POST', path: `/sessions/${sessionA}/end` }, otherTenant: [404], otherUser: [404] },
  { op: { method: 'DELETE', path: `/sessions/${sessionA}` }, otherTenant: [404], otherUser: [404] },
  { op: { method: 'GET', path: `/sessions/${sessionA}/turns` }, otherTenant: [404], otherUser: [404] },
  {
    op: { method: 'POST', path: `/sessions/${sessionA}/turns` },
    body: { user_input: 'pwned' },
    otherTenant: [404],
    otherUser: [404],
  },
  { op: { method: 'GET', path: `/turns/${turnA}` }, otherTenant: [404], otherUser: [404] },
  {
    op: { method: 'POST', path: `/turns/${openTurnA}/responses` },
    body: { agent_response: { agent_name: 'x', response: 'pwned' } },
    otherTenant: [404],
    otherUser: [404],
  },
  { op: { method: 'POST', path: `/turns/${openTurnA}/complete` }, otherTenant: [404], otherUser: [404] },
  {
    op: { method: 'POST', path: `/turns/${openTurnA}/fail` },
    body: { error: 'pwned' },
    otherTenant: [404],
    otherUser: [404],
  },
  { op: { method: 'DELETE', path: `/turns/${turnA}` }, otherTenant: [404], otherUser: [404] },
  // Lists of alice: the other tenant sees its own (empty) lists; bob is told there is nothing.
  { op: { method: 'GET', path: `/users/${ALICE}/sessions` }, otherTenant: [200], otherUser: [404] },
  { op: { method: 'GET', path: `/users/${ALICE}/sessions/current` }, otherTenant: [404], otherUser: [404] },
  { op: { method: 'GET', path: `/users/${ALICE}/turns` }, otherTenant: [200], otherUser: [404] },
  { op: { method: 'POST', path: `/users/${ALICE}/sessions/current` }, otherTenant: [201], otherUser: [404] },
  // Workflow state and history of alice's session. (Before /query below: the other tenant's /query
  // with alice's session id makes a session of its own under that id, whose state is its own.)
  { op: { method: 'GET', path: `/sessions/${sessionA}/state` }, otherTenant: [404], otherUser: [404] },
  {
    op: { method: 'GET', path: `/sessions/${sessionA}/state?version=1` },
    otherTenant: [404],
    otherUser: [404],
  },
  {
    op: { method: 'PATCH', path: `/sessions/${sessionA}/state` },
    body: { summary: 'pwned', constraints: { pwned: true } },
    otherTenant: [404],
    otherUser: [404],
  },
  {
    op: { method: 'PUT', path: `/sessions/${sessionA}/tool-calls/search` },
    body: { status: 'failed', error: 'pwned' },
    otherTenant: [404],
    otherUser: [404],
  },
  {
    op: { method: 'PUT', path: `/sessions/${sessionA}/tool-calls/new-tool` },
    body: { status: 'pending' },
    otherTenant: [404],
    otherUser: [404],
  },
  { op: { method: 'GET', path: `/sessions/${sessionA}/history` }, otherTenant: [404], otherUser: [404] },
  // Stats, once the projection has applied alice's writes: her session's are 404; her user stats
  // are the other tenant's own (another "alice") and 404 for bob; usage is the caller's own only.
  {
    op: { method: 'GET', path: `/sessions/${sessionA}/stats?min_position=${positionA}` },
    otherTenant: [404],
    otherUser: [404],
  },
  {
    op: { method: 'GET', path: `/users/${ALICE}/stats?min_position=${positionA}` },
    otherTenant: [200],
    otherUser: [404],
  },
  {
    op: { method: 'GET', path: `/stats/usage?min_position=${positionA}` },
    otherTenant: [200],
    otherUser: [200],
  },
  // Writes naming alice: another tenant writes into its own tenant; bob cannot name alice.
  {
    op: { method: 'POST', path: '/sessions' },
    body: { user_id: ALICE },
    otherTenant: [201],
    otherUser: [404],
  },
  {
    op: { method: 'POST', path: '/query' },
    body: { query: 'hi', thread_id: sessionA },
    otherTenant: [200],
    otherUser: [404],
  },
  {
    op: { method: 'POST', path: '/query' },
    body: { query: 'hi', user_id: ALICE },
    otherTenant: [200],
    otherUser: [404],
  },
  // Tenant-wide and key-only routes.
  { op: { method: 'GET', path: '/sessions' }, otherTenant: [200], otherUser: [403] },
  { op: { method: 'GET', path: '/sessions/stats' }, otherTenant: [200], otherUser: [403] },
  { op: { method: 'POST', path: '/sessions/cleanup' }, otherTenant: [200], otherUser: [403] },
  {
    op: { method: 'POST', path: '/auth/user-tokens' },
    body: { user_id: ALICE },
    otherTenant: [201],
    otherUser: [403],
  },
];

describe("another tenant's key and another user's token", () => {
  it.each([
    ['another tenant', () => otherTenant, 'otherTenant' as const],
    ['another user', () => bob, 'otherUser' as const],
  ])(
    '%s: 404 (or its own empty data) everywhere, alice unchanged',
    async (_name, api, column) => {
      const before = await aliceSnapshot();
      const tenantEvents = await eventCount('tenant_id = $1', [stack.tenantId]);
      const failures: string[] = [];
      for (const attack of attacks()) {
        const reply = await send(api(), attack.op, attack.body);
        if (!attack[column].includes(reply.status))
          failures.push(
            `${attack.op.method} ${attack.op.path} -> ${reply.status} ${reply.text.slice(0, 200)}`,
          );
        if (reply.text.includes(marker))
          failures.push(`${attack.op.method} ${attack.op.path} leaked alice's data`);
        if (reply.status === 404 && attack.op.method !== 'HEAD') problemOf(reply, 404);
      }
      expect(failures).toEqual([]);
      expect(await aliceSnapshot()).toEqual(before);
      // Nothing at all changed in alice's tenant (bob's answers were all 4xx; the other tenant writes elsewhere).
      expect(await eventCount('tenant_id = $1', [stack.tenantId])).toBe(tenantEvents);
    },
    120_000,
  );

  it("another tenant's operator list has nothing of alice's tenant", async () => {
    const page = pageOf(await otherTenant.get('/sessions?limit=200&status=all'));
    // Ids are per tenant (the other tenant's /query above made its own session under that id).
    expect(page.sessions.filter((s) => s.title === marker)).toEqual([]);
    expect(JSON.stringify(page)).not.toContain(marker);
  });
});

describe('the OpenAPI document declares the bearer scheme', () => {
  it('on every operation but the health checks, and they and /docs answer without credentials', async () => {
    const doc = OpenApiDoc.parse((await admin.as(null).get('/docs/json')).json);
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }) as unknown,
    });
    const ops = await operations();
    const open = ops.filter((op) => op.security === undefined).map((op) => `${op.method} ${op.path}`);
    expect(open.sort()).toEqual(['GET /health', 'GET /health/live', 'GET /health/ready']);
    for (const op of ops.filter((o) => o.security !== undefined))
      expect([op.path, op.security]).toEqual([op.path, [{ bearer: [] }]]);
    expect(JSON.stringify(doc)).not.toContain('x-threadline-public');
    expect((await admin.as(null).get('/docs')).status).toBe(200);
    expect((await admin.as(null).get('/health')).status).toBe(200);
    expect((await admin.as(null).get('/health/live')).status).toBe(200);
    expect((await admin.as(null).get('/health/ready')).status).toBe(200);
  });
});

describe('stats and cleanup: only the caller\u2019s own data; cleanup is for admin keys', () => {
  it("another user's usage is empty though alice's is not; a new tenant sees zeros", async () => {
    const q = `min_position=${positionA}`;
    // Controls: the projection has alice's turn, so an empty answer below means filtered, not late.
    expect((await service.get(`/sessions/${sessionA}/stats?${q}`)).status).toBe(200);
    const tenantUsage = UsageOf.parse((await service.get(`/stats/usage?${q}`)).json);
    expect(tenantUsage.rows.reduce((n, r) => n + r.calls, 0)).toBeGreaterThanOrEqual(1);
    const aliceUsage = UsageOf.parse((await alice.get(`/stats/usage?${q}`)).json);
    expect(aliceUsage.rows.reduce((n, r) => n + r.calls, 0)).toBeGreaterThanOrEqual(1);
    const aliceStats = z
      .object({ turns: z.number() })
      .parse((await service.get(`/users/${ALICE}/stats?${q}`)).json);
    expect(aliceStats.turns).toBeGreaterThanOrEqual(2);

    // bob has logged nothing: his usage is empty.
    expect(UsageOf.parse((await bob.get(`/stats/usage?${q}`)).json).rows).toEqual([]);
    // A tenant with no data: alice is a stranger there, and its figures are zeros.
    const fresh = admin.as((await stack.createKey({ tenantId: 'fresh-tenant', role: 'admin' })).key);
    const strangers = z
      .object({ turns: z.number(), cost_usd: z.number(), sessions: z.object({ total: z.number() }) })
      .parse((await fresh.get(`/users/${ALICE}/stats?${q}`)).json);
    expect(strangers).toEqual({ turns: 0, cost_usd: 0, sessions: { total: 0 } });
    expect(UsageOf.parse((await fresh.get(`/stats/usage?${q}`)).json).rows).toEqual([]);
    const global = z
      .object({ turns: z.number(), users: z.number(), sessions: z.object({ total: z.number() }) })
      .parse((await fresh.get(`/sessions/stats?${q}`)).json);
    expect(global).toEqual({ turns: 0, users: 0, sessions: { total: 0 } });
    problemOf(await fresh.get(`/sessions/${sessionA}/stats?${q}`), 404);
  });

  it('POST /sessions/cleanup: 403 for a service key and a user token, 200 for an admin key', async () => {
    const before = await eventCount();
    expect(problemOf(await service.post('/sessions/cleanup'), 403).code).toBe('REQUEST.FORBIDDEN');
    expect(problemOf(await alice.post('/sessions/cleanup'), 403).code).toBe('REQUEST.FORBIDDEN');
    expect(await eventCount()).toBe(before);
    expect((await admin.post('/sessions/cleanup')).status).toBe(200);
  });
});

describe('creating under an id someone else holds', () => {
  const problemParts = (reply: Reply, status: number) => {
    const { code, title, detail } = problemOf(reply, status);
    return { code, title, detail };
  };
  const TurnId = z.object({ turn_id: z.string() });

  it("a user token gets the 404 a read of another user's session id gives it, never a 409", async () => {
    const tenantEvents = await eventCount('tenant_id = $1', [stack.tenantId]);
    const before = await aliceSnapshot();
    const created = await bob.post('/sessions', { session_id: sessionA, title: 'mine now' });
    expect(problemParts(created, 404)).toEqual(problemParts(await bob.get(`/sessions/${sessionA}`), 404));
    expect(created.text).not.toContain(marker);
    // Also with an idempotency key, and naming himself explicitly: the same 404, nothing appended.
    const again = await bob.post(
      '/sessions',
      { session_id: sessionA, user_id: BOB },
      { headers: { 'idempotency-key': `probe-${randomBytes(4).toString('hex')}` } },
    );
    expect(problemParts(again, 404).code).toBe('SESSION.NOT_FOUND');
    expect(await eventCount('tenant_id = $1', [stack.tenantId])).toBe(tenantEvents);
    expect(await aliceSnapshot()).toEqual(before);

    // API keys see the whole tenant: the 409 tells them nothing new. alice holds the id: 409 too.
    expect(problemOf(await service.post('/sessions', { session_id: sessionA }), 409).code).toBe(
      'SESSION.ALREADY_EXISTS',
    );
    expect(problemOf(await alice.post('/sessions', { session_id: sessionA }), 409).code).toBe(
      'SESSION.ALREADY_EXISTS',
    );
    // A free id is bob's to take (201), then his own: 409.
    const bobsId = `bob-${randomBytes(6).toString('hex')}`;
    expect(sessionOf(await bob.post('/sessions', { session_id: bobsId }), 201).user_id).toBe(BOB);
    expect(problemOf(await bob.post('/sessions', { session_id: bobsId }), 409).code).toBe(
      'SESSION.ALREADY_EXISTS',
    );
  });

  it('an id of a deleted session is 404 for a user token (as GET answers), 409 for a key', async () => {
    const gone = sessionOf(await alice.post('/sessions', { title: 'to delete' }), 201).session_id;
    expect((await alice.delete(`/sessions/${gone}`)).status).toBe(204);
    const retry = await alice.post('/sessions', { session_id: gone });
    expect(problemParts(retry, 404)).toEqual(problemParts(await alice.get(`/sessions/${gone}`), 404));
    expect(problemOf(await service.post('/sessions', { session_id: gone }), 409).code).toBe(
      'SESSION.ALREADY_EXISTS',
    );
  });

  it("a turn_id of another user's turn is the 404 GET /turns gives the token", async () => {
    const bobsSession = sessionOf(await bob.post('/sessions', { title: 'bob' }), 201).session_id;
    const tenantEvents = await eventCount('tenant_id = $1', [stack.tenantId]);
    const stolen = await bob.post(`/sessions/${bobsSession}/turns`, { turn_id: turnA, user_input: 'mine' });
    expect(problemParts(stolen, 404)).toEqual(problemParts(await bob.get(`/turns/${turnA}`), 404));
    expect(await eventCount('tenant_id = $1', [stack.tenantId])).toBe(tenantEvents);

    // bob's own turn id: 409 in his session; in alice's session, her session's 404 comes first.
    const own = TurnId.parse(
      (await bob.post(`/sessions/${bobsSession}/turns`, { user_input: 'hello' })).json,
    ).turn_id;
    expect(
      problemOf(await bob.post(`/sessions/${bobsSession}/turns`, { turn_id: own, user_input: 'x' }), 409)
        .code,
    ).toBe('TURN.ALREADY_EXISTS');
    const intoAlice = await bob.post(`/sessions/${sessionA}/turns`, { turn_id: own, user_input: 'x' });
    expect(problemParts(intoAlice, 404)).toEqual(problemParts(await bob.get(`/sessions/${sessionA}`), 404));

    // alice reusing her own turn id, and the service key: 409.
    const alicesOther = sessionOf(await alice.post('/sessions', { title: 'second' }), 201).session_id;
    expect(
      problemOf(await alice.post(`/sessions/${alicesOther}/turns`, { turn_id: turnA, user_input: 'x' }), 409)
        .code,
    ).toBe('TURN.ALREADY_EXISTS');
    expect(
      problemOf(
        await service.post(`/sessions/${bobsSession}/turns`, { turn_id: turnA, user_input: 'x' }),
        409,
      ).code,
    ).toBe('TURN.ALREADY_EXISTS');
  });

  it('another tenant has its own id space: the same session and turn ids are free there', async () => {
    const id = sessionOf(await alice.post('/sessions', { title: marker }), 201).session_id;
    const theirs = sessionOf(await otherTenant.post('/sessions', { session_id: id, user_id: 'carol' }), 201);
    expect(theirs).toMatchObject({ session_id: id, user_id: 'carol' });
    expect(theirs.title).not.toBe(marker);
    const turn = await otherTenant.post(`/sessions/${id}/turns`, { turn_id: turnA, user_input: 'theirs' });
    expect(turn.status).toBe(201);
    expect(turn.text).not.toContain(marker);
    expect(sessionOf(await alice.get(`/sessions/${id}`), 200).title).toBe(marker);
  });
});

describe('user tokens', () => {
  it("see and change only their user's sessions and turns", async () => {
    const own = sessionOf(await alice.post('/sessions', { title: 'mine' }), 201);
    expect(own.user_id).toBe(ALICE);
    expect(sessionOf(await alice.get(`/sessions/${sessionA}`), 200).title).toBe(marker);
    expect((await alice.post(`/sessions/${own.session_id}/turns`, { user_input: 'hello' })).status).toBe(201);
    const mine = pageOf(await alice.get(`/users/${ALICE}/sessions?limit=200`));
    expect(mine.sessions.map((s) => s.session_id)).toEqual(
      expect.arrayContaining([sessionA, own.session_id]),
    );
    const bobs = pageOf(await bob.get(`/users/${BOB}/sessions?limit=200`));
    expect(bobs.sessions.map((s) => s.session_id)).not.toContain(sessionA);
    const asked = await alice.post('/query', { query: 'who am I?' });
    expect(asked.status).toBe(200);
    const threadId = z.object({ thread_id: z.string() }).parse(asked.json).thread_id;
    expect(sessionOf(await service.get(`/sessions/${threadId}`), 200).user_id).toBe(ALICE);
    // bob cannot see what alice just made either.
    problemOf(await bob.get(`/sessions/${own.session_id}`), 404);
  });

  it('cannot mint tokens or use admin routes; service keys cannot use admin routes', async () => {
    expect(problemOf(await alice.post('/auth/user-tokens', { user_id: ALICE }), 403).code).toBe(
      'REQUEST.FORBIDDEN',
    );
    expect(problemOf(await service.get('/sessions'), 403).code).toBe('REQUEST.FORBIDDEN');
    expect((await admin.get('/sessions')).status).toBe(200);
  });

  it('minting validates its body', async () => {
    for (const body of [
      {},
      { user_id: 'a b' },
      { user_id: ALICE, ttl_seconds: 0 },
      { user_id: ALICE, ttl_seconds: 86_401 },
      { user_id: ALICE, extra: 1 },
    ]) {
      expect(problemOf(await service.post('/auth/user-tokens', body), 400).code).toBe('REQUEST.INVALID');
    }
  });
});

describe('rate limits', () => {
  it('429 with Retry-After past the per-key limit; a refused request appends nothing', async () => {
    const limit = 3;
    const limited = admin.as(
      (await stack.createKey({ tenantId: 'limited', role: 'service', rateLimit: limit })).key,
    );
    const limitedAdmin = admin.as((await stack.createKey({ tenantId: 'limited', role: 'admin' })).key);
    const before = await eventCount('tenant_id = $1', ['limited']);
    // 2*limit+1 requests within at most two windows: at least one window is over the limit.
    const replies: Reply[] = [];
    for (let i = 0; i < 2 * limit + 1; i += 1)
      replies.push(await limited.post('/sessions', { user_id: 'u1' }));
    const refused = replies.filter((r) => r.status === 429);
    const created = replies.filter((r) => r.status === 201);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(created.length + refused.length).toBe(replies.length);
    for (const reply of refused) {
      expect(problemOf(reply, 429).code).toBe('REQUEST.RATE_LIMITED');
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    const sessions = pageOf(await limitedAdmin.get('/sessions?limit=200&status=all'));
    expect(sessions.sessions).toHaveLength(created.length);
    expect(await eventCount('tenant_id = $1', ['limited'])).toBe(before + created.length);
  }, 60_000);
});
