import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import {
  CompleteTurn,
  DeleteTurn,
  ErrorReply,
  FailTurn,
  GetTurn,
  ListSessionTurns,
  ListUserTurns,
  LogTurn,
  RecordTurnResponse,
  SESSION_CATEGORY,
  SessionCreatedV1,
  SessionDeletedV1,
  SessionEndedV1,
  sessionStreamId,
  type RequestOf,
  TurnWriteReply,
} from '@threadline/contracts';
import { EVENT_COLUMNS, EventStore, ProjectionRunner, toEnvelope } from '@threadline/event-store';
import { RequestClient, startServiceTransports } from '@threadline/messaging';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  type TestDatabase,
  type TestNats,
  testNatsUrl,
  expectDomainError,
} from '@threadline/testing';
import { DomainError } from '@threadline/platform';
import { AppModule } from '../app.module';
import { ChatLogServiceConfig } from '../config';
import { ConversationCommandHandler } from './conversation.command-handler';
import { LogTurnBatcher } from './log-turn.batcher';
import { TurnsProjection, turnsEventRegistry } from './turns.projection';

jest.setTimeout(90_000);

let tdb: TestDatabase;
let nats: TestNats;
let app: INestApplication;
let proxy: ClientProxy;
let client: RequestClient;
let store: EventStore;

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;

const count = async (sql: string, params: unknown[]): Promise<number> => {
  const [row] = await tdb.db.query<{ n: unknown }>(sql, params);
  return z.coerce.number().parse(row?.n);
};
const conversationEventsOf = (tenantId: string) =>
  count(`SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND stream_type = 'conversation'`, [tenantId]);
const turnRowsOf = (tenantId: string) =>
  count('SELECT count(*) AS n FROM turns WHERE tenant_id = $1', [tenantId]);

/** Creates a session the way the session-service does: a `SessionCreated.v1` on its own stream. */
async function createSession(
  tenantId: string,
  userId: string | null = 'u1',
  sessionId = randomUUID(),
): Promise<string> {
  await store.append(
    sessionStreamId(tenantId, sessionId),
    SESSION_CATEGORY,
    'no_stream',
    [
      {
        type: SessionCreatedV1.type,
        data: SessionCreatedV1.schema.parse({
          sessionId,
          userId,
          title: 'Chat',
          metadata: {},
          createdFrom: null,
          startedAt: new Date().toISOString(),
        }),
      },
    ],
    { metadata: { tenantId, userId } },
  );
  return sessionId;
}

async function endSession(tenantId: string, sessionId: string): Promise<void> {
  await store.append(
    sessionStreamId(tenantId, sessionId),
    SESSION_CATEGORY,
    'stream_exists',
    [{ type: SessionEndedV1.type, data: { sessionId, reason: 'user', endedAt: new Date().toISOString() } }],
    { metadata: { tenantId } },
  );
}

async function deleteSession(tenantId: string, sessionId: string): Promise<number> {
  const result = await store.append(
    sessionStreamId(tenantId, sessionId),
    SESSION_CATEGORY,
    'stream_exists',
    [{ type: SessionDeletedV1.type, data: { sessionId, deletedAt: new Date().toISOString() } }],
    { metadata: { tenantId } },
  );
  return result.lastGlobalPosition;
}

const logTurn = (
  tenantId: string,
  sessionId: string,
  body: Record<string, unknown>,
  extra: { userId?: string } = {},
) =>
  client.request(LogTurn, {
    context: { tenantId },
    sessionId,
    ...extra,
    body: LogTurn.schema.shape.body.parse(body),
  });

beforeAll(async () => {
  tdb = await createTestDatabase(AppModule.migrations, 20);
  nats = await createTestNats();
  store = new EventStore(tdb.db);
  const config = ChatLogServiceConfig.parse({
    DATABASE_URL: tdb.url,
    NATS_URL: testNatsUrl(),
    NATS_STREAM: nats.stream,
    NATS_SUBJECT_PREFIX: nats.prefix,
    MIGRATE_ON_START: 'true',
    LOG_LEVEL: 'warn',
  });
  app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { logger: false });
  await startServiceTransports(app, config, {
    queue: 'chat-log-service',
    events: { durable: 'chat-log-service', deadLetters: tdb.deadLetters },
  });
  await app.init();
  proxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [testNatsUrl()] } });
  await proxy.connect();
  client = new RequestClient(proxy, nats.prefix, 30_000);
});

afterAll(async () => {
  await proxy?.close();
  await app?.close();
  await tdb?.drop();
  await nats?.cleanup();
});

