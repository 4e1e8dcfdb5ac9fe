import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { ensureDatabase } from '@threadline/event-store';
import { runAtSize } from './at-size';
import { HttpClient } from './http-client';
import { runIngest } from './ingest';
import { machineFacts } from './machine';
import { PEER_NAMES, peerTurnsOf, runPeers } from './peers/scenario';
import { startPgActivity } from './pg-activity';
import { checkTargets, toMarkdown, type BenchResults } from './report';
import { startSampler } from './resources';
import { databaseUrlFor, dropDatabase, SERVICES, startStack, type BenchStack } from './stack';
import { runSdkOverhead } from './sdk-overhead';
import { runStore } from './store';
import { loadTurns } from './turns';

/**
 * `npm run bench` (issue 6): starts the built stack on a database, stream and subject prefix of its
 * own, runs the scenarios, writes `bench/results/<time>.json` and `.md`, prints the markdown, and
 * removes everything it made. See the README, section "Benchmark".
 */

const ROOT = resolve(__dirname, '../../..');
/** The scenarios this harness measures; the others of issue 6 are listed as not done. */
const IMPLEMENTED = ['1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
const NOT_IMPLEMENTED: Record<string, string> = {};

/**
 * Where the bench finds Postgres by default: the local server's Unix socket when it has one (Debian's
 * /var/run/postgresql), else 127.0.0.1:5432. Everything runs on one box, where a deployment would use
 * the socket too: on this machine a round trip over loopback TCP costs about twice the CPU (measured:
 * 8 writers appending, 1,634-1,949 events/s over TCP against 3,499-3,800 over the socket). The
 * results record the URL used (the plain-INSERT baseline of scenario 4 uses the same one).
 */
function defaultPostgresUrl(): string {
  return existsSync('/var/run/postgresql/.s.PGSQL.5432')
    ? 'postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres'
    : 'postgres://postgres@127.0.0.1:5432/postgres';
}

const int = (what: string, min: number, max: number) =>
  z.coerce
    .number(`${what} must be a number`)
    .int(`${what} must be a whole number`)
    .min(min, `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);

/** Options of a run; the CLI flags map one to one. */
export const BenchOptions = z.object({
  duration: int('--duration', 1, 3600).default(60),
  warmup: int('--warmup', 0, 600).default(5),
  users: int('--users', 1, 4096).default(32),
  sessionsPerUser: int('--sessions-per-user', 1, 1000).default(2),
  turnsPerSession: int('--turns-per-session', 0, 10_000_000).default(20),
  storeSeconds: int('--store-seconds', 1, 600).default(10),
  writers: int('--writers', 1, 64).default(8),
  batch: int('--batch', 1, 1000).default(50),
  poolSize: int('--pool-size', 1, 100).default(10),
  lagProbeMs: int('--lag-probe-ms', 0, 10_000).default(50),
  peerSeconds: int('--peer-seconds', 1, 600).default(10),
  conversationTurns: int('--conversation-turns', 0, 1_000_000).default(40),
  peers: z
    .string()
    .transform((list) => list.split(',').filter((p) => p !== ''))
    .pipe(z.array(z.enum(PEER_NAMES, `--peers: comma-separated, of ${PEER_NAMES.join(', ')}`)))
    .default([...PEER_NAMES]),
  seedDb: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/, '--seed-db: a database name of letters, digits and _')
    .optional(),
  seedSessions: int('--seed-sessions', 2, 10_000_000).default(100_000),
  seedTurnsPerSession: int('--seed-turns-per-session', 0, 1000).default(10),
  seedUsers: int('--seed-users', 1, 10_000_000).default(10_000),
  rebuildBatchSize: int('--rebuild-batch-size', 1, 100_000).default(5000),
  reads: int('--reads', 1, 10_000_000).default(5000),
  readClients: z
    .string()
    .transform((list): unknown[] => list.split(','))
    .pipe(z.array(int('--read-clients', 1, 256)).min(1, '--read-clients: at least one count'))
    .default([1, 4]),
  sdkCalls: int('--sdk-calls', 10, 10_000_000).default(4000),
  scenarios: z
    .string()
    .regex(/^[1-9](,[1-9])*$/, '--scenarios: comma-separated numbers 1-9, e.g. 1,2,8')
    .default(IMPLEMENTED.join(',')),
  profile: z.array(z.enum(SERVICES)).default([]),
  estimateUsage: z.boolean().default(false),
  file: z.string().min(1).optional(),
  out: z.string().min(1).default('bench/results'),
  postgresUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, '--postgres-url must be a postgres:// URL')
    .default(defaultPostgresUrl()),
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
});
export type BenchOptions = z.infer<typeof BenchOptions>;

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Runs the selected scenarios; resolves to the results (also written to `out`). Throws when the stack cannot start. */
export async function runBench(options: BenchOptions, command: string): Promise<BenchResults> {
  const wanted = new Set(options.scenarios.split(','));
  const startedAt = new Date();
  const runTag = `${startedAt.toISOString().replace(/\D/g, '').slice(0, 14)}_${process.pid}`;
  const machine = await machineFacts({
    root: ROOT,
    postgresUrl: options.postgresUrl,
    natsUrl: options.natsUrl,
  });
  log(
    `machine: ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node}, postgres ${machine.postgres}, nats ${machine.nats}, load ${machine.loadAtStart.join(' ')}`,
  );
  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    command,
    options: { ...options },
    machine,
    loadAtEnd: [],
    notDone: [],
    targets: [],
  };
  for (const s of IMPLEMENTED) {
    if (NOT_IMPLEMENTED[s]) results.notDone.push(NOT_IMPLEMENTED[s]);
    else if (!wanted.has(s))
      results.notDone.push(`scenario ${s}: not selected (--scenarios ${options.scenarios})`);
  }

  if (wanted.has('1') || wanted.has('2') || wanted.has('8')) {
    const turns = await loadTurns({
      file: options.file,
      cwd: process.cwd(),
      estimateUsage: options.estimateUsage,
    });
    log(`${turns.bodies.length} turns from ${turns.source}, ${turns.meanBytes} bytes on average`);
    log('starting the stack (five services)...');
    const profileDir = resolve(ROOT, options.out, 'profiles');
    const stack: BenchStack = await startStack({
      root: ROOT,
      postgresUrl: options.postgresUrl,
      natsUrl: options.natsUrl,
      runTag,
      poolSize: options.poolSize,
      profile: options.profile,
      profileDir,
    });
    const stopOnSignal = () => {
      log('interrupted: stopping the stack');
      void stack.stop().finally(() => process.exit(130));
    };
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
    const client = new HttpClient(stack.baseUrl, stack.apiKey, options.users + 8);
    try {
      log(
        `stack up at ${stack.baseUrl} (database ${stack.databaseName}, stream ${stack.stream}); scenario 1: ${options.users} users, ${options.warmup} s warm-up + ${options.duration} s`,
      );
      const sampler = startSampler(stack.services.map((p) => ({ name: p.name, pid: p.pid })));
      const activity = await startPgActivity({ url: stack.databaseUrl, name: stack.databaseName });
      const ingest = await runIngest({
        client,
        users: options.users,
        sessionsPerUser: options.sessionsPerUser,
        turnsPerSession: options.turnsPerSession,
        durationS: options.duration,
        warmupS: options.warmup,
        turns,
        lagProbeIntervalMs: wanted.has('2') ? options.lagProbeMs : 0,
        onSecond: (s, ok, errors) => log(`  s${s}: ${ok} turns${errors ? `, ${errors} errors` : ''}`),
      });
      const resources = sampler.stop();
      results.ingest = { ...ingest, resources, postgresActivity: await activity.stop() };
      const dead = stack.services.filter((p) => p.exited);
      if (dead.length)
        throw new Error(
          `services exited during the run: ${dead.map((p) => p.name).join(', ')}\n${stack.report()}`,
        );
      if (ingest.errors.total > 0)
        log(`errors during scenario 1; service output:\n${stack.report().slice(-4000)}`);
      log(
        `scenario 1: ${ingest.turnsPerSecond} turns/s, p99 ${ingest.latency.p99} ms, ${ingest.errors.total} errors; lag p99 ${ingest.lag.latency.p99} ms`,
      );
    } finally {
      client.close();
      log('stopping the stack, dropping its database and stream');
      await stack.stop();
      process.removeListener('SIGINT', stopOnSignal);
      process.removeListener('SIGTERM', stopOnSignal);
    }
  }

  if (wanted.has('3') || wanted.has('4')) {
    const name = `threadline_bench_${runTag}_store`;
    const url = databaseUrlFor(options.postgresUrl, name);
    await ensureDatabase(url);
    try {
      const turns = await loadTurns({
        file: options.file,
        cwd: process.cwd(),
        estimateUsage: options.estimateUsage,
        max: 1,
      });
      log(`scenarios 3 and 4 on ${name}: ${options.writers} writers, ${options.storeSeconds} s per series`);
      results.store = await runStore({
        databaseUrl: url,
        payload: JSON.parse(turns.bodies[0]!.toString('utf8')),
        seconds: options.storeSeconds,
        writers: options.writers,
        batch: options.batch,
      });
    } finally {
      await dropDatabase(options.postgresUrl, name);
    }
  }

  if (wanted.has('5')) {
    const turns = await loadTurns({
      file: options.file,
      cwd: process.cwd(),
      estimateUsage: options.estimateUsage,
      max: 500,
    });
    results.peers = await runPeers({
      root: ROOT,
      postgresUrl: options.postgresUrl,
      runTag,
      turns: peerTurnsOf(turns.bodies),
      peers: options.peers,
      writers: options.writers,
      warmupS: options.warmup,
      seconds: options.peerSeconds,
      conversationTurns: options.conversationTurns,
      log,
    });
  }

  if (wanted.has('6') || wanted.has('7')) {
    const turns = await loadTurns({
      file: options.file,
      cwd: process.cwd(),
      estimateUsage: options.estimateUsage,
    });
    const atSize = await runAtSize({
      root: ROOT,
      postgresUrl: options.postgresUrl,
      natsUrl: options.natsUrl,
      runTag,
      rebuild: wanted.has('6'),
      reads: wanted.has('7'),
      seedDb: options.seedDb,
      seedSessions: options.seedSessions,
      seedTurnsPerSession: options.seedTurnsPerSession,
      seedUsers: options.seedUsers,
      rebuildBatchSize: options.rebuildBatchSize,
      readRequests: options.reads,
      readClients: options.readClients,
      poolSize: options.poolSize,
      profile: options.profile,
      profileDir: resolve(ROOT, options.out, 'profiles'),
      turns,
      log,
    });
    results.seed = atSize.seed;
    if (atSize.rebuild) results.rebuild = atSize.rebuild;
    if (atSize.readFloor) results.readFloor = atSize.readFloor;
    if (atSize.reads) results.reads = atSize.reads;
  }

  if (wanted.has('9')) {
    results.sdk = await runSdkOverhead({
      root: ROOT,
      postgresUrl: options.postgresUrl,
      natsUrl: options.natsUrl,
      runTag,
      poolSize: options.poolSize,
      calls: options.sdkCalls,
      log,
    });
  }

  results.finishedAt = new Date().toISOString();
  results.loadAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  results.targets = checkTargets(results);
  const dir = resolve(ROOT, options.out);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, results.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z'));
  writeFileSync(`${file}.json`, `${JSON.stringify(results, null, 2)}\n`);
  const markdown = toMarkdown(results);
  writeFileSync(`${file}.md`, markdown);
  process.stdout.write(`${markdown}\n`);
  log(`wrote ${file}.json and ${file}.md`);
  return results;
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('bench')
    .description('Threadline benchmark (issue 6): starts its own stack, measures, cleans up')
    .option('--duration <s>', 'measured seconds of scenario 1', '60')
    .option('--warmup <s>', 'seconds of load before measuring', '5')
    .option('--users <n>', 'virtual users of scenario 1 (closed loop, one turn in flight each)', '32')
    .option('--sessions-per-user <n>', 'sessions each virtual user writes to in turn', '2')
    .option(
      '--turns-per-session <n>',
      'a session with this many turns is replaced by a new one (0: never)',
      '20',
    )
    .option('--store-seconds <s>', 'seconds of each series of scenarios 3 and 4', '10')
    .option('--writers <n>', 'concurrent writers of scenarios 3 and 4, workers of scenario 5', '8')
    .option('--batch <n>', 'events per batched append / rows per multi-row insert', '50')
    .option('--pool-size <n>', 'DATABASE_POOL_SIZE of each service', '10')
    .option('--lag-probe-ms <ms>', 'one projection-lag probe every <ms> during scenario 1 (0: none)', '50')
    .option('--peer-seconds <s>', 'scenario 5: measured seconds of each library (after --warmup)', '10')
    .option(
      '--conversation-turns <n>',
      'scenario 5: a conversation with this many turns is replaced by a new one (0: never)',
      '40',
    )
    .option(
      '--peers <list>',
      `scenario 5: peers measured besides Threadline (${PEER_NAMES.join(',')})`,
      PEER_NAMES.join(','),
    )
    .option(
      '--seed-db <name>',
      'scenarios 6, 7: keep the seeded dataset in this database and reuse it in later runs (default: seed one for this run and drop it)',
    )
    .option('--seed-sessions <n>', 'scenarios 6, 7: sessions seeded', '100000')
    .option('--seed-turns-per-session <n>', 'scenarios 6, 7: mean turns per seeded session', '10')
    .option('--seed-users <n>', 'scenarios 6, 7: users the seeded sessions belong to', '10000')
    .option('--rebuild-batch-size <n>', 'scenario 6: events per batch of the rebuild', '5000')
    .option('--reads <n>', 'scenario 7: measured requests per route', '5000')
    .option(
      '--read-clients <list>',
      'scenario 7: closed-loop clients of each series, comma-separated (each route is measured once per count)',
      '1,4',
    )
    .option(
      '--sdk-calls <n>',
      'scenario 9: sequential reads of each kind (raw fetch, SDK); writes: half',
      '4000',
    )
    .option(
      '--scenarios <list>',
      `comma-separated scenarios (implemented: ${IMPLEMENTED.join(',')})`,
      IMPLEMENTED.join(','),
    )
    .option('--profile <service...>', 'run these services with node --cpu-prof (profiles in <out>/profiles)')
    .option(
      '--estimate-usage',
      'send turns without token usage (the chat-log-service counts it with its tokenizer)',
    )
    .option(
      '--file <path>',
      'Taskmaster-4 dialog file the turns are made from (default the bundled data_00.json)',
    )
    .option('--out <dir>', 'results directory, relative to the repository root', 'bench/results')
    .option(
      '--postgres-url <url>',
      'Postgres server (env BENCH_POSTGRES_URL)',
      process.env['BENCH_POSTGRES_URL'] ?? defaultPostgresUrl(),
    )
    .option(
      '--nats-url <url>',
      'NATS server (env BENCH_NATS_URL)',
      process.env['BENCH_NATS_URL'] ?? 'nats://127.0.0.1:4222',
    )
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    return typeof (error as { exitCode?: unknown }).exitCode === 'number'
      ? (error as { exitCode: number }).exitCode
      : 1;
  }
  const parsed = BenchOptions.safeParse(program.opts());
  if (!parsed.success) {
    for (const issue of parsed.error.issues) process.stderr.write(`bench: ${issue.message}\n`);
    return 1;
  }
  const command = ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' ');
  await runBench(parsed.data, command);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
