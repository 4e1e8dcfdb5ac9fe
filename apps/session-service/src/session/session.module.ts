import { Module } from '@nestjs/common';
import { sessionMigrations } from '../migrations';
import { type Clock, SESSION_CLOCK, SessionCommandHandler } from './session.command-handler';
import { SessionController } from './session.controller';
import { SessionsProjection } from './sessions.projection';

/**
 * The Session aggregate: its NATS commands and queries, and the `sessions` read model (written inline
 * with each append). Needs the global `EventStoreModule` (Db, EventStore).
 * `migrations` are the read model's tables, run after the event store's.
 */
@Module({
  controllers: [SessionController],
  providers: [
    SessionCommandHandler,
    SessionsProjection,
    { provide: SESSION_CLOCK, useValue: (() => new Date()) satisfies Clock },
  ],
  exports: [SessionsProjection],
})
export class SessionModule {
  static migrations = sessionMigrations;
}
