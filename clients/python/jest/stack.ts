import { resolve } from 'node:path';
import { CreatedKey, freePort, runKeysCli, ServiceGroup, SERVICES } from '@threadline/stack';
import { createTestDatabase, createTestNats } from '@threadline/testing';

/** The repository root (this file is clients/python/jest/stack.ts). */
export const ROOT = resolve(__dirname, '../../..');

/** The running stack the Python tests talk to. */
export interface PythonStack {
  /** `http://127.0.0.1:<port>` of the gateway. */
  baseUrl: string;
  /** An admin key of the stack's tenant (`sdk`). */
  adminKey: string;
  /** A service key of the same tenant allowed 3 requests a window: the 429 test's key. */
  limitedKey: string;
  /** What each service wrote so far. */
  report(): string;
  /** SIGTERM to every service (SIGKILL after 5 s), then drops the database and the stream. */
  stop(): Promise<void>;
}

/**
 * Starts the whole stack as `apps/gateway-e2e/src/stack.ts` `startStack()` does (same libs, same
 * environment), which this project cannot import (an app's file, outside the module boundaries):
 * a fresh database and JetStream stream, keys made with the built keys CLI, the five BUILT services
 * as child processes, ready once `/health` is 200 and a query reaches each service that answers
 * requests (at most `timeoutMs`, default 120 s). Throws with every service's output otherwise.
 */
export async function startPythonStack(timeoutMs = 120_000): Promise<PythonStack> {
  const tenantId = 'sdk';
  const database = await createTestDatabase([], 3);
  const nats = await createTestNats();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const createKey = async (role: 'admin' | 'service', rateLimit?: number) => {
    const args = ['create', '--tenant', tenantId, '--role', role, '--name', 'sdk-py', '--json'];
    if (rateLimit !== undefined) args.push('--rate-limit', String(rateLimit));
    const out = await runKeysCli({ root: ROOT, databaseUrl: database.url, args, timeoutMs: 30_000 });
    return CreatedKey.parse(JSON.parse(out)).key;
  };
  const group = new ServiceGroup({
    root: ROOT,
    stopGraceMs: 5_000,
    buildHint: 'npm run build; npm test does it',
  });
  const stop = async () => {
    await group.stop();
    await database.drop();
    await nats.cleanup();
  };
  try {
    const adminKey = await createKey('admin');
    const limitedKey = await createKey('service', 3);
    const env: NodeJS.ProcessEnv = {
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
    for (const name of SERVICES) group.launch(name, env);
    const deadline = Date.now() + timeoutMs;
    await group.waitFor200(baseUrl + '/health', deadline);
    for (const path of ['/sessions?limit=1', '/users/sdk-ready/turns?limit=1', '/sessions/stats']) {
      await group.waitFor200(baseUrl + path, deadline, adminKey);
    }
    return { baseUrl, adminKey, limitedKey, report: () => group.report(), stop };
  } catch (error) {
    const output = group.report();
    await stop().catch(() => undefined);
    throw new Error(
      `The stack did not start: ${error instanceof Error ? error.message : String(error)}\n${output}`,
    );
  }
}
