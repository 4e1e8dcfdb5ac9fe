import { Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Db, nestDbLogger } from '@threadline/event-store';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config';
import { HealthController } from './health.controller';

@Injectable()
class DbLifecycle implements OnApplicationShutdown {
  constructor(@Inject(Db) private readonly db: Db) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

/**
 * `/health`, `/health/live` and `/health/ready` (`@nestjs/terminus`). Owns the gateway's only Postgres pool (2 connections, no migrations): the gateway reads
 * and writes nothing in Postgres itself; it only reports whether the database answers.
 */
@Module({
  // Failed checks are answered (503 naming them), not logged: a probe polled every few seconds would
  // fill the log while a service is down.
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [
    {
      provide: Db,
      useFactory: (config: GatewayConfig) =>
        Db.connect({
          url: config.DATABASE_URL,
          poolSize: 2,
          applicationName: 'gateway',
          logger: nestDbLogger(),
        }),
      inject: [GATEWAY_CONFIG],
    },
    DbLifecycle,
  ],
})
export class HealthModule {}
