import fc from 'fast-check';
import { z } from 'zod';
import { GatewayClient } from './http';
import { sleep } from './load';
import { type ChaosStack, TENANT } from './stack';

/**
 * The hostile-input volume mode (issue 20): the generators of apps/gateway-e2e's
 * hostile-input.e2e-spec.ts (wrong types, huge strings, deep JSON, NUL bytes and lone surrogates, SQL
 * and JSON-injection strings, duplicate and unknown keys, malformed JSON, bad headers and ids), plus
 * bodies at and just over the size limits, sent `count` times across every route through both
 * gateways. Each request carries `X-Correlation-Id: h-<n>`, which every event it appends keeps in its
 * metadata, so the appends of each answer are counted afterwards in the store: 0 answers 5xx, a 4xx
 * appended nothing, and every instance is still up and healthy.
 */

const SQL = [
  `'; DROP TABLE sessions; --`,
  `" OR 1=1 --`,
  `'); DELETE FROM events WHERE ('1'='1`,
  `$1`,
  `\\x00'::jsonb`,
  `%' AND pg_sleep(5) --`,
  `{"$ne": null}`,
  `__proto__`,
  `constructor`,
  `../../etc/passwd`,
  `\u202Eevil`,
  `\uD800`,
  `\uDFFF`,
  `a\u0000b`,
  `\uFEFF\u200B`,
  `👩‍👩‍👧‍👦`,
];

