import './instrument';
import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { migrateDatabase } from '@threadline/event-store';
import { createLogger, parseServiceCommand, runService } from '@threadline/platform';
import { AuthModule } from './auth/auth.module';
import { loadGatewayConfig } from './config';
import { createGateway } from './gateway';

// `node main.js` (or `serve`) serves; `node main.js migrate` creates the database when missing, applies
// the event store's and the gateway's migrations (API keys, secrets, rate limits) and exits 0.
runService('gateway', async () => {
  const command = parseServiceCommand();
  const config = loadGatewayConfig();
  if (command === 'migrate') {
    const applied = await migrateDatabase(config.DATABASE_URL, 'gateway-migrate', AuthModule.migrations);
    createLogger('gateway', config.LOG_LEVEL).info({ applied }, 'migrations applied');
    return;
  }
  const app = await createGateway(config);
  await app.listen({ port: config.PORT, host: config.HOST });
  app.get(Logger).log(`gateway listening on http://${config.HOST}:${config.PORT} (docs at /docs)`);
});
