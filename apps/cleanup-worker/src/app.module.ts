import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { traceFields } from '@threadline/platform';
import type { MigrationInterface } from 'typeorm';
import { EventStoreModule } from '@threadline/event-store';
import { MessagingModule } from '@threadline/messaging';
import { CleanupModule } from './cleanup/cleanup.module';
import { type CleanupWorkerConfig, cleanupSettingsOf } from './config';

/**
 * The cleanup-worker: expiry and retention policies (ARCHITECTURE.md, "Services"). Postgres holds its
 * locks only (leader lock, pass lock; it owns no tables); NATS carries its commands and queries to the
 * session-service and serves `RunSessionCleanup`. No relay: it appends nothing itself. `clock` pins
 * the time passes run against (tests).
 */
@Module({})
export class AppModule {
  /** The worker's own migrations, run after the event store's (none: it keeps no tables). */
  static readonly migrations: (new () => MigrationInterface)[] = [];

  static forRoot(config: CleanupWorkerConfig, opts: { clock?: () => Date } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // Every line carries the active span's trace_id and span_id when tracing is on.
        LoggerModule.forRoot({
          pinoHttp: { name: 'cleanup-worker', level: config.LOG_LEVEL, mixin: traceFields },
        }),
        MessagingModule.forRoot({ settings: config, name: 'cleanup-worker' }),
        EventStoreModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'cleanup-worker',
          migrations: AppModule.migrations,
          migrateOnStart: config.MIGRATE_ON_START,
        }),
        CleanupModule.forRoot(cleanupSettingsOf(config), opts),
      ],
    };
  }
}
