import { HttpClient } from './http-client';
import {
  projectionCaughtUp,
  type ReadFloorResult,
  runProjectionsCli,
  runReadFloor,
  runRebuild,
  type RebuildResult,
} from './rebuild';
import { runReads, type ReadsResult } from './reads';
import { ensureSeeded, SEED_STACK_ENV, type SeedResult } from './seed';
import { databaseUrlFor, dropDatabase, type ServiceName, startStack } from './stack';
import type { TurnPool } from './turns';

/** Template turns written through the services for the seeded ones to copy (see `ensureSeeded`). */
const TEMPLATES = 100;
/** Unmeasured requests before each read series. */
const READ_WARMUP = 500;

export interface AtSizeOptions {
  root: string;
  postgresUrl: string;
  natsUrl: string;
  runTag: string;
  /** Scenarios wanted among 6 and 7. */
  rebuild: boolean;
  reads: boolean;
  /** Keep the dataset in this database (reused when it holds one of the same size); default: a database of this run, dropped at the end. */
  seedDb: string | undefined;
  seedSessions: number;
  seedTurnsPerSession: number;
  seedUsers: number;
  rebuildBatchSize: number;
  readRequests: number;
  /** Closed-loop clients of each series of scenario 7, e.g. `[1, 4]` (see `runReads`). */
  readClients: readonly number[];
  poolSize: number;
  /** Services of scenario 7's stack started with `node --cpu-prof`, their profiles in `profileDir`. */
  profile: readonly ServiceName[];
  profileDir: string;
  turns: TurnPool;
  log: (line: string) => void;
}

export interface AtSizeResult {
  seed: SeedResult & { kept: boolean };
  rebuild?: RebuildResult;
  readFloor?: ReadFloorResult;
  reads?: ReadsResult;
}

/**
 * Scenarios 6 and 7 on one seeded dataset (`ensureSeeded`): scenario 6 rebuilds `usage_stats` with the
 * projections CLI while nothing else runs (which also brings it up to date for the reads); without it,
 * `usage_stats` is rebuilt unmeasured when it lags. Scenario 7 then starts the stack on the dataset and
 * measures the reads. The dataset's database is dropped at the end unless `seedDb` names it.
 * Throws when seeding, the rebuild or the stack fails (the database is dropped all the same when not kept).
 */
export async function runAtSize(opts: AtSizeOptions): Promise<AtSizeResult> {
  const kept = opts.seedDb !== undefined;
  const databaseName = opts.seedDb ?? `threadline_bench_${opts.runTag}_seed`;
  const url = databaseUrlFor(opts.postgresUrl, databaseName);
  try {
    const seed = await ensureSeeded({
      root: opts.root,
      postgresUrl: opts.postgresUrl,
      natsUrl: opts.natsUrl,
      runTag: `${opts.runTag}_seed`,
      databaseName,
      params: {
        sessions: opts.seedSessions,
        turnsPerSession: opts.seedTurnsPerSession,
        users: opts.seedUsers,
        templates: TEMPLATES,
      },
      turns: opts.turns,
      poolSize: opts.poolSize,
      log: opts.log,
    });
    const result: AtSizeResult = { seed: { ...seed, kept } };

    if (opts.rebuild) {
      opts.log(
        `scenario 6: projections rebuild usage_stats on ${databaseName} (${seed.counts.events} events)...`,
      );
      result.rebuild = await runRebuild({
        root: opts.root,
        databaseUrl: url,
        projection: 'usage_stats',
        batchSize: opts.rebuildBatchSize,
      });
      opts.log(`scenario 6: ${result.rebuild.output} (CLI wall ${result.rebuild.wallSeconds} s)`);
      opts.log('scenario 6: the floor, every event read and parsed, nothing written...');
      result.readFloor = await runReadFloor({ databaseUrl: url, batchSize: opts.rebuildBatchSize });
      opts.log(
        `scenario 6: read and parsed ${result.readFloor.events} events with ${result.readFloor.cpuSeconds} s of CPU (${result.readFloor.eventsPerCpuSecond} events per CPU-second)`,
      );
    } else if (opts.reads && !(await projectionCaughtUp(opts.root, url, 'usage_stats'))) {
      opts.log('usage_stats lags the dataset: rebuilding it (not measured)...');
      const run = await runProjectionsCli(opts.root, url, ['rebuild', 'usage_stats']);
      opts.log(`  ${run.stdout.trim()}`);
    }

    if (opts.reads) {
      opts.log(`scenario 7: starting the stack on ${databaseName}...`);
      const stack = await startStack({
        root: opts.root,
        postgresUrl: opts.postgresUrl,
        natsUrl: opts.natsUrl,
        runTag: `${opts.runTag}_reads`,
        poolSize: opts.poolSize,
        profile: opts.profile,
        profileDir: opts.profileDir,
        databaseName,
        keepDatabase: true,
        env: SEED_STACK_ENV,
      });
      const client = new HttpClient(stack.baseUrl, stack.apiKey, Math.max(...opts.readClients));
      try {
        opts.log(
          `scenario 7: ${opts.readClients.join(' and ')} clients, ${READ_WARMUP} warm-up + ${opts.readRequests} requests per route`,
        );
        result.reads = await runReads({
          client,
          databaseUrl: url,
          requests: opts.readRequests,
          clients: opts.readClients,
          warmup: READ_WARMUP,
          processes: stack.services.map((p) => ({ name: p.name, pid: p.pid })),
        });
        for (const s of result.reads.series)
          opts.log(
            `  ${s.route}, clients ${s.clients}: p50 ${s.latency.p50} ms, p99 ${s.latency.p99} ms, ${s.requestsPerSecond} req/s, errors ${JSON.stringify(s.errors)}, wrong ${s.wrong}`,
          );
        const dead = stack.services.filter((p) => p.exited);
        if (dead.length)
          throw new Error(
            `services exited during scenario 7: ${dead.map((p) => p.name).join(', ')}\n${stack.report()}`,
          );
      } finally {
        client.close();
        await stack.stop();
      }
    }
    return result;
  } finally {
    if (!kept) {
      opts.log(`dropping ${databaseName}`);
      await dropDatabase(opts.postgresUrl, databaseName);
    }
  }
}
