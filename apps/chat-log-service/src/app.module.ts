import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { traceFields } from '@threadline/platform';
import type { MigrationInterface } from 'typeorm';
import { EventStoreModule } from '@threadline/event-store';
import { JetStreamPublisher, MessagingModule } from '@threadline/messaging';
import type { ChatLogServiceConfig } from './config';
import { ConversationModule } from './conversation/conversation.module';

/**
 * The chat-log-service: the conversation of each session (`conversation:<sessionId>` streams) and the
 * `turns` read model (ARCHITECTURE.md, "Services"). This issue gives it its runtime only: the event
 * store (migrated at start), NATS (request/reply in the `chat-log-service` queue group, JetStream
 * consumers), the outbox relay, and the conversation module (turns, usage and cost, `turns` read model).
 */
@Module({})
export class AppModule {
  /** The service's own read-model migrations, run after the event store's. */
  static readonly migrations: (new () => MigrationInterface)[] = [...ConversationModule.migrations];

  static forRoot(config: ChatLogServiceConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // Every line carries the active span's trace_id and span_id when tracing is on.
        LoggerModule.forRoot({
          pinoHttp: { name: 'chat-log-service', level: config.LOG_LEVEL, mixin: traceFields },
        }),
        MessagingModule.forRoot({ settings: config, name: 'chat-log-service' }),
        EventStoreModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'chat-log-service',
          migrations: AppModule.migrations,
          migrateOnStart: config.MIGRATE_ON_START,
          ...(config.RELAY_ENABLED ? { relay: { publisher: JetStreamPublisher } } : {}),
        }),
        ConversationModule.forRoot({
          priceTableFile: config.PRICE_TABLE_FILE,
          requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
        }),
      ],
    };
  }
}
