import type { Pool } from 'pg';
import {
  dbPoolConnections,
  dbPoolPending,
  eventStoreAppendDuration,
  eventStoreAppendsTotal,
  eventStoreEventsTotal,
  inSpan,
  onScrape,
  projectionLagEvents,
  projectionLagSeconds,
  relayLagEvents,
  relayLagSeconds,
  secondsSince,
  tracingEnabled,
} from '@threadline/platform';
import type { Sql } from './db';

/**
 * The event store's Prometheus metrics (defined in `@threadline/platform`'s catalog): appends, append
 * duration, the Postgres pools, the relay's and the projections' lag. Gauges whose value lives in
 * Postgres are read at scrape time (`onScrape`), never on the write path.
 */

/** Most events a lag gauge counts (`LIMIT` of the count): past it the gauge says "at least this many". */
export const LAG_COUNT_CAP = 100_000;

/** Counts appends (one per stream) and their events, by stream type. */
export function countAppends(appends: readonly { streamType: string; events: number }[]): void {
  for (const a of appends) {
    eventStoreAppendsTotal.labels(a.streamType).inc();
    eventStoreEventsTotal.labels(a.streamType).inc(a.events);
  }
}

/**
 * Runs one append statement of `appends` appends, observing its duration
 * (`threadline_event_store_append_duration_seconds`); with tracing on, inside an `event_store.append`
 * span (its Postgres statement a child of it).
 */
export async function timedAppend<T>(appends: number, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    if (!tracingEnabled()) return await run();
    return await inSpan('event_store.append', { attributes: { 'threadline.appends': appends } }, run);
  } finally {
    eventStoreAppendDuration.observe(secondsSince(start));
  }
}

const pools = new Map<Pool, string>();
let poolsHooked = false;

/**
 * Reports `pool` under `db_client_connection_count{pool_name,state}` and
 * `db_client_connection_pending_requests{pool_name}` until {@link untrackPool}. `name` is the pool's
 * `application_name` (a service name: bounded).
 */
export function trackPool(pool: Pool, name: string): void {
  pools.set(pool, name);
  if (poolsHooked) return;
  poolsHooked = true;
  onScrape(() => {
    dbPoolConnections.reset();
    dbPoolPending.reset();
    const sums = new Map<string, { used: number; idle: number; waiting: number }>();
    for (const [p, n] of pools) {
      const sum = sums.get(n) ?? { used: 0, idle: 0, waiting: 0 };
      sum.used += p.totalCount - p.idleCount;
      sum.idle += p.idleCount;
      sum.waiting += p.waitingCount;
      sums.set(n, sum);
    }
    for (const [n, sum] of sums) {
      dbPoolConnections.labels(n, 'used').set(sum.used);
      dbPoolConnections.labels(n, 'idle').set(sum.idle);
      dbPoolPending.labels(n).set(sum.waiting);
    }
  });
}

export function untrackPool(pool: Pool): void {
  pools.delete(pool);
}

/** How far behind the head of the store a reader at `afterPosition` is: events and seconds. */
export interface Lag {
  events: number;
  seconds: number;
}

/**
 * The lag of a reader that has applied every event up to global position `afterPosition`: the events
 * after it (of `streamTypes` when given; counted up to {@link LAG_COUNT_CAP}) and the age in seconds of
 * the oldest of them (0 when there is none). Two index scans of `events` from `afterPosition` on.
 */
export async function lagAfter(
  sql: Sql,
  afterPosition: number,
  streamTypes?: readonly string[],
): Promise<Lag> {
  const filter = streamTypes ? 'AND stream_type = ANY($3::text[])' : '';
  const params: unknown[] = [afterPosition, LAG_COUNT_CAP];
  if (streamTypes) params.push([...streamTypes]);
  const [row] = await sql.query<{ events: string; oldest: Date | null }>(
    `SELECT (SELECT count(*) FROM (SELECT 1 FROM events WHERE global_position > $1 ${filter} LIMIT $2) behind) AS events,
            (SELECT created_at FROM events WHERE global_position > $1 ${filter}
             ORDER BY global_position LIMIT 1) AS oldest`,
    params,
  );
  const events = Number(row?.events ?? 0);
  const oldest = row?.oldest;
  const seconds =
    events > 0 && oldest instanceof Date ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : 0;
  return { events, seconds };
}

/**
 * Sets the lag gauges of `relay` (its checkpoint name) at each scrape from `lag()` while `isActive()`
 * (the relay holding the lock); a standby relay has no series, so they come from the active one only.
 * Returns the unregistering function.
 */
export function reportRelayLag(relay: string, isActive: () => boolean, lag: () => Promise<Lag>): () => void {
  const stop = onScrape(async () => {
    if (!isActive()) {
      relayLagEvents.remove(relay);
      relayLagSeconds.remove(relay);
      return;
    }
    const { events, seconds } = await lag();
    relayLagEvents.labels(relay).set(events);
    relayLagSeconds.labels(relay).set(seconds);
  });
  return () => {
    stop();
    relayLagEvents.remove(relay);
    relayLagSeconds.remove(relay);
  };
}

/** Sets `projection`'s lag gauges at each scrape from `lag()`. Returns the unregistering function. */
export function reportProjectionLag(projection: string, lag: () => Promise<Lag>): () => void {
  return onScrape(async () => {
    const { events, seconds } = await lag();
    projectionLagEvents.labels(projection).set(events);
    projectionLagSeconds.labels(projection).set(seconds);
  });
}
