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

const Row = z.object({ count: z.number().int(), retry_after_ms: z.coerce.number() });

/**
 * Fixed-window rate limiting shared by every gateway instance: one row per bucket in
 * `rate_limit_windows`, counted by one atomic upsert on the database's clock (so instances with
 * skewed clocks agree on the window). Every request of a bucket in a window of `windowSeconds`
 * counts, refused ones included, so hammering past the limit does not reset it. At worst a client
 * gets 2x the limit across a window boundary (the fixed-window trade-off, for one statement per request).
 */
export class RateLimiter {
  constructor(
    private readonly sql: Sql,
    private readonly windowSeconds: number,
  ) {}

  /**
   * Counts one request of `bucket` (e.g. `key:<key_id>`, `user:<tenant>:<user>`) against `limit`
   * requests per window. Throws what Postgres throws.
   */
  async consume(bucket: string, limit: number): Promise<RateDecision> {
    const [row] = await this.sql.query(
      `WITH w AS (
         SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2::int) * $2::int) AS start
       )
       INSERT INTO rate_limit_windows AS r (bucket, window_start, count)
       SELECT $1, w.start, 1 FROM w
       ON CONFLICT (bucket) DO UPDATE SET
         count = CASE WHEN EXCLUDED.window_start > r.window_start THEN 1 ELSE r.count + 1 END,
         window_start = GREATEST(r.window_start, EXCLUDED.window_start)
       RETURNING count,
         ceil(extract(epoch FROM (window_start + make_interval(secs => $2::int) - clock_timestamp())) * 1000)
           AS retry_after_ms`,
      [bucket, this.windowSeconds],
    );
    const { count, retry_after_ms } = Row.parse(row);
    return {
      allowed: count <= limit,
      limit,
      remaining: Math.max(limit - count, 0),
      retryAfterSeconds: Math.max(1, Math.ceil(retry_after_ms / 1000)),
    };
  }
}
