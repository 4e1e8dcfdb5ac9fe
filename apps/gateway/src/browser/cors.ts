import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { BrowserConfig } from './browser.config';

/** Request headers a browser page may send (the API's own, besides the CORS-safelisted ones). */
export const CORS_ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'idempotency-key',
  'if-match',
  'x-correlation-id',
] as const;

/** Response headers a browser page may read (besides the CORS-safelisted ones). */
export const CORS_EXPOSED_HEADERS = [
  'etag',
  'location',
  'retry-after',
  'ratelimit-limit',
  'ratelimit-remaining',
  'x-correlation-id',
  'x-threadline-position',
] as const;

/** How long a browser may cache a preflight answer, seconds. */
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * The `@fastify/cors` options of `CORS_ORIGINS`: a request from a listed origin gets
 * `Access-Control-Allow-Origin: <origin>` (and `Vary: Origin`), any other origin gets no CORS
 * header, so the browser refuses to hand it the answer. Preflights (`OPTIONS` with
 * `Access-Control-Request-Method`) are answered 204 by the plugin's `onRequest` hook, before the
 * auth guard: a preflight carries no credentials. No cookies are used, so no `credentials`.
 */
export function corsOptions(config: BrowserConfig): FastifyCorsOptions {
  return {
    origin: config.CORS_ORIGINS.length === 0 ? false : [...config.CORS_ORIGINS],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: [...CORS_ALLOWED_HEADERS],
    exposedHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: CORS_MAX_AGE_SECONDS,
    strictPreflight: true,
  };
}

/** Registers CORS on the gateway's Fastify instance (before `app.init()`); nothing when no origin is allowed. */
export async function registerCors(app: NestFastifyApplication, config: BrowserConfig): Promise<void> {
  if (config.CORS_ORIGINS.length === 0) return;
  await app.register(cors, corsOptions(config));
}
