import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { defineEvent, type EventEnvelope, EventRegistry, type ParsedEvent } from '@threadline/contracts';
import { createTestDatabase, eventually, readAllSettled, type TestDatabase } from '@threadline/testing';
import type { Db, Sql } from './db';
import { EventStore, type NewEvent } from './event-store';
import { type Projection, ProjectionRunner } from './projection-runner';

// The projection runner against the real Postgres (ARCHITECTURE rules 5 and 6), with a small test
// projection: events per stream type, and per stream the list of positions applied (order-sensitive).

const WidgetAddedV1 = defineEvent('widget', 'WidgetAdded', 1, z.object({ n: z.number().int() }));
const GadgetAddedV1 = defineEvent('gadget', 'GadgetAdded', 1, z.object({ n: z.number().int() }));
const registry = new EventRegistry([WidgetAddedV1, GadgetAddedV1]);
const metadata = { tenantId: 'tenant-p' };
const widgets = (count: number): NewEvent[] =>
  Array.from({ length: count }, (_, i) => ({ type: WidgetAddedV1.type, data: { n: i + 1 } }));

/** Counts per stream type and, per stream, the positions applied in order and the sum of `n`. */
class CountingProjection implements Projection {
  readonly streamTypes = ['widget'];
  /** When set, `reset` waits for it: holds a rebuild open (with its exclusive lock) for concurrency tests. */
  resetGate: Promise<void> | undefined;
  resetStarted: (() => void) | undefined;

  constructor(readonly name: string) {}

  get typeTable() {
    return `${this.name}_types`;
  }
  get streamTable() {
    return `${this.name}_streams`;
  }

  async create(sql: Sql): Promise<void> {
    await sql.query(`CREATE TABLE ${this.typeTable} (stream_type text PRIMARY KEY, events int NOT NULL)`);
    await sql.query(
      `CREATE TABLE ${this.streamTable} (stream_id text PRIMARY KEY, positions int[] NOT NULL, total int NOT NULL)`,
    );
  }

  async apply(sql: Sql, event: ParsedEvent): Promise<void> {
    const e = event.envelope;
    await sql.query(
      `INSERT INTO ${this.typeTable} VALUES ($1, 1) ON CONFLICT (stream_type) DO UPDATE SET events = ${this.typeTable}.events + 1`,
      [e.streamType],
    );
    const { n } = WidgetAddedV1.schema.parse(event.data);
    await sql.query(
      `INSERT INTO ${this.streamTable} VALUES ($1, ARRAY[$2::int], $3) ON CONFLICT (stream_id) DO UPDATE
         SET positions = ${this.streamTable}.positions || $2::int, total = ${this.streamTable}.total + $3`,
      [e.streamId, e.streamPosition, n],
    );
  }

  async reset(sql: Sql): Promise<void> {
    this.resetStarted?.();
    if (this.resetGate) await this.resetGate;
    await sql.query(`TRUNCATE ${this.typeTable}, ${this.streamTable}`);
  }

  async rows(sql: Sql): Promise<unknown> {
    return {
      types: await sql.query(`SELECT stream_type, events FROM ${this.typeTable} ORDER BY stream_type`),
      streams: await sql.query(
        `SELECT stream_id, positions, total FROM ${this.streamTable} ORDER BY stream_id`,
      ),
    };
  }
}

let t: TestDatabase;
let store: EventStore;

beforeAll(async () => {
  t = await createTestDatabase([], 20);
  store = new EventStore(t.db);
});
afterAll(async () => {
  await t.drop();
});

