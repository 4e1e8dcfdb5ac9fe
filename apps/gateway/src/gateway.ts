import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { createLogger, enableProcessMetrics, tracingEnabled } from '@threadline/platform';
import { AppModule } from './app.module';
import type { GatewayConfig } from './config';
import { registerCors } from './browser/cors';
import { registerDashboard } from './browser/dashboard';
import { accessLogHook } from './http/access-log';
import { correlationIdHook, requestIdOf } from './http/headers';
import { httpMetricsHook, registerMetricsRoute } from './http/http-metrics';
import { httpSpanHook } from './http/http-tracing';
import { HealthReportDto, ReadinessReportDto } from './health/health.controller';
import { ProblemDetailsDto, setupOpenApi } from './http/openapi';
import { ProblemDetailsFilter } from './http/problem-details.filter';
import { RequestValidationPipe } from './http/validation.pipe';
import { SESSION_DTOS } from './sessions/sessions.dto';

/** The DTOs the gateway itself documents (the feature modules add theirs in `setupOpenApi`). */
export const GATEWAY_DTOS = [...SESSION_DTOS, ProblemDetailsDto, HealthReportDto, ReadinessReportDto];

/**
 * Builds the gateway application (not yet listening): Fastify with `BODY_LIMIT_BYTES`, the
 * correlation-id, access-log and HTTP-metrics hooks, `GET /metrics` (Prometheus), the zod validation pipe, the problem-details filter and the OpenAPI docs at
 * `/docs` and `/docs/json`. Throws when NATS or Postgres is unreachable at boot.
 * `main.ts` listens on `PORT`; tests listen on port 0.
 */
export async function createGateway(config: GatewayConfig): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Ids may be 128 characters (longer is a 400 from the params schema, not a 404 from the router).
    routerOptions: { maxParamLength: 512 },
    // HEAD /sessions/{id} is its own route; Fastify's automatic HEAD-for-every-GET would clash with it.
    exposeHeadRoutes: false,
    // The request id is the correlation id (X-Correlation-Id or a new UUID): logs and replies share it.
    genReqId: requestIdOf,
  });
  const logger = createLogger('gateway', config.LOG_LEVEL);
  enableProcessMetrics('gateway');
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, logger), adapter, {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  // Browser clients: CORS for CORS_ORIGINS, and the dashboard's static assets at /dashboard/ (no auth).
  await registerCors(app, config);
  if (!(await registerDashboard(app)))
    logger.warn('dashboard not built (npm run build): /dashboard is not served');
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', correlationIdHook);
  fastify.addHook('onResponse', accessLogHook(logger));
  fastify.addHook('onResponse', httpMetricsHook());
  registerMetricsRoute(fastify);
  if (tracingEnabled()) fastify.addHook('preHandler', httpSpanHook);
  app.useGlobalPipes(new RequestValidationPipe());
  app.useGlobalFilters(new ProblemDetailsFilter());
  setupOpenApi(app, GATEWAY_DTOS);
  await app.init();
  return app;
}
