import type { z } from 'zod';
import { BaseConfig, loadConfig } from '@threadline/platform';

/**
 * cleanup-worker configuration (zod over env, validated at boot; see the README's table). It appends
 * no events of its own (it sends commands to the services that do), so it runs no relay.
 */
export const CleanupWorkerConfig = BaseConfig;
export type CleanupWorkerConfig = z.infer<typeof CleanupWorkerConfig>;

/** Reads {@link CleanupWorkerConfig} from `env`; throws `ConfigError` listing every invalid variable. */
export const loadCleanupWorkerConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(CleanupWorkerConfig, env);
