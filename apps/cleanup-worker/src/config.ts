import { z } from 'zod';
import { BaseConfig, DEFAULT_METRICS_PORTS, loadConfig, MetricsConfig } from '@threadline/platform';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * cleanup-worker configuration (zod over env, validated at boot; see the README's table). It appends
 * no events of its own (it sends commands to the session-service, which does), so it runs no relay.
 *
 * - `SESSION_TIMEOUT_HOURS` (default 24, fractions allowed): an active session idle this long expires.
 * - `CLEANUP_INTERVAL_MINUTES` (default 60, fractions allowed): time between two passes of the leader.
 * - `RETENTION_DAYS` (default: unset = keep forever): ended and expired sessions are deleted this many
 *   days after they ended.
 * - `CLEANUP_BATCH_SIZE` (default 100, 1-1000): sessions listed per request of a pass.
 */
export const CleanupWorkerConfig = BaseConfig.extend({
  ...MetricsConfig(DEFAULT_METRICS_PORTS['cleanup-worker']).shape,
  SESSION_TIMEOUT_HOURS: z.coerce.number().positive().max(87_600).default(24),
  CLEANUP_INTERVAL_MINUTES: z.coerce.number().positive().max(10_080).default(60),
  RETENTION_DAYS: z
    .union([z.literal(''), z.coerce.number().positive().max(36_500)])
    .optional()
    .transform((v) => (v === '' || v === undefined ? null : v)),
  CLEANUP_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
});
export type CleanupWorkerConfig = z.infer<typeof CleanupWorkerConfig>;

/** Reads {@link CleanupWorkerConfig} from `env`; throws `ConfigError` listing every invalid variable. */
export const loadCleanupWorkerConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(CleanupWorkerConfig, env);

/** The policy in milliseconds: what a pass applies. `retentionMs` null keeps ended sessions forever. */
export interface CleanupSettings {
  timeoutMs: number;
  retentionMs: number | null;
  intervalMs: number;
  batchSize: number;
}

/** {@link CleanupSettings} of a parsed configuration (hours, minutes and days to ms, rounded). */
export const cleanupSettingsOf = (config: CleanupWorkerConfig): CleanupSettings => ({
  timeoutMs: Math.max(1, Math.round(config.SESSION_TIMEOUT_HOURS * HOUR_MS)),
  retentionMs: config.RETENTION_DAYS === null ? null : Math.round(config.RETENTION_DAYS * DAY_MS),
  intervalMs: Math.max(1, Math.round(config.CLEANUP_INTERVAL_MINUTES * 60_000)),
  batchSize: config.CLEANUP_BATCH_SIZE,
});
