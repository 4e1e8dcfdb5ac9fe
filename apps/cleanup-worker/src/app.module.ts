import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { MigrationInterface } from 'typeorm';
import { EventStoreModule } from '@threadline/event-store';
import { MessagingModule } from '@threadline/messaging';
import type { CleanupWorkerConfig } from './config';

/**
 * The cleanup-worker: expiry and retention policies (ARCHITECTURE.md, "Services"). This issue gives it
 * its runtime only: the event store connection (migrated at start; it will hold the leader lock) and
 * NATS (the `RequestClient` it will send ExpireSession / DeleteSession commands with). No relay: it
 * appends nothing itself. The policies come in a later issue.
 */
@Module({})
export class AppModule {
  /** The worker's own migrations, run after the event store's (none yet). */
  static readonly migrations: (new () => MigrationInterface)[] = [];

  static forRoot(config: CleanupWorkerConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({ pinoHttp: { name: 'cleanup-worker', level: config.LOG_LEVEL } }),
        MessagingModule.forRoot({ settings: config, name: 'cleanup-worker' }),
        EventStoreModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'cleanup-worker',
          migrations: AppModule.migrations,
          migrateOnStart: config.MIGRATE_ON_START,
        }),
      ],
    };
  }
}
