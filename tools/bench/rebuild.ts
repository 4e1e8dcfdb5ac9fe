import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { EventRegistry, UsageStatsEvents } from '@threadline/contracts';
import { type CommitPosition, Db, EventStore, START } from '@threadline/event-store';
import { cpuTicks, startSampler, ticksByComm } from './resources';
import { nowMs } from './stats';

/** One run of the analytics projections CLI: its output, wall time (ms) and CPU time (ms, sampled). */
export interface CliRun {
  stdout: string;
  stderr: string;
  wallMs: number;
  /** utime + stime of the CLI process, last sampled (every 100 ms) before it exited. */
  cpuMs: number;
  /**
   * CPU time of every `postgres` process meanwhile (all databases), ms: each process's last sample, so
   * the CLI's backends, gone by the end, still count.
   */
  postgresCpuMs: number;
}

const TICK_MS = 10; // USER_HZ 100 (see resources.ts)

/**
 * Runs `node dist/apps/analytics-projector/src/cli.js <args>` (the projections CLI) on the database at
 * `databaseUrl` (`LOG_LEVEL=warn`). Resolves with its output when it exits 0; throws with its stderr
 * otherwise, or when the built CLI is missing.
 */
export async function runProjectionsCli(
  root: string,
  databaseUrl: string,
  args: readonly string[],
): Promise<CliRun> {
  const cli = join(root, 'dist/apps/analytics-projector/src/cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  const t0 = nowMs();
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-16_000)));
  let cliTicks = 0;
  const pgBefore = ticksByComm('postgres');
  const pgLast = new Map(pgBefore);
  const sample = () => {
    const t = child.pid === undefined ? Number.NaN : cpuTicks(child.pid);
    if (Number.isFinite(t)) cliTicks = t;
    for (const [pid, ticks] of ticksByComm('postgres')) if (Number.isFinite(ticks)) pgLast.set(pid, ticks);
  };
  const timer = setInterval(sample, 100);
  const code = await new Promise<number | null>((done, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => done(c));
  }).finally(() => clearInterval(timer));
  if (code !== 0)
    throw new Error(`projections ${args.join(' ')} exited with ${code}: ${stderr.trim().slice(-2000)}`);
  let pgTicks = 0;
  for (const [pid, ticks] of pgLast) pgTicks += ticks - (pgBefore.get(pid) ?? 0);
  return {
    stdout,
    stderr,
    wallMs: nowMs() - t0,
    cpuMs: cliTicks * TICK_MS,
    postgresCpuMs: pgTicks * TICK_MS,
  };
}

/** Scenario 6's figures. Times in seconds, CPU in % of one core over the CLI's wall time. */
export interface RebuildResult {
  projection: string;
  batchSize: number;
  /** Events in the store (all stream types) when the rebuild started. */
  storeEvents: number;
  /** Events replayed, as the CLI reports them (`RebuildResult.events` of `ProjectionRunner.rebuild`). */
  events: number;
  /** `ProjectionRunner.rebuild`'s own time (`tookMs`), s. */
  seconds: number;
  /** events / seconds: the figure of the target. */
  eventsPerSecond: number;
  /** The version now live. */
  version: number | null;
  /** The CLI process from start to exit (startup, migrations check, its count of the events, the rebuild), s. */
  wallSeconds: number;
  cliCpuPercent: number;
  postgresCpuPercent: number;
  machineBusyPercent: number;
  /** The CLI's line, verbatim. */
  output: string;
  /** Wall time of each step of the rebuild, s (the CLI's `phases:` line; null when it printed none). */
  phases: { replay: number; finish: number; indexes: number; analyze: number; switch: number } | null;
}

const REBUILT =
  /rebuilt (\S+): replayed (\d+) events in ([\d.]+) s \((\d+) events\/s\); checkpoint (\d+)(?:; version (\d+) live)?/;

const PHASES =
  /phases: replay ([\d.]+) s, finish ([\d.]+) s, indexes ([\d.]+) s, analyze ([\d.]+) s, switch ([\d.]+) s/;

const CountRow = z.object({ n: z.coerce.number().int() });

/**
 * Scenario 6: `projections rebuild <projection> --batch-size <batchSize>` of the analytics projector
 * (`ProjectionRunner.rebuild`: a new version of a versioned projection built beside the live one, then
 * switched to), on the database at `databaseUrl`, with nothing else running. Reports the CLI's own
 * figures (events replayed, seconds, events/s) and the CPU of the CLI and of Postgres meanwhile.
 * Throws when the CLI fails or prints no result line.
 */
