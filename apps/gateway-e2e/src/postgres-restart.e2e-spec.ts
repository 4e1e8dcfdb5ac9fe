import { randomUUID } from 'node:crypto';
import { SessionStatsView, TurnPage } from '@threadline/contracts';
import { freePort } from '@threadline/stack';
import { eventually, type PrivatePostgres, startPrivatePostgres } from '@threadline/testing';
import { Api, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

// Issue 20: the five built services against a Postgres of this file's own, which it restarts
// (`pg_ctl restart -m immediate`, the crash-recovery restart) and stops. Every service must survive
// and resume by itself (no service is restarted): writes work again, the relay publishes again and
// every projection applies what was written after the restart. While Postgres is down, a write is a
// 503 with Retry-After (never a 500) and the gateway's health is 503.

let pg: PrivatePostgres;
let stack: Stack;
let api: Api;
const savedAdminUrl = process.env['TEST_DATABASE_URL'];

beforeAll(async () => {
  pg = await startPrivatePostgres(await freePort());
  // startStack makes (and stack.stop drops) its database on the server of TEST_DATABASE_URL.
  process.env['TEST_DATABASE_URL'] = pg.adminUrl;
  stack = await startStack();
  api = new Api(stack.baseUrl);
}, 180_000);

afterAll(async () => {
  try {
    if (stack) {
      await stack.stop();
    }
  } finally {
    if (savedAdminUrl === undefined) delete process.env['TEST_DATABASE_URL'];
    else process.env['TEST_DATABASE_URL'] = savedAdminUrl;
    await pg?.destroy();
  }
}, 60_000);

const describeReply = (reply: Reply) => `HTTP ${reply.status} ${reply.text.slice(0, 300)}`;
const position = (reply: Reply) => Number(reply.headers.get('x-threadline-position'));

/** Logs a turn with an idempotency key, retrying (as a client should) until it is acknowledged. */
async function logTurnRetrying(sessionId: string, text: string, timeoutMs: number): Promise<Reply> {
  const key = randomUUID();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await api.post(
      `/sessions/${sessionId}/turns`,
      { user_input: text, agent_responses: [{ agent_name: 'a', response: `re: ${text}` }] },
      { headers: { 'idempotency-key': key } },
    );
    if (reply.status === 201) return reply;
    if (Date.now() > deadline) throw new Error(`turn "${text}" not acknowledged: ${describeReply(reply)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function expectAllAlive(): void {
  expect(stack.report()).not.toMatch(/exited unexpectedly/);
}

describe('a Postgres restart under the running services', () => {
  it('is survived by every service: writes, the relay and every projection resume', async () => {
    const user = `pg-${randomUUID().slice(0, 8)}`;
    const sessionId = sessionOf(await api.post('/sessions', { user_id: user }), 201).session_id;
    await logTurnRetrying(sessionId, 'before', 10_000);

    await pg.restart('immediate');

    const after = await logTurnRetrying(sessionId, 'after', 30_000);
    const pos = position(after);
    // chat-log-service's projection (turns), session-service's (turn_count), analytics-projector's.
    await eventually(async () => {
      const turns = TurnPage.parse((await api.get(`/sessions/${sessionId}/turns`)).json);
      expect(turns.turns.map((t) => t.user_input)).toEqual(['before', 'after']);
      return true;
    });
    await eventually(async () => {
      const session = sessionOf(await api.get(`/sessions/${sessionId}`), 200);
      expect(session.turn_count).toBe(2);
      return true;
    });
    const stats = SessionStatsView.parse(
      (await api.get(`/sessions/${sessionId}/stats?min_position=${pos}`)).json,
    );
    expect(stats.interactions).toBe(2);
    // The relay published the turn after the restart: the JetStream stream holds it.
    await eventually(async () => {
      const messages = await stack.nats.messages();
      return messages.some((m) => m.body.includes('"after"')) ? true : undefined;
    });
    const health = await api.get('/health');
    expect(health.status).toBe(200);
    expectAllAlive();
    // Each service said what happened.
    expect(stack.report()).toMatch(/postgres connection lost/);
  }, 120_000);

  it('answers 503 with Retry-After while Postgres is down, and health says so', async () => {
    const user = `pg-${randomUUID().slice(0, 8)}`;
    const sessionId = sessionOf(await api.post('/sessions', { user_id: user }), 201).session_id;
    await pg.stop('fast');
    try {
      const write = await api.post(`/sessions/${sessionId}/turns`, {
        user_input: 'while down',
        agent_responses: [],
      });
      const problem = problemOf(write, 503);
      expect(problem.code).toBe('SERVICE.UNAVAILABLE');
      expect(Number(write.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const read = await api.get(`/sessions/${sessionId}`);
      problemOf(read, 503);
      expect(read.headers.get('retry-after')).not.toBeNull();
      expect((await api.get('/health')).status).toBe(503);
    } finally {
      await pg.start();
    }
    await logTurnRetrying(sessionId, 'back', 30_000);
    await eventually(async () => ((await api.get('/health')).status === 200 ? true : undefined), 15_000);
    expectAllAlive();
  }, 120_000);
});
