import { NewTenantId, sessionStreamId, TenantId } from '@threadline/contracts';
import { createTestDatabase, type TestDatabase } from '@threadline/testing';
import { EventStore } from './event-store';

// Issue 20: stream ids are `<type>:<tenant>:<id>` and ids may hold `:`, so tenant `a` + session `b:c`
// and tenant `a:b` + session `c` name ONE stream. Before the fix, tenant `a` read tenant `a:b`'s events
// and appended to its stream. Now a stream belongs to the tenant of its first append (another tenant's
// append is a conflict, nothing written), reads for a tenant see only its events, and new tenant ids
// may not hold a `:` at all.

let t: TestDatabase;
let store: EventStore;
const owner = { tenantId: 'a:b' };
const other = { tenantId: 'a' };
const streamId = sessionStreamId('a:b', 'c');
const event = (n: number) => [{ type: 'WidgetAdded.v1', data: { n } }];

beforeAll(async () => {
  t = await createTestDatabase();
  store = new EventStore(t.db);
  await store.append(streamId, 'session', 'no_stream', event(1), { metadata: owner });
});

afterAll(async () => {
  await t?.drop();
});

async function storedTenants(): Promise<string[]> {
  const rows = await t.db.query<{ tenant_id: string }>(
    'SELECT tenant_id FROM events WHERE stream_id = $1 ORDER BY stream_position',
    [streamId],
  );
  return rows.map((r) => r.tenant_id);
}

it('the two tenants’ ids make one stream id', () => {
  expect(sessionStreamId('a', 'b:c')).toBe(streamId);
});

it('refuses every append of the other tenant to that stream, by every path, and writes nothing', async () => {
  for (const expected of ['no_stream', 'any', 'stream_exists', 1] as const) {
    await expect(
      store.append(streamId, 'session', expected, event(2), { metadata: other }),
    ).rejects.toMatchObject({
      code: 'STREAM.VERSION_CONFLICT',
    });
    await expect(
      store.transaction((tx) => tx.append(streamId, 'session', expected, event(2), { metadata: other })),
    ).rejects.toMatchObject({ code: 'STREAM.VERSION_CONFLICT' });
    const [many] = await store.transaction((tx) =>
      tx.appendMany([
        { streamId, streamType: 'session', expected, events: event(2), opts: { metadata: other } },
      ]),
    );
    expect(many).toBeNull();
  }
  expect(await storedTenants()).toEqual(['a:b']);
  // The owner still appends.
  await store.append(streamId, 'session', 1, event(3), { metadata: owner });
  expect(await storedTenants()).toEqual(['a:b', 'a:b']);
});

it('reads for a tenant see only its own events', async () => {
  expect(await store.readStream(streamId, { tenantId: 'a' })).toEqual([]);
  const own = await store.readStream(streamId, { tenantId: 'a:b' });
  expect(own.map((e) => e.metadata.tenantId)).toEqual(['a:b', 'a:b']);
});

it('new tenant ids may not hold a colon; stored ones still parse', () => {
  expect(NewTenantId.safeParse('a:b').success).toBe(false);
  expect(NewTenantId.safeParse('acme-eu').success).toBe(true);
  expect(TenantId.safeParse('a:b').success).toBe(true);
});
