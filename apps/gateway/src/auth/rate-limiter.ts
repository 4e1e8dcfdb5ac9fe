import { Logger } from '@nestjs/common';
import { z } from 'zod';
import type { Sql } from '@threadline/event-store';

/** The answer of one {@link RateLimiter.consume}: allowed or not, and when the window ends. */
export interface RateDecision {
  allowed: boolean;
  /** The limit of the bucket per window (requests). */
  limit: number;
  /** Requests left in this window after this one (0 when refused). */
  remaining: number;
  /** Whole seconds until the window ends (at least 1): the `Retry-After` of a 429. */
  retryAfterSeconds: number;
}

/** Options of a {@link RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * How often this instance adds the requests it counted to the database and learns the others'
   * counts, ms (default 100). 0: never on its own (tests call {@link RateLimiter.sync}).
   */
  syncIntervalMs?: number;
  /** The local clock, ms since the epoch (tests pass their own). */
  now?: () => number;
}

/** One bucket as this instance knows it, in the window starting at `windowStart` (database clock, ms). */
interface Bucket {
  windowStart: number;
  /** The database's count of the window when this instance last synced (its own requests included). */
  counted: number;
  /** This instance's requests in a sync in flight. */
  sending: number;
  /** This instance's requests not sent yet. */
  pending: number;
}

const Counted = z.object({
  bucket: z.string(),
  count: z.number().int(),
  window_start_s: z.coerce.number(),
  now_ms: z.coerce.number(),
});

const DEFAULT_SYNC_INTERVAL_MS = 100;

/**
 * Fixed-window rate limiting shared by every gateway instance, counted in `rate_limit_windows`
 * (one row per bucket) on the database's clock, so instances with skewed clocks agree on the window.
 * Every request of a bucket in a window of `windowSeconds` counts, refused ones included, so hammering
 * past the limit does not reset it. At worst a client gets 2x the limit across a window boundary (the
 * fixed-window trade-off).
 *
 * Requests are counted in memory, not with a statement each: the first request of a bucket in this
 * process is counted in the database at once (one upsert, which also tells this instance the count so
 * far and the database's clock); after that, this instance decides from the count it last read plus
 * its own requests since, and every `syncIntervalMs` adds its new requests to the database in one
 * statement for all buckets, reading back each bucket's total. So one instance enforces a limit
 * exactly (restarts included); with several, each learns the others' requests at most about two sync
 * intervals late, and a bucket may get over its limit by what the other instances admit in that time.
 * A failed sync keeps the requests for the next one; only a bucket's first request needs the database.
 */