async function newRunner(
  on: { db: Db; store: EventStore } = { db: t.db, store },
): Promise<{ projection: CountingProjection; runner: ProjectionRunner }> {
  const projection = new CountingProjection(`p_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
  await projection.create(on.db);
  return { projection, runner: new ProjectionRunner(on.db, on.store, registry, projection) };
}

/** Every event, in commit order, once the tail has caught up (see readAllSettled). */
const readAllEvents = (): Promise<EventEnvelope[]> => readAllSettled(store);

/** The rows the projection must hold after every event in the store: computed here, independently. */
async function expectedRows(): Promise<unknown> {
  const events = (await readAllEvents()).filter((e) => e.streamType === 'widget');
  const streams = new Map<string, { positions: number[]; total: number }>();
  for (const e of events) {
    const s = streams.get(e.streamId) ?? { positions: [], total: 0 };
    s.positions.push(e.streamPosition);
    s.total += (e.data as { n: number }).n;
    streams.set(e.streamId, s);
  }
  return {
    types: events.length ? [{ stream_type: 'widget', events: events.length }] : [],
    streams: [...streams.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([stream_id, s]) => ({ stream_id, positions: s.positions, total: s.total })),
  };
}

describe('ProjectionRunner.handle', () => {
  it('applies events in order, skips duplicates, ignores other stream types', async () => {
    const { projection, runner } = await newRunner();
    const s = `widget:${randomUUID()}`;
    const { events } = await store.append(s, 'widget', 'no_stream', widgets(3), { metadata });
    const gadget = await store.append(
      `gadget:${randomUUID()}`,
      'gadget',
      'no_stream',
      [{ type: GadgetAddedV1.type, data: { n: 9 } }],
      {
        metadata,
      },
    );

    expect(await runner.handle(events[0]!)).toBe('applied');
    expect(await runner.handle(events[1]!)).toBe('applied');
    expect(await runner.handle(events[1]!)).toBe('skipped');
    expect(await runner.handle(events[0]!)).toBe('skipped');
    expect(await runner.handle(events[2]!)).toBe('applied');
    expect(await runner.handle(events[2]!)).toBe('skipped');
    expect(await runner.handle(gadget.events[0]!)).toBe('ignored');

    expect(await projection.rows(t.db)).toEqual({
      types: [{ stream_type: 'widget', events: 3 }],
      streams: [{ stream_id: s, positions: [1, 2, 3], total: 6 }],
    });
    const [pos] = await t.db.query<{ position: string }>(
      'SELECT position FROM projection_streams WHERE projection = $1 AND stream_id = $2',
      [projection.name, s],
    );
    expect(Number(pos?.position)).toBe(3);
  });

  it('an event past a gap backfills the missing ones from the store, then later ones apply', async () => {
    const { projection, runner } = await newRunner();
    const s = `widget:${randomUUID()}`;
    const { events } = await store.append(s, 'widget', 'no_stream', widgets(5), { metadata });

    expect(await runner.handle(events[0]!)).toBe('applied');
    expect(await runner.handle(events[3]!)).toBe('backfilled'); // 2 and 3 never arrived (yet)
    expect(await runner.handle(events[1]!)).toBe('skipped');
    expect(await runner.handle(events[2]!)).toBe('skipped');
    expect(await runner.handle(events[4]!)).toBe('applied');
    expect(await projection.rows(t.db)).toEqual({
      types: [{ stream_type: 'widget', events: 5 }],
      streams: [{ stream_id: s, positions: [1, 2, 3, 4, 5], total: 15 }],
    });

    // A first delivery that is not position 1 backfills from the start of the stream.
    const s2 = `widget:${randomUUID()}`;
    const second = await store.append(s2, 'widget', 'no_stream', widgets(3), { metadata });
    expect(await runner.handle(second.events[2]!)).toBe('backfilled');
    expect(await projection.rows(t.db)).toMatchObject({ types: [{ stream_type: 'widget', events: 8 }] });
  });

  it('a failing apply rolls back the read model and the positions together', async () => {
    const { projection, runner } = await newRunner();
    const s = `widget:${randomUUID()}`;
    const { events } = await store.append(s, 'widget', 'no_stream', widgets(2), { metadata });
    await runner.handle(events[0]!);
    const bad = { ...events[1]!, eventType: 'WidgetExploded.v1' }; // unknown to the registry: parse throws
    await expect(runner.handle(bad)).rejects.toThrow(/Unknown event type/);
    expect(await projection.rows(t.db)).toEqual({
      types: [{ stream_type: 'widget', events: 1 }],
      streams: [{ stream_id: s, positions: [1], total: 1 }],
    });
    expect(await runner.handle(events[1]!)).toBe('applied');
  });

  it('concurrent deliveries of one stream, in any order and repeated, apply each event exactly once in order', async () => {
    const { projection, runner } = await newRunner();
    const s = `widget:${randomUUID()}`;
    const { events } = await store.append(s, 'widget', 'no_stream', widgets(8), { metadata });
    const deliveries = [...events, ...events.slice().reverse(), ...events];
    const outcomes = await Promise.all(deliveries.map((e) => runner.handle(e)));
    expect(outcomes.filter((o) => o !== 'skipped').length).toBeGreaterThan(0);
    expect(await projection.rows(t.db)).toEqual({
      types: [{ stream_type: 'widget', events: 8 }],
      streams: [{ stream_id: s, positions: [1, 2, 3, 4, 5, 6, 7, 8], total: 36 }],
    });
  });
});

describe('ProjectionRunner.handle, concurrent calls (group commit)', () => {
  // A database of its own: the erased event below would change what other tests expect of `t`.
  let g: TestDatabase;
  let gStore: EventStore;
  beforeAll(async () => {
    g = await createTestDatabase([], 5);
    gStore = new EventStore(g.db);
  });
  afterAll(async () => {
    await g.drop();
  });

  /** The runner's Db, counting the transactions it starts. */
  function countingDb(): { db: Db; transactions: () => number } {
    let n = 0;
    const db = Object.create(g.db) as Db;
    db.transaction = (fn) => {
      n += 1;
      return g.db.transaction(fn);
    };
    return { db, transactions: () => n };
  }

  /** Position per stream and checkpoint of a runner, for comparisons. */
  async function bookkeeping(runner: ProjectionRunner): Promise<unknown> {
    return {
      positions: await g.db.query(
        'SELECT stream_id, position FROM projection_streams WHERE projection = $1 ORDER BY stream_id',
        [runner.projection.name],
      ),
      checkpoint: await runner.position(),
    };
  }

  it('commits concurrent deliveries with duplicates, gaps, an erased event and other types together, with the outcomes and rows of one-by-one handling', async () => {
    const [a, b, c, erasedStream] = [1, 2, 3, 4].map(() => `widget:${randomUUID()}`);
    const ea = (await gStore.append(a!, 'widget', 'no_stream', widgets(4), { metadata })).events;
    const eb = (await gStore.append(b!, 'widget', 'no_stream', widgets(3), { metadata })).events;
    const ec = (await gStore.append(c!, 'widget', 'no_stream', widgets(2), { metadata })).events;
    const ee = (await gStore.append(erasedStream!, 'widget', 'no_stream', widgets(2), { metadata })).events;
    const gadget = (
      await gStore.append(
        `gadget:${randomUUID()}`,
        'gadget',
        'no_stream',
        [{ type: GadgetAddedV1.type, data: { n: 1 } }],
        {
          metadata,
        },
      )
    ).events;
    // Erased after it was published: the deliveries below carry its data, the store only the tombstone.
    await g.db.query(
      `UPDATE events SET data = '{"erased": true}', metadata = jsonb_build_object('tenantId', tenant_id, 'erased', true)
       WHERE stream_id = $1 AND stream_position = 1`,
      [erasedStream],
    );
    const deliveries = [
      ea[0]!,
      ea[0]!, // duplicate
      eb[2]!, // gap: backfills 1 and 2
      ea[1]!,
      ee[0]!, // erased: not applied, its position counts
      gadget[0]!, // other stream type
      eb[0]!, // already backfilled
      ea[3]!, // gap: backfills 3
      ec[0]!,
      ee[1]!,
      ec[1]!,
      ea[2]!, // already backfilled
      ec[1]!, // duplicate
    ];

    const one = await newRunner({ db: g.db, store: gStore });
    const oneByOne: string[] = [];
    for (const e of deliveries) oneByOne.push(await one.runner.handle(e));

    const together = await newRunner({ db: g.db, store: gStore });
    const counting = countingDb();
    const runner = new ProjectionRunner(counting.db, gStore, registry, together.projection);
    const outcomes = await Promise.all(deliveries.map((e) => runner.handle(e)));

    expect(outcomes).toEqual(oneByOne);
    expect(oneByOne).toEqual([
      'applied',
      'skipped',
      'backfilled',
      'applied',
      'applied',
      'ignored',
      'skipped',
      'backfilled',
      'applied',
      'applied',
      'applied',
      'skipped',
      'skipped',
    ]);
    expect(counting.transactions()).toBeLessThan(deliveries.length - 1);
    expect(await together.projection.rows(g.db)).toEqual(await one.projection.rows(g.db));
    expect(await together.projection.rows(g.db)).toEqual({
      types: [{ stream_type: 'widget', events: 10 }],
      streams: [
        { stream_id: a, positions: [1, 2, 3, 4], total: 10 },
        { stream_id: b, positions: [1, 2, 3], total: 6 },
        { stream_id: c, positions: [1, 2], total: 3 },
        { stream_id: erasedStream, positions: [2], total: 2 },
      ].sort((x, y) => (x.stream_id! < y.stream_id! ? -1 : 1)),
    });
    expect(await bookkeeping(runner)).toEqual(await bookkeeping(one.runner));
    expect(await runner.position()).toBe(
      Math.max(...[...ea, ...eb, ...ec, ...ee].map((e) => e.globalPosition)),
    );
  });

  it('rejects only the event that fails: the others of its transaction are committed', async () => {
    const { projection } = await newRunner({ db: g.db, store: gStore });
    const counting = countingDb();
    const runner = new ProjectionRunner(counting.db, gStore, registry, projection);
    const [a, b] = [1, 2].map(() => `widget:${randomUUID()}`);
    const ea = (await gStore.append(a!, 'widget', 'no_stream', widgets(3), { metadata })).events;
    const eb = (await gStore.append(b!, 'widget', 'no_stream', widgets(1), { metadata })).events;
    const bad = { ...eb[0]!, eventType: 'WidgetExploded.v1' }; // unknown to the registry: parse throws

    const settled = await Promise.allSettled([ea[0]!, ea[1]!, bad, ea[2]!].map((e) => runner.handle(e)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/Unknown event type/);
    expect(await projection.rows(g.db)).toEqual({
      types: [{ stream_type: 'widget', events: 3 }],
      streams: [{ stream_id: a, positions: [1, 2, 3], total: 6 }],
    });
    // Redelivered, the event of b is handled from its (valid) stored copy.
    expect(await runner.handle(eb[0]!)).toBe('applied');
  });
});

describe('replay and rebuild (ARCHITECTURE rule 6)', () => {
  beforeAll(async () => {
    for (let i = 0; i < 6; i++) {
      const s = `widget:${randomUUID()}`;
      await store.append(s, 'widget', 'no_stream', widgets(2), { metadata });
      await store.append(s, 'widget', 'stream_exists', widgets(i + 1), { metadata });
      await store.append(
        `gadget:${randomUUID()}`,
        'gadget',
        'no_stream',
        [{ type: GadgetAddedV1.type, data: { n: i } }],
        {
          metadata,
        },
      );
    }
  });

  it('replaying all events twice gives the same rows as once', async () => {
    const { projection, runner } = await newRunner();
    const all = await readAllEvents();
    for (const e of all) await runner.handle(e);
    const once = await projection.rows(t.db);
    expect(once).toEqual(await expectedRows());
    for (const e of all) await runner.handle(e);
    expect(await projection.rows(t.db)).toEqual(once);
  });

  it('rebuild() equals the incremental result, and repairs a damaged read model', async () => {
    const { projection, runner } = await newRunner();
    for (const e of await readAllEvents()) await runner.handle(e);
    const incremental = await projection.rows(t.db);

    // A rebuild sees what the server-wide horizon lets it see: retried until it saw everything (rebuild is idempotent).
    const total = (await readAllEvents()).length;
    await eventually(async () => {
      const progress: number[] = [];
      const result = await runner.rebuild({ batchSize: 4, onProgress: (n) => progress.push(n) });
      expect(result.events).toBe(total);
      expect(progress.at(-1)).toBe(result.events);
      expect(await projection.rows(t.db)).toEqual(incremental);
      return true;
    });

    await t.db.query(`UPDATE ${projection.typeTable} SET events = 0`);
    await t.db.query(
      `DELETE FROM ${projection.streamTable} WHERE stream_id IN (SELECT stream_id FROM ${projection.streamTable} LIMIT 2)`,
    );
    await eventually(async () => {
      await runner.rebuild();
      expect(await projection.rows(t.db)).toEqual(incremental);
      return true;
    });

    // After a rebuild, live deliveries of old events are skipped, new ones applied.
    for (const e of await readAllEvents()) expect(['skipped', 'ignored']).toContain(await runner.handle(e));
    const s = `widget:${randomUUID()}`;
    const fresh = await store.append(s, 'widget', 'no_stream', widgets(1), { metadata });
    expect(await runner.handle(fresh.events[0]!)).toBe('applied');
    expect(await projection.rows(t.db)).toEqual(await expectedRows());
  });

  it('live handling concurrent with a rebuild loses nothing and applies nothing twice', async () => {
    const { projection, runner } = await newRunner();
    const before = await readAllEvents();
    for (const e of before.slice(0, Math.floor(before.length / 2))) await runner.handle(e);

    // Hold the rebuild inside its transaction (exclusive lock taken, reset waiting).
    let release!: () => void;
    projection.resetGate = new Promise<void>((resolve) => (release = resolve));
    const started = new Promise<void>((resolve) => (projection.resetStarted = resolve));
    const rebuild = runner.rebuild({ batchSize: 5 });
    await started;

    // Meanwhile two live consumers (each handles its messages one at a time, like a JetStream consumer,
    // each with a runner of its own, like two instances of a service: one runner would commit their
    // calls together): one gets old events again, the other new events appended during the rebuild.
    const sequentially = async (events: EventEnvelope[]) => {
      const instance = new ProjectionRunner(t.db, store, registry, projection);
      for (const e of events) await instance.handle(e);
    };
    const replayed = sequentially(before);
    const newStream = `widget:${randomUUID()}`;
    const appended = await store.append(newStream, 'widget', 'no_stream', widgets(3), { metadata });
    const more = await store.append(before[0]!.streamId, 'widget', 'any', widgets(2), { metadata });
    const fresh = sequentially([...more.events, ...appended.events]);
    // Both consumers are waiting for the rebuild's lock.
    await eventually(async () => {
      const rows = await t.db.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE '%pg_advisory_xact_lock_shared%'`,
      );
      return rows.length === 2 ? true : undefined;
    });
    const live = [replayed, fresh];
    projection.resetGate = undefined;
    release();
    await rebuild;
    await Promise.all(live);
    expect(await projection.rows(t.db)).toEqual(await expectedRows());
  });
});

