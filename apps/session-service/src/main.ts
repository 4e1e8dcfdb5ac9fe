import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { DeadLetters } from '@threadline/event-store';
import { startServiceTransports } from '@threadline/messaging';
import { runService } from '@threadline/platform';
import { AppModule } from './app.module';
import { loadSessionServiceConfig } from './config';

runService('session-service', async () => {
  const config = loadSessionServiceConfig();
  const app = await NestFactory.create(AppModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  await startServiceTransports(app, config, {
    queue: 'session-service',
    events: { durable: 'session-service', deadLetters: app.get(DeadLetters) },
  });
  await app.init();
  app.get(Logger).log('session-service ready');
});
