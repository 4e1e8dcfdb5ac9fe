import { Pool } from 'pg';
import { Db, EventStore, eventStoreMigrations, migrate, type NewEvent } from '@threadline/event-store';
import { nowMs, summarize, type LatencySummary } from './stats';

/** One write series: operations and rows (events) per second, latency of one operation in ms. */
export interface WriteRate {
  writers: number;
  /** Rows or events per operation. */
  batch: number;
  operations: number;
  rowsPerSecond: number;
  opsPerSecond: number;
  latency: LatencySummary;
  errors: number;
}

/** Scenarios 3 and 4 and the ratio of each event-store figure to the plain INSERT one. */
export interface StoreResult {
  payloadBytes: number;
  seconds: number;
  eventStoreSingle: WriteRate;
  eventStoreBatched: WriteRate;
  plainSingle: WriteRate;
  plainBatched: WriteRate;
  /** eventStoreSingle.rowsPerSecond / plainSingle.rowsPerSecond. */
  singleRatio: number;
  /** eventStoreBatched.rowsPerSecond / plainBatched.rowsPerSecond. */
  batchedRatio: number;
}

/** Runs `op(writer)` in `writers` loops for `seconds`; counts operations, rows (`batch` each), latency. */
async function measure(
  writers: number,
  batch: number,
  seconds: number,
  op: (writer: number) => Promise<void>,
): Promise<WriteRate> {
  const end = nowMs() + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      while (nowMs() < end) {
        const s = nowMs();
        try {
          await op(w);
          latencies.push(nowMs() - s);
        } catch (error) {
          if (errors++ === 0)
            process.stderr.write(
              `bench: write failed: ${error instanceof Error ? error.message : String(error)}\n`,
            );
        }
      }
    }),
  );
  const elapsed = (nowMs() - t0) / 1000;
  return {
    writers,
    batch,
    operations: latencies.length,
    opsPerSecond: Math.round(latencies.length / elapsed),
    rowsPerSecond: Math.round((latencies.length * batch) / elapsed),
    latency: summarize(latencies),
    errors,
  };
}

/**
 * Scenario 3 (EventStore.append through the library, as the services call it: TypeORM pool of
 * `writers` connections, numeric expected version, one stream per writer) and scenario 4 (plain
 * `INSERT` through a node-postgres Pool of `writers` clients into a table of (bigserial, text, json,
 * timestamptz)), both with `payload` as the event data / json column (the type of `events.data`, so
 * both parse the same JSON the same way), on the database at
 * `databaseUrl` (migrated here with the event store's migrations). Each series runs `seconds`.
 */
export async function runStore(opts: {
  databaseUrl: string;
  payload: unknown;
  seconds: number;
  writers: number;
  batch: number;
}): Promise<StoreResult> {
  const { writers, batch, seconds } = opts;
  const db = await Db.connect({
    url: opts.databaseUrl,
    poolSize: writers,
    migrations: eventStoreMigrations,
    applicationName: 'threadline-bench',
  });
  const pool = new Pool({
    connectionString: opts.databaseUrl,
    max: writers,
    application_name: 'threadline-bench-plain',
  });
  try {
    await migrate(db);
    const store = new EventStore(db);
    const metadata = { tenantId: 'bench' };
    const event: NewEvent = { type: 'TurnLogged.v1', data: opts.payload };
    const json = JSON.stringify(opts.payload);

    const versions = new Array<number>(writers).fill(0);
    const appendOne = (prefix: string, n: number) => async (w: number) => {
      const streamId = `${prefix}:${w}`;
      const result = await store.append(
        streamId,
        'bench',
        versions[w]!,
        Array.from({ length: n }, () => event),
        { metadata },
      );
      versions[w] = result.nextExpectedVersion;
    };
    const eventStoreSingle = await measure(writers, 1, seconds, appendOne('bench-single', 1));
    versions.fill(0);
    const eventStoreBatched = await measure(writers, batch, seconds, appendOne('bench-batched', batch));

    await pool.query(
      'CREATE TABLE IF NOT EXISTS bench_plain (id bigserial PRIMARY KEY, stream_id text NOT NULL, data json NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
    );
    const plainSingle = await measure(writers, 1, seconds, async (w) => {
      await pool.query('INSERT INTO bench_plain (stream_id, data) VALUES ($1, $2)', [`plain:${w}`, json]);
    });
    const values = Array.from({ length: batch }, (_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
    const plainBatched = await measure(writers, batch, seconds, async (w) => {
      const params: string[] = [];
      for (let i = 0; i < batch; i++) params.push(`plain:${w}`, json);
      await pool.query(`INSERT INTO bench_plain (stream_id, data) VALUES ${values}`, params);
    });
    const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN);
    return {
      payloadBytes: Buffer.byteLength(json),
      seconds,
      eventStoreSingle,
      eventStoreBatched,
      plainSingle,
      plainBatched,
      singleRatio: ratio(eventStoreSingle.rowsPerSecond, plainSingle.rowsPerSecond),
      batchedRatio: ratio(eventStoreBatched.rowsPerSecond, plainBatched.rowsPerSecond),
    };
  } finally {
    await pool.end();
    await db.close();
  }
}
