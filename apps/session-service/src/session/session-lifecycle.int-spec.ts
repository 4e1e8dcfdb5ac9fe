import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { z } from 'zod';
import {
  conversationStreamId,
  CONVERSATION_CATEGORY,
  CreateSession,
  DeleteSession,
  EndSession,
  ExpireSession,
  GetOrCreateCurrentSession,
  GetSession,
  ListIdleSessions,
  ListRetiredSessions,
  UpdateSession,
} from '@threadline/contracts';
import { EventStore, EventStoreModule } from '@threadline/event-store';
import { MessagingModule, RequestClient, startServiceTransports } from '@threadline/messaging';
import { DomainError } from '@threadline/platform';
import {
  createTestDatabase,
  createTestNats,
  type TestDatabase,
  type TestNats,
  testNatsUrl,
} from '@threadline/testing';
import { SessionServiceConfig } from '../config';
import { SESSION_LIMITS, type SessionLimits } from './session-limits';
import { SessionModule } from './session.module';

// The lifecycle commands and queries of issue 4 against real Postgres and NATS, with the session
// clock under the test's control: per-user limit (both policies, concurrent starts), ExpireSession
// under the session's lock, and the cleanup listings.

jest.setTimeout(90_000);

const HOUR = 3_600_000;
let clockNow = new Date('2030-01-01T00:00:00.000Z');
const clock = () => new Date(clockNow.getTime());

let tdb: TestDatabase;
let nats: TestNats;
const apps: INestApplication[] = [];
let proxy: ClientProxy;
let client: RequestClient;

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;

/** The session-service's modules, as `AppModule.forRoot` composes them, with a pinned clock. */
function serviceModule(config: SessionServiceConfig): DynamicModule {
  @Module({})
  class TestRoot {}
  return {
    module: TestRoot,
    imports: [
      MessagingModule.forRoot({ settings: config, name: 'session-service' }),
      EventStoreModule.forRoot({
        url: config.DATABASE_URL,
        poolSize: 8,
        applicationName: 'session-service',
        migrations: SessionModule.migrations,
        migrateOnStart: config.MIGRATE_ON_START,
      }),
      SessionModule.forRoot(config, { clock }),
    ],
  };
}

async function startService(env: Record<string, string>, prefix: string): Promise<INestApplication> {
  const config = SessionServiceConfig.parse({
    DATABASE_URL: tdb.url,
    NATS_URL: testNatsUrl(),
    NATS_STREAM: nats.stream,
    NATS_SUBJECT_PREFIX: prefix,
    MIGRATE_ON_START: 'true',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const app = await NestFactory.create(serviceModule(config), new FastifyAdapter(), { logger: false });
  await startServiceTransports(app, config, { queue: `session-service-${prefix}` });
  await app.init();
  apps.push(app);
  return app;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return (error as DomainError).code;
}

const activeOf = async (tenantId: string, userId: string): Promise<string[]> =>
  (
    await tdb.db.query(
      `SELECT session_id FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND status = 'active'`,
      [tenantId, userId],
    )
  ).map((r) => z.object({ session_id: z.string() }).parse(r).session_id);

beforeAll(async () => {
  tdb = await createTestDatabase(SessionModule.migrations);
  nats = await createTestNats();
  await startService({ MAX_SESSIONS_PER_USER: '3' }, nats.prefix);
  proxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [testNatsUrl()] } });
  await proxy.connect();
  client = new RequestClient(proxy, nats.prefix, 20_000);
});

afterAll(async () => {
  await proxy?.close();
  for (const app of apps) await app.close();
  await tdb?.drop();
  await nats?.cleanup();
});

