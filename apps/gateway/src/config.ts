import { z } from 'zod';
import { NewTenantId } from '@threadline/contracts';
import { BaseConfig, loadConfig, Port } from '@threadline/platform';
import { AuthConfig, assertAuthModeAllowed } from './auth/auth.config';
import { BrowserConfig } from './browser/browser.config';

/**
 * Gateway configuration (zod over env, validated at boot; see the README's table).
 *
 * - `PORT` / `HOST`: where the public HTTP API listens (default `0.0.0.0:3000`).
 * - `BODY_LIMIT_BYTES`: largest accepted request body in bytes (default 1 MiB); larger is 413.
 * - `DEFAULT_TENANT_ID`: the tenant of every request with `AUTH_MODE=none`, and of the first admin key.
 * - `AUTH_*`, `RATE_LIMIT_*`: authentication and rate limits (see {@link AuthConfig}).
 * - `AGENT_*`: the agent backend of `POST /query` (see {@link AgentConfig}).
 * - `HEALTH_SERVICES`: the services `GET /health` and `/health/ready` ping over NATS (comma-separated queue group names;
 *   default all four; empty: none, for a gateway run alone).
 * - `CORS_ORIGINS`: origins whose browser pages may call the API (see {@link BrowserConfig}).
 */
/** An unset variable and an empty one (`AGENT_BASE_URL=` in a compose file) both mean "not set". */
const unsetWhenEmpty = <S extends z.ZodType>(schema: S) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

/**
 * The agent backend of `POST /query` (seed 004):
 *
 * - `AGENT_BASE_URL`: base URL of an OpenAI-compatible API (`http://host:port/v1`); the gateway
 *   POSTs `${AGENT_BASE_URL}/chat/completions`. Unset: the built-in echo agent answers (offline).
 * - `AGENT_API_KEY`: sent as `Authorization: Bearer <key>` when set (never logged).
 * - `AGENT_MODEL`: the `model` asked for (default `gpt-4o-mini`).
 * - `AGENT_TIMEOUT_MS`: longest wait for the backend's whole reply, in ms (default 30000).
 * - `AGENT_HISTORY_TURNS`: how many of the session's latest turns are sent as context (default 10; 0 none).
 * - `AGENT_SYSTEM_PROMPT`: an optional system message put first.
 */
export const AgentConfig = z.object({
  AGENT_BASE_URL: unsetWhenEmpty(
    z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://localhost:8000/v1' })
      .transform((url) => url.replace(/\/+$/, '')),
  ),
  AGENT_API_KEY: unsetWhenEmpty(z.string().max(4096)),
  AGENT_MODEL: z.string().min(1).max(128).default('gpt-4o-mini'),
  AGENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  AGENT_HISTORY_TURNS: z.coerce.number().int().min(0).max(200).default(10),
  AGENT_SYSTEM_PROMPT: unsetWhenEmpty(z.string().max(100_000)),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

export const GatewayConfig = BaseConfig.extend({
  PORT: Port.default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1_048_576),
  DEFAULT_TENANT_ID: NewTenantId.default('default'),
  HEALTH_SERVICES: z
    .string()
    .regex(/^([A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*)?$/, 'comma-separated service names')
    .default('session-service,chat-log-service,analytics-projector,cleanup-worker')
    .transform((v) => (v === '' ? [] : v.split(','))),
  ...AgentConfig.shape,
  ...AuthConfig.shape,
  ...BrowserConfig.shape,
});
export type GatewayConfig = z.infer<typeof GatewayConfig>;

/**
 * Parses the gateway's env; throws `ConfigError` naming every invalid variable, or refusing
 * `AUTH_MODE=none` with `NODE_ENV=production`.
 */
export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env): GatewayConfig => {
  const config = loadConfig(GatewayConfig, env);
  assertAuthModeAllowed(config);
  return config;
};

/** DI token of the parsed {@link GatewayConfig}. */
export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
