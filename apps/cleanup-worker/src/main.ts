import './instrument';
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { Db, migrateDatabase } from '@threadline/event-store';
import { startServiceTransports } from '@threadline/messaging';
import { createLogger, parseServiceCommand, runService, startServiceMetrics } from '@threadline/platform';
import { AppModule } from './app.module';
import { loadCleanupWorkerConfig } from './config';

// `node main.js` runs the worker; `node main.js migrate` applies the migrations and exits 0.
runService('cleanup-worker', async () => {
  const command = parseServiceCommand();
  const config = loadCleanupWorkerConfig();
  if (command === 'migrate') {
    const applied = await migrateDatabase(
      config.DATABASE_URL,
      'cleanup-worker-migrate',
      AppModule.migrations,
    );
    createLogger('cleanup-worker', config.LOG_LEVEL).info({ applied }, 'migrations applied');
    return;
  }
  // A NestJS hybrid with no HTTP listener (Fastify adapter, as the session-service): core NATS serves
  // `RunSessionCleanup` in the queue group `cleanup-worker`; it consumes no events.
  await startServiceMetrics('cleanup-worker', config);
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  await startServiceTransports(app, config, {
    queue: 'cleanup-worker',
    health: () => app.get(Db).query('SELECT 1'),
  });
  await app.init();
  app.get(Logger).log('cleanup-worker ready');
});
