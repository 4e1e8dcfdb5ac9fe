import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { eventually } from '@threadline/testing';
import { Api, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

// Issue 19: one trace follows a turn through the real processes, exported by each service's
// OpenTelemetry SDK over OTLP/HTTP (JSON) to a receiver this test runs on loopback.

/** What the test keeps of an exported span (OTLP JSON: ids in hex). */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
}

const AnyValue = z
  .object({ stringValue: z.string(), intValue: z.union([z.string(), z.number()]), boolValue: z.boolean() })
  .partial();
const KeyValue = z.object({ key: z.string(), value: AnyValue });
const OtlpTraces = z.object({
  resourceSpans: z.array(
    z.object({
      resource: z.object({ attributes: z.array(KeyValue).default([]) }),
      scopeSpans: z.array(
        z.object({
          spans: z.array(
            z.object({
              traceId: z.string(),
              spanId: z.string(),
              parentSpanId: z.string().optional(),
              name: z.string(),
              kind: z.number(),
              attributes: z.array(KeyValue).default([]),
              links: z.array(z.object({ traceId: z.string(), spanId: z.string() })).default([]),
            }),
          ),
        }),
      ),
    }),
  ),
});

const valueOf = (v: z.infer<typeof AnyValue>) => v.stringValue ?? v.intValue ?? v.boolValue;

/** A minimal OTLP/HTTP receiver: `POST /v1/traces` with JSON bodies (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`). */
function startReceiver(spans: ReceivedSpan[]): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const body = OtlpTraces.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        for (const rs of body.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name');
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
              spans.push({
                service: String(service ? valueOf(service.value) : ''),
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? '',
                name: s.name,
                kind: s.kind,
                links: s.links,
                attributes: Object.fromEntries(s.attributes.map((a) => [a.key, valueOf(a.value)])),
              });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const spans: ReceivedSpan[] = [];
let receiver: Server;
let stack: Stack;
let api: Api;

beforeAll(async () => {
  receiver = await startReceiver(spans);
  const { port } = receiver.address() as AddressInfo;
  stack = await startStack({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
  });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  if (stack) {
    await stack.stop();
  }
  await new Promise((resolve) => receiver?.close(resolve));
}, 60_000);

describe('a trace of POST /sessions/{id}/turns', () => {
  it('goes from the gateway through chat-log-service, the append and the relay to the analytics projection', async () => {
    const sessionId = sessionOf(
      await api.post('/sessions', { user_id: `t-${randomUUID().slice(0, 8)}` }),
      201,
    ).session_id;
    const correlationId = `trace-${randomUUID()}`;
    const reply = await api.post(
      `/sessions/${sessionId}/turns`,
      {
        user_input: 'Where is the trace?',
        agent_responses: [{ agent_name: 'bot', response: 'Here.', model: 'gpt-4o-mini' }],
      },
      { headers: { 'x-correlation-id': correlationId } },
    );
    expect(reply.status).toBe(201);

    const http = await eventually(
      () =>
        spans.find(
          (s) => s.service === 'gateway' && s.attributes['threadline.correlation_id'] === correlationId,
        ),
      20_000,
      'the gateway span of the turn',
    );
    expect(http.name).toBe('POST /sessions/:session_id/turns');
    expect(http.kind).toBe(2); // SERVER

    const trace = await eventually(
      () => {
        const all = spans.filter((s) => s.traceId === http.traceId);
        const has = (service: string, name: RegExp) =>
          all.some((s) => s.service === service && name.test(s.name));
        const complete =
          has('gateway', /^send .*\.cmd\.conversation\.LogTurn$/) &&
          has('chat-log-service', /^process .*\.cmd\.conversation\.LogTurn$/) &&
          has('chat-log-service', /^event_store\.append$/) &&
          has('chat-log-service', /^pg\.query:/) &&
          all.some((s) => /^publish /.test(s.name)) &&
          has('analytics-projector', /^process /) &&
          has('analytics-projector', /^project usage_stats$/);
        if (!complete)
          throw new Error(`the trace so far: ${all.map((s) => `${s.service}: ${s.name}`).join('; ')}`);
        return all;
      },
      30_000,
      'every span of the turn in one trace',
    );

    // One tree: every span but the HTTP root has its parent in the trace.
    const ids = new Set(trace.map((s) => s.spanId));
    const orphans = trace.filter((s) => s !== http && !ids.has(s.parentSpanId));
    expect(orphans.map((s) => `${s.service}: ${s.name}`)).toEqual([]);

    // The relay's publish continues the chat-log handler's trace (kept in the event's metadata).
    const handler = trace.find((s) => s.service === 'chat-log-service' && s.name.startsWith('process '));
    const publish = trace.find((s) => s.name.startsWith('publish '));
    expect(handler?.parentSpanId).toBe(trace.find((s) => s.name.startsWith('send '))?.spanId);
    expect(publish?.kind).toBe(4); // PRODUCER
    // The projection's commit links the event's span.
    const project = trace.find((s) => s.name === 'project usage_stats');
    const commits = spans.filter((s) => s.name === 'usage_stats commit');
    expect(commits.some((c) => c.links.some((l) => l.spanId === project?.spanId))).toBe(true);

    const [row] = await stack.database.db.query<{ traceparent: string | null }>(
      `SELECT metadata->>'traceparent' AS traceparent FROM events WHERE metadata->>'correlationId' = $1 LIMIT 1`,
      [correlationId],
    );
    expect(row?.traceparent).toMatch(new RegExp(`^00-${http.traceId}-[0-9a-f]{16}-01$`));
  }, 90_000);
});
