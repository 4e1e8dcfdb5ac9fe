import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { TurnView } from '@threadline/contracts';
import { eventually } from '@threadline/testing';
import { Api, Problem, problemOf, type Reply, sessionOf } from './http-client';
import { type Stack } from './stack';
import { startStackWithEnv } from './stack-env';

// POST /query against a real OpenAI-compatible backend: an HTTP server started here stands in for it
// (AGENT_BASE_URL points the spawned gateway at it). It records what the gateway sends and answers
// as each test sets: a completion with usage, an error status, malformed JSON, or nothing (timeout).

const SYSTEM_PROMPT = 'You are a terse assistant.';
const TIMEOUT_MS = 1500;

interface ChatRequest {
  path: string;
  authorization: string | undefined;
  body: { model: string; messages: { role: string; content: string }[]; temperature?: number };
}

let stack: Stack;
let api: Api;
let backend: Server;
const requests: ChatRequest[] = [];
let answer: (req: ChatRequest, res: ServerResponse) => void;

const ChatBody = z.object({
  model: z.string(),
  messages: z.array(z.object({ role: z.string(), content: z.string() })),
  temperature: z.number().optional(),
});

function completion(res: ServerResponse, content: string, usage?: Record<string, unknown>) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id: 'chatcmpl-e2e',
      object: 'chat.completion',
      model: 'stub-model-1',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      ...(usage ? { usage } : {}),
    }),
  );
}

/** Default behaviour: answer `#<n> <query>` with full usage. */
const answerWithUsage = (req: ChatRequest, res: ServerResponse) =>
  completion(res, `#${req.body.messages.length} ${req.body.messages.at(-1)?.content ?? ''}`, {
    prompt_tokens: 40,
    completion_tokens: 8,
    total_tokens: 48,
    prompt_tokens_details: { cached_tokens: 32 },
    completion_tokens_details: { reasoning_tokens: 3 },
  });

beforeAll(async () => {
  backend = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const chat: ChatRequest = {
        path: req.url ?? '',
        authorization: req.headers['authorization'],
        body: ChatBody.parse(JSON.parse(Buffer.concat(chunks).toString('utf8'))),
      };
      requests.push(chat);
      answer(chat, res);
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const port = (backend.address() as AddressInfo).port;
  stack = await startStackWithEnv({
    AGENT_BASE_URL: `http://127.0.0.1:${port}/v1`,
    AGENT_API_KEY: 'sk-e2e',
    AGENT_MODEL: 'stub-model',
    AGENT_TIMEOUT_MS: String(TIMEOUT_MS),
    AGENT_HISTORY_TURNS: '2',
    AGENT_SYSTEM_PROMPT: SYSTEM_PROMPT,
  });
  api = new Api(stack.baseUrl);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  backend?.closeAllConnections();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
}, 60_000);

beforeEach(() => {
  requests.length = 0;
  answer = answerWithUsage;
});

const uid = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

const Answer = z.object({
  response: z.string(),
  thread_id: z.string(),
  turn_id: z.string(),
  usage: z.record(z.string(), z.number()),
  metadata: z.record(z.string(), z.unknown()),
});

function answerOf(reply: Reply) {
  if (reply.status !== 200)
    throw new Error(`expected 200 from /query, got HTTP ${reply.status} ${reply.text}`);
  return Answer.parse(reply.json);
}

const AgentFailure = Problem.extend({ turn_id: z.string(), thread_id: z.string() });

/** Asserts `reply` is the 502 problem of a failed agent call and returns it with its extra fields. */
function agentFailureOf(reply: Reply) {
  problemOf(reply, 502);
  return AgentFailure.parse(reply.json);
}

async function turn(id: string): Promise<TurnView> {
  const reply = await api.get(`/turns/${id}`);
  if (reply.status !== 200) throw new Error(`GET /turns/${id}: HTTP ${reply.status} ${reply.text}`);
  return TurnView.parse(reply.json);
}

