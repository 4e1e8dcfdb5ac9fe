import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@threadline/contracts';
import { DomainError, StreamVersionConflictError } from '@threadline/platform';
import {
  commitPositionOf,
  createTestDatabase,
  eventually,
  readAllSettled,
  type TestDatabase,
} from '@threadline/testing';
import {
  type CommitPosition,
  EventStore,
  type ExpectedVersion,
  IdempotencyKeyReusedError,
  type NewEvent,
  START,
} from './event-store';
import { AppendBatcher } from './append';

// The event store against the real Postgres: append modes and conflicts, reads, commit-safe tailing
// (ARCHITECTURE rules 3 and 4), idempotency, the inline callback.

const tenantId = 'tenant-a';
const metadata = { tenantId };
const added = (n: number): NewEvent => ({ type: 'WidgetAdded.v1', data: { n } });
const events = (count: number, from = 1): NewEvent[] =>
  Array.from({ length: count }, (_, i) => added(from + i));
const streamOf = () => `widget:${randomUUID()}`;

/** A promise with its resolve exposed: used to hold a transaction open until the test says so. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

async function conflictOf(p: Promise<unknown>): Promise<StreamVersionConflictError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StreamVersionConflictError);
  return error as StreamVersionConflictError;
}

let t: TestDatabase;
let store: EventStore;

beforeAll(async () => {
  t = await createTestDatabase([], 30);
  store = new EventStore(t.db);
});
afterAll(async () => {
  await t.drop();
});

describe('append: expected version modes', () => {
  it('no_stream creates a stream and conflicts when it exists', async () => {
    const s = streamOf();
    const r = await store.append(s, 'widget', 'no_stream', events(2), { metadata });
    expect(r.nextExpectedVersion).toBe(2);
    expect(r.events.map((e) => e.streamPosition)).toEqual([1, 2]);
    expect(r.lastGlobalPosition).toBe(r.events[1]!.globalPosition);

    const c = await conflictOf(store.append(s, 'widget', 'no_stream', events(1), { metadata }));
    expect(c.code).toBe('STREAM.VERSION_CONFLICT');
    expect(c).toBeInstanceOf(DomainError);
    expect(c.details).toEqual({ streamId: s, expected: 'no_stream', actual: 2 });
    expect(await store.readStream(s)).toHaveLength(2);
  });

  it('stream_exists appends to an existing stream and conflicts on a missing one', async () => {
    const missing = streamOf();
    const c = await conflictOf(store.append(missing, 'widget', 'stream_exists', events(1), { metadata }));
    expect(c.details).toEqual({ streamId: missing, expected: 'stream_exists', actual: null });
    expect(await store.readStream(missing)).toEqual([]);
    const [row] = await t.db.query('SELECT 1 FROM streams WHERE stream_id = $1', [missing]);
    expect(row).toBeUndefined();

    const s = streamOf();
    await store.append(s, 'widget', 'no_stream', events(1), { metadata });
    const r = await store.append(s, 'widget', 'stream_exists', events(2, 2), { metadata });
    expect(r.nextExpectedVersion).toBe(3);
  });

  it('any appends whatever the version, creating the stream when needed', async () => {
    const s = streamOf();
    expect((await store.append(s, 'widget', 'any', events(1), { metadata })).nextExpectedVersion).toBe(1);
    expect((await store.append(s, 'widget', 'any', events(3, 2), { metadata })).nextExpectedVersion).toBe(4);
    expect((await store.readStream(s)).map((e) => e.streamPosition)).toEqual([1, 2, 3, 4]);
  });

  it('an exact number must be the current version', async () => {
    const s = streamOf();
    await store.append(s, 'widget', 'no_stream', events(2), { metadata });
    const r = await store.append(s, 'widget', 2, events(1, 3), { metadata });
    expect(r.nextExpectedVersion).toBe(3);

    const stale = await conflictOf(store.append(s, 'widget', 2, events(1), { metadata }));
    expect(stale.details).toEqual({ streamId: s, expected: 2, actual: 3 });
    const ahead = await conflictOf(store.append(s, 'widget', 7, events(1), { metadata }));
    expect(ahead.details).toEqual({ streamId: s, expected: 7, actual: 3 });
    const missing = streamOf();
    const none = await conflictOf(store.append(missing, 'widget', 1, events(1), { metadata }));
    expect(none.details).toEqual({ streamId: missing, expected: 1, actual: null });
    expect(await store.readStream(s)).toHaveLength(3);
  });

  it('0 means "no events yet": creates the stream, conflicts once it has events', async () => {
    const s = streamOf();
    expect((await store.append(s, 'widget', 0, events(1), { metadata })).nextExpectedVersion).toBe(1);
    const c = await conflictOf(store.append(s, 'widget', 0, events(1), { metadata }));
    expect(c.details).toEqual({ streamId: s, expected: 0, actual: 1 });
  });

  it('refuses an empty append and a type without a version suffix, writing nothing', async () => {
    const s = streamOf();
    await expect(store.append(s, 'widget', 'any', [], { metadata })).rejects.toThrow(/at least one event/);
    await expect(
      store.append(s, 'widget', 'any', [{ type: 'WidgetAdded', data: {} }], { metadata }),
    ).rejects.toThrow(/version suffix/);
    expect(await store.readStream(s)).toEqual([]);
  });

  it('stores the metadata, the tenant column, schema version and event type', async () => {
    const s = streamOf();
    const meta = { tenantId: 'tenant-m', userId: 'user-1', correlationId: 'corr-1', causationId: 'cause-1' };
    await store.append(s, 'widget', 'no_stream', [{ type: 'WidgetRenamed.v3', data: { name: 'x' } }], {
      metadata: meta,
    });
    const [e] = await store.readStream(s);
    expect(e).toMatchObject({
      eventType: 'WidgetRenamed.v3',
      schemaVersion: 3,
      streamType: 'widget',
      data: { name: 'x' },
      metadata: meta,
    });
    const [row] = await t.db.query<{ tenant_id: string }>(
      'SELECT tenant_id FROM events WHERE event_id = $1',
      [e!.eventId],
    );
    expect(row?.tenant_id).toBe('tenant-m');
    const [stream] = await t.db.query<{ tenant_id: string; version: string; stream_type: string }>(
      'SELECT tenant_id, version, stream_type FROM streams WHERE stream_id = $1',
      [s],
    );
    expect(stream).toEqual({ tenant_id: 'tenant-m', version: '1', stream_type: 'widget' });
  });
});

describe('append: concurrency', () => {
  it.each<[string, ExpectedVersion]>([
    ['the same exact version', 3],
    ['no_stream on a new stream', 'no_stream'],
  ])(
    '10 parallel appends with %s: exactly one wins, the rest conflict, no gaps or duplicates',
    async (_, expected) => {
      const s = streamOf();
      if (expected === 3) await store.append(s, 'widget', 'no_stream', events(3), { metadata });
      const base = expected === 3 ? 3 : 0;
      // Every transaction has begun (and read the version it expects) before any of them appends.
      const allIn = gate();
      let inside = 0;
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.readStream(s);
            if (++inside === 10) allIn.open();
            await allIn.opened;
            return tx.append(s, 'widget', expected, events(2, 100 * (i + 1)), { metadata });
          }),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(9);
      for (const r of lost) {
        expect(r.reason).toBeInstanceOf(StreamVersionConflictError);
        expect((r.reason as StreamVersionConflictError).details).toMatchObject({
          expected,
          actual: base + 2,
        });
      }
      const stored = await store.readStream(s);
      expect(stored.map((e) => e.streamPosition)).toEqual(Array.from({ length: base + 2 }, (_, i) => i + 1));
      expect(new Set(stored.map((e) => e.eventId)).size).toBe(stored.length);
    },
  );

  it('parallel appends with "any" all succeed, in a gapless sequence', async () => {
    const s = streamOf();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.append(s, 'widget', 'any', events(2, i * 2), { metadata })),
    );
    const stored = await store.readStream(s);
    expect(stored.map((e) => e.streamPosition)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const [v] = await t.db.query<{ version: string }>('SELECT version FROM streams WHERE stream_id = $1', [
      s,
    ]);
    expect(Number(v?.version)).toBe(20);
  });
});

describe('append: group commit of standalone appends', () => {
  /** How many transactions wrote `streams`' events: appends sharing a statement share one. */
  const transactionsOf = async (streams: string[]) => {
    const rows = await t.db.query<{ n: string }>(
      'SELECT count(DISTINCT transaction_id::text) AS n FROM events WHERE stream_id = ANY($1)',
      [streams],
    );
    return Number(rows[0]?.n);
  };

  it('appends issued together share one statement, and each gets its own stream positions', async () => {
    const streams = Array.from({ length: 12 }, streamOf);
    const results = await Promise.all(
      streams.map((s, i) => store.append(s, 'widget', 'no_stream', events(i + 1), { metadata })),
    );
    results.forEach((r, i) => {
      expect(r.events.map((e) => e.streamId)).toEqual(Array(i + 1).fill(streams[i]));
      expect(r.events.map((e) => e.streamPosition)).toEqual(Array.from({ length: i + 1 }, (_, k) => k + 1));
      expect(r.nextExpectedVersion).toBe(i + 1);
      expect(r.events.map((e) => (e.data as { n: number }).n)).toEqual(
        Array.from({ length: i + 1 }, (_, k) => k + 1),
      );
    });
    // At most maxInFlight statements for twelve appends issued in one turn of the event loop.
    expect(await transactionsOf(streams)).toBeLessThanOrEqual(2);
    for (const [i, s] of streams.entries()) expect(await store.readStream(s)).toHaveLength(i + 1);
  });

  it('a conflicting append fails alone; the others in its statement succeed', async () => {
    const [a, b, c, d] = Array.from({ length: 4 }, streamOf) as [string, string, string, string];
    await Promise.all([a, b, c].map((s) => store.append(s, 'widget', 'no_stream', events(2), { metadata })));
    const results = await Promise.allSettled([
      store.append(a, 'widget', 2, events(1, 10), { metadata }), // right version
      store.append(b, 'widget', 1, events(1, 10), { metadata }), // stale version
      store.append(c, 'widget', 'no_stream', events(1, 10), { metadata }), // exists already
      store.append(d, 'widget', 'stream_exists', events(1, 10), { metadata }), // missing
      store.append(streamOf(), 'widget', 'any', events(3), { metadata }),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    const [, staleB, existsC, missingD] = results as PromiseRejectedResult[];
    expect(staleB?.reason).toBeInstanceOf(StreamVersionConflictError);
    expect((staleB?.reason as StreamVersionConflictError).details).toMatchObject({ expected: 1, actual: 2 });
    expect((existsC?.reason as StreamVersionConflictError).details).toMatchObject({ actual: 2 });
    expect((missingD?.reason as StreamVersionConflictError).details).toMatchObject({ actual: null });
    expect((await store.readStream(a)).map((e) => e.streamPosition)).toEqual([1, 2, 3]);
    expect(await store.readStream(b)).toHaveLength(2);
    expect(await store.readStream(c)).toHaveLength(2);
    expect(await store.readStream(d)).toHaveLength(0);
  });

  it('two appends to one stream issued together are written one after the other, never merged', async () => {
    const s = streamOf();
    const [first, second] = await Promise.all([
      store.append(s, 'widget', 'any', events(2), { metadata }),
      store.append(s, 'widget', 'any', events(2, 3), { metadata }),
    ]);
    expect(first.events.map((e) => e.streamPosition)).toEqual([1, 2]);
    expect(second.events.map((e) => e.streamPosition)).toEqual([3, 4]);
    expect(await transactionsOf([s])).toBe(2);
  });

  it('a failure of the combined statement (a duplicate event id) gives each append its own outcome', async () => {
    const s = streamOf();
    const other = streamOf();
    const withKey = { metadata: { tenantId, idempotencyKey: randomUUID() } };
    await store.append(s, 'widget', 'any', events(1), withKey);
    // A replay of the same key on the same stream derives the same event ids: it fails the combined
    // statement, and alone; the append beside it succeeds.
    const [replay, beside] = await Promise.allSettled([
      store.append(s, 'widget', 'any', events(1), withKey),
      store.append(other, 'widget', 'no_stream', events(1), { metadata }),
    ]);
    expect(replay?.status).toBe('rejected');
    expect(beside?.status).toBe('fulfilled');
    expect(await store.readStream(s)).toHaveLength(1);
    expect(await store.readStream(other)).toHaveLength(1);
  });
});