describe('per-user limit (MAX_SESSIONS_PER_USER=3, end_oldest)', () => {
  it('ends the least recently active session with reason replaced', async () => {
    const tenantId = newTenant();
    const start = (sessionId: string) =>
      client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId });
    clockNow = new Date('2030-01-01T00:00:00.000Z');
    await start('a');
    clockNow = new Date('2030-01-01T00:01:00.000Z');
    await start('b');
    clockNow = new Date('2030-01-01T00:02:00.000Z');
    await start('c');
    // `a` becomes the most recently active: `b` is now the least.
    clockNow = new Date('2030-01-01T00:03:00.000Z');
    await client.request(UpdateSession, { context: { tenantId }, sessionId: 'a', title: 'touched' });
    clockNow = new Date('2030-01-01T00:04:00.000Z');
    const d = await start('d');
    expect(d.session.status).toBe('active');
    expect((await activeOf(tenantId, 'u1')).sort()).toEqual(['a', 'c', 'd']);
    const b = await client.request(GetSession, { tenantId, sessionId: 'b' });
    expect(b.status).toBe('ended');
    expect(b.ended_at).toBe('2030-01-01T00:04:00.000Z');
    const [ended] = await tdb.db.query(
      `SELECT data FROM events WHERE stream_id = $1 AND event_type = 'SessionEnded.v1'`,
      [`session:${tenantId}:b`],
    );
    expect(ended?.['data']).toMatchObject({ sessionId: 'b', reason: 'replaced' });
    // Other users and sessions without a user are not limited by u1's sessions.
    await client.request(CreateSession, { context: { tenantId }, userId: 'u2' });
    for (let i = 0; i < 4; i += 1) await client.request(CreateSession, { context: { tenantId } });
    expect(await activeOf(tenantId, 'u1')).toHaveLength(3);
  });

  it('never leaves more than the limit active under 24 concurrent starts of one user', async () => {
    const tenantId = newTenant();
    const replies = await Promise.allSettled(
      Array.from({ length: 24 }, (_, i) =>
        i % 4 === 0
          ? client.request(GetOrCreateCurrentSession, { context: { tenantId }, userId: 'racer' })
          : client.request(CreateSession, { context: { tenantId }, userId: 'racer' }),
      ),
    );
    const failures = replies.filter((r) => r.status === 'rejected');
    expect(failures).toEqual([]);
    expect(await activeOf(tenantId, 'racer')).toHaveLength(3);
    const [row] = await tdb.db.query(
      `SELECT count(*)::int AS ended FROM events
       WHERE tenant_id = $1 AND event_type = 'SessionEnded.v1' AND data->>'reason' = 'replaced'`,
      [tenantId],
    );
    const [made] = await tdb.db.query(
      `SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND event_type = 'SessionCreated.v1'`,
      [tenantId],
    );
    // Every session made beyond the limit replaced exactly one.
    expect(row?.['ended']).toBe(Number(made?.['n']) - 3);
  });
});

describe('per-user limit (reject)', () => {
  it('answers SESSION.LIMIT_REACHED and changes nothing; a slot frees when a session ends', async () => {
    // The service's limits, switched to `reject` with a limit of 2 for this test (the object the
    // command handler reads; restored afterwards).
    const limits = apps[0]!.get<SessionLimits>(SESSION_LIMITS);
    const saved = { ...limits };
    limits.policy = 'reject';
    limits.maxSessionsPerUser = 2;
    try {
      const tenantId = newTenant();
      await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'a' });
      await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'b' });
      const before = await tdb.db.query('SELECT count(*)::int AS n FROM events WHERE tenant_id = $1', [
        tenantId,
      ]);
      expect(
        await codeOf(client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'c' })),
      ).toBe('SESSION.LIMIT_REACHED');
      const after = await tdb.db.query('SELECT count(*)::int AS n FROM events WHERE tenant_id = $1', [
        tenantId,
      ]);
      expect(after).toEqual(before);
      expect((await activeOf(tenantId, 'u1')).sort()).toEqual(['a', 'b']);
      // Concurrent starts: none gets through while the user is at the limit.
      const racing = await Promise.allSettled(
        Array.from({ length: 8 }, () =>
          client.request(CreateSession, { context: { tenantId }, userId: 'u1' }),
        ),
      );
      expect(racing.every((r) => r.status === 'rejected')).toBe(true);
      await client.request(EndSession, { context: { tenantId }, sessionId: 'a', reason: 'user' });
      const c = await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'c' });
      expect(c.created).toBe(true);
      expect((await activeOf(tenantId, 'u1')).sort()).toEqual(['b', 'c']);
    } finally {
      Object.assign(limits, saved);
    }
  });
});

