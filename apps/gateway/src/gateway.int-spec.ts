import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Subscription } from '@nats-io/transport-node';
import {
  createTestNats,
  eventually,
  testDatabaseAdminUrl,
  testNatsUrl,
  type TestNats,
} from '@threadline/testing';
import { pingOf } from '@threadline/contracts';
import { loadGatewayConfig } from './config';
import { createGateway } from './gateway';

// Asymmetric matchers are `any`; typed as unknown so they fit in object literals.
const anyString: unknown = expect.any(String);
const containing = (shape: Record<string, unknown>): unknown => expect.objectContaining(shape);

// Boots the gateway in-process on a random port against the real NATS and Postgres, with no
// service answering: everything here must be decided by the gateway itself.

const BODY_LIMIT = 4096;

let nats: TestNats;
let app: NestFastifyApplication;
let base: string;
let subscription: Subscription;
let healthy: Subscription | undefined;
/** Every command/query subject the gateway sent over NATS, in order. */
const sent: string[] = [];

beforeAll(async () => {
  nats = await createTestNats();
  subscription = nats.nc.subscribe(`${nats.prefix}.>`, {
    callback: (_err, msg) => {
      // Health pings are not the commands or queries under test (see the health test).
      if (!msg.subject.startsWith(`${nats.prefix}.qry.health.`)) sent.push(msg.subject);
    },
  });
  await nats.nc.flush();
  const config = loadGatewayConfig({
    NATS_URL: testNatsUrl(),
    NATS_SUBJECT_PREFIX: nats.prefix,
    NATS_STREAM: nats.stream,
    DATABASE_URL: testDatabaseAdminUrl(),
    HEALTH_SERVICES: 'probe-service',
    REQUEST_TIMEOUT_MS: '300',
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
    LOG_LEVEL: 'silent',
    // Authentication is auth/'s own tests (and the e2e matrix); these test routing and validation.
    AUTH_MODE: 'none',
  });
  app = await createGateway(config);
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = await app.getUrl();
});

afterAll(async () => {
  await app?.close();
  subscription?.unsubscribe();
  healthy?.unsubscribe();
  await nats?.cleanup();
});

/**
 * Answers the ping of 'probe-service' (`pingOf`) as a service's request transport does (NestJS's
 * reply packet), its own Postgres `postgres`.
 */
function answerPing(postgres: 'up' | 'down'): Subscription {
  return nats.nc.subscribe(pingOf('probe-service').subject(nats.prefix), {
    callback: (_err, msg) => {
      const { id } = JSON.parse(msg.string()) as { id: string };
      const response = { service: 'probe-service', uptimeSeconds: 1, postgres };
      msg.respond(JSON.stringify({ id, response, isDisposed: true }));
    },
  });
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { path: string; message: string; in?: string }[];
}

async function call(
  method: string,
  path: string,
  init: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.raw;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  const isJson = /json/.test(response.headers.get('content-type') ?? '');
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: isJson && text ? (JSON.parse(text) as unknown) : undefined,
  };
}

async function problem(method: string, path: string, init: Parameters<typeof call>[2] = {}) {
  const res = await call(method, path, init);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.headers.get('x-correlation-id')).toBeTruthy();
  return { status: res.status, body: res.json as Problem };
}