export class RateLimiter {
  private readonly logger = new Logger('RateLimiter');
  private readonly buckets = new Map<string, Bucket>();
  /** First requests of buckets being counted in the database (later ones wait for them). */
  private readonly loading = new Map<string, Promise<RateDecision>>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout | undefined;
  /** Database clock minus local clock, ms (learned at each round trip). */
  private clockOffsetMs = 0;
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly windowSeconds: number,
    options: RateLimiterOptions = {},
  ) {
    this.windowMs = windowSeconds * 1000;
    this.now = options.now ?? Date.now;
    const interval = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
    if (interval > 0) {
      this.timer = setInterval(() => void this.sync(), interval);
      this.timer.unref();
    }
  }

  /**
   * Counts one request of `bucket` (e.g. `key:<key_id>`, `user:<tenant>:<user>`) against `limit`
   * requests per window. Throws what Postgres throws when the bucket's first request in this
   * process cannot be counted in the database.
   */
  async consume(bucket: string, limit: number): Promise<RateDecision> {
    let state = this.buckets.get(bucket);
    if (state === undefined) {
      const loading = this.loading.get(bucket);
      if (loading === undefined) return this.load(bucket, limit);
      await loading; // the bucket's first request, counted in the database: this one counts after it
      state = this.buckets.get(bucket);
      if (state === undefined) return this.consume(bucket, limit);
    }
    return this.countLocally(state, limit);
  }

  /**
   * Adds the requests counted since the last sync to the database (one statement) and reads back
   * each bucket's total; forgets buckets idle for a whole window. Never throws: a failure is logged
   * and its requests wait for the next sync. Runs every `syncIntervalMs`; tests call it themselves.
   */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce()
      .catch((error: unknown) =>
        this.logger.error(error instanceof Error ? (error.stack ?? error.message) : error),
      )
      .finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  /** Stops the periodic sync after a last one (at shutdown, before the pool closes). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing;
    await this.sync();
  }

  private dbNow(): number {
    return this.now() + this.clockOffsetMs;
  }

  private learnClock(nowMs: number, sentAt: number): void {
    this.clockOffsetMs = nowMs - (sentAt + this.now()) / 2;
  }

  private load(bucket: string, limit: number): Promise<RateDecision> {
    const loading = this.loadOnce(bucket, limit).finally(() => this.loading.delete(bucket));
    this.loading.set(bucket, loading);
    return loading;
  }

  private async loadOnce(bucket: string, limit: number): Promise<RateDecision> {
    const sentAt = this.now();
    const [row] = await this.sql.query(
      `WITH w AS (
         SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2::int) * $2::int) AS start
       )
       INSERT INTO rate_limit_windows AS r (bucket, window_start, count)
       SELECT $1, w.start, 1 FROM w
       ON CONFLICT (bucket) DO UPDATE SET
         count = CASE WHEN EXCLUDED.window_start > r.window_start THEN 1 ELSE r.count + 1 END,
         window_start = GREATEST(r.window_start, EXCLUDED.window_start)
       RETURNING bucket, count, extract(epoch FROM window_start) AS window_start_s,
         extract(epoch FROM clock_timestamp()) * 1000 AS now_ms`,
      [bucket, this.windowSeconds],
    );
    const counted = Counted.parse(row);
    this.learnClock(counted.now_ms, sentAt);
    const state: Bucket = {
      windowStart: counted.window_start_s * 1000,
      counted: counted.count,
      sending: 0,
      pending: 0,
    };
    this.buckets.set(bucket, state);
    return this.decision(state, counted.count, limit);
  }

  private countLocally(state: Bucket, limit: number): RateDecision {
    const window = this.windowOf(this.dbNow());
    if (window > state.windowStart) {
      // A new window: everyone starts at 0; what this instance counted for the last one is moot.
      state.windowStart = window;
      state.counted = 0;
      state.sending = 0;
      state.pending = 0;
    }
    state.pending += 1;
    return this.decision(state, state.counted + state.sending + state.pending, limit);
  }

  private decision(state: Bucket, count: number, limit: number): RateDecision {
    const leftMs = state.windowStart + this.windowMs - this.dbNow();
    return {
      allowed: count <= limit,
      limit,
      remaining: Math.max(limit - count, 0),
      retryAfterSeconds: Math.max(1, Math.ceil(leftMs / 1000)),
    };
  }

  private windowOf(dbNowMs: number): number {
    return Math.floor(dbNowMs / this.windowMs) * this.windowMs;
  }

  private async syncOnce(): Promise<void> {
    const current = this.windowOf(this.dbNow());
    const sent: { bucket: string; state: Bucket; windowStart: number; n: number }[] = [];
    for (const [bucket, state] of this.buckets) {
      if (state.pending > 0) {
        sent.push({ bucket, state, windowStart: state.windowStart, n: state.pending });
        state.sending += state.pending;
        state.pending = 0;
      } else if (state.sending === 0 && state.windowStart < current) {
        this.buckets.delete(bucket); // idle for a whole window: its next request loads it again
      }
    }
    if (sent.length === 0) return;
    // One lock order for every instance (sorted buckets): concurrent syncs cannot deadlock.
    sent.sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0));
    const sentAt = this.now();
    let rows: z.infer<typeof Counted>[];
    try {
      const result = await this.sql.query(
        `INSERT INTO rate_limit_windows AS r (bucket, window_start, count)
         SELECT i.bucket, to_timestamp(i.window_start_s), i.n
           FROM unnest($1::text[], $2::bigint[], $3::int[]) AS i(bucket, window_start_s, n)
         ON CONFLICT (bucket) DO UPDATE SET
           count = CASE
             WHEN EXCLUDED.window_start > r.window_start THEN EXCLUDED.count
             WHEN EXCLUDED.window_start = r.window_start THEN r.count + EXCLUDED.count
             ELSE r.count END,
           window_start = GREATEST(r.window_start, EXCLUDED.window_start)
         RETURNING bucket, count, extract(epoch FROM window_start) AS window_start_s,
           extract(epoch FROM clock_timestamp()) * 1000 AS now_ms`,
        [sent.map((s) => s.bucket), sent.map((s) => s.windowStart / 1000), sent.map((s) => s.n)],
      );
      rows = result.map((row) => Counted.parse(row));
    } catch (error) {
      this.logger.warn(
        `rate-limit sync failed, retried: ${error instanceof Error ? error.message : String(error)}`,
      );
      for (const s of sent) {
        if (s.state.windowStart !== s.windowStart) continue;
        s.state.sending -= s.n;
        s.state.pending += s.n;
      }
      return;
    }
    const last = rows[rows.length - 1];
    if (last) this.learnClock(last.now_ms, sentAt);
    const byBucket = new Map(rows.map((row) => [row.bucket, row]));
    for (const s of sent) {
      const row = byBucket.get(s.bucket);
      if (row === undefined || s.state.windowStart !== s.windowStart) continue; // moved on to a new window
      s.state.sending -= s.n;
      const windowStart = row.window_start_s * 1000;
      if (windowStart === s.windowStart) s.state.counted = row.count;
      else if (windowStart > s.windowStart) {
        // Other instances are in a newer window already: adopt it (these requests counted in the old one).
        s.state.windowStart = windowStart;
        s.state.counted = row.count;
      }
    }
  }
}
