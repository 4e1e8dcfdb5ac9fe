import { z } from 'zod';
import { BaseConfig, loadConfig } from '@threadline/platform';
import { SessionLimitsConfig } from './session/session-limits';

/** session-service configuration (zod over env, validated at boot; see the README's table). */
export const SessionServiceConfig = BaseConfig.extend({
  ...SessionLimitsConfig.shape,
  RELAY_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
});
export type SessionServiceConfig = z.infer<typeof SessionServiceConfig>;

export const loadSessionServiceConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(SessionServiceConfig, env);
