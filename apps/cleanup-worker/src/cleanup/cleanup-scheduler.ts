import type { CleanupReport } from '@threadline/contracts';
import type { Db, DedicatedConnection } from '@threadline/event-store';
import type { CleanupPass } from './cleanup-pass';

/** Advisory lock key of the leader: the one instance whose timer runs passes. */
export const LEADER_LOCK_KEY = 'threadline.cleanup-worker.leader';

/** Wait after a failed pass before the next try, ms (at most the interval). */
export const FAILED_PASS_RETRY_MS = 10_000;

/** The few log calls the scheduler makes (pino's and Nest's loggers adapt easily). */
export interface SchedulerLogger {
  log(message: string): void;
  error(message: string, error: unknown): void;
}

export interface SchedulerOptions {
  /** Time between two passes of the leader, ms. */
  intervalMs: number;
  /** Time between two tries of a standby instance to become leader, ms (default 1000). */
  standbyRetryMs?: number;
  /** The clock each pass runs against (default `() => new Date()`). */
  clock?: () => Date;
  logger?: SchedulerLogger;
}

/**
 * The cleanup-worker's timer, with leader election (ARCHITECTURE, "Services": one active instance):
 * each instance tries `pg_try_advisory_lock` on {@link LEADER_LOCK_KEY} on a connection it holds; the
 * one that gets it is the leader and runs a pass at once and then every `intervalMs`; the others retry
 * every `standbyRetryMs` and take over when the leader's connection ends (stop, crash, or a lost
 * connection, which Postgres detects and which releases the lock). The leader proves its connection
 * alive before each pass, so it never acts without the lock. A failed pass is logged and retried
 * after {@link FAILED_PASS_RETRY_MS} (or the interval, when shorter).
 */
export class CleanupScheduler {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private leader = false;
  private passes = 0;
  private lastReport: CleanupReport | null = null;
  private readonly clock: () => Date;

  constructor(
    private readonly db: Db,
    private readonly pass: CleanupPass,
    private readonly opts: SchedulerOptions,
  ) {
    this.clock = opts.clock ?? (() => new Date());
  }

  /** True while this instance holds the leader lock. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** Passes this instance's timer has completed (on-demand passes not counted). */
  get passesRun(): number {
    return this.passes;
  }

  /** The report of this instance's last timed pass, null before the first. */
  get lastPass(): CleanupReport | null {
    return this.lastReport;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the pass in flight and releases the leader lock. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  private async run(): Promise<void> {
    const standbyMs = this.opts.standbyRetryMs ?? 1000;
    while (this.running) {
      let conn: DedicatedConnection | undefined;
      try {
        conn = await this.db.dedicated();
        const [row] = await conn.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
          [LEADER_LOCK_KEY],
        );
        if (!row?.ok) {
          await conn.release();
          conn = undefined;
          await this.idle(standbyMs);
          continue;
        }
        this.leader = true;
        this.opts.logger?.log(`cleanup-worker ${this.pass.instanceId} is the leader`);
        while (this.running) {
          // The lock lives as long as this connection: prove it alive (a lost one rejects at once).
          await conn.query('SELECT 1');
          let wait = this.opts.intervalMs;
          try {
            this.lastReport = await this.pass.run({ now: this.clock() });
            this.passes += 1;
            if (this.lastReport.expired + this.lastReport.deleted > 0) {
              this.opts.logger?.log(
                `cleanup pass: ${this.lastReport.expired} expired, ${this.lastReport.deleted} deleted in ${this.lastReport.took_ms} ms`,
              );
            }
          } catch (error) {
            // E.g. the session-service not answering yet at start: retry soon, not an interval later.
            wait = Math.min(this.opts.intervalMs, FAILED_PASS_RETRY_MS);
            this.opts.logger?.error(
              `cleanup pass failed (${error instanceof Error ? error.message : String(error)}); retrying in ${wait} ms`,
              error,
            );
          }
          await this.idle(wait);
        }
      } catch (error) {
        this.opts.logger?.error('cleanup leader connection failed; retrying', error);
        await this.idle(Math.min(standbyMs, 1000));
      } finally {
        this.leader = false;
        if (conn) {
          await conn
            .query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [LEADER_LOCK_KEY])
            .catch(() => undefined);
          await conn.release().catch(() => undefined);
        }
      }
    }
  }
}
