import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadGatewayConfig } from '../config';
import { AgentBackendError } from './agent-backend';
import { createAgentBackend } from './agent-backend.factory';
import { OpenAiCompatibleBackend } from './openai-compatible.backend';

// The OpenAI-compatible client against a real HTTP server on 127.0.0.1 standing in for the backend
// (no mocked fetch): what it sends, and how each kind of bad answer becomes an AgentBackendError.

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

type Handler = (req: Received, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let handler: Handler;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const entry: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: text === '' ? undefined : (JSON.parse(text) as unknown),
      };
      received.push(entry);
      handler(entry, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
});

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const backend = (env: Record<string, string> = {}) =>
  createAgentBackend(loadGatewayConfig({ AGENT_BASE_URL: baseUrl, AGENT_TIMEOUT_MS: '2000', ...env }));

const messages = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hello?' },
];

async function failureOf(promise: Promise<unknown>): Promise<AgentBackendError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AgentBackendError) return error;
    throw error;
  }
  throw new Error('expected an AgentBackendError');
}

describe('OpenAiCompatibleBackend against a real HTTP server', () => {
  it('POSTs {model, messages, parameters} to /chat/completions and reads content, model and usage', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        model: 'gpt-4o-mini-2024-07-18',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hi there.' }, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: 21,
          completion_tokens: 4,
          total_tokens: 25,
          prompt_tokens_details: { cached_tokens: 16, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 2 },
        },
      });
    const agent = backend({ AGENT_API_KEY: 'sk-test', AGENT_MODEL: 'gpt-4o-mini' });
    expect(agent).toBeInstanceOf(OpenAiCompatibleBackend);
    const reply = await agent.complete({ messages, parameters: { temperature: 0.2, max_tokens: 50 } });
    expect(reply).toEqual({
      content: 'Hi there.',
      model: 'gpt-4o-mini-2024-07-18',
      usage: { input_tokens: 21, output_tokens: 4, cached_tokens: 16, reasoning_tokens: 2, total_tokens: 25 },
    });
    expect(received).toHaveLength(1);
    const [req] = received;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/v1/chat/completions');
    expect(req?.headers['authorization']).toBe('Bearer sk-test');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.body).toEqual({ model: 'gpt-4o-mini', messages, temperature: 0.2, max_tokens: 50 });
  });

  it('sends no Authorization without a key, and reports no usage when the server gives none', async () => {
    handler = (_req, res) => json(res, 200, { choices: [{ message: { role: 'assistant', content: 'ok' } }] });
    const reply = await backend({ AGENT_MODEL: 'local-llama' }).complete({ messages });
    expect(reply).toEqual({ content: 'ok', model: 'local-llama' });
    expect(received[0]?.headers['authorization']).toBeUndefined();
  });

  it('fails with http_status and an excerpt of the body on a non-2xx answer', async () => {
    handler = (_req, res) => json(res, 429, { error: { message: 'Rate limit reached', type: 'requests' } });
    const error = await failureOf(backend().complete({ messages }));
    expect(error.kind).toBe('http_status');
    expect(error.message).toMatch(/HTTP 429/);
    expect(error.message).toContain('Rate limit reached');
  });

  it('fails with bad_reply on malformed JSON', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices": [');
    };
    const error = await failureOf(backend().complete({ messages }));
    expect(error.kind).toBe('bad_reply');
    expect(error.message).toMatch(/invalid JSON/);
  });

  it('fails with bad_reply on JSON that is not a chat completion', async () => {
    handler = (_req, res) => json(res, 200, { choices: [], usage: { prompt_tokens: -1 } });
    const error = await failureOf(backend().complete({ messages }));
    expect(error.kind).toBe('bad_reply');
    expect(error.message).toContain('choices');
    handler = (_req, res) => json(res, 200, { choices: [{ message: { role: 'assistant', content: null } }] });
    expect((await failureOf(backend().complete({ messages }))).kind).toBe('bad_reply');
  });

  it('fails with timeout after AGENT_TIMEOUT_MS when the server does not answer', async () => {
    handler = () => undefined; // holds the request open until the test server closes
    const started = Date.now();
    const error = await failureOf(backend({ AGENT_TIMEOUT_MS: '300' }).complete({ messages }));
    const elapsed = Date.now() - started;
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain('300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
  });

  it('times out too when the headers arrive but the body stalls', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"choices": [');
    };
    const error = await failureOf(backend({ AGENT_TIMEOUT_MS: '300' }).complete({ messages }));
    expect(error.kind).toBe('timeout');
  });

  it('fails with unreachable when nothing listens at AGENT_BASE_URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const agent = createAgentBackend(loadGatewayConfig({ AGENT_BASE_URL: `http://127.0.0.1:${port}/v1` }));
    const error = await failureOf(agent.complete({ messages }));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toMatch(/could not be reached/);
  });
});