describe('chat-log-service over NATS', () => {
  it('logs a whole turn with two agent responses and a tool call; usage estimated vs reported, cost from the table', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const reply = await logTurn(tenantId, sessionId, {
      turn_id: 'turn-1',
      user_input: 'What were the total orders for CFC1 in the last week?', // 14 tokens (o200k_base)
      agent_responses: [
        { agent_name: 'GenAgent', response: 'hello world', model: 'gpt-4o', execution_time_ms: 300 }, // 2 tokens
        {
          agent_name: 'SummAgent',
          response: 'Orders peaked in the week of February 16.',
          model: 'gpt-4o-mini-2024-07-18',
          usage: { input_tokens: 1000, output_tokens: 200, cached_tokens: 400, reasoning_tokens: 0 },
        },
      ],
      tool_calls: [
        { tool_call_id: 'call-1', name: 'orders_trend', request: { cfc: 'CFC-1' }, result: { total: 1200 } },
      ],
      processing_time_ms: 1234,
      vector_cache_hit: false,
    });
    expect(reply.position).toBeGreaterThan(0);
    const gpt4o = (14 * 2.5 + 2 * 10) / 1e6;
    const mini = (600 * 0.15 + 400 * 0.075 + 200 * 0.6) / 1e6;
    expect(reply.turn).toMatchObject({
      turn_id: 'turn-1',
      session_id: sessionId,
      user_id: 'u1',
      conversation_turn: 1,
      status: 'completed',
      error: null,
      processing_time_ms: 1234,
      vector_cache_hit: false,
      agent_responses: [
        {
          agent_name: 'GenAgent',
          turn_order: 1,
          model: 'gpt-4o',
          execution_time_ms: 300,
          usage: {
            input_tokens: 14,
            output_tokens: 2,
            cached_tokens: 0,
            reasoning_tokens: 0,
            total_tokens: 16,
          },
          usage_source: 'estimated',
          cost_usd: gpt4o,
        },
        {
          agent_name: 'SummAgent',
          turn_order: 2,
          usage: {
            input_tokens: 1000,
            output_tokens: 200,
            cached_tokens: 400,
            reasoning_tokens: 0,
            total_tokens: 1200,
          },
          usage_source: 'reported',
          cost_usd: mini,
        },
      ],
      tool_calls: [
        {
          tool_call_id: 'call-1',
          name: 'orders_trend',
          request: { cfc: 'CFC-1' },
          status: 'completed',
          result: { total: 1200 },
          error: null,
        },
      ],
      usage: {
        input_tokens: 1014,
        output_tokens: 202,
        cached_tokens: 400,
        reasoning_tokens: 0,
        total_tokens: 1216,
      },
    });
    expect(reply.turn.cost_usd).toBeCloseTo(gpt4o + mini, 12);
    expect(reply.turn.completed_at).not.toBeNull();
    expect(await client.request(GetTurn, { tenantId, turnId: 'turn-1' })).toEqual(reply.turn);
    expect(await conversationEventsOf(tenantId)).toBe(1);
    // The event's metadata names the tenant and the session's user.
    const [meta] = await tdb.db.query(
      `SELECT metadata, stream_id FROM events WHERE tenant_id = $1 AND stream_type = 'conversation'`,
      [tenantId],
    );
    expect(meta).toMatchObject({
      metadata: { tenantId, userId: 'u1' },
      stream_id: `conversation:${tenantId}:${sessionId}`,
    });
    // Tenant isolation
    await expectDomainError(
      client.request(GetTurn, { tenantId: newTenant(), turnId: 'turn-1' }),
      'TURN.NOT_FOUND',
    );
  });

  it('logs incrementally: start, response, tool call and its update, complete', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const started = await logTurn(tenantId, sessionId, { status: 'in_progress', user_input: 'hello world' });
    const turnId = started.turn.turn_id;
    expect(started.turn).toMatchObject({
      status: 'in_progress',
      conversation_turn: 1,
      agent_responses: [],
      completed_at: null,
    });

    const withResponse = await client.request(RecordTurnResponse, {
      context: { tenantId },
      turnId,
      body: {
        agent_response: { agent_name: 'GenAgent', response: 'tiktoken is great!', model: 'gpt-3.5-turbo' },
      },
    });
    expect(withResponse.position).toBeGreaterThan(started.position);
    expect(withResponse.turn.agent_responses).toEqual([
      expect.objectContaining({
        agent_name: 'GenAgent',
        turn_order: 1,
        usage: { input_tokens: 2, output_tokens: 6, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 8 },
        usage_source: 'estimated',
        cost_usd: (2 * 0.5 + 6 * 1.5) / 1e6,
      }),
    ]);

    const pending = await client.request(RecordTurnResponse, {
      context: { tenantId },
      turnId,
      body: {
        tool_call: { tool_call_id: 'q1', name: 'sql', request: { sql: 'SELECT 1' }, status: 'running' },
      },
    });
    expect(pending.turn.tool_calls).toEqual([
      expect.objectContaining({
        tool_call_id: 'q1',
        status: 'running',
        request: { sql: 'SELECT 1' },
        result: null,
      }),
    ]);
    const done = await client.request(RecordTurnResponse, {
      context: { tenantId },
      turnId,
      body: { tool_call: { tool_call_id: 'q1', name: 'sql', status: 'completed', result: [{ n: 1 }] } },
    });
    expect(done.turn.tool_calls).toEqual([
      expect.objectContaining({
        tool_call_id: 'q1',
        status: 'completed',
        request: { sql: 'SELECT 1' },
        result: [{ n: 1 }],
      }),
    ]);

    const completed = await client.request(CompleteTurn, {
      context: { tenantId },
      turnId,
      body: { processing_time_ms: 2500, vector_cache_hit: true },
    });
    expect(completed.turn).toMatchObject({
      status: 'completed',
      processing_time_ms: 2500,
      vector_cache_hit: true,
    });
    expect(completed.turn.completed_at).not.toBeNull();
    expect(await client.request(GetTurn, { tenantId, turnId })).toEqual(completed.turn);
    expect(await conversationEventsOf(tenantId)).toBe(5);

    await expectDomainError(
      client.request(RecordTurnResponse, {
        context: { tenantId },
        turnId,
        body: { agent_response: { agent_name: 'late', response: 'x' } },
      }),
      'TURN.NOT_OPEN',
    );
    await expectDomainError(
      client.request(CompleteTurn, { context: { tenantId }, turnId, body: {} }),
      'TURN.NOT_OPEN',
    );
    await expectDomainError(
      client.request(CompleteTurn, { context: { tenantId }, turnId: 'no-such-turn', body: {} }),
      'TURN.NOT_FOUND',
    );
    expect(await conversationEventsOf(tenantId)).toBe(5);
  });

  it('fails an open turn, which then cannot be completed', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const { turn } = await logTurn(tenantId, sessionId, { status: 'in_progress', user_input: 'q' });
    const failed = await client.request(FailTurn, {
      context: { tenantId },
      turnId: turn.turn_id,
      body: { error: 'agent backend timed out', processing_time_ms: 30_000 },
    });
    expect(failed.turn).toMatchObject({
      status: 'failed',
      error: 'agent backend timed out',
      processing_time_ms: 30_000,
    });
    await expectDomainError(
      client.request(CompleteTurn, { context: { tenantId }, turnId: turn.turn_id, body: {} }),
      'TURN.NOT_OPEN',
    );
    // A whole turn can be logged as failed too.
    const whole = await logTurn(tenantId, sessionId, {
      user_input: 'again',
      status: 'failed',
      error: 'boom',
    });
    expect(whole.turn).toMatchObject({ status: 'failed', error: 'boom', conversation_turn: 2 });
  });

  it('numbers 30 concurrent turns of one session exactly 1..30', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => logTurn(tenantId, sessionId, { user_input: `question ${i}` })),
    );
    const numbers = replies.map((r) => r.turn.conversation_turn).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(replies.map((r) => r.position)).size).toBe(30);
    expect(await conversationEventsOf(tenantId)).toBe(30);
    const page = await client.request(ListSessionTurns, {
      tenantId,
      sessionId,
      query: ListSessionTurns.schema.shape.query.parse({ limit: 200 }),
    });
    expect(page.turns.map((t) => t.conversation_turn)).toEqual(numbers);
    // The number follows the order of the events in the stream.
    const stored = await tdb.db.query(
      `SELECT data->>'conversationTurn' AS n FROM events WHERE tenant_id = $1 AND stream_type = 'conversation'
       ORDER BY stream_position`,
      [tenantId],
    );
    expect(stored.map((r) => Number(z.object({ n: z.string() }).parse(r).n))).toEqual(numbers);
  });

  it('rejects turns on unknown, deleted and ended sessions and appends nothing', async () => {
    const tenantId = newTenant();
    await expectDomainError(logTurn(tenantId, 'no-such-session', { user_input: 'x' }), 'SESSION.NOT_FOUND');

    const deleted = await createSession(tenantId);
    await deleteSession(tenantId, deleted);
    await expectDomainError(logTurn(tenantId, deleted, { user_input: 'x' }), 'SESSION.NOT_FOUND');

    const ended = await createSession(tenantId);
    const open = await logTurn(tenantId, ended, { user_input: 'x', status: 'in_progress' });
    await endSession(tenantId, ended);
    const before = await conversationEventsOf(tenantId);
    const error = await expectDomainError(
      logTurn(tenantId, ended, { user_input: 'y' }),
      'SESSION.ALREADY_ENDED',
    );
    expect(error.details).toEqual({ sessionId: ended });
    // Another user's session is not revealed.
    const mine = await createSession(tenantId, 'u1');
    await expectDomainError(
      logTurn(tenantId, mine, { user_input: 'x' }, { userId: 'u2' }),
      'SESSION.NOT_FOUND',
    );
    expect(await conversationEventsOf(tenantId)).toBe(before);
    // A turn opened before the session ended can still be finished.
    const finished = await client.request(CompleteTurn, {
      context: { tenantId },
      turnId: open.turn.turn_id,
      body: {},
    });
    expect(finished.turn.status).toBe('completed');
  });

  it('accepts a turn on a session created a moment before (no lagging read model in between)', async () => {
    const tenantId = newTenant();
    // Each session is appended and used at once: the turn reads the session's own stream, so there is
    // no window in which a session just created is unknown.
    const replies = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const sessionId = await createSession(tenantId, `u${i}`);
        return logTurn(tenantId, sessionId, { user_input: `first of ${i}` });
      }),
    );
    expect(replies.map((r) => r.turn.conversation_turn)).toEqual(Array.from({ length: 10 }, () => 1));
    expect(replies.map((r) => r.turn.user_id)).toEqual(Array.from({ length: 10 }, (_, i) => `u${i}`));
  });

  it('lists a session’s turns with paging, order and last=N; 404 for an unknown session', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId, 'u1');
    for (let i = 1; i <= 5; i++) await logTurn(tenantId, sessionId, { user_input: `q${i}` });
    const query = (q: Record<string, unknown>) => ListSessionTurns.schema.shape.query.parse(q);
    const list = (q: Record<string, unknown>, userId?: string) =>
      client.request(ListSessionTurns, {
        tenantId,
        sessionId,
        ...(userId ? { userId } : {}),
        query: query(q),
      });

    const first = await list({ limit: 2 });
    expect(first.turns.map((t) => t.conversation_turn)).toEqual([1, 2]);
    expect(first.next_cursor).not.toBeNull();
    const second = await list({ limit: 2, cursor: first.next_cursor });
    expect(second.turns.map((t) => t.conversation_turn)).toEqual([3, 4]);
    const third = await list({ limit: 2, cursor: second.next_cursor });
    expect(third.turns.map((t) => t.conversation_turn)).toEqual([5]);
    expect(third.next_cursor).toBeNull();

    const desc = await list({ order: 'desc', limit: 3 });
    expect(desc.turns.map((t) => t.conversation_turn)).toEqual([5, 4, 3]);
    const desc2 = await list({ order: 'desc', limit: 3, cursor: desc.next_cursor });
    expect(desc2.turns.map((t) => t.conversation_turn)).toEqual([2, 1]);
    // A cursor of another order is refused.
    await expectDomainError(list({ order: 'asc', cursor: desc.next_cursor }), 'REQUEST.INVALID');
    await expectDomainError(list({ cursor: 'garbage' }), 'REQUEST.INVALID');

    const last = await list({ last: 3 });
    expect(last.turns.map((t) => t.user_input)).toEqual(['q3', 'q4', 'q5']);
    expect(last.next_cursor).toBeNull();
    expect((await list({ last: 50 })).turns).toHaveLength(5);

    expect((await list({}, 'u1')).turns).toHaveLength(5);
    await expectDomainError(list({}, 'u2'), 'SESSION.NOT_FOUND');
    await expectDomainError(
      client.request(ListSessionTurns, { tenantId, sessionId: 'nope', query: query({}) }),
      'SESSION.NOT_FOUND',
    );
    // An ended session's turns are still listed; a session without turns lists none.
    await endSession(tenantId, sessionId);
    expect((await list({})).turns).toHaveLength(5);
    const empty = await createSession(tenantId);
    expect(await client.request(ListSessionTurns, { tenantId, sessionId: empty, query: query({}) })).toEqual({
      turns: [],
      next_cursor: null,
    });
  });

  it('lists a user’s recent turns across sessions, by exact user_input and by full-text q', async () => {
    const tenantId = newTenant();
    const s1 = await createSession(tenantId, 'alice');
    const s2 = await createSession(tenantId, 'alice');
    const bob = await createSession(tenantId, 'bob');
    const t = (i: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString();
    await logTurn(tenantId, s1, {
      user_input: 'What were the total orders for CFC1 last week?',
      started_at: t(1),
    });
    await logTurn(tenantId, s2, { user_input: 'Show weekly revenue by region', started_at: t(2) });
    await logTurn(tenantId, s1, { user_input: 'How many orders were cancelled?', started_at: t(3) });
    await logTurn(tenantId, bob, { user_input: 'orders for bob', started_at: t(4) });
    const list = (q: Record<string, unknown>, userId = 'alice') =>
      client.request(ListUserTurns, { tenantId, userId, query: ListUserTurns.schema.shape.query.parse(q) });

    const all = await list({});
    expect(all.turns.map((x) => x.started_at)).toEqual([t(3), t(2), t(1)]);
    expect(all.next_cursor).toBeNull();
    expect((await list({ limit: 2 })).turns).toHaveLength(2);

    const exact = await list({ user_input: 'Show weekly revenue by region' });
    expect(exact.turns.map((x) => x.session_id)).toEqual([s2]);
    expect((await list({ user_input: 'show weekly revenue by region' })).turns).toEqual([]);

    // Stemming: "order" matches "orders"; websearch syntax: "-cancelled" excludes.
    const q = await list({ q: 'order' });
    expect(q.turns.map((x) => x.started_at)).toEqual([t(3), t(1)]);
    const notCancelled = await list({ q: 'orders -cancelled' });
    expect(notCancelled.turns.map((x) => x.started_at)).toEqual([t(1)]);
    expect((await list({ q: '"weekly revenue"' })).turns).toHaveLength(1);
    expect((await list({ q: 'order' }, 'bob')).turns).toHaveLength(1);
  });

  it('deletes a turn: gone from reads, its number never reused, its id never reused', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const first = await logTurn(tenantId, sessionId, { turn_id: 'a', user_input: 'one' });
    await logTurn(tenantId, sessionId, { turn_id: 'b', user_input: 'two' });
    const deleted = await client.request(DeleteTurn, { context: { tenantId }, turnId: 'b' });
    expect(deleted.position).toBeGreaterThan(first.position);
    await expectDomainError(client.request(GetTurn, { tenantId, turnId: 'b' }), 'TURN.NOT_FOUND');
    await expectDomainError(
      client.request(DeleteTurn, { context: { tenantId }, turnId: 'b' }),
      'TURN.NOT_FOUND',
    );
    const next = await logTurn(tenantId, sessionId, { turn_id: 'c', user_input: 'three' });
    expect(next.turn.conversation_turn).toBe(3);
    await expectDomainError(
      logTurn(tenantId, sessionId, { turn_id: 'b', user_input: 'again' }),
      'TURN.ALREADY_EXISTS',
    );
    // A turn id is unique in the tenant, across sessions; another tenant may use it.
    const other = await createSession(tenantId);
    await expectDomainError(
      logTurn(tenantId, other, { turn_id: 'a', user_input: 'x' }),
      'TURN.ALREADY_EXISTS',
    );
    const elsewhere = newTenant();
    const foreign = await createSession(elsewhere);
    expect((await logTurn(elsewhere, foreign, { turn_id: 'a', user_input: 'x' })).turn.turn_id).toBe('a');
    const page = await client.request(ListSessionTurns, {
      tenantId,
      sessionId,
      query: ListSessionTurns.schema.shape.query.parse({}),
    });
    expect(page.turns.map((t) => t.turn_id)).toEqual(['a', 'c']);
    // Scoped callers see only their own turns.
    await expectDomainError(
      client.request(GetTurn, { tenantId, turnId: 'a', userId: 'u2' }),
      'TURN.NOT_FOUND',
    );
    await expectDomainError(
      client.request(DeleteTurn, { context: { tenantId }, turnId: 'a', userId: 'u2' }),
      'TURN.NOT_FOUND',
    );
    expect((await client.request(GetTurn, { tenantId, turnId: 'a', userId: 'u1' })).turn_id).toBe('a');
  });

  it('removes a deleted session’s turns when SessionDeleted arrives from JetStream', async () => {
    const tenantId = newTenant();
    const doomed = await createSession(tenantId);
    const kept = await createSession(tenantId);
    await logTurn(tenantId, doomed, { turn_id: 'd1', user_input: 'one' });
    await logTurn(tenantId, doomed, { turn_id: 'd2', user_input: 'two', status: 'in_progress' });
    await logTurn(tenantId, kept, { turn_id: 'k1', user_input: 'kept' });
    expect(await turnRowsOf(tenantId)).toBe(3);

    await deleteSession(tenantId, doomed); // the relay publishes it, the service's consumer applies it
    await eventually(
      async () => ((await turnRowsOf(tenantId)) === 1 ? true : undefined),
      30_000,
      'turns of the deleted session removed',
    );
    await expectDomainError(client.request(GetTurn, { tenantId, turnId: 'd1' }), 'TURN.NOT_FOUND');
    await expectDomainError(
      client.request(CompleteTurn, { context: { tenantId }, turnId: 'd2', body: {} }),
      'TURN.NOT_FOUND',
    );
    expect((await client.request(GetTurn, { tenantId, turnId: 'k1' })).session_id).toBe(kept);
    await expectDomainError(logTurn(tenantId, doomed, { user_input: 'more' }), 'SESSION.NOT_FOUND');
    await expectDomainError(
      logTurn(tenantId, kept, { turn_id: 'd1', user_input: 'reuse' }),
      'TURN.ALREADY_EXISTS',
    );
  });

  it('answers a retry with the same idempotency key with the first reply, appending once', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const payload = {
      context: { tenantId, idempotencyKey: 'k-1' },
      sessionId,
      body: LogTurn.schema.shape.body.parse({ user_input: 'hello' }),
    };
    const replies = await Promise.all(Array.from({ length: 5 }, () => client.request(LogTurn, payload)));
    expect(new Set(replies.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(await conversationEventsOf(tenantId)).toBe(1);
    const again = await client.request(LogTurn, {
      ...payload,
      context: { ...payload.context, correlationId: 'retry' },
    });
    expect(again).toEqual(replies[0]);
    await expectDomainError(
      client.request(LogTurn, { ...payload, body: LogTurn.schema.shape.body.parse({ user_input: 'other' }) }),
      'REQUEST.INVALID',
    );
    expect(await conversationEventsOf(tenantId)).toBe(1);

    const turnId = replies[0]!.turn.turn_id;
    const del = { context: { tenantId, idempotencyKey: 'k-del' }, turnId };
    const d1 = await client.request(DeleteTurn, del);
    expect(await client.request(DeleteTurn, del)).toEqual(d1);
    expect(await conversationEventsOf(tenantId)).toBe(2);
  });

  it('answers REQUEST.INVALID to bad payloads and appends nothing', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const send = (subject: string, payload: unknown) =>
      lastValueFrom(proxy.send(subject, payload)).then(
        () => undefined,
        (e: unknown) => ErrorReply.parse(e),
      );
    const bad = await send(LogTurn.subject(nats.prefix), {
      context: { tenantId },
      sessionId,
      body: {
        user_input: 42,
        status: 'done',
        agent_responses: [{ agent_name: '', response: 'x', usage: { input_tokens: -1 } }],
        surprise: true,
      },
    });
    expect(bad?.code).toBe('REQUEST.INVALID');
    const paths = z
      .object({ issues: z.array(z.object({ path: z.string() })) })
      .parse(bad?.details)
      .issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'body.user_input',
        'body.status',
        'body.agent_responses.0.agent_name',
        'body.agent_responses.0.usage.input_tokens',
        'body',
      ]),
    );
    const both = await send(RecordTurnResponse.subject(nats.prefix), {
      context: { tenantId },
      turnId: 'x',
      body: { agent_response: { agent_name: 'a', response: 'b' }, tool_call: { name: 'c' } },
    });
    expect(both?.code).toBe('REQUEST.INVALID');
    const closing = await send(LogTurn.subject(nats.prefix), {
      context: { tenantId },
      sessionId,
      body: { user_input: 'x', status: 'in_progress', error: 'nope' },
    });
    expect(closing?.code).toBe('REQUEST.INVALID');
    expect(await conversationEventsOf(tenantId)).toBe(0);
    expect(await turnRowsOf(tenantId)).toBe(0);
  });

  it('rebuilds the same turns read model from the event store, twice', async () => {
    const snapshot = async (): Promise<unknown[]> =>
      tdb.db.query(
        `SELECT tenant_id, turn_id, session_id, user_id, conversation_turn, user_input, agent_responses, tool_calls,
                input_tokens, output_tokens, cached_tokens, total_tokens, cost_usd::text, status, error,
                vector_cache_hit, processing_time_ms, started_at, completed_at, updated_at, version
         FROM turns ORDER BY tenant_id, turn_id`,
      );
    const before = await snapshot();
    expect(before.length).toBeGreaterThan(40);
    const runner = new ProjectionRunner(tdb.db, store, turnsEventRegistry, new TurnsProjection());
    await runner.rebuild();
    expect(await snapshot()).toEqual(before);
    await runner.rebuild();
    expect(await snapshot()).toEqual(before);
    // Applying every event a second time on top changes nothing either (idempotent apply).
    const projection = new TurnsProjection();
    await tdb.db.transaction(async (sql) => {
      for (const envelope of await new EventStore(tdb.db).readAll(
        { transactionId: '0', globalPosition: 0 },
        100_000,
        sql,
      )) {
        await projection.apply(sql, turnsEventRegistry.parse(envelope));
      }
    });
    expect(await snapshot()).toEqual(before);
  });

  describe('group commit of LogTurns', () => {
    const payloadOf = (
      tenantId: string,
      sessionId: string,
      body: Record<string, unknown>,
      extra: { idempotencyKey?: string; userId?: string } = {},
    ) =>
      LogTurn.schema.parse({
        context: { tenantId, ...(extra.idempotencyKey ? { idempotencyKey: extra.idempotencyKey } : {}) },
        sessionId,
        ...(extra.userId ? { userId: extra.userId } : {}),
        body,
      });
    /** Settles every command, started in the same tick (so they queue for the same batch). */
    const settleAll = (
      run: (p: RequestOf<typeof LogTurn>) => Promise<TurnWriteReply>,
      payloads: RequestOf<typeof LogTurn>[],
    ) =>
      Promise.all(
        payloads.map((p) =>
          run(p).then(
            (reply) => ({ reply }),
            (error: unknown) => ({ error }),
          ),
        ),
      );
    const replyOf = (o: { reply: TurnWriteReply } | { error: unknown }): TurnWriteReply => {
      if ('reply' in o) return o.reply;
      throw o.error;
    };
    const transactionsOf = async (tenantId: string): Promise<string[]> =>
      (
        await tdb.db.query(
          `SELECT DISTINCT transaction_id::text AS tx FROM events WHERE tenant_id = $1 AND stream_type = 'conversation'`,
          [tenantId],
        )
      ).map((r) => z.object({ tx: z.string() }).parse(r).tx);
    const at = (s: number) => `2025-03-01T10:00:${String(s).padStart(2, '0')}.123456+02:00`;
    /** Turns with what the database rewrites on the way back (offsets, microseconds, numeric, jsonb). */
    const bodies = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        turn_id: `g-${i}`,
        user_input: `question ${i} about orders`,
        started_at: at(i),
        completed_at: at(i + 1),
        status: i % 3 === 2 ? 'failed' : 'completed',
        ...(i % 3 === 2 ? { error: 'backend timed out' } : {}),
        processing_time_ms: 100 + i,
        vector_cache_hit: i % 2 === 0,
        agent_responses: [
          { agent_name: 'GenAgent', response: `answer ${i}`, model: 'gpt-4o', started_at: at(i) },
          {
            agent_name: 'SummAgent',
            response: 'summary',
            model: 'gpt-4o-mini-2024-07-18',
            usage: { input_tokens: 1000 + i, output_tokens: 7, cached_tokens: 3, reasoning_tokens: 0 },
          },
        ],
        tool_calls: [{ tool_call_id: `c-${i}`, name: 'orders', request: { q: i }, result: { n: i * 1.5 } }],
      }));

    it('writes concurrent LogTurns of many sessions in one transaction, each reply byte for byte the single path’s', async () => {
      const batcher = app.get(LogTurnBatcher);
      const handler = app.get(ConversationCommandHandler);
      const [batched, alone] = [newTenant(), newTenant()];
      const sessionIds = Array.from({ length: 12 }, () => randomUUID());
      for (const tenantId of [batched, alone])
        for (const [i, id] of sessionIds.entries()) await createSession(tenantId, `u${i}`, id);
      const whole = bodies(12);
      const started = sessionIds.map((id, i) =>
        payloadOf(batched, id, {
          turn_id: `open-${i}`,
          user_input: 'step by step',
          status: 'in_progress',
          started_at: at(i),
          agent_responses: [{ agent_name: 'GenAgent', response: 'first', model: 'gpt-4o' }],
          tool_calls: [{ tool_call_id: 'q', name: 'sql', status: 'running', request: { sql: 'SELECT 1' } }],
        }),
      );
      const wholeOut = await settleAll(
        (p) => batcher.logTurn(p),
        sessionIds.map((id, i) => payloadOf(batched, id, whole[i]!)),
      );
      const startedOut = await settleAll((p) => batcher.logTurn(p), started);
      expect((await transactionsOf(batched)).length).toBe(2);
      const replies = [...wholeOut, ...startedOut].map(replyOf);
      expect(replies.map((r) => r.turn.conversation_turn)).toEqual([
        ...sessionIds.map(() => 1),
        ...sessionIds.map(() => 2),
      ]);

      // The single path's reply is the turn read back and the append's position: the same bytes.
      for (const reply of replies) {
        const single = await store.transaction((tx) =>
          handler.replyFor(tx, batched, reply.turn.turn_id, reply.position),
        );
        expect(JSON.stringify(reply)).toBe(JSON.stringify(TurnWriteReply.parse(single)));
      }
      // The same whole turns logged one by one through the single path answer the same (but positions).
      for (const [i, id] of sessionIds.entries()) {
        const single = await batcher.logTurnAlone(payloadOf(alone, id, whole[i]!));
        expect(JSON.stringify({ ...single, position: 0 })).toBe(
          JSON.stringify({ ...replies[i]!, position: 0 }),
        );
      }
      expect((await transactionsOf(alone)).length).toBe(12);

      // The rows written for the batch are the rows `apply` leaves after the same events one by one.
      const rowsOf = (tenantId: string) =>
        tdb.db.query(
          `SELECT t.*, t.cost_usd::text AS cost FROM turns t WHERE tenant_id = $1 ORDER BY turn_id`,
          [tenantId],
        );
      const written = await rowsOf(batched);
      await tdb.db.transaction(async (sql) => {
        await sql.query('DELETE FROM turns WHERE tenant_id = $1', [batched]);
        await sql.query('DELETE FROM turn_ids WHERE tenant_id = $1', [batched]);
        const events = await sql.query(
          `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND stream_type = 'conversation'
           ORDER BY global_position`,
          [batched],
        );
        const projection = new TurnsProjection();
        for (const row of events) await projection.apply(sql, turnsEventRegistry.parse(toEnvelope(row)));
      });
      expect(await rowsOf(batched)).toEqual(written);
    });

    it('refuses one command of a batch without affecting the others', async () => {
      const batcher = app.get(LogTurnBatcher);
      const tenantId = newTenant();
      const [ok1, ok2, ended, other, mine, keyed] = await Promise.all(
        Array.from({ length: 6 }, () => createSession(tenantId)),
      );
      await endSession(tenantId, ended!);
      await logTurn(tenantId, other!, { turn_id: 'taken', user_input: 'first' });
      await logTurn(tenantId, mine!, { turn_id: 'mine-1', user_input: 'first' });
      await batcher.logTurn(payloadOf(tenantId, keyed!, { user_input: 'keyed' }, { idempotencyKey: 'used' }));
      const before = await conversationEventsOf(tenantId);
      const out = await settleAll(
        (p) => batcher.logTurn(p),
        [
          payloadOf(tenantId, ok1!, { user_input: 'fine' }),
          payloadOf(tenantId, ended!, { user_input: 'late' }, { idempotencyKey: 'on-ended' }),
          payloadOf(tenantId, 'no-such-session', { user_input: 'lost' }),
          payloadOf(tenantId, ok2!, { turn_id: 'taken', user_input: 'reuse' }),
          payloadOf(tenantId, mine!, { turn_id: 'mine-1', user_input: 'again' }),
          payloadOf(tenantId, keyed!, { user_input: 'another request' }, { idempotencyKey: 'used' }),
          payloadOf(tenantId, ok2!, { user_input: 'x', status: 'in_progress', error: 'not yet' }),
          payloadOf(tenantId, ok1!, { user_input: 'someone else' }, { userId: 'u2' }),
          payloadOf(newTenant(), ok2!, { user_input: 'elsewhere' }),
        ],
      );
      const codes = out.map((o) =>
        'reply' in o ? 'ok' : o.error instanceof DomainError ? o.error.code : String(o.error),
      );
      expect(codes).toEqual([
        'ok',
        'SESSION.ALREADY_ENDED',
        'SESSION.NOT_FOUND',
        'TURN.ALREADY_EXISTS',
        'TURN.ALREADY_EXISTS',
        'REQUEST.INVALID',
        'REQUEST.INVALID',
        'SESSION.NOT_FOUND',
        'SESSION.NOT_FOUND',
      ]);
      expect(await conversationEventsOf(tenantId)).toBe(before + 1);
      // A refused command's key is given back (as its rollback would): the same request may run later.
      expect(await count('SELECT count(*) AS n FROM idempotency_keys WHERE tenant_id = $1', [tenantId])).toBe(
        1,
      );
      const first = out[0]!;
      expect('reply' in first && first.reply.turn).toMatchObject({ session_id: ok1, conversation_turn: 1 });
    });

    it('answers concurrent retries with the same idempotency key with the first reply', async () => {
      const batcher = app.get(LogTurnBatcher);
      const tenantId = newTenant();
      const sessions = await Promise.all(Array.from({ length: 4 }, () => createSession(tenantId)));
      const payloads = sessions.flatMap((id, i) =>
        Array.from({ length: 5 }, () =>
          payloadOf(tenantId, id, { user_input: `q${i}` }, { idempotencyKey: `k${i}` }),
        ),
      );
      const out = await settleAll((p) => batcher.logTurn(p), payloads);
      const replies = out.map((o) => JSON.stringify(replyOf(o)));
      for (let i = 0; i < 4; i++) expect(new Set(replies.slice(i * 5, i * 5 + 5)).size).toBe(1);
      expect(new Set(replies).size).toBe(4);
      expect(await conversationEventsOf(tenantId)).toBe(4);
      // Over NATS, with another correlation id: still the first reply.
      const again = await client.request(LogTurn, {
        ...payloads[0]!,
        context: { ...payloads[0]!.context, correlationId: 'retry' },
      });
      expect(JSON.stringify(again)).toBe(replies[0]);
    });

    it('reruns each command of a failing batch alone: only the command at fault fails', async () => {
      const batcher = app.get(LogTurnBatcher);
      const tenantId = newTenant();
      const sessions = await Promise.all(Array.from({ length: 5 }, () => createSession(tenantId)));
      const spoiled = sessions[2]!;
      // A row the events do not know holds number 1 of one session: the batch's insert of the turns fails.
      await tdb.db.query(
        `INSERT INTO turns (tenant_id, turn_id, session_id, conversation_turn, user_input, status, started_at,
                            updated_at, version, last_global_position)
         VALUES ($1, 'squatter', $2, 1, 'x', 'completed', now(), now(), 1, 1)`,
        [tenantId, spoiled],
      );
      try {
        const out = await settleAll(
          (p) => batcher.logTurn(p),
          sessions.map((id) => payloadOf(tenantId, id, { user_input: 'hello' })),
        );
        const fault = out[2]!;
        expect('error' in fault && fault.error).toMatchObject({ code: '23505' });
        expect('error' in fault && fault.error instanceof DomainError).toBe(false);
        const ok = out.filter((_, i) => i !== 2).map(replyOf);
        expect(ok.map((r) => r.turn.conversation_turn)).toEqual([1, 1, 1, 1]);
        expect(await conversationEventsOf(tenantId)).toBe(4);
        // Each ran alone, in a transaction of its own.
        expect((await transactionsOf(tenantId)).length).toBe(4);
      } finally {
        await tdb.db.query(`DELETE FROM turns WHERE tenant_id = $1 AND turn_id = 'squatter'`, [tenantId]);
      }
    });

    it('reads a conversation only once its lock is held: a turn committed meanwhile is seen, not conflicted with', async () => {
      const batcher = app.get(LogTurnBatcher);
      const handler = app.get(ConversationCommandHandler);
      const tenantId = newTenant();
      const [busy, beside] = await Promise.all([createSession(tenantId), createSession(tenantId)]);
      let held!: () => void;
      const holding = new Promise<void>((resolve) => (held = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      // The single path logs turn 1 and keeps its transaction (and the conversation's lock) open.
      const first = store.transaction(async (tx) => {
        const reply = await handler.logTurn(
          tx,
          { tenantId },
          { sessionId: busy, turn: LogTurn.schema.shape.body.parse({ user_input: 'first' }) },
        );
        held();
        await released;
        return reply;
      });
      await holding;
      const batch = settleAll(
        (p) => batcher.logTurn(p),
        [
          payloadOf(tenantId, busy, { user_input: 'second' }),
          payloadOf(tenantId, beside, { user_input: 'beside' }),
        ],
      );
      await eventually(async () => {
        const rows = await tdb.db.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'`,
        );
        return rows.length > 0 ? true : undefined;
      });
      release();
      expect((await first).turn.conversation_turn).toBe(1);
      const [second, other] = (await batch).map(replyOf);
      expect(second?.turn.conversation_turn).toBe(2);
      expect(other?.turn.conversation_turn).toBe(1);
      // Both in the batch's one transaction: turn 2 was decided on the committed turn 1, not rerun alone.
      expect((await transactionsOf(tenantId)).length).toBe(2);
    });

    it('over NATS, concurrent LogTurns of many sessions share transactions', async () => {
      const tenantId = newTenant();
      const sessions = await Promise.all(Array.from({ length: 40 }, () => createSession(tenantId)));
      const replies = await Promise.all(sessions.map((id) => logTurn(tenantId, id, { user_input: 'hi' })));
      expect(replies.map((r) => r.turn.conversation_turn)).toEqual(sessions.map(() => 1));
      expect((await transactionsOf(tenantId)).length).toBeLessThan(40);
    });
  });
});
