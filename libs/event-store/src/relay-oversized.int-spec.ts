import { randomUUID } from 'node:crypto';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  type TestDatabase,
  type TestNats,
} from '@threadline/testing';
import { DeadLetters } from './dead-letters';
import { EventStore } from './event-store';
import { Relay, RELAY_DEAD_LETTER_CONSUMER } from './relay';

// Issue 20: an event larger than NATS's max_payload (1 MiB on the test server) used to be retried by
// the relay for ever, stopping JetStream delivery for every event behind it.

let t: TestDatabase;
let nats: TestNats;
let relay: Relay;

beforeAll(async () => {
  t = await createTestDatabase();
  nats = await createTestNats();
});

afterAll(async () => {
  await relay?.stop();
  await t?.drop();
  await nats?.cleanup();
});

it('dead-letters an event too large for NATS and relays the events behind it', async () => {
  const maxPayload = nats.nc.info?.max_payload ?? 0;
  expect(maxPayload).toBeGreaterThan(0);
  const store = new EventStore(t.db);
  const metadata = { tenantId: 'tenant-big' };
  const big = await store.append(
    `widget:${randomUUID()}`,
    'widget',
    'no_stream',
    [{ type: 'WidgetAdded.v1', data: { blob: 'x'.repeat(maxPayload) } }],
    { metadata },
  );
  const small = await store.append(
    `widget:${randomUUID()}`,
    'widget',
    'no_stream',
    [{ type: 'WidgetAdded.v1', data: { n: 1 } }],
    { metadata },
  );
  relay = new Relay(t.db, store, nats.publisher, { pollIntervalMs: 10 });
  relay.start();
  const smallId = small.events[0]!.eventId;
  const ids = await eventually(async () => {
    const now = (await nats.messages()).map((m) => m.msgId);
    return now.includes(smallId) ? now : undefined;
  });
  expect(ids).toEqual([smallId]);
  const letters = await new DeadLetters(t.db).list(RELAY_DEAD_LETTER_CONSUMER);
  expect(letters).toEqual([
    expect.objectContaining({
      event_id: big.events[0]!.eventId,
      error: expect.stringMatching(/max_payload/),
    }),
  ]);
});
