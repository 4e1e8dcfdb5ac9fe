import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { createTestDatabase, createTestNats, type TestDatabase, type TestNats } from '@threadline/testing';
import { setDefaultCredential } from './http-client';

const run = promisify(execFile);

/** The five services, each run from its build output `dist/apps/<name>/src/main.js`. */
export const SERVICES = [
  'session-service',
  'chat-log-service',
  'cleanup-worker',
  'analytics-projector',
  'gateway',
] as const;
export type ServiceName = (typeof SERVICES)[number];

const ROOT = resolve(__dirname, '../../..');
const OUTPUT_LIMIT = 64 * 1024;
const STOP_GRACE_MS = 5_000;

/** One service process and what it wrote (stdout and stderr interleaved, last 64 KiB). */
interface ServiceProcess {
  name: ServiceName;
  child: ChildProcess;
  output: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
  stopping: boolean;
}

/** An API key made with the keys CLI: the key (shown once) and its public id. */
export const CreatedKey = z.object({
  key: z.string(),
  key_id: z.string(),
  tenant_id: z.string(),
  role: z.enum(['admin', 'service']),
});
export type CreatedKey = z.infer<typeof CreatedKey>;

/** The running stack of one e2e file. */
export interface Stack {
  /** `http://127.0.0.1:<port>` of the gateway. */
  baseUrl: string;
  /** Tenant of the stack's admin key (also the gateway's `DEFAULT_TENANT_ID`). */
  tenantId: string;
  /** An admin key of `tenantId`, sent by default by every `new Api(baseUrl)`. */
  adminKey: CreatedKey;
  /** Creates an API key with the keys CLI (`npm run keys -- create`), as an operator would. */
  createKey(opts: { tenantId: string; role: 'admin' | 'service'; rateLimit?: number }): Promise<CreatedKey>;
  /** Revokes a key with the keys CLI (`npm run keys -- revoke`). */
  revokeKey(keyId: string): Promise<void>;
  /** The stack's own database (a pool of the test, to inspect events and read models). */
  database: TestDatabase;
  nats: TestNats;
  /** What each service wrote so far, and how the ones that stopped unexpectedly exited. */
  report(): string;
  /** SIGTERM to every service, SIGKILL after 5 s; then drops the database and the stream. */
  stop(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function launch(name: ServiceName, env: NodeJS.ProcessEnv): ServiceProcess {
  const main = join(ROOT, 'dist/apps', name, 'src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run build; npm test does it)`);
  const child = spawn(process.execPath, [main], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: ServiceProcess = {
    name,
    child,
    output: '',
    exited: false,
    stopping: false,
    exit: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal }))),
  };
  const keep = (chunk: Buffer) => {
    proc.output = (proc.output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  void proc.exit.then(({ code, signal }) => {
    proc.exited = true;
    if (!proc.stopping) proc.output += `\n[${name} exited unexpectedly: code ${code}, signal ${signal}]\n`;
  });
  return proc;
}

async function stopProcess(proc: ServiceProcess): Promise<void> {
  proc.stopping = true;
  if (proc.exited) return;
  proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    proc.exit.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_GRACE_MS))),
  ]);
  clearTimeout(timer);
  if (timedOut && !proc.exited) {
    proc.output += `\n[${proc.name} did not stop within ${STOP_GRACE_MS} ms of SIGTERM: SIGKILL]\n`;
    proc.child.kill('SIGKILL');
    await proc.exit;
  }
}

/** Runs the built keys CLI (`dist/apps/gateway/src/keys-cli.js`) against `databaseUrl`; its stdout. */
async function keysCli(databaseUrl: string, args: string[]): Promise<string> {
  const cli = join(ROOT, 'dist/apps/gateway/src/keys-cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  const { stdout } = await run(process.execPath, [cli, ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    timeout: 30_000,
  });
  return stdout;
}

