import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { migrateDatabase } from '@threadline/event-store';
import { createLogger, parseServiceCommand, runService } from '@threadline/platform';
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
  // An application context: the worker handles no requests and consumes no events (it is a client of
  // the services), so it needs neither an HTTP adapter nor microservice transports.
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  await app.init();
  app.get(Logger).log('cleanup-worker ready');
});
