import {
  CLIENT_ERROR_CODES,
  ConnectionError,
  errorClassOf,
  type FieldError,
  ThreadlineError,
  TimeoutError,
} from './errors';
import type { paths } from './generated/schema';

/** Options of every call (the last argument of each SDK method). */
export interface RequestOptions {
  /** Cancels the call (every attempt and every wait between them); it then throws `CLIENT.ABORTED`. */
  signal?: AbortSignal;
  /** Longest wait for one attempt's whole answer, in ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Retries after a 429, a 503 or a network failure (default: the client's `maxRetries`). */
  maxRetries?: number;
  /** Extra request headers (e.g. `X-Correlation-Id`). */
  headers?: Record<string, string>;
}

/** Options of a call that changes something. */
export interface WriteOptions extends RequestOptions {
  /**
   * Sent as `Idempotency-Key` (at most 200 characters) on the call and on each of its retries: the
   * server answers a repeat with the first answer and changes nothing. Default: a new random UUID per call.
   */
  idempotencyKey?: string;
}

/** A write that takes `If-Match`. */
export interface ConditionalWriteOptions extends WriteOptions {
  /**
   * The version the change is based on: a number (the `version` of a session or state) or an ETag
   * (`"3"`, `W/"3"`). When it is no longer the current one the call throws a 412
   * {@link PreconditionFailedError} and changes nothing.
   */
  ifMatch?: number | string;
}

/** Settings the transport needs from the client's options. */
export interface TransportSettings {
  baseUrl: string;
  credential: string | undefined;
  fetch: typeof globalThis.fetch;
  timeoutMs: number;
  maxRetries: number;
  headers: Record<string, string>;
}

type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'head' | 'patch';
/** The methods `paths[P]` documents. */
export type MethodOf<P extends keyof paths> = {
  [M in HttpMethod]: paths[P][M] extends undefined ? never : M;
}[HttpMethod];

type OperationOf<P extends keyof paths, M extends MethodOf<P>> = NonNullable<paths[P][M]>;
type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : undefined;
type ResponsesOf<O> = O extends { responses: infer R } ? R : never;
type SuccessStatus = 200 | 201 | 204;
/** The JSON body of the success answers (200, 201, 204) of `method path`, as openapi.json documents it. */
export type SuccessOf<P extends keyof paths, M extends MethodOf<P>> = {
  [S in keyof ResponsesOf<OperationOf<P, M>> & SuccessStatus]: JsonOf<ResponsesOf<OperationOf<P, M>>[S]>;
}[keyof ResponsesOf<OperationOf<P, M>> & SuccessStatus];

/** A query string value; `undefined` leaves the parameter out. */
export type QueryValue = string | number | boolean | undefined;

/** One call as the resources describe it. */
export interface Call<P extends keyof paths> {
  method: MethodOf<P>;
  /** The route as openapi.json names it, e.g. `/sessions/{session_id}`. */
  path: P;
  /** Values of the route's `{name}` segments. */
  params?: Record<string, string>;
  query?: Record<string, QueryValue>;
  /** A JSON body. */
  body?: unknown;
  /** True for calls that change something: they carry an `Idempotency-Key`. */
  write?: boolean;
  ifMatch?: number | string;
  options?: RequestOptions & { idempotencyKey?: string };
  /** Statuses answered with a body that is returned, not thrown (e.g. 503 of `/health`). */
  acceptStatuses?: readonly number[];
}

/** An answer: status, headers and the parsed JSON body (`undefined` for 204 and HEAD). */
export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const RETRY_STATUSES = new Set([429, 503]);
const BASE_DELAY_MS = 500;
const MAX_BACKOFF_MS = 8_000;
/** A `Retry-After` longer than this is not waited for: the error is thrown instead. */
const MAX_RETRY_AFTER_MS = 60_000;
const POSITION_HEADER = 'x-threadline-position';
/** What the timer of an attempt rejects with. */
class AttemptTimedOut extends Error {}

/**
 * Sends the SDK's HTTP calls: JSON in and out, `Authorization: Bearer`, an `Idempotency-Key` on every
 * write (the same one on each retry), retries with exponential backoff and jitter (0.5 s, 1 s, 2 s, ...,
 * at most 8 s) after a 429, a 503 or a network failure, honouring `Retry-After` (up to 60 s), a
 * timeout per attempt, the caller's `AbortSignal`, and RFC 9457 problems thrown as
 * {@link ThreadlineError}. Other 4xx (and 5xx other than 503) are never retried. It remembers the
 * highest `X-Threadline-Position` answered ({@link lastPosition}).
 */
