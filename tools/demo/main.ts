import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { DatasetError, findRepoRoot, loadDataset, resolveDatasetPath } from './dataset';
import { ensureDemoKey } from './demo-key';
import { ApiClient } from './http';
import { importPlans } from './importer';
import { planDialogs, totalsOf, type DialogPlan, type PlanTotals } from './mapping';
import { createProgress } from './progress';
import { readBack, type ReadBack } from './readback';
import {
  errorCount,
  formatImport,
  formatPlan,
  formatReadBack,
  importTotals,
  type ImportTotals,
} from './report';

/**
 * `npm run demo`: imports Taskmaster-4 dialogs (or any file of that format) through the running
 * stack's HTTP API, then reads a sample back and compares. See tools/demo/README.md.
 */

const count = (what: string, max: number) =>
  z.coerce
    .number(`${what} must be a number`)
    .int(`${what} must be a whole number`)
    .min(1, `${what} must be at least 1`)
    .max(max);

/** Options of {@link runDemo}; the CLI flags map one to one (`--api-key` -> `apiKey`). */
export const DemoOptions = z.object({
  /** Dataset file; resolved against `cwd`. Default: the bundled data_00.json (see resolveDatasetPath). */
  file: z.string().min(1).optional(),
  /** Base URL of the gateway. */
  url: z
    .url({ protocol: /^https?$/, error: 'url must be an http(s) URL, e.g. http://127.0.0.1:3000' })
    .default('http://127.0.0.1:3000'),
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey: z.string().min(1).optional(),
  /** Users the dialogs are spread over, round robin (`demo-user-1` ...). */
  users: count('users', 100_000).default(20),
  /** Dialogs in flight at once. */
  concurrency: count('concurrency', 1024).default(16),
  /** Import only the first `limit` dialogs; all when absent. */
  limit: count('limit', 10_000_000).optional(),
  /** Sessions read back turn by turn after the import (0: none). */
  sample: z.coerce.number().int().min(0).max(100_000).default(20),
  /** How long to wait for bus-fed read models (session turn_count, user lists) to catch up, ms. */
  catchUpMs: z.coerce.number().int().min(0).max(600_000).default(15_000),
  /** Id of this run (metadata `demo_run`, idempotency keys); generated when absent. */
  runId: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'runId: 1-64 letters, digits, _ . -')
    .optional(),
  /** Map the file and print its counts without sending anything. */
  dryRun: z.boolean().default(false),
});
export type DemoOptions = z.input<typeof DemoOptions>;

/**
 * Where runDemo writes: `stdout` for results, `stderr` for progress; `cwd` resolves `file`.
 * `demoKey`, when given, supplies the API key of a run without `apiKey`; it is called only once the
 * dataset is valid and something is to be sent (never for `dryRun`).
 */
export interface DemoIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
  cwd: string;
  demoKey?: () => Promise<string>;
}

/** What a run did; `exitCode` is 0 when nothing failed and everything read back matched. */
export interface DemoReport {
  runId: string;
  file: string;
  planned: PlanTotals;
  /** Dialogs that could not be mapped to valid requests, one line each. */
  invalid: string[];
  imported?: ImportTotals;
  readBack?: ReadBack;
  exitCode: 0 | 1;
}

