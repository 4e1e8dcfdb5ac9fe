import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { z } from 'zod';
import {
  CreateSession,
  DeleteSession,
  EndSession,
  GetSessionHistory,
  GetSessionState,
  type SessionHistoryPage,
  SetToolCallStatus,
  UpdateSessionState,
} from '@threadline/contracts';
import { EventStore, ProjectionRunner } from '@threadline/event-store';
import { RequestClient, startServiceTransports } from '@threadline/messaging';
import {
  createTestDatabase,
  createTestNats,
  type TestDatabase,
  type TestNats,
  testNatsUrl,
  expectDomainError,
} from '@threadline/testing';
import { AppModule } from '../app.module';
import { SessionServiceConfig } from '../config';
import { SessionModule } from '../session/session.module';
import { SessionStatesProjection, sessionStatesEventRegistry } from './session-states.projection';

jest.setTimeout(60_000);

let tdb: TestDatabase;
let nats: TestNats;
let app: INestApplication;
let proxy: ClientProxy;
let client: RequestClient;

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;

const stateEventsOf = async (tenantId: string): Promise<number> => {
  const [row] = await tdb.db.query<{ n: unknown }>(
    "SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND stream_type = 'session_state'",
    [tenantId],
  );
  return z.coerce.number().parse(row?.n);
};

