import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { TenantId } from '@threadline/contracts';
import { Db, ensureDatabase, eventStoreMigrations, migrate } from '@threadline/event-store';
import { type ApiKeyRecord, ApiKeyStore, type CreatedApiKey, KeyId } from './api-keys';
import { KEY_ROLES, type KeyRole } from './caller';
import { gatewayMigrations } from './migrations';

/** Where the CLI writes (tests capture with a PassThrough). */
export type CliStream = NodeJS.WritableStream;

export interface KeysCliOptions {
  /** Postgres URL of the gateway's tables. */
  databaseUrl: string;
  /** Tenant of `bootstrap` when `--tenant` is not given (the gateway's `DEFAULT_TENANT_ID`). */
  defaultTenant: string;
  stdout?: CliStream;
  stderr?: CliStream;
}

class CliError extends Error {}

const parseWith =
  <T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, what: string) =>
  (value: string): T => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(`not a valid ${what}`);
    return parsed.data;
  };

const parseLimit = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10_000_000)
    throw new InvalidArgumentError('an integer 1-10000000');
  return n;
};

function describe(record: ApiKeyRecord): string {
  const state = record.revoked_at ? `revoked ${record.revoked_at}` : 'active';
  const limit = record.rate_limit !== null ? ` limit=${record.rate_limit}` : '';
  return `${record.key_id}  ${record.tenant_id}  ${record.role}  ${state}  created ${record.created_at}${limit}  ${record.name}`;
}

/**
 * `npm run keys -- <command>` (issue 7), over the gateway's `api_keys` table (the database is
 * created when missing and migrated first):
 *
 * - `create --tenant <id> --role admin|service [--name <text>] [--rate-limit <n>] [--json]`: a new
 *   key, printed once (only its SHA-256 is stored);
 * - `list [--tenant <id>] [--json]`: every key (id, tenant, role, state, name), never any character of the key;
 * - `revoke <key_id>`: the key and every user token it minted answer 401 from the next request on
 *   (at most `AUTH_KEY_CACHE_MS`, default 5 s, later on gateways that used the key just before);
 * - `bootstrap [--tenant <id>] [--json]`: the first admin key, only when the database has no key
 *   (what `npm start` runs); prints nothing otherwise.
 *
 * Resolves to the exit code: 0, 1 when a command failed (message on stderr), commander's code for
 * usage errors. Never calls `process.exit`.
 */
export async function runKeysCli(argv: readonly string[], options: KeysCliOptions): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  const print = (line = '') => void out.write(`${line}\n`);

  let db: Db | undefined;
  const store = async () => {
    if (!db) await ensureDatabase(options.databaseUrl);
    db ??= await Db.connect({
      url: options.databaseUrl,
      poolSize: 2,
      applicationName: 'threadline-keys-cli',
      migrations: [...eventStoreMigrations, ...gatewayMigrations],
    });
    await migrate(db);
    return new ApiKeyStore(db);
  };
  const printCreated = (created: CreatedApiKey, json: boolean) => {
    if (json) {
      print(JSON.stringify({ key: created.key, ...created.record }));
      return;
    }
    print(
      `API key ${created.record.key_id} (tenant ${created.record.tenant_id}, role ${created.record.role}):`,
    );
    print();
    print(`  ${created.key}`);
    print();
    print('Shown once: store it now (only its hash is kept). Send it as "Authorization: Bearer <key>".');
  };

  const program = new Command('keys')
    .description("Manage the gateway's API keys")
    .exitOverride()
    .configureOutput({ writeOut: (s) => void out.write(s), writeErr: (s) => void err.write(s) })
    .showHelpAfterError();

  program
    .command('create')
    .description('Create an API key and print it once')
    .requiredOption('--tenant <id>', 'tenant the key belongs to', parseWith(TenantId, 'tenant id'))
    .addOption(new Option('--role <role>', 'admin or service').choices(KEY_ROLES).makeOptionMandatory())
    .option('--name <text>', 'what the key is for', '')
    .option(
      '--rate-limit <n>',
      'requests per rate-limit window (default RATE_LIMIT_KEY_REQUESTS)',
      parseLimit,
    )
    .option('--json', 'print JSON')
    .action(
      async (o: { tenant: string; role: KeyRole; name: string; rateLimit?: number; json?: boolean }) => {
        if (o.name.length > 200) throw new CliError('--name: at most 200 characters');
        const keys = await store();
        const created = await keys.create({
          tenantId: o.tenant,
          role: o.role,
          name: o.name,
          ...(o.rateLimit !== undefined ? { rateLimit: o.rateLimit } : {}),
        });
        printCreated(created, o.json === true);
      },
    );

  program
    .command('list')
    .description('List the API keys (never the keys themselves)')
    .option('--tenant <id>', 'only this tenant', parseWith(TenantId, 'tenant id'))
    .option('--json', 'print JSON')
    .action(async (o: { tenant?: string; json?: boolean }) => {
      const records = await (await store()).list(o.tenant);
      if (o.json === true) print(JSON.stringify(records));
      else if (records.length === 0) print('no API keys');
      else records.forEach((r) => print(describe(r)));
    });

  program
    .command('revoke')
    .description('Revoke an API key (and the user tokens it minted)')
    .argument('<key_id>', 'the key id (key_…)', parseWith(KeyId, 'key id (key_ + 12 hex characters)'))
    .action(async (keyId: string) => {
      const record = await (await store()).revoke(keyId);
      if (!record) throw new CliError(`No API key ${keyId}`);
      print(`revoked ${describe(record)}`);
    });

  program
    .command('bootstrap')
    .description('Create the first admin key when the database has none (npm start)')
    .option(
      '--tenant <id>',
      'tenant of the key (default DEFAULT_TENANT_ID)',
      parseWith(TenantId, 'tenant id'),
    )
    .option('--json', 'print JSON')
    .action(async (o: { tenant?: string; json?: boolean }) => {
      const created = await (await store()).bootstrap(o.tenant ?? options.defaultTenant);
      if (created) printCreated(created, o.json === true);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    err.write(`keys: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await db?.close();
  }
}
