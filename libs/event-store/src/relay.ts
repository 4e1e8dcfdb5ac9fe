import type { EventEnvelope } from '@threadline/contracts';
import type { Db } from './db';
import { Checkpoints, type CommitPosition, type EventStore, START } from './event-store';
import { lagAfter, reportRelayLag } from './store-metrics';

/**
 * Where the relay sends events. Implemented by `@threadline/messaging`'s JetStream publisher:
 * publishes with `Nats-Msg-Id = event.eventId` and resolves on the JetStream ack.
 */
export interface EventPublisher {
  publish(event: EventEnvelope): Promise<void>;
}

/** The few log calls the relay makes (pino's signature; a Nest logger adapts easily). */
export interface RelayLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RelayOptions {
  /** Checkpoint name; one relay per database (default `relay`). */
  name?: string;
  /** Events read per batch (default 500). */
  batchSize?: number;
  /** Publishes awaiting their ack at once (default 256). */
  maxInFlight?: number;
  /** Wait between polls when there was nothing to relay, ms (default 25). */
  pollIntervalMs?: number;
  /** Wait between tries to become the active relay, ms (default 1000). */
  standbyRetryMs?: number;
  logger?: RelayLogger;
}

/**
 * The outbox relay (ARCHITECTURE rules 1-3): one active instance per database, chosen by a session
 * advisory lock; tails committed events in commit-safe order and publishes each to JetStream with
 * `Nats-Msg-Id = event_id`, at most `maxInFlight` unacknowledged at once; saves its checkpoint only
 * after every event of the batch is acknowledged. A crash between publish and checkpoint republishes
 * the batch, and JetStream's duplicate window drops the copies, so each event is in the stream once.
 */
export class Relay {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private checkpoint: CommitPosition = START;
  private leader = false;
  private stopReporting: (() => void) | undefined;
  private readonly opts: Required<Omit<RelayOptions, 'logger'>> & { logger?: RelayLogger };

  constructor(
    private readonly db: Db,
    private readonly store: EventStore,
    private readonly publisher: EventPublisher,
    options: RelayOptions = {},
  ) {
    this.opts = {
      name: 'relay',
      batchSize: 500,
      maxInFlight: 256,
      pollIntervalMs: 25,
      standbyRetryMs: 1000,
      ...options,
    };
  }

  /** True while this instance holds the relay lock. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** The last commit position this relay published and checkpointed. */
  get position(): CommitPosition {
    return this.checkpoint;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopReporting = reportRelayLag(
      this.opts.name,
      () => this.leader,
      () => lagAfter(this.db, this.checkpoint.globalPosition),
    );
    this.loop = this.run();
  }

  /** Stops after the batch in flight (its checkpoint is saved) and releases the lock. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopReporting?.();
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
    const lockKey = `threadline.${this.opts.name}`;
    while (this.running) {
      let conn: Awaited<ReturnType<Db['dedicated']>> | undefined;
      try {
        conn = await this.db.dedicated();
        const [row] = await conn.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
          [lockKey],
        );
        if (!row?.ok) {
          await conn.release();
          conn = undefined;
          await this.idle(this.opts.standbyRetryMs);
          continue;
        }
        this.leader = true;
        this.opts.logger?.info({ relay: this.opts.name }, 'relay is active');
        const checkpoints = new Checkpoints(this.db);
        this.checkpoint = await checkpoints.load(this.opts.name);
        let lastLockCheck = Date.now();
        while (this.running) {
          const batch = await this.store.readAll(this.checkpoint, this.opts.batchSize);
          if (batch.length > 0) {
            await this.publishAll(batch);
            const last = batch[batch.length - 1]!;
            const next = { transactionId: last.transactionId, globalPosition: last.globalPosition };
            await checkpoints.save(this.opts.name, next);
            this.checkpoint = next;
            if (batch.length === this.opts.batchSize) continue;
          }
          // The lock lives as long as its connection; prove the connection is alive now and then.
          if (Date.now() - lastLockCheck > 1000) {
            await conn.query('SELECT 1');
            lastLockCheck = Date.now();
          }
          await this.idle(this.opts.pollIntervalMs);
        }
      } catch (error) {
        this.opts.logger?.error(
          { err: error, relay: this.opts.name },
          'relay failed; retrying from checkpoint',
        );
        await this.idle(Math.min(this.opts.standbyRetryMs, 1000)); // woken by stop()
      } finally {
        this.leader = false;
        if (conn) {
          await conn.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
          await conn.release().catch(() => undefined);
        }
      }
    }
  }

  // Publishes in order with a sliding window of unacknowledged publishes; throws on the first failure.
  private async publishAll(batch: readonly EventEnvelope[]): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    for (const event of batch) {
      if (failure !== undefined) break;
      const p: Promise<void> = this.publisher.publish(event).then(
        () => {
          inFlight.delete(p);
        },
        (error: unknown) => {
          inFlight.delete(p);
          failure ??= error;
        },
      );
      inFlight.add(p);
      if (inFlight.size >= this.opts.maxInFlight) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure !== undefined)
      throw failure instanceof Error ? failure : new Error('publish failed', { cause: failure });
  }
}
