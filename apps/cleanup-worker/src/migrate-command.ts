import type { MigrationInterface } from 'typeorm';
import { z } from 'zod';
import { Db, ensureDatabase, eventStoreMigrations, migrate } from '@threadline/event-store';
import { ConfigError } from '@threadline/platform';

/** The sub-commands of a service's `main.js`: nothing (or `serve`) runs the service, `migrate` migrates and exits. */
export const ServiceCommand = z.enum(['serve', 'migrate']).default('serve');
export type ServiceCommand = z.infer<typeof ServiceCommand>;

/**
 * Parses `argv[2]` of `node main.js [serve|migrate]`.
 * @throws ConfigError naming the accepted commands when the argument is anything else.
 */
export function parseServiceCommand(argv: readonly string[] = process.argv): ServiceCommand {
  const parsed = ServiceCommand.safeParse(argv[2]);
  if (!parsed.success)
    throw new ConfigError([`command "${argv[2]}": unknown, use "serve" (default) or "migrate"`]);
  return parsed.data;
}

/**
 * `node main.js migrate`: creates the database of `url` when missing, then applies the event store's
 * migrations and `migrations` (the service's read models) under the migration advisory lock, so it is
 * safe to run while other services migrate. Returns the names of the migrations it applied.
 * @throws when Postgres is unreachable or a migration fails.
 */
export async function migrateDatabase(
  url: string,
  applicationName: string,
  migrations: (new () => MigrationInterface)[],
): Promise<string[]> {
  await ensureDatabase(url);
  const db = await Db.connect({
    url,
    poolSize: 2,
    applicationName,
    migrations: [...eventStoreMigrations, ...migrations],
  });
  try {
    return await migrate(db);
  } finally {
    await db.close();
  }
}