describe('POST /query with an OpenAI-compatible backend', () => {
  it('sends the system prompt and query with the key and model, and logs the reported usage', async () => {
    const user = uid('ana');
    const reply = await api.post('/query', { query: 'Hi', user_id: user, parameters: { temperature: 0.3 } });
    const answer = answerOf(reply);
    expect(answer.response).toBe('#2 Hi');
    expect(requests).toEqual([
      {
        path: '/v1/chat/completions',
        authorization: 'Bearer sk-e2e',
        body: {
          model: 'stub-model',
          temperature: 0.3,
          messages: [
            { role: 'system', content: SYSTEM_PROMPT },
            { role: 'user', content: 'Hi' },
          ],
        },
      },
    ]);
    const usage = {
      input_tokens: 40,
      output_tokens: 8,
      cached_tokens: 32,
      reasoning_tokens: 3,
      total_tokens: 48,
    };
    expect(answer.usage).toEqual(usage);
    expect(answer.metadata).toMatchObject({
      model: 'stub-model-1',
      usage_source: 'reported',
      query_count: 1,
    });
    const logged = await turn(answer.turn_id);
    expect(logged.agent_responses).toEqual([
      expect.objectContaining({ model: 'stub-model-1', usage, usage_source: 'reported', response: '#2 Hi' }),
    ]);
    expect(logged.agent_responses[0]?.cost_usd).toBeGreaterThanOrEqual(0);
  });

  it('sends the latest AGENT_HISTORY_TURNS turns as context, oldest first', async () => {
    const user = uid('ben');
    const first = answerOf(await api.post('/query', { query: 'one', user_id: user }));
    const thread = { thread_id: first.thread_id, user_id: user };
    answerOf(await api.post('/query', { query: 'two', ...thread }));
    answerOf(await api.post('/query', { query: 'three', ...thread }));
    requests.length = 0;
    const fourth = answerOf(await api.post('/query', { query: 'four', ...thread }));
    expect(fourth.metadata).toMatchObject({ query_count: 4, context_turns: 2 });
    expect(requests[0]?.body.messages).toEqual([
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: 'two' },
      { role: 'assistant', content: '#4 two' },
      { role: 'user', content: 'three' },
      { role: 'assistant', content: '#6 three' },
      { role: 'user', content: 'four' },
    ]);
  });

  it('logs the turn as failed and answers 502 when the backend answers an error status', async () => {
    const user = uid('cat');
    const first = answerOf(await api.post('/query', { query: 'fine', user_id: user }));
    answer = (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'model overloaded' } }));
    };
    const reply = await api.post('/query', {
      query: 'please keep me',
      thread_id: first.thread_id,
      user_id: user,
    });
    const problem = agentFailureOf(reply);
    expect(problem).toMatchObject({ code: 'AGENT.BACKEND_FAILED', thread_id: first.thread_id });
    expect(problem.detail).toContain('HTTP 503');
    const failed = await turn(problem.turn_id);
    expect(failed).toMatchObject({
      session_id: first.thread_id,
      conversation_turn: 2,
      user_input: 'please keep me',
      status: 'failed',
      agent_responses: [],
    });
    expect(failed.error).toContain('model overloaded');

    // The failure is in the session's context; the failed turn is left out of the next history.
    const session = await eventually(
      async () => {
        const s = sessionOf(await api.get(`/sessions/${first.thread_id}`), 200);
        return s.context.error_count === 1 ? s : undefined;
      },
      10_000,
      'error_count 1',
    );
    expect(session.context.last_error).toContain('HTTP 503');
    answer = answerWithUsage;
    requests.length = 0;
    const next = answerOf(
      await api.post('/query', { query: 'again', thread_id: first.thread_id, user_id: user }),
    );
    expect(next.metadata).toMatchObject({ query_count: 3, context_turns: 1 });
    expect(requests[0]?.body.messages.map((m) => m.content)).toEqual([
      SYSTEM_PROMPT,
      'fine',
      '#2 fine',
      'again',
    ]);
  });

  it('logs the turn as failed and answers 502 on malformed JSON', async () => {
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices": [{"message": ');
    };
    const problem = agentFailureOf(await api.post('/query', { query: 'garbled' }));
    expect(problem.detail).toMatch(/invalid JSON/);
    expect(await turn(problem.turn_id)).toMatchObject({ status: 'failed', user_input: 'garbled' });
  });

  it('logs the turn as failed and answers 502 when the backend does not answer within AGENT_TIMEOUT_MS', async () => {
    answer = () => undefined; // never answers; the connection is closed when the suite ends
    const started = Date.now();
    const problem = agentFailureOf(await api.post('/query', { query: 'too slow?' }));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 5000);
    expect(problem.detail).toContain(`${TIMEOUT_MS} ms`);
    const failed = await turn(problem.turn_id);
    expect(failed).toMatchObject({ status: 'failed', user_input: 'too slow?' });
    expect(failed.processing_time_ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
  });
});
