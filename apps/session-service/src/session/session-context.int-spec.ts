import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { z } from 'zod';
import {
  type AgentResponseData,
  AgentRespondedV1,
  conversationStreamId,
  CONVERSATION_CATEGORY,
  CreateSession,
  DeleteSession,
  type EventData,
  type EventEnvelope,
  GetSession,
  ListUserSessions,
  SESSION_CATEGORY,
  SessionCreatedV1,
  sessionStreamId,
  ToolCallRecordedV1,
  TurnCompletedV1,
  TurnDeletedV1,
  TurnFailedV1,
  TurnLoggedV1,
  TurnStartedV1,
} from '@threadline/contracts';
import { EventStore, type NewEvent, ProjectionRunner } from '@threadline/event-store';
import { RequestClient, startServiceTransports } from '@threadline/messaging';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  type TestDatabase,
  type TestNats,
  testNatsUrl,
} from '@threadline/testing';
import { AppModule } from '../app.module';
import { SessionServiceConfig } from '../config';
import { conversationEventRegistry } from './session-context';
import { SESSION_CONTEXT_RUNNER } from './session-context.controller';
import { SessionContextProjection } from './session-context.projection';
import { SessionModule } from './session.module';
import { SessionsProjection } from './sessions.projection';

jest.setTimeout(60_000);

let tdb: TestDatabase;
let nats: TestNats;
let app: INestApplication;
let proxy: ClientProxy;
let client: RequestClient;
let store: EventStore;

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;
/** An ISO time `seconds` from the start of this test file (after every session's creation when > 0). */
const base = Date.now() + 60_000;
const at = (seconds: number) => new Date(base + seconds * 1000).toISOString();

const usage = { inputTokens: 12, outputTokens: 30, cachedTokens: 0, reasoningTokens: 0, totalTokens: 42 };
const agentResponse = (over: Partial<AgentResponseData>): AgentResponseData => ({
  agentName: 'assistant',
  response: 'ok',
  turnOrder: 0,
  model: 'gpt-4o-mini',
  startedAt: at(0),
  executionTimeMs: 100,
  usage,
  usageSource: 'reported',
  costUsd: 0.00002,
  ...over,
});

// Events exactly as the chat-log-service writes them (data parsed by the contracts before appending).
const turnLogged = (data: EventData<typeof TurnLoggedV1>): NewEvent => ({
  type: TurnLoggedV1.type,
  data: TurnLoggedV1.schema.parse(data),
});
const turnStarted = (data: EventData<typeof TurnStartedV1>): NewEvent => ({
  type: TurnStartedV1.type,
  data: TurnStartedV1.schema.parse(data),
});
const agentResponded = (data: EventData<typeof AgentRespondedV1>): NewEvent => ({
  type: AgentRespondedV1.type,
  data: AgentRespondedV1.schema.parse(data),
});
const toolCallRecorded = (data: EventData<typeof ToolCallRecordedV1>): NewEvent => ({
  type: ToolCallRecordedV1.type,
  data: ToolCallRecordedV1.schema.parse(data),
});
const turnCompleted = (data: EventData<typeof TurnCompletedV1>): NewEvent => ({
  type: TurnCompletedV1.type,
  data: TurnCompletedV1.schema.parse(data),
});
const turnFailed = (data: EventData<typeof TurnFailedV1>): NewEvent => ({
  type: TurnFailedV1.type,
  data: TurnFailedV1.schema.parse(data),
});
const turnDeleted = (data: EventData<typeof TurnDeletedV1>): NewEvent => ({
  type: TurnDeletedV1.type,
  data: TurnDeletedV1.schema.parse(data),
});

/** A whole completed turn of `sessionId`, answered by `agent` with `response` (times in seconds from `base`). */
const wholeTurn = (
  sessionId: string,
  n: number,
  over: Partial<EventData<typeof TurnLoggedV1>> = {},
): NewEvent =>
  turnLogged({
    turnId: `${sessionId}-turn-${n}`,
    sessionId,
    userId: 'u1',
    conversationTurn: n,
    userInput: `question ${n}`,
    agentResponses: [agentResponse({ response: `answer ${n}` })],
    toolCalls: [],
    vectorCacheHit: false,
    processingTimeMs: 250,
    status: 'completed',
    error: null,
    startedAt: at(n),
    completedAt: at(n + 0.5),
    ...over,
  });

