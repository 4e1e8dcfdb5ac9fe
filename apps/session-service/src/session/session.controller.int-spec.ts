import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import {
  CreateSession,
  DeleteSession,
  EndSession,
  ErrorReply,
  GetCurrentSession,
  GetOrCreateCurrentSession,
  GetSession,
  ListSessions,
  ListUserSessions,
  type SessionPage,
  type SessionView,
  UpdateSession,
} from '@threadline/contracts';
import { EventStore, ProjectionRunner } from '@threadline/event-store';
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
import { SessionModule } from './session.module';
import { SessionsProjection, sessionEventRegistry } from './sessions.projection';

jest.setTimeout(60_000);

let tdb: TestDatabase;
let nats: TestNats;
let app: INestApplication;
let proxy: ClientProxy;
let client: RequestClient;

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;

const count = async (sql: string, params: unknown[]): Promise<number> => {
  const [row] = await tdb.db.query<{ n: unknown }>(sql, params);
  return z.coerce.number().parse(row?.n);
};
const eventsOf = (tenantId: string) =>
  count('SELECT count(*) AS n FROM events WHERE tenant_id = $1', [tenantId]);
const streamsOf = (tenantId: string) =>
  count('SELECT count(*) AS n FROM streams WHERE tenant_id = $1', [tenantId]);
const eventIdsOf = async (tenantId: string): Promise<string[]> =>
  (
    await tdb.db.query('SELECT event_id FROM events WHERE tenant_id = $1 ORDER BY global_position', [
      tenantId,
    ])
  ).map((r) => z.object({ event_id: z.string() }).parse(r).event_id);

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
  await startServiceTransports(app, config, { queue: 'session-service' });
  await app.init();
  proxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [testNatsUrl()] } });
  await proxy.connect();
  client = new RequestClient(proxy, nats.prefix, 15_000);
});

afterAll(async () => {
  await proxy?.close();
  await app?.close();
  await tdb?.drop();
  await nats?.cleanup();
});

