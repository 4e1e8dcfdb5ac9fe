import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  AIMessage,
  type BaseMessage,
  HumanMessage,
  mapChatMessagesToStoredMessages,
  SystemMessage,
  ToolMessage,
} from '@langchain/core/messages';
import { Threadline, ThreadlineError } from '@threadline/client';
// eslint-disable-next-line @nx/enforce-module-boundaries -- the one way tests start the whole built stack (issue 18 asks for it)
import { type Stack, startStack } from '../../../apps/gateway-e2e/src/stack';
import { ThreadlineChatMessageHistory } from './chat-message-history';
import { TRANSCRIPT_TOOL_NAME } from './message-mapping';

// ThreadlineChatMessageHistory against the five built services as processes (`npm run build` first),
// through the SDK, and the example run as two processes.

const ROOT = resolve(__dirname, '../../..');
const EXAMPLE = resolve(ROOT, 'dist/examples/langchain-js/chat.js');
const run = promisify(execFile);

let stack: Stack;
let client: Threadline;
/** Every request the SDK sent, as `METHOD path`. */
const requests: string[] = [];

beforeAll(async () => {
  stack = await startStack();
  const countingFetch: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    requests.push(`${(init?.method ?? 'GET').toUpperCase()} ${url.pathname}`);
    return fetch(input, init);
  };
  client = new Threadline({ baseUrl: stack.baseUrl, apiKey: stack.adminKey.key, fetch: countingFetch });
}, 120_000);

afterAll(async () => {
  if (!stack) return;
  await stack.stop();
}, 60_000);

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
const stored = (messages: BaseMessage[]) =>
  JSON.parse(JSON.stringify(mapChatMessagesToStoredMessages(messages))) as unknown;

const exchange = (): BaseMessage[] => [
  new SystemMessage('You answer about the weather.'),
  new HumanMessage({ content: 'Weather in Paris?', id: 'h-1' }),
  new AIMessage({
    content: '',
    id: 'run-1',
    tool_calls: [{ id: 'call_1', name: 'weather', args: { city: 'Paris' }, type: 'tool_call' }],
    usage_metadata: {
      input_tokens: 12,
      output_tokens: 5,
      total_tokens: 17,
      input_token_details: { cache_read: 4 },
      output_token_details: { reasoning: 2 },
    },
    response_metadata: { model_name: 'gpt-4o-mini', finish_reason: 'tool_calls' },
  }),
  new ToolMessage({
    content: '18 C, sunny',
    tool_call_id: 'call_1',
    name: 'weather',
    artifact: { source: 'met' },
  }),
  new AIMessage({
    content: [{ type: 'text', text: 'It is sunny, 18 C.' }],
    id: 'run-2',
    usage_metadata: { input_tokens: 30, output_tokens: 8, total_tokens: 38 },
    response_metadata: { model_name: 'gpt-4o-mini' },
  }),
];