describe('ProjectionRunner.position (as_of)', () => {
  it('is the highest global position applied; duplicates and other types do not move it', async () => {
    const { runner } = await newRunner();
    expect(await runner.position()).toBe(0);
    const a = await store.append(`widget:${randomUUID()}`, 'widget', 'no_stream', widgets(2), { metadata });
    await runner.handle(a.events[0]!);
    expect(await runner.position()).toBe(a.events[0]!.globalPosition);
    await runner.handle(a.events[1]!);
    await runner.handle(a.events[0]!);
    expect(await runner.position()).toBe(a.lastGlobalPosition);
    const g = await store.append(
      `gadget:${randomUUID()}`,
      'gadget',
      'no_stream',
      [{ type: GadgetAddedV1.type, data: { n: 1 } }],
      {
        metadata,
      },
    );
    await runner.handle(g.events[0]!);
    expect(await runner.position()).toBe(a.lastGlobalPosition);
  });

  it('after a rebuild is the highest global position replayed, even when commit order differs from position order', async () => {
    // X gets its transaction id first (claiming an idempotency key writes), Y appends and commits, then X
    // appends: X's event has the higher global position but comes first in (transaction_id, position) order.
    let goOn!: () => void;
    const proceed = new Promise<void>((resolve) => (goOn = resolve));
    let claimed!: () => void;
    const xHasId = new Promise<void>((resolve) => (claimed = resolve));
    const x = store.transaction(async (tx) => {
      await tx.claimIdempotencyKey('tenant-p', randomUUID(), {});
      claimed();
      await proceed;
      return tx.append(`widget:${randomUUID()}`, 'widget', 'no_stream', widgets(1), { metadata });
    });
    await xHasId;
    const y = await store.append(`widget:${randomUUID()}`, 'widget', 'no_stream', widgets(1), { metadata });
    goOn();
    const xr = await x;
    expect(xr.lastGlobalPosition).toBeGreaterThan(y.lastGlobalPosition);
    const all = await readAllEvents();
    expect(all.at(-1)!.eventId).toBe(y.events[0]!.eventId); // Y is last in commit order, with the lower position

    const { runner } = await newRunner();
    await eventually(async () => {
      await runner.rebuild();
      expect(await runner.position()).toBe(xr.lastGlobalPosition);
      return true;
    }, 5000);
    expect(await runner.position()).toBe(await store.headPosition());
  });
});