describe('append: appends of many events are written alone', () => {
  const big = AppendBatcher.aloneFrom;
  /** The transaction (as text) that wrote each of `streams`' events, by stream, in stream order. */
  const transactionsByStream = async (streams: string[]) => {
    const rows = await t.db.query<{ stream_id: string; tx: string }>(
      `SELECT stream_id, transaction_id::text AS tx FROM events WHERE stream_id = ANY($1)
       ORDER BY stream_id, stream_position`,
      [streams],
    );
    return new Map(streams.map((s) => [s, rows.filter((r) => r.stream_id === s).map((r) => r.tx)]));
  };

  it('each in its own statement, beside the merged small ones, and in order per stream', async () => {
    const [a, b, c, d] = Array.from({ length: 4 }, streamOf) as [string, string, string, string];
    const results = await Promise.all([
      store.append(a, 'widget', 'no_stream', events(1), { metadata }),
      store.append(c, 'widget', 'no_stream', events(big), { metadata }),
      store.append(b, 'widget', 'no_stream', events(2), { metadata }),
      store.append(d, 'widget', 'no_stream', events(big + 1), { metadata }),
      // Behind the first append of c: a small one, then a big one again.
      store.append(c, 'widget', big, events(1, big + 1), { metadata }),
      store.append(c, 'widget', big + 1, events(big, big + 2), { metadata }),
    ]);
    expect(results.map((r) => r.nextExpectedVersion)).toEqual([1, big, 2, big + 1, big + 1, 2 * big + 1]);
    expect(results[5]?.events.map((e) => e.streamPosition)).toEqual(
      Array.from({ length: big }, (_, k) => big + 2 + k),
    );
    const stored = await store.readStream(c);
    expect(stored.map((e) => (e.data as { n: number }).n)).toEqual(
      Array.from({ length: 2 * big + 1 }, (_, k) => k + 1),
    );
    const txs = await transactionsByStream([a, b, c, d]);
    // a and b share one statement; c's first append, d's, and each later append of c have their own.
    expect(txs.get(a)?.[0]).toBe(txs.get(b)?.[0]);
    const cTxs = [...new Set(txs.get(c))];
    expect(cTxs).toHaveLength(3);
    const all = new Set([txs.get(a)?.[0], ...cTxs, ...new Set(txs.get(d))]);
    expect(all.size).toBe(5);
  });

  it('a stale expected version fails that append only; the next append of its stream is written', async () => {
    const s = streamOf();
    const other = streamOf();
    await store.append(s, 'widget', 'no_stream', events(2), { metadata });
    const results = await Promise.allSettled([
      store.append(s, 'widget', 1, events(big, 10), { metadata }), // stale
      store.append(other, 'widget', 'stream_exists', events(big), { metadata }), // missing
      store.append(s, 'widget', 2, events(big, 100), { metadata }), // right version, behind the stale one
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    const [stale, missing] = results as PromiseRejectedResult[];
    expect(stale?.reason).toBeInstanceOf(StreamVersionConflictError);
    expect((stale?.reason as StreamVersionConflictError).details).toMatchObject({ expected: 1, actual: 2 });
    expect(missing?.reason).toBeInstanceOf(StreamVersionConflictError);
    expect((missing?.reason as StreamVersionConflictError).details).toMatchObject({ actual: null });
    const stored = await store.readStream(s);
    expect(stored.map((e) => e.streamPosition)).toEqual(Array.from({ length: big + 2 }, (_, k) => k + 1));
    expect((stored[2]?.data as { n: number }).n).toBe(100);
    expect(await store.readStream(other)).toHaveLength(0);
  });

  it('a failing big append (a duplicate event id) gets its own error; the appends beside and behind it are written', async () => {
    const s = streamOf();
    const withKey = { metadata: { tenantId, idempotencyKey: randomUUID() } };
    await store.append(s, 'widget', 'any', events(big), withKey);
    const [replay, beside, behind] = await Promise.allSettled([
      // The same key on the same stream derives the same event ids: a unique violation.
      store.append(s, 'widget', 'any', events(big), withKey),
      store.append(streamOf(), 'widget', 'no_stream', events(big), { metadata }),
      store.append(s, 'widget', big, events(1, 500), { metadata }),
    ]);
    expect(replay?.status).toBe('rejected');
    expect(((replay as PromiseRejectedResult).reason as { code?: string }).code).toBe('23505');
    expect(beside?.status).toBe('fulfilled');
    expect(behind?.status).toBe('fulfilled');
    expect((await store.readStream(s)).map((e) => e.streamPosition)).toEqual(
      Array.from({ length: big + 1 }, (_, k) => k + 1),
    );
  });
});

describe('appendMany: several streams in one statement of a transaction', () => {
  it('writes each append with its own expected version; a stale one writes nothing and answers null', async () => {
    const [a, b, fresh] = Array.from({ length: 3 }, streamOf) as [string, string, string];
    await store.append(a, 'widget', 'no_stream', events(2), { metadata });
    await store.append(b, 'widget', 'no_stream', events(2), { metadata });
    const results = await store.transaction((tx) =>
      tx.appendMany([
        { streamId: a, streamType: 'widget', expected: 2, events: events(2, 3), opts: { metadata } },
        { streamId: b, streamType: 'widget', expected: 1, events: events(1, 3), opts: { metadata } },
        { streamId: fresh, streamType: 'widget', expected: 0, events: events(1), opts: { metadata } },
      ]),
    );
    expect(results.map((r) => r?.events.map((e) => e.streamPosition) ?? null)).toEqual([[3, 4], null, [1]]);
    expect(results[0]?.nextExpectedVersion).toBe(4);
    expect(results[0]?.events[0]?.transactionId).toBe(results[2]?.events[0]?.transactionId);
    expect(await store.readStream(a)).toHaveLength(4);
    expect(await store.readStream(b)).toHaveLength(2);
    expect(await store.readStream(fresh)).toHaveLength(1);
  });
});

describe('transaction options', () => {
  it('keyedPlans: the prepared statements of the transaction run their generic plan, without sequential scans', async () => {
    // A statement text of its own (prepared on first use), and its plan counts on the transaction's connection.
    const text = `SELECT count(*) AS n FROM streams WHERE stream_id = ANY($1::text[]) -- ${randomUUID()}`;
    const run = (opts: { keyedPlans?: boolean }) =>
      store.transaction(async (tx) => {
        const setting = async (name: string) =>
          Object.values((await tx.sql.query(`SHOW ${name}`))[0] ?? {})[0];
        for (let i = 0; i < 3; i++) await tx.sql.query(text, [[streamOf()]]);
        const [plans] = await tx.sql.query<{ generic_plans: string; custom_plans: string }>(
          'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1',
          [text],
        );
        return {
          mode: await setting('plan_cache_mode'),
          seqscan: await setting('enable_seqscan'),
          generic: Number(plans?.generic_plans),
          custom: Number(plans?.custom_plans),
        };
      }, opts);
    // Each run may get another pooled connection: compare what each run added on its own connection.
    const keyed = await run({ keyedPlans: true });
    expect(keyed).toMatchObject({ mode: 'force_generic_plan', seqscan: 'off', custom: 0 });
    expect(keyed.generic).toBeGreaterThanOrEqual(3);
    // Without it, Postgres's defaults: the first five executions on a connection are planned anew.
    const plain = await run({});
    expect(plain).toMatchObject({ mode: 'auto', seqscan: 'on' });
    expect(plain.custom).toBeGreaterThanOrEqual(3);
  });
});

describe('readStream', () => {
  const s = streamOf();
  beforeAll(async () => {
    await store.append(s, 'widget', 'no_stream', events(5), { metadata });
    await store.append(streamOf(), 'widget', 'no_stream', events(2), { metadata }); // another stream, not read
  });
  const positions = (es: EventEnvelope[]) => es.map((e) => e.streamPosition);

  it('reads forward by default, all events', async () => {
    expect(positions(await store.readStream(s))).toEqual([1, 2, 3, 4, 5]);
    expect((await store.readStream(s)).map((e) => e.data)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
  });
  it('honours from, to and limit', async () => {
    expect(positions(await store.readStream(s, { from: 2 }))).toEqual([2, 3, 4, 5]);
    expect(positions(await store.readStream(s, { to: 3 }))).toEqual([1, 2, 3]);
    expect(positions(await store.readStream(s, { from: 2, to: 4 }))).toEqual([2, 3, 4]);
    expect(positions(await store.readStream(s, { from: 2, limit: 2 }))).toEqual([2, 3]);
    expect(positions(await store.readStream(s, { from: 9 }))).toEqual([]);
  });
  it('reads backward from the end, with to and limit', async () => {
    expect(positions(await store.readStream(s, { direction: 'backward' }))).toEqual([5, 4, 3, 2, 1]);
    expect(positions(await store.readStream(s, { direction: 'backward', limit: 1 }))).toEqual([5]);
    expect(positions(await store.readStream(s, { direction: 'backward', to: 3, limit: 2 }))).toEqual([3, 2]);
  });
  it('an unknown stream reads as empty', async () => {
    expect(await store.readStream(streamOf())).toEqual([]);
  });
  it('reads inside a transaction what that transaction appended', async () => {
    const s2 = streamOf();
    const seen = await store.transaction(async (tx) => {
      await tx.append(s2, 'widget', 'no_stream', events(2), { metadata });
      return tx.readStream(s2);
    });
    expect(positions(seen)).toEqual([1, 2]);
  });
});

/** Reads everything after `from` in batches of `batch`, checkpointing after each batch. */
async function readAllBatched(from: CommitPosition, batch: number): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = [];
  let after = from;
  for (;;) {
    const page = await store.readAll(after, batch);
    expect(page.length).toBeLessThanOrEqual(batch);
    if (page.length === 0) return out;
    out.push(...page);
    const last = page[page.length - 1]!;
    after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
  }
}

/** Where the tail is once it has caught up with every committed event (see readAllSettled). */
async function headCheckpoint(): Promise<CommitPosition> {
  const last = (await readAllSettled(store)).at(-1);
  return last ? commitPositionOf(last) : START;
}

describe('readAll (commit-safe tail, ARCHITECTURE rule 3)', () => {
  it('returns every committed event once, in (transaction_id, global_position) order, across batches', async () => {
    const from = await headCheckpoint();
    const written: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await store.append(streamOf(), 'widget', 'no_stream', events((i % 3) + 1), { metadata });
      written.push(...r.events.map((e) => e.eventId));
    }
    // The horizon is server-wide (another file's open transaction holds it back): wait for the tail.
    const read = await eventually(async () => {
      const r = await readAllBatched(from, 4);
      return r.length >= written.length ? r : undefined;
    });
    expect(read.map((e) => e.eventId)).toEqual(written);
    const rows = await t.db.query<{ event_id: string }>(
      `SELECT event_id FROM events WHERE (transaction_id, global_position) > ($1::xid8, $2)
       ORDER BY transaction_id, global_position`,
      [from.transactionId, from.globalPosition],
    );
    expect(rows.map((r) => r.event_id)).toEqual(written);
    // One transaction's events share its transaction id.
    const byTx = new Map<string, number>();
    for (const e of read) byTx.set(e.transactionId, (byTx.get(e.transactionId) ?? 0) + 1);
    expect([...byTx.values()].reduce((a, b) => a + b, 0)).toBe(written.length);
    expect(byTx.size).toBe(7);
  });

  it('slow transaction: a lower position committed after a higher one is neither skipped nor read early', async () => {
    const from = await headCheckpoint();
    const appendedA = gate();
    const commitA = gate();
    const sA = streamOf();
    const sB = streamOf();
    // Transaction A appends first (lower global position) and stays open.
    const txA = store.transaction(async (tx) => {
      const r = await tx.append(sA, 'widget', 'no_stream', events(1), { metadata });
      appendedA.open();
      await commitA.opened;
      return r;
    });
    await appendedA.opened;
    // Transaction B appends later (higher position) and commits first.
    const b = await store.append(sB, 'widget', 'no_stream', events(1), { metadata });
    const [pending] = await t.db.query<{ max: string }>('SELECT max(global_position) AS max FROM events');
    expect(Number(pending?.max)).toBe(b.lastGlobalPosition); // B is committed and visible to plain SELECTs

    // While A is open, the tail returns neither (returning B would make a checkpoint jump past A).
    const whileOpen = await store.readAll(from, 100);
    expect(whileOpen.map((e) => e.streamId)).not.toContain(sB);
    expect(whileOpen).toEqual([]);

    commitA.open();
    const a = await txA;
    expect(a.lastGlobalPosition).toBeLessThan(b.lastGlobalPosition);
    const after = await eventually(async () => {
      const r = await store.readAll(from, 100);
      return r.length >= 2 ? r : undefined;
    });
    expect(after.map((e) => e.streamId)).toEqual([sA, sB]);
  });

  it('a tail that checkpoints after each batch never skips an event while slow and fast writers interleave', async () => {
    const from = await headCheckpoint();
    const seen: EventEnvelope[] = [];
    let after = from;
    let stop = false;
    const tail = (async () => {
      while (!stop) {
        const page = await store.readAll(after, 3);
        seen.push(...page);
        const last = page[page.length - 1];
        if (last) after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
        await new Promise((r) => setImmediate(r));
      }
    })();

    const written = new Set<string>();
    // Slow writers: append, then hold their transaction open while fast writers commit past them.
    const slow = Array.from({ length: 4 }, () => ({ appended: gate(), commit: gate() }));
    const slowTxs = slow.map((g) =>
      store.transaction(async (tx) => {
        const r = await tx.append(streamOf(), 'widget', 'no_stream', events(2), { metadata });
        g.appended.open();
        await g.commit.opened;
        return r;
      }),
    );
    for (const g of slow) await g.appended.opened;
    const fast: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      fast.push(
        store.append(streamOf(), 'widget', 'no_stream', events(1 + (i % 2)), { metadata }).then((r) => {
          for (const e of r.events) written.add(e.eventId);
        }),
      );
      if (i % 8 === 7) slow[(i - 7) / 8]?.commit.open(); // commit the slow ones one by one, out of order
    }
    await Promise.all(fast);
    for (const g of slow) g.commit.open();
    for (const r of await Promise.all(slowTxs)) for (const e of r.events) written.add(e.eventId);

    await eventually(() => (seen.length >= written.size ? true : undefined), 10_000, 'the tail to catch up');
    stop = true;
    await tail;
    const ids = seen.map((e) => e.eventId);
    expect(new Set(ids).size).toBe(ids.length); // no duplicates
    expect(new Set(ids)).toEqual(written); // nothing skipped
    // Commit order is non-decreasing in (transaction_id, global_position).
    for (let i = 1; i < seen.length; i++) {
      const p = seen[i - 1]!;
      const c = seen[i]!;
      const cmp = BigInt(p.transactionId) - BigInt(c.transactionId);
      expect(cmp < 0n || (cmp === 0n && p.globalPosition < c.globalPosition)).toBe(true);
    }
  });

  it('orders by the transaction id as a number, not as text (9 before 10)', async () => {
    // Forged transaction ids below every real one (initdb alone uses several hundred, so a real
    // id is never this low, even on a cluster made minutes ago): as text '10' < '9' would come
    // first and a checkpoint taken after it would skip 9's event for good.
    const s = streamOf();
    for (const [position, xid] of [
      [1, '10'],
      [2, '9'],
    ] as const) {
      await t.db.query(
        `INSERT INTO events (transaction_id, stream_id, stream_type, stream_position, event_id, event_type,
                             schema_version, data, metadata, tenant_id)
         VALUES ($1::xid8, $2, 'widget', $3, $4, 'WidgetAdded.v1', 1, '{}', $5, $6)`,
        [xid, s, position, randomUUID(), JSON.stringify(metadata), tenantId],
      );
    }
    const [first, second] = await store.readAll(START, 2);
    expect([first?.transactionId, second?.transactionId]).toEqual(['9', '10']);
  });

  it('headPosition is the highest global position', async () => {
    const r = await store.append(streamOf(), 'widget', 'no_stream', events(1), { metadata });
    expect(await store.headPosition()).toBe(r.lastGlobalPosition);
  });
});

