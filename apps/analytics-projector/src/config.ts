import { z } from 'zod';
import { BaseConfig, DEFAULT_METRICS_PORTS, loadConfig, MetricsConfig } from '@threadline/platform';

/** Durable consumer base name: its JetStream consumers are `analytics-projector-<streamType>`. */
export const ANALYTICS_DURABLE = 'analytics-projector';

/**
 * analytics-projector configuration (zod over env, validated at boot; see the README's table).
 *
 * - `STATS_WAIT_MS`: longest wait of a stats query with `min_position` for the projection to reach it,
 *   in ms (default 3000; keep it below the gateway's `REQUEST_TIMEOUT_MS`, default 5000, so the
 *   client gets the 503 that says why rather than a timeout).
 */
export const AnalyticsProjectorConfig = BaseConfig.extend({
  ...MetricsConfig(DEFAULT_METRICS_PORTS['analytics-projector']).shape,
  STATS_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(3000),
});
export type AnalyticsProjectorConfig = z.infer<typeof AnalyticsProjectorConfig>;

/** DI token of the parsed {@link AnalyticsProjectorConfig}. */
export const ANALYTICS_CONFIG = Symbol('ANALYTICS_CONFIG');

export const loadAnalyticsProjectorConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(AnalyticsProjectorConfig, env);

/** What the projections CLI reads from env: the database only. */
export const ProjectionsCliConfig = BaseConfig.pick({ DATABASE_URL: true, MIGRATE_ON_START: true });
export type ProjectionsCliConfig = z.infer<typeof ProjectionsCliConfig>;

export const loadProjectionsCliConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(ProjectionsCliConfig, env);
