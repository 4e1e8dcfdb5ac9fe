import { z } from 'zod';
import { BaseConfig, DEFAULT_METRICS_PORTS, loadConfig, MetricsConfig } from '@threadline/platform';

/** chat-log-service configuration (zod over env, validated at boot; see the README's table). */
export const ChatLogServiceConfig = BaseConfig.extend({
  ...MetricsConfig(DEFAULT_METRICS_PORTS['chat-log-service']).shape,
  /** Run the outbox relay in this process (a writer service); one instance is active per database. */
  RELAY_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /**
   * A JSON price table replacing the shipped `usage/prices.json` (same shape: USD per million
   * input / cached-input / output tokens per model, with sources); validated at boot.
   */
  PRICE_TABLE_FILE: z.string().min(1).optional(),
});
export type ChatLogServiceConfig = z.infer<typeof ChatLogServiceConfig>;

/** Reads {@link ChatLogServiceConfig} from `env`; throws `ConfigError` listing every invalid variable. */
export const loadChatLogServiceConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(ChatLogServiceConfig, env);
