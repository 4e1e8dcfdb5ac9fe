import { z } from 'zod';
import { GatewayClient } from './http';

/** A write the load generator made: what, its idempotency key, and whether a 2xx acknowledged it. */
export interface Write {
  kind: 'create' | 'turn' | 'end' | 'delete';
  /** The Idempotency-Key sent on every attempt; also the marker stored in the event (title, user_input). */
  key: string;
  sessionId: string | undefined;
  turnId?: string;
  acked: boolean;
  /** A non-retryable 4xx answered (status), e.g. 409 when an idempotent retry was not recognized. */
  rejected?: number;
  attempts: number;
  /** ms from its first attempt to its acknowledgement (retries included); undefined when not acknowledged. */
  latencyMs?: number;
}

/** Counters of one run of the generator. */
export interface LoadStats {
  attempts: number;
  retries: number;
  networkErrors: number;
  /** Answers by status class and code, e.g. `{ 201: 900, 503: 12 }`. */
  statuses: Record<string, number>;
  /** ms since the generator started: every failed attempt (5xx, 429, network error). */
  failureTimes: number[];
  /** ms since the generator started: every acknowledged write. */
  ackTimes: number[];
}

export interface LoadOptions {
  gatewayUrls: readonly string[];
  apiKey: string;
  /** Concurrent clients (each sequential). */
  workers: number;
  /** Requests per second across all workers (attempts, retries included); 0 = unthrottled. */
  rate: number;
  /** Turns per session before it is ended. */
  turnsPerSession: number;
  /** Every n-th session is deleted after it ended (0: none). */
  deleteEvery: number;
  /** Prefix of every key and user id: unique per scenario. */
  tag: string;
  /** ms a write keeps retrying before it is given up (left unacknowledged). */
  giveUpMs: number;
  /** ms per request before the client gives up on it and retries. */
  requestTimeoutMs: number;
}

const SessionAnswer = z.object({ session_id: z.string() });
const TurnAnswer = z.object({ turn_id: z.string() });

/** Statuses a client retries with the same key: the service said "try again", or nothing answered. */
const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

/** A token bucket: `take()` resolves when a request may be sent (`rate` per second, burst of 1 s). */
class Limiter {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly rate: number) {
    this.tokens = rate;
  }

  async take(): Promise<void> {
    if (this.rate <= 0) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The bounded load generator of a scenario: `workers` clients, each creating a session (user
 * `<tag>-w<i>`), logging `turnsPerSession` turns into it, ending it and, every `deleteEvery`-th
 * session, deleting it, every write with an `Idempotency-Key`. A client retries as a client should:
 * on a 5xx, 429, timeout or network error it sends the same request with the same key again (backoff
 * 50 ms doubling to 1 s, alternating between the gateways) until `giveUpMs` has passed. Every write
 * is recorded in {@link writes}, acknowledged (a 2xx) or not.
 */
export class LoadGenerator {
  readonly writes: Write[] = [];
  readonly stats: LoadStats = {
    attempts: 0,
    retries: 0,
    networkErrors: 0,
    statuses: {},
    failureTimes: [],
    ackTimes: [],
  };
  readonly startedAt = Date.now();
  private readonly clients: GatewayClient[];
  private readonly limiter: Limiter;
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly opts: LoadOptions) {
    this.clients = opts.gatewayUrls.map(
      (url) => new GatewayClient(url, opts.apiKey, opts.workers, opts.requestTimeoutMs),
    );
    this.limiter = new Limiter(opts.rate);
  }

  start(): void {
    for (let w = 0; w < this.opts.workers; w++) this.loops.push(this.worker(w));
  }

  /** Stops starting writes; resolves when every write in flight was acknowledged or given up. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
  }

  private async worker(w: number): Promise<void> {
    const user = `${this.opts.tag}-w${w}`;
    let seq = 0;
    let sessions = 0;
    while (!this.stopping) {
      const create = await this.execute(w, 'create', `${user}-s${++seq}`, undefined, (key) => ({
        method: 'POST',
        path: '/sessions',
        body: { user_id: user, title: key, metadata: { chaos: this.opts.tag } },
      }));
      if (!create.acked || create.sessionId === undefined) continue;
      const sessionId = create.sessionId;
      sessions++;
      for (let t = 0; t < this.opts.turnsPerSession && !this.stopping; t++) {
        await this.execute(w, 'turn', `${user}-t${++seq}`, sessionId, (key) => ({
          method: 'POST',
          path: `/sessions/${sessionId}/turns`,
          body: {
            user_input: key,
            agent_responses: [
              {
                agent_name: 'chaos-agent',
                response: `answer to ${key}`,
                model: 'gpt-4o-mini',
                execution_time_ms: 12,
                usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 },
              },
            ],
          },
        }));
      }
      if (this.stopping) break;
      await this.execute(w, 'end', `${user}-e${++seq}`, sessionId, () => ({
        method: 'POST',
        path: `/sessions/${sessionId}/end`,
        body: {},
      }));
      if (this.opts.deleteEvery > 0 && sessions % this.opts.deleteEvery === 0 && !this.stopping)
        await this.execute(w, 'delete', `${user}-d${++seq}`, sessionId, () => ({
          method: 'DELETE',
          path: `/sessions/${sessionId}`,
        }));
    }
  }

  private async execute(
    worker: number,
    kind: Write['kind'],
    key: string,
    sessionId: string | undefined,
    build: (key: string) => { method: string; path: string; body?: unknown },
  ): Promise<Write> {
    const write: Write = { kind, key, sessionId, acked: false, attempts: 0 };
    this.writes.push(write);
    const { method, path, body } = build(key);
    const raw = body === undefined ? undefined : JSON.stringify(body);
    const firstAt = Date.now();
    const giveUpAt = firstAt + this.opts.giveUpMs;
    let backoff = 50;
    for (;;) {
      await this.limiter.take();
      const client = this.clients[(worker + write.attempts) % this.clients.length]!;
      write.attempts++;
      this.stats.attempts++;
      if (write.attempts > 1) this.stats.retries++;
      try {
        const answer = await client.send(method, path, raw, { 'idempotency-key': key });
        this.stats.statuses[answer.status] = (this.stats.statuses[answer.status] ?? 0) + 1;
        if (answer.status >= 200 && answer.status < 300) {
          write.acked = true;
          write.latencyMs = Date.now() - firstAt;
          this.stats.ackTimes.push(Date.now() - this.startedAt);
          this.identify(write, answer.body);
          return write;
        }
        if (!retryable(answer.status)) {
          write.rejected = answer.status;
          return write;
        }
      } catch {
        this.stats.networkErrors++;
      }
      this.stats.failureTimes.push(Date.now() - this.startedAt);
      if (Date.now() + backoff > giveUpAt) return write;
      await sleep(backoff);
      backoff = Math.min(1000, backoff * 2);
    }
  }

  private identify(write: Write, body: string): void {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return;
    }
    if (write.kind === 'create') {
      const parsed = SessionAnswer.safeParse(json);
      if (parsed.success) write.sessionId = parsed.data.session_id;
    } else if (write.kind === 'turn') {
      const parsed = TurnAnswer.safeParse(json);
      if (parsed.success) write.turnId = parsed.data.turn_id;
    }
  }
}
