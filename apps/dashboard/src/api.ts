/**
 * The dashboard's only way to Threadline: the public HTTP API of the gateway that served the page
 * (same origin), with `Authorization: Bearer <credential>`. Nothing here decides what a caller may
 * see: the API does (an API key sees its tenant, a user token only its user; the rest is 403/404).
 */

/** An RFC 9457 problem answer of the API (or a network failure, `status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The API's stable error code (`AUTH.UNAUTHENTICATED`, `SESSION.NOT_FOUND`...), when it sent one. */
    readonly code: string | undefined,
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type QueryValue = string | number | undefined;

/** `path?query` with the undefined and empty values left out. */
export function withQuery(path: string, query: Record<string, QueryValue> = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') params.set(name, String(value));
  }
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * `GET path` (or another method) as `credential` (none: no Authorization header). Resolves with the
 * parsed JSON body of a 2xx answer; rejects with {@link ApiError}: the problem's status, code and
 * detail, or status 0 when the gateway is unreachable.
 */
export async function request<T>(
  path: string,
  credential: string | undefined,
  init: { method?: string; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (credential !== undefined) headers['authorization'] = `Bearer ${credential}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, undefined, 'The gateway did not answer (network error)', path);
  }
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const problem = isRecord(body) ? body : {};
    const code = typeof problem['code'] === 'string' ? problem['code'] : undefined;
    const detail =
      typeof problem['detail'] === 'string'
        ? problem['detail']
        : `${response.status} ${response.statusText || 'error'}`;
    throw new ApiError(response.status, code, detail, path);
  }
  return body as T;
}

/** A message for a person: what failed and what to do. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return `Sign-in refused: ${error.message}. Check the API key or user token.`;
    if (error.status === 403) return `Not allowed for this credential: ${error.message}`;
    if (error.status === 404) return `Not found: ${error.message}`;
    if (error.status === 429) return `Rate limited: ${error.message}. The page retries on its next refresh.`;
    if (error.status === 0) return error.message;
    return `${error.status}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
