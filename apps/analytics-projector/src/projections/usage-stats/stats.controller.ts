import { Controller, Inject } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  GetGlobalStats,
  GetSessionStats,
  GetUsage,
  GetUserStats,
  type GlobalStatsView,
  type RequestOf,
  type SessionStatsView,
  type UsageStatsView,
  type UserStatsView,
} from '@threadline/contracts';
import { Db, type ProjectionRunner, type Sql } from '@threadline/event-store';
import { RequestHandler } from '@threadline/messaging';
import { DomainError } from '@threadline/platform';
import { ANALYTICS_CONFIG, type AnalyticsProjectorConfig } from '../../config';
import { USAGE_STATS_RUNNER } from '../analytics-events.controller';
import {
  globalStats,
  sessionStatsOfVersion,
  usageStats,
  userStats,
  type VersionTarget,
} from './stats.queries';

/** SQLSTATEs of a read that met a version dropped under it (undefined_table, invalid_schema_name). */
const DROPPED_RELATION_CODES = new Set(['42P01', '3F000']);
/** Reads of a per-session answer before giving up on a live version that keeps changing. */
const LIVE_READ_ATTEMPTS = 3;

function isDroppedRelation(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string' &&
    DROPPED_RELATION_CODES.has(error.code)
  );
}

/**
 * Answers the analytics queries (`<prefix>.qry.analytics.*`, queue group `analytics-projector`) from
 * the live version of `usage_stats`. With `minPosition` (read-your-writes), waits until the projection
 * has applied that global position ({@link waitForPosition}: woken by this process's runner as it
 * commits, the checkpoint re-read every 100 ms) for at most `STATS_WAIT_MS` (ms), then answers SERVICE.UNAVAILABLE (HTTP 503) with `details: {min_position, as_of_position}`:
 * an answer that says it includes a write it does not would be worse than none.
 */
@Controller()
export class StatsController {
  /** The live version as last read (per-session answers read it in their one statement). */
  private live: VersionTarget | undefined;

  constructor(
    @Inject(USAGE_STATS_RUNNER) private readonly runner: ProjectionRunner,
    @Inject(ANALYTICS_CONFIG) private readonly config: AnalyticsProjectorConfig,
    private readonly db: Db,
  ) {}

  @RequestHandler(GetGlobalStats)
  async global(@Payload() q: RequestOf<typeof GetGlobalStats>): Promise<GlobalStatsView> {
    return this.answer(q.minPosition, async (sql, asOf) => {
      const live = await this.runner.liveVersion(sql);
      return globalStats(sql, asOf, {
        tenantId: q.tenantId,
        positionsKey: this.runner.positionsKey(live?.version ?? null),
        streamTypes: this.runner.projection.streamTypes,
      });
    });
  }

  /**
   * The most frequent query, answered in one statement (`sessionStatsOfVersion`) against the live
   * version last seen, which that statement checks is still live; when a rebuild has switched (or
   * dropped it), the live version is read again and the statement retried.
   */
  @RequestHandler(GetSessionStats)
  async session(@Payload() q: RequestOf<typeof GetSessionStats>): Promise<SessionStatsView> {
    if (q.minPosition !== undefined)
      await waitForPosition(this.runner, q.minPosition, this.config.STATS_WAIT_MS);
    for (let attempt = 1; ; attempt++) {
      const target = await this.liveTarget(attempt > 1);
      try {
        const answer = await sessionStatsOfVersion(this.db, target, q);
        if (answer !== null) return answer;
      } catch (error) {
        if (!isDroppedRelation(error)) throw error;
      }
      if (attempt >= LIVE_READ_ATTEMPTS)
        throw new DomainError('SERVICE.UNAVAILABLE', 'The stats are switching to a rebuilt version; retry');
    }
  }

  @RequestHandler(GetUserStats)
  async user(@Payload() q: RequestOf<typeof GetUserStats>): Promise<UserStatsView> {
    return this.answer(q.minPosition, (sql, asOf) => userStats(sql, asOf, q));
  }

  @RequestHandler(GetUsage)
  async usage(@Payload() q: RequestOf<typeof GetUsage>): Promise<UsageStatsView> {
    return this.answer(q.minPosition, (sql, asOf) => usageStats(sql, asOf, q));
  }

  /** The live version (read again with `refresh`, or when never read). Throws when there is none. */
  private async liveTarget(refresh: boolean): Promise<VersionTarget> {
    if (this.live !== undefined && !refresh) return this.live;
    const live = await this.runner.liveVersion();
    if (!live) throw new Error(`Projection ${this.runner.projection.name} has no live version`);
    this.live = {
      projection: this.runner.projection.name,
      version: live.version,
      schema: live.schema,
      checkpoint: this.runner.checkpointOf(live.version),
    };
    return this.live;
  }

  private async answer<T>(
    minPosition: number | undefined,
    fn: (sql: Sql, asOf: number) => Promise<T>,
  ): Promise<T> {
    if (minPosition !== undefined) await waitForPosition(this.runner, minPosition, this.config.STATS_WAIT_MS);
    return this.runner.read(fn);
  }
}

/**
 * Resolves once `runner` has applied global position `min`: woken as soon as this process's runner
 * commits it (`ProjectionRunner.whenApplied`: the projector applies the live events itself), and reading
 * the checkpoint again every `pollMs` (ms) for one moved by another process (a rebuild CLI, another
 * instance). Throws SERVICE.UNAVAILABLE after `waitMs` (ms) with the position reached.
 */
export async function waitForPosition(
  runner: Pick<ProjectionRunner, 'position' | 'whenApplied'>,
  min: number,
  waitMs: number,
  pollMs = 100,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const asOf = await runner.position();
    if (asOf >= min) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new DomainError(
        'SERVICE.UNAVAILABLE',
        `The stats have not reached position ${min} within ${waitMs} ms (they are at ${asOf}); retry`,
        { min_position: min, as_of_position: asOf },
      );
    }
    if (await runner.whenApplied(min, Math.min(pollMs, left))) return;
  }
}
