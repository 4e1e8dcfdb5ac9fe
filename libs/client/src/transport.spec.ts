import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  RateLimitError,
  ServiceUnavailableError,
  Threadline,
  ThreadlineError,
  TimeoutError,
} from './index';
import { backoffMs, retryAfterMsOf } from './transport';

// The retry, idempotency, timeout and error policy of the transport, with a scripted `fetch` (what
// the server answers is given per attempt). client.e2e-spec.ts proves the same against the real stack.

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

type Step = Response | Error | 'hang';

const problem = (status: number, code: string, headers: Record<string, string> = {}, extra = {}) =>
  new Response(
    JSON.stringify({
      type: `urn:threadline:problem:${code}`,
      title: 't',
      status,
      detail: 'd',
      code,
      ...extra,
    }),
    {
      status,
      headers: { 'content-type': 'application/problem+json', ...headers },
    },
  );

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

function scripted(steps: Step[]) {
  const sent: Sent[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    sent.push({
      method: init?.method ?? 'GET',
      url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
      headers: { ...(init?.headers as Record<string, string>) },
      body: typeof init?.body === 'string' ? init.body : undefined,
    });
    const step = steps.shift();
    if (step === undefined) return Promise.reject(new Error('no more scripted answers'));
    if (step === 'hang')
      return new Promise((_, reject) =>
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))),
      );
    return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
  };
  return { sent, fetch };
}

const clientOf = (fetch: typeof globalThis.fetch, opts: { maxRetries?: number; timeoutMs?: number } = {}) =>
  new Threadline({ baseUrl: 'http://threadline.test/', apiKey: 'tlk_test', fetch, ...opts });

const turn = { turn_id: 't1', session_id: 's1' };

describe('writes', () => {
  it('send one Idempotency-Key, the same on every retry, and retry a network failure and a 503', async () => {
    const { sent, fetch } = scripted([
      new TypeError('fetch failed'),
      problem(503, 'SERVICE.UNAVAILABLE', { 'retry-after': '0' }),
      json(201, turn, { 'x-threadline-position': '42' }),
    ]);
    const client = clientOf(fetch);
    await expect(client.turns.log('s1', { user_input: 'hi' })).resolves.toEqual(turn);
    expect(sent).toHaveLength(3);
    const keys = sent.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      url: 'http://threadline.test/sessions/s1/turns',
      headers: { authorization: 'Bearer tlk_test', 'content-type': 'application/json' },
      body: '{"user_input":"hi"}',
    });
    expect(client.lastPosition).toBe(42);
  });

  it('use the given idempotencyKey, and a new one per call otherwise', async () => {
    const { sent, fetch } = scripted([json(201, turn), json(201, turn), json(201, turn)]);
    const client = clientOf(fetch);
    await client.turns.log('s1', { user_input: 'a' }, { idempotencyKey: 'mine' });
    await client.turns.log('s1', { user_input: 'a' });
    await client.turns.log('s1', { user_input: 'a' });
    expect(sent.map((s) => s.headers['idempotency-key'])).toEqual([
      'mine',
      expect.any(String),
      expect.any(String),
    ]);
    expect(sent[1]?.headers['idempotency-key']).not.toBe(sent[2]?.headers['idempotency-key']);
  });

  it('send If-Match as an ETag for a version number, as given for a string', async () => {
    const { sent, fetch } = scripted([json(200, {}), json(200, {})]);
    const client = clientOf(fetch);
    await client.sessions.update('s1', { title: 'x' }, { ifMatch: 3 });
    await client.state.patch('s1', { summary: 'y' }, { ifMatch: 'W/"4"' });
    expect(sent.map((s) => s.headers['if-match'])).toEqual(['"3"', 'W/"4"']);
  });
});

