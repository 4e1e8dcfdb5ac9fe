import { randomUUID } from 'node:crypto';
import { SERVICES, type ServiceName } from '@threadline/stack';
import { eventually } from '@threadline/testing';
import { Api, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

// Issue 19: every process's Prometheus metrics, their labels bounded, and the readiness check, against
// the five built services running as processes, each with a /metrics listener of its own.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStack({ metrics: true });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  if (!stack) return;
  await stack.stop();
}, 60_000);

/** The series of one exposition: `name{labels}` of every sample line. */
function seriesOf(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.slice(0, line.lastIndexOf(' ')));
}

/** The labels of a sample line (`name{a="x",b="y"} value`) and its value. */
function samplesOf(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text.split('\n').flatMap((line) => {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) return [];
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length, close + 1).matchAll(/([a-z_]+)="([^"]*)"/g))
      labels[m[1]!] = m[2]!;
    return [{ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) }];
  });
}

/** The value of the one sample of `name` with (at least) `labels`; undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const found = samplesOf(text, name).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** The sum of the samples of `name` whose label `label` matches `pattern`; undefined when none. */
function sampleMatching(text: string, name: string, label: string, pattern: RegExp): number | undefined {
  const found = samplesOf(text, name).filter((s) => pattern.test(s.labels[label] ?? ''));
  return found.length === 0 ? undefined : found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(name: ServiceName): Promise<string> {
  const url = stack.metricsUrls[name];
  if (url === undefined) throw new Error(`${name} has no metrics URL`);
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

async function scrapeAll(): Promise<Map<ServiceName, string[]>> {
  const all = new Map<ServiceName, string[]>();
  for (const name of SERVICES) all.set(name, seriesOf(await scrape(name)));
  return all;
}

const turnBody = (i: number) => ({
  user_input: `question ${i}`,
  agent_responses: [{ agent_name: 'bot', response: `answer ${i}`, model: 'gpt-4o-mini' }],
});

/** Opens a session for each user and logs one turn in it, `concurrency` users at a time. */
async function logTurnsFor(users: readonly string[], concurrency = 16): Promise<string[]> {
  const sessions: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < users.length) {
        const i = next++;
        const sessionId = sessionOf(await api.post('/sessions', { user_id: users[i] }), 201).session_id;
        const turn = await api.post(`/sessions/${sessionId}/turns`, turnBody(i));
        expect(turn.status).toBe(201);
        sessions.push(sessionId);
      }
    }),
  );
  return sessions;
}

