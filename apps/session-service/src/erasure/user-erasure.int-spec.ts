import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  CONVERSATION_CATEGORY,
  conversationStreamId,
  CreateSession,
  DeleteSession,
  EraseUser,
  GetSession,
  GetSessionHistory,
  GetSessionState,
  ListUserSessions,
  TurnStartedV1,
  UpdateSessionState,
  userStreamId,
} from '@threadline/contracts';
import { EventStore, ProjectionRunner, START } from '@threadline/event-store';
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
import { AppModule } from '../app.module';
import { SessionServiceConfig } from '../config';
import { conversationEventRegistry } from '../session/session-context';
import { SessionContextProjection } from '../session/session-context.projection';
import { SessionModule } from '../session/session.module';
import { SessionsProjection, sessionEventRegistry } from '../session/sessions.projection';
import { SessionStatesProjection, sessionStatesEventRegistry } from '../state/session-states.projection';
import { UserErasure, type UserErasureOptions } from './user-erasure';

jest.setTimeout(60_000);

let tdb: TestDatabase;
let nats: TestNats;
let app: INestApplication;
let proxy: ClientProxy;
let client: RequestClient;
let store: EventStore;

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;

/** A session of `userId` with a workflow state and `turns` conversation events (appended as the chat-log-service would). */
async function sessionWithData(tenantId: string, userId: string, turns = 2): Promise<string> {
  const reply = await client.request(CreateSession, {
    context: { tenantId },
    userId,
    title: `secret title of ${userId}`,
    metadata: { email: `${userId}@example.com` },
  });
  const sessionId = reply.session.session_id;
  await client.request(UpdateSessionState, {
    context: { tenantId },
    sessionId,
    patch: { summary: `private summary of ${userId}`, constraints: { diagnosis: 'confidential' } },
  });
  for (let n = 1; n <= turns; n++) {
    await store.append(
      conversationStreamId(tenantId, sessionId),
      CONVERSATION_CATEGORY,
      n - 1,
      [
        {
          type: TurnStartedV1.type,
          data: TurnStartedV1.schema.parse({
            turnId: `${sessionId}-turn-${n}`,
            sessionId,
            userId,
            conversationTurn: n,
            userInput: `my card number is 4111 (${userId}, turn ${n})`,
            vectorCacheHit: false,
            startedAt: new Date().toISOString(),
          }),
        },
      ],
      { metadata: { tenantId, userId } },
    );
  }
  return sessionId;
}

/** Every event of the tenant, as stored (data and metadata as text, to search for personal data). */
const eventsOf = (tenantId: string) =>
  tdb.db.query<{
    stream_id: string;
    event_type: string;
    stream_position: string;
    data: string;
    metadata: string;
  }>(
    `SELECT stream_id, event_type, stream_position, data::text AS data, metadata::text AS metadata
     FROM events WHERE tenant_id = $1 ORDER BY global_position`,
    [tenantId],
  );