/** Appends conversation events as the chat-log-service does (the relay publishes them to JetStream). */
async function appendTurnEvents(
  tenantId: string,
  sessionId: string,
  events: NewEvent[],
): Promise<EventEnvelope[]> {
  const result = await store.append(
    conversationStreamId(tenantId, sessionId),
    CONVERSATION_CATEGORY,
    'any',
    events,
    {
      metadata: { tenantId, userId: 'u1' },
    },
  );
  return result.events;
}

const getSession = (tenantId: string, sessionId: string) =>
  client.request(GetSession, { tenantId, sessionId });

/**
 * Appends `events` and waits until the consumer applied them (the `session_context` projection's
 * position of the stream reached the last one), then answers the session as GetSession shows it.
 */
async function appendAndApply(tenantId: string, sessionId: string, events: NewEvent[]) {
  const appended = await appendTurnEvents(tenantId, sessionId, events);
  const last = appended[appended.length - 1];
  if (!last) throw new Error('nothing appended');
  await eventually(
    async () => {
      const [row] = await tdb.db.query<{ position: string }>(
        'SELECT position FROM projection_streams WHERE projection = $1 AND stream_id = $2',
        ['session_context', last.streamId],
      );
      return Number(row?.position ?? 0) >= last.streamPosition ? true : undefined;
    },
    30_000, // the relay tails below the cluster-wide xmin: a long transaction elsewhere delays it
    `${last.streamId} applied up to ${last.streamPosition}`,
  );
  return getSession(tenantId, sessionId);
}

async function createSession(tenantId: string): Promise<string> {
  const reply = await client.request(CreateSession, { context: { tenantId }, userId: 'u1', title: 'Chat' });
  return reply.session.session_id;
}

beforeAll(async () => {
  tdb = await createTestDatabase(SessionModule.migrations);
  nats = await createTestNats();
  const config = SessionServiceConfig.parse({
    DATABASE_URL: tdb.url,
    NATS_URL: testNatsUrl(),
    NATS_STREAM: nats.stream,
    NATS_SUBJECT_PREFIX: nats.prefix,
    MIGRATE_ON_START: 'true',
    LOG_LEVEL: 'warn',
  });
  app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { logger: false });
  // As main.ts: commands and queries over NATS, and the JetStream consumers of the event handlers.
  await startServiceTransports(app, config, {
    queue: 'session-service',
    events: { durable: 'session-service', deadLetters: tdb.deadLetters },
  });
  await app.init();
  proxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [testNatsUrl()] } });
  await proxy.connect();
  client = new RequestClient(proxy, nats.prefix, 15_000);
  store = app.get(EventStore);
});

afterAll(async () => {
  await proxy?.close();
  await app?.close();
  await tdb?.drop();
  await nats?.cleanup();
});

