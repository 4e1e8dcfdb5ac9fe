import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { createLogger } from '@threadline/platform';
import { AppModule } from '../app.module';
import { GatewayConfig } from '../config';
import { GATEWAY_DTOS } from '../gateway';
import { buildOpenApiDocument, withFeatureDtos } from './openapi';

/**
 * The OpenAPI document the gateway serves at `/docs/json`, built in-process without Postgres or NATS:
 * Nest's preview mode registers the modules and controllers (their routes and nestjs-zod DTOs) but
 * instantiates no provider, so nothing connects. The configuration is the defaults (nothing in the
 * document depends on it). Resolves to the document as {@link canonicalJson} text. Throws when a
 * module cannot be registered (the same errors the gateway's boot would give).
 */
export async function renderOpenApiDocument(): Promise<string> {
  const config = GatewayConfig.parse({ LOG_LEVEL: 'silent' });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, createLogger('gateway', 'silent')),
    new FastifyAdapter(),
    { preview: true, logger: false, abortOnError: false },
  );
  try {
    return canonicalJson(buildOpenApiDocument(app, withFeatureDtos(GATEWAY_DTOS)));
  } finally {
    await app.close();
  }
}

/**
 * `value` as JSON with every object's keys sorted (arrays keep their order), two-space indented and
 * ending in a newline: the same document gives the same bytes whatever the order modules register in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([key, v]) => [key, sortKeys(v)]));
}
