import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { SCENARIOS, SHORT_SCENARIOS } from './faults';
import { runHostile } from './hostile';
import { Cleanup, makeWorkDir, NatsCluster, PgCluster } from './infra';
import { toMarkdown, scenarioTable, type ChaosResults } from './report';
import { heal, measureCapacity, runScenario, runSoak, type RunSettings } from './runner';
import { ChaosStack } from './stack';

/**
 * `npm run chaos` (issue 20): on infrastructure of its own (a Postgres 15 cluster made with initdb, a
 * 3-node NATS cluster with an R3 stream, all on loopback), two instances of every built service and a
 * bounded load generator; then the fault scenarios, the soak or the hostile-input volume run; prints
 * the table and writes `<out>/<time>.json` and `.md`. Exits 1 when any check fails. Never part of
 * `npm test`. See the README, section "Chaos harness".
 */

const ROOT = resolve(__dirname, '../../..');
const IDS = SCENARIOS.map((s) => s.id);

const int = (what: string, min: number, max: number) =>
  z.coerce
    .number(`${what} must be a number`)
    .int(`${what} must be a whole number`)
    .min(min, `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);

export const ChaosOptions = z.object({
  scenarios: z
    .string()
    .transform((list) => list.split(',').filter((s) => s !== ''))
    .pipe(
      z.array(
        z.enum(['all', 'none', ...IDS], `--scenarios: comma-separated, of all, none, ${IDS.join(', ')}`),
      ),
    )
    .optional(),
  short: z.boolean().default(false),
  soak: int('--soak', 30, 86_400).optional(),
  hostile: z.union([z.literal(true), int('--hostile', 1, 10_000_000)]).optional(),
  hostileConcurrency: int('--hostile-concurrency', 1, 64).default(8),
  hostileMaxSeconds: int('--hostile-max-seconds', 1, 86_400).default(3600),
  seed: int('--seed', 0, 2 ** 31 - 1).default(20),
  workers: int('--workers', 1, 64).default(8),
  rate: int('--rate', 0, 100_000).default(150),
  turnsPerSession: int('--turns-per-session', 1, 200).default(10),
  deleteEvery: int('--delete-every', 0, 1000).default(3),
  warmup: int('--warmup', 1, 600).default(8),
  after: int('--after', 1, 600).default(10),
  quiesce: int('--quiesce', 5, 1800).default(90),
  capacitySeconds: int('--capacity-seconds', 5, 600).default(15),
  out: z.string().min(1).optional(),
});
export type ChaosOptions = z.infer<typeof ChaosOptions>;

const log = (line: string) =>
  process.stderr.write(`chaos: ${new Date().toISOString().slice(11, 19)} ${line}\n`);

const version = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
};

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('chaos')
    .description(
      'Kill, stop and restart the real processes under load; prove no acknowledged write is lost or duplicated.',
    )
    .option('--scenarios <ids>', `comma-separated: all, none, or of ${IDS.join(', ')}`)
    .option(
      '--short',
      `CI variant: ${SHORT_SCENARIOS.join(' and ')}, shorter load, a 1,000-request hostile run`,
    )
    .option('--soak <seconds>', 'soak: half of the measured capacity, no fault, RSS and errors every 10 s')
    .option('--hostile [count]', 'hostile-input volume run (default 100000 requests)')
    .option('--hostile-concurrency <n>', 'hostile requests in flight')
    .option('--hostile-max-seconds <n>', 'stop the hostile run after this long (default 3600)')
    .option('--seed <n>', 'fast-check seed of the hostile run')
    .option('--workers <n>', 'load generator clients')
    .option('--rate <n>', 'load generator requests per second (0: unbounded)')
    .option('--turns-per-session <n>', 'turns logged per session before it is ended')
    .option('--delete-every <n>', 'every n-th session is deleted after it ended (0: none)')
    .option('--warmup <seconds>', 'load before each fault')
    .option('--after <seconds>', 'load after each fault was lifted')
    .option('--quiesce <seconds>', 'longest wait for read models and consumers to catch up')
    .option('--capacity-seconds <seconds>', 'length of the unthrottled measurement before a soak')
    .option('--out <dir>', 'results folder (default chaos/results; --short: tmp/chaos/results)')
    .allowExcessArguments(false);
  program.parse(argv);
  const parsed = ChaosOptions.safeParse(program.opts());
  if (!parsed.success) {
    for (const issue of parsed.error.issues) process.stderr.write(`chaos: ${issue.message}\n`);
    return 2;
  }
  const o = parsed.data;
  // What runs: --scenarios as given; otherwise every scenario unless a soak or hostile run was asked for alone.
  let scenarioIds: string[];
  if (o.scenarios) scenarioIds = o.scenarios.includes('all') ? IDS : o.scenarios.filter((s) => s !== 'none');
  else if (o.short) scenarioIds = [...SHORT_SCENARIOS];
  else scenarioIds = o.soak !== undefined || o.hostile !== undefined ? [] : IDS;
  const hostileCount = o.hostile === true ? 100_000 : (o.hostile ?? (o.short ? 1_000 : undefined));
  const settings: RunSettings = {
    workers: o.workers,
    rate: o.rate,
    turnsPerSession: o.turnsPerSession,
    deleteEvery: o.deleteEvery,
    warmupMs: (o.short ? Math.min(o.warmup, 4) : o.warmup) * 1000,
    afterMs: (o.short ? Math.min(o.after, 5) : o.after) * 1000,
    giveUpMs: 30_000,
    requestTimeoutMs: 10_000,
    quiesceMs: o.quiesce * 1000,
  };
  const outDir = resolve(ROOT, o.out ?? (o.short ? 'tmp/chaos/results' : 'chaos/results'));
  const startedAt = new Date();
  const cleanup = new Cleanup();
  const results: ChaosResults = {
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    command: `npm run chaos -- ${argv.slice(2).join(' ')}`.trim(),
    machine: {
      cores: cpus().length,
      node: process.version,
      postgres: version('pg_config', ['--version']),
      nats: version('nats-server', ['--version']).replace(/^nats-server:\s*/, ''),
      loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    },
    settings: { ...settings, scenarios: scenarioIds, soak: o.soak, hostile: hostileCount, seed: o.seed },
    scenarios: [],
    soak: undefined,
    hostile: undefined,
    pass: false,
  };
  let stack: ChaosStack | undefined;
  try {
    const workDir = makeWorkDir(cleanup);
    log(`infrastructure in ${workDir}`);
    const pg = await PgCluster.start(workDir, cleanup);
    log(`postgres on 127.0.0.1:${pg.port}`);
    const nats = await NatsCluster.start(workDir, 3, cleanup);
    log(`nats cluster: ${nats.url}`);
    stack = new ChaosStack(ROOT, pg, nats, cleanup);
    await stack.start();
    log(`two instances of every service up; gateways ${stack.gatewayUrls.join(' ')}`);

    for (const [index, id] of scenarioIds.entries()) {
      const scenario = SCENARIOS.find((s) => s.id === id)!;
      const result = await runScenario(stack, scenario, IDS.indexOf(id), settings, log);
      results.scenarios.push(result);
      log(`${id}: ${result.pass ? 'PASS' : 'FAIL'}${result.problems.map((p) => `\n    ${p}`).join('')}`);
      if (index < scenarioIds.length - 1) await heal(stack, log);
    }
    if (o.soak !== undefined) {
      log(`soak: measuring capacity for ${o.capacitySeconds} s`);
      const capacity = await measureCapacity(stack, settings, o.capacitySeconds * 1000);
      const rate = Math.max(1, Math.round(capacity.attemptsPerSecond / 2));
      log(
        `soak: capacity ${capacity.ackedPerSecond.toFixed(0)} acknowledged/s; soaking at ${rate} requests/s for ${o.soak} s`,
      );
      results.soak = await runSoak(stack, settings, o.soak, rate, capacity.ackedPerSecond, log);
      log(
        `soak: ${results.soak.pass ? 'PASS' : 'FAIL'}${results.soak.problems.map((p) => `\n    ${p}`).join('')}`,
      );
    }
    if (hostileCount !== undefined) {
      log(`hostile: ${hostileCount} requests, ${o.hostileConcurrency} in flight`);
      results.hostile = await runHostile(stack, {
        count: hostileCount,
        concurrency: o.hostileConcurrency,
        maxSeconds: o.hostileMaxSeconds,
        seed: o.seed,
        log,
      });
      log(`hostile: ${results.hostile.pass ? 'PASS' : 'FAIL'}`);
    }
    results.pass =
      results.scenarios.every((s) => s.pass) &&
      (results.soak?.pass ?? true) &&
      (results.hostile?.pass ?? true) &&
      (results.scenarios.length > 0 || results.soak !== undefined || results.hostile !== undefined);
  } catch (error) {
    log(`run aborted: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (stack) process.stderr.write(stack.report().slice(-6000) + '\n');
    results.pass = false;
  } finally {
    results.finishedAt = new Date().toISOString();
    await stack?.stop().catch(() => undefined);
    cleanup.runAll();
  }
  mkdirSync(outDir, { recursive: true });
  const name =
    startedAt
      .toISOString()
      .replace(/:/g, '-')
      .replace(/\.\d+Z$/, 'Z') + (o.short ? '-short' : '');
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(results, null, 2) + '\n');
  const markdown = toMarkdown(results);
  writeFileSync(join(outDir, `${name}.md`), markdown);
  if (results.scenarios.length > 0) process.stdout.write(scenarioTable(results.scenarios) + '\n');
  process.stdout.write(`\n${results.pass ? 'PASS' : 'FAIL'}: results in ${join(outDir, name)}.{md,json}\n`);
  return results.pass ? 0 : 1;
}

main(process.argv).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${String(error)}\n`);
    process.exit(1);
  },
);
