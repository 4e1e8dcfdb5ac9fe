import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  CreatedKey,
  freePort,
  runKeysCli,
  ServiceGroup,
  type ServiceName,
  SERVICES,
} from '@threadline/stack';
import { createTestDatabase, createTestNats, type TestDatabase, type TestNats } from '@threadline/testing';
import { setDefaultCredential } from './http-client';

export { CreatedKey } from '@threadline/stack';

const ROOT = resolve(__dirname, '../../..');
const STOP_GRACE_MS = 5_000;

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
  /** The `/metrics` URL of each service (with `metrics: true`; the gateway's is on its HTTP port). */
  metricsUrls: Partial<Record<ServiceName, string>>;
  /** SIGTERM to one service (SIGKILL after 5 s); resolves once it exited. The others keep running. */
  stopService(name: ServiceName): Promise<void>;
  /**
   * SIGTERM to every service, SIGKILL after 5 s; then drops the database and the stream. What the
   * services wrote goes to `tmp/e2e-logs/<test file>.log` (the path is returned), not to the test
   * output; a line names the file when a service had exited unexpectedly.
   */
  stop(): Promise<string>;
}

/** Where {@link Stack.stop} writes what the services of each test file's stack wrote. */
export const E2E_LOG_DIR = resolve(ROOT, 'tmp/e2e-logs');

function keepServiceLogs(output: string): string {
  const testPath = expect.getState().testPath ?? 'stack';
  const file = join(E2E_LOG_DIR, `${basename(testPath).replace(/\.ts$/, '')}.log`);
  mkdirSync(E2E_LOG_DIR, { recursive: true });
  writeFileSync(file, output === '' ? '(no output)\n' : `${output}\n`);
  if (output.includes('exited unexpectedly')) {
    process.stdout.write(
      `${basename(testPath)}: a service exited unexpectedly; what the services wrote: ${file}\n`,
    );
  }
  return file;
}

/** Runs the built keys CLI (`dist/apps/gateway/src/keys-cli.js`) against `databaseUrl`; its stdout. */
const keysCli = (databaseUrl: string, args: string[]) =>
  runKeysCli({ root: ROOT, databaseUrl, args, timeoutMs: 30_000 });

/**
 * Starts the whole stack for one e2e file, as a deployment would: a fresh database, a JetStream
 * stream and subject prefix of its own, an admin key of `tenantId` made with the keys CLI (which
 * also applies the gateway's migrations), then the five BUILT services as child processes
 * (`LOG_LEVEL=warn`, the gateway on a free port, rate limits high unless the environment sets
 * `RATE_LIMIT_*`). Every `new Api(baseUrl)` then sends the admin key. Resolves once the gateway's
 * `GET /health` is 200 and a query through it reaches each service that answers requests (bounded: `timeoutMs`,
 * default 120 s). Throws with every service's output when a service exits or the stack is not ready in time.
 */
export async function startStack(
  opts: {
    tenantId?: string;
    timeoutMs?: number;
    /** Give every service a `/metrics` listener on a free port (`Stack.metricsUrls`). */
    metrics?: boolean;
    /** More environment for every service (e.g. `OTEL_*`). */
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<Stack> {
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
    ...opts.env,
  };
  const metricsUrls: Partial<Record<ServiceName, string>> = {};
  const metricsEnv: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {};
  if (opts.metrics) {
    for (const name of SERVICES) {
      if (name === 'gateway') {
        metricsUrls[name] = `${baseUrl}/metrics`;
        continue;
      }
      const metricsPort = await freePort();
      metricsUrls[name] = `http://127.0.0.1:${metricsPort}/metrics`;
      metricsEnv[name] = { METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1' };
    }
  }
  const group = new ServiceGroup({
    root: ROOT,
    stopGraceMs: STOP_GRACE_MS,
    buildHint: 'npm run build; npm test does it',
  });
  const report = () => group.report();
  const stop = async (): Promise<string> => {
    await group.stop();
    setDefaultCredential(baseUrl, undefined);
    await database.drop();
    await nats.cleanup();
    return keepServiceLogs(group.report());
  };

  try {
    for (const name of SERVICES) group.launch(name, { ...env, ...metricsEnv[name] });
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    await group.waitFor200(baseUrl + '/health', deadline);
    // Every service that answers requests must be listening, not just the gateway: a query through
    // the gateway to each of them (session-service, chat-log-service, analytics-projector).
    for (const path of ['/sessions?limit=1', '/users/e2e-ready/turns?limit=1', '/sessions/stats']) {
      await group.waitFor200(baseUrl + path, deadline, adminKey.key);
    }
  } catch (error) {
    const output = report();
    await stop().catch(() => undefined);
    throw new Error(
      `The stack did not start: ${error instanceof Error ? error.message : String(error)}\n${output}`,
    );
  }
  const stopService = (name: ServiceName) => group.stopOne(name);
  return {
    baseUrl,
    tenantId,
    adminKey,
    createKey,
    revokeKey,
    database,
    nats,
    report,
    metricsUrls,
    stopService,
    stop,
  };
}
