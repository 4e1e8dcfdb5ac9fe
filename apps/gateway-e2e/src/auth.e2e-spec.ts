import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { eventually } from '@threadline/testing';
import { Api, pageOf, problemOf, type Reply, sessionOf } from './http-client';
import { type CreatedKey, type Stack, startStack } from './stack';

/**
 * Issue 7, the access matrix: every endpoint with no key, a bad key, a revoked key, an expired user
 * token and a token of a revoked key is 401 (the operations come from the OpenAPI document, so new
 * endpoints are covered without editing this file); another tenant's key and another user's token
 * get 404 (or only their own, empty data) for everything of alice, and nothing of alice changes.
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

/** alice's world: her session (version and title) and her turns, as the service key sees them. */
async function aliceSnapshot(): Promise<unknown> {
  const session = sessionOf(await service.get(`/sessions/${sessionA}`), 200);
  const turns = await service.get(`/sessions/${sessionA}/turns?limit=200`);
  return {
    session,
    turns: turns.json,
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
  const turn = await service.post(`/sessions/${sessionA}/turns`, { user_input: `${marker} question` });
  turnA = z.object({ turn_id: z.string() }).parse(turn.json).turn_id;
  const open = await service.post(`/sessions/${sessionA}/turns`, {
    user_input: `${marker} open`,
    status: 'in_progress',
  });
  openTurnA = z.object({ turn_id: z.string() }).parse(open.json).turn_id;
}, 120_000);

afterAll(async () => {
  const output = stack?.report();
  await stack?.stop();
  if (output && /exited unexpectedly|ERROR/.test(output)) console.log(output);
});

interface Operation {
  method: string;
  path: string;
}

/** Every operation of the OpenAPI document, with alice's ids in its path parameters. */
async function operations(): Promise<Operation[]> {
  const doc = z
    .object({ paths: z.record(z.string(), z.record(z.string(), z.unknown())) })
    .parse((await admin.get('/docs/json')).json);
  const ids: Record<string, string> = { session_id: sessionA, turn_id: turnA, user_id: ALICE };
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods)
      .filter((m) => ['get', 'head', 'post', 'put', 'patch', 'delete'].includes(m))
      .map((method) => ({
        method: method.toUpperCase(),
        path: path.replace(/\{([^}]+)\}/g, (_all, name: string) => ids[name] ?? 'x1'),
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
    const ops = (await operations()).filter((op) => !op.path.startsWith('/health'));
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
