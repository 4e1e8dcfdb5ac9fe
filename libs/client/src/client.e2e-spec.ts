import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { CreatedKey, freePort, runKeysCli, ServiceGroup, SERVICES } from '@threadline/stack';
import { createTestDatabase, createTestNats, type TestDatabase, type TestNats } from '@threadline/testing';
import { Threadline } from './index';

// The SDK against the real stack: the five BUILT services as processes on a database and stream of
// their own (as apps/gateway-e2e starts them; `npm run build` first, `npm test` does it).

const ROOT = resolve(__dirname, '../../..');

interface Stack {
  baseUrl: string;
  adminKey: string;
  database: TestDatabase;
  createKey(opts: { tenantId: string; role: 'admin' | 'service'; rateLimit?: number }): Promise<string>;
  report(): string;
  stop(): Promise<void>;
}

async function startStack(tenantId: string): Promise<Stack> {
  const database = await createTestDatabase([], 3);
  const nats: TestNats = await createTestNats();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const createKey: Stack['createKey'] = async (opts) => {
    const args = ['create', '--tenant', opts.tenantId, '--role', opts.role, '--name', 'sdk', '--json'];
    if (opts.rateLimit !== undefined) args.push('--rate-limit', String(opts.rateLimit));
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
    const adminKey = await createKey({ tenantId, role: 'admin' });
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
      AGENT_BASE_URL: '',
    };
    for (const name of SERVICES) group.launch(name, env);
    const deadline = Date.now() + 120_000;
    await group.waitFor200(baseUrl + '/health', deadline);
    for (const path of ['/sessions?limit=1', '/users/sdk-ready/turns?limit=1', '/sessions/stats'])
      await group.waitFor200(baseUrl + path, deadline, adminKey);
    return { baseUrl, adminKey, database, createKey, report: () => group.report(), stop };
  } catch (error) {
    const output = group.report();
    await stop().catch(() => undefined);
    throw new Error(
      `The stack did not start: ${error instanceof Error ? error.message : String(error)}\n${output}`,
    );
  }
}

let stack: Stack;
let client: Threadline;

beforeAll(async () => {
  stack = await startStack('sdk');
  client = new Threadline({ baseUrl: stack.baseUrl, apiKey: stack.adminKey });
}, 120_000);

afterAll(async () => {
  if (!stack) return;
  await stack.stop();
  const output = stack.report();
  if (output !== '') process.stdout.write(`client e2e: service output\n${output}\n`);
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

describe('sessions and turns', () => {
  it('creates a session, logs a turn and reads both back', async () => {
    const userId = uid('ada');
    const session = await client.sessions.create({
      user_id: userId,
      title: 'Trip',
      metadata: { app: 'sdk' },
    });
    expect(session).toMatchObject({ user_id: userId, title: 'Trip', status: 'active' });
    expect(await client.sessions.get(session.session_id)).toMatchObject({ session_id: session.session_id });
    const turn = await client.turns.log(session.session_id, {
      user_input: 'What is the capital of France?',
      agent_responses: [{ agent_name: 'geo', response: 'Paris.', model: 'gpt-4o-mini' }],
    });
    expect(turn).toMatchObject({ session_id: session.session_id, conversation_turn: 1, status: 'completed' });
    expect(client.lastPosition).toBeGreaterThan(0);
    const turns = await client.turns.list(session.session_id).toArray();
    expect(turns.map((t) => t.turn_id)).toEqual([turn.turn_id]);
  });
});