export class Transport {
  private readonly base: string;
  private readonly staticHeaders: Record<string, string>;
  private position: number | undefined;

  constructor(private readonly settings: TransportSettings) {
    this.base = settings.baseUrl.replace(/\/+$/, '');
    this.staticHeaders = { accept: 'application/json', ...settings.headers };
    if (settings.credential !== undefined)
      this.staticHeaders['authorization'] = `Bearer ${settings.credential}`;
  }

  /** Highest `X-Threadline-Position` (global event position) of the answers so far; `undefined` before any write. */
  get lastPosition(): number | undefined {
    return this.position;
  }

  /** Sends `call`; resolves to its answer, or throws {@link ThreadlineError}. */
  async request<P extends keyof paths>(call: Call<P>): Promise<Answer> {
    const options = call.options ?? {};
    const method = call.method.toUpperCase();
    const url = this.urlOf(call.path, call.params, call.query);
    const headers: Record<string, string> = { ...this.staticHeaders, ...options.headers };
    let body: string | undefined;
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(call.body);
    }
    if (call.write) headers['idempotency-key'] = options.idempotencyKey ?? globalThis.crypto.randomUUID();
    if (call.ifMatch !== undefined)
      headers['if-match'] = typeof call.ifMatch === 'number' ? `"${call.ifMatch}"` : call.ifMatch;
    const maxRetries = options.maxRetries ?? this.settings.maxRetries;
    const timeoutMs = options.timeoutMs ?? this.settings.timeoutMs;
    const signal = options.signal;
    for (let attempt = 0; ; attempt++) {
      let error: ThreadlineError;
      try {
        const answer = await this.attempt(method, url, headers, body, timeoutMs, signal, call.acceptStatuses);
        const position = answer.headers.get(POSITION_HEADER);
        if (position !== null) this.remember(position);
        return answer;
      } catch (caught) {
        if (!(caught instanceof ThreadlineError)) throw caught;
        error = caught;
      }
      const retryable =
        error.status === 0 ? error.code !== CLIENT_ERROR_CODES.aborted : RETRY_STATUSES.has(error.status);
      if (!retryable || attempt >= maxRetries) throw error;
      if (error.retryAfterMs !== undefined && error.retryAfterMs > MAX_RETRY_AFTER_MS) throw error;
      await sleep(error.retryAfterMs ?? backoffMs(attempt), signal);
    }
  }

  /**
   * {@link request}, resolving to the answer's body typed from openapi.json. The body is not checked
   * at run time (the SDK carries no validator): the server validates what it sends against the same
   * document.
   */
  async json<P extends keyof paths, M extends MethodOf<P>>(
    call: Call<P> & { method: M },
  ): Promise<SuccessOf<P, M>> {
    return (await this.request(call)).body as SuccessOf<P, M>;
  }

  /**
   * One attempt. The timeout races the answer instead of aborting it: an `AbortSignal` handed to
   * `fetch` makes undici register it per request (a WeakRef and a finalizer), CPU comparable to the
   * rest of the SDK's (bench scenario 9 measures the SDK's overhead). A timed-out attempt is
   * abandoned: its answer, when it comes, is read and dropped, which frees the connection (undici's own
   * timeouts end one that never answers). The caller's `signal`, when given, is passed on and aborts.
   */
  private async attempt(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    acceptStatuses: readonly number[] | undefined,
  ): Promise<Answer> {
    if (signal?.aborted) throw abortedError(signal.reason);
    // Only the members in use: `fetch` parses every member of its init, undefined ones included.
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = body;
    if (signal !== undefined) init.signal = signal;
    const fetching = this.exchange(url, init);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AttemptTimedOut()), timeoutMs);
    });
    let response: Response;
    let text: string;
    try {
      [response, text] = await Promise.race([fetching, timeout]);
    } catch (cause) {
      if (signal?.aborted) throw abortedError(signal.reason);
      if (cause instanceof AttemptTimedOut) {
        fetching.catch(() => undefined);
        throw new TimeoutError({
          status: 0,
          code: CLIENT_ERROR_CODES.timeout,
          detail: `${method} ${url}: no answer within ${timeoutMs} ms`,
        });
      }
      throw new ConnectionError({
        status: 0,
        code: CLIENT_ERROR_CODES.network,
        detail: `${method} ${url}: ${describe(cause)}`,
        cause,
      });
    } finally {
      clearTimeout(timer);
    }
    if (response.ok || acceptStatuses?.includes(response.status)) {
      return {
        status: response.status,
        headers: response.headers,
        body: parseBody(method, url, response, text),
      };
    }
    throw problemOf(response, text);
  }

  /** The answer and its whole body (read inside the attempt's timeout). */
  private async exchange(url: string, init: RequestInit): Promise<[Response, string]> {
    const response = await this.settings.fetch(url, init);
    return [response, await response.text()];
  }

  private urlOf(
    path: string,
    params: Record<string, string> | undefined,
    query: Record<string, QueryValue> | undefined,
  ) {
    let url = this.base;
    if (params === undefined) url += path;
    else {
      const parts = templateOf(path);
      url += parts[0];
      for (let i = 1; i < parts.length; i += 2) {
        const value = params[parts[i]!];
        if (value === undefined) throw new TypeError(`missing path parameter ${parts[i]} of ${path}`);
        url += encodeURIComponent(value) + parts[i + 1]!;
      }
    }
    if (query !== undefined) {
      let search = '';
      for (const name in query) {
        const value = query[name];
        if (value === undefined) continue;
        search += `${search === '' ? '?' : '&'}${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`;
      }
      url += search;
    }
    return url;
  }

  private remember(header: string): void {
    const position = Number(header);
    if (Number.isSafeInteger(position) && (this.position === undefined || position > this.position))
      this.position = position;
  }
}