describe('inline read-model callback', () => {
  beforeAll(async () => {
    await t.db.query('CREATE TABLE widget_counts (stream_id text PRIMARY KEY, n int NOT NULL)');
  });

  it('runs in the append transaction with the stored events', async () => {
    const s = streamOf();
    let inlineTx: string | undefined;
    const r = await store.append(s, 'widget', 'no_stream', events(3), {
      metadata,
      inline: async (sql, stored) => {
        const [row] = await sql.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
        inlineTx = row?.x;
        expect(stored.map((e) => e.streamPosition)).toEqual([1, 2, 3]);
        await sql.query('INSERT INTO widget_counts VALUES ($1, $2)', [s, stored.length]);
      },
    });
    expect(inlineTx).toBe(r.events[0]!.transactionId);
    const [row] = await t.db.query<{ n: number }>('SELECT n FROM widget_counts WHERE stream_id = $1', [s]);
    expect(row?.n).toBe(3);
  });

  it('a throwing callback rolls the append back', async () => {
    const s = streamOf();
    await expect(
      store.append(s, 'widget', 'no_stream', events(2), {
        metadata,
        inline: async (sql) => {
          await sql.query('INSERT INTO widget_counts VALUES ($1, 2)', [s]);
          throw new Error('read model refused');
        },
      }),
    ).rejects.toThrow('read model refused');
    expect(await store.readStream(s)).toEqual([]);
    expect(await t.db.query('SELECT 1 FROM streams WHERE stream_id = $1', [s])).toEqual([]);
    expect(await t.db.query('SELECT 1 FROM widget_counts WHERE stream_id = $1', [s])).toEqual([]);
    // The stream is still new: a no_stream append succeeds.
    expect((await store.append(s, 'widget', 'no_stream', events(1), { metadata })).nextExpectedVersion).toBe(
      1,
    );
  });
});

