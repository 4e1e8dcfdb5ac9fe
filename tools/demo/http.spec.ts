import { ApiClient, ApiError } from './http';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** A fetch answering from a script of statuses (or `'reset'` for a connection error), recording calls. */
function scripted(script: (number | 'reset')[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fake: typeof fetch = (input, init) => {
    calls.push({
      url: input instanceof Request ? input.url : input.toString(),
      method: init?.method ?? 'GET',
      headers: { ...(init?.headers as Record<string, string>) },
      body: typeof init?.body === 'string' ? init.body : undefined,
    });
    const step = script.shift() ?? 500;
    if (step === 'reset')
      return Promise.reject(new TypeError('fetch failed', { cause: new Error('ECONNRESET') }));
    const body = step < 300 ? { ok: true } : { code: `HTTP.${step}`, detail: `status ${step}` };
    return Promise.resolve(
      new Response(JSON.stringify(body), { status: step, headers: { 'content-type': 'application/json' } }),
    );
  };
  return { fetch: fake, calls };
}

describe('ApiClient', () => {
  it('retries 503, 429 and connection errors with the same idempotency key, then returns the answer', async () => {
    const { fetch, calls } = scripted([503, 'reset', 429, 201]);
    const client = new ApiClient({ baseUrl: 'http://api.test/', apiKey: 'k1', fetch, baseBackoffMs: 1 });
    const answer = await client.request('POST', '/sessions', {
      body: { title: 't' },
      idempotencyKey: 'key-1',
      correlationId: 'c-1',
    });
    expect(answer).toEqual({ status: 201, body: { ok: true }, attempts: 4 });
    expect(client.retries).toBe(3);
    expect(calls.map((c) => [c.method, c.url, c.headers['idempotency-key'], c.body])).toEqual(
      Array.from({ length: 4 }, () => ['POST', 'http://api.test/sessions', 'key-1', '{"title":"t"}']),
    );
    expect(calls[0]?.headers).toMatchObject({
      authorization: 'Bearer k1',
      'x-correlation-id': 'c-1',
      'content-type': 'application/json',
    });
  });

  it('gives up after maxAttempts with the last kind of failure', async () => {
    const { fetch, calls } = scripted([503, 503, 'reset']);
    const client = new ApiClient({ baseUrl: 'http://api.test', fetch, maxAttempts: 3, baseBackoffMs: 1 });
    const error = await client.request('GET', '/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ kind: 'network', attempts: 3 });
    expect((error as ApiError).message).toContain('ECONNRESET');
    expect(calls).toHaveLength(3);
  });

  it('fails at once on a status that is not retried, keeping the problem body, and sends no auth without a key', async () => {
    const { fetch, calls } = scripted([400, 201]);
    const client = new ApiClient({ baseUrl: 'http://api.test', fetch, baseBackoffMs: 1 });
    await expect(client.request('POST', '/sessions/s/turns', { body: {} })).rejects.toMatchObject({
      kind: '400',
      attempts: 1,
      body: { code: 'HTTP.400', detail: 'status 400' },
      message: 'POST /sessions/s/turns: 400 (HTTP.400: status 400) after 1 attempt',
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.headers['authorization']).toBeUndefined();
  });

  it('returns an accepted non-2xx status as an answer', async () => {
    const { fetch } = scripted([404]);
    const client = new ApiClient({ baseUrl: 'http://api.test', fetch });
    await expect(client.request('GET', '/sessions/stats', { accept: [404] })).resolves.toMatchObject({
      status: 404,
    });
  });
});