describe('GET /metrics of every process', () => {
  it('exposes the default Node metrics and each process its own, with route templates', async () => {
    const users = Array.from({ length: 3 }, () => `m-${randomUUID().slice(0, 8)}`);
    const [sessionId] = await logTurnsFor(users, 1);
    expect((await api.get(`/sessions/${sessionId}/turns`)).status).toBe(200);

    await eventually(async () => {
      const gateway = await scrape('gateway');
      expect(gateway).toContain('nodejs_eventloop_lag_seconds');
      expect(gateway).toContain('process_resident_memory_bytes');
      const turns = { method: 'POST', route: '/sessions/:session_id/turns', status_code: '201' };
      expect(sample(gateway, 'http_requests_total', turns)).toBeGreaterThanOrEqual(3);
      expect(
        sample(gateway, 'http_server_request_duration_seconds_count', { ...turns, service: 'gateway' }),
      ).toBeGreaterThanOrEqual(3);
      expect(
        sample(gateway, 'db_client_connection_count', { pool_name: 'gateway', state: 'idle' }),
      ).toBeDefined();

      const chatLog = await scrape('chat-log-service');
      const logTurn = sampleMatching(
        chatLog,
        'nats_request_handling_duration_seconds_count',
        'subject',
        /\.cmd\.conversation\.LogTurn$/,
      );
      expect(logTurn).toBeGreaterThanOrEqual(3);
      expect(sample(chatLog, 'threadline_log_turn_batch_size_count', {})).toBeGreaterThanOrEqual(1);
      expect(
        sample(chatLog, 'threadline_event_store_appended_events_total', { stream_type: 'conversation' }),
      ).toBeGreaterThanOrEqual(3);
      expect(
        sample(chatLog, 'threadline_event_store_append_duration_seconds_count', {}),
      ).toBeGreaterThanOrEqual(1);
      expect(
        sample(chatLog, 'threadline_tokenizer_duration_seconds_count', { encoding: 'o200k_base' }),
      ).toBeDefined();
      expect(
        sample(chatLog, 'threadline_jetstream_consumer_pending_messages', {
          consumer: 'chat-log-service-session',
        }),
      ).toBeDefined();
      expect(
        sample(chatLog, 'db_client_connection_pending_requests', { pool_name: 'chat-log-service' }),
      ).toBe(0);

      const sessions = await scrape('session-service');
      expect(sample(sessions, 'threadline_projection_lag_events', { projection: 'session_context' })).toBe(0);

      const analytics = await scrape('analytics-projector');
      expect(sample(analytics, 'threadline_projection_lag_events', { projection: 'usage_stats' })).toBe(0);
      expect(sample(analytics, 'threadline_projection_lag_seconds', { projection: 'usage_stats' })).toBe(0);
      expect(
        sample(analytics, 'threadline_jetstream_consumer_pending_messages', {
          consumer: 'analytics-projector-conversation',
        }),
      ).toBe(0);

      // Exactly one relay is active (session-service and chat-log-service both run one); it is caught up.
      const relays = [sessions, chatLog].map((t) =>
        sample(t, 'threadline_relay_lag_events', { relay: 'relay' }),
      );
      expect(relays.filter((lag) => lag !== undefined)).toEqual([0]);

      const cleanup = await scrape('cleanup-worker');
      expect(cleanup).toContain('nodejs_heap_size_used_bytes');
      return true;
    }, 20_000);
  }, 60_000);

  it('keeps the series count bounded while 1,000 users log turns: no label carries an id', async () => {
    await logTurnsFor(Array.from({ length: 10 }, () => `w-${randomUUID().slice(0, 8)}`));
    const before = await scrapeAll();

    const users = Array.from({ length: 1000 }, (_, i) => `u${i}-${randomUUID().slice(0, 8)}`);
    const sessions = await logTurnsFor(users);
    const after = await scrapeAll();

    for (const name of SERVICES) {
      const was = before.get(name) ?? [];
      const now = after.get(name) ?? [];
      // The same series as after 10 users, give or take a few that appear late (a status code, a
      // pool state): a label carrying a user or session id would add about a thousand.
      const added = now.filter((s) => !was.includes(s));
      if (added.length >= 20)
        throw new Error(`${name}: ${added.length} new series, e.g. ${added.slice(0, 5).join(', ')}`);
      const text = now.join('\n');
      for (const id of [...users.slice(0, 50), ...sessions.slice(0, 50)]) expect(text).not.toContain(id);
    }
  }, 300_000);
});

describe('GET /health/live and /health/ready', () => {
  it('is live and ready with everything up, and ready answers 503 naming a stopped service', async () => {
    const live = await api.get('/health/live');
    expect(live.status).toBe(200);
    expect(live.json).toEqual({ status: 'ok' });

    const ready = await api.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({
      status: 'ok',
      details: {
        postgres: { status: 'up' },
        nats: { status: 'up' },
        jetstream: { status: 'up' },
        'session-service': { status: 'up' },
        'chat-log-service': { status: 'up' },
        'cleanup-worker': { status: 'up' },
        'analytics-projector': { status: 'up' },
      },
    });

    await stack.stopService('chat-log-service');
    const down = await api.get('/health/ready');
    expect(down.status).toBe(503);
    expect(down.json).toMatchObject({
      status: 'error',
      error: { 'chat-log-service': { status: 'down' } },
      info: { postgres: { status: 'up' }, 'session-service': { status: 'up' } },
    });
    const report = down.json as { error?: Record<string, { message?: string }> };
    expect(report.error?.['chat-log-service']?.message).toContain('chat-log-service');
    // `/health` asks the same pings: 503 naming the stopped service, the gateway's connections up.
    const health = await api.get('/health');
    expect(health.status).toBe(503);
    expect(health.json).toMatchObject({
      status: 'down',
      checks: {
        postgres: 'up',
        nats: 'up',
        services: { 'chat-log-service': 'down', 'session-service': 'up' },
      },
    });
  }, 60_000);
});