describe('session context from conversation events (JetStream consumer)', () => {
  it('a new session has no turns and an empty context', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const session = await getSession(tenantId, sessionId);
    expect(session.turn_count).toBe(0);
    expect(session.context).toEqual({
      last_query: null,
      last_response: null,
      last_agent_used: null,
      last_execution_time_ms: null,
      error_count: 0,
      last_error: null,
    });
  });

  it('keeps turn_count, last_activity_at and the latest turn’s context, whole and incremental turns', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const created = await getSession(tenantId, sessionId);
    const long = `${'x'.repeat(499)}é${'y'.repeat(100)}`;
    const first = await appendAndApply(tenantId, sessionId, [
      wholeTurn(sessionId, 1, {
        agentResponses: [
          agentResponse({ agentName: 'router', turnOrder: 0, response: 'routing', executionTimeMs: 20 }),
          agentResponse({ agentName: 'writer', turnOrder: 1, response: long, executionTimeMs: 640 }),
        ],
      }),
    ]);
    expect(first.context).toEqual({
      last_query: 'question 1',
      last_response: `${'x'.repeat(499)}é`,
      last_agent_used: 'writer',
      last_execution_time_ms: 640,
      error_count: 0,
      last_error: null,
    });
    expect(first.last_activity_at).toBe(at(1.5));
    // The session's own fields are untouched: same version (ETag), same title.
    expect(first).toMatchObject({ version: created.version, title: 'Chat', updated_at: created.updated_at });

    // An incremental turn: started, two responses, a tool call, completed.
    const turnId = `${sessionId}-turn-2`;
    const opened = await appendAndApply(tenantId, sessionId, [
      turnStarted({
        turnId,
        sessionId,
        userId: 'u1',
        conversationTurn: 2,
        userInput: 'book a table for two',
        vectorCacheHit: false,
        startedAt: at(10),
      }),
    ]);
    expect(opened.context).toMatchObject({ last_query: 'book a table for two', last_response: null });
    expect(opened.last_activity_at).toBe(at(10));

    const completed = await appendAndApply(tenantId, sessionId, [
      agentResponded({
        turnId,
        sessionId,
        agentResponse: agentResponse({
          agentName: 'planner',
          turnOrder: 0,
          response: 'Looking…',
          executionTimeMs: 80,
        }),
        respondedAt: at(11),
      }),
      toolCallRecorded({
        turnId,
        sessionId,
        toolCall: {
          toolCallId: 'call-1',
          name: 'find_restaurants',
          request: { party: 2 },
          status: 'completed',
          result: [{ name: 'Chez Nous' }],
          error: null,
        },
        recordedAt: at(12),
      }),
      agentResponded({
        turnId,
        sessionId,
        agentResponse: agentResponse({
          agentName: 'booker',
          turnOrder: 1,
          response: 'Booked Chez Nous at 8pm.',
          executionTimeMs: null,
        }),
        respondedAt: at(13),
      }),
      turnCompleted({
        turnId,
        sessionId,
        processingTimeMs: 2900,
        vectorCacheHit: false,
        completedAt: at(14),
      }),
      // An event older than the session's activity does not move it back.
      toolCallRecorded({
        turnId,
        sessionId,
        toolCall: {
          toolCallId: 'call-1',
          name: 'find_restaurants',
          request: { party: 2 },
          status: 'completed',
          result: [{ name: 'Chez Nous' }],
          error: null,
        },
        recordedAt: at(5),
      }),
    ]);
    expect(completed.turn_count).toBe(2);
    expect(completed.context).toEqual({
      last_query: 'book a table for two',
      last_response: 'Booked Chez Nous at 8pm.',
      last_agent_used: 'booker',
      last_execution_time_ms: 2900, // the response had no execution time: the turn's processing time
      error_count: 0,
      last_error: null,
    });
    expect(completed.last_activity_at).toBe(at(14));

    // Lists return the same fields.
    const page = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'all',
      limit: 10,
      sort: 'last_activity_at',
      order: 'desc',
    });
    expect(page.sessions).toEqual([completed]);
  });

  it('counts failed turns as errors and decrements turn_count on delete', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    const failedId = `${sessionId}-turn-3`;
    const withErrors = await appendAndApply(tenantId, sessionId, [
      wholeTurn(sessionId, 1),
      wholeTurn(sessionId, 2, {
        status: 'failed',
        error: 'agent backend timed out after 30000 ms',
        agentResponses: [],
        processingTimeMs: 30000,
      }),
      turnStarted({
        turnId: failedId,
        sessionId,
        userId: 'u1',
        conversationTurn: 3,
        userInput: 'try again',
        vectorCacheHit: false,
        startedAt: at(20),
      }),
      turnFailed({
        turnId: failedId,
        sessionId,
        error: 'HTTP 502 from the agent backend',
        processingTimeMs: 700,
        failedAt: at(21),
      }),
    ]);
    expect(withErrors.turn_count).toBe(3);
    expect(withErrors.context).toEqual({
      last_query: 'try again',
      last_response: null,
      last_agent_used: null,
      last_execution_time_ms: 700,
      error_count: 2,
      last_error: 'HTTP 502 from the agent backend',
    });
    expect(withErrors.last_activity_at).toBe(at(21));

    const afterDelete = await appendAndApply(tenantId, sessionId, [
      turnDeleted({ turnId: `${sessionId}-turn-1`, sessionId, deletedAt: at(100) }),
    ]);
    expect(afterDelete.turn_count).toBe(2);
    expect(afterDelete.context).toEqual(withErrors.context); // an older turn: the context stays
    expect(afterDelete.last_activity_at).toBe(at(21)); // a deletion is not activity

    const latestDeleted = await appendAndApply(tenantId, sessionId, [
      turnDeleted({ turnId: failedId, sessionId, deletedAt: at(101) }),
    ]);
    expect(latestDeleted.turn_count).toBe(1);
    // The deleted turn's query and error are gone; the error count stays (failures as they happened).
    expect(latestDeleted.context).toEqual({
      last_query: null,
      last_response: null,
      last_agent_used: null,
      last_execution_time_ms: null,
      error_count: 2,
      last_error: null,
    });
  });

  it('ignores the conversation events of a deleted session', async () => {
    const tenantId = newTenant();
    const sessionId = await createSession(tenantId);
    await client.request(DeleteSession, { context: { tenantId }, sessionId });
    // The runner applied it (its position moves only when `apply` succeeded) without a row to update.
    await expect(appendAndApply(tenantId, sessionId, [wholeTurn(sessionId, 1)])).rejects.toMatchObject({
      code: 'SESSION.NOT_FOUND',
    });
    expect(await tdb.db.query('SELECT 1 FROM sessions WHERE tenant_id = $1', [tenantId])).toEqual([]);
  });

  it('rebuilds the context by replay: the rows the consumer made, twice over', async () => {
    const snapshot = async () =>
      JSON.stringify(
        await tdb.db.query(
          'SELECT tenant_id, session_id, turn_count, context, context_turn, last_activity_at FROM sessions ORDER BY tenant_id, session_id',
        ),
      );
    const runner = app.get<ProjectionRunner>(SESSION_CONTEXT_RUNNER);
    const total = z.coerce
      .number()
      .parse((await tdb.db.query<{ n: unknown }>('SELECT count(*) AS n FROM events', []))[0]?.n);
    // Everything appended so far is applied (the live checkpoint reached the head).
    const [head] = await tdb.db.query<{ g: string }>(
      `SELECT max(global_position) AS g FROM events WHERE stream_type = $1`,
      [CONVERSATION_CATEGORY],
    );
    await eventually(
      async () => ((await runner.position()) >= Number(head?.g) ? true : undefined),
      30_000,
      'the live checkpoint at the head',
    );
    const live = await snapshot();
    expect(live).toContain('"turn_count":2');
    const rebuildAll = () =>
      eventually(
        async () => ((await runner.rebuild()).events === total ? true : undefined),
        30_000,
        `a rebuild replaying all ${total} events`,
      );
    await rebuildAll();
    expect(await snapshot()).toBe(live);
    await rebuildAll();
    expect(await snapshot()).toBe(live);
  });

  it('dead-letters nothing', async () => {
    expect(await tdb.db.query('SELECT consumer, error FROM dead_letters')).toEqual([]);
  });
});

