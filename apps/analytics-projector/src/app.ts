import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { Db, DeadLetters } from '@threadline/event-store';
import { startServiceTransports } from '@threadline/messaging';
import { AppModule } from './app.module';
import { ANALYTICS_DURABLE, type AnalyticsProjectorConfig } from './config';

/**
 * Boots the analytics-projector: migrates (when `MIGRATE_ON_START`), connects NATS, starts the JetStream
 * durable consumers (`analytics-projector-<streamType>`, poison events to `dead_letters`) and the
 * request/reply transport (queue group `analytics-projector`). Resolves once consuming; `app.close()`
 * stops it. Throws when Postgres or NATS is unreachable.
 */
export async function createAnalyticsProjector(
  config: AnalyticsProjectorConfig,
  opts: { shutdownHooks?: boolean } = {},
): Promise<NestFastifyApplication> {
  // Fastify is the project's HTTP platform; this service serves no HTTP routes (no listen()).
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    new FastifyAdapter(),
    {
      bufferLogs: true,
    },
  );
  app.useLogger(app.get(Logger));
  if (opts.shutdownHooks) app.enableShutdownHooks();
  await startServiceTransports(app, config, {
    queue: ANALYTICS_DURABLE,
    events: { durable: ANALYTICS_DURABLE, deadLetters: app.get(DeadLetters) },
    health: () => app.get(Db).query('SELECT 1'),
  });
  await app.init();
  return app;
}
