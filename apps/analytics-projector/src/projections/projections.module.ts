import { Module } from '@nestjs/common';
import { EventRegistry } from '@threadline/contracts';
import { Db, EventStore, ProjectionRunner } from '@threadline/event-store';
import {
  AnalyticsEventsController,
  SESSION_COUNTS_RUNNER,
  USAGE_STATS_RUNNER,
} from './analytics-events.controller';
import { analyticsEventRegistry } from './projections';
import { SessionCountsProjection } from './session-counts/session-counts.projection';
import { StatsController } from './usage-stats/stats.controller';
import { UsageStatsProjection } from './usage-stats/usage-stats.projection';

/**
 * The analytics projections: one `ProjectionRunner` each, fed by one JetStream consumer controller;
 * the stats queries are answered from `usage_stats`.
 */
@Module({
  controllers: [AnalyticsEventsController, StatsController],
  providers: [
    { provide: EventRegistry, useFactory: analyticsEventRegistry },
    {
      provide: SESSION_COUNTS_RUNNER,
      useFactory: (db: Db, store: EventStore, registry: EventRegistry) =>
        new ProjectionRunner(db, store, registry, new SessionCountsProjection()),
      inject: [Db, EventStore, EventRegistry],
    },
    {
      provide: USAGE_STATS_RUNNER,
      useFactory: async (db: Db, store: EventStore, registry: EventRegistry) => {
        const runner = new ProjectionRunner(db, store, registry, new UsageStatsProjection());
        // The live version exists before the first event or query (version 1, empty, on a new database).
        await runner.ensureLive();
        return runner;
      },
      inject: [Db, EventStore, EventRegistry],
    },
  ],
  exports: [SESSION_COUNTS_RUNNER, USAGE_STATS_RUNNER],
})
export class ProjectionsModule {}