describe('session_context runner: duplicates and out-of-order delivery', () => {
  // A database of its own without a relay or consumer, so only this test hands events to the runner.
  let own: TestDatabase;
  let ownStore: EventStore;
  let runner: ProjectionRunner;

  beforeAll(async () => {
    own = await createTestDatabase(SessionModule.migrations, 4);
    ownStore = new EventStore(own.db);
    runner = new ProjectionRunner(
      own.db,
      ownStore,
      conversationEventRegistry,
      new SessionContextProjection(),
    );
  });
  afterAll(async () => {
    await own?.drop();
  });

  const contextRow = async (tenantId: string, sessionId: string) =>
    z
      .object({
        turn_count: z.number(),
        context: z.record(z.string(), z.unknown()),
        last_activity_at: z.date(),
      })
      .parse(
        (
          await own.db.query(
            'SELECT turn_count, context, last_activity_at FROM sessions WHERE tenant_id = $1 AND session_id = $2',
            [tenantId, sessionId],
          )
        )[0],
      );

  /** SessionCreated of user u1 appended with the `sessions` read model inline (the row the context updates). */
  const createSessionRow = async (tenantId: string, sessionId: string) =>
    ownStore.append(
      sessionStreamId(tenantId, sessionId),
      SESSION_CATEGORY,
      'no_stream',
      [
        {
          type: SessionCreatedV1.type,
          data: SessionCreatedV1.schema.parse({
            sessionId,
            userId: 'u1',
            title: 'Chat',
            metadata: {},
            createdFrom: null,
            startedAt: at(0),
          }),
        },
      ],
      { metadata: { tenantId, userId: 'u1' }, inline: new SessionsProjection().inline },
    );

  it('skips what it applied, backfills a gap from the event store, and decrements on delete', async () => {
    const tenantId = newTenant();
    const sessionId = 'chat-1';
    await createSessionRow(tenantId, sessionId);
    const { events } = await ownStore.append(
      conversationStreamId(tenantId, sessionId),
      CONVERSATION_CATEGORY,
      'no_stream',
      [
        wholeTurn(sessionId, 1),
        wholeTurn(sessionId, 2, { status: 'failed', error: 'boom', agentResponses: [] }),
        wholeTurn(sessionId, 3, {
          agentResponses: [agentResponse({ agentName: 'third', response: 'z'.repeat(900) })],
        }),
        turnDeleted({ turnId: `${sessionId}-turn-1`, sessionId, deletedAt: at(50) }),
      ],
      { metadata: { tenantId, userId: 'u1' } },
    );
    const [e1, e2, e3, e4] = events;
    if (!e1 || !e2 || !e3 || !e4) throw new Error('four events expected');

    // Event 3 arrives first: events 1 and 2 are read from the store and applied before it.
    expect(await runner.handle(e3)).toBe('backfilled');
    const afterThree = await contextRow(tenantId, sessionId);
    expect(afterThree.turn_count).toBe(3);
    expect(afterThree.context).toMatchObject({
      last_query: 'question 3',
      last_agent_used: 'third',
      error_count: 1,
      last_error: 'boom',
    });
    expect(afterThree.context['last_response']).toBe('z'.repeat(500));
    expect(afterThree.last_activity_at.toISOString()).toBe(at(3.5));

    // Late and duplicate deliveries change nothing.
    expect(await runner.handle(e1)).toBe('skipped');
    expect(await runner.handle(e2)).toBe('skipped');
    expect(await runner.handle(e3)).toBe('skipped');
    expect(await contextRow(tenantId, sessionId)).toEqual(afterThree);

    expect(await runner.handle(e4)).toBe('applied');
    expect(await runner.handle(e4)).toBe('skipped');
    const afterDelete = await contextRow(tenantId, sessionId);
    expect(afterDelete.turn_count).toBe(2);
    expect(afterDelete.context).toEqual(afterThree.context);
    expect(afterDelete.last_activity_at).toEqual(afterThree.last_activity_at);
    expect(await runner.position()).toBe(e4.globalPosition);

    // A session event is not this projection's: ignored.
    const [sessionEvent] = await ownStore.readStream(sessionStreamId(tenantId, sessionId));
    if (!sessionEvent) throw new Error('the session event');
    expect(await runner.handle(sessionEvent)).toBe('ignored');
  });

  it('gives concurrent deliveries, committed together, the rows of one-by-one handling', async () => {
    const tenantId = newTenant();
    // Two sessions with the same conversation: one handled event by event, the other all at once.
    const conversation = async (sessionId: string) => {
      await createSessionRow(tenantId, sessionId);
      const { events } = await ownStore.append(
        conversationStreamId(tenantId, sessionId),
        CONVERSATION_CATEGORY,
        'no_stream',
        [
          wholeTurn(sessionId, 1),
          wholeTurn(sessionId, 2, { status: 'failed', error: 'boom', agentResponses: [] }),
          turnDeleted({ turnId: `${sessionId}-turn-1`, sessionId, deletedAt: at(50) }),
          wholeTurn(sessionId, 3, { agentResponses: [agentResponse({ agentName: 'third' })] }),
        ],
        { metadata: { tenantId, userId: 'u1' } },
      );
      const [e1, e2, e3, e4] = events;
      if (!e1 || !e2 || !e3 || !e4) throw new Error('four events expected');
      // Duplicates, a gap (3 before 2) and late deliveries.
      return [e1, e1, e3, e2, e4, e2, e4];
    };
    const oneByOne = await conversation('one-by-one');
    const together = await conversation('together');

    const expected: string[] = [];
    for (const e of oneByOne) expected.push(await runner.handle(e));
    expect(await Promise.all(together.map((e) => runner.handle(e)))).toEqual(expected);
    expect(expected).toEqual([
      'applied',
      'skipped',
      'backfilled',
      'skipped',
      'applied',
      'skipped',
      'skipped',
    ]);
    const row = await contextRow(tenantId, 'together');
    expect(row).toEqual(await contextRow(tenantId, 'one-by-one'));
    expect(row.turn_count).toBe(2);
    expect(row.context).toMatchObject({ last_query: 'question 3', last_agent_used: 'third', error_count: 1 });
  });
});