describe('erased events (user erasure, issue 4)', () => {
  let e: TestDatabase;
  let eStore: EventStore;
  beforeAll(async () => {
    e = await createTestDatabase([], 5);
    eStore = new EventStore(e.db);
  });
  afterAll(async () => {
    await e.drop();
  });

  it('a rebuild and a stale live delivery never bring erased data back; positions still count', async () => {
    const erasedStream = `widget:${randomUUID()}`;
    const keptStream = `widget:${randomUUID()}`;
    const erased = await eStore.append(erasedStream, 'widget', 'no_stream', widgets(3), { metadata });
    await eStore.append(keptStream, 'widget', 'no_stream', widgets(2), { metadata });
    const stale = erased.events; // as published on JetStream before the erasure, data included

    // What DELETE /users does to the store: tombstone data and metadata, keep ids, types and positions.
    await e.db.query(
      `UPDATE events SET data = '{"erased": true}', metadata = jsonb_build_object('tenantId', tenant_id, 'erased', true)
       WHERE stream_id = $1`,
      [erasedStream],
    );

    const projection = new CountingProjection(`p_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
    await projection.create(e.db);
    const runner = new ProjectionRunner(e.db, eStore, registry, projection);
    const total = (await readAllSettled(eStore)).length;
    await eventually(async () => {
      expect((await runner.rebuild()).events).toBe(total);
      return true;
    });
    const kept = {
      types: [{ stream_type: 'widget', events: 2 }],
      streams: [{ stream_id: keptStream, positions: [1, 2], total: 3 }],
    };
    expect(await projection.rows(e.db)).toEqual(kept);

    // A message still in flight from before the erasure: re-checked against the store, not applied,
    // and its position counts as applied (a redelivery is skipped).
    const fresh = new CountingProjection(`p_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
    await fresh.create(e.db);
    const live = new ProjectionRunner(e.db, eStore, registry, fresh);
    for (const event of stale) await live.handle(event);
    expect(await fresh.rows(e.db)).toEqual({ types: [], streams: [] });
    expect(await live.handle(stale[0]!)).toBe('skipped');
  });
});

describe('ProjectionRunner.whenApplied (in-process position waits)', () => {
  it('wakes a waiter as soon as live handling commits the position, long before its timeout', async () => {
    const { runner } = await newRunner();
    const a = await store.append(`widget:${randomUUID()}`, 'widget', 'no_stream', widgets(2), { metadata });
    const target = a.lastGlobalPosition;
    const started = Date.now();
    const waiting = runner.whenApplied(target, 10_000);
    await runner.handle(a.events[0]!);
    let settled = false;
    void waiting.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false); // the first event is below the target
    await runner.handle(a.events[1]!);
    expect(await waiting).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await runner.position()).toBe(target);
    // Already committed: answered at once.
    expect(await runner.whenApplied(target, 0)).toBe(true);
  });

  it('answers false after its timeout when nothing this runner commits reaches the position', async () => {
    const { projection, runner } = await newRunner();
    const a = await store.append(`widget:${randomUUID()}`, 'widget', 'no_stream', widgets(1), { metadata });
    // Another runner of the same projection (another process) applies it: the checkpoint moves, but
    // only reading it shows that.
    const other = new ProjectionRunner(t.db, store, registry, projection);
    const started = Date.now();
    const waiting = runner.whenApplied(a.lastGlobalPosition, 150);
    await other.handle(a.events[0]!);
    expect(await waiting).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(await runner.position()).toBe(a.lastGlobalPosition);
  });
});