/**
 * Starts the whole stack for one e2e file, as a deployment would: a fresh database, a JetStream
 * stream and subject prefix of its own, an admin key of `tenantId` made with the keys CLI (which
 * also applies the gateway's migrations), then the five BUILT services as child processes
 * (`LOG_LEVEL=warn`, the gateway on a free port, rate limits high unless the environment sets
 * `RATE_LIMIT_*`). Every `new Api(baseUrl)` then sends the admin key. Resolves once the gateway's
 * `GET /health` is 200 and a query through it reaches each service that answers requests (bounded: `timeoutMs`,
 * default 120 s). Throws with every service's output when a service exits or the stack is not ready in time.
 */
export async function startStack(opts: { tenantId?: string; timeoutMs?: number } = {}): Promise<Stack> {
  const tenantId = opts.tenantId ?? 'e2e';
  const database = await createTestDatabase([], 3);
  const nats = await createTestNats();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const createKey: Stack['createKey'] = async (opts) => {
    const args = ['create', '--tenant', opts.tenantId, '--role', opts.role, '--name', 'e2e', '--json'];
    if (opts.rateLimit !== undefined) args.push('--rate-limit', String(opts.rateLimit));
    return CreatedKey.parse(JSON.parse(await keysCli(database.url, args)));
  };
  const revokeKey = async (keyId: string) => {
    await keysCli(database.url, ['revoke', keyId]);
  };
  let adminKey: CreatedKey;
  try {
    adminKey = await createKey({ tenantId, role: 'admin' });
  } catch (error) {
    await database.drop();
    await nats.cleanup();
    throw error;
  }
  setDefaultCredential(baseUrl, adminKey.key);
  const env: NodeJS.ProcessEnv = {
    // Suites send hundreds of requests with one key; auth.e2e-spec gives a key its own low limit.
    RATE_LIMIT_KEY_REQUESTS: '1000000',
    RATE_LIMIT_USER_REQUESTS: '1000000',
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '4',
    NATS_URL: process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222',
    NATS_SUBJECT_PREFIX: nats.prefix,
    NATS_STREAM: nats.stream,
    PORT: String(port),
    HOST: '127.0.0.1',
    DEFAULT_TENANT_ID: tenantId,
  };
  const procs: ServiceProcess[] = [];
  const report = () =>
    procs
      .filter((p) => p.output.trim() !== '')
      .map((p) => `----- ${p.name} -----\n${p.output.trim()}`)
      .join('\n');
  const stop = async () => {
    await Promise.all(procs.map(stopProcess));
    setDefaultCredential(baseUrl, undefined);
    await database.drop();
    await nats.cleanup();
  };

  try {
    for (const name of SERVICES) procs.push(launch(name, env));
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    await waitFor200(baseUrl + '/health', procs, deadline);
    // Every service that answers requests must be listening, not just the gateway: a query through
    // the gateway to each of them (session-service, chat-log-service, analytics-projector).
    for (const path of ['/sessions?limit=1', '/users/e2e-ready/turns?limit=1', '/sessions/stats']) {
      await waitFor200(baseUrl + path, procs, deadline, adminKey.key);
    }
  } catch (error) {
    const output = report();
    await stop().catch(() => undefined);
    throw new Error(
      `The stack did not start: ${error instanceof Error ? error.message : String(error)}\n${output}`,
    );
  }
  return { baseUrl, tenantId, adminKey, createKey, revokeKey, database, nats, report, stop };
}

/** Polls `url` until it answers 200; throws at `deadline` (epoch ms) or as soon as a service has exited. */
async function waitFor200(
  url: string,
  procs: readonly ServiceProcess[],
  deadline: number,
  credential?: string,
): Promise<void> {
  let last = 'no answer';
  for (;;) {
    const dead = procs.find((p) => p.exited);
    if (dead) throw new Error(`${dead.name} exited while the stack was starting`);
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(2_000),
        headers: credential !== undefined ? { authorization: `Bearer ${credential}` } : {},
      });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 in time (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
