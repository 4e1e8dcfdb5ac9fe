import type { z } from 'zod';
import { TenantId } from '@threadline/contracts';
import { BaseConfig, ConfigError, loadConfig } from '@threadline/platform';
import { runKeysCli } from './auth/keys-command';

// `npm run keys -- create|list|revoke|bootstrap` (see `runKeysCli`): reads DATABASE_URL and
// DEFAULT_TENANT_ID like the gateway; exit code 0, 1 on failure, 2 on bad configuration.
const KeysConfig = BaseConfig.pick({ DATABASE_URL: true }).extend({
  DEFAULT_TENANT_ID: TenantId.default('default'),
});

async function main(): Promise<number> {
  let config: z.infer<typeof KeysConfig>;
  try {
    config = loadConfig(KeysConfig);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`keys: ${error.message}\n`);
    return 2;
  }
  return runKeysCli(process.argv.slice(2), {
    databaseUrl: config.DATABASE_URL,
    defaultTenant: config.DEFAULT_TENANT_ID,
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `keys: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
