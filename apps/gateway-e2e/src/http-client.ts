import { z } from 'zod';
import { SessionPage, SessionView } from '@threadline/contracts';

/** One HTTP answer as a client sees it: status, headers, raw text and the JSON body (`undefined` when none). */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

export interface RequestOptions {
  /** A JSON body (sent with `content-type: application/json`). */
  json?: unknown;
  /** A raw body, sent as is (for malformed JSON). */
  raw?: string;
  headers?: Record<string, string>;
}

/** The credential `startStack` created for each running stack, by its base URL (see {@link Api}). */
const defaultCredentials = new Map<string, string>();

/** Makes `credential` the one every `new Api(baseUrl)` sends by default (`startStack` calls it). */
export function setDefaultCredential(baseUrl: string, credential: string | undefined): void {
  if (credential === undefined) defaultCredentials.delete(baseUrl);
  else defaultCredentials.set(baseUrl, credential);
}

/**
 * A plain `fetch` client of the gateway, as an application would call it. It sends
 * `Authorization: Bearer <credential>`: by default the admin key `startStack` created for the stack
 * at `baseUrl`; `credential` overrides it (an API key or a user token; `null` sends none). A request
 * whose `headers` has its own `authorization` sends that one instead.
 */
export class Api {
  readonly credential: string | undefined;

  constructor(
    readonly baseUrl: string,
    credential?: string | null,
  ) {
    this.credential = credential === null ? undefined : (credential ?? defaultCredentials.get(baseUrl));
  }

  /** The same gateway with another credential (`null`: none). */
  as(credential: string | null): Api {
    return new Api(this.baseUrl, credential);
  }

  /** Sends `method path`; never throws on an HTTP status, only when the gateway is unreachable. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credential !== undefined) headers['authorization'] = `Bearer ${this.credential}`;
    for (const [name, value] of Object.entries(opts.headers ?? {})) headers[name.toLowerCase()] = value;
    let body: string | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.raw !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = opts.raw;
    }
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: unknown;
    if (text !== '' && /json/.test(res.headers.get('content-type') ?? '')) json = JSON.parse(text) as unknown;
    return { status: res.status, headers: res.headers, text, json };
  }

  get = (path: string, opts?: RequestOptions) => this.request('GET', path, opts);
  head = (path: string, opts?: RequestOptions) => this.request('HEAD', path, opts);
  post = (path: string, json?: unknown, opts?: RequestOptions) =>
    this.request('POST', path, { ...opts, json });
  patch = (path: string, json?: unknown, opts?: RequestOptions) =>
    this.request('PATCH', path, { ...opts, json });
  delete = (path: string, opts?: RequestOptions) => this.request('DELETE', path, opts);
}

/** An RFC 9457 problem body as the gateway sends it (`application/problem+json`). */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  instance: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string(), in: z.string().optional() })).optional(),
});
export type Problem = z.infer<typeof Problem>;

const describeReply = (reply: Reply) => `HTTP ${reply.status} ${reply.text.slice(0, 500)}`;

/** Asserts `reply` has `status` and returns its body parsed as a `SessionView`. */
export function sessionOf(reply: Reply, status: number): SessionView {
  if (reply.status !== status)
    throw new Error(`expected HTTP ${status} with a session, got ${describeReply(reply)}`);
  return SessionView.parse(reply.json);
}

/** Asserts `reply` is 200 and returns its body parsed as a `SessionPage`. */
export function pageOf(reply: Reply): SessionPage {
  if (reply.status !== 200) throw new Error(`expected HTTP 200 with a page, got ${describeReply(reply)}`);
  return SessionPage.parse(reply.json);
}

/** Asserts `reply` is a problem of `status` (content type and body) and returns the problem. */
export function problemOf(reply: Reply, status: number): Problem {
  if (reply.status !== status) throw new Error(`expected a ${status} problem, got ${describeReply(reply)}`);
  const type = reply.headers.get('content-type') ?? '';
  if (!type.startsWith('application/problem+json'))
    throw new Error(`expected application/problem+json, got "${type}"`);
  const problem = Problem.parse(reply.json);
  if (problem.status !== status)
    throw new Error(`problem body says status ${problem.status}, HTTP said ${status}`);
  return problem;
}
