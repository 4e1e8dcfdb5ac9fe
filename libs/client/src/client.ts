import { Auth } from './resources/auth';
import { Sessions } from './resources/sessions';
import { State } from './resources/state';
import { Stats } from './resources/stats';
import { Turns } from './resources/turns';
import { Users } from './resources/users';
import { type RequestOptions, Transport, type WriteOptions } from './transport';
import type { HealthReport, LiveReport, QueryInput, QueryReply, ReadinessReport } from './types';

/** Options of {@link Threadline}. */
export interface ThreadlineOptions {
  /** Where the gateway is, e.g. `http://localhost:3000`. */
  baseUrl: string;
  /** An API key of the tenant (`tlk_...`, role service or admin). Give this or `userToken`, not both. */
  apiKey?: string;
  /** A user token (from `client.auth.createUserToken`): the client then acts as that one user. */
  userToken?: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
  /** Longest wait for one attempt's whole answer, in ms (default 60000). */
  timeoutMs?: number;
  /** Retries of a call after a 429, a 503 or a network failure (default 2; 0 turns retries off). */
  maxRetries?: number;
  /**
   * Send {@link Threadline.lastPosition} as `min_position` on the reads that take it (the stats), so
   * they include this client's writes (default false).
   */
  readYourWrites?: boolean;
  /** Headers sent on every call. */
  headers?: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RETRIES = 2;

/**
 * The Threadline client: `new Threadline({ baseUrl, apiKey })`, then `client.sessions`, `client.turns`,
 * `client.state`, `client.stats`, `client.users`, `client.auth`, `client.query()` and `client.health()`.
 * Every call throws {@link ThreadlineError} (a subclass per HTTP status) on an error answer or when no
 * answer arrives; writes carry an `Idempotency-Key` and are retried safely.
 * @throws TypeError from the constructor when both `apiKey` and `userToken` are given, or `baseUrl` is not http(s).
 */
export class Threadline {
  readonly sessions: Sessions;
  readonly turns: Turns;
  readonly state: State;
  readonly stats: Stats;
  readonly users: Users;
  readonly auth: Auth;
  private readonly transport: Transport;

  constructor(options: ThreadlineOptions) {
    if (options.apiKey !== undefined && options.userToken !== undefined)
      throw new TypeError('Threadline: give apiKey or userToken, not both');
    if (!/^https?:\/\//.test(options.baseUrl))
      throw new TypeError(`Threadline: baseUrl must be an http(s) URL, got "${options.baseUrl}"`);
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new TypeError('Threadline: no fetch; pass options.fetch');
    this.transport = new Transport({
      baseUrl: options.baseUrl,
      credential: options.apiKey ?? options.userToken,
      fetch: fetchImpl,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
      headers: options.headers ?? {},
    });
    const readPosition = options.readYourWrites ? () => this.transport.lastPosition : () => undefined;
    this.sessions = new Sessions(this.transport);
    this.turns = new Turns(this.transport);
    this.state = new State(this.transport);
    this.stats = new Stats(this.transport, readPosition);
    this.users = new Users(this.transport);
    this.auth = new Auth(this.transport);
  }

  /**
   * The highest `X-Threadline-Position` (global event position) this client's writes were answered
   * with; `undefined` before the first. Pass it as `min_position` to read your own writes.
   */
  get lastPosition(): number | undefined {
    return this.transport.lastPosition;
  }

  /**
   * Asks the agent with the session as context; the turn is logged (`POST /query`). No `thread_id`
   * creates a session. Retried with the same `Idempotency-Key`, the agent is not asked twice.
   * @throws AgentBackendError (502) when the agent failed (the failed turn is in `error.body.turn_id`);
   * NotFoundError; ConflictError for an ended session.
   */
  query(input: QueryInput, options?: WriteOptions): Promise<QueryReply> {
    return this.transport.json({ method: 'post', path: '/query', body: input, write: true, options });
  }

  /**
   * `GET /health`: Postgres and NATS reachable (`status: 'ok'`) or not (`'down'`, answered with 503,
   * returned rather than thrown, and not retried).
   */
  health(options?: RequestOptions): Promise<HealthReport> {
    return this.transport.json({
      method: 'get',
      path: '/health',
      acceptStatuses: [503],
      options: { maxRetries: 0, ...options },
    });
  }

  /** `GET /health/live`: the gateway process is up (`{ status: 'ok' }`); it checks nothing else. */
  healthLive(options?: RequestOptions): Promise<LiveReport> {
    return this.transport.json({
      method: 'get',
      path: '/health/live',
      options: { maxRetries: 0, ...options },
    });
  }

  /**
   * `GET /health/ready`: Postgres, NATS, the JetStream stream and each backend service, by name in
   * `details` (`status: 'ok'`), or the ones down in `error` (`status: 'error'`, answered with 503,
   * returned rather than thrown, and not retried).
   */
  healthReady(options?: RequestOptions): Promise<ReadinessReport> {
    return this.transport.json({
      method: 'get',
      path: '/health/ready',
      acceptStatuses: [503],
      options: { maxRetries: 0, ...options },
    });
  }
}