describe('errors', () => {
  it.each([
    [400, 'REQUEST.INVALID', BadRequestError],
    [404, 'SESSION.NOT_FOUND', NotFoundError],
    [409, 'SESSION.ALREADY_EXISTS', ConflictError],
  ])(
    'a %d is thrown at once (never retried) as its ThreadlineError subclass',
    async (status, code, Class) => {
      const { sent, fetch } = scripted([
        problem(status, code, {}, { errors: [{ path: 'user_input', message: 'Required', in: 'body' }] }),
      ]);
      const error = await clientOf(fetch, { maxRetries: 5 })
        .sessions.get('s1')
        .catch((e: unknown) => e);
      expect(sent).toHaveLength(1);
      expect(error).toBeInstanceOf(Class);
      expect(error).toBeInstanceOf(ThreadlineError);
      expect(error).toMatchObject({
        status,
        code,
        detail: 'd',
        errors: [{ path: 'user_input', message: 'Required', in: 'body' }],
      });
    },
  );

  it('a 429 is retried after Retry-After, then thrown as RateLimitError with retryAfterMs when retries run out', async () => {
    const { sent, fetch } = scripted([
      problem(429, 'REQUEST.RATE_LIMITED', { 'retry-after': '0' }),
      problem(429, 'REQUEST.RATE_LIMITED', { 'retry-after': '0' }),
    ]);
    const error = await clientOf(fetch, { maxRetries: 1 })
      .stats.global()
      .catch((e: unknown) => e);
    expect(sent).toHaveLength(2);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, code: 'REQUEST.RATE_LIMITED', retryAfterMs: 0 });
  });

  it('a Retry-After beyond 60 s is not waited for', async () => {
    const { sent, fetch } = scripted([problem(503, 'SERVICE.UNAVAILABLE', { 'retry-after': '120' })]);
    const error = await clientOf(fetch)
      .sessions.get('s1')
      .catch((e: unknown) => e);
    expect(sent).toHaveLength(1);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
  });

  it('a body that is not a problem still gives status and a code', async () => {
    const { fetch } = scripted([new Response('bad gateway', { status: 500 })]);
    await expect(clientOf(fetch).sessions.get('s1')).rejects.toMatchObject({
      status: 500,
      code: 'HTTP.500',
      detail: 'bad gateway',
    });
  });
});

describe('timeouts and aborts', () => {
  it('an attempt past timeoutMs is a TimeoutError, retried like a network failure', async () => {
    const { sent, fetch } = scripted(['hang', 'hang']);
    const error = await clientOf(fetch, { timeoutMs: 20, maxRetries: 1 })
      .sessions.get('s1')
      .catch((e: unknown) => e);
    expect(sent).toHaveLength(2);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ status: 0, code: 'CLIENT.TIMEOUT' });
  });

  it("the caller's AbortSignal stops the call without a retry", async () => {
    const { sent, fetch } = scripted(['hang', 'hang']);
    const controller = new AbortController();
    const call = clientOf(fetch, { maxRetries: 3 }).sessions.get('s1', { signal: controller.signal });
    controller.abort(new Error('user left'));
    await expect(call).rejects.toMatchObject({ status: 0, code: 'CLIENT.ABORTED' });
    expect(sent).toHaveLength(1);
  });
});

describe('paging', () => {
  it('follows next_cursor until it is null', async () => {
    const page = (ids: string[], next: string | null) =>
      json(200, { sessions: ids.map((session_id) => ({ session_id })), next_cursor: next, total: 3 });
    const { sent, fetch } = scripted([page(['a', 'b'], 'c1'), page(['c'], null)]);
    const ids: string[] = [];
    for await (const s of clientOf(fetch).sessions.list({
      userId: 'ada',
      limit: 2,
      metadata: { app: 'x y' },
    }))
      ids.push(s.session_id);
    expect(ids).toEqual(['a', 'b', 'c']);
    expect(sent.map((s) => s.url)).toEqual([
      'http://threadline.test/users/ada/sessions?limit=2&metadata.app=x%20y',
      'http://threadline.test/users/ada/sessions?limit=2&metadata.app=x%20y&cursor=c1',
    ]);
  });
});

describe('Retry-After and backoff', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMsOf('3')).toBe(3000);
    expect(retryAfterMsOf('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(
      10_000,
    );
    expect(retryAfterMsOf(null)).toBeUndefined();
    expect(retryAfterMsOf('soon')).toBeUndefined();
  });

  it('doubles from 0.5 s up to 8 s, within ±25%', () => {
    expect([0, 1, 2, 10].map((a) => backoffMs(a, () => 0.5))).toEqual([500, 1000, 2000, 8000]);
    expect(backoffMs(0, () => 0)).toBe(375);
    expect(backoffMs(0, () => 1)).toBe(625);
  });
});
