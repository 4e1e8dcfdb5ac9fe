import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { jetstreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { defineEvent, type EventEnvelope } from '@threadline/contracts';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  type TestDatabase,
  type TestNats,
} from '@threadline/testing';
import {
  type DeadLetterSink,
  JetStreamEventContext,
  JetStreamEventsServer,
  OnEvent,
  OnStream,
} from './jetstream-events.server';
import { RpcErrorReplyFilter } from './request-reply';

// The JetStream events transport over the real NATS server, with dead letters in a real test database
// (ARCHITECTURE rule 7): explicit ack, bounded redelivery with backoff, poison events dead-lettered.

const WidgetAddedV1 = defineEvent(
  'widget',
  'WidgetAdded',
  1,
  z.object({ mode: z.enum(['ok', 'flaky', 'poison']) }),
);
const GadgetAddedV1 = defineEvent('gadget', 'GadgetAdded', 1, z.object({ n: z.number() }));

/** Every call of a handler: which handler, which event, which attempt of it. */
const calls: { handler: string; eventId: string; at: number }[] = [];
const contexts: { consumer: string; subject: string; deliveryCount: number }[] = [];
const callsOf = (eventId: string, handler = 'widget') =>
  calls.filter((c) => c.eventId === eventId && c.handler === handler).length;

@Controller()
class TestEventsController {
  @OnEvent(WidgetAddedV1)
  widgetAdded(@Payload() event: EventEnvelope): void {
    calls.push({ handler: 'widget', eventId: event.eventId, at: Date.now() });
    const { mode } = WidgetAddedV1.schema.parse(event.data);
    if (mode === 'poison') throw new Error(`poison event ${event.eventId} cannot be handled`);
    if (mode === 'flaky' && callsOf(event.eventId) <= 2) throw new Error('transient failure');
  }

  @OnStream('widget')
  async everyWidgetEvent(@Payload() event: EventEnvelope): Promise<void> {
    await Promise.resolve();
    calls.push({ handler: 'widget-stream', eventId: event.eventId, at: Date.now() });
  }

  @OnStream('gadget')
  everyGadgetEvent(@Payload() event: EventEnvelope, @Ctx() ctx: JetStreamEventContext): void {
    calls.push({ handler: 'gadget-stream', eventId: event.eventId, at: Date.now() });
    contexts.push({
      consumer: ctx.getConsumer(),
      subject: ctx.getSubject(),
      deliveryCount: ctx.getDeliveryCount(),
    });
  }
}

const GizmoAddedV1 = defineEvent('gizmo', 'GizmoAdded', 1, z.object({ n: z.number() }));
const GIZMO_CONCURRENCY = 4;
/** Gizmo handler calls running now, the most at once, and the event ids of those that finished. */
const gizmos = { running: 0, most: 0, done: [] as string[] };
/** Resolved when GIZMO_CONCURRENCY calls run at once: each call waits for it. */
let allRunning!: () => void;
const concurrentGizmos = new Promise<void>((resolve) => (allRunning = resolve));

@Controller()
class ConcurrentEventsController {
  @OnStream('gizmo', { concurrency: GIZMO_CONCURRENCY })
  async everyGizmoEvent(@Payload() event: EventEnvelope): Promise<void> {
    gizmos.running += 1;
    gizmos.most = Math.max(gizmos.most, gizmos.running);
    if (gizmos.running === GIZMO_CONCURRENCY) allRunning();
    await concurrentGizmos;
    gizmos.running -= 1;
    gizmos.done.push(event.eventId);
  }
}

const DoohickeyAddedV1 = defineEvent('doohickey', 'DoohickeyAdded', 1, z.object({ n: z.number() }));
/** Doohickey stream handler calls running now, the most at once, and how many finished. */
const doohickeys = { running: 0, most: 0, done: 0 };

