import { z } from 'zod';
import { TenantId } from '@threadline/contracts';
import { BaseConfig, loadConfig, Port } from '@threadline/platform';

/**
 * Gateway configuration (zod over env, validated at boot; see the README's table).
 *
 * - `PORT` / `HOST`: where the public HTTP API listens (default `0.0.0.0:3000`).
 * - `BODY_LIMIT_BYTES`: largest accepted request body in bytes (default 1 MiB); larger is 413.
 * - `DEFAULT_TENANT_ID`: the tenant every request acts for until API keys exist (see `tenant/`).
 */
export const GatewayConfig = BaseConfig.extend({
  PORT: Port.default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1_048_576),
  DEFAULT_TENANT_ID: TenantId.default('default'),
});
export type GatewayConfig = z.infer<typeof GatewayConfig>;

/** Parses the gateway's env; throws `ConfigError` naming every invalid variable. */
export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env): GatewayConfig =>
  loadConfig(GatewayConfig, env);

/** DI token of the parsed {@link GatewayConfig}. */
export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
