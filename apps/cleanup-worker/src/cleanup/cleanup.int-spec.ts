import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { z } from 'zod';
import { CreateSession, EndSession, GetSession, ListIdleSessions } from '@threadline/contracts';
import { Db } from '@threadline/event-store';
import { RequestClient } from '@threadline/messaging';
import { DomainError } from '@threadline/platform';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  type TestDatabase,
  type TestNats,
  testNatsUrl,
} from '@threadline/testing';
import type { CleanupSettings } from '../config';
import { CleanupPass } from './cleanup-pass';
import { CleanupScheduler } from './cleanup-scheduler';

// The cleanup pass and leader election against real Postgres and NATS and the real session-service
// (its build output, run as a process as in a deployment: `npm run build` first). The pass's clock is
// the test's: sessions made now are "25 hours idle" by passing `now = T0 + 25 h`; nothing sleeps.

jest.setTimeout(120_000);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ROOT = resolve(__dirname, '../../../..');
const SERVICE_MAIN = join(ROOT, 'dist/apps/session-service/src/main.js');

let tdb: TestDatabase;
let nats: TestNats;
let service: ChildProcess;
let serviceOutput = '';
let proxy: ClientProxy;
let client: RequestClient;
const T0 = Date.now();

const settings = (over: Partial<CleanupSettings> = {}): CleanupSettings => ({
  timeoutMs: 24 * HOUR,
  retentionMs: null,
  intervalMs: 60 * 60_000,
  batchSize: 2,
  ...over,
});

const newTenant = () => `t_${randomUUID().slice(0, 8)}`;

async function statusOf(tenantId: string, sessionId: string): Promise<string> {
  try {
    return (await client.request(GetSession, { tenantId, sessionId })).status;
  } catch (error) {
    if (error instanceof DomainError && error.code === 'SESSION.NOT_FOUND') return 'gone';
    throw error;
  }
}

async function makeSessions(tenantId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const reply = await client.request(CreateSession, { context: { tenantId }, userId: `u${i}` });
    ids.push(reply.session.session_id);
  }
  return ids;
}

