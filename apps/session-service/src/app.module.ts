import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { traceFields } from '@threadline/platform';
import { EventStoreModule } from '@threadline/event-store';
import { JetStreamPublisher, MessagingModule } from '@threadline/messaging';
import type { SessionServiceConfig } from './config';
import { ErasureModule } from './erasure/erasure.module';
import { SessionModule } from './session/session.module';
import { StateModule } from './state/state.module';

/** The session-service: Session aggregate (`session:<tenant>:<id>` streams) and the `sessions` read model. */
@Module({})
export class AppModule {
  static forRoot(config: SessionServiceConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // Every line carries the active span's trace_id and span_id when tracing is on.
        LoggerModule.forRoot({
          pinoHttp: { name: 'session-service', level: config.LOG_LEVEL, mixin: traceFields },
        }),
        MessagingModule.forRoot({ settings: config, name: 'session-service' }),
        EventStoreModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'session-service',
          migrations: SessionModule.migrations,
          migrateOnStart: config.MIGRATE_ON_START,
          ...(config.RELAY_ENABLED ? { relay: { publisher: JetStreamPublisher } } : {}),
        }),
        SessionModule.forRoot(config),
        StateModule,
        ErasureModule.forRoot({ stream: config.NATS_STREAM, prefix: config.NATS_SUBJECT_PREFIX }),
      ],
    };
  }
}