const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...SQL),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer({ min: 129, max: 300_000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom('', ' ', '\n', '\t', 'null', 'true', '0', '-1', 'NaN', '\u0000'),
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

/** JSON nested `depth` levels deep. */
const deepJson = fc
  .tuple(fc.integer({ min: 9, max: 20_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

/** A huge array: many elements where a few are allowed. */
const hugeArray = fc
  .tuple(fc.integer({ min: 51, max: 100_000 }), fc.constantFrom('0', '{}', '"x"', 'null', '[]'))
  .map(([n, item]) => `[${Array<string>(n).fill(item).join(',')}]`);

/** A raw body: a mutated valid body, hostile JSON, deep JSON, a huge array, duplicate keys, or not JSON. */
function bodies(valid: Record<string, unknown>): fc.Arbitrary<string> {
  const fields = Object.keys(valid);
  const mutated = fc
    .tuple(fc.constantFrom(...fields, 'unknown_field', 'metadata', 'user_id'), hostileJson)
    .map(([field, value]) => JSON.stringify({ ...valid, [field]: value }));
  const nested = fc
    .tuple(fc.constantFrom(...fields), fc.oneof(deepJson, hugeArray))
    .map(([field, inner]) => JSON.stringify({ ...valid, [field]: '\u0001' }).replace('"\\u0001"', inner));
  const duplicate = fc
    .tuple(fc.constantFrom(...fields), hostileJson)
    .map(
      ([field, value]) =>
        `{${JSON.stringify(field)}:${JSON.stringify(value) ?? 'null'},${JSON.stringify(valid).slice(1)}`,
    );
  return fc.oneof(
    { arbitrary: mutated, weight: 4 },
    { arbitrary: hostileJson.map((v) => JSON.stringify(v) ?? 'null'), weight: 2 },
    { arbitrary: deepJson, weight: 1 },
    { arbitrary: nested, weight: 2 },
    { arbitrary: duplicate, weight: 2 },
    {
      arbitrary: fc.constantFrom(
        '{',
        '{"a":}',
        '[1,2',
        '\u0000',
        'null',
        '"s"',
        '{"__proto__":{"admin":true}}',
        '',
      ),
      weight: 1,
    },
  );
}

/**
 * Bodies at and just over the limits: 100,000-character texts, 50 responses, a 1 MiB body, and a valid
 * turn of ~1,000,000 bytes (50 responses of 19,800 characters) whose event would exceed NATS's
 * 1 MiB max_payload (it must be refused with 413 before anything is appended, or carried).
 */
const nearLimits: fc.Arbitrary<string> = fc.oneof(
  fc.constant(
    JSON.stringify({
      user_input: 'q',
      agent_responses: Array.from({ length: 50 }, (_, i) => ({
        agent_name: `a${i}`,
        response: 'w'.repeat(19_800),
      })),
    }),
  ),
  fc.constantFrom(100_000, 100_001).map((n) => JSON.stringify({ user_input: 'y'.repeat(n) })),
  fc.constantFrom(50, 51).map((n) =>
    JSON.stringify({
      user_input: 'q',
      agent_responses: Array.from({ length: n }, () => ({ agent_name: 'a', response: 'r'.repeat(2000) })),
    }),
  ),
  fc.constantFrom(1_048_576 - 64, 1_048_576 + 1).map((size) => {
    const head = '{"user_input":"';
    return head + 'z'.repeat(Math.max(0, size - head.length - 2)) + '"}';
  }),
);

/** Every UTF-8 byte of `text` percent-encoded (a lone surrogate becomes U+FFFD's bytes). */
const percentEncode = (text: string): string =>
  [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

const pathSegment = fc.oneof(
  hostileString.map((s) => s.slice(0, 2000)),
  fc.constantFrom('..', '%2e%2e', '%00', '%', '?x=1', '#', '%ZZ', '%C0%AF', '%ED%A0%80'),
);

/** One generated request. `tagged`: it carries our correlation id (false when that header is the hostile one). */
interface HostileRequest {
  method: string;
  path: string;
  body?: string;
  headers: Record<string, string>;
  tagged: boolean;
}

function requests(target: string, openTurn: string): fc.Arbitrary<HostileRequest> {
  const writes: [string, string, Record<string, unknown>][] = [
    ['POST', '/sessions', { user_id: 'h-u1', title: 't', metadata: { a: 1 } }],
    ['PATCH', `/sessions/${target}`, { title: 't', metadata: { a: 1 } }],
    ['POST', '/users/h-u2/sessions/current', { title: 't', metadata: {} }],
    ['POST', `/sessions/${target}/turns`, { user_input: 'q', status: 'in_progress', tool_calls: [] }],
    ['POST', `/turns/${openTurn}/responses`, { tool_call: { name: 'x', request: {}, status: 'pending' } }],
    ['POST', `/turns/${openTurn}/fail`, { error: 'e' }],
    ['POST', `/turns/${openTurn}/complete`, { processing_time_ms: 1 }],
    ['PATCH', `/sessions/${target}/state`, { state: { a: 1 } }],
    ['PUT', `/sessions/${target}/tool-calls/x`, { status: 'completed' }],
    ['POST', '/query', { query: 'q', thread_id: target, user_id: 'h-target', parameters: {} }],
    ['POST', '/auth/user-tokens', { user_id: 'h-u1', ttl_seconds: 60 }],
  ];
  const body = fc
    .tuple(fc.constantFrom(...writes), fc.integer({ min: 0, max: 999 }))
    .chain(([[method, path, valid], roll]) =>
      // 1 body in 200 is one of the near-limit turns (each up to ~1 MB: kept rare to bound the run).
      roll < 5
        ? nearLimits.map((raw): HostileRequest => ({
            method: 'POST',
            path: `/sessions/${target}/turns`,
            body: raw,
            headers: {},
            tagged: true,
          }))
        : bodies(valid).map((raw): HostileRequest => ({
            method,
            path,
            body: raw,
            headers: {},
            tagged: true,
          })),
    );
  const routes = (id: string): [string, string][] => [
    ['GET', `/sessions/${id}`],
    ['HEAD', `/sessions/${id}`],
    ['DELETE', `/sessions/${id}`],
    ['POST', `/sessions/${id}/end`],
    ['GET', `/sessions/${id}/turns`],
    ['GET', `/sessions/${id}/state`],
    ['GET', `/sessions/${id}/history`],
    ['GET', `/sessions/${id}/stats`],
    ['GET', `/turns/${id}`],
    ['DELETE', `/turns/${id}`],
    ['POST', `/turns/${id}/complete`],
    ['GET', `/users/${id}/sessions`],
    ['GET', `/users/${id}/sessions/current`],
    ['GET', `/users/${id}/turns`],
    ['GET', `/users/${id}/stats`],
    ['DELETE', `/users/${id}`],
  ];
  const path = fc.tuple(pathSegment, fc.integer({ min: 0, max: 15 })).map(([segment, i]): HostileRequest => {
    const [method, p] = routes(percentEncode(segment))[i]!;
    return { method, path: p, headers: {}, tagged: true, ...(method === 'POST' ? { body: '{}' } : {}) };
  });
  const params = fc.dictionary(
    fc.oneof(
      fc.constantFrom(
        'limit',
        'cursor',
        'status',
        'order',
        'q',
        'last',
        'min_position',
        'metadata.k',
        'metadata.__proto__',
      ),
      hostileKey,
    ),
    hostileString.map((s) => s.slice(0, 5000)),
    { maxKeys: 4 },
  );
  const query = fc
    .tuple(
      params,
      fc.constantFrom(
        '/sessions',
        '/users/h-u1/sessions',
        '/users/h-u1/turns',
        `/sessions/${target}/turns`,
        '/sessions/stats',
        '/stats/usage',
      ),
    )
    .map(([q, p]): HostileRequest => ({
      method: 'GET',
      path: `${p}?${new URLSearchParams(q).toString()}`,
      headers: {},
      tagged: true,
    }));
  const headerValue = hostileString.filter((s) => /^[\t\x20-\x7e\x80-\xff]*$/.test(s) && s.length < 8000);
  const header = fc
    .tuple(
      fc.constantFrom('idempotency-key', 'if-match', 'x-correlation-id', 'authorization', 'content-type'),
      headerValue,
    )
    .map(([name, value]): HostileRequest => ({
      method: 'PATCH',
      path: `/sessions/${target}`,
      body: '{"title":"t"}',
      headers: { [name]: value },
      tagged: name !== 'x-correlation-id',
    }));
  return fc.oneof(
    { arbitrary: body, weight: 5 },
    { arbitrary: path, weight: 3 },
    { arbitrary: query, weight: 1 },
    { arbitrary: header, weight: 1 },
  );
}

export interface HostileResult {
  /** Requests sent; fewer than `asked` when the run hit its time limit. */
  requests: number;
  asked: number;
  /** Requests Node's HTTP client refused to send (invalid header characters): not counted as answers. */
  unsendable: number;
  noAnswer: number;
  statuses: Record<string, number>;
  fiveXx: number;
  /** 4xx answers whose correlation id appended events. */
  fourXxThatAppended: number;
  /** Events appended by requests whose correlation header was the hostile one, and their 2xx answers. */
  untaggedAppends: number;
  untagged2xx: number;
  crashed: string[];
  /** The last 3,000 characters each instance wrote (its warnings and errors). */
  serviceLogs: string[];
  seconds: number;
  seed: number;
  examples: string[];
  pass: boolean;
}

const CorrelationCount = z.object({ correlation_id: z.string(), n: z.coerce.number() });

/** Sends `count` generated hostile requests (`concurrency` at a time, alternating gateways); see the module docstring. */
export async function runHostile(
  stack: ChaosStack,
  opts: {
    count: number;
    concurrency: number;
    seed: number;
    /** Stop after the batch in flight once this many seconds passed (the result says how many were sent). */
    maxSeconds: number;
    log: (line: string) => void;
  },
): Promise<HostileResult> {
  const [admin] = stack.gatewayUrls.map((u) => new GatewayClient(u, stack.apiKey, 2, 30_000));
  const created = z
    .object({ session_id: z.string() })
    .parse(
      JSON.parse(
        (await admin!.send('POST', '/sessions', JSON.stringify({ user_id: 'h-target', title: 'target' })))
          .body,
      ),
    );
  const target = created.session_id;
  const open = z
    .object({ turn_id: z.string() })
    .parse(
      JSON.parse(
        (
          await admin!.send(
            'POST',
            `/sessions/${target}/turns`,
            JSON.stringify({ user_input: 'open', status: 'in_progress' }),
          )
        ).body,
      ),
    );
  admin!.close();
  const [headRow] = await stack.db.query<{ p: string | null }>(
    'SELECT max(global_position)::text AS p FROM events',
  );
  const floor = Number(headRow?.p ?? 0);
  const clients = stack.gatewayUrls.map((u) => new GatewayClient(u, stack.apiKey, opts.concurrency, 30_000));
  const arb = requests(target, open.turn_id);
  const result: HostileResult = {
    requests: 0,
    asked: opts.count,
    unsendable: 0,
    noAnswer: 0,
    statuses: {},
    fiveXx: 0,
    fourXxThatAppended: 0,
    untaggedAppends: 0,
    untagged2xx: 0,
    crashed: [],
    serviceLogs: [],
    seconds: 0,
    seed: opts.seed,
    examples: [],
    pass: false,
  };
  const fourXx = new Set<string>();
  const started = Date.now();
  let n = 0;
  let lastLog = started;
  const CHUNK = 500;
  for (let chunk = 0; n < opts.count && Date.now() - started < opts.maxSeconds * 1000; chunk++) {
    const batch = fc.sample(arb, { numRuns: Math.min(CHUNK, opts.count - n), seed: opts.seed + chunk });
    let next = 0;
    const worker = async (w: number) => {
      for (;;) {
        const i = next++;
        const req = batch[i];
        if (req === undefined) return;
        const id = `h-${n + i}`;
        const headers = req.tagged ? { 'x-correlation-id': id, ...req.headers } : req.headers;
        try {
          const answer = await clients[(w + i) % clients.length]!.send(
            req.method,
            req.path,
            req.body,
            headers,
          );
          result.statuses[answer.status] = (result.statuses[answer.status] ?? 0) + 1;
          if (answer.status >= 500) {
            result.fiveXx++;
            const seen = result.examples.filter((e) => e.includes(` -> ${answer.status} `)).length;
            if (seen < 6)
              result.examples.push(
                `${req.method} ${req.path.slice(0, 120)} -> ${answer.status} ${answer.body.slice(0, 160)}; headers ${JSON.stringify(req.headers).slice(0, 120)}; body (${req.body?.length ?? 0} chars) ${(req.body ?? '').slice(0, 240)}`,
              );
          } else if (answer.status >= 400 && req.tagged) fourXx.add(id);
          else if (answer.status < 300 && !req.tagged) result.untagged2xx++;
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          if (typeof code === 'string' && code.startsWith('ERR_')) result.unsendable++;
          else {
            result.noAnswer++;
            if (result.examples.length < 10)
              result.examples.push(`${req.method} ${req.path.slice(0, 120)}: no answer (${String(error)})`);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
    n += batch.length;
    result.requests = n;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      opts.log(`hostile: ${n}/${opts.count} sent, ${result.fiveXx} 5xx, ${result.noAnswer} without answer`);
    }
  }
  for (const c of clients) c.close();
  result.seconds = (Date.now() - started) / 1000;
  // Appends come from the relay-independent store: wait for nothing, they committed before the answer.
  await sleep(500);
  const rows = (
    await stack.db.query(
      `SELECT coalesce(metadata->>'correlationId', '') AS correlation_id, count(*) AS n
         FROM events WHERE global_position > $1 AND tenant_id = $2 GROUP BY 1`,
      [floor, TENANT],
    )
  ).map((r) => CorrelationCount.parse(r));
  for (const r of rows) {
    if (fourXx.has(r.correlation_id)) {
      result.fourXxThatAppended++;
      if (result.examples.length < 10)
        result.examples.push(`${r.correlation_id}: a 4xx that appended ${r.n} events`);
    } else if (!/^h-\d+$/.test(r.correlation_id)) result.untaggedAppends += r.n;
  }
  // What the services logged (warn and above): the causes of any 5xx.
  result.serviceLogs = stack.instances
    .map((i) => `${i.name}#${i.slot}: ${stack.tail(i, 3000)}`)
    .filter((l) => !l.endsWith(': '));
  result.crashed = stack.crashed().map((i) => `${i.name}#${i.slot}: ${stack.tail(i, 600)}`);
  try {
    await stack.waitReady(Date.now() + 30_000);
  } catch (error) {
    result.crashed.push(`not healthy after the run: ${String(error)}`);
  }
  // A PATCH appends at most two events (title, metadata): untagged appends beyond that are a 4xx's.
  result.pass =
    result.fiveXx === 0 &&
    result.noAnswer === 0 &&
    result.fourXxThatAppended === 0 &&
    result.untaggedAppends <= 2 * result.untagged2xx &&
    result.crashed.length === 0;
  return result;
}
