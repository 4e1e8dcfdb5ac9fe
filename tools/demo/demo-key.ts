import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { CreatedKey, runKeysCli } from '@threadline/stack';

/** The name of the demo's service key in `npm run keys -- list`. */
export const DEMO_KEY_NAME = 'demo';
/** Its rate limit per window: a bulk import, not an interactive client. */
const DEMO_KEY_RATE_LIMIT = 1_000_000;
const KEYS_CLI_TIMEOUT_MS = 30_000;

/** What `keys list --json` prints per key (the fields used here). */
const ListedKey = z.object({
  key_id: z.string(),
  tenant_id: z.string(),
  name: z.string(),
  revoked_at: z.string().nullable(),
});

/** The demo key as kept on this machine (`.threadline/demo-key.json`, git-ignored, mode 0600). */
const SavedKey = z.object({
  database_url: z.string(),
  tenant_id: z.string(),
  key_id: z.string(),
  key: z.string(),
});
type SavedKey = z.infer<typeof SavedKey>;

export interface DemoKeyOptions {
  /** Repository root (where `dist/` and `.threadline/` are). */
  root: string;
  /** The stack's database (the gateway's `api_keys` table). */
  databaseUrl: string;
  /** Tenant of the key (the gateway's `DEFAULT_TENANT_ID`). */
  tenantId: string;
  /** Where a line about the key is written. */
  log: (line: string) => void;
}

/** `.threadline/demo-key.json` under `root`. */
export const demoKeyFile = (root: string): string => join(root, '.threadline', 'demo-key.json');

function readSaved(file: string): SavedKey | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = SavedKey.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? parsed.data : undefined;
}

/**
 * The one service key the demo sends, named {@link DEMO_KEY_NAME}: created with the keys CLI the
 * first time, then found again by name on every run. A key is shown once (only its hash is
 * stored), so its text is kept in `.threadline/demo-key.json` beside the database it belongs to.
 * When that file is gone, or its key was revoked, every active key named `demo` of the tenant is
 * revoked (nobody holds its text any more) and one new key replaces them, so there is never more
 * than one. Revoke it with `npm run keys -- revoke <key_id>`; the next run makes a new one.
 * Throws what the keys CLI throws (database unreachable, build missing).
 */
export async function ensureDemoKey(opts: DemoKeyOptions): Promise<string> {
  const keys = (args: string[]) =>
    runKeysCli({ root: opts.root, databaseUrl: opts.databaseUrl, args, timeoutMs: KEYS_CLI_TIMEOUT_MS });
  const listed = z
    .array(ListedKey)
    .parse(JSON.parse(await keys(['list', '--tenant', opts.tenantId, '--json'])));
  const active = listed.filter((k) => k.name === DEMO_KEY_NAME && k.revoked_at === null);
  const file = demoKeyFile(opts.root);
  const saved = readSaved(file);
  if (
    saved &&
    saved.database_url === opts.databaseUrl &&
    saved.tenant_id === opts.tenantId &&
    active.some((k) => k.key_id === saved.key_id)
  ) {
    opts.log(
      `demo: sending with service key ${saved.key_id} (named "${DEMO_KEY_NAME}"; revoke: npm run keys -- revoke ${saved.key_id})`,
    );
    return saved.key;
  }
  for (const stale of active) {
    await keys(['revoke', stale.key_id]);
    opts.log(
      `demo: revoked ${stale.key_id}, an earlier "${DEMO_KEY_NAME}" key whose text this machine no longer has`,
    );
  }
  const created = CreatedKey.parse(
    JSON.parse(
      await keys([
        'create',
        '--tenant',
        opts.tenantId,
        '--role',
        'service',
        '--name',
        DEMO_KEY_NAME,
        '--rate-limit',
        String(DEMO_KEY_RATE_LIMIT),
        '--json',
      ]),
    ),
  );
  mkdirSync(dirname(file), { recursive: true });
  const record: SavedKey = {
    database_url: opts.databaseUrl,
    tenant_id: opts.tenantId,
    key_id: created.key_id,
    key: created.key,
  };
  writeFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  opts.log(
    `demo: created service key ${created.key_id} (named "${DEMO_KEY_NAME}", kept in ${file}; revoke: npm run keys -- revoke ${created.key_id})`,
  );
  return created.key;
}