describe('ExpireSession and the cleanup listings', () => {
  it('expires a session idle past the cutoff, with the idle time; an expired session takes no writes', async () => {
    const tenantId = newTenant();
    clockNow = new Date('2030-02-01T00:00:00.000Z');
    await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'old' });
    clockNow = new Date('2030-02-01T20:00:00.000Z');
    await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'fresh' });

    clockNow = new Date('2030-02-02T01:00:00.000Z'); // 25 h after `old`, 5 h after `fresh`
    const cutoff = new Date(clockNow.getTime() - 24 * HOUR).toISOString();
    const idle = await client.request(ListIdleSessions, { idleBefore: cutoff, limit: 10, tenantId });
    expect(idle.sessions.map((s) => s.session_id)).toEqual(['old']);
    expect(idle.next).toBeNull();

    const expire = (sessionId: string) =>
      client.request(ExpireSession, {
        context: { tenantId },
        sessionId,
        idleCutoff: cutoff,
        idleTimeoutMs: 24 * HOUR,
      });
    expect(await expire('fresh')).toEqual({ expired: false, position: null });
    const done = await expire('old');
    expect(done.expired).toBe(true);
    expect(await expire('old')).toEqual({ expired: false, position: null }); // idempotent

    const [event] = await tdb.db.query(
      `SELECT data FROM events WHERE stream_id = $1 AND event_type = 'SessionExpired.v1'`,
      [`session:${tenantId}:old`],
    );
    expect(event?.['data']).toEqual({
      sessionId: 'old',
      lastActivityAt: '2030-02-01T00:00:00.000Z',
      idleMs: 25 * HOUR,
      timeoutMs: 24 * HOUR,
      expiredAt: '2030-02-02T01:00:00.000Z',
    });
    const old = await client.request(GetSession, { tenantId, sessionId: 'old' });
    expect(old).toMatchObject({ status: 'expired', ended_at: '2030-02-02T01:00:00.000Z' });
    expect(
      await codeOf(client.request(UpdateSession, { context: { tenantId }, sessionId: 'old', title: 'x' })),
    ).toBe('SESSION.ALREADY_ENDED');
    // Ending an expired session changes nothing.
    const endReply = await client.request(EndSession, {
      context: { tenantId },
      sessionId: 'old',
      reason: 'user',
    });
    expect(endReply.session.status).toBe('expired');
    expect(
      await codeOf(
        client.request(ExpireSession, {
          context: { tenantId },
          sessionId: 'nope',
          idleCutoff: cutoff,
          idleTimeoutMs: 24 * HOUR,
        }),
      ),
    ).toBe('SESSION.NOT_FOUND');

    // Retention listing: ended and expired sessions by end time.
    clockNow = new Date('2030-02-02T02:00:00.000Z');
    await client.request(EndSession, { context: { tenantId }, sessionId: 'fresh', reason: 'user' });
    const retired = await client.request(ListRetiredSessions, {
      endedBefore: '2030-03-01T00:00:00.000Z',
      limit: 1,
      tenantId,
    });
    expect(retired.sessions.map((s) => s.session_id)).toEqual(['old']);
    expect(retired.next).not.toBeNull();
    const rest = await client.request(ListRetiredSessions, {
      endedBefore: '2030-03-01T00:00:00.000Z',
      limit: 1,
      tenantId,
      ...(retired.next ? { after: retired.next } : {}),
    });
    expect(rest.sessions.map((s) => s.session_id)).toEqual(['fresh']);
    expect(rest.next).toBeNull();
    await client.request(DeleteSession, { context: { tenantId }, sessionId: 'old' });
    expect(
      (
        await client.request(ListRetiredSessions, {
          endedBefore: '2030-03-01T00:00:00.000Z',
          limit: 10,
          tenantId,
        })
      ).sessions.length,
    ).toBe(1);
  });

  it('counts a turn the session_context projection has not applied yet as activity', async () => {
    const tenantId = newTenant();
    clockNow = new Date('2030-04-01T00:00:00.000Z');
    await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 's' });
    // A turn logged 2 h before the pass, written straight into the conversation stream (as the
    // chat-log-service would); no consumer applies it in this test, so only the stream knows it.
    const store = apps[0]!.get(EventStore);
    await store.transaction((tx) =>
      tx.append(
        conversationStreamId(tenantId, 's'),
        CONVERSATION_CATEGORY,
        'no_stream',
        [
          {
            type: 'TurnStarted.v1',
            data: {
              turnId: randomUUID(),
              sessionId: 's',
              userId: 'u1',
              conversationTurn: 1,
              userInput: 'hello',
              vectorCacheHit: false,
              startedAt: '2030-04-01T23:00:00.000Z',
            },
          },
        ],
        { metadata: { tenantId, userId: 'u1' } },
      ),
    );
    clockNow = new Date('2030-04-02T01:00:00.000Z');
    const cutoff = new Date(clockNow.getTime() - 24 * HOUR).toISOString(); // 2030-04-01T01:00
    // The read model still says 00:00 (listed as idle), the stream says 23:00: not expired.
    const idle = await client.request(ListIdleSessions, { idleBefore: cutoff, limit: 10, tenantId });
    expect(idle.sessions.map((s) => s.session_id)).toEqual(['s']);
    const reply = await client.request(ExpireSession, {
      context: { tenantId },
      sessionId: 's',
      idleCutoff: cutoff,
      idleTimeoutMs: 24 * HOUR,
    });
    expect(reply.expired).toBe(false);
  });
});
