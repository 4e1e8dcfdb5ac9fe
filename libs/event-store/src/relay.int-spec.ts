import { randomUUID } from 'node:crypto';
import { EventEnvelope } from '@threadline/contracts';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  readAllSettled,
  type StreamMessage,
  type TestDatabase,
  type TestNats,
} from '@threadline/testing';
import { Checkpoints, type CommitPosition, EventStore, type NewEvent } from './event-store';
import { type EventPublisher, Relay, type RelayLogger, type RelayOptions } from './relay';

// The outbox relay against the real Postgres and JetStream (ARCHITECTURE rules 1-3).

const metadata = { tenantId: 'tenant-r' };
const added = (n: number): NewEvent => ({ type: 'WidgetAdded.v1', data: { n } });

let t: TestDatabase;
let nats: TestNats;
/** The event store, counting the relay's polls (`readAll` calls). */
class CountingStore extends EventStore {
  reads = 0;
  override readAll(...args: Parameters<EventStore['readAll']>) {
    this.reads += 1;
    return super.readAll(...args);
  }
}
let store: CountingStore;
const relays: Relay[] = [];
const errors: unknown[] = [];
const logger: RelayLogger = { info: () => undefined, error: (obj) => errors.push(obj) };

function relay(publisher: EventPublisher, options: RelayOptions = {}): Relay {
  const r = new Relay(t.db, store, publisher, { pollIntervalMs: 10, standbyRetryMs: 50, logger, ...options });
  relays.push(r);
  return r;
}

async function appendMany(streams: number, perStream: number): Promise<string[]> {
  const ids: string[] = [];
  for (let s = 0; s < streams; s++) {
    const r = await store.append(
      `widget:${randomUUID()}`,
      'widget',
      'no_stream',
      Array.from({ length: perStream }, (_, i) => added(i)),
      { metadata },
    );
    ids.push(...r.events.map((e) => e.eventId));
  }
  return ids;
}

/** The last committed event in commit order, read from the table (not through the tail). */
async function lastCommitted(): Promise<CommitPosition> {
  const [row] = await t.db.query<{ transaction_id: string; global_position: string }>(
    `SELECT transaction_id::text AS transaction_id, global_position FROM events
     ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1`,
  );
  return { transactionId: row!.transaction_id, globalPosition: Number(row!.global_position) };
}

async function allEventIds(): Promise<string[]> {
  const rows = await t.db.query<{ event_id: string }>(
    'SELECT event_id FROM events ORDER BY transaction_id, global_position',
  );
  return rows.map((r) => r.event_id);
}

/** Waits until the stream holds exactly one message per stored event, and returns the messages. */
async function streamMatchesEvents(): Promise<StreamMessage[]> {
  const ids = await allEventIds();
  return eventually(
    async () => {
      const msgs = await nats.messages();
      return msgs.length >= ids.length ? msgs : undefined;
    },
    10_000,
    `${ids.length} messages in the stream`,
  ).then(async (msgs) => {
    expectExactlyOnce(msgs, await allEventIds());
    return msgs;
  });
}

function expectExactlyOnce(msgs: StreamMessage[], ids: string[]): void {
  const msgIds = msgs.map((m) => m.msgId);
  const envelopeIds = msgs.map((m) => EventEnvelope.parse(JSON.parse(m.body)).eventId);
  expect(msgs).toHaveLength(ids.length);
  expect(new Set(msgIds).size).toBe(msgs.length);
  expect(new Set(msgIds)).toEqual(new Set(ids));
  expect(envelopeIds).toEqual(msgIds);
}

beforeAll(async () => {
  [t, nats] = await Promise.all([createTestDatabase(), createTestNats()]);
  store = new CountingStore(t.db);
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  await nats.cleanup();
  await t.drop();
});

