import { setTimeout as delay } from 'node:timers/promises';

/** What a failed request is counted under: the HTTP status (`"400"`, `"503"`), `network` or `timeout`. */
export type FailureKind = string;

/** A request that failed for good (a non-2xx answer, or transport errors after every retry). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly method: string,
    readonly path: string,
    /** HTTP status, or `network` / `timeout` when no answer came. */
    readonly kind: FailureKind,
    /** The parsed problem body (or text) when there was an answer. */
    readonly body: unknown,
    readonly attempts: number,
  ) {
    super(
      `${method} ${path}: ${kind}${detailOf(body)} after ${attempts} attempt${attempts === 1 ? '' : 's'}`,
    );
  }
}

function detailOf(body: unknown): string {
  if (typeof body === 'object' && body !== null) {
    const b = body as Record<string, unknown>;
    const code = typeof b['code'] === 'string' ? b['code'] : undefined;
    const detail = typeof b['detail'] === 'string' ? b['detail'] : undefined;
    if (code !== undefined || detail !== undefined) return ` (${[code, detail].filter(Boolean).join(': ')})`;
  }
  return typeof body === 'string' && body !== '' ? ` (${body.slice(0, 200)})` : '';
}

/** An answer with a 2xx status; `body` is the parsed JSON (`undefined` for an empty body). */
export interface ApiResponse {
  status: number;
  body: unknown;
  attempts: number;
}

export interface ApiClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Attempts per request including the first (>= 1). Default 6. */
  maxAttempts?: number;
  /** First backoff, ms; doubles per retry with full jitter, capped at {@link maxBackoffMs}. Default 200. */
  baseBackoffMs?: number;
  /** Longest wait between attempts, ms (also caps `Retry-After`). Default 5000. */
  maxBackoffMs?: number;
  /** Per-attempt timeout, ms. Default 30000. */
  timeoutMs?: number;
  /** The fetch to use (tests inject one); default the global fetch. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as `Idempotency-Key`, so a retried write returns the first answer and appends nothing twice. */
  idempotencyKey?: string;
  /** Sent as `X-Correlation-Id`. */
  correlationId?: string;
  /** Statuses that are answers, not failures (e.g. 404 for an optional endpoint). */
  accept?: readonly number[];
}

/** Statuses worth retrying: the stack is busy or a dependency (NATS, Postgres) is briefly away. */
const RETRIED = new Set([429, 502, 503, 504]);

/**
 * A small JSON-over-HTTP client for the Threadline API: bounded retries with exponential backoff
 * and full jitter on 429/502/503/504, network errors and timeouts (honouring `Retry-After` seconds);
 * other statuses fail at once. Writes should carry an idempotency key so that a retry after a lost
 * answer appends nothing twice.
 */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly maxAttempts: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  /** Retries done so far (attempts beyond the first), for the summary. */
  retries = 0;

  constructor(private readonly options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 6);
    this.baseBackoffMs = options.baseBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /**
   * Sends `method path` with an optional JSON body. Resolves with the 2xx (or `accept`ed) answer.
   * Throws {@link ApiError} with the status (or `network`/`timeout`) once retries are exhausted or
   * the status is not retried.
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers['authorization'] = `Bearer ${this.options.apiKey}`;
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.correlationId) headers['x-correlation-id'] = options.correlationId;
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);

    for (let attempt = 1; ; attempt += 1) {
      let kind: FailureKind;
      let failureBody: unknown;
      let retryAfterMs: number | undefined;
      try {
        const response = await this.fetchImpl(`${this.baseUrl}${path}`, {
          method,
          headers,
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const parsed = await readBody(response);
        if ((response.status >= 200 && response.status < 300) || options.accept?.includes(response.status)) {
          return { status: response.status, body: parsed, attempts: attempt };
        }
        kind = String(response.status);
        failureBody = parsed;
        retryAfterMs = retryAfterOf(response.headers.get('retry-after'));
        if (!RETRIED.has(response.status)) throw new ApiError(method, path, kind, parsed, attempt);
      } catch (error) {
        if (error instanceof ApiError) throw error;
        kind = isTimeout(error) ? 'timeout' : 'network';
        failureBody = error instanceof Error ? (causeOf(error) ?? error.message) : String(error);
      }
      if (attempt >= this.maxAttempts) throw new ApiError(method, path, kind, failureBody, attempt);
      this.retries += 1;
      await delay(this.backoffMs(attempt, retryAfterMs));
    }
  }

  /** Wait before attempt `attempt + 1`, ms: `Retry-After` when given, else full-jitter exponential. */
  private backoffMs(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.maxBackoffMs);
    const ceiling = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempt - 1));
    return Math.round(Math.random() * ceiling);
  }
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** `Retry-After` in seconds (the HTTP-date form is not used by the gateway), as ms. */
function retryAfterOf(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/** undici reports `fetch failed` with the real reason (ECONNREFUSED ...) in `cause`. */
function causeOf(error: Error): string | undefined {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) return `${error.message}: ${cause.message}`;
  return undefined;
}
