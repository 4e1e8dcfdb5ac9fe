import { z } from 'zod';
import { BaseConfig, DEFAULT_METRICS_PORTS, loadConfig, MetricsConfig } from '@threadline/platform';
import { SessionLimitsConfig } from './session/session-limits';

/** session-service configuration (zod over env, validated at boot; see the README's table). */
export const SessionServiceConfig = BaseConfig.extend({
  ...MetricsConfig(DEFAULT_METRICS_PORTS['session-service']).shape,
  ...SessionLimitsConfig.shape,
  RELAY_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
});
export type SessionServiceConfig = z.infer<typeof SessionServiceConfig>;

export const loadSessionServiceConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(SessionServiceConfig, env);