describe('Relay', () => {
  it('publishes every event once, in commit order, with Nats-Msg-Id = event id and the contract subject', async () => {
    const before = await appendMany(3, 4);
    const r = relay(nats.publisher, { name: 'relay', batchSize: 5 });
    r.start();
    await eventually(() => (r.isLeader ? true : undefined));
    const during = await appendMany(2, 3);
    const msgs = await streamMatchesEvents();

    expect(msgs.map((m) => m.msgId)).toEqual([...before, ...during]); // stream order = commit order
    for (const m of msgs) {
      expect(m.subject).toBe(`${nats.prefix}.evt.widget.WidgetAdded.v1`);
      const envelope = EventEnvelope.parse(JSON.parse(m.body));
      expect(envelope.metadata).toEqual(metadata);
    }
    // The checkpoint is saved after the acks: it reaches the last event.
    const expected = await lastCommitted();
    await eventually(async () => {
      const saved = await new Checkpoints(t.db).load('relay');
      return saved.globalPosition === expected.globalPosition ? saved : undefined;
    });
    expect(await new Checkpoints(t.db).load('relay')).toEqual(expected);
    expect(r.position).toEqual(expected);
  });

  it('publishes nothing of a transaction before it commits, and never skips it (slow transaction)', async () => {
    const r = relay(nats.publisher, { name: 'relay' });
    r.start();
    await streamMatchesEvents();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const inA = new Promise<void>((resolve) => (appended = resolve));
    const slowStream = `widget:${randomUUID()}`;
    const slow = store.transaction(async (tx) => {
      await tx.append(slowStream, 'widget', 'no_stream', [added(1)], { metadata });
      appended();
      await held;
    });
    await inA;
    const [fast] = await appendMany(1, 1);
    const countBefore = (await nats.messages()).length;
    // The relay keeps polling; give it the chance to (wrongly) publish the fast event: wait for three more polls.
    const polled = r.position;
    const reads = store.reads;
    await eventually(() => (store.reads >= reads + 3 ? true : undefined));
    expect(r.position).toEqual(polled);
    expect((await nats.messages()).map((m) => m.msgId)).not.toContain(fast);
    expect((await nats.messages()).length).toBe(countBefore);
    release();
    await slow;
    const msgs = await streamMatchesEvents();
    const [slowEvent] = await store.readStream(slowStream);
    expect(msgs.slice(-2).map((m) => m.msgId)).toEqual([slowEvent!.eventId, fast]);
  });

  it('only one of two relays on a database is active; the other takes over when it stops', async () => {
    const a = relay(nats.publisher, { name: 'relay' });
    const b = relay(nats.publisher, { name: 'relay' });
    a.start();
    await eventually(() => (a.isLeader ? true : undefined));
    b.start();
    const [lockHolders] = await t.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND database =
         (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    expect(Number(lockHolders?.n)).toBe(1);
    await appendMany(2, 2);
    await streamMatchesEvents();
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);

    await a.stop();
    expect(a.isLeader).toBe(false);
    await eventually(() => (b.isLeader ? true : undefined), 5000, 'the standby relay to take over');
    await appendMany(2, 3);
    await streamMatchesEvents();
  });

  it('a relay killed between publish and checkpoint makes no duplicate: each event id is in the stream once', async () => {
    // Catch the current relay up first, so the checkpoint is at the head.
    const warm = relay(nats.publisher, { name: 'relay' });
    warm.start();
    await streamMatchesEvents();
    await warm.stop();
    const startedAt = await new Checkpoints(t.db).load('relay');

    const ids = await appendMany(5, 5); // 25 events
    await readAllSettled(store, startedAt); // all visible to the tail before the relay starts
    // A publisher that publishes for real, and "dies" right after its 15th publish: every later call fails.
    let published = 0;
    let dead = false;
    const dying: EventPublisher = {
      publish: async (event) => {
        if (dead) throw new Error('process killed');
        await nats.publisher.publish(event);
        published += 1;
        if (published >= 15) {
          dead = true;
          throw new Error('process killed after publish, before checkpoint');
        }
      },
    };
    const victim = relay(dying, { name: 'relay', batchSize: 10, maxInFlight: 4 });
    victim.start();
    await eventually(() => (dead ? true : undefined));
    await victim.stop();

    // Whole batches before the failing one were checkpointed; events up to the 15th were published, and
    // the checkpoint is before the 15th (normally after the 10th: batches of 10).
    const saved = await new Checkpoints(t.db).load('relay');
    const [fifteenth] = await t.db.query<{ global_position: string }>(
      'SELECT global_position FROM events WHERE event_id = $1',
      [ids[14]],
    );
    expect(saved.globalPosition).toBeLessThan(Number(fifteenth?.global_position));
    expect(saved.globalPosition).toBeGreaterThan(startedAt.globalPosition);
    const published15 = (await nats.messages()).map((m) => m.msgId);
    for (const id of ids.slice(0, 15)) expect(published15).toContain(id);
    expect(published).toBeGreaterThanOrEqual(15);

    // A new relay starts from the checkpoint and republishes events 11..25; JetStream drops the copies.
    const successor = relay(nats.publisher, { name: 'relay' });
    successor.start();
    const last = await lastCommitted();
    await eventually(async () =>
      (await new Checkpoints(t.db).load('relay')).globalPosition === last.globalPosition ? true : undefined,
    );
    expectExactlyOnce(await nats.messages(), await allEventIds());
    expect(errors.length).toBeGreaterThan(0); // the victim logged its failure
  });

  it('a relay with a fresh checkpoint republishes everything, and JetStream keeps one copy of each', async () => {
    const fresh = relay(nats.publisher, { name: 'relay-replay', batchSize: 7 });
    fresh.start();
    const last = await lastCommitted();
    await eventually(() => (fresh.position.globalPosition === last.globalPosition ? true : undefined));
    expectExactlyOnce(await nats.messages(), await allEventIds());
  });
});