beforeAll(async () => {
  if (!existsSync(SERVICE_MAIN)) throw new Error(`${SERVICE_MAIN} is missing: run npm run build first`);
  tdb = await createTestDatabase([], 6);
  nats = await createTestNats();
  service = spawn(process.execPath, [SERVICE_MAIN], {
    cwd: ROOT,
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      DATABASE_URL: tdb.url,
      DATABASE_POOL_SIZE: '4',
      NATS_URL: testNatsUrl(),
      NATS_SUBJECT_PREFIX: nats.prefix,
      NATS_STREAM: nats.stream,
      MAX_SESSIONS_PER_USER: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  service.stdout?.on('data', (c: Buffer) => (serviceOutput += c.toString('utf8')));
  service.stderr?.on('data', (c: Buffer) => (serviceOutput += c.toString('utf8')));
  proxy = ClientProxyFactory.create({ transport: Transport.NATS, options: { servers: [testNatsUrl()] } });
  await proxy.connect();
  client = new RequestClient(proxy, nats.prefix, 10_000);
  await eventually(
    async () => {
      await client.request(ListIdleSessions, { idleBefore: new Date().toISOString(), limit: 1 });
      return true;
    },
    60_000,
    `session-service answering (output: ${serviceOutput})`,
  );
});

afterAll(async () => {
  await proxy?.close();
  if (service && service.exitCode === null) {
    const exited = new Promise((r) => service.once('exit', r));
    service.kill('SIGTERM');
    await exited;
  }
  await tdb?.drop();
  await nats?.cleanup();
});

describe('cleanup pass (controlled clock)', () => {
  it('expires idle sessions in bounded batches, records the cutoff decision, and leaves others alone', async () => {
    const tenantId = newTenant();
    const other = newTenant();
    const idle = await makeSessions(tenantId, 5);
    const [otherId] = await makeSessions(other, 1);
    const pass = new CleanupPass(tdb.db, client, settings(), 'p1');

    // 23 h later nothing is idle long enough.
    expect(await pass.run({ now: new Date(T0 + 23 * HOUR), tenantId })).toMatchObject({
      expired: 0,
      deleted: 0,
    });
    // 25 h later: all five, in batches of 2 (3 listings), only of the given tenant.
    const report = await pass.run({ now: new Date(T0 + 25 * HOUR), tenantId });
    expect(report).toMatchObject({ expired: 5, deleted: 0 });
    expect(report.took_ms).toBeGreaterThanOrEqual(0);
    for (const id of idle) expect(await statusOf(tenantId, id)).toBe('expired');
    expect(await statusOf(other, otherId!)).toBe('active');

    const rows = await tdb.db.query(
      `SELECT data, metadata FROM events WHERE tenant_id = $1 AND event_type = 'SessionExpired.v1'`,
      [tenantId],
    );
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      const data = z
        .object({
          lastActivityAt: z.string(),
          idleMs: z.number(),
          timeoutMs: z.number(),
          expiredAt: z.string(),
        })
        .parse(row['data']);
      expect(data.timeoutMs).toBe(24 * HOUR);
      expect(Date.parse(data.lastActivityAt)).toBeLessThanOrEqual(T0 + HOUR);
      expect(data.idleMs).toBe(Date.parse(data.expiredAt) - Date.parse(data.lastActivityAt));
      expect(z.object({ correlationId: z.string() }).parse(row['metadata']).correlationId).toMatch(
        /^cleanup:p1:/,
      );
    }
    // A second pass finds nothing more to do.
    expect(await pass.run({ now: new Date(T0 + 26 * HOUR), tenantId })).toMatchObject({
      expired: 0,
      deleted: 0,
    });
  });

  it('deletes ended and expired sessions past retention; keeps them forever without RETENTION_DAYS', async () => {
    const tenantId = newTenant();
    const [ended, expired, active] = await makeSessions(tenantId, 3);
    await client.request(EndSession, { context: { tenantId }, sessionId: ended!, reason: 'user' });
    await client.request(CreateSession, { context: { tenantId }, sessionId: 'late', userId: 'late' });

    const forever = new CleanupPass(tdb.db, client, settings(), 'p2');
    // Expires everything idle (the three active ones), deletes nothing: no retention configured.
    const first = await forever.run({ now: new Date(T0 + 25 * HOUR), tenantId });
    expect(first).toMatchObject({ expired: 3, deleted: 0 });
    expect(await forever.run({ now: new Date(T0 + 400 * DAY), tenantId })).toMatchObject({ deleted: 0 });
    expect(await statusOf(tenantId, ended!)).toBe('ended');

    const week = new CleanupPass(tdb.db, client, settings({ retentionMs: 7 * DAY }), 'p3');
    // The session-service stamps `ended_at` with its own clock (about T0, the test's real time).
    // Six days after they ended: kept. Eight days: gone (ended, expired, all of them).
    expect(await week.run({ now: new Date(T0 + 6 * DAY), tenantId })).toMatchObject({
      deleted: 0,
    });
    expect(await week.run({ now: new Date(T0 + 8 * DAY), tenantId })).toMatchObject({
      expired: 0,
      deleted: 4,
    });
    for (const id of [ended!, expired!, active!, 'late']) expect(await statusOf(tenantId, id)).toBe('gone');
  });
});

describe('leader election', () => {
  it('runs passes on one worker only; the other takes over when it stops', async () => {
    const tenantId = newTenant();
    const dbs = [
      await Db.connect({ url: tdb.url, poolSize: 3 }),
      await Db.connect({ url: tdb.url, poolSize: 3 }),
    ];
    const now = () => new Date(T0 + 25 * HOUR);
    const workers = ['wa', 'wb'].map(
      (id, i) =>
        new CleanupScheduler(dbs[i]!, new CleanupPass(dbs[i]!, client, settings(), id), {
          intervalMs: 25,
          standbyRetryMs: 25,
          clock: now,
        }),
    );
    try {
      for (const w of workers) w.start();
      await makeSessions(tenantId, 3);
      const leader = await eventually(
        () => workers.find((w) => w.isLeader && w.passesRun >= 5),
        30_000,
        'a leader',
      );
      const follower = workers.find((w) => w !== leader)!;
      expect(follower.isLeader).toBe(false);
      expect(follower.passesRun).toBe(0);
      await eventually(async () =>
        (await statusOf(tenantId, (await idsOf(tenantId))[0]!)) === 'expired' ? true : undefined,
      );
      const leaderId = leader === workers[0] ? 'wa' : 'wb';
      const correlations = await correlationsOf(tenantId);
      expect(correlations.length).toBe(3);
      expect(correlations.every((c) => c.startsWith(`cleanup:${leaderId}:`))).toBe(true);

      await leader.stop();
      const more = await makeSessions(tenantId, 2);
      await eventually(
        () => (follower.isLeader && follower.passesRun >= 2 ? true : undefined),
        30_000,
        'takeover',
      );
      await eventually(async () => ((await statusOf(tenantId, more[1]!)) === 'expired' ? true : undefined));
      const followerId = leaderId === 'wa' ? 'wb' : 'wa';
      const after = await correlationsOf(tenantId);
      expect(after.filter((c) => c.startsWith(`cleanup:${followerId}:`))).toHaveLength(2);
    } finally {
      for (const w of workers) await w.stop();
      for (const db of dbs) await db.close();
    }
  });
});

async function idsOf(tenantId: string): Promise<string[]> {
  return (
    await tdb.db.query('SELECT session_id FROM sessions WHERE tenant_id = $1 ORDER BY created_at', [tenantId])
  ).map((r) => z.object({ session_id: z.string() }).parse(r).session_id);
}

async function correlationsOf(tenantId: string): Promise<string[]> {
  return (
    await tdb.db.query(
      `SELECT metadata->>'correlationId' AS c FROM events WHERE tenant_id = $1 AND event_type = 'SessionExpired.v1'`,
      [tenantId],
    )
  ).map((r) => z.object({ c: z.string() }).parse(r).c);
}
