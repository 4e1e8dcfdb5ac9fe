import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureDatabase } from '@threadline/event-store';
import { BaseConfig, ConfigError, loadConfig } from '@threadline/platform';
import { SERVICES } from '@threadline/stack';

/**
 * `npm run migrate` (and `tools/migrate.sh`, which `npm start` runs): creates the database of
 * `DATABASE_URL` when missing, then runs `node dist/apps/<service>/src/main.js migrate` for each
 * service that owns tables, in order; each applies the event store's migrations and its own read
 * models' under the migration advisory lock, so this is safe while services run or start.
 * Exit code: 0, or 1 when the configuration is invalid, a build is missing or a service fails
 * (a service still running after {@link MIGRATE_TIMEOUT_MS} counts as failed).
 */

/** Longest one service's migration may take, ms. */
export const MIGRATE_TIMEOUT_MS = 120_000;

const ROOT = resolve(__dirname, '../../..');
const MigrateConfig = BaseConfig.pick({ DATABASE_URL: true });

async function main(): Promise<number> {
  const config = loadConfig(MigrateConfig);
  await ensureDatabase(config.DATABASE_URL);
  // Every service owns tables (the gateway's are its API keys and rate limits): migrated in start order.
  for (const service of SERVICES) {
    const entry = join(ROOT, 'dist/apps', service, 'src/main.js');
    if (!existsSync(entry)) {
      process.stderr.write(`migrate: ${entry} is missing: run npm run build first\n`);
      return 1;
    }
    process.stdout.write(`migrate: ${service}\n`);
    const run = spawnSync(process.execPath, [entry, 'migrate'], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: config.DATABASE_URL },
      timeout: MIGRATE_TIMEOUT_MS,
      killSignal: 'SIGTERM',
    });
    if (run.status !== 0) {
      const why = run.signal
        ? `stopped by ${run.signal} after ${MIGRATE_TIMEOUT_MS} ms (does its main.js support "migrate"?)`
        : (run.error?.message ?? `exit code ${run.status}`);
      process.stderr.write(`migrate: ${service} failed: ${why}\n`);
      return 1;
    }
  }
  process.stdout.write('migrate: database migrated\n');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      error instanceof ConfigError
        ? `migrate: ${error.message}\n`
        : `migrate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