/** Resolves once every event of the tenant is on JetStream (the relay runs in the app). */
const allPublished = (tenantId: string) =>
  eventually(async () => {
    const ids = new Set((await nats.messages()).map((m) => m.msgId));
    const [row] = await tdb.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND NOT (event_id::text = ANY($2::text[]))`,
      [tenantId, [...ids]],
    );
    return Number(row?.n) === 0 ? true : undefined;
  });

/** The JetStream messages of the tenant's erased (tombstoned) events still in the stream. */
async function erasedMessagesOf(tenantId: string) {
  const erased = await tdb.db.query<{ event_id: string }>(
    `SELECT event_id::text AS event_id FROM events WHERE tenant_id = $1 AND metadata ? 'erased'`,
    [tenantId],
  );
  const ids = new Set(erased.map((r) => r.event_id));
  return {
    erased: ids.size,
    left: (await nats.messages()).filter((m) => m.msgId !== undefined && ids.has(m.msgId)),
  };
}

/** A `UserErasure` over the test's stream whose first purge attempt fails (the later ones run). */
function failingFirstPurge(options: UserErasureOptions = {}): UserErasure {
  let attempts = 0;
  return new UserErasure(
    store,
    { nc: nats.nc, stream: nats.stream, prefix: nats.prefix },
    {
      purgeRetryMs: 0,
      ...options,
      beforePurge: () => {
        attempts += 1;
        if (attempts === 1) throw new Error('NATS unavailable (injected)');
      },
    },
  );
}

const erasureRow = async (tenantId: string) =>
  tdb.db.query(
    `SELECT events, jetstream_messages_deleted, completed_at IS NOT NULL AS completed, purge_attempts,
            purge_error, purge_event_ids IS NOT NULL AS pending
     FROM erasures WHERE tenant_id = $1 ORDER BY id`,
    [tenantId],
  );

const rowsOf = async (table: string, tenantId: string) =>
  tdb.db.query(`SELECT session_id FROM ${table} WHERE tenant_id = $1 ORDER BY session_id`, [tenantId]);

beforeAll(async () => {
  tdb = await createTestDatabase(SessionModule.migrations);
  nats = await createTestNats();
  store = new EventStore(tdb.db);
  const config = SessionServiceConfig.parse({
    DATABASE_URL: tdb.url,
    NATS_URL: testNatsUrl(),
    NATS_STREAM: nats.stream,
    NATS_SUBJECT_PREFIX: nats.prefix,
    MIGRATE_ON_START: 'true',
    LOG_LEVEL: 'warn',
  });
  app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), {
    logger: ['fatal'], // the test injects failures: their error lines are expected, not news
  });
  await startServiceTransports(app, config, { queue: 'session-service' });
  await app.init();
  proxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [testNatsUrl()] } });
  await proxy.connect();
  client = new RequestClient(proxy, nats.prefix, 20_000);
});

afterAll(async () => {
  await proxy?.close();
  await app?.close();
  await tdb?.drop();
  await nats?.cleanup();
});

describe('DELETE /sessions/{id}: the workflow state goes too', () => {
  it('removes the state row with the session, and a rebuild of session_states keeps it gone', async () => {
    const tenantId = newTenant();
    const kept = await sessionWithData(tenantId, 'alice', 0);
    const deleted = await sessionWithData(tenantId, 'alice', 0);
    expect(await rowsOf('session_states', tenantId)).toHaveLength(2);
    await client.request(DeleteSession, { context: { tenantId }, sessionId: deleted });
    expect(await rowsOf('session_states', tenantId)).toEqual([{ session_id: kept }]);
    await expectDomainError(
      client.request(GetSessionState, { tenantId, sessionId: deleted }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(GetSessionHistory, { tenantId, sessionId: deleted, limit: 50 }),
      'SESSION.NOT_FOUND',
    );

    await new ProjectionRunner(
      tdb.db,
      store,
      sessionStatesEventRegistry,
      new SessionStatesProjection(),
    ).rebuild();
    expect(await rowsOf('session_states', tenantId)).toEqual([{ session_id: kept }]);
  });
});

describe('EraseUser (DELETE /users/{user_id})', () => {
  it('purges the user from the event store, JetStream and the read models; other users untouched; rebuilds keep it gone', async () => {
    const tenantId = newTenant();
    const alice = [await sessionWithData(tenantId, 'alice', 2), await sessionWithData(tenantId, 'alice', 1)];
    // A session deleted before the erasure: gone from the read models, its events still in the store.
    const aliceDeleted = await sessionWithData(tenantId, 'alice', 1);
    await client.request(DeleteSession, { context: { tenantId }, sessionId: aliceDeleted });
    const bob = await sessionWithData(tenantId, 'bob', 1);
    const bobEventsBefore = (await eventsOf(tenantId)).filter((e) => e.stream_id.endsWith(bob));

    // Every event is on JetStream before the erasure (the relay runs in the app).
    const before = await eventsOf(tenantId);
    await allPublished(tenantId);
    expect(before.some((e) => e.data.includes('4111'))).toBe(true);

    const receipt = await client.request(EraseUser, { context: { tenantId }, userId: 'alice' });
    // 11 events: 3 SessionCreated + 1 SessionDeleted + 3 SessionStateUpdated + 4 TurnStarted.
    expect(receipt).toEqual({
      user_id: 'alice',
      sessions_deleted: 3,
      turns_deleted: 4,
      events_erased: 11,
      jetstream_messages_deleted: 11,
      completed_at: receipt.completed_at,
    });
    expect(Date.parse(receipt.completed_at)).toBeGreaterThan(Date.now() - 60_000);

    // Event store: alice's rows are tombstones (ids, types, positions intact), bob's are unchanged.
    const after = await eventsOf(tenantId);
    const aliceRows = after.filter((e) => [...alice, aliceDeleted].some((id) => e.stream_id.endsWith(id)));
    expect(aliceRows).toHaveLength(11);
    for (const row of aliceRows) {
      expect(JSON.parse(row.data)).toEqual({ erased: true });
      expect(JSON.parse(row.metadata)).toEqual({ tenantId, erased: true });
    }
    expect(after.map((e) => [e.stream_id, e.event_type, e.stream_position])).toEqual([
      ...before.map((e) => [e.stream_id, e.event_type, e.stream_position]),
      [userStreamId(tenantId, 'alice'), 'UserErased.v1', '1'],
    ]);
    const erasedText = after.map((e) => e.data + e.metadata).join('\n');
    expect(erasedText).not.toMatch(
      /secret title of alice|alice@example\.com|private summary of alice|alice, turn/,
    );
    expect(after.filter((e) => e.stream_id.endsWith(bob))).toEqual(bobEventsBefore);
    const [erasure] = await tdb.db.query(
      'SELECT user_id, sessions, turns, events, jetstream_messages_deleted FROM erasures WHERE tenant_id = $1',
      [tenantId],
    );
    expect(erasure).toEqual({
      user_id: 'alice',
      sessions: 3,
      turns: 4,
      events: 11,
      jetstream_messages_deleted: 11,
    });

    // JetStream: none of alice's original messages is left; bob's are; UserErased is published.
    const messages = await eventually(async () => {
      const all = await nats.messages();
      return all.some((m) => m.subject.endsWith('.evt.user.UserErased.v1')) ? all : undefined;
    });
    const bodies = messages
      .map((m) => m.body)
      .filter((body) => body.includes(`"tenantId":"${tenantId}"`))
      .join('\n');
    expect(bodies).not.toMatch(
      /secret title of alice|alice@example\.com|private summary of alice|alice, turn/,
    );
    expect(bodies).toMatch(/secret title of bob/);
    const erasedIds = new Set(
      (
        await tdb.db.query<{ event_id: string }>(
          `SELECT event_id::text AS event_id FROM events WHERE tenant_id = $1 AND metadata ? 'erased'`,
          [tenantId],
        )
      ).map((r) => r.event_id),
    );
    expect(messages.filter((m) => m.msgId !== undefined && erasedIds.has(m.msgId))).toEqual([]);

    // Read models and every query: alice's sessions are gone, bob's is there.
    const check = async () => {
      for (const sessionId of [...alice, aliceDeleted]) {
        await expectDomainError(client.request(GetSession, { tenantId, sessionId }), 'SESSION.NOT_FOUND');
        await expectDomainError(
          client.request(GetSessionState, { tenantId, sessionId }),
          'SESSION.NOT_FOUND',
        );
        await expectDomainError(
          client.request(GetSessionHistory, { tenantId, sessionId, limit: 50 }),
          'SESSION.NOT_FOUND',
        );
      }
      const page = await client.request(ListUserSessions, {
        tenantId,
        userId: 'alice',
        status: 'all',
        limit: 50,
        sort: 'created_at',
        order: 'desc',
      });
      expect(page.sessions).toEqual([]);
      expect(await rowsOf('sessions', tenantId)).toEqual([{ session_id: bob }]);
      expect(await rowsOf('session_states', tenantId)).toEqual([{ session_id: bob }]);
      const bobSession = await client.request(GetSession, { tenantId, sessionId: bob });
      expect(bobSession.title).toBe('secret title of bob');
    };
    await check();

    // Commands on an erased session: not found (or taken, for a create with its id).
    await expectDomainError(
      client.request(UpdateSessionState, {
        context: { tenantId },
        sessionId: alice[0]!,
        patch: { summary: 'x' },
      }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(CreateSession, { context: { tenantId }, sessionId: alice[0]!, userId: 'alice' }),
      'SESSION.ALREADY_EXISTS',
    );

    // Rebuild every projection of this service from the event store: nothing of alice comes back.
    await eventually(async () => {
      const [row] = await tdb.db.query<{ n: string }>('SELECT count(*) AS n FROM events');
      return (await store.readAll(START, 1_000_000)).length === Number(row?.n) ? true : undefined;
    }, 25_000);
    await new ProjectionRunner(tdb.db, store, sessionEventRegistry, new SessionsProjection()).rebuild();
    await new ProjectionRunner(
      tdb.db,
      store,
      conversationEventRegistry,
      new SessionContextProjection(),
    ).rebuild();
    await new ProjectionRunner(
      tdb.db,
      store,
      sessionStatesEventRegistry,
      new SessionStatesProjection(),
    ).rebuild();
    await check();
    const [bobRow] = await tdb.db.query<{ turn_count: number }>(
      'SELECT turn_count FROM sessions WHERE tenant_id = $1 AND session_id = $2',
      [tenantId, bob],
    );
    expect(bobRow?.turn_count).toBe(1);

    // A second erasure finds nothing left.
    const again = await client.request(EraseUser, { context: { tenantId }, userId: 'alice' });
    expect(again).toMatchObject({
      sessions_deleted: 0,
      turns_deleted: 0,
      events_erased: 0,
      jetstream_messages_deleted: 0,
    });
  });
});

describe('EraseUser: a failed JetStream purge is retried until it succeeds', () => {
  it('keeps the purge pending when it fails, and deletes the messages on a retry', async () => {
    const tenantId = newTenant();
    await sessionWithData(tenantId, 'carol', 2);
    await allPublished(tenantId);
    const erasure = failingFirstPurge();

    await expect(erasure.erase({ tenantId }, 'carol')).rejects.toThrow('NATS unavailable (injected)');
    // The event store part committed; the messages are still in JetStream; the purge is recorded.
    const failed = await erasedMessagesOf(tenantId);
    expect(failed.erased).toBe(4); // SessionCreated, SessionStateUpdated, 2 TurnStarted
    expect(failed.left).toHaveLength(4);
    expect(await erasureRow(tenantId)).toEqual([
      {
        events: 4,
        jetstream_messages_deleted: null,
        completed: false,
        purge_attempts: 1,
        purge_error: 'Error: NATS unavailable (injected)',
        pending: true,
      },
    ]);

    // The retry (the timer of every instance calls it) deletes them.
    expect((await erasure.retryPendingPurges()).failed).toBe(0);
    expect((await erasedMessagesOf(tenantId)).left).toEqual([]);
    expect(await erasureRow(tenantId)).toEqual([
      {
        events: 4,
        jetstream_messages_deleted: 4,
        completed: true,
        purge_attempts: 2,
        purge_error: null,
        pending: false,
      },
    ]);
    // Nothing left to retry.
    expect(await erasure.retryPendingPurges()).toEqual({ completed: 0, deleted: 0, failed: 0 });
  });

  it('retries it when the same user is erased again, and counts the messages in the receipt', async () => {
    const tenantId = newTenant();
    await sessionWithData(tenantId, 'dave', 1);
    await allPublished(tenantId);
    const erasure = failingFirstPurge();
    await expect(erasure.erase({ tenantId }, 'dave')).rejects.toThrow('NATS unavailable (injected)');
    expect((await erasedMessagesOf(tenantId)).left).toHaveLength(3);

    const again = await erasure.erase({ tenantId }, 'dave');
    expect(again).toMatchObject({ sessions_deleted: 0, events_erased: 0, jetstream_messages_deleted: 3 });
    expect((await erasedMessagesOf(tenantId)).left).toEqual([]);
    expect(
      (await erasureRow(tenantId)).map((r) => [r['completed'], r['jetstream_messages_deleted']]),
    ).toEqual([
      [true, 3],
      [true, 0],
    ]);
  });

  it('retries it on its own, every purgeRetryMs, when nobody erases the user again', async () => {
    const tenantId = newTenant();
    await sessionWithData(tenantId, 'erin', 1);
    await allPublished(tenantId);
    const erasure = failingFirstPurge({ purgeRetryMs: 100 });
    await expect(erasure.erase({ tenantId }, 'erin')).rejects.toThrow('NATS unavailable (injected)');
    expect((await erasedMessagesOf(tenantId)).left).toHaveLength(3);
    erasure.onApplicationBootstrap();
    try {
      await eventually(async () => ((await erasedMessagesOf(tenantId)).left.length === 0 ? true : undefined));
      await eventually(async () =>
        (await erasureRow(tenantId))[0]?.['completed'] === true ? true : undefined,
      );
    } finally {
      await erasure.onModuleDestroy();
    }
  });
});
