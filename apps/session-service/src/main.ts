import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { z } from 'zod';
import { DeadLetters, Db, ensureDatabase, eventStoreMigrations, migrate } from '@threadline/event-store';
import { startServiceTransports } from '@threadline/messaging';
import { ConfigError, createLogger, runService } from '@threadline/platform';
import { AppModule } from './app.module';
import { loadSessionServiceConfig } from './config';
import { SessionModule } from './session/session.module';

// `node main.js` (or `serve`) serves; `node main.js migrate` creates the database when missing, applies
// the event store's and the `sessions` read model's migrations (advisory-locked) and exits 0.
const Command = z.enum(['serve', 'migrate']).default('serve');

runService('session-service', async () => {
  const command = Command.safeParse(process.argv[2]);
  if (!command.success)
    throw new ConfigError([`command "${process.argv[2]}": unknown, use "serve" (default) or "migrate"`]);
  const config = loadSessionServiceConfig();
  if (command.data === 'migrate') {
    await ensureDatabase(config.DATABASE_URL);
    const db = await Db.connect({
      url: config.DATABASE_URL,
      poolSize: 2,
      applicationName: 'session-service-migrate',
      migrations: [...eventStoreMigrations, ...SessionModule.migrations],
    });
    try {
      createLogger('session-service', config.LOG_LEVEL).info(
        { applied: await migrate(db) },
        'migrations applied',
      );
    } finally {
      await db.close();
    }
    return;
  }
  // Fastify adapter: the app is a NestJS hybrid (microservice transports only, no HTTP listener);
  // NestFactory.create without an adapter would require @nestjs/platform-express, which we do not ship.
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  await startServiceTransports(app, config, {
    queue: 'session-service',
    events: { durable: 'session-service', deadLetters: app.get(DeadLetters) },
  });
  await app.init();
  app.get(Logger).log('session-service ready');
});
