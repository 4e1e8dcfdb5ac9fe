import { mkdirSync } from 'node:fs';
import { Db, ensureDatabase } from '@threadline/event-store';
import { connectNats, deleteEventStream, ensureEventStream } from '@threadline/messaging';
import {
  CreatedKey,
  freePort,
  runKeysCli,
  ServiceGroup,
  type ServiceName,
  type ServiceProcess,
  SERVICES,
} from '@threadline/stack';

export { SERVICES, type ServiceName, type ServiceProcess };

/** The bench's own stack: database, stream, key and the five built services. */
export interface BenchStack {
  baseUrl: string;
  databaseUrl: string;
  databaseName: string;
  stream: string;
  prefix: string;
  apiKey: string;
  services: ServiceProcess[];
  /** What every service wrote (for failures). */
  report(): string;
  /** SIGTERM (SIGKILL after 10 s) to every service, then drops the database (unless kept) and deletes the stream. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 10_000;

/** `postgres://.../<name>` of the server of `base` (default the local one). */
export function databaseUrlFor(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops database `name` on the server of `baseUrl` (terminating its connections first). */
export async function dropDatabase(baseUrl: string, name: string): Promise<void> {
  const admin = await Db.connect({
    url: databaseUrlFor(baseUrl, 'postgres'),
    poolSize: 1,
    applicationName: 'threadline-bench',
  });
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.close();
  }
}

export interface StartStackOptions {
  /** Repository root (where `dist/` is). */
  root: string;
  /** Postgres server URL (any database; the bench makes its own). */
  postgresUrl: string;
  natsUrl: string;
  /** `<ts>` of `threadline_bench_<ts>`, the stream `THREADLINE_BENCH_<ts>` and the prefix `tlbench_<ts>`. */
  runTag: string;
  /** Pool size of each service (DATABASE_POOL_SIZE). */
  poolSize: number;
  /** Services started with `node --cpu-prof --cpu-prof-dir=<profileDir>`. */
  profile: readonly ServiceName[];
  profileDir: string;
  /** Extra environment of every service (overrides the bench's defaults). */
  env?: NodeJS.ProcessEnv;
  /** Run on this database (created when missing) instead of `threadline_bench_<tag>`. */
  databaseName?: string;
  /** `stop()` leaves the database in place (a seeded dataset kept for later runs). */
  keepDatabase?: boolean;
}

/**
 * Starts the whole stack as a deployment would, on resources of its own: creates the database
 * `threadline_bench_<tag>` (or uses `databaseName`, kept by `stop()` with `keepDatabase`), the JetStream stream and subject prefix, a service API key of tenant
 * `default` with the keys CLI (which also migrates the gateway's tables), then the five built
 * services (`LOG_LEVEL=warn`, `NODE_ENV=production`, rate limits raised to 10^7 per window (their maximum),
 * `MAX_SESSIONS_PER_USER=0`, the gateway on a free port). Resolves when `GET /health` is 200 and an
 * authenticated query reaches each of the session-service, chat-log-service and analytics-projector (at most 90 s). On failure everything made so far is
 * removed and the error carries every service's output.
 */
export async function startStack(opts: StartStackOptions): Promise<BenchStack> {
  const databaseName = opts.databaseName ?? `threadline_bench_${opts.runTag}`;
  const databaseUrl = databaseUrlFor(opts.postgresUrl, databaseName);
  const stream = `THREADLINE_BENCH_${opts.runTag}`.toUpperCase();
  const prefix = `tlbench_${opts.runTag}`;
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const group = new ServiceGroup({ root: opts.root, stopGraceMs: STOP_GRACE_MS, buildHint: 'npm run build' });

  await ensureDatabase(databaseUrl);
  const nc = await connectNats({ NATS_URL: opts.natsUrl }, 'threadline-bench');
  await ensureEventStream(nc, stream, prefix);
  await nc.close();

  const report = () => group.report();
  const stop = async () => {
    await group.stop();
    if (!opts.keepDatabase)
      await dropDatabase(opts.postgresUrl, databaseName).catch((e: unknown) =>
        process.stderr.write(`bench: could not drop ${databaseName}: ${String(e)}\n`),
      );
    const nc2 = await connectNats({ NATS_URL: opts.natsUrl }, 'threadline-bench-cleanup');
    await deleteEventStream(nc2, stream);
    await nc2.close();
  };

  try {
    const stdout = await runKeysCli({
      root: opts.root,
      databaseUrl,
      args: [
        'create',
        '--tenant',
        'default',
        '--role',
        'service',
        '--name',
        'bench',
        '--rate-limit',
        '10000000',
        '--json',
      ],
      timeoutMs: 60_000,
    });
    const key = CreatedKey.parse(JSON.parse(stdout));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: String(opts.poolSize),
      NATS_URL: opts.natsUrl,
      NATS_SUBJECT_PREFIX: prefix,
      NATS_STREAM: stream,
      PORT: String(port),
      HOST: '127.0.0.1',
      DEFAULT_TENANT_ID: 'default',
      RATE_LIMIT_KEY_REQUESTS: '10000000',
      RATE_LIMIT_USER_REQUESTS: '10000000',
      MAX_SESSIONS_PER_USER: '0',
      // No metrics listeners unless asked (opts.env): the default ports are the same for every stack.
      METRICS_PORT: '0',
      ...opts.env,
    };
    if (opts.profile.length > 0) mkdirSync(opts.profileDir, { recursive: true });
    for (const name of SERVICES) {
      const profile = opts.profile.includes(name)
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${opts.profileDir}`,
            `--cpu-prof-name=${name}.${opts.runTag}.cpuprofile`,
          ]
        : [];
      // SERVICE_NODE_FLAGS of tools/lib.sh: the services' heap limit, as `npm start` runs them.
      group.launch(name, env, ['--max-old-space-size=512', ...profile]);
    }
    const deadline = Date.now() + 90_000;
    await group.waitFor200(`${baseUrl}/health`, deadline);
    // One query answered by each service that serves requests: session-service, chat-log-service,
    // analytics-projector. Each about a user without data: cheap on a seeded database too (the tenant's
    // `/sessions/stats` aggregates every turn).
    for (const path of [
      '/users/bench-ready/sessions?limit=1',
      '/users/bench-ready/turns?limit=1',
      '/users/bench-ready/stats',
    ]) {
      await group.waitFor200(`${baseUrl}${path}`, deadline, key.key);
    }
    return {
      baseUrl,
      databaseUrl,
      databaseName,
      stream,
      prefix,
      apiKey: key.key,
      services: group.processes,
      report,
      stop,
    };
  } catch (error) {
    const output = report();
    await stop().catch(() => undefined);
    throw new Error(
      `The stack did not start: ${error instanceof Error ? error.message : String(error)}\n${output}`,
    );
  }
}
