import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  Agent,
  type AgentInputItem,
  type Model,
  type ModelRequest,
  type ModelResponse,
  type protocol,
  Runner,
  tool,
  Usage,
} from '@openai/agents-core';
import { Threadline } from '@threadline/client';
import { z } from 'zod';
// eslint-disable-next-line @nx/enforce-module-boundaries -- the one way tests start the whole built stack (issue 18 asks for it)
import { type Stack, startStack } from '../../../apps/gateway-e2e/src/stack';
import { TRANSCRIPT_TOOL_NAME } from './item-mapping';
import { ThreadlineSession } from './threadline-session';

// ThreadlineSession against the five built services as processes (`npm run build` first), driven by
// a real Runner with a scripted Model, and the example run as a child process.

const ROOT = resolve(__dirname, '../../..');
const EXAMPLE = resolve(ROOT, 'dist/examples/openai-agents-js/agent.js');
const run = promisify(execFile);

let stack: Stack;
let client: Threadline;

beforeAll(async () => {
  stack = await startStack();
  client = new Threadline({ baseUrl: stack.baseUrl, apiKey: stack.adminKey.key });
}, 120_000);

afterAll(async () => {
  if (!stack) return;
  await stack.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** What one canned model call answers: items a model may output (streamed or not). */
type CannedOutput = protocol.StreamEventResponseCompleted['response']['output'];

/** A Model answering from a list of canned responses, recording each request's input items. */
class CannedModel implements Model {
  readonly inputs: AgentInputItem[][] = [];
  constructor(private readonly responses: CannedOutput[]) {}

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    return {
      usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }),
      output: await this.next(request),
    };
  }

  private next(request: ModelRequest): Promise<CannedOutput> {
    this.inputs.push(typeof request.input === 'string' ? [] : structuredClone(request.input));
    const output = this.responses.shift();
    if (output === undefined) return Promise.reject(new Error('CannedModel: no response left'));
    return Promise.resolve(output);
  }

  /** The same canned response, streamed as one `response_done` event. */
  getStreamedResponse(request: ModelRequest): AsyncIterable<protocol.StreamEvent> {
    const next = this.next(request);
    return (async function* () {
      const output = await next;
      yield {
        type: 'response_done',
        response: { id: 'canned', usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 }, output },
      };
    })();
  }
}

const assistant = (id: string, text: string): protocol.AssistantMessageItem => ({
  type: 'message',
  id,
  role: 'assistant',
  status: 'completed',
  content: [{ type: 'output_text', text }],
});

const weather = tool({
  name: 'weather',
  description: 'The weather in a city',
  parameters: z.object({ city: z.string() }),
  execute: ({ city }) => `sunny, 18 C in ${city}`,
});

/** A session whose `addItems` calls are also recorded, to compare with what it reads back. */
function recorded(session: ThreadlineSession): AgentInputItem[][] {
  const calls: AgentInputItem[][] = [];
  const add = session.addItems.bind(session);
  session.addItems = async (items) => {
    calls.push(structuredClone(items));
    await add(items);
  };
  return calls;
}