const templates = new Map<string, string[]>();

/** `/sessions/{session_id}/turns` as `['/sessions/', 'session_id', '/turns']`: literals and parameter names alternating (cached). */
function templateOf(path: string): string[] {
  let parts = templates.get(path);
  if (parts === undefined) {
    parts = path.split(/\{([^}]+)\}/);
    templates.set(path, parts);
  }
  return parts;
}

function parseBody(method: string, url: string, response: Response, text: string): unknown {
  if (method === 'HEAD' || response.status === 204 || text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ThreadlineError({
      status: response.status,
      code: CLIENT_ERROR_CODES.invalidResponse,
      detail: `${method} ${url}: HTTP ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`,
      cause,
      correlationId: response.headers.get('x-correlation-id') ?? undefined,
    });
  }
}

/** The {@link ThreadlineError} of a problem answer (RFC 9457 body; a non-problem body gives `HTTP.<status>`). */
function problemOf(response: Response, text: string): ThreadlineError {
  let problem: unknown;
  try {
    problem = text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    problem = undefined;
  }
  const fields = isRecord(problem) ? problem : {};
  const ErrorClass = errorClassOf(response.status);
  return new ErrorClass({
    status: response.status,
    code: stringOr(fields['code'], `HTTP.${response.status}`),
    detail: stringOr(
      fields['detail'],
      text.slice(0, 500) || response.statusText || `HTTP ${response.status}`,
    ),
    title: optionalString(fields['title']),
    type: optionalString(fields['type']),
    instance: optionalString(fields['instance']),
    errors: fieldErrorsOf(fields['errors']),
    body: problem,
    retryAfterMs: retryAfterMsOf(response.headers.get('retry-after')),
    correlationId: response.headers.get('x-correlation-id') ?? undefined,
  });
}

function fieldErrorsOf(value: unknown): FieldError[] {
  if (!Array.isArray(value)) return [];
  const errors: FieldError[] = [];
  for (const item of value as unknown[]) {
    if (!isRecord(item) || typeof item['path'] !== 'string' || typeof item['message'] !== 'string') continue;
    const where = item['in'];
    errors.push({
      path: item['path'],
      message: item['message'],
      ...(where === 'body' || where === 'path' || where === 'query' || where === 'header'
        ? { in: where }
        : {}),
    });
  }
  return errors;
}

/** `Retry-After` (RFC 9110: seconds, or an HTTP date) in ms; `undefined` when absent or unreadable. */
export function retryAfterMsOf(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Exponential backoff with ±25% jitter: 0.5 s, 1 s, 2 s, ..., at most 8 s, for attempt 0, 1, 2, ... */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, BASE_DELAY_MS * 2 ** attempt);
  return base * (0.75 + random() * 0.5);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortedError(reason: unknown): ConnectionError {
  return new ConnectionError({
    status: 0,
    code: CLIENT_ERROR_CODES.aborted,
    detail: `aborted: ${describe(reason)}`,
    cause: reason,
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const stringOr = (v: unknown, fallback: string) => (typeof v === 'string' && v !== '' ? v : fallback);
const optionalString = (v: unknown) => (typeof v === 'string' ? v : undefined);
