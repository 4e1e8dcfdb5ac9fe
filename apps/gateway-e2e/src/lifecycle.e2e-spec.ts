import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CleanupReport, sessionStreamId, type SessionView } from '@threadline/contracts';
import { eventually } from '@threadline/testing';
import { Api, problemOf, sessionOf } from './http-client';
import type { Stack } from './stack';
import { startStackWithEnv } from './stack-env';

// Session lifecycle of issue 4 over HTTP against the five built services: the per-user limit
// (MAX_SESSIONS_PER_USER=2, end_oldest) and POST /sessions/cleanup. The idle timeout is 3.6 s
// (SESSION_TIMEOUT_HOURS=0.001) so a real session expires without waiting hours; the test waits on
// the condition (a cleanup pass that expires it), never a fixed sleep. The leader's own timer runs
// once at start (CLEANUP_INTERVAL_MINUTES=60) and does not interfere. POST /sessions/cleanup is an
// operators' endpoint (admin keys only): `api` sends the stack's admin key; auth.e2e-spec checks that a
// service key and a user token get 403.

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStackWithEnv({
    SESSION_TIMEOUT_HOURS: '0.001',
    CLEANUP_INTERVAL_MINUTES: '60',
    RETENTION_DAYS: '',
    MAX_SESSIONS_PER_USER: '2',
    MAX_SESSIONS_POLICY: 'end_oldest',
  });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

const createSession = async (body: Record<string, unknown>): Promise<SessionView> =>
  sessionOf(await api.post('/sessions', body), 201);

describe('per-user limit (MAX_SESSIONS_PER_USER=2, end_oldest)', () => {
  it('starting a third session ends the least recently active one (reason replaced)', async () => {
    const user = uid('lim');
    const first = await createSession({ user_id: user, title: 'first' });
    const second = await createSession({ user_id: user, title: 'second' });
    // `first` becomes the more recently active one.
    expect((await api.patch(`/sessions/${first.session_id}`, { title: 'first, touched' })).status).toBe(200);
    const third = await createSession({ user_id: user, title: 'third' });

    expect(sessionOf(await api.get(`/sessions/${second.session_id}`), 200).status).toBe('ended');
    expect(sessionOf(await api.get(`/sessions/${first.session_id}`), 200).status).toBe('active');
    expect(third.status).toBe('active');
    const active = await api.get(`/users/${user}/sessions?status=active`);
    expect(z.object({ total: z.number() }).parse(active.json).total).toBe(2);
    const [row] = await stack.database.db.query(
      `SELECT data->>'reason' AS reason FROM events WHERE stream_id = $1 AND event_type = 'SessionEnded.v1'`,
      [sessionStreamId(stack.tenantId, second.session_id)],
    );
    expect(row?.['reason']).toBe('replaced');
  });
});

describe('POST /sessions/cleanup', () => {
  it('answers {expired, deleted, took_ms}; an idle session expires and then rejects turns', async () => {
    const session = await createSession({ user_id: uid('idle'), title: 'idle' });
    expect((await api.post(`/sessions/${session.session_id}/turns`, { user_input: 'hi' })).status).toBe(201);

    // Not idle for 3.6 s yet: a pass right away leaves it active.
    const early = await api.post('/sessions/cleanup');
    expect(early.status).toBe(200);
    const report = CleanupReport.strict().parse(early.json);
    expect(report.deleted).toBe(0);
    expect(sessionOf(await api.get(`/sessions/${session.session_id}`), 200).status).toBe('active');

    // Passes until one expires it (the timeout is measured from its last turn).
    let expired = 0;
    await eventually(
      async () => {
        const reply = await api.post('/sessions/cleanup');
        expired += CleanupReport.parse(reply.json).expired;
        const now = sessionOf(await api.get(`/sessions/${session.session_id}`), 200);
        return now.status === 'expired' ? now : undefined;
      },
      30_000,
      'the session to expire',
    );
    expect(expired).toBeGreaterThanOrEqual(1);
    const [event] = await stack.database.db.query(
      `SELECT data FROM events WHERE stream_id = $1 AND event_type = 'SessionExpired.v1'`,
      [sessionStreamId(stack.tenantId, session.session_id)],
    );
    const data = z
      .object({
        idleMs: z.number(),
        timeoutMs: z.number(),
        lastActivityAt: z.string(),
        expiredAt: z.string(),
      })
      .parse(event?.['data']);
    expect(data.timeoutMs).toBe(3600);
    expect(data.idleMs).toBeGreaterThanOrEqual(3600);

    // An expired session takes no new turns and no updates, like an ended one.
    expect(
      problemOf(await api.post(`/sessions/${session.session_id}/turns`, { user_input: 'still there?' }), 409)
        .code,
    ).toBe('SESSION.ALREADY_ENDED');
    expect(problemOf(await api.patch(`/sessions/${session.session_id}`, { title: 'x' }), 409).code).toBe(
      'SESSION.ALREADY_ENDED',
    );
    // It is listed as expired, not as active.
    const expiredList = await api.get(`/users/${session.user_id}/sessions?status=expired`);
    expect(z.object({ total: z.number() }).parse(expiredList.json).total).toBe(1);
  }, 60_000); // waits up to 30 s for the expiry (eventually), more than the default 5 s

  it('is not captured by /sessions/{session_id}: GET on it is a session lookup, POST the cleanup', async () => {
    expect(problemOf(await api.get('/sessions/cleanup'), 404).code).toBe('SESSION.NOT_FOUND');
    expect((await api.post('/sessions/cleanup')).status).toBe(200);
  });
});