describe('ThreadlineSession with a real Runner', () => {
  it('two runs in one session: the second sees the first; items come back deep-equal; one turn per run', async () => {
    const sessionId = uid('ag');
    const session = new ThreadlineSession({
      client,
      sessionId,
      userId: uid('ada'),
      agentName: 'geo',
      model: 'canned-1',
    });
    const added = recorded(session);
    const model = new CannedModel([
      [
        {
          type: 'reasoning',
          id: 'rs_1',
          content: [{ type: 'input_text', text: 'Use the tool.' }],
          providerData: { encrypted: 'x1' },
        },
        {
          type: 'function_call',
          callId: 'call_1',
          name: 'weather',
          arguments: '{"city":"Paris"}',
          status: 'completed',
        },
      ],
      [assistant('msg_1', 'Sunny, 18 C.')],
      [assistant('msg_2', 'You asked about the weather in Paris.')],
    ]);
    const agent = new Agent({ name: 'geo', instructions: 'Answer.', model, tools: [weather] });
    const runner = new Runner({ tracingDisabled: true });

    const first = await runner.run(agent, 'Weather in Paris?', { session });
    expect(first.finalOutput).toBe('Sunny, 18 C.');
    const second = await runner.run(agent, 'What did I ask?', { session });
    expect(second.finalOutput).toBe('You asked about the weather in Paris.');

    // The second run's model call got the first run's items, read back from Threadline.
    const seen = model.inputs[2] ?? [];
    expect(seen.map((i) => ('type' in i && i.type !== 'message' ? i.type : `${i.role}`))).toEqual([
      'user',
      'reasoning',
      'function_call',
      'function_call_result',
      'assistant',
      'user',
    ]);

    expect(added).toHaveLength(2);
    const items = await new ThreadlineSession({ client, sessionId }).getItems();
    expect(items).toStrictEqual(added.flat());
    expect(items.find((i) => i.type === 'reasoning')).toStrictEqual({
      type: 'reasoning',
      id: 'rs_1',
      content: [{ type: 'input_text', text: 'Use the tool.' }],
      providerData: { encrypted: 'x1' },
    });

    const turns = await client.turns.list(sessionId).toArray();
    expect(turns.map((t) => t.user_input)).toEqual(['Weather in Paris?', 'What did I ask?']);
    expect(turns[0]?.agent_responses.map((r) => [r.agent_name, r.response, r.model])).toEqual([
      ['geo', 'Sunny, 18 C.', 'canned-1'],
    ]);
    expect(turns[0]?.tool_calls.map((c) => [c.tool_call_id, c.name, c.request, c.status, c.result])).toEqual([
      ['call_1', 'weather', { city: 'Paris' }, 'completed', { type: 'text', text: 'sunny, 18 C in Paris' }],
      [TRANSCRIPT_TOOL_NAME, TRANSCRIPT_TOOL_NAME, expect.anything(), 'completed', expect.any(Array)],
    ]);

    const stats = await client.stats.session(sessionId, { min_position: client.lastPosition });
    expect(stats).toMatchObject({ interactions: 2, turns_completed: 2 });
    expect(stats.total_tokens).toBeGreaterThan(0);
    // The real call plus one transcript entry per turn.
    expect(stats.tool_calls).toMatchObject({ completed: 3, total: 3 });
  }, 60_000);
});

describe('ThreadlineSession with a streamed run', () => {
  it('persists a streamed run as one turn too, items deep-equal', async () => {
    const sessionId = uid('ag');
    const session = new ThreadlineSession({ client, sessionId, userId: uid('ada') });
    const added = recorded(session);
    const model = new CannedModel([
      [
        {
          type: 'function_call',
          callId: 'call_s',
          name: 'weather',
          arguments: '{"city":"Oslo"}',
          status: 'completed',
        },
      ],
      [assistant('msg_s', 'Cold.')],
    ]);
    const agent = new Agent({ name: 'geo', instructions: 'Answer.', model, tools: [weather] });
    const result = await new Runner({ tracingDisabled: true }).run(agent, 'Weather in Oslo?', {
      session,
      stream: true,
    });
    for await (const _event of result) {
      // drain the stream; the session is written when it ends
    }
    await result.completed;
    expect(result.finalOutput).toBe('Cold.');
    expect(added).toHaveLength(1);
    expect(await session.getItems()).toStrictEqual(added.flat());
    const turns = await client.turns.list(sessionId).toArray();
    expect(
      turns.map((t) => [t.user_input, t.agent_responses.length, t.tool_calls.map((c) => c.tool_call_id)]),
    ).toEqual([['Weather in Oslo?', 1, ['call_s', TRANSCRIPT_TOOL_NAME]]]);
  });
});

