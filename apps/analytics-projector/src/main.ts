import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { runService } from '@threadline/platform';
import { createAnalyticsProjector } from './app';
import { loadAnalyticsProjectorConfig } from './config';

runService('analytics-projector', async () => {
  const config = loadAnalyticsProjectorConfig();
  const app = await createAnalyticsProjector(config, { shutdownHooks: true });
  app.get(Logger).log('analytics-projector ready');
});
