import { Module } from '@nestjs/common';
import { EventRegistry } from '@threadline/contracts';
import { Db, EventStore, ProjectionRunner } from '@threadline/event-store';
import { analyticsEventRegistry } from './projections';
import { SESSION_COUNTS_RUNNER, SessionCountsController } from './session-counts/session-counts.controller';
import { SessionCountsProjection } from './session-counts/session-counts.projection';

/** The analytics projections: one `ProjectionRunner` and one JetStream consumer controller each. */
@Module({
  controllers: [SessionCountsController],
  providers: [
    { provide: EventRegistry, useFactory: analyticsEventRegistry },
    {
      provide: SESSION_COUNTS_RUNNER,
      useFactory: (db: Db, store: EventStore, registry: EventRegistry) =>
        new ProjectionRunner(db, store, registry, new SessionCountsProjection()),
      inject: [Db, EventStore, EventRegistry],
    },
  ],
  exports: [SESSION_COUNTS_RUNNER],
})
export class ProjectionsModule {}
