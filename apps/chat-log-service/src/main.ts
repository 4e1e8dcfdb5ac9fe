import './instrument';
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { Db, DeadLetters, migrateDatabase } from '@threadline/event-store';
import { startServiceTransports } from '@threadline/messaging';
import { createLogger, parseServiceCommand, runService, startServiceMetrics } from '@threadline/platform';
import { AppModule } from './app.module';
import { loadChatLogServiceConfig } from './config';

// `node main.js` serves; `node main.js migrate` applies the migrations and exits 0.
runService('chat-log-service', async () => {
  const command = parseServiceCommand();
  const config = loadChatLogServiceConfig();
  if (command === 'migrate') {
    const applied = await migrateDatabase(
      config.DATABASE_URL,
      'chat-log-service-migrate',
      AppModule.migrations,
    );
    createLogger('chat-log-service', config.LOG_LEVEL).info({ applied }, 'migrations applied');
    return;
  }
  // Fastify adapter: the app is a NestJS hybrid (microservice transports only, no HTTP listener);
  // NestFactory.create without an adapter would require @nestjs/platform-express, which we do not ship.
  await startServiceMetrics('chat-log-service', config);
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  await startServiceTransports(app, config, {
    queue: 'chat-log-service',
    events: { durable: 'chat-log-service', deadLetters: app.get(DeadLetters) },
    health: () => app.get(Db).query('SELECT 1'),
  });
  await app.init();
  app.get(Logger).log('chat-log-service ready');
});
