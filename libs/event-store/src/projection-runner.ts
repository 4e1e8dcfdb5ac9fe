import type { AnyEventDefinition, EventEnvelope, EventRegistry, ParsedEvent } from '@threadline/contracts';
import type { Db, Sql } from './db';
import { type EventStore, EventStoreTransaction, START, type CommitPosition } from './event-store';

/**
 * A read model built from events. `apply` and `reset` write only through the `sql` they are given:
 * the runner's transaction, which also moves the projection's positions (ARCHITECTURE rule 5).
 */
export interface Projection<E extends ParsedEvent = ParsedEvent> {
  /** Unique name; also the checkpoint name (`projection:<name>`). */
  readonly name: string;
  /** Stream types (event categories) it follows; it sees every event of those streams, in stream order. */
  readonly streamTypes: readonly string[];
  /**
   * Applies one event, already upcast to its latest version and parsed: with a typed registry, a
   * discriminated union on `type` to switch on.
   */
  apply(sql: Sql, event: E): Promise<void>;
  /** Empties the read model (a rebuild starts from nothing). */
  reset(sql: Sql): Promise<void>;
}

export type HandleOutcome = 'applied' | 'skipped' | 'backfilled' | 'ignored';

/**
 * Runs one projection, idempotently and gap-aware (ARCHITECTURE rules 5 and 6):
 * an event is applied only if its stream position is the next one for its stream; one already
 * applied is skipped; one past a gap first backfills the missing events from the event store.
 * The read-model writes, the stream position and the checkpoint commit in one transaction.
 */
export class ProjectionRunner<Defs extends readonly AnyEventDefinition[] = readonly AnyEventDefinition[]> {
  constructor(
    private readonly db: Db,
    private readonly store: EventStore,
    private readonly registry: EventRegistry<Defs>,
    readonly projection: Projection<ParsedEvent<Defs>>,
  ) {}

  get checkpointName(): string {
    return `projection:${this.projection.name}`;
  }

  /** Handles one event delivered live (from JetStream). Throws when the projection's `apply` throws. */
  async handle(envelope: EventEnvelope): Promise<HandleOutcome> {
    if (!this.projection.streamTypes.includes(envelope.streamType)) return 'ignored';
    return this.db.transaction(async (sql) => {
      // Shared with other live handlers, exclusive against a rebuild (see rebuild()).
      await sql.query('SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))', [this.checkpointName]);
      await sql.query(
        `INSERT INTO projection_streams (projection, stream_id, position) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING`,
        [this.projection.name, envelope.streamId],
      );
      const [row] = await sql.query<{ position: string }>(
        'SELECT position FROM projection_streams WHERE projection = $1 AND stream_id = $2 FOR UPDATE',
        [this.projection.name, envelope.streamId],
      );
      const applied = Number(row?.position ?? 0);
      if (envelope.streamPosition <= applied) return 'skipped';

      let outcome: HandleOutcome = 'applied';
      let events = [envelope];
      if (envelope.streamPosition > applied + 1) {
        outcome = 'backfilled';
        // Read through this transaction's connection: a second pool connection per handler can exhaust the
        // pool when many handlers hold theirs (a deadlock under load).
        events = await new EventStoreTransaction(sql).readStream(envelope.streamId, {
          from: applied + 1,
          to: envelope.streamPosition,
        });
        // The event store is the record: what it holds between the two positions is what we apply.
      }
      for (const event of events) await this.projection.apply(sql, this.registry.parse(event));
      const last = events[events.length - 1] ?? envelope;
      await this.savePositions(sql, envelope.streamId, last.streamPosition, last.globalPosition);
      return outcome;
    });
  }

  /**
   * Rebuilds the read model from the event store in one transaction: empty it, replay every event
   * in commit order, commit. Readers keep seeing the old rows until the commit (MVCC), and live
   * handling waits for the rebuild (an exclusive advisory lock against the live handlers' shared one), then
   * skips what the rebuild applied. Every event a live handler applied before the lock was published by
   * the relay below the xmin horizon, so the replay includes it: nothing applied live is lost by the reset.
   * Returns the number of events replayed and the time taken (ms).
   */
  async rebuild(opts: { batchSize?: number; onProgress?: (replayed: number) => void } = {}): Promise<{
    events: number;
    tookMs: number;
  }> {
    const started = performance.now();
    const batchSize = opts.batchSize ?? 1000;
    const events = await this.db.transaction(async (sql) => {
      await sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [this.checkpointName]);
      await this.projection.reset(sql);
      await sql.query('DELETE FROM projection_streams WHERE projection = $1', [this.projection.name]);
      const positions = new Map<string, { stream: number; global: number }>();
      let after: CommitPosition = START;
      let replayed = 0;
      // The checkpoint's global position is the highest one applied (as_of), not the last in commit order:
      // commit order sorts by transaction id first, so its last event can have a lower global position.
      let highest = 0;
      for (;;) {
        const batch = await this.store.readAll(after, batchSize, sql);
        if (batch.length === 0) break;
        for (const event of batch) {
          if (this.projection.streamTypes.includes(event.streamType)) {
            await this.projection.apply(sql, this.registry.parse(event));
            positions.set(event.streamId, { stream: event.streamPosition, global: event.globalPosition });
            highest = Math.max(highest, event.globalPosition);
          }
          replayed += 1;
        }
        const last = batch[batch.length - 1]!;
        after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
        opts.onProgress?.(replayed);
      }
      const ids = [...positions.keys()];
      await sql.query(
        `INSERT INTO projection_streams (projection, stream_id, position)
         SELECT $1, s, p FROM unnest($2::text[], $3::bigint[]) AS u(s, p)`,
        [this.projection.name, ids, ids.map((id) => positions.get(id)!.stream)],
      );
      await sql.query(
        `INSERT INTO checkpoints (name, transaction_id, global_position) VALUES ($1, $2::xid8, $3)
         ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
           global_position = EXCLUDED.global_position, updated_at = now()`,
        [this.checkpointName, after.transactionId, highest],
      );
      return replayed;
    });
    return { events, tookMs: performance.now() - started };
  }

  /** The highest global position this projection has applied (0 when none): `as_of_position`. */
  async position(sql: Sql = this.db): Promise<number> {
    const [row] = await sql.query<{ global_position: string }>(
      'SELECT global_position FROM checkpoints WHERE name = $1',
      [this.checkpointName],
    );
    return Number(row?.global_position ?? 0);
  }

  private async savePositions(sql: Sql, streamId: string, streamPosition: number, globalPosition: number) {
    await sql.query('UPDATE projection_streams SET position = $3 WHERE projection = $1 AND stream_id = $2', [
      this.projection.name,
      streamId,
      streamPosition,
    ]);
    await sql.query(
      `INSERT INTO checkpoints (name, global_position) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET global_position = GREATEST(checkpoints.global_position, EXCLUDED.global_position),
         updated_at = now()`,
      [this.checkpointName, globalPosition],
    );
  }
}
