import { randomUUID } from 'node:crypto';
import { freePort } from '@threadline/stack';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  type PrivatePostgres,
  startPrivatePostgres,
  type TestDatabase,
  type TestNats,
} from '@threadline/testing';
import { Db } from './db';
import { EventStore } from './event-store';
import { Relay, type RelayLogger } from './relay';

// Issue 20: the relay and a dedicated connection across a restart of a Postgres of this file's own
// (`pg_ctl restart -m immediate`). Before the fix, the 'error' event of the relay's lock connection
// was unhandled and ended the process (here: the Jest worker).

jest.setTimeout(90_000);

let pg: PrivatePostgres;
let t: TestDatabase;
let nats: TestNats;
let store: EventStore;
const relays: Relay[] = [];
const logs: string[] = [];
const logger: RelayLogger = {
  info: (_obj, msg) => logs.push(msg),
  error: (_obj, msg) => logs.push(msg),
};
const dbLogs: string[] = [];

beforeAll(async () => {
  pg = await startPrivatePostgres(await freePort());
  const saved = process.env['TEST_DATABASE_URL'];
  process.env['TEST_DATABASE_URL'] = pg.adminUrl;
  try {
    t = await createTestDatabase([], 4);
  } finally {
    if (saved === undefined) delete process.env['TEST_DATABASE_URL'];
    else process.env['TEST_DATABASE_URL'] = saved;
  }
  nats = await createTestNats();
});

afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  await t?.db.close();
  await nats?.cleanup();
  await pg?.destroy();
});

async function appendRetrying(db: Db): Promise<string> {
  const s = new EventStore(db);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await s.append(
        `widget:${randomUUID()}`,
        'widget',
        'no_stream',
        [{ type: 'WidgetAdded.v1', data: { n: 1 } }],
        { metadata: { tenantId: 'tenant-pg' } },
      );
      return r.events[0]!.eventId;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const published = async () => (await nats.messages()).map((m) => m.msgId);

describe('a Postgres restart', () => {
  it('loses the dedicated connection (reported, not thrown) and the pool reconnects', async () => {
    const db = await Db.connect({
      url: t.url,
      poolSize: 2,
      logger: { info: (m) => dbLogs.push(m), warn: (m) => dbLogs.push(m) },
    });
    try {
      const conn = await db.dedicated();
      await conn.query('SELECT 1');
      await pg.restart('immediate');
      await eventually(() => (conn.lost ? true : undefined), 10_000, 'the connection reported lost');
      await expect(conn.query('SELECT 1')).rejects.toBe(conn.lost);
      await conn.release();
      await eventually(async () => (await db.query<{ one: number }>('SELECT 1 AS one'))[0]?.one, 20_000);
      expect(dbLogs).toEqual([
        expect.stringMatching(/^postgres connection lost/),
        'postgres connection restored',
      ]);
    } finally {
      await db.close();
    }
  });

  it('is survived by the relay: one of two instances leads again and publishes what comes next', async () => {
    store = new EventStore(t.db);
    for (let i = 0; i < 2; i++) {
      const r = new Relay(t.db, store, nats.publisher, { pollIntervalMs: 10, standbyRetryMs: 50, logger });
      relays.push(r);
      r.start();
    }
    const before = await appendRetrying(t.db);
    await eventually(async () => ((await published()).includes(before) ? true : undefined));

    await pg.restart('immediate');

    const after = await appendRetrying(t.db);
    const ids = await eventually(async () => {
      const now = await published();
      return now.includes(after) ? now : undefined;
    }, 30_000);
    expect(ids).toEqual([before, after]);
    await eventually(() => (relays.filter((r) => r.isLeader).length === 1 ? true : undefined));
    expect(logs).toContain('relay failed; retrying from checkpoint');
    expect(logs).toContain('relay is active again (lock re-acquired)');
  });
});
