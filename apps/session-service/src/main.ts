import './instrument';
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { Db, DeadLetters, migrateDatabase } from '@threadline/event-store';
import { startServiceTransports } from '@threadline/messaging';
import { createLogger, parseServiceCommand, runService, startServiceMetrics } from '@threadline/platform';
import { AppModule } from './app.module';
import { loadSessionServiceConfig } from './config';
import { SessionModule } from './session/session.module';

// `node main.js` (or `serve`) serves; `node main.js migrate` creates the database when missing, applies
// the event store's and the session read models' migrations (advisory-locked) and exits 0.
runService('session-service', async () => {
  const command = parseServiceCommand();
  const config = loadSessionServiceConfig();
  if (command === 'migrate') {
    const applied = await migrateDatabase(
      config.DATABASE_URL,
      'session-service-migrate',
      SessionModule.migrations,
    );
    createLogger('session-service', config.LOG_LEVEL).info({ applied }, 'migrations applied');
    return;
  }
  // Fastify adapter: the app is a NestJS hybrid (microservice transports only, no HTTP listener);
  // NestFactory.create without an adapter would require @nestjs/platform-express, which we do not ship.
  await startServiceMetrics('session-service', config);
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  await startServiceTransports(app, config, {
    queue: 'session-service',
    events: { durable: 'session-service', deadLetters: app.get(DeadLetters) },
    health: () => app.get(Db).query('SELECT 1'),
  });
  await app.init();
  app.get(Logger).log('session-service ready');
});