/**
 * A versioned projection: per stream, the number of events, in `<prefix>_v<n>.counts`. `name` is also its
 * schema prefix; it follows `streamTypes`.
 */
function versionedProjection(
  name = `v_${randomUUID().replaceAll('-', '').slice(0, 12)}`,
  streamTypes: readonly string[] = ['widget'],
): Projection & { versioning: NonNullable<Projection['versioning']> } {
  return {
    name,
    streamTypes,
    versioning: {
      schemaPrefix: name,
      create: async (sql) => {
        await sql.query('CREATE TABLE counts (stream_id text PRIMARY KEY, n int NOT NULL)');
      },
    },
    apply: async (sql, event) => {
      await sql.query(
        'INSERT INTO counts VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1',
        [event.envelope.streamId],
      );
    },
    reset: async () => {},
  };
}

describe('ProjectionRunner.read (versioned projection)', () => {
  /** The runner's Db, counting the round trips of its statements (BEGIN and COMMIT included). */
  function roundTripCounter(): { db: Db; roundTrips: () => number } {
    let n = 0;
    const db = Object.create(t.db) as Db;
    db.query = (text, params) => {
      n += 1;
      return t.db.query(text, params);
    };
    db.transaction = (fn, opts) => {
      n += 2;
      return t.db.transaction(
        (tx) =>
          fn({
            query: (text, params) => {
              n += 1;
              return tx.query(text, params);
            },
            copyFrom: (table, columns, rows) => {
              n += 1;
              return tx.copyFrom(table, columns, rows);
            },
          }),
        opts,
      );
    };
    return { db, roundTrips: () => n };
  }

  it('reads the live version at its checkpoint in 4 round trips (one statement of its own)', async () => {
    const counter = roundTripCounter();
    const projection = versionedProjection();
    const runner = new ProjectionRunner(counter.db, store, registry, projection);
    const s = `widget:${randomUUID()}`;
    const a = await store.append(s, 'widget', 'no_stream', widgets(2), { metadata });
    for (const e of a.events) await runner.handle(e);
    await runner.read(() => Promise.resolve()); // the first read also makes sure a live version exists

    const before = counter.roundTrips();
    const seen = await runner.read(async (sql, asOf) => {
      const rows = await sql.query<{ n: number; path: string }>(
        `SELECT n, current_setting('search_path') AS path FROM counts WHERE stream_id = $1`,
        [s],
      );
      return { rows, asOf };
    });
    expect(counter.roundTrips() - before).toBe(4);
    const live = await runner.liveVersion();
    expect(seen).toEqual({
      rows: [{ n: 2, path: `${live!.schema}, public` }],
      asOf: a.lastGlobalPosition,
    });
  });

  it('is one read-only REPEATABLE READ snapshot: a commit during the read is not seen by it', async () => {
    const projection = versionedProjection();
    const runner = new ProjectionRunner(t.db, store, registry, projection);
    const s = `widget:${randomUUID()}`;
    const a = await store.append(s, 'widget', 'no_stream', widgets(2), { metadata });
    await runner.handle(a.events[0]!);
    const count = async (sql: Sql) =>
      (await sql.query<{ n: number }>('SELECT n FROM counts WHERE stream_id = $1', [s]))[0]?.n;

    const seen = await runner.read(async (sql, asOf) => {
      const first = await count(sql);
      await runner.handle(a.events[1]!); // commits on another connection meanwhile
      const second = await count(sql);
      const write = await sql.query('DELETE FROM counts').then(
        () => 'written',
        (error: { code?: string }) => error.code,
      );
      return { first, second, asOf, write };
    });
    expect(seen).toEqual({ first: 1, second: 1, asOf: a.events[0]!.globalPosition, write: '25006' });
    expect(await runner.read(async (sql, asOf) => ({ n: await count(sql), asOf }))).toEqual({
      n: 2,
      asOf: a.lastGlobalPosition,
    });
  });
});