describe('ThreadlineChatMessageHistory', () => {
  it('gives back exactly the messages written (system, human, AI with tool calls and usage, tool), from one write', async () => {
    const sessionId = uid('lc');
    const history = new ThreadlineChatMessageHistory({ client, sessionId, userId: uid('ada') });
    const messages = exchange();

    requests.length = 0;
    await history.addMessages(messages);
    // One turn write (the session did not exist: the first write's 404 creates it, then the same write again).
    expect(requests.filter((r) => r === `POST /sessions/${sessionId}/turns`)).toHaveLength(2);
    expect(requests.filter((r) => r === 'POST /sessions')).toHaveLength(1);
    // On an existing session, a write is exactly one request.
    requests.length = 0;
    await history.addMessages([new HumanMessage('And tomorrow?'), new AIMessage('Rain.')]);
    expect(requests).toEqual([`POST /sessions/${sessionId}/turns`]);
    messages.push(new HumanMessage('And tomorrow?'), new AIMessage('Rain.'));

    const back = await new ThreadlineChatMessageHistory({ client, sessionId }).getMessages();
    expect(back.map((m) => m.constructor.name)).toEqual([
      'SystemMessage',
      'HumanMessage',
      'AIMessage',
      'ToolMessage',
      'AIMessage',
      'HumanMessage',
      'AIMessage',
    ]);
    expect(stored(back)).toEqual(stored(messages));
    const ai = back[2];
    if (!AIMessage.isInstance(ai)) throw new Error('expected an AI message');
    expect(ai.tool_calls).toEqual([
      { id: 'call_1', name: 'weather', args: { city: 'Paris' }, type: 'tool_call' },
    ]);
    expect(ai.usage_metadata).toEqual({
      input_tokens: 12,
      output_tokens: 5,
      total_tokens: 17,
      input_token_details: { cache_read: 4 },
      output_token_details: { reasoning: 2 },
    });
    expect(ai.response_metadata).toEqual({ model_name: 'gpt-4o-mini', finish_reason: 'tool_calls' });
    expect(back[3]).toMatchObject({
      tool_call_id: 'call_1',
      content: '18 C, sunny',
      artifact: { source: 'met' },
    });
  });

  it("lands each write as one turn Threadline's analytics count: input, responses with model and usage, tool calls", async () => {
    const sessionId = uid('lc');
    const history = new ThreadlineChatMessageHistory({
      client,
      sessionId,
      userId: uid('ada'),
      agentName: 'weather-bot',
    });
    await history.addMessages(exchange());
    await history.addMessages([new HumanMessage('Thanks!'), new AIMessage('You are welcome.')]);

    const turns = await client.turns.list(sessionId).toArray();
    expect(turns).toHaveLength(2);
    const [first, second] = turns;
    expect(first).toMatchObject({
      conversation_turn: 1,
      user_input: 'Weather in Paris?',
      status: 'completed',
    });
    expect(first?.agent_responses.map((r) => [r.agent_name, r.response, r.model, r.usage_source])).toEqual([
      ['weather-bot', '', 'gpt-4o-mini', 'reported'],
      ['weather-bot', 'It is sunny, 18 C.', 'gpt-4o-mini', 'reported'],
    ]);
    expect(first?.agent_responses[0]?.usage).toEqual({
      input_tokens: 12,
      output_tokens: 5,
      cached_tokens: 4,
      reasoning_tokens: 2,
      total_tokens: 17,
    });
    expect(first?.tool_calls.map((c) => [c.tool_call_id, c.name, c.request, c.status, c.result])).toEqual([
      ['call_1', 'weather', { city: 'Paris' }, 'completed', '18 C, sunny'],
      [TRANSCRIPT_TOOL_NAME, TRANSCRIPT_TOOL_NAME, expect.anything(), 'completed', expect.any(Array)],
    ]);
    expect(second).toMatchObject({ conversation_turn: 2, user_input: 'Thanks!' });
    expect(second?.agent_responses.map((r) => [r.response, r.usage_source])).toEqual([
      ['You are welcome.', 'estimated'],
    ]);

    const stats = await client.stats.session(sessionId, { min_position: client.lastPosition });
    expect(stats.interactions).toBe(2);
    expect(stats.turns_completed).toBe(2);
    // Reported usage of turn 1 (17 + 38) plus the estimate of turn 2's response.
    expect(stats.total_tokens).toBeGreaterThan(55);
    // The real call plus one transcript entry per turn.
    expect(stats.tool_calls).toMatchObject({ completed: 3, failed: 0, total: 3 });
  });

  it('reads a session without turns, or one that does not exist, as no messages', async () => {
    expect(await new ThreadlineChatMessageHistory({ client, sessionId: uid('none') }).getMessages()).toEqual(
      [],
    );
  });

  it('clear() deletes every turn; the next write starts the history again', async () => {
    const sessionId = uid('lc');
    const history = new ThreadlineChatMessageHistory({ client, sessionId, userId: uid('ada') });
    await history.addMessages([new HumanMessage('one'), new AIMessage('1')]);
    await history.addMessages([new HumanMessage('two'), new AIMessage('2')]);
    await history.clear();
    expect(await history.getMessages()).toEqual([]);
    await history.addMessage(new HumanMessage('three'));
    expect((await history.getMessages()).map((m) => m.text)).toEqual(['three']);
  });

  it('surfaces what the API refuses as a ThreadlineError and writes nothing (an ended session: 409)', async () => {
    const sessionId = uid('lc');
    const history = new ThreadlineChatMessageHistory({ client, sessionId, userId: uid('ada') });
    await history.addMessages([new HumanMessage('hello'), new AIMessage('hi')]);
    await client.sessions.end(sessionId);
    const error = await history.addMessages([new HumanMessage('again')]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ThreadlineError);
    expect(error).toMatchObject({ status: 409, code: 'SESSION.ALREADY_ENDED' });
    expect((await history.getMessages()).map((m) => m.text)).toEqual(['hello', 'hi']);
  });
});