describe('idempotency (ARCHITECTURE rule 4)', () => {
  interface Reply {
    version: number;
    eventIds: string[];
  }
  /** A command handler as services write it: claim the key, append, save the reply, in one transaction. */
  const handle = (stream: string, key: string, request: unknown, during?: () => Promise<void>) =>
    store.transaction(async (tx) => {
      const claimed = await tx.claimIdempotencyKey(tenantId, key, request);
      if (claimed) return { replayed: true, reply: claimed.replay as Reply };
      await during?.();
      const r = await tx.append(stream, 'widget', 'any', events(2), {
        metadata: { tenantId, idempotencyKey: key },
      });
      const reply: Reply = { version: r.nextExpectedVersion, eventIds: r.events.map((e) => e.eventId) };
      await tx.saveIdempotentReply(tenantId, key, reply);
      return { replayed: false, reply };
    });

  it('a retry returns the first reply and appends nothing', async () => {
    const s = streamOf();
    const key = randomUUID();
    const first = await handle(s, key, { title: 'a' });
    const retry = await handle(s, key, { title: 'a' });
    expect(first.replayed).toBe(false);
    expect(retry).toEqual({ replayed: true, reply: first.reply });
    expect(await store.readStream(s)).toHaveLength(2);
    // A different key is a new command.
    await handle(s, randomUUID(), { title: 'a' });
    expect(await store.readStream(s)).toHaveLength(4);
  });

  it('the same key with a different request is IdempotencyKeyReusedError and appends nothing', async () => {
    const s = streamOf();
    const key = randomUUID();
    await handle(s, key, { title: 'a' });
    const error = await handle(s, key, { title: 'b' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError);
    expect((error as IdempotencyKeyReusedError).code).toBe('REQUEST.INVALID');
    expect(await store.readStream(s)).toHaveLength(2);
  });

  it('keys are per tenant', async () => {
    const key = randomUUID();
    const claim = (tenant: string) =>
      store.transaction((tx) => tx.claimIdempotencyKey(tenant, key, { x: 1 }));
    expect(await claim('tenant-x')).toBeNull();
    expect(await claim('tenant-y')).toBeNull();
    expect(await claim('tenant-x')).toEqual({ replay: null });
  });

  it('two concurrent requests with one key: one appends, the other waits and gets the replay', async () => {
    const s = streamOf();
    const key = randomUUID();
    const claimed = gate();
    const release = gate();
    const first = handle(s, key, { title: 'a' }, async () => {
      claimed.open();
      await release.opened;
    });
    await claimed.opened;
    const second = handle(s, key, { title: 'a' });
    // The second request blocks on the first one's uncommitted key row.
    await eventually(async () => {
      const rows = await t.db.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE 'INSERT INTO idempotency_keys%'`,
      );
      return rows.length === 1 ? true : undefined;
    });
    release.open();
    const [a, b] = await Promise.all([first, second]);
    expect(a.replayed).toBe(false);
    expect(b).toEqual({ replayed: true, reply: a.reply });
    expect((await store.readStream(s)).map((e) => e.eventId)).toEqual(a.reply.eventIds);
  });

  it('a first request that rolled back frees its key for the waiting retry', async () => {
    const s = streamOf();
    const key = randomUUID();
    const claimed = gate();
    const fail = gate();
    const first = handle(s, key, { title: 'a' }, async () => {
      claimed.open();
      await fail.opened;
      throw new Error('crash before append');
    });
    await claimed.opened;
    const second = handle(s, key, { title: 'a' });
    fail.open();
    await expect(first).rejects.toThrow('crash before append');
    const b = await second;
    expect(b.replayed).toBe(false);
    expect(await store.readStream(s)).toHaveLength(2);
  });

  it('claims several keys at once: new ones are claimed, used ones replay or are reused; settling saves and frees', async () => {
    const [saved, freed, other] = [randomUUID(), randomUUID(), randomUUID()];
    await store.transaction((tx) => tx.claimIdempotencyKey(tenantId, other, { title: 'o' }));
    const first = await store.transaction(async (tx) => {
      const claims = await tx.claimIdempotencyKeys([
        { tenantId, key: saved, request: { title: 's' } },
        { tenantId, key: freed, request: { title: 'f' } },
        { tenantId, key: other, request: { title: 'not o' } },
      ]);
      await tx.settleIdempotencyKeys(
        [{ tenantId, key: saved, reply: { version: 7 } }],
        [{ tenantId, key: freed }],
      );
      return claims;
    });
    expect(first.slice(0, 2)).toEqual([null, null]);
    expect(first[2]).toBeInstanceOf(IdempotencyKeyReusedError);
    const again = await store.transaction((tx) =>
      tx.claimIdempotencyKeys([
        { tenantId, key: saved, request: { title: 's' } },
        { tenantId, key: freed, request: { title: 'f' } },
        { tenantId, key: other, request: { title: 'o' } },
      ]),
    );
    // The saved reply replays; the freed key is claimed anew, as after a rollback.
    expect(again).toEqual([{ replay: { version: 7 } }, null, { replay: null }]);
  });

  it('event ids derived from an idempotency key are deterministic; without a key they are random', async () => {
    const s = streamOf();
    const meta = { tenantId, idempotencyKey: 'key-1' };
    const attempt = () =>
      store
        .transaction(async (tx) => {
          const r = await tx.append(s, 'widget', 'no_stream', events(3), { metadata: meta });
          throw Object.assign(new Error('rollback'), { ids: r.events.map((e) => e.eventId) });
        })
        .catch((e: { ids: string[] }) => e.ids);
    const ids1 = await attempt();
    const ids2 = await attempt();
    expect(ids1).toHaveLength(3);
    expect(new Set(ids1).size).toBe(3);
    expect(ids2).toEqual(ids1);
    const committed = await store.append(s, 'widget', 'no_stream', events(3), { metadata: meta });
    expect(committed.events.map((e) => e.eventId)).toEqual(ids1);
    // Another stream or another tenant with the same key gets other ids.
    const other = await store.append(streamOf(), 'widget', 'no_stream', events(1), { metadata: meta });
    expect(ids1).not.toContain(other.events[0]!.eventId);
    const otherTenant = await store.append(streamOf(), 'widget', 'no_stream', events(1), {
      metadata: { tenantId: 'tenant-b', idempotencyKey: 'key-1' },
    });
    expect(ids1).not.toContain(otherTenant.events[0]!.eventId);
    // Without a key, two attempts differ.
    const r1 = await store.append(streamOf(), 'widget', 'no_stream', events(1), { metadata });
    const r2 = await store.append(streamOf(), 'widget', 'no_stream', events(1), { metadata });
    expect(r1.events[0]!.eventId).not.toBe(r2.events[0]!.eventId);
  });
});

describe('Checkpoints and transaction helpers', () => {
  it('lock() serializes transactions taking the same key', async () => {
    const held = gate();
    const release = gate();
    const order: string[] = [];
    const a = store.transaction(async (tx) => {
      await tx.lock('k');
      held.open();
      await release.opened;
      order.push('a');
    });
    await held.opened;
    const b = store.transaction(async (tx) => {
      await tx.lock('k');
      order.push('b');
    });
    await eventually(async () => {
      const rows = await t.db.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE '%pg_advisory_xact_lock%'`,
      );
      return rows.length === 1 ? true : undefined;
    });
    release.open();
    await Promise.all([a, b]);
    expect(order).toEqual(['a', 'b']);
  });
});