describe('ProjectionRunner.handle and user erasures', () => {
  it('locks every event it applies, delivered or backfilled, against an erasure until it commits', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let applying!: () => void;
    const started = new Promise<void>((resolve) => (applying = resolve));
    const projection: Projection = {
      name: `l_${randomUUID().replaceAll('-', '').slice(0, 12)}`,
      streamTypes: ['widget'],
      apply: async () => {
        applying();
        await gate;
      },
      reset: async () => {},
    };
    const runner = new ProjectionRunner(t.db, store, registry, projection);
    const a = await store.append(`widget:${randomUUID()}`, 'widget', 'no_stream', widgets(2), { metadata });
    const handled = runner.handle(a.events[1]!); // backfills event 1
    await started;
    const erase = (globalPosition: number) =>
      t.db.transaction(async (sql) => {
        await sql.query(`SET LOCAL lock_timeout = '100ms'`);
        await sql.query(
          `UPDATE events SET metadata = metadata || '{"erased": true}' WHERE global_position = $1`,
          [globalPosition],
        );
      });
    try {
      for (const e of a.events) {
        await expect(erase(e.globalPosition)).rejects.toMatchObject({ code: '55P03' }); // lock_not_available
      }
    } finally {
      release();
    }
    expect(await handled).toBe('backfilled');
  });
});

