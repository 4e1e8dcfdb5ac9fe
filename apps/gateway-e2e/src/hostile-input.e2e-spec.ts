import fc from 'fast-check';
import { z } from 'zod';
import { eventually } from '@threadline/testing';
import { Api, pageOf, type Reply, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

/**
 * Issue 7, hostile input proven harmless: fast-check sends generated hostile input (wrong types, huge
 * strings, deep JSON, unicode edge cases, SQL and JSON-injection strings, duplicate and unknown
 * fields, malformed JSON, bad headers) to every endpoint. Never a 5xx; a 4xx appends no event
 * (counted in the database); another session (the canary) never changes. Then the parameterized-SQL
 * proof: SQL in titles, metadata keys and values, filters, turn inputs and searches is stored and
 * returned verbatim.
 */

/** Runs per endpoint: enough variety, bounded time (the stack is shared with other suites' machines). */
const RUNS = 12;

let stack: Stack;
let api: Api;
let target: string;
let openTurn: string;
let canary: { session: unknown; turns: unknown };
let canaryId: string;

const SQL = [
  `'; DROP TABLE sessions; --`,
  `" OR 1=1 --`,
  `1' OR '1'='1`,
  `'); DELETE FROM events WHERE ('1'='1`,
  `$1`,
  `\\x00'::jsonb`,
  `%' AND pg_sleep(5) --`,
  `' UNION SELECT key_hash FROM api_keys --`,
  `{"$ne": null}`,
  `{"$where": "sleep(100)"}`,
  `__proto__`,
  `constructor`,
  `../../etc/passwd`,
  `<script>alert(1)</script>`,
  `\u202Eevil`,
  `\uD800`,
  `\uFEFF\u200B`,
  `👩‍👩‍👧‍👦`,
  `Ω≈ç√∫`,
];

const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...SQL),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer({ min: 129, max: 300_000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom('', ' ', '\n', '\t', 'null', 'true', '0', '-1', 'NaN'),
);

const hostileKey = fc.oneof(
  fc.constantFrom(...SQL, '__proto__', 'constructor', 'prototype', ''),
  fc.string({ maxLength: 10 }),
);

const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.constantFrom(0, -0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.1, true, false, null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** JSON nested `depth` levels deep (arrays or objects). */
const deepJson = fc
  .tuple(fc.integer({ min: 9, max: 20_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

/** A raw body: JSON of a mutated valid body, hostile JSON, deep JSON, duplicate keys, or not JSON. */
function bodies(valid: Record<string, unknown>): fc.Arbitrary<string> {
  const fields = Object.keys(valid);
  const mutated = fc
    .tuple(fc.constantFrom(...fields, 'unknown_field', 'metadata', 'user_id'), hostileJson)
    .map(([field, value]) => JSON.stringify({ ...valid, [field]: value }));
  const nested = fc.tuple(fc.constantFrom(...fields), deepJson).map(([field, deep]) =>
    JSON.stringify({ ...valid, [field]: 0 })
      .replace('0}', `${deep}}`)
      .replace(`:0,`, `:${deep},`),
  );
  const duplicate = fc
    .tuple(fc.constantFrom(...fields), hostileJson)
    .map(
      ([field, value]) =>
        `{${JSON.stringify(field)}:${JSON.stringify(value) ?? 'null'},${JSON.stringify(valid).slice(1)}`,
    );
  return fc.oneof(
    mutated,
    hostileJson.map((v) => JSON.stringify(v) ?? 'null'),
    deepJson,
    nested,
    duplicate,
    fc.constantFrom('{', '{"a":}', '[1,2', '\u0000', 'null', '"string"', '{"__proto__":{"admin":true}}', ''),
  );
}

// URLs stay under Node's 16 KiB header limit (longer ones are refused by the HTTP parser itself).
/**
 * Every UTF-8 byte of `text` percent-encoded. Unlike encodeURIComponent it never throws: a lone
 * surrogate (which fast-check does generate) becomes U+FFFD's bytes and is still sent.
 */
const percentEncode = (text: string): string =>
  [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

const pathSegment = fc.oneof(
  hostileString.map((s) => s.slice(0, 2000)),
  fc.constantFrom('..', '%2e%2e', '%00', '%', '?x=1', '#'),
);

async function eventCount(): Promise<number> {
  const [row] = await stack.database.db.query<{ n: string }>('SELECT count(*)::text AS n FROM events');
  return Number(row?.n);
}

async function canarySnapshot(): Promise<{ session: unknown; turns: unknown }> {
  const session = sessionOf(await api.get(`/sessions/${canaryId}`), 200);
  const turns = (await api.get(`/sessions/${canaryId}/turns?limit=200`)).json;
  return { session, turns };
}

beforeAll(async () => {
  stack = await startStack();
  api = new Api(stack.baseUrl);
  canaryId = sessionOf(
    await api.post('/sessions', { user_id: 'canary', title: 'canary', metadata: { n: 1 } }),
    201,
  ).session_id;
  await api.post(`/sessions/${canaryId}/turns`, { user_input: 'canary turn' });
  // The session's turn count follows its turns asynchronously: snapshot once it has.
  canary = await eventually(async () => {
    const snapshot = await canarySnapshot();
    return z.object({ turn_count: z.literal(1) }).safeParse(snapshot.session).success ? snapshot : undefined;
  });
  target = sessionOf(await api.post('/sessions', { user_id: 'target', title: 'target' }), 201).session_id;
  const open = await api.post(`/sessions/${target}/turns`, { user_input: 'open', status: 'in_progress' });
  openTurn = z.object({ turn_id: z.string() }).parse(open.json).turn_id;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/**
 * Sends one request and checks the invariants: no 5xx, and a 4xx appended nothing. Returns the
 * reply; throws (failing the property, which fast-check then shrinks) when an invariant breaks.
 */
async function harmless(
  method: string,
  path: string,
  init: { raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const before = await eventCount();
  let reply: Reply;
  try {
    reply = await api.request(method, path, init);
  } catch (error) {
    throw new Error(`${method} ${path}: no answer (${String(error)})`);
  }
  if (reply.status >= 500)
    throw new Error(`${method} ${path} -> ${reply.status} ${reply.text.slice(0, 300)}`);
  // Echoes of the client's own input are fine; stack frames, SQL errors and keys are not.
  const internals =
    /\bat \S+ \(.*\.(js|ts):\d+|node_modules|syntax error at or near|relation "|violates .* constraint|duplicate key value/;
  if (reply.status >= 400 && (internals.test(reply.text) || reply.text.includes(stack.adminKey.key)))
    throw new Error(`${method} ${path}: the error body leaks internals: ${reply.text.slice(0, 300)}`);
  if (reply.status >= 400) {
    const after = await eventCount();
    if (after !== before)
      throw new Error(`${method} ${path} -> ${reply.status} but appended ${after - before} event(s)`);
  }
  return reply;
}

const property = <T>(arb: fc.Arbitrary<T>, check: (value: T) => Promise<unknown>) =>
  fc.assert(
    fc.asyncProperty(arb, async (value) => {
      await check(value);
    }),
    { numRuns: RUNS, endOnFailure: true },
  );

describe('hostile input to every endpoint: never a 5xx, a 4xx appends nothing', () => {
  const writes: [string, string, () => string, Record<string, unknown>][] = [
    ['POST', '/sessions', () => '/sessions', { user_id: 'u1', title: 't', metadata: { a: 1 } }],
    ['PATCH', '/sessions/{target}', () => `/sessions/${target}`, { title: 't', metadata: { a: 1 } }],
    [
      'POST',
      '/users/{user_id}/sessions/current',
      () => '/users/u2/sessions/current',
      { title: 't', metadata: {} },
    ],
    [
      'POST',
      '/sessions/{target}/turns',
      () => `/sessions/${target}/turns`,
      { user_input: 'q', status: 'in_progress', tool_calls: [] },
    ],
    [
      'POST',
      '/turns/{open}/responses',
      () => `/turns/${openTurn}/responses`,
      { tool_call: { name: 'x', request: {}, status: 'pending' } },
    ],
    ['POST', '/turns/{open}/fail', () => `/turns/${openTurn}/fail`, { error: 'e' }],
    ['POST', '/query', () => '/query', { query: 'q', thread_id: target, user_id: 'target', parameters: {} }],
    ['POST', '/auth/user-tokens', () => '/auth/user-tokens', { user_id: 'u1', ttl_seconds: 60 }],
  ];
  it.each(writes)(
    '%s %s with hostile bodies',
    async (method, _name, path, valid) => {
      await property(bodies(valid), (raw) => harmless(method, path(), { raw }));
    },
    120_000,
  );

  it('hostile path parameters on every route', async () => {
    const routes = (id: string) =>
      [
        ['GET', `/sessions/${id}`],
        ['HEAD', `/sessions/${id}`],
        ['DELETE', `/sessions/${id}`],
        ['POST', `/sessions/${id}/end`],
        ['GET', `/sessions/${id}/turns`],
        ['GET', `/turns/${id}`],
        ['DELETE', `/turns/${id}`],
        ['POST', `/turns/${id}/complete`],
        ['GET', `/users/${id}/sessions`],
        ['GET', `/users/${id}/sessions/current`],
        ['GET', `/users/${id}/turns`],
      ] as const;
    await property(pathSegment, async (segment) => {
      for (const [method, path] of routes(percentEncode(segment)))
        await harmless(method, path, method === 'POST' ? { raw: '{}' } : {});
    });
  }, 120_000);

  it('hostile query strings on the list and search routes', async () => {
    const params = fc.dictionary(
      fc.oneof(
        fc.constantFrom(
          'limit',
          'cursor',
          'status',
          'sort',
          'order',
          'q',
          'user_input',
          'last',
          'metadata.k',
          'metadata.__proto__',
        ),
        hostileKey,
      ),
      hostileString.map((s) => s.slice(0, 5000)),
      { maxKeys: 4 },
    );
    await property(params, async (query) => {
      const qs = new URLSearchParams(query).toString();
      for (const path of ['/sessions', '/users/u1/sessions', '/users/u1/turns', `/sessions/${target}/turns`])
        await harmless('GET', `${path}?${qs}`);
    });
  }, 120_000);

  it('hostile headers: Idempotency-Key, If-Match, X-Correlation-Id, Authorization', async () => {
    const header = hostileString.filter((s) => /^[\t\x20-\x7e\x80-\xff]*$/.test(s) && s.length < 8000);
    await property(
      fc.tuple(fc.constantFrom('idempotency-key', 'if-match', 'x-correlation-id', 'authorization'), header),
      async ([name, value]) => {
        const reply = await harmless('PATCH', `/sessions/${target}`, {
          raw: '{"title":"t"}',
          headers: { [name]: value },
        });
        if (name === 'authorization' && reply.status !== 401)
          throw new Error(`authorization ${JSON.stringify(value)} -> ${reply.status}`);
      },
    );
  }, 120_000);

  afterAll(async () => {
    // Whatever happened to the target, the canary (another user's session) did not change.
    expect(await canarySnapshot()).toEqual(canary);
  });
});

describe('parameterized SQL everywhere: SQL in values is stored and returned verbatim', () => {
  it('titles, metadata keys and values, metadata filters, turn inputs and full-text search', async () => {
    const evil = `'; DROP TABLE sessions; -- " OR 1=1 $1 \\' %`;
    const user = `sql-user-1--OR-1:1`;
    const metadata = { [`k'; DELETE FROM events; --`]: evil, nested: { "a'b": [evil, `$2`] } };
    const created = sessionOf(await api.post('/sessions', { user_id: user, title: evil, metadata }), 201);
    expect(created.title).toBe(evil);
    expect(created.metadata).toEqual(metadata);
    const read = sessionOf(await api.get(`/sessions/${created.session_id}`), 200);
    expect(read.title).toBe(evil);
    expect(read.metadata).toEqual(metadata);

    const filter = new URLSearchParams({ [`metadata.k'; DELETE FROM events; --`]: evil }).toString();
    const found = pageOf(await api.get(`/users/${user}/sessions?${filter}`));
    expect(found.sessions.map((s) => s.session_id)).toEqual([created.session_id]);
    const none = pageOf(
      await api.get(
        `/users/${user}/sessions?${new URLSearchParams({ 'metadata.nested': `' OR '1'='1` }).toString()}`,
      ),
    );
    expect(none.sessions).toEqual([]);

    const input = `${evil} SELECT * FROM api_keys;`;
    const logged = await api.post(`/sessions/${created.session_id}/turns`, { user_input: input });
    expect(logged.status).toBe(201);
    const turns = z.object({ turns: z.array(z.object({ user_input: z.string() })) });
    const exact = turns.parse(
      (await api.get(`/users/${user}/turns?${new URLSearchParams({ user_input: input }).toString()}`)).json,
    );
    expect(exact.turns.map((t) => t.user_input)).toEqual([input]);
    const searched = await api.get(
      `/users/${user}/turns?${new URLSearchParams({ q: `DROP TABLE' OR 1=1 --` }).toString()}`,
    );
    expect(searched.status).toBe(200);

    // The tables the strings name are all still there, with their rows.
    const [counts] = await stack.database.db.query<{ sessions: string; events: string; keys: string }>(
      `SELECT (SELECT count(*) FROM sessions)::text AS sessions, (SELECT count(*) FROM events)::text AS events,
              (SELECT count(*) FROM api_keys)::text AS keys`,
    );
    expect(Number(counts?.sessions)).toBeGreaterThan(0);
    expect(Number(counts?.events)).toBeGreaterThan(0);
    expect(Number(counts?.keys)).toBeGreaterThan(0);
  });
});