/** `20250102T030405Z-a1b2c3`: sortable and unique enough for one machine's runs. */
export function newRunId(now: Date = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Runs the demo import: loads and validates the dataset, maps it (see mapDialog), sends it through
 * the API at `url` (see importPlans), then reads a sample back (see readBack) and prints both
 * summaries to `io.stdout`. With `dryRun`, only prints the dataset's counts.
 * Throws `ZodError` for invalid options and `DatasetError` (naming the path) for a missing or
 * malformed file; API failures are counted in the report, never thrown.
 */
export async function runDemo(input: DemoOptions, io: DemoIo = defaultIo()): Promise<DemoReport> {
  const options = DemoOptions.parse(input);
  const runId = options.runId ?? newRunId();
  const file = resolveDatasetPath(options.file, io.cwd, __dirname);
  const dialogs = await loadDataset(file);
  const planned = planDialogs(dialogs, { users: options.users, runId, limit: options.limit });
  const plans = planned.flatMap((p): DialogPlan[] => (p.ok ? [p.plan] : []));
  const invalid = planned.flatMap((p) => (p.ok ? [] : [p.error.message]));
  const totals = totalsOf(plans);
  const write = (text: string): void => {
    io.stdout.write(`${text}\n`);
  };
  write(formatPlan(file, totals, invalid));
  if (options.dryRun) return { runId, file, planned: totals, invalid, exitCode: invalid.length > 0 ? 1 : 0 };

  write(
    `run ${runId}: ${plans.length} dialogs -> ${options.url} as ${options.users} users, ${options.concurrency} dialogs in flight`,
  );
  const apiKey = options.apiKey ?? (await io.demoKey?.());
  const client = new ApiClient({ baseUrl: options.url, apiKey });
  const progress = createProgress(plans.length, io.stderr);
  const result = await importPlans(client, plans, {
    concurrency: options.concurrency,
    runId,
    onProgress: (p) => progress.update(p),
  });
  progress.stop();
  const imported = importTotals(result, invalid.length, client.retries);
  const failures = result.outcomes.flatMap((o) =>
    o.error ? [`${o.plan.conversationId}: ${o.error.message}`] : [],
  );
  write(formatImport(imported, planned.length, failures));

  let back: ReadBack | undefined;
  if (imported.sessions === 0) write('read back: skipped, no session was created');
  else {
    back = await readBack(client, result.outcomes, {
      runId,
      sample: options.sample,
      catchUpMs: options.catchUpMs,
      concurrency: options.concurrency,
    });
    write(formatReadBack(back));
  }
  const problems = errorCount(imported.errors) + (back ? back.failures.length + back.mismatches.length : 0);
  write(
    problems === 0
      ? `demo: OK (run ${runId})`
      : `demo: FAILED, ${problems} errors or mismatches (run ${runId})`,
  );
  return {
    runId,
    file,
    planned: totals,
    invalid,
    imported,
    ...(back ? { readBack: back } : {}),
    exitCode: problems === 0 ? 0 : 1,
  };
}

function defaultIo(): DemoIo {
  return { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() };
}

/** The commander program; `parseAsync` resolves with the options object for {@link runDemo}. */
export function demoProgram(): Command {
  return new Command('demo')
    .description(
      'Import Taskmaster-4 dialogs (or any file of that format) through the Threadline HTTP API and read them back',
    )
    .option(
      '--file <path>',
      'dataset file (default: the bundled tools/demo/data/taskmaster4/data_00.json.gz)',
    )
    .addOption(
      new Option('--url <url>', 'base URL of the gateway')
        .env('THREADLINE_URL')
        .default('http://127.0.0.1:3000'),
    )
    .addOption(new Option('--api-key <key>', 'sent as Authorization: Bearer <key>').env('THREADLINE_API_KEY'))
    .option('--users <n>', 'users the dialogs are spread over, round robin', '20')
    .option('--concurrency <n>', 'dialogs in flight at once', '16')
    .option('--limit <dialogs>', 'import only the first <dialogs> dialogs')
    .option('--sample <n>', 'sessions read back turn by turn', '20')
    .option('--catch-up-ms <ms>', 'wait for bus-fed read models to catch up, ms', '15000')
    .option('--run-id <id>', 'id of this run (metadata demo_run); generated when absent')
    .option('--dry-run', 'print the dataset counts the mapping gives, send nothing', false)
    .showHelpAfterError();
}

/** `--api-key` for the option path `['apiKey']`. */
const flagOf = (path: readonly PropertyKey[]): string =>
  path.map((p) => String(p).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).join('.');

/** The environment `npm run demo` reads for its own key (the same variables as the stack's). */
const DemoEnv = z.object({
  AUTH_MODE: z.enum(['api_key', 'none']).default('api_key'),
  DATABASE_URL: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/threadline'),
  DEFAULT_TENANT_ID: z.string().min(1).default('default'),
});

async function main(argv: readonly string[]): Promise<number> {
  const program = demoProgram();
  await program.parseAsync([...argv]);
  const env = DemoEnv.parse(process.env);
  const root = findRepoRoot(__dirname);
  const io = defaultIo();
  if (env.AUTH_MODE === 'api_key' && root !== undefined) {
    io.demoKey = () =>
      ensureDemoKey({
        root,
        databaseUrl: env.DATABASE_URL,
        tenantId: env.DEFAULT_TENANT_ID,
        log: (line) => void process.stdout.write(`${line}\n`),
      });
  }
  const report = await runDemo(program.opts<DemoOptions>(), io);
  return report.exitCode;
}

if (require.main === module) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof DatasetError) process.stderr.write(`demo: ${error.message}\n`);
      else if (error instanceof z.ZodError) {
        process.stderr.write(
          `demo: invalid options:\n${error.issues.map((i) => `  --${flagOf(i.path)}: ${i.message}`).join('\n')}\n`,
        );
      } else
        process.stderr.write(
          `demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
        );
      process.exitCode = 1;
    },
  );
}
