import { randomUUID } from 'node:crypto';
import { TurnPage, TurnView, UserErasureReceipt, UserStatsView } from '@threadline/contracts';
import { eventually } from '@threadline/testing';
import { Api, pageOf, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack, startStack } from './stack';

// Deletion users can verify (issue 4): after DELETE /sessions/{id} and after DELETE /users/{id}, every
// endpoint answers 404 for the session and its turns, and lists, stats and search no longer show them;
// the erasure's receipt; the erased events are tombstones in the event store. Five services as processes.

jest.setTimeout(60_000);

let stack: Stack;
let api: Api;

beforeAll(async () => {
  stack = await startStack();
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const describeReply = (reply: Reply) => `HTTP ${reply.status} ${reply.text.slice(0, 500)}`;

function ok<T>(reply: Reply, schema: { parse(v: unknown): T }): T {
  if (reply.status !== 200) throw new Error(`expected HTTP 200, got ${describeReply(reply)}`);
  return schema.parse(reply.json);
}

/** A session of `user` with a workflow state and two turns; answers the session and turn ids. */
async function sessionWithData(
  user: string,
  word: string,
): Promise<{ sessionId: string; turnIds: string[] }> {
  const sessionId = sessionOf(
    await api.post('/sessions', { user_id: user, title: `${word} title`, metadata: { topic: word } }),
    201,
  ).session_id;
  expect((await api.patch(`/sessions/${sessionId}/state`, { summary: `${word} summary` })).status).toBe(200);
  const turnIds: string[] = [];
  for (const n of [1, 2]) {
    const reply = await api.post(`/sessions/${sessionId}/turns`, {
      user_input: `${word} question number ${n}`,
      agent_responses: [{ agent_name: 'GenAgent', response: `${word} answer`, model: 'gpt-4o' }],
    });
    if (reply.status !== 201) throw new Error(`expected HTTP 201, got ${describeReply(reply)}`);
    turnIds.push(TurnView.parse(reply.json).turn_id);
  }
  return { sessionId, turnIds };
}

/** Every endpoint of a deleted session answers 404; lists, stats and search of its user do not show it. */
async function expectGone(user: string, word: string, sessionId: string, turnIds: string[]): Promise<void> {
  for (const path of [
    `/sessions/${sessionId}`,
    `/sessions/${sessionId}/turns`,
    `/sessions/${sessionId}/state`,
    `/sessions/${sessionId}/history`,
    ...turnIds.map((id) => `/turns/${id}`),
  ]) {
    const reply = await api.get(path);
    expect({ path, status: reply.status }).toEqual({ path, status: 404 });
    expect(problemOf(reply, 404).code).toMatch(/NOT_FOUND$/);
  }
  const sessions = pageOf(await api.get(`/users/${user}/sessions`)).sessions;
  expect(sessions.map((s) => s.session_id)).not.toContain(sessionId);
  // Turns, search and stats follow the deletion over JetStream: wait for them, never sleep.
  await eventually(async () => {
    expect(problemOf(await api.get(`/sessions/${sessionId}/stats`), 404).code).toBe('SESSION.NOT_FOUND');
    const search = ok(await api.get(`/users/${user}/turns?q=${word}`), TurnPage);
    expect(search.turns).toEqual([]);
    const all = ok(await api.get(`/users/${user}/turns`), TurnPage);
    expect(all.turns.filter((t) => t.session_id === sessionId)).toEqual([]);
    return true;
  });
}

describe('DELETE /sessions/{id}', () => {
  it('answers 404 on every endpoint afterwards; lists, search and stats drop it; other sessions stay', async () => {
    const user = `u-${randomUUID().slice(0, 8)}`;
    const word = `zebra${randomUUID().slice(0, 6)}`;
    const gone = await sessionWithData(user, word);
    const kept = await sessionWithData(user, `kept${word}`);
    await eventually(async () => {
      expect(ok(await api.get(`/users/${user}/stats`), UserStatsView).turns).toBe(4);
      return true;
    });

    expect((await api.delete(`/sessions/${gone.sessionId}`)).status).toBe(204);
    await expectGone(user, word, gone.sessionId, gone.turnIds);
    expect((await api.delete(`/sessions/${gone.sessionId}`)).status).toBe(404);
    const [state] = await stack.database.db.query('SELECT 1 FROM session_states WHERE session_id = $1', [
      gone.sessionId,
    ]);
    expect(state).toBeUndefined();
    await eventually(async () => {
      expect(ok(await api.get(`/users/${user}/stats`), UserStatsView).turns).toBe(2);
      return true;
    });

    // The other session is untouched.
    expect(sessionOf(await api.get(`/sessions/${kept.sessionId}`), 200).title).toBe(`kept${word} title`);
    expect(ok(await api.get(`/sessions/${kept.sessionId}/turns`), TurnPage).turns).toHaveLength(2);
  });
});

describe('DELETE /users/{user_id}', () => {
  it("erases the user's sessions, turns and state everywhere and answers a receipt; other users untouched", async () => {
    const user = `u-${randomUUID().slice(0, 8)}`;
    const other = `u-${randomUUID().slice(0, 8)}`;
    const word = `okapi${randomUUID().slice(0, 6)}`;
    const first = await sessionWithData(user, word);
    const second = await sessionWithData(user, word);
    const theirs = await sessionWithData(other, word);
    await eventually(async () => {
      expect(ok(await api.get(`/users/${user}/turns?q=${word}`), TurnPage).turns).toHaveLength(4);
      return true;
    });

    const reply = await api.delete(`/users/${user}`);
    const receipt = ok(reply, UserErasureReceipt);
    expect(receipt).toMatchObject({ user_id: user, sessions_deleted: 2, turns_deleted: 4 });
    expect(Date.parse(receipt.completed_at)).toBeGreaterThan(Date.now() - 60_000);
    // Per session: SessionCreated, SessionStateUpdated and two TurnLogged.
    expect(receipt.events_erased).toBe(2 * 4);
    // Events the relay had not published yet go out as tombstones instead of being deleted.
    expect(receipt.jetstream_messages_deleted).toBeLessThanOrEqual(receipt.events_erased);

    for (const s of [first, second]) await expectGone(user, word, s.sessionId, s.turnIds);
    expect(pageOf(await api.get(`/users/${user}/sessions`)).sessions).toEqual([]);
    await eventually(async () => {
      const stats = ok(await api.get(`/users/${user}/stats`), UserStatsView);
      expect(stats.turns).toBe(0);
      expect(stats.sessions.total).toBe(0);
      return true;
    });

    // The event store keeps only tombstones of the user's events.
    const rows = await stack.database.db.query<{ text: string }>(
      `SELECT data::text || metadata::text AS text FROM events
       WHERE stream_id = ANY($1::text[]) OR stream_id LIKE '%' || $2 || '%' OR stream_id LIKE '%' || $3 || '%'`,
      [[], first.sessionId, second.sessionId],
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.text).join('\n')).not.toContain(word);

    // The other user keeps everything.
    expect(sessionOf(await api.get(`/sessions/${theirs.sessionId}`), 200).title).toBe(`${word} title`);
    expect(ok(await api.get(`/users/${other}/turns?q=${word}`), TurnPage).turns).toHaveLength(2);
    expect(ok(await api.get(`/sessions/${theirs.sessionId}/state`), { parse: (v) => v })).toBeDefined();

    // A second erasure finds nothing left.
    expect(ok(await api.delete(`/users/${user}`), UserErasureReceipt)).toMatchObject({
      sessions_deleted: 0,
      turns_deleted: 0,
    });
  });
});
