import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { LoggerModule } from 'nestjs-pino';
import { MessagingModule } from '@threadline/messaging';
import { AuthModule } from './auth/auth.module';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { HealthModule } from './health/health.module';
import { CORRELATION_HEADER } from './http/headers';
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
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        GatewayConfigModule.forRoot(config),
        LoggerModule.forRoot({
          pinoHttp: {
            name: 'gateway',
            level: config.LOG_LEVEL,
            // The correlation id (set by the onRequest hook) is the request id in every log line.
            genReqId: (req: IncomingMessage) => {
              const id = req.headers[CORRELATION_HEADER];
              return typeof id === 'string' ? id : randomUUID();
            },
            redact: {
              paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'],
              censor: '[redacted]',
            },
          },
        }),
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
