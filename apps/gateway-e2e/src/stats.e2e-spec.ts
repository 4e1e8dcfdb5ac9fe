import { randomUUID } from 'node:crypto';
import { GlobalStatsView, SessionStatsView, UsageStatsView, UserStatsView } from '@threadline/contracts';
import { Api, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack } from './stack';
import { startStackWithEnv } from './stack-env';

// The stats routes of issue 5, over HTTP against the built services running as processes: writes
// go through the gateway, the analytics-projector consumes the events from JetStream, and each read
// passes min_position (the write's position) to see its own writes.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStackWithEnv({ AGENT_BASE_URL: '', STATS_WAIT_MS: '2000' });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
const position = (reply: Reply) => Number(reply.headers.get('x-threadline-position'));
const describeReply = (reply: Reply) => `HTTP ${reply.status} ${reply.text.slice(0, 500)}`;

function ok<T>(reply: Reply, schema: { parse(v: unknown): T }): T {
  if (reply.status !== 200) throw new Error(`expected HTTP 200, got ${describeReply(reply)}`);
  return schema.parse(reply.json);
}

/** Creates a session of `user` and logs two turns in it; the position of the last write. */
async function sessionWithTurns(user: string): Promise<{ sessionId: string; position: number }> {
  const sessionId = sessionOf(await api.post('/sessions', { user_id: user }), 201).session_id;
  const first = await api.post(`/sessions/${sessionId}/turns`, {
    user_input: 'What is the capital of France?',
    agent_responses: [
      {
        agent_name: 'geo',
        response: 'Paris.',
        model: 'gpt-4o-mini',
        execution_time_ms: 100,
        usage: { input_tokens: 12, output_tokens: 2, total_tokens: 14 },
      },
    ],
    tool_calls: [{ name: 'lookup', request: { q: 'France' }, result: { capital: 'Paris' } }],
    processing_time_ms: 200,
  });
  expect(first.status).toBe(201);
  const second = await api.post(`/sessions/${sessionId}/turns`, {
    user_input: 'And of Spain?',
    agent_responses: [
      {
        agent_name: 'geo',
        response: 'Madrid.',
        model: 'gpt-4o-mini',
        execution_time_ms: 300,
        usage: { input_tokens: 20, output_tokens: 3, total_tokens: 23 },
      },
    ],
    processing_time_ms: 400,
  });
  expect(second.status).toBe(201);
  return { sessionId, position: position(second) };
}