describe('gateway (no service behind it)', () => {
  it('GET /health is 503 while a service of HEALTH_SERVICES does not answer, or cannot reach its database', async () => {
    const none = await call('GET', '/health');
    expect(none.status).toBe(503);
    expect(none.json).toEqual({
      status: 'down',
      checks: { postgres: 'up', nats: 'up', services: { 'probe-service': 'down' } },
    });
    const failing = answerPing('down');
    await nats.nc.flush();
    try {
      const down = await call('GET', '/health');
      expect(down.status).toBe(503);
      expect(down.json).toMatchObject({ checks: { services: { 'probe-service': 'down' } } });
    } finally {
      failing.unsubscribe();
    }
  });

  it('GET /health reports Postgres, NATS and each service up', async () => {
    healthy = answerPing('up');
    await nats.nc.flush();
    const res = await call('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'ok',
      checks: { postgres: 'up', nats: 'up', services: { 'probe-service': 'up' } },
    });
    expect(res.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a given X-Correlation-Id and rejects an invalid one', async () => {
    const res = await call('GET', '/health', { headers: { 'x-correlation-id': 'req-42' } });
    expect(res.headers.get('x-correlation-id')).toBe('req-42');
    const bad = await problem('GET', '/health', { headers: { 'x-correlation-id': 'has space' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([{ path: 'x-correlation-id', message: anyString, in: 'header' }]);
  });

  it('serves the OpenAPI document with the session routes and their zod-derived schemas', async () => {
    const res = await call('GET', '/docs/json');
    expect(res.status).toBe(200);
    const doc = res.json as {
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: { name: string; in: string; schema?: Record<string, unknown> }[];
            requestBody?: unknown;
            responses: Record<string, unknown>;
          }
        >
      >;
      components: {
        schemas: Record<
          string,
          {
            properties?: Record<string, Record<string, unknown>>;
            additionalProperties?: unknown;
            required?: string[];
          }
        >;
      };
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/sessions',
        '/sessions/{session_id}',
        '/sessions/{session_id}/end',
        '/users/{user_id}/sessions',
        '/users/{user_id}/sessions/current',
        '/health',
      ]),
    );
    expect(Object.keys(doc.paths['/sessions'] ?? {})).toEqual(expect.arrayContaining(['post', 'get']));
    expect(Object.keys(doc.paths['/sessions/{session_id}'] ?? {})).toEqual(
      expect.arrayContaining(['get', 'head', 'patch', 'delete']),
    );

    const create = doc.components.schemas['CreateSessionBodyDto'];
    expect(create?.additionalProperties).toBe(false);
    expect(Object.keys(create?.properties ?? {}).sort()).toEqual([
      'created_from',
      'metadata',
      'session_id',
      'title',
      'user_id',
    ]);
    expect(create?.properties?.['title']).toMatchObject({ type: 'string', maxLength: 255 });
    expect(create?.properties?.['user_id']).toMatchObject({
      type: 'string',
      maxLength: 128,
      pattern: anyString,
    });
    const view = doc.components.schemas['SessionViewDto_Output'];
    expect(view?.required).toEqual(
      expect.arrayContaining(['session_id', 'version', 'status', 'created_from']),
    );
    expect(view?.properties?.['created_from']).toEqual({ type: 'string', nullable: true });
    expect(JSON.stringify(doc)).not.toMatch(/"type":\[/);

    const get = doc.paths['/sessions/{session_id}']?.['get'];
    expect(get?.parameters).toEqual(
      expect.arrayContaining([
        containing({ name: 'session_id', in: 'path', schema: containing({ maxLength: 128 }) }),
      ]),
    );
    const patch = doc.paths['/sessions/{session_id}']?.['patch'];
    expect(patch?.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(
      expect.arrayContaining(['header:If-Match', 'header:Idempotency-Key', 'path:session_id']),
    );
    const list = doc.paths['/users/{user_id}/sessions']?.['get'];
    expect(list?.parameters).toEqual(
      expect.arrayContaining([
        containing({
          name: 'status',
          in: 'query',
          schema: containing({ enum: ['active', 'ended', 'expired', 'all'] }),
        }),
        containing({ name: 'limit', in: 'query' }),
        containing({ name: 'sort', in: 'query' }),
      ]),
    );
    expect(doc.paths['/sessions/{session_id}']?.['patch']?.responses).toHaveProperty('412');

    const ui = await call('GET', '/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger-ui');
    const bundle = await call('GET', '/docs/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
  });

  describe('rejects bad input with a 400 problem before any NATS request', () => {
    it('unknown body fields, each named', async () => {
      const res = await problem('POST', '/sessions', { body: { title: 'ok', colour: 'red', extra: 1 } });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        status: 400,
        code: 'REQUEST.INVALID',
        title: 'Bad Request',
        type: 'urn:threadline:problem:REQUEST.INVALID',
      });
      expect(res.body.errors).toEqual([
        { path: 'colour', message: 'unknown field', in: 'body' },
        { path: 'extra', message: 'unknown field', in: 'body' },
      ]);
    });

    it('each invalid body field', async () => {
      const res = await problem('POST', '/sessions', {
        body: { title: 't'.repeat(256), metadata: 'nope', session_id: 'a b' },
      });
      expect(res.status).toBe(400);
      expect(res.body.errors?.map((e) => e.path).sort()).toEqual(['metadata', 'session_id', 'title']);
    });

    it('malformed JSON and a non-JSON media type', async () => {
      const bad = await problem('POST', '/sessions', {
        raw: '{"title": ',
        headers: { 'content-type': 'application/json' },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('REQUEST.INVALID');
      const media = await problem('POST', '/sessions', {
        raw: 'title=x',
        headers: { 'content-type': 'text/csv' },
      });
      expect(media.status).toBe(415);
      expect(media.body.code).toBe('REQUEST.UNSUPPORTED_MEDIA_TYPE');
    });

    it('a PATCH with neither title nor metadata', async () => {
      const res = await problem('PATCH', '/sessions/s1', { body: {} });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ path: '', message: 'give title or metadata', in: 'body' }]);
    });

    it('invalid path parameters', async () => {
      const chars = await problem('GET', '/sessions/bad%20id');
      expect(chars.status).toBe(400);
      expect(chars.body.errors).toEqual([{ path: 'session_id', message: anyString, in: 'path' }]);
      const long = await problem('DELETE', `/sessions/${'x'.repeat(129)}`);
      expect(long.status).toBe(400);
      const user = await problem('GET', '/users/u%21x/sessions/current');
      expect(user.body.errors?.[0]).toMatchObject({ path: 'user_id', in: 'path' });
    });

    it('invalid headers', async () => {
      const ifMatch = await problem('PATCH', '/sessions/s1', {
        body: { title: 'x' },
        headers: { 'if-match': '*' },
      });
      expect(ifMatch.status).toBe(400);
      expect(ifMatch.body.errors).toEqual([{ path: 'if-match', message: anyString, in: 'header' }]);
      const key = await problem('POST', '/sessions', {
        body: {},
        headers: { 'idempotency-key': 'k'.repeat(201) },
      });
      expect(key.status).toBe(400);
      expect(key.body.errors).toEqual([{ path: 'idempotency-key', message: anyString, in: 'header' }]);
    });

    it('invalid query strings', async () => {
      const limit = await problem('GET', '/users/u1/sessions?limit=0&sort=title');
      expect(limit.status).toBe(400);
      expect(limit.body.errors?.map((e) => e.path).sort()).toEqual(['limit', 'sort']);
      const filter = await problem(
        'GET',
        `/users/u1/sessions?metadata.${'k'.repeat(129)}=v&metadata.ok=1&metadata.ok=2`,
      );
      expect(filter.body.errors?.map((e) => e.path)).toEqual([`metadata.${'k'.repeat(129)}`, 'metadata.ok']);
      const typo = await problem('GET', '/users/u1/sessions?statuss=active');
      expect(typo.body.errors).toEqual([
        { path: 'statuss', message: 'unknown query parameter', in: 'query' },
      ]);
      const operators = await problem('GET', '/sessions?status=open&page=2');
      expect(operators.status).toBe(400);
      expect(operators.body.errors?.map((e) => e.path).sort()).toEqual(['page', 'status']);
    });

    it('413 for a body over BODY_LIMIT_BYTES', async () => {
      const res = await problem('POST', '/sessions', {
        body: { title: 'x', metadata: { blob: 'y'.repeat(BODY_LIMIT) } },
      });
      expect(res.status).toBe(413);
      expect(res.body).toMatchObject({ status: 413, code: 'REQUEST.TOO_LARGE' });
    });

    it('404 problem for an unknown route', async () => {
      const res = await problem('GET', '/nope');
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('ROUTE.NOT_FOUND');
    });

    it('sent none of them over NATS', async () => {
      // A valid request goes out; NATS keeps one publisher's order, so once it arrived, anything
      // the rejected requests had sent would have arrived before it.
      const sentinel = await problem('GET', '/sessions/sentinel');
      expect(sentinel.status).toBe(503);
      await eventually(
        () => Promise.resolve(sent.length > 0 ? true : undefined),
        5000,
        'the sentinel request on NATS',
      );
      expect(sent).toEqual([`${nats.prefix}.qry.session.GetSession`]);
      sent.length = 0;
    });
  });

  it('503 problem when no service answers in REQUEST_TIMEOUT_MS', async () => {
    const started = Date.now();
    const create = await problem('POST', '/sessions', {
      body: { title: 'hello' },
      headers: { 'idempotency-key': 'k1' },
    });
    expect(create.status).toBe(503);
    expect(create.body).toMatchObject({
      status: 503,
      code: 'SERVICE.UNAVAILABLE',
      title: 'Service Unavailable',
    });
    expect(Date.now() - started).toBeLessThan(3000);
    const list = await problem('GET', '/users/u1/sessions?status=active&metadata.color=red');
    expect(list.status).toBe(503);
    const head = await call('HEAD', '/sessions/s1');
    expect(head.status).toBe(503);
    expect(head.text).toBe('');
    await eventually(
      () => Promise.resolve(sent.length >= 3 ? true : undefined),
      5000,
      'three requests on NATS',
    );
    expect(sent).toEqual([
      `${nats.prefix}.cmd.session.CreateSession`,
      `${nats.prefix}.qry.session.ListUserSessions`,
      `${nats.prefix}.qry.session.GetSession`,
    ]);
  });
});
