import type { z } from 'zod';
import { BaseConfig, loadConfig } from '@threadline/platform';

/** Durable consumer base name: its JetStream consumers are `analytics-projector-<streamType>`. */
export const ANALYTICS_DURABLE = 'analytics-projector';

/** analytics-projector configuration (zod over env, validated at boot; see the README's table). */
export const AnalyticsProjectorConfig = BaseConfig;
export type AnalyticsProjectorConfig = z.infer<typeof AnalyticsProjectorConfig>;

export const loadAnalyticsProjectorConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(AnalyticsProjectorConfig, env);

/** What the projections CLI reads from env: the database only. */
export const ProjectionsCliConfig = BaseConfig.pick({ DATABASE_URL: true, MIGRATE_ON_START: true });
export type ProjectionsCliConfig = z.infer<typeof ProjectionsCliConfig>;

export const loadProjectionsCliConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(ProjectionsCliConfig, env);