describe('ThreadlineSession', () => {
  const items = (n: number, from = 0): AgentInputItem[] =>
    Array.from({ length: n }, (_, i) =>
      i % 2 === 0
        ? { type: 'message', role: 'user', content: `q${from + i}` }
        : assistant(`msg_${from + i}`, `a${from + i}`),
    );

  it('getItems(limit) gives the most recent items, oldest first, across turns', async () => {
    const session = new ThreadlineSession({ client, sessionId: uid('ag'), userId: uid('ada') });
    await session.addItems(items(2, 0));
    await session.addItems(items(2, 2));
    await session.addItems(items(2, 4));
    const all = [...items(2, 0), ...items(2, 2), ...items(2, 4)];
    expect(await session.getItems()).toStrictEqual(all);
    expect(await session.getItems(3)).toStrictEqual(all.slice(-3));
    expect(await session.getItems(1)).toStrictEqual(all.slice(-1));
    expect(await session.getItems(50)).toStrictEqual(all);
    expect(await session.getItems(0)).toStrictEqual([]);
  });

  it('popItem removes and returns the most recent item, turn by turn; undefined when empty', async () => {
    const session = new ThreadlineSession({ client, sessionId: uid('ag'), userId: uid('ada') });
    await session.addItems(items(2, 0));
    await session.addItems(items(2, 2));
    expect(await session.popItem()).toStrictEqual(assistant('msg_3', 'a3'));
    expect(await session.getItems()).toStrictEqual([
      ...items(2, 0),
      { type: 'message', role: 'user', content: 'q2' },
    ]);
    expect(await session.popItem()).toStrictEqual({ type: 'message', role: 'user', content: 'q2' });
    expect(await session.popItem()).toStrictEqual(assistant('msg_1', 'a1'));
    expect(await session.popItem()).toStrictEqual({ type: 'message', role: 'user', content: 'q0' });
    expect(await session.popItem()).toBeUndefined();
    expect(await session.getItems()).toStrictEqual([]);
  });

  it('clearSession deletes every item; the session keeps its id', async () => {
    const sessionId = uid('ag');
    const session = new ThreadlineSession({ client, sessionId, userId: uid('ada') });
    await session.addItems(items(4));
    await session.clearSession();
    expect(await session.getItems()).toStrictEqual([]);
    expect(await session.getSessionId()).toBe(sessionId);
    expect(await client.sessions.exists(sessionId)).toBe(true);
  });

  it('creates a session on getSessionId when none is given, once', async () => {
    const userId = uid('ada');
    const session = new ThreadlineSession({ client, userId });
    const [a, b] = await Promise.all([session.getSessionId(), session.getSessionId()]);
    expect(a).toBe(b);
    expect(await client.sessions.get(a)).toMatchObject({ session_id: a, user_id: userId });
    expect(await session.getItems()).toStrictEqual([]);
  });
});

describe('examples/openai-agents-js (a real Runner with a scripted Model)', () => {
  it('runs offline against Threadline: two runs in one session, the second sees the first', async () => {
    const sessionId = uid('ag-example');
    const env = { ...process.env, THREADLINE_URL: stack.baseUrl, THREADLINE_API_KEY: stack.adminKey.key };
    const { stdout } = await run(process.execPath, [EXAMPLE, sessionId, uid('ada')], {
      env,
      timeout: 60_000,
    });
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
    expect(lines).toEqual([
      { run: 1, finalOutput: 'The weather: sunny, 18 C in Paris.', modelSaw: 4 },
      { run: 2, finalOutput: 'Your first question was: What is the weather in Paris?', modelSaw: 6 },
    ]);
    const turns = await client.turns.list(sessionId).toArray();
    expect(turns.map((t) => [t.user_input, t.agent_responses.length, t.tool_calls.length])).toEqual([
      ['What is the weather in Paris?', 1, 2],
      ['What did I ask you before?', 1, 1],
    ]);
  }, 120_000);
});