/** One handler of the stream type allows concurrency, the other does not: one at a time. */
@Controller()
class MixedEventsController {
  @OnStream('doohickey', { concurrency: 8 })
  async everyDoohickeyEvent(): Promise<void> {
    doohickeys.running += 1;
    doohickeys.most = Math.max(doohickeys.most, doohickeys.running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    doohickeys.running -= 1;
    doohickeys.done += 1;
  }

  @OnEvent(DoohickeyAddedV1)
  doohickeyAdded(): void {}
}

@Module({ controllers: [TestEventsController, ConcurrentEventsController, MixedEventsController] })
class TestEventsModule {}

let globalPosition = 0;
function envelope(streamType: string, eventType: string, data: unknown): EventEnvelope {
  return {
    eventId: randomUUID(),
    eventType,
    schemaVersion: 1,
    streamId: `${streamType}:${randomUUID()}`,
    streamType,
    streamPosition: 1,
    globalPosition: ++globalPosition,
    transactionId: String(1000 + globalPosition),
    data,
    metadata: { tenantId: 'tenant-j' },
    createdAt: new Date().toISOString(),
  };
}
const widget = (mode: 'ok' | 'flaky' | 'poison') => envelope('widget', WidgetAddedV1.type, { mode });

let t: TestDatabase;
let nats: TestNats;
/**
 * The server's dead-letter sink: `t.deadLetters`, except that for the event ids in `lostReplies` the
 * first record commits and then fails, as when the connection drops before Postgres's reply (the
 * server naks, and JetStream redelivers a message whose letter is already recorded).
 */
const lostReplies = new Set<string>();
const recordCalls: (string | undefined)[] = [];
const sink: DeadLetterSink = {
  async record(letter) {
    recordCalls.push(letter.eventId);
    const recorded = await t.deadLetters.record(letter);
    if (letter.eventId !== undefined && lostReplies.delete(letter.eventId)) {
      throw new Error('Connection terminated unexpectedly');
    }
    return recorded;
  },
};
let app: INestMicroservice;
const durable = 'test-consumer';
const maxDeliver = 3;

beforeAll(async () => {
  [t, nats] = await Promise.all([createTestDatabase(), createTestNats()]);
  app = await NestFactory.createMicroservice(TestEventsModule, {
    strategy: new JetStreamEventsServer({
      connection: nats.nc,
      stream: nats.stream,
      prefix: nats.prefix,
      durable,
      deadLetters: sink,
      maxDeliver,
      backoffMs: [20, 50],
    }),
    logger: false,
  });
  app.useGlobalFilters(new RpcErrorReplyFilter()); // as startServiceTransports does
  await app.listen();
});
afterAll(async () => {
  await app.close();
  await nats.cleanup();
  await t.drop();
});

async function consumerSettled(category: string): Promise<true> {
  const jsm = await jetstreamManager(nats.nc);
  return eventually(
    async () => {
      const info = await jsm.consumers.info(nats.stream, `${durable}-${category}`);
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.num_redelivered >= 0
        ? true
        : undefined;
    },
    10_000,
    `consumer ${category} to ack everything`,
  );
}

describe('JetStreamEventsServer', () => {
  it('creates one durable consumer per followed stream type, explicit ack, filtered on its subjects', async () => {
    const jsm = await jetstreamManager(nats.nc);
    const widgetConsumer = await jsm.consumers.info(nats.stream, `${durable}-widget`);
    expect(widgetConsumer.config.filter_subject).toBe(`${nats.prefix}.evt.widget.>`);
    expect(widgetConsumer.config.ack_policy).toBe('explicit');
    const gadgetConsumer = await jsm.consumers.info(nats.stream, `${durable}-gadget`);
    expect(gadgetConsumer.config.filter_subject).toBe(`${nats.prefix}.evt.gadget.>`);
  });

  it('handles each event once, with every matching handler, and acks it', async () => {
    const events = [
      widget('ok'),
      widget('ok'),
      envelope('gadget', GadgetAddedV1.type, { n: 1 }),
      widget('ok'),
    ];
    for (const e of events) await nats.publisher.publish(e);
    await eventually(() =>
      events.every((e) => calls.some((c) => c.eventId === e.eventId)) ? true : undefined,
    );
    await consumerSettled('widget');
    await consumerSettled('gadget');
    for (const e of events.filter((x) => x.streamType === 'widget')) {
      expect(callsOf(e.eventId, 'widget')).toBe(1);
      expect(callsOf(e.eventId, 'widget-stream')).toBe(1);
    }
    expect(callsOf(events[2]!.eventId, 'gadget-stream')).toBe(1);
    expect(contexts).toEqual([
      { consumer: `${durable}-gadget`, subject: GadgetAddedV1.subject(nats.prefix), deliveryCount: 1 },
    ]);
    // In order, per consumer.
    const widgetOrder = calls.filter((c) => c.handler === 'widget').map((c) => c.eventId);
    expect(widgetOrder).toEqual(events.filter((x) => x.streamType === 'widget').map((e) => e.eventId));
    expect(await t.deadLetters.list()).toEqual([]);
  });

  it('redelivers an event whose handler fails transiently (nak with backoff), until it succeeds', async () => {
    const flaky = widget('flaky');
    await nats.publisher.publish(flaky);
    await eventually(() => (callsOf(flaky.eventId, 'widget-stream') === 1 ? true : undefined));
    await consumerSettled('widget');
    expect(callsOf(flaky.eventId)).toBe(3); // failed, failed, succeeded
    // Redelivered after the backoff of each attempt (20 ms, then 50 ms), not at once.
    const at = calls.filter((c) => c.eventId === flaky.eventId && c.handler === 'widget').map((c) => c.at);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(15);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(45);
    expect(await t.deadLetters.list()).toEqual([]);
  });

  it('dead-letters an event that always fails after maxDeliver attempts, without blocking later events', async () => {
    const poison = widget('poison');
    const after = widget('ok');
    await nats.publisher.publish(poison);
    await nats.publisher.publish(after);
    // The later event is handled while the poison one is still being retried.
    await eventually(() => (callsOf(after.eventId) === 1 ? true : undefined));
    const [letter] = await eventually(async () => {
      const letters = await t.deadLetters.list(`${durable}-widget`);
      return letters.length > 0 ? letters : undefined;
    });
    expect(letter).toMatchObject({
      consumer: `${durable}-widget`,
      subject: WidgetAddedV1.subject(nats.prefix),
      event_id: poison.eventId,
      event_type: WidgetAddedV1.type,
      stream_id: poison.streamId,
      global_position: poison.globalPosition,
      attempts: maxDeliver,
    });
    expect(letter!.error).toContain(`poison event ${poison.eventId} cannot be handled`);
    expect(JSON.parse(letter!.payload)).toEqual(poison);
    await consumerSettled('widget');
    expect(callsOf(poison.eventId)).toBe(maxDeliver);
    // Terminated: not redelivered any more.
    const jsm = await jetstreamManager(nats.nc);
    const info = await jsm.consumers.info(nats.stream, `${durable}-widget`);
    expect(info.num_ack_pending).toBe(0);
    expect(await t.deadLetters.list()).toHaveLength(1);
  });

  it('records a poison event once when it is redelivered after its dead letter was recorded', async () => {
    const poison = widget('poison');
    lostReplies.add(poison.eventId);
    await nats.publisher.publish(poison);
    // Recorded, reply lost, naked (5 s), redelivered, failed again, recorded again: one letter.
    await eventually(
      () => (recordCalls.filter((id) => id === poison.eventId).length === 2 ? true : undefined),
      15_000,
      'the poison event to be dead-lettered twice',
    );
    await consumerSettled('widget');
    expect(callsOf(poison.eventId)).toBe(maxDeliver + 1);
    const letters = (await t.deadLetters.list(`${durable}-widget`)).filter(
      (l) => l.event_id === poison.eventId,
    );
    expect(letters).toHaveLength(1);
    expect(letters[0]?.attempts).toBe(maxDeliver);
  }, 20_000);

  it('handles up to `concurrency` messages at once when every handler of the stream type allows it', async () => {
    const events = Array.from({ length: 3 * GIZMO_CONCURRENCY }, (_, n) =>
      envelope('gizmo', GizmoAddedV1.type, { n }),
    );
    for (const e of events) await nats.publisher.publish(e);
    // Each call waits until GIZMO_CONCURRENCY run at once: handled one at a time, none would finish.
    await eventually(() => (gizmos.done.length === events.length ? true : undefined));
    await consumerSettled('gizmo');
    expect(gizmos.most).toBe(GIZMO_CONCURRENCY);
    expect([...gizmos.done].sort()).toEqual(events.map((e) => e.eventId).sort());
    expect(await t.deadLetters.list(`${durable}-gizmo`)).toEqual([]);
  });

  it('handles one message at a time when any handler of the stream type does not allow concurrency', async () => {
    const events = Array.from({ length: 8 }, (_, n) => envelope('doohickey', DoohickeyAddedV1.type, { n }));
    for (const e of events) await nats.publisher.publish(e);
    await eventually(() => (doohickeys.done === events.length ? true : undefined));
    await consumerSettled('doohickey');
    expect(doohickeys.most).toBe(1);
  });

  it('dead-letters a message that is not an event envelope at once, and handles the next one', async () => {
    const subject = `${nats.prefix}.evt.widget.Garbage.v1`;
    nats.nc.publish(subject, JSON.stringify({ hello: 'world' }));
    nats.nc.publish(subject, 'not json at all');
    const next = widget('ok');
    await nats.publisher.publish(next);
    await eventually(() => (callsOf(next.eventId) === 1 ? true : undefined));
    const letters = await eventually(async () => {
      const rows = (await t.deadLetters.list(`${durable}-widget`)).filter((l) => l.subject === subject);
      return rows.length === 2 ? rows : undefined;
    });
    expect(letters.map((l) => l.payload)).toEqual([JSON.stringify({ hello: 'world' }), 'not json at all']);
    for (const l of letters) {
      expect(l.attempts).toBe(1);
      expect(l.event_id).toBeNull();
      expect(l.error).not.toBe('');
    }
    await consumerSettled('widget');
  });
});
