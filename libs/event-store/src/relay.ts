import type { EventEnvelope } from '@threadline/contracts';
import { PayloadTooLargeError } from '@threadline/platform';
import type { Db, DedicatedConnection } from './db';
import { DeadLetters } from './dead-letters';
import { Checkpoints, type CommitPosition, type EventStore, START } from './event-store';
import { lagAfter, reportRelayLag } from './store-metrics';

/**
 * Where the relay sends events. Implemented by `@threadline/messaging`'s JetStream publisher:
 * publishes with `Nats-Msg-Id = event.eventId` and resolves on the JetStream ack; rejects with
 * `PayloadTooLargeError` for an event the transport can never carry.
 */
export interface EventPublisher {
  publish(event: EventEnvelope): Promise<void>;
}

/** The consumer name of the relay's dead letters: events too large for NATS (see {@link Relay}). */
export const RELAY_DEAD_LETTER_CONSUMER = 'relay';

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
 *
 * An event the transport can never carry (larger than NATS's `max_payload`: `PayloadTooLargeError`)
 * must not stop delivery for everyone behind it: it is recorded in `dead_letters` (consumer
 * {@link RELAY_DEAD_LETTER_CONSUMER}, empty payload: the event stays in the store under its id) and
 * skipped. It still reaches the read models: projections are gap-aware and read it from the event store
 * when the next event of its stream arrives. (The gateway refuses requests that would make such an
 * event, so this is a backstop.)
 */
export class Relay {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private checkpoint: CommitPosition = START;
  private leader = false;
  private stopReporting: (() => void) | undefined;
  private readonly opts: Required<Omit<RelayOptions, 'logger'>> & { logger?: RelayLogger };
  private readonly deadLetters: DeadLetters;

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
    this.deadLetters = new DeadLetters(db);
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
    let failures = 0;
    while (this.running) {
      let conn: DedicatedConnection | undefined;
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
        this.opts.logger?.info(
          { relay: this.opts.name, ...(failures > 0 ? { failures } : {}) },
          failures > 0 ? 'relay is active again (lock re-acquired)' : 'relay is active',
        );
        failures = 0;
        const checkpoints = new Checkpoints(this.db);
        this.checkpoint = await checkpoints.load(this.opts.name);
        let lastLockCheck = Date.now();
        while (this.running) {
          // The lock ended with its connection (Postgres restarted): stop publishing as the leader.
          if (conn.lost) throw conn.lost;
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
        // Once per outage at error level; the retries that follow (every second) at info.
        failures += 1;
        const details = {
          err: error instanceof Error ? error.message : String(error),
          relay: this.opts.name,
          failures,
        };
        if (failures === 1) this.opts.logger?.error(details, 'relay failed; retrying from checkpoint');
        else this.opts.logger?.info(details, 'relay failed; retrying from checkpoint');
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

  // Publishes `event`; one too large for the transport is dead-lettered and skipped (see the class doc).
  private async publishOrSkip(event: EventEnvelope): Promise<void> {
    try {
      await this.publisher.publish(event);
    } catch (error) {
      if (!(error instanceof PayloadTooLargeError)) throw error;
      await this.deadLetters.record({
        consumer: RELAY_DEAD_LETTER_CONSUMER,
        subject: event.eventType,
        payload: '',
        error: error.message,
        attempts: 1,
        eventId: event.eventId,
        eventType: event.eventType,
        streamId: event.streamId,
        globalPosition: event.globalPosition,
      });
      this.opts.logger?.error(
        {
          relay: this.opts.name,
          eventId: event.eventId,
          sizeBytes: error.sizeBytes,
          limitBytes: error.limitBytes,
        },
        'event too large for NATS: dead-lettered and skipped',
      );
    }
  }

  // Publishes in order with a sliding window of unacknowledged publishes; throws on the first failure.
  private async publishAll(batch: readonly EventEnvelope[]): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    for (const event of batch) {
      if (failure !== undefined) break;
      const p: Promise<void> = this.publishOrSkip(event).then(
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
