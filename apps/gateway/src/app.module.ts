import { type DynamicModule, Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { MessagingModule } from '@threadline/messaging';
import type { Logger as PinoRootLogger } from '@threadline/platform';
import { AuthModule } from './auth/auth.module';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { HealthModule } from './health/health.module';
import { CleanupModule } from './cleanup/cleanup.module';
import { QueryModule } from './query/query.module';
import { SessionsController } from './sessions/sessions.controller';
import { UserSessionsController } from './sessions/user-sessions.controller';
import { StateModule } from './state/state.module';
import { StatsModule } from './stats/stats.module';
import { TenantResolver } from './tenant/tenant.provider';
import { TurnsModule } from './turns/turns.module';
import { UsersModule } from './users/users.module';

@Global()
@Module({})
class GatewayConfigModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: GatewayConfigModule,
      providers: [{ provide: GATEWAY_CONFIG, useValue: config }, TenantResolver],
      exports: [GATEWAY_CONFIG, TenantResolver],
    };
  }
}

/**
 * The gateway: the public HTTP API. It validates every request, sends commands and queries to the
 * services over NATS (`RequestClient`), and keeps no session state; in Postgres it owns only the
 * API keys, the user-token secret and the rate-limit counters (`auth/`), and `/health` probes it.
 */
@Module({})
export class AppModule {
  /** `logger`: the process's root logger (`createLogger`), the application's and the access log's. */
  static forRoot(config: GatewayConfig, logger: PinoRootLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        GatewayConfigModule.forRoot(config),
        // nestjs-pino makes `logger` the application's logger; its pino-http middleware is mounted on no
        // route: the access log is a Fastify hook (`http/access-log.ts`, see there why).
        LoggerModule.forRoot({ pinoHttp: { logger }, forRoutes: [] }),
        MessagingModule.forRoot({ settings: config, name: 'gateway' }),
        AuthModule.forRoot(config),
        HealthModule,
        TurnsModule,
        StateModule,
        QueryModule,
        CleanupModule,
        StatsModule,
        UsersModule,
      ],
      controllers: [SessionsController, UserSessionsController],
    };
  }
}