async function newSession(tenantId: string, userId = 'u1'): Promise<string> {
  const reply = await client.request(CreateSession, { context: { tenantId }, userId });
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

describe('workflow state over NATS', () => {
  it('merges patches (RFC 7396: nested merge, null removes) and answers the state with its version', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    const empty = await client.request(GetSessionState, { tenantId, sessionId });
    expect(empty).toEqual({
      session_id: sessionId,
      version: 0,
      constraints: null,
      strategy: null,
      response_plan: null,
      summary: null,
      status: null,
      tool_calls: [],
      is_complete: true,
      updated_at: null,
    });

    const first = await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      patch: {
        constraints: { kpi: ['orders'], cfc: ['CFC-1'], time_filter: { start_date: '2025-02-09' } },
        strategy: '## Strategy',
        status: 'created',
      },
    });
    expect(first.position).toBeGreaterThan(0);
    expect(first.state).toMatchObject({ version: 1, strategy: '## Strategy', status: 'created' });

    const second = await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      patch: {
        constraints: { cfc: null, time_filter: { end_date: '2025-03-11' } },
        strategy: { steps: ['collect', 'aggregate'] },
        status: null,
        summary: 'Orders peaked in week 2',
      },
    });
    expect(second.position).toBeGreaterThan(first.position);
    const expected = {
      session_id: sessionId,
      version: 2,
      constraints: { kpi: ['orders'], time_filter: { start_date: '2025-02-09', end_date: '2025-03-11' } },
      strategy: { steps: ['collect', 'aggregate'] },
      response_plan: null,
      summary: 'Orders peaked in week 2',
      status: null,
    };
    expect(second.state).toMatchObject(expected);
    expect(await client.request(GetSessionState, { tenantId, sessionId })).toMatchObject(expected);

    // A patch that changes nothing appends nothing and answers the current state and position.
    const noop = await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      patch: { status: null, summary: 'Orders peaked in week 2' },
    });
    expect(noop).toEqual({ state: second.state, position: second.position });
    expect(await stateEventsOf(tenantId)).toBe(2);
  });

  it('checks If-Match (SESSION.VERSION_MISMATCH, nothing appended) and passes a current one', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    await client.request(UpdateSessionState, { context: { tenantId }, sessionId, patch: { summary: 'a' } });
    const error = await expectDomainError(
      client.request(UpdateSessionState, {
        context: { tenantId },
        sessionId,
        patch: { summary: 'b' },
        expectedVersion: 0,
      }),
      'SESSION.VERSION_MISMATCH',
    );
    expect(error.details).toMatchObject({ expected: 0, actual: 1 });
    expect(await stateEventsOf(tenantId)).toBe(1);
    const ok = await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      patch: { summary: 'b' },
      expectedVersion: 1,
    });
    expect(ok.state).toMatchObject({ version: 2, summary: 'b' });
    // Lifecycle writes do not move the state's version.
    await client.request(EndSession, { context: { tenantId }, sessionId, reason: 'user' });
    const after = await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      patch: { status: 'completed' },
      expectedVersion: 2,
    });
    expect(after.state).toMatchObject({ version: 3, status: 'completed' });
  });

  it('tracks tool calls and is_complete', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    const planned = await client.request(SetToolCallStatus, {
      context: { tenantId },
      sessionId,
      name: 'Orders Trend for CFC-1',
      status: 'pending',
      description: 'order trends for CFC-1',
    });
    expect(planned.state.is_complete).toBe(false);
    expect(planned.state.tool_calls).toEqual([
      expect.objectContaining({
        name: 'Orders Trend for CFC-1',
        status: 'pending',
        description: 'order trends for CFC-1',
      }),
    ]);
    await client.request(SetToolCallStatus, {
      context: { tenantId },
      sessionId,
      name: 'Spokes',
      status: 'running',
    });
    const done = await client.request(SetToolCallStatus, {
      context: { tenantId },
      sessionId,
      name: 'Orders Trend for CFC-1',
      status: 'completed',
      result: { sql: 'SELECT 1', data: [{ week: '2025-02-09', orders: 1200 }] },
    });
    expect(done.state.is_complete).toBe(false);
    const failed = await client.request(SetToolCallStatus, {
      context: { tenantId },
      sessionId,
      name: 'Spokes',
      status: 'failed',
      error: 'timeout',
    });
    expect(failed.state.is_complete).toBe(false);
    const all = await client.request(SetToolCallStatus, {
      context: { tenantId },
      sessionId,
      name: 'Spokes',
      status: 'completed',
    });
    expect(all.state.is_complete).toBe(true);
    expect(all.state.version).toBe(6);
    const [first, second] = all.state.tool_calls;
    expect(first).toMatchObject({
      name: 'Orders Trend for CFC-1',
      status: 'completed',
      error: null,
      result: { sql: 'SELECT 1' },
    });
    expect(second).toMatchObject({ name: 'Spokes', status: 'completed', error: null, result: null });
    expect(Date.parse(second!.updated_at)).toBeGreaterThanOrEqual(Date.parse(second!.planned_at));
    expect(await client.request(GetSessionState, { tenantId, sessionId })).toEqual(all.state);
    // An error without status failed is refused before anything is appended.
    await expectDomainError(
      client.request(SetToolCallStatus, {
        context: { tenantId },
        sessionId,
        name: 'Spokes',
        status: 'running',
        error: 'x',
      }),
      'REQUEST.INVALID',
    );
    expect(await stateEventsOf(tenantId)).toBe(6);
  });

  it('travels in time by version and by time', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    const states = [];
    for (const summary of ['one', 'two', 'three']) {
      states.push(
        (await client.request(UpdateSessionState, { context: { tenantId }, sessionId, patch: { summary } }))
          .state,
      );
    }
    states.push(
      (
        await client.request(SetToolCallStatus, {
          context: { tenantId },
          sessionId,
          name: 'q',
          status: 'running',
        })
      ).state,
    );
    expect(states.map((s) => s.version)).toEqual([1, 2, 3, 5]);

    for (const s of states) {
      expect(await client.request(GetSessionState, { tenantId, sessionId, version: s.version })).toEqual(s);
    }
    expect(await client.request(GetSessionState, { tenantId, sessionId, version: 0 })).toMatchObject({
      version: 0,
      summary: null,
    });
    const v4 = await client.request(GetSessionState, { tenantId, sessionId, version: 4 });
    expect(v4).toMatchObject({ version: 4, summary: 'three', is_complete: false });
    expect(v4.tool_calls).toEqual([expect.objectContaining({ name: 'q', status: 'pending' })]);
    await expectDomainError(
      client.request(GetSessionState, { tenantId, sessionId, version: 6 }),
      'REQUEST.INVALID',
    );

    // By time: at each state event's time (as the history shows it), the state is the longest prefix
    // of events stored at or before it (events within the same millisecond come together).
    const history = await client.request(GetSessionHistory, { tenantId, sessionId, limit: 200 });
    const stateEvents = history.events.filter((e) => e.stream === 'session_state');
    expect(stateEvents).toHaveLength(5);
    for (const e of stateEvents) {
      const upTo = stateEvents.filter((o) => Date.parse(o.time) <= Date.parse(e.time)).length;
      const past = await client.request(GetSessionState, { tenantId, sessionId, at: e.time });
      expect(past).toEqual(await client.request(GetSessionState, { tenantId, sessionId, version: upTo }));
    }
    expect(
      await client.request(GetSessionState, { tenantId, sessionId, at: '2000-01-01T00:00:00.000Z' }),
    ).toMatchObject({ version: 0, summary: null, tool_calls: [] });
    expect(
      await client.request(GetSessionState, {
        tenantId,
        sessionId,
        at: new Date(Date.now() + 60_000).toISOString(),
      }),
    ).toEqual(states[3]);
  });

  it('pages the history of both streams in global order, oldest first', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      patch: { status: 'created' },
    });
    await client.request(SetToolCallStatus, {
      context: { tenantId },
      sessionId,
      name: 'q',
      status: 'running',
    });
    await client.request(EndSession, { context: { tenantId }, sessionId, reason: 'user' });
    await client.request(UpdateSessionState, { context: { tenantId }, sessionId, patch: { summary: 'bye' } });

    const pages: SessionHistoryPage[] = [];
    let cursor: string | undefined;
    do {
      const page: SessionHistoryPage = await client.request(GetSessionHistory, {
        tenantId,
        sessionId,
        limit: 2,
        cursor,
      });
      pages.push(page);
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
    expect(pages.map((p) => p.events.length)).toEqual([2, 2, 2]);
    const events = pages.flatMap((p) => p.events);
    expect(events.map((e) => [e.stream, e.type, e.version])).toEqual([
      ['session', 'SessionCreated.v1', 1],
      ['session_state', 'SessionStateUpdated.v1', 1],
      ['session_state', 'ToolCallPlanned.v1', 2],
      ['session_state', 'ToolCallStatusChanged.v1', 3],
      ['session', 'SessionEnded.v1', 2],
      ['session_state', 'SessionStateUpdated.v1', 4],
    ]);
    const positions = events.map((e) => e.position);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(events[1]?.data).toMatchObject({ sessionId, patch: { status: 'created' } });
    // Another session's events never show; a foreign cursor is REQUEST.INVALID.
    const other = await newSession(tenantId);
    const otherHistory = await client.request(GetSessionHistory, { tenantId, sessionId: other, limit: 50 });
    expect(otherHistory.events.map((e) => e.type)).toEqual(['SessionCreated.v1']);
    expect(otherHistory.next_cursor).toBeNull();
    await expectDomainError(
      client.request(GetSessionHistory, { tenantId, sessionId, limit: 2, cursor: 'nope' }),
      'REQUEST.INVALID',
    );
  });

  it('is SESSION.NOT_FOUND for unknown, deleted, other tenants’ and other users’ sessions; nothing appended', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId, 'owner');
    const patch = { summary: 'x' };
    await expectDomainError(
      client.request(UpdateSessionState, { context: { tenantId }, sessionId: 'nope', patch }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(UpdateSessionState, { context: { tenantId: newTenant() }, sessionId, patch }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(UpdateSessionState, { context: { tenantId }, sessionId, userId: 'intruder', patch }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(SetToolCallStatus, {
        context: { tenantId },
        sessionId,
        userId: 'intruder',
        name: 'q',
        status: 'pending',
      }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(GetSessionState, { tenantId, sessionId, userId: 'intruder' }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(GetSessionHistory, { tenantId, sessionId, userId: 'intruder', limit: 10 }),
      'SESSION.NOT_FOUND',
    );
    expect(await stateEventsOf(tenantId)).toBe(0);

    const mine = await client.request(UpdateSessionState, {
      context: { tenantId },
      sessionId,
      userId: 'owner',
      patch,
    });
    expect(mine.state.summary).toBe('x');
    expect(await client.request(GetSessionState, { tenantId, sessionId, userId: 'owner' })).toEqual(
      mine.state,
    );

    await client.request(DeleteSession, { context: { tenantId }, sessionId });
    await expectDomainError(
      client.request(UpdateSessionState, { context: { tenantId }, sessionId, patch: { summary: 'y' } }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(client.request(GetSessionState, { tenantId, sessionId }), 'SESSION.NOT_FOUND');
    await expectDomainError(
      client.request(GetSessionState, { tenantId, sessionId, version: 1 }),
      'SESSION.NOT_FOUND',
    );
    await expectDomainError(
      client.request(GetSessionHistory, { tenantId, sessionId, limit: 10 }),
      'SESSION.NOT_FOUND',
    );
    expect(await stateEventsOf(tenantId)).toBe(1);
  });

  it('answers a retry with the same idempotency key with the first reply, appending once', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    const request = {
      context: { tenantId, idempotencyKey: 'k1' },
      sessionId,
      name: 'q',
      status: 'running' as const,
    };
    const first = await client.request(SetToolCallStatus, request);
    const again = await client.request(SetToolCallStatus, {
      ...request,
      context: { ...request.context, correlationId: 'c2' },
    });
    expect(again).toEqual(first);
    expect(await stateEventsOf(tenantId)).toBe(2);
  });

  it('serializes concurrent writers of one session: every patch lands, versions 1..n', async () => {
    const tenantId = newTenant();
    const sessionId = await newSession(tenantId);
    const n = 8;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.request(UpdateSessionState, {
          context: { tenantId },
          sessionId,
          patch: { constraints: { [`k${i}`]: i } },
        }),
      ),
    );
    const state = await client.request(GetSessionState, { tenantId, sessionId });
    expect(state.version).toBe(n);
    expect(Object.keys(state.constraints as object).sort()).toEqual(
      Array.from({ length: n }, (_, i) => `k${i}`).sort(),
    );
  });

  it('rebuilds the read model from the events to the same rows, also when replayed twice', async () => {
    const rows = async () =>
      tdb.db.query(
        'SELECT tenant_id, session_id, version, document, tool_calls, tool_call_count, is_complete, updated_at, last_global_position FROM session_states ORDER BY tenant_id, session_id',
      );
    const before = await rows();
    expect(before.length).toBeGreaterThan(0);
    const runner = new ProjectionRunner(
      tdb.db,
      app.get(EventStore),
      sessionStatesEventRegistry,
      new SessionStatesProjection(),
    );
    await runner.rebuild();
    expect(await rows()).toEqual(before);
    // Replaying every event again through apply (already applied) changes nothing.
    const projection = new SessionStatesProjection();
    const events = await tdb.db.query(
      "SELECT global_position FROM events WHERE stream_type = 'session_state'",
    );
    expect(events.length).toBeGreaterThan(0);
    const store = app.get(EventStore);
    for (const batch of [await store.readAll({ transactionId: '0', globalPosition: 0 }, 10_000)]) {
      // The projection's stream types: state events, and session events (SessionDeleted removes a row).
      for (const e of batch.filter((x) => projection.streamTypes.some((t) => t === x.streamType)))
        await projection.apply(tdb.db, sessionStatesEventRegistry.parse(e));
    }
    expect(await rows()).toEqual(before);
  });
});
