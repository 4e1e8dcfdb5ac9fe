import { type DynamicModule, Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { traceFields } from '@threadline/platform';
import { EventStoreModule } from '@threadline/event-store';
import { MessagingModule } from '@threadline/messaging';
import { ANALYTICS_CONFIG, type AnalyticsProjectorConfig } from './config';
import { analyticsMigrations } from './migrations';
import { ProjectionsModule } from './projections/projections.module';

/**
 * The analytics-projector: consumes events from JetStream into the analytics read models and answers
 * the stats queries over NATS request/reply. It writes no events, so it runs no relay.
 */
@Global()
@Module({})
class AnalyticsConfigModule {
  static forRoot(config: AnalyticsProjectorConfig): DynamicModule {
    return {
      module: AnalyticsConfigModule,
      providers: [{ provide: ANALYTICS_CONFIG, useValue: config }],
      exports: [ANALYTICS_CONFIG],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(config: AnalyticsProjectorConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AnalyticsConfigModule.forRoot(config),
        // Every line carries the active span's trace_id and span_id when tracing is on.
        LoggerModule.forRoot({
          pinoHttp: { name: 'analytics-projector', level: config.LOG_LEVEL, mixin: traceFields },
        }),
        MessagingModule.forRoot({ settings: config, name: 'analytics-projector' }),
        EventStoreModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'analytics-projector',
          migrations: analyticsMigrations,
          migrateOnStart: config.MIGRATE_ON_START,
        }),
        ProjectionsModule,
      ],
    };
  }
}