describe('the packed package', () => {
  it('npm pack gives a tarball that installs offline beside the SDK, loads with require, import and tsc, and works', () => {
    const dir = mkdtempSync(join(tmpdir(), 'threadline-client-openai-agents-'));
    try {
      const pack = (pkg: string) => {
        const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
          cwd: resolve(ROOT, pkg),
          encoding: 'utf8',
        });
        const [info] = JSON.parse(out.slice(out.indexOf('['))) as {
          filename: string;
          files: { path: string }[];
        }[];
        if (info === undefined) throw new Error(`npm pack said: ${out}`);
        return info;
      };
      const sdk = pack('libs/client');
      const adapter = pack('libs/client-openai-agents');
      expect(adapter.files.map((f) => f.path)).toEqual(
        expect.arrayContaining([
          'README.md',
          'dist/cjs/index.d.ts',
          'dist/cjs/index.js',
          'dist/esm/index.mjs',
          'package.json',
        ]),
      );
      expect(adapter.files.some((f) => f.path.startsWith('src/') || f.path.includes('spec'))).toBe(false);

      const app = join(dir, 'app');
      mkdirSync(join(app, 'node_modules/@openai'), { recursive: true });
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'app', version: '1.0.0', private: true }),
      );
      // The two tarballs, offline; the peers (@openai/agents-core, zod) are the workspace's own copies.
      execFileSync(
        'npm',
        [
          'install',
          '--offline',
          '--legacy-peer-deps',
          '--no-audit',
          '--no-fund',
          join(dir, sdk.filename),
          join(dir, adapter.filename),
        ],
        { cwd: app, encoding: 'utf8' },
      );
      symlinkSync(
        resolve(ROOT, 'node_modules/@openai/agents-core'),
        join(app, 'node_modules/@openai/agents-core'),
        'dir',
      );
      symlinkSync(resolve(ROOT, 'node_modules/zod'), join(app, 'node_modules/zod'), 'dir');

      const env = {
        ...process.env,
        BASE_URL: stack.baseUrl,
        API_KEY: stack.adminKey.key,
        SESSION_ID: uid('packed'),
      };
      writeFileSync(
        join(app, 'cjs.cjs'),
        `const { Threadline } = require('@threadline/client');
const { ThreadlineSession } = require('@threadline/client-openai-agents');
const client = new Threadline({ baseUrl: process.env.BASE_URL, apiKey: process.env.API_KEY });
const session = new ThreadlineSession({ client, sessionId: process.env.SESSION_ID, userId: 'packed' });
session.addItems([{ type: 'message', role: 'user', content: 'from the tarball' }]).then(async () => {
  console.log(JSON.stringify(await session.getItems()));
});`,
      );
      writeFileSync(
        join(app, 'esm.mjs'),
        `import { createRequire } from 'node:module';
import { Threadline } from '@threadline/client';
import { ThreadlineSession } from '@threadline/client-openai-agents';
const cjs = createRequire(import.meta.url)('@threadline/client-openai-agents');
const client = new Threadline({ baseUrl: process.env.BASE_URL, apiKey: process.env.API_KEY });
const items = await new ThreadlineSession({ client, sessionId: process.env.SESSION_ID }).getItems(1);
console.log(JSON.stringify({ count: items.length, same: ThreadlineSession === cjs.ThreadlineSession }));`,
      );
      const node = (file: string) =>
        JSON.parse(execFileSync(process.execPath, [file], { cwd: app, env, encoding: 'utf8' })) as unknown;
      expect(node('cjs.cjs')).toEqual([{ type: 'message', role: 'user', content: 'from the tarball' }]);
      expect(node('esm.mjs')).toEqual({ count: 1, same: true });

      // The declarations resolve through `exports` for a TypeScript consumer (node16 resolution, ESM).
      writeFileSync(
        join(app, 'use.mts'),
        `import type { Session } from '@openai/agents-core';
import { Threadline } from '@threadline/client';
import { ThreadlineSession } from '@threadline/client-openai-agents';
const client = new Threadline({ baseUrl: 'http://localhost:3000', apiKey: 'k' });
export const session: Session = new ThreadlineSession({ client, sessionId: 's' });
// @ts-expect-error client is required
export const bad = new ThreadlineSession({ sessionId: 's' });`,
      );
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'node16',
            moduleResolution: 'node16',
            target: 'ES2022',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            lib: ['ES2023', 'DOM'],
            types: [],
          },
          files: ['use.mts'],
        }),
      );
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', app], {
        encoding: 'utf8',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
