import { type DynamicModule, Module } from '@nestjs/common';
import { Db, EventStore, ProjectionRunner } from '@threadline/event-store';
import { sessionMigrations } from '../migrations';
import { conversationEventRegistry } from './session-context';
import { SESSION_CONTEXT_RUNNER, SessionContextController } from './session-context.controller';
import { SessionContextProjection } from './session-context.projection';
import { type Clock, SESSION_CLOCK, SessionCommandHandler } from './session.command-handler';
import { SESSION_LIMITS, type SessionLimitsConfig, sessionLimitsOf } from './session-limits';
import { SessionController } from './session.controller';
import { StateModule } from '../state/state.module';
import { SessionsProjection } from './sessions.projection';

/**
 * The Session aggregate: its NATS commands and queries, the `sessions` read model (written inline
 * with each append) and each session's turn context (the `session_context` projection, fed from the
 * conversation events on JetStream). Needs the global `EventStoreModule` (Db, EventStore).
 * `migrations` are the read model's tables, run after the event store's. Import it with
 * {@link SessionModule.forRoot}, which supplies the per-user limit.
 */
@Module({
  imports: [StateModule],
  controllers: [SessionController, SessionContextController],
  providers: [
    SessionCommandHandler,
    SessionsProjection,
    {
      provide: SESSION_CONTEXT_RUNNER,
      useFactory: (db: Db, store: EventStore) =>
        new ProjectionRunner(db, store, conversationEventRegistry, new SessionContextProjection()),
      inject: [Db, EventStore],
    },
  ],
  exports: [SessionsProjection, SESSION_CONTEXT_RUNNER],
})
export class SessionModule {
  static migrations = sessionMigrations;

  /**
   * The module with the per-user limit of `config` (`MAX_SESSIONS_PER_USER`, `MAX_SESSIONS_POLICY`) and
   * the clock commands are stamped with (`SESSION_CLOCK`; default the system clock, tests pin it).
   */
  static forRoot(config: SessionLimitsConfig, opts: { clock?: Clock } = {}): DynamicModule {
    return {
      module: SessionModule,
      providers: [
        { provide: SESSION_LIMITS, useValue: sessionLimitsOf(config) },
        { provide: SESSION_CLOCK, useValue: opts.clock ?? ((() => new Date()) satisfies Clock) },
      ],
    };
  }
}
