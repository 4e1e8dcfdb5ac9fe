import 'reflect-metadata';
import { runProjectionsCli } from '@threadline/event-store';
import { ConfigError } from '@threadline/platform';
import { ANALYTICS_DURABLE, loadProjectionsCliConfig } from './config';
import { analyticsMigrations } from './migrations';
import { analyticsEventRegistry, analyticsProjections } from './projections/projections';

/**
 * The projections CLI of the analytics projector (`npm run projections -- <command>`):
 * list, status, rebuild [name], dead-letters, retry <consumer>. Reads DATABASE_URL and
 * MIGRATE_ON_START from env (zod); exits with the command's code.
 */
async function main(): Promise<number> {
  let config;
  try {
    config = loadProjectionsCliConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`projections: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  return runProjectionsCli(process.argv.slice(2), {
    projections: analyticsProjections(),
    registry: analyticsEventRegistry(),
    databaseUrl: config.DATABASE_URL,
    migrations: analyticsMigrations,
    migrate: config.MIGRATE_ON_START,
    durable: ANALYTICS_DURABLE,
    programName: 'projections',
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `projections: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
