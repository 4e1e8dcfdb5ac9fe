import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Subscription } from '@nats-io/transport-node';
import {
  createTestNats,
  eventually,
  testDatabaseAdminUrl,
  testNatsUrl,
  type TestNats,
} from '@threadline/testing';
import { loadGatewayConfig } from '../config';
import { createGateway } from '../gateway';

// The turn routes and /query in the gateway itself, on a random port against the real NATS and
// Postgres with no service answering: OpenAPI, and bad input rejected before anything is sent
// over NATS or to the agent backend (a real HTTP server here, counting the requests it gets).

let nats: TestNats;
let app: NestFastifyApplication;
let base: string;
let subscription: Subscription;
let agentServer: Server;
let agentRequests = 0;
const sent: string[] = [];

beforeAll(async () => {
  nats = await createTestNats();
  subscription = nats.nc.subscribe(`${nats.prefix}.>`, {
    callback: (_err, msg) => {
      sent.push(msg.subject);
    },
  });
  await nats.nc.flush();
  agentServer = createServer((_req, res) => {
    agentRequests += 1;
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => agentServer.listen(0, '127.0.0.1', resolve));
  const config = loadGatewayConfig({
    NATS_URL: testNatsUrl(),
    NATS_SUBJECT_PREFIX: nats.prefix,
    NATS_STREAM: nats.stream,
    DATABASE_URL: testDatabaseAdminUrl(),
    REQUEST_TIMEOUT_MS: '300',
    LOG_LEVEL: 'silent',
    // Authentication is auth/'s own tests (and the e2e matrix); these test routing and validation.
    AUTH_MODE: 'none',
    AGENT_BASE_URL: `http://127.0.0.1:${(agentServer.address() as AddressInfo).port}/v1`,
  });
  app = await createGateway(config);
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = await app.getUrl();
});

afterAll(async () => {
  await app?.close();
  subscription?.unsubscribe();
  await nats?.cleanup();
  agentServer?.closeAllConnections();
  await new Promise<void>((resolve) => (agentServer ? agentServer.close(() => resolve()) : resolve()));
});

interface Problem {
  status: number;
  code: string;
  errors?: { path: string; message: string; in?: string }[];
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    json: text ? (JSON.parse(text) as unknown) : undefined,
  };
}

async function problem(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const res = await call(method, path, body, headers);
  expect(res.type).toMatch(/^application\/problem\+json/);
  return res.json as Problem;
}

const paths = (p: Problem) => (p.errors ?? []).map((e) => `${e.in}:${e.path}`).sort();

describe('turn routes and /query in the gateway (no service behind it)', () => {
  it('documents every turn route and /query in OpenAPI, nullable fields as OpenAPI 3.0', async () => {
    const res = await call('GET', '/docs/json');
    const doc = res.json as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>> }> };
    };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(routes).toEqual(
      expect.arrayContaining([
        'post /sessions/{session_id}/turns',
        'get /sessions/{session_id}/turns',
        'get /turns/{turn_id}',
        'delete /turns/{turn_id}',
        'post /turns/{turn_id}/responses',
        'post /turns/{turn_id}/complete',
        'post /turns/{turn_id}/fail',
        'get /users/{user_id}/turns',
        'post /query',
      ]),
    );
    expect(doc.paths['/query']?.['post']?.responses).toHaveProperty('502');
    expect(doc.components.schemas['TurnViewDto_Output']?.properties?.['error']).toEqual({
      type: 'string',
      nullable: true,
    });
    expect(doc.components.schemas['QueryBodyDto']?.properties).toHaveProperty('thread_id');
    expect(doc.components.schemas['AgentFailureProblemDto_Output']?.properties).toHaveProperty('turn_id');
    expect(JSON.stringify(doc)).not.toMatch(/"type":\[/);
  });

  it('rejects bad input on every route with a 400 naming each bad field', async () => {
    const log = await problem('POST', '/sessions/s1/turns', {
      user_input: 'hi',
      status: 'done',
      agent_responses: [{ agent_name: '', response: 'x', usage: { input_tokens: -1 } }],
      colour: 'red',
    });
    expect(log.status).toBe(400);
    expect(paths(log)).toEqual([
      'body:agent_responses.0.agent_name',
      'body:agent_responses.0.usage.input_tokens',
      'body:colour',
      'body:status',
    ]);
    const missing = await problem('POST', '/sessions/s1/turns', {});
    expect(paths(missing)).toEqual(['body:user_input']);
    const both = await problem('POST', '/turns/t1/responses', {
      agent_response: { agent_name: 'a', response: 'r' },
      tool_call: { name: 'search' },
    });
    expect(both.errors).toEqual([
      { path: '', message: 'give exactly one of agent_response or tool_call', in: 'body' },
    ]);
    const tool = await problem('POST', '/turns/t1/responses', {
      tool_call: { name: 'search', status: 'done' },
    });
    expect(paths(tool)).toEqual(['body:tool_call.status']);
    expect(paths(await problem('POST', '/turns/t1/complete', { processing_time_ms: -5 }))).toEqual([
      'body:processing_time_ms',
    ]);
    expect(paths(await problem('POST', '/turns/t1/fail', {}))).toEqual(['body:error']);
    expect(paths(await problem('GET', '/turns/bad%20id'))).toEqual(['path:turn_id']);
    expect(paths(await problem('DELETE', `/turns/${'x'.repeat(129)}`))).toEqual(['path:turn_id']);
    expect(paths(await problem('GET', '/sessions/s1/turns?limit=0&order=up&last=x'))).toEqual([
      'query:last',
      'query:limit',
      'query:order',
    ]);
    expect(paths(await problem('GET', '/users/u1/turns?q=&page=2'))).toEqual(['query:page', 'query:q']);
    const key = await problem('DELETE', '/turns/t1', undefined, { 'idempotency-key': 'k'.repeat(201) });
    expect(paths(key)).toEqual(['header:idempotency-key']);
  });

  it('rejects a bad /query with a 400 before creating a session or asking the agent', async () => {
    const bad = await problem('POST', '/query', {
      query: '',
      thread_id: 'has space',
      parameters: { temperature: 5, tools: [] },
      extra: true,
    });
    expect(bad.status).toBe(400);
    expect(paths(bad)).toEqual([
      'body:extra',
      'body:parameters.temperature',
      'body:parameters.tools',
      'body:query',
      'body:thread_id',
    ]);
    expect(paths(await problem('POST', '/query'))).toEqual(['body:query']);
  });

  it('sent none of the rejected requests over NATS, and asked the agent nothing', async () => {
    // A valid request goes out; NATS keeps one publisher's order, so anything the rejected requests
    // had sent would have arrived before it.
    const sentinel = await problem('GET', '/turns/sentinel');
    expect(sentinel.status).toBe(503);
    await eventually(() => Promise.resolve(sent.length > 0 ? true : undefined), 5000, 'the sentinel on NATS');
    expect(sent).toEqual([`${nats.prefix}.qry.conversation.GetTurn`]);
    expect(agentRequests).toBe(0);
    sent.length = 0;
  });

  it('answers 503 when the services do not answer, before calling the agent', async () => {
    const res = await problem('POST', '/query', { query: 'hello', user_id: 'u1' });
    expect(res).toMatchObject({ status: 503, code: 'SERVICE.UNAVAILABLE' });
    await eventually(
      () => Promise.resolve(sent.length > 0 ? true : undefined),
      5000,
      'CreateSession on NATS',
    );
    expect(sent).toEqual([`${nats.prefix}.cmd.session.CreateSession`]);
    expect(agentRequests).toBe(0);
  });
});