describe('examples/langchain-js (RunnableWithMessageHistory around a fake chat model)', () => {
  it('keeps the history across two processes: the second run sees the first', async () => {
    const sessionId = uid('lc-example');
    const userId = uid('ada');
    const env = { ...process.env, THREADLINE_URL: stack.baseUrl, THREADLINE_API_KEY: stack.adminKey.key };
    const chat = async (input: string) => {
      const { stdout } = await run(process.execPath, [EXAMPLE, sessionId, userId, input], {
        env,
        timeout: 60_000,
      });
      return JSON.parse(stdout.trim()) as { reply: string; seen: [string, string][] };
    };

    const first = await chat('My name is Ada.');
    expect(first).toEqual({
      reply: 'Noted: My name is Ada.',
      seen: [
        ['system', 'You are a helpful assistant.'],
        ['human', 'My name is Ada.'],
      ],
    });
    const second = await chat('What is my name?');
    expect(second.seen).toEqual([
      ['system', 'You are a helpful assistant.'],
      ['human', 'My name is Ada.'],
      ['ai', 'Noted: My name is Ada.'],
      ['human', 'What is my name?'],
    ]);

    const turns = await client.turns.list(sessionId).toArray();
    expect(
      turns.map((t) => [t.user_input, t.agent_responses[0]?.model, t.agent_responses[0]?.usage.input_tokens]),
    ).toEqual([
      ['My name is Ada.', 'fake-chat-1', 20],
      ['What is my name?', 'fake-chat-1', 40],
    ]);
  }, 120_000);
});

describe('the packed package', () => {
  it('npm pack gives a tarball that installs offline beside the SDK, loads with require, import and tsc, and works', () => {
    const dir = mkdtempSync(join(tmpdir(), 'threadline-client-langchain-'));
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
      const adapter = pack('libs/client-langchain');
      expect(adapter.files.map((f) => f.path).sort()).toEqual(
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
      mkdirSync(join(app, 'node_modules/@langchain'), { recursive: true });
      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'app', version: '1.0.0', private: true }),
      );
      // The two tarballs, offline; the peers (@langchain/core, zod) are the workspace's own copies.
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
        resolve(ROOT, 'node_modules/@langchain/core'),
        join(app, 'node_modules/@langchain/core'),
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
const { ThreadlineChatMessageHistory } = require('@threadline/client-langchain');
const { AIMessage, HumanMessage } = require('@langchain/core/messages');
const client = new Threadline({ baseUrl: process.env.BASE_URL, apiKey: process.env.API_KEY });
const history = new ThreadlineChatMessageHistory({ client, sessionId: process.env.SESSION_ID, userId: 'packed' });
history.addMessages([new HumanMessage('from the tarball'), new AIMessage('cjs')]).then(async () => {
  console.log(JSON.stringify((await history.getMessages()).map((m) => [m.type, m.text])));
});`,
      );
      writeFileSync(
        join(app, 'esm.mjs'),
        `import { createRequire } from 'node:module';
import { Threadline } from '@threadline/client';
import { ThreadlineChatMessageHistory } from '@threadline/client-langchain';
const cjs = createRequire(import.meta.url)('@threadline/client-langchain');
const client = new Threadline({ baseUrl: process.env.BASE_URL, apiKey: process.env.API_KEY });
const messages = await new ThreadlineChatMessageHistory({ client, sessionId: process.env.SESSION_ID }).getMessages();
console.log(JSON.stringify({ count: messages.length, same: ThreadlineChatMessageHistory === cjs.ThreadlineChatMessageHistory }));`,
      );
      const node = (file: string) =>
        JSON.parse(execFileSync(process.execPath, [file], { cwd: app, env, encoding: 'utf8' })) as unknown;
      expect(node('cjs.cjs')).toEqual([
        ['human', 'from the tarball'],
        ['ai', 'cjs'],
      ]);
      expect(node('esm.mjs')).toEqual({ count: 2, same: true });

      // The declarations resolve through `exports` for a TypeScript consumer (node16 resolution, ESM).
      writeFileSync(
        join(app, 'use.mts'),
        `import type { BaseListChatMessageHistory } from '@langchain/core/chat_history';
import { Threadline } from '@threadline/client';
import { ThreadlineChatMessageHistory } from '@threadline/client-langchain';
const client = new Threadline({ baseUrl: 'http://localhost:3000', apiKey: 'k' });
export const history: BaseListChatMessageHistory = new ThreadlineChatMessageHistory({ client, sessionId: 's' });
// @ts-expect-error sessionId is required
export const bad = new ThreadlineChatMessageHistory({ client });`,
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
