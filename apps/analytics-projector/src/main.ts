import './instrument';
import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { migrateDatabase } from '@threadline/event-store';
import { createLogger, parseServiceCommand, runService, startServiceMetrics } from '@threadline/platform';
import { createAnalyticsProjector } from './app';
import { loadAnalyticsProjectorConfig } from './config';
import { analyticsMigrations } from './migrations';

// `node main.js` runs the projector; `node main.js migrate` applies the migrations and exits 0.
runService('analytics-projector', async () => {
  const command = parseServiceCommand();
  const config = loadAnalyticsProjectorConfig();
  if (command === 'migrate') {
    const applied = await migrateDatabase(
      config.DATABASE_URL,
      'analytics-projector-migrate',
      analyticsMigrations,
    );
    createLogger('analytics-projector', config.LOG_LEVEL).info({ applied }, 'migrations applied');
    return;
  }
  await startServiceMetrics('analytics-projector', config);
  const app = await createAnalyticsProjector(config, { shutdownHooks: true });
  app.get(Logger).log('analytics-projector ready');
});