export async function runRebuild(opts: {
  root: string;
  databaseUrl: string;
  projection: string;
  batchSize: number;
}): Promise<RebuildResult> {
  const db = await Db.connect({ url: opts.databaseUrl, poolSize: 1, applicationName: 'threadline-bench' });
  let storeEvents: number;
  try {
    storeEvents = CountRow.parse((await db.query('SELECT count(*) AS n FROM events'))[0]).n;
  } finally {
    await db.close();
  }
  const sampler = startSampler([]);
  const run = await runProjectionsCli(opts.root, opts.databaseUrl, [
    'rebuild',
    opts.projection,
    '--batch-size',
    String(opts.batchSize),
  ]);
  const usage = sampler.stop();
  const line = run.stdout.split('\n').find((l) => REBUILT.test(l));
  const m = line ? REBUILT.exec(line) : null;
  if (!line || !m) throw new Error(`projections rebuild printed no result: ${run.stdout}${run.stderr}`);
  const p = PHASES.exec(run.stdout);
  const events = Number(m[2]);
  const seconds = Number(m[3]);
  return {
    projection: opts.projection,
    batchSize: opts.batchSize,
    storeEvents,
    events,
    seconds,
    eventsPerSecond: Math.round(events / seconds),
    version: m[6] === undefined ? null : Number(m[6]),
    wallSeconds: Math.round(run.wallMs / 100) / 10,
    cliCpuPercent: Math.round((run.cpuMs / run.wallMs) * 1000) / 10,
    postgresCpuPercent: Math.round((run.postgresCpuMs / run.wallMs) * 1000) / 10,
    machineBusyPercent: usage.machine.cpuBusyPercent,
    output: line.trim(),
    phases: p
      ? {
          replay: Number(p[1]),
          finish: Number(p[2]),
          indexes: Number(p[3]),
          analyze: Number(p[4]),
          switch: Number(p[5]),
        }
      : null,
  };
}

const ProjectionStatus = z.array(
  z.object({ name: z.string(), checkpoint: z.number(), head: z.number(), lag: z.number() }),
);

/** Whether `projection` has applied every event of its stream types (`projections list --json`: lag 0). */
export async function projectionCaughtUp(
  root: string,
  databaseUrl: string,
  projection: string,
): Promise<boolean> {
  const run = await runProjectionsCli(root, databaseUrl, ['list', '--json']);
  const found = ProjectionStatus.parse(JSON.parse(run.stdout)).find((p) => p.name === projection);
  return found !== undefined && found.lag === 0 && found.checkpoint > 0;
}

/** Scenario 6's floor: the events read and parsed, nothing written (see {@link runReadFloor}). */
export interface ReadFloorResult {
  batchSize: number;
  /** Events read; `parsed` of them are of a type the projection reads (the others are skipped). */
  events: number;
  parsed: number;
  /** Wall time of the whole read, s. */
  seconds: number;
  /** CPU time of this process meanwhile (user + system), s: one JavaScript thread's work. */
  cpuSeconds: number;
  /** events / cpuSeconds: what one core can read and parse, whatever the projection then does. */
  eventsPerCpuSecond: number;
}

/**
 * The part of a rebuild of usage_stats that no projection code can avoid, measured alone: every event
 * read in commit order with `EventStore.readAll` (the read a rebuild makes, `batchSize` per batch) and
 * parsed with the projection's `EventRegistry`, in this process, writing nothing. Its CPU per event is a
 * floor for the rebuild CLI, whose replay does this work on its one JavaScript thread before folding
 * and writing anything (`ProjectionRunner.rebuild`).
 */
export async function runReadFloor(opts: {
  databaseUrl: string;
  batchSize: number;
}): Promise<ReadFloorResult> {
  const db = await Db.connect({ url: opts.databaseUrl, poolSize: 1, applicationName: 'threadline-bench' });
  try {
    const store = new EventStore(db);
    const registry = new EventRegistry(UsageStatsEvents);
    let after: CommitPosition = START;
    let events = 0;
    let parsed = 0;
    const t0 = nowMs();
    const cpu0 = process.cpuUsage();
    for (;;) {
      const batch = await store.readAll(after, opts.batchSize);
      const last = batch[batch.length - 1];
      if (!last) break;
      for (const e of batch) {
        if (!registry.knows(e.eventType)) continue;
        registry.parse(e);
        parsed++;
      }
      events += batch.length;
      after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
    }
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      batchSize: opts.batchSize,
      events,
      parsed,
      seconds: Math.round((nowMs() - t0) / 100) / 10,
      cpuSeconds: Math.round(cpuSeconds * 10) / 10,
      eventsPerCpuSecond: Math.round(events / cpuSeconds),
    };
  } finally {
    await db.close();
  }
}
