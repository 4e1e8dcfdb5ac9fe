import { Logger, Module } from '@nestjs/common';
import { EventRegistry } from '@threadline/contracts';
import { Db, EventStore, ProjectionRunner } from '@threadline/event-store';
import { AnalyticsEventsController, USAGE_STATS_RUNNER } from './analytics-events.controller';
import { analyticsEventRegistry } from './projections';
import { StatsController } from './usage-stats/stats.controller';
import { UsageStatsProjection } from './usage-stats/usage-stats.projection';

/**
 * The analytics projection `usage_stats`: its `ProjectionRunner`, fed by the JetStream consumer
 * controller, and the stats queries it answers.
 */
@Module({
  controllers: [AnalyticsEventsController, StatsController],
  providers: [
    { provide: EventRegistry, useFactory: analyticsEventRegistry },
    {
      provide: USAGE_STATS_RUNNER,
      useFactory: async (db: Db, store: EventStore, registry: EventRegistry) => {
        const runner = new ProjectionRunner(db, store, registry, new UsageStatsProjection());
        // The live version exists before the first event or query (version 1, empty, on a new database);
        // one built by an older revision of usage_stats is rebuilt first (boot waits for it).
        await runner.ensureLive({
          onStaleRevision: (live, wanted) =>
            new Logger('ProjectionsModule').warn(
              `usage_stats: the live version is of revision ${live}, this code needs ${wanted}: rebuilding it before serving`,
            ),
        });
        return runner;
      },
      inject: [Db, EventStore, EventRegistry],
    },
  ],
  exports: [USAGE_STATS_RUNNER],
})
export class ProjectionsModule {}