describe('ProjectionRunner.ensureLive and the definition revision', () => {
  /** Revision 1 counts events per stream; revision 2 also keeps their sum of `n` in a new column. */
  function projectionOf(name: string, revision: 1 | 2): Projection {
    return {
      name,
      streamTypes: ['widget'],
      versioning: {
        schemaPrefix: name,
        revision,
        create: async (sql) => {
          await sql.query(
            revision === 1
              ? 'CREATE TABLE counts (stream_id text PRIMARY KEY, n int NOT NULL)'
              : 'CREATE TABLE counts (stream_id text PRIMARY KEY, n int NOT NULL, total int NOT NULL)',
          );
        },
      },
      apply: async (sql, event) => {
        const { n } = WidgetAddedV1.schema.parse(event.data);
        await sql.query(
          revision === 1
            ? 'INSERT INTO counts VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1'
            : `INSERT INTO counts VALUES ($1, 1, $2) ON CONFLICT (stream_id)
               DO UPDATE SET n = counts.n + 1, total = counts.total + $2`,
          revision === 1 ? [event.envelope.streamId] : [event.envelope.streamId, n],
        );
      },
      reset: async () => {},
    };
  }

  it('rebuilds a live version of an older revision before it is used, and only once', async () => {
    const name = `r_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const s = `widget:${randomUUID()}`;
    const a = await store.append(s, 'widget', 'no_stream', widgets(3), { metadata });
    const old = new ProjectionRunner(t.db, store, registry, projectionOf(name, 1));
    await old.ensureLive();
    for (const e of a.events) await old.handle(e);
    expect((await old.liveVersion())?.version).toBe(1);

    const stale: [number, number][] = [];
    const current = new ProjectionRunner(t.db, store, registry, projectionOf(name, 2));
    await Promise.all([
      current.ensureLive({ onStaleRevision: (live, wanted) => stale.push([live, wanted]) }),
      current.ensureLive(),
    ]);
    expect(stale).toEqual([[1, 2]]);
    const live = await current.liveVersion();
    expect(live?.version).toBe(2);
    const rows = await current.read((sql) =>
      sql.query('SELECT stream_id, n, total FROM counts WHERE stream_id = $1', [s]),
    );
    expect(rows).toEqual([{ stream_id: s, n: 3, total: 6 }]);
    const schemas = await t.db.query<{ nspname: string }>(
      'SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 ORDER BY nspname',
      [`${name}_v%`],
    );
    expect(schemas.map((r) => r.nspname)).toEqual([`${name}_v2`]);

    // A runner of the same revision finds it current: nothing rebuilt.
    const again = new ProjectionRunner(t.db, store, registry, projectionOf(name, 2));
    await again.ensureLive({ onStaleRevision: () => stale.push([0, 0]) });
    expect(stale).toHaveLength(1);
    expect((await again.liveVersion())?.version).toBe(2);
  });
});

describe('ProjectionRunner.rebuild with a bulk replay (ProjectionVersioning.replay)', () => {
  it('writes independent batches two at a time and any other alone, then runs the finish steps at once before the switch', async () => {
    const name = `b_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    // A stream type of its own: the rebuild sees exactly these four events, one batch each.
    const streamType = name;
    const ids = ['a', 'b', 'c', 'd'] as const;
    const streamOf = (id: string) => `${streamType}:${id}`;
    for (const id of ids) {
      await store.append(streamOf(id), streamType, 'no_stream', widgets(1), { metadata });
    }
    const log: string[] = [];
    let failOn: string | undefined;
    // a and b each wait until the other has started: the rebuild only completes if they are written
    // at the same time.
    const started = new Map<string, () => void>();
    const bothStarted = ['a', 'b'].map((id) => new Promise<void>((resolve) => started.set(id, resolve)));
    // The two finish steps wait for each other too: they run at the same time, each in its own transaction.
    const finishStarted = new Map<string, () => void>();
    const bothFinishing = ['x', 'y'].map(
      (id) => new Promise<void>((resolve) => finishStarted.set(id, resolve)),
    );
    const idOf = (events: readonly ParsedEvent[]) => events[0]?.envelope.streamId.split(':')[1] ?? '?';
    const counting = versionedProjection(name, [streamType]);
    const projection: Projection = {
      ...counting,
      versioning: {
        ...counting.versioning,
        create: async (sql) => {
          await counting.versioning.create(sql);
          await sql.query('CREATE TABLE finished (at_rows int NOT NULL)');
        },
        replay: {
          batch: (events) => {
            const id = idOf(events);
            return {
              // c's batch is not independent: it is written alone.
              independent: id !== 'c',
              write: async (sql) => {
                log.push(`start ${id}`);
                started.get(id)?.();
                if (id === failOn) throw new Error(`bulk write of ${id} failed`);
                if (id === 'a' || id === 'b') await Promise.all(bothStarted);
                for (const e of events) await counting.apply(sql, e);
                log.push(`end ${id}`);
              },
            };
          },
          finish: ['x', 'y'].map((step) => async (sql: Sql) => {
            finishStarted.get(step)?.();
            await Promise.all(bothFinishing);
            log.push(`finish ${step}`);
            await sql.query('INSERT INTO finished SELECT count(*) FROM counts');
          }),
        },
      },
    };
    const runner = new ProjectionRunner(t.db, store, registry, projection);
    await runner.ensureLive();
    await readAllSettled(store);
    log.length = 0;

    const result = await runner.rebuild({ batchSize: 1 });
    expect(result.events).toBe(4);
    expect([...log.slice(0, 2)].sort()).toEqual(['start a', 'start b']);
    expect([...log.slice(2, 4)].sort()).toEqual(['end a', 'end b']);
    expect(log.slice(4, 8)).toEqual(['start c', 'end c', 'start d', 'end d']);
    expect([...log.slice(8)].sort()).toEqual(['finish x', 'finish y']);
    const rows = await runner.read(async (sql) => ({
      counts: await sql.query('SELECT stream_id, n FROM counts ORDER BY stream_id'),
      finished: await sql.query('SELECT at_rows FROM finished'),
    }));
    expect(rows).toEqual({
      counts: ids.map((id) => ({ stream_id: streamOf(id), n: 1 })),
      finished: [{ at_rows: 4 }, { at_rows: 4 }],
    });
    // The positions and the checkpoint, kept in memory during the bulk replay, were saved: every event
    // delivered again is skipped, and the checkpoint is the last position.
    const events = (await readAllSettled(store)).filter((e) => e.streamType === streamType);
    for (const e of events) expect(await runner.handle(e)).toBe('skipped');
    expect(await runner.position()).toBe(Math.max(...events.map((e) => e.globalPosition)));

    // A failed bulk write fails the rebuild once the writes beside it settle, and starts no other write;
    // the live version stays.
    const live = await runner.liveVersion();
    failOn = 'b';
    log.length = 0;
    await expect(runner.rebuild({ batchSize: 1 })).rejects.toThrow('bulk write of b failed');
    // a settled before the rebuild failed; nothing after b started.
    expect([...log].sort()).toEqual(['end a', 'start a', 'start b']);
    expect(await runner.liveVersion()).toEqual(live);
    failOn = undefined;
    // The next rebuild drops what the failed one left and takes its version number.
    const again = await runner.rebuild({ batchSize: 1 });
    expect(again.version).toBe((live?.version ?? 0) + 1);
    expect(
      await runner.read((sql) => sql.query('SELECT stream_id, n FROM counts ORDER BY stream_id')),
    ).toEqual(rows.counts);
  });
});
