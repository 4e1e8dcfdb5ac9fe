import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { runService } from '@threadline/platform';
import { loadGatewayConfig } from './config';
import { createGateway } from './gateway';

runService('gateway', async () => {
  const config = loadGatewayConfig();
  const app = await createGateway(config);
  await app.listen({ port: config.PORT, host: config.HOST });
  app.get(Logger).log(`gateway listening on http://${config.HOST}:${config.PORT} (docs at /docs)`);
});
