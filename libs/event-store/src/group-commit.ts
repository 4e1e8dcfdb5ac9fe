/** An item waiting in a {@link GroupCommitQueue}, and its caller's promise to settle. */
export interface Queued<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export interface GroupCommitOptions<T, R> {
  /** Batches written at once. */
  maxInFlight: number;
  /** Items per batch. */
  maxBatch: number;
  /**
   * What an item must not share a batch with, nor be written beside (a stream, an idempotency key):
   * of two items with a key in common, the later waits until the earlier one's batch is written.
   */
  keysOf(item: T): readonly string[];
  /** Writes one batch and settles each of its items; a rejection rejects those it left unsettled. */
  write(batch: readonly Queued<T, R>[]): Promise<void>;
}

/**
 * Group commit one level above Postgres's own: items that arrive while earlier batches are being
 * written wait, and are written together by the next one, so concurrent writers share a transaction
 * and its WAL flush instead of paying one each. The first item of a quiet moment waits one turn of the
 * event loop (`setImmediate`), so items issued together start together. Items with a key in common are
 * written in the order they were pushed, never in the same or in concurrent batches. Used by the event
 * store's `AppendBatcher` and the chat-log-service's `LogTurnBatcher`.
 */
export class GroupCommitQueue<T, R> {
  private queue: Queued<T, R>[] = [];
  private inFlight = 0;
  /** Keys of the batches being written. */
  private readonly busy = new Set<string>();
  private scheduled = false;

  constructor(private readonly opts: GroupCommitOptions<T, R>) {}

  /** Queues `item`; settles with what its batch's `write` gives it. */
  push(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startBatch();
    });
  }

  private startBatch(): void {
    if (this.inFlight >= this.opts.maxInFlight) return;
    const batch: Queued<T, R>[] = [];
    const rest: Queued<T, R>[] = [];
    // Keys of the items seen so far: a later item with one of them keeps its place behind them.
    const seen = new Set<string>();
    for (const queued of this.queue) {
      const keys = this.opts.keysOf(queued.item);
      const waits =
        batch.length >= this.opts.maxBatch || keys.some((key) => seen.has(key) || this.busy.has(key));
      for (const key of keys) seen.add(key);
      (waits ? rest : batch).push(queued);
    }
    if (batch.length === 0) return;
    this.queue = rest;
    this.inFlight += 1;
    const keys = batch.flatMap((q) => this.opts.keysOf(q.item));
    for (const key of keys) this.busy.add(key);
    void this.opts
      .write(batch)
      .catch((error: unknown) => batch.forEach((q) => q.reject(error)))
      .finally(() => {
        for (const key of keys) this.busy.delete(key);
        this.inFlight -= 1;
        this.schedule();
      });
    this.schedule();
  }
}
