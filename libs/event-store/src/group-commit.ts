import { DomainError } from '@threadline/platform';

/** An item waiting in a {@link GroupCommitQueue}, and its caller's promise to settle. */
export interface Queued<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  /** When it was pushed (`performance.now()`, ms). */
  queuedAt: number;
}

export interface GroupCommitOptions<T, R> {
  /** Batches written at once (batches of {@link alone} items not counted). */
  maxInFlight: number;
  /** Items per batch. */
  maxBatch: number;
  /**
   * What an item must not share a batch with, nor be written beside (a stream, an idempotency key):
   * of two items with a key in common, the later waits until the earlier one's batch is written.
   */
  keysOf(item: T): readonly string[];
  /**
   * Items written as a batch of their own, as soon as no earlier item with a key in common is queued
   * or being written, beside the other batches (not counted in {@link maxInFlight}): items big enough
   * that merging them would cost more in parallelism than it saves in commits. Default: none.
   */
  alone?(item: T): boolean;
  /** Writes one batch and settles each of its items; a rejection rejects those it left unsettled. */
  write(batch: readonly Queued<T, R>[]): Promise<void>;
  /**
   * Most items waiting (not yet in a batch being written); a push beyond it is refused at once with
   * `SERVICE.UNAVAILABLE`, before any work. Default: no limit.
   */
  maxQueued?: number;
  /**
   * Longest an item may wait for its batch, ms: one that waited longer is refused with
   * `SERVICE.UNAVAILABLE` when its batch would start, and never written (its caller has given up by
   * then: writing it would commit a request already answered as failed). Default: no limit.
   */
  maxWaitMs?: number;
}

/**
 * Group commit one level above Postgres's own: items that arrive while earlier batches are being
 * written wait, and are written together by the next one, so concurrent writers share a transaction
 * and its WAL flush instead of paying one each. The first item of a quiet moment waits one turn of the
 * event loop (`setImmediate`), so items issued together start together. Items with a key in common are
 * written in the order they were pushed, never in the same or in concurrent batches. Items the
 * options call {@link GroupCommitOptions.alone} are each written as a batch of one, in that same order.
 * Used by the event store's `AppendBatcher` and the chat-log-service's `LogTurnBatcher`.
 */
export class GroupCommitQueue<T, R> {
  private queue: Queued<T, R>[] = [];
  /** Batches being written, those of alone items excepted. */
  private inFlight = 0;
  /** Queued items that are written alone (they may start while {@link inFlight} is at its maximum). */
  private queuedAlone = 0;
  /** Keys of the batches being written. */
  private readonly busy = new Set<string>();
  private scheduled = false;

  constructor(private readonly opts: GroupCommitOptions<T, R>) {}

  /** Items waiting for a batch now. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queues `item`; settles with what its batch's `write` gives it.
   * @throws (rejects) `DomainError` `SERVICE.UNAVAILABLE` when {@link GroupCommitOptions.maxQueued}
   * items wait already, or when it waited past {@link GroupCommitOptions.maxWaitMs}.
   */
  push(item: T): Promise<R> {
    if (this.opts.maxQueued !== undefined && this.queue.length >= this.opts.maxQueued)
      return Promise.reject(
        new DomainError('SERVICE.UNAVAILABLE', `Too many writes waiting (${this.queue.length}); retry later`),
      );
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject, queuedAt: performance.now() });
      if (this.opts.alone?.(item)) this.queuedAlone += 1;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    if (this.inFlight >= this.opts.maxInFlight && this.queuedAlone === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startBatches();
    });
  }

  /** Starts every alone item that may start, and one batch of the others when one more may run. */
  private startBatches(): void {
    const open = this.inFlight < this.opts.maxInFlight;
    const batch: Queued<T, R>[] = [];
    const rest: Queued<T, R>[] = [];
    let started = false;
    // Keys of the items seen so far: a later item with one of them keeps its place behind them.
    const seen = new Set<string>();
    const staleBefore =
      this.opts.maxWaitMs === undefined ? -Infinity : performance.now() - this.opts.maxWaitMs;
    for (const queued of this.queue) {
      if (queued.queuedAt < staleBefore) {
        if (this.opts.alone?.(queued.item)) this.queuedAlone -= 1;
        queued.reject(
          new DomainError(
            'SERVICE.UNAVAILABLE',
            `Waited over ${this.opts.maxWaitMs} ms to be written; retry later`,
          ),
        );
        continue;
      }
      const keys = this.opts.keysOf(queued.item);
      const behind = keys.some((key) => seen.has(key) || this.busy.has(key));
      for (const key of keys) seen.add(key);
      if (this.opts.alone?.(queued.item)) {
        if (behind) rest.push(queued);
        else {
          this.queuedAlone -= 1;
          this.write([queued], false);
          started = true;
        }
        continue;
      }
      const waits = !open || behind || batch.length >= this.opts.maxBatch;
      (waits ? rest : batch).push(queued);
    }
    this.queue = rest;
    if (batch.length > 0) {
      this.write(batch, true);
      started = true;
    }
    if (started) this.schedule();
  }

  /** Writes `batch`, its keys busy meanwhile; `counted`: it counts in {@link inFlight}. */
  private write(batch: Queued<T, R>[], counted: boolean): void {
    if (counted) this.inFlight += 1;
    const keys = batch.flatMap((q) => this.opts.keysOf(q.item));
    for (const key of keys) this.busy.add(key);
    void this.opts
      .write(batch)
      .catch((error: unknown) => batch.forEach((q) => q.reject(error)))
      .finally(() => {
        for (const key of keys) this.busy.delete(key);
        if (counted) this.inFlight -= 1;
        this.schedule();
      });
  }
}