describe('GET /sessions/{session_id}/stats', () => {
  it("answers the session's summary once it includes the write (min_position)", async () => {
    const user = uid('ada');
    const { sessionId, position: pos } = await sessionWithTurns(user);
    const stats = ok(await api.get(`/sessions/${sessionId}/stats?min_position=${pos}`), SessionStatsView);
    expect(stats.as_of_position).toBeGreaterThanOrEqual(pos);
    expect(stats).toMatchObject({
      session_id: sessionId,
      user_id: user,
      status: 'active',
      interactions: 2,
      turns_completed: 2,
      total_tokens_in: 32,
      total_tokens_out: 5,
      total_tokens: 37,
      avg_response_time_ms: 300,
      p95_response_time_ms: 390,
      tool_calls: { pending: 0, running: 0, completed: 1, failed: 0, total: 1 },
      errors: 0,
    });
    expect(stats.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('is 404 for an unknown session and for a deleted one, which leaves the user figures', async () => {
    const unknown = problemOf(await api.get(`/sessions/${uid('nope')}/stats`), 404);
    expect(unknown.code).toBe('SESSION.NOT_FOUND');

    const user = uid('del');
    const kept = await sessionWithTurns(user);
    const doomed = await sessionWithTurns(user);
    const before = ok(await api.get(`/users/${user}/stats?min_position=${doomed.position}`), UserStatsView);
    expect(before).toMatchObject({ sessions: { active: 2, total: 2 }, turns: 4, total_tokens: 74 });

    const deleted = await api.delete(`/sessions/${doomed.sessionId}`);
    expect(deleted.status).toBe(204);
    const pos = position(deleted);
    expect(pos).toBeGreaterThan(doomed.position);
    expect(
      problemOf(await api.get(`/sessions/${doomed.sessionId}/stats?min_position=${pos}`), 404).code,
    ).toBe('SESSION.NOT_FOUND');
    const after = ok(await api.get(`/users/${user}/stats?min_position=${pos}`), UserStatsView);
    expect(after).toMatchObject({
      user_id: user,
      sessions: { active: 1, total: 1 },
      turns: 2,
      total_tokens: 37,
    });
    expect(ok(await api.get(`/sessions/${kept.sessionId}/stats`), SessionStatsView).interactions).toBe(2);
  });

  it('answers 503 when the projection does not reach min_position in time, and 400 for a bad one', async () => {
    const { sessionId, position: pos } = await sessionWithTurns(uid('late'));
    const late = problemOf(
      await api.get(`/sessions/${sessionId}/stats?min_position=${pos + 1_000_000}`),
      503,
    );
    expect(late.code).toBe('SERVICE.UNAVAILABLE');
    expect(late.detail).toContain(`position ${pos + 1_000_000}`);
    const bad = problemOf(await api.get(`/sessions/${sessionId}/stats?min_position=-1`), 400);
    expect(bad.code).toBe('REQUEST.INVALID');
  });
});

describe('GET /sessions/stats', () => {
  it('is routed before /sessions/{session_id} and answers the tenant figures', async () => {
    const user = uid('glob');
    const { position: pos } = await sessionWithTurns(user);
    const stats = ok(await api.get(`/sessions/stats?min_position=${pos}`), GlobalStatsView);
    expect(stats.as_of_position).toBeGreaterThanOrEqual(pos);
    expect(stats.sessions.active).toBeGreaterThanOrEqual(1);
    expect(stats.active_sessions).toBe(stats.sessions.active);
    expect(stats.turns).toBeGreaterThanOrEqual(2);
    expect(stats.by_model.find((m) => m.model === 'gpt-4o-mini')?.calls).toBeGreaterThanOrEqual(2);
    expect(stats.by_agent.find((a) => a.agent_name === 'geo')?.p95_execution_time_ms).toBeGreaterThan(0);
    expect(stats.events_projected).toBeGreaterThan(0);
    expect(stats.head_position).toBeGreaterThanOrEqual(stats.as_of_position);
    expect(stats.projection_lag).toBe(stats.head_position - stats.as_of_position);
  });
});

describe('GET /stats/usage', () => {
  it('groups usage by day and model, by model and by agent', async () => {
    const { position: pos } = await sessionWithTurns(uid('use'));
    const today = new Date().toISOString().slice(0, 10);
    const byDay = ok(
      await api.get(`/stats/usage?from=${today}&to=${today}&group_by=day&min_position=${pos}`),
      UsageStatsView,
    );
    expect(byDay.from).toBe(`${today}T00:00:00.000Z`);
    const row = byDay.rows.find((r) => r.day === today && r.model === 'gpt-4o-mini');
    expect(row?.calls).toBeGreaterThanOrEqual(2);
    expect(row?.total_tokens).toBeGreaterThanOrEqual(37);
    const byAgent = ok(await api.get('/stats/usage?group_by=agent'), UsageStatsView);
    expect(byAgent.rows.find((r) => r.agent_name === 'geo')?.calls).toBeGreaterThanOrEqual(2);
    const byModel = ok(await api.get('/stats/usage?group_by=model'), UsageStatsView);
    expect(byModel.rows.find((r) => r.model === 'gpt-4o-mini')).toBeDefined();
    const nothing = ok(await api.get('/stats/usage?from=2001-01-01&to=2001-01-31'), UsageStatsView);
    expect(nothing.rows).toEqual([]);
  });

  it('rejects a bad group_by, date or range with 400', async () => {
    for (const query of ['group_by=week', 'from=yesterday', 'from=2025-02-01&to=2025-01-01', 'extra=1']) {
      expect(problemOf(await api.get(`/stats/usage?${query}`), 400).code).toBe('REQUEST.INVALID');
    }
  });
});