describe('session-service over NATS', () => {
  it('creates a session and gets it back', async () => {
    const tenantId = newTenant();
    const reply = await client.request(CreateSession, {
      context: { tenantId },
      userId: 'u1',
      title: 'Planning',
      metadata: { project: 'apollo', n: 1 },
      createdFrom: 'web',
    });
    expect(reply.created).toBe(true);
    expect(reply.position).toBeGreaterThan(0);
    expect(reply.session).toMatchObject({
      user_id: 'u1',
      title: 'Planning',
      status: 'active',
      metadata: { project: 'apollo', n: 1 },
      created_from: 'web',
      ended_at: null,
      version: 1,
    });
    expect(reply.session.thread_id).toBe(reply.session.session_id);
    expect(reply.session.last_activity_at).toBe(reply.session.created_at);

    const got = await client.request(GetSession, { tenantId, sessionId: reply.session.session_id });
    expect(got).toEqual(reply.session);
    // Tenant isolation: the same id in another tenant is unknown.
    await expectDomainError(
      client.request(GetSession, { tenantId: newTenant(), sessionId: reply.session.session_id }),
      'SESSION.NOT_FOUND',
    );
  });

  it('defaults the title and answers SESSION.ALREADY_EXISTS for a taken session id', async () => {
    const tenantId = newTenant();
    const first = await client.request(CreateSession, { context: { tenantId }, sessionId: 'chat-1' });
    expect(first.session).toMatchObject({
      session_id: 'chat-1',
      title: 'New session',
      user_id: null,
      metadata: {},
    });
    await expectDomainError(
      client.request(CreateSession, { context: { tenantId }, sessionId: 'chat-1' }),
      'SESSION.ALREADY_EXISTS',
    );
    expect(await eventsOf(tenantId)).toBe(1);
  });

  it('updates the title and merges metadata (null removes a key); a no-op appends nothing', async () => {
    const tenantId = newTenant();
    const { session } = await client.request(CreateSession, {
      context: { tenantId },
      userId: 'u1',
      metadata: { a: '1', b: '2' },
    });
    const updated = await client.request(UpdateSession, {
      context: { tenantId, correlationId: 'corr-1' },
      sessionId: session.session_id,
      title: 'Renamed',
      metadata: { b: null, c: { deep: true } },
    });
    expect(updated.created).toBe(false);
    expect(updated.session).toMatchObject({
      title: 'Renamed',
      metadata: { a: '1', c: { deep: true } },
      version: 3,
    });
    expect(updated.session.updated_at >= session.updated_at).toBe(true);
    expect(await client.request(GetSession, { tenantId, sessionId: session.session_id })).toEqual(
      updated.session,
    );

    const [meta] = await tdb.db.query(
      'SELECT metadata FROM events WHERE tenant_id = $1 ORDER BY global_position DESC LIMIT 1',
      [tenantId],
    );
    expect(z.object({ metadata: z.record(z.string(), z.unknown()) }).parse(meta).metadata).toMatchObject({
      tenantId,
      userId: 'u1',
      correlationId: 'corr-1',
    });

    const before = await eventsOf(tenantId);
    const noop = await client.request(UpdateSession, {
      context: { tenantId },
      sessionId: session.session_id,
      title: 'Renamed',
      metadata: { a: '1', gone: null },
    });
    expect(noop).toEqual({ ...updated, created: false });
    expect(await eventsOf(tenantId)).toBe(before);
  });

  it('answers SESSION.VERSION_MISMATCH to a stale expected version', async () => {
    const tenantId = newTenant();
    const { session } = await client.request(CreateSession, { context: { tenantId } });
    const v2 = await client.request(UpdateSession, {
      context: { tenantId },
      sessionId: session.session_id,
      title: 'A',
      expectedVersion: 1,
    });
    expect(v2.session.version).toBe(2);
    const error = await expectDomainError(
      client.request(UpdateSession, {
        context: { tenantId },
        sessionId: session.session_id,
        title: 'B',
        expectedVersion: 1,
      }),
      'SESSION.VERSION_MISMATCH',
    );
    expect(error.details).toMatchObject({ expected: 1, actual: 2 });
    expect((await client.request(GetSession, { tenantId, sessionId: session.session_id })).title).toBe('A');
  });

  it('retries a command that lost the race to a concurrent writer (no If-Match): every update lands', async () => {
    const tenantId = newTenant();
    const { session } = await client.request(CreateSession, { context: { tenantId } });
    const writers = 4; // = COMMAND_ATTEMPTS: even the writer that loses every round but the last gets through
    await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        client.request(UpdateSession, {
          context: { tenantId },
          sessionId: session.session_id,
          metadata: { [`k${i}`]: i },
        }),
      ),
    );
    const after = await client.request(GetSession, { tenantId, sessionId: session.session_id });
    expect(after.version).toBe(1 + writers);
    expect(after.metadata).toEqual({ k0: 0, k1: 1, k2: 2, k3: 3 });
  });

  it('ends a session idempotently; an ended session cannot be updated', async () => {
    const tenantId = newTenant();
    const { session } = await client.request(CreateSession, { context: { tenantId }, userId: 'u1' });
    const ended = await client.request(EndSession, {
      context: { tenantId },
      sessionId: session.session_id,
      reason: 'user',
    });
    expect(ended.session).toMatchObject({ status: 'ended', version: 2 });
    expect(ended.session.ended_at).not.toBeNull();
    const events = await eventsOf(tenantId);

    const again = await client.request(EndSession, {
      context: { tenantId },
      sessionId: session.session_id,
      reason: 'user',
    });
    expect(again).toEqual(ended);
    expect(await eventsOf(tenantId)).toBe(events);

    await expectDomainError(
      client.request(UpdateSession, { context: { tenantId }, sessionId: session.session_id, title: 'x' }),
      'SESSION.ALREADY_ENDED',
    );
    await expectDomainError(
      client.request(GetCurrentSession, { tenantId, userId: 'u1' }),
      'SESSION.NOT_FOUND',
    );
  });

  it('deletes a session: NOT_FOUND everywhere afterwards, and absent from lists', async () => {
    const tenantId = newTenant();
    const { session } = await client.request(CreateSession, {
      context: { tenantId },
      userId: 'u1',
      sessionId: 'gone',
    });
    await client.request(CreateSession, { context: { tenantId }, userId: 'u1', sessionId: 'kept' });
    const deleted = await client.request(DeleteSession, {
      context: { tenantId },
      sessionId: session.session_id,
    });
    expect(deleted.position).toBeGreaterThan(0);

    await expectDomainError(client.request(GetSession, { tenantId, sessionId: 'gone' }), 'SESSION.NOT_FOUND');
    await expectDomainError(
      client.request(UpdateSession, { context: { tenantId }, sessionId: 'gone', title: 'x' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(EndSession, { context: { tenantId }, sessionId: 'gone', reason: 'user' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(DeleteSession, { context: { tenantId }, sessionId: 'gone' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(CreateSession, { context: { tenantId }, sessionId: 'gone' }),
      'SESSION.ALREADY_EXISTS',
    );

    const mine = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'all',
      limit: 50,
      sort: 'created_at',
      order: 'desc',
    });
    expect(mine.sessions.map((s) => s.session_id)).toEqual(['kept']);
    expect(mine.total).toBe(1);
    const all = await client.request(ListSessions, { tenantId, status: 'all', limit: 50 });
    expect(all.sessions.map((s) => s.session_id)).toEqual(['kept']);
    const current = await client.request(GetCurrentSession, { tenantId, userId: 'u1' });
    expect(current.session_id).toBe('kept');
  });

  it('answers a retried create (same idempotency key) with the first reply and appends nothing', async () => {
    const tenantId = newTenant();
    const command = { context: { tenantId, idempotencyKey: 'key-1' }, userId: 'u1', title: 'Once' };
    const first = await client.request(CreateSession, command);
    const idsAfterFirst = await eventIdsOf(tenantId);
    const retried = await client.request(CreateSession, {
      ...command,
      context: { ...command.context, correlationId: 'retry' },
    });
    expect(retried).toEqual(first);
    expect(await streamsOf(tenantId)).toBe(1);
    expect(await eventIdsOf(tenantId)).toEqual(idsAfterFirst);
    expect(idsAfterFirst).toHaveLength(1);

    // Concurrent retries too: one session, one event.
    const key2 = { context: { tenantId, idempotencyKey: 'key-2' }, userId: 'u2' };
    const replies = await Promise.all(Array.from({ length: 5 }, () => client.request(CreateSession, key2)));
    expect(new Set(replies.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(await streamsOf(tenantId)).toBe(2);

    // The same key for another request is refused and changes nothing.
    await expectDomainError(client.request(CreateSession, { ...command, title: 'Other' }), 'REQUEST.INVALID');
    expect(await eventsOf(tenantId)).toBe(2);
  });

  it('answers REQUEST.INVALID to a bad payload and appends nothing', async () => {
    const tenantId = newTenant();
    const error: unknown = await lastValueFrom(
      proxy.send(CreateSession.subject(nats.prefix), {
        context: { tenantId },
        sessionId: 'has spaces',
        title: 42,
        metadata: 'not-an-object',
      }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    const reply = ErrorReply.parse(error);
    expect(reply.code).toBe('REQUEST.INVALID');
    const paths = z
      .object({ issues: z.array(z.object({ path: z.string() })) })
      .parse(reply.details)
      .issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['sessionId', 'title', 'metadata']));
    expect(await eventsOf(tenantId)).toBe(0);
    expect(await streamsOf(tenantId)).toBe(0);
  });

  it('answers NOT_FOUND to a caller scoped to another user, and changes nothing', async () => {
    const tenantId = newTenant();
    const { session } = await client.request(CreateSession, {
      context: { tenantId },
      userId: 'alice',
      title: 'Mine',
    });
    const id = session.session_id;
    await expectDomainError(
      client.request(GetSession, { tenantId, sessionId: id, userId: 'bob' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(UpdateSession, { context: { tenantId }, sessionId: id, userId: 'bob', title: 'x' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(EndSession, { context: { tenantId }, sessionId: id, userId: 'bob', reason: 'user' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(DeleteSession, { context: { tenantId }, sessionId: id, userId: 'bob' }),
      'SESSION.NOT_FOUND',
    );
    expect(await client.request(GetSession, { tenantId, sessionId: id, userId: 'alice' })).toEqual(session);
    expect(await eventsOf(tenantId)).toBe(1);
    const bobs = await client.request(ListUserSessions, {
      tenantId,
      userId: 'bob',
      status: 'all',
      limit: 10,
      sort: 'created_at',
      order: 'desc',
    });
    expect(bobs).toEqual({ sessions: [], next_cursor: null, total: 0 });
  });

  it('yields exactly one session for 20 concurrent get-or-create calls of one user', async () => {
    const tenantId = newTenant();
    const replies = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.request(GetOrCreateCurrentSession, { context: { tenantId }, userId: 'u1', title: 'Current' }),
      ),
    );
    const ids = new Set(replies.map((r) => r.session.session_id));
    expect(ids.size).toBe(1);
    expect(replies.filter((r) => r.created)).toHaveLength(1);
    expect(await streamsOf(tenantId)).toBe(1);
    expect(
      await count('SELECT count(*) AS n FROM sessions WHERE tenant_id = $1 AND user_id = $2', [
        tenantId,
        'u1',
      ]),
    ).toBe(1);

    const current = await client.request(GetCurrentSession, { tenantId, userId: 'u1' });
    expect(current.session_id).toBe([...ids][0]);
    // Once it has ended, get-or-create makes a new one.
    await client.request(EndSession, {
      context: { tenantId },
      sessionId: current.session_id,
      reason: 'user',
    });
    const next = await client.request(GetOrCreateCurrentSession, { context: { tenantId }, userId: 'u1' });
    expect(next.created).toBe(true);
    expect(next.session.session_id).not.toBe(current.session_id);
  });

  it('pages a user’s sessions with a cursor, with status and metadata filters and a total', async () => {
    const tenantId = newTenant();
    const created: SessionView[] = [];
    for (let i = 0; i < 7; i += 1) {
      const reply = await client.request(CreateSession, {
        context: { tenantId },
        userId: 'u1',
        sessionId: `s${i}`,
        metadata: { project: i % 2 === 0 ? 'even' : 'odd', i },
      });
      created.push(reply.session);
    }
    await client.request(CreateSession, {
      context: { tenantId },
      userId: 'someone-else',
      metadata: { project: 'even' },
    });
    const byCreatedDesc = [...created]
      .sort((a, b) =>
        a.created_at === b.created_at
          ? b.session_id.localeCompare(a.session_id)
          : b.created_at.localeCompare(a.created_at),
      )
      .map((s) => s.session_id);

    const seen: string[] = [];
    const pageSizes: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page += 1) {
      const result = await client.request(ListUserSessions, {
        tenantId,
        userId: 'u1',
        status: 'all',
        limit: 3,
        sort: 'created_at',
        order: 'desc',
        ...(cursor !== undefined ? { cursor } : {}),
      });
      expect(result.total).toBe(7);
      seen.push(...result.sessions.map((s) => s.session_id));
      pageSizes.push(result.sessions.length);
      if (result.next_cursor === null) break;
      cursor = result.next_cursor;
    }
    expect(pageSizes).toEqual([3, 3, 1]);
    expect(seen).toEqual(byCreatedDesc);

    // Ascending by last activity: s3 is touched last, so it comes last.
    await client.request(UpdateSession, { context: { tenantId }, sessionId: 's3', title: 'touched' });
    const asc: string[] = [];
    cursor = undefined;
    do {
      const result: SessionPage = await client.request(ListUserSessions, {
        tenantId,
        userId: 'u1',
        status: 'all',
        limit: 2,
        sort: 'last_activity_at',
        order: 'asc',
        ...(cursor !== undefined ? { cursor } : {}),
      });
      asc.push(...result.sessions.map((s) => s.session_id));
      cursor = result.next_cursor ?? undefined;
    } while (cursor !== undefined);
    expect(asc).toHaveLength(7);
    expect(asc[6]).toBe('s3');

    // A cursor of another listing is refused.
    const firstPage = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'all',
      limit: 3,
      sort: 'created_at',
      order: 'desc',
    });
    await expectDomainError(
      client.request(ListUserSessions, {
        tenantId,
        userId: 'u1',
        status: 'all',
        limit: 3,
        sort: 'created_at',
        order: 'asc',
        cursor: firstPage.next_cursor ?? '',
      }),
      'REQUEST.INVALID',
    );

    // Status filter.
    await client.request(EndSession, { context: { tenantId }, sessionId: 's0', reason: 'user' });
    await client.request(EndSession, { context: { tenantId }, sessionId: 's1', reason: 'user' });
    const active = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'active',
      limit: 50,
      sort: 'created_at',
      order: 'desc',
    });
    expect(active.total).toBe(5);
    expect(active.sessions.map((s) => s.session_id).sort()).toEqual(['s2', 's3', 's4', 's5', 's6']);
    const ended = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'ended',
      limit: 50,
      sort: 'created_at',
      order: 'desc',
    });
    expect(ended.sessions.map((s) => s.session_id).sort()).toEqual(['s0', 's1']);

    // Metadata filter (containment of string values), with total.
    const even = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'all',
      limit: 2,
      sort: 'created_at',
      order: 'desc',
      metadata: { project: 'even' },
    });
    expect(even.total).toBe(4);
    expect(even.sessions).toHaveLength(2);
    expect(even.sessions.every((s) => s.metadata['project'] === 'even')).toBe(true);
    const none = await client.request(ListUserSessions, {
      tenantId,
      userId: 'u1',
      status: 'all',
      limit: 2,
      sort: 'created_at',
      order: 'desc',
      metadata: { project: 'none' },
    });
    expect(none.total).toBe(0);

    // Operators' list: every user of the tenant, newest first, paged.
    const ops = await client.request(ListSessions, { tenantId, status: 'all', limit: 5 });
    expect(ops.total).toBe(8);
    expect(ops.sessions).toHaveLength(5);
    const rest = await client.request(ListSessions, {
      tenantId,
      status: 'all',
      limit: 5,
      cursor: ops.next_cursor ?? '',
    });
    expect(rest.sessions).toHaveLength(3);
    expect(rest.next_cursor).toBeNull();
    const opsEnded = await client.request(ListSessions, { tenantId, status: 'ended', limit: 5 });
    expect(opsEnded.total).toBe(2);
  });

  it('relays every appended event to JetStream, once, with its event id', async () => {
    const ids = (await tdb.db.query('SELECT event_id FROM events ORDER BY global_position')).map(
      (r) => z.object({ event_id: z.string() }).parse(r).event_id,
    );
    expect(ids.length).toBeGreaterThan(20);
    const jsm = await jetstreamManager(nats.nc);
    await eventually(
      async () => ((await jsm.streams.info(nats.stream)).state.messages === ids.length ? true : undefined),
      30_000, // the relay tails below the cluster-wide xmin: a long transaction elsewhere delays it
      `${ids.length} messages in ${nats.stream}`,
    );
    const consumer = await jetstream(nats.nc).consumers.get(nats.stream);
    const published: string[] = [];
    const messages = await consumer.fetch({ max_messages: ids.length, expires: 5000 });
    for await (const m of messages) {
      published.push(m.headers?.get('Nats-Msg-Id') ?? '');
      if (published.length === ids.length) break;
    }
    expect(published.sort()).toEqual([...ids].sort());
  });

  it('rebuilds the inline read model by replay: twice gives the rows the inline writes made', async () => {
    const snapshot = async () =>
      JSON.stringify(await tdb.db.query('SELECT * FROM sessions ORDER BY tenant_id, session_id'));
    const inline = await snapshot();
    expect(inline.length).toBeGreaterThan(100);
    const runner = new ProjectionRunner(
      tdb.db,
      new EventStore(tdb.db),
      sessionEventRegistry,
      new SessionsProjection(),
    );
    // A rebuild replays what is below the cluster-wide xmin horizon (commit-safe tailing); a long
    // transaction elsewhere on the server can hold it back for a while, so wait until it replays all.
    const total = await count('SELECT count(*) AS n FROM events', []);
    const rebuildAll = () =>
      eventually(
        async () => ((await runner.rebuild()).events === total ? true : undefined),
        30_000,
        `a rebuild replaying all ${total} events`,
      );
    await rebuildAll();
    expect(await snapshot()).toBe(inline);
    await rebuildAll();
    expect(await snapshot()).toBe(inline);
  });
});
