import {
  type AnyEventDefinition,
  type EventEnvelope,
  type EventRegistry,
  ERASED_DATA,
  isErased,
  type ParsedEvent,
} from '@threadline/contracts';
import type { Db, Sql, SqlTransaction } from './db';
import {
  type EventStore,
  EventStoreTransaction,
  START,
  type CommitPosition,
  toEnvelope,
} from './event-store';
import { ROOT_CONTEXT, type SpanContext, trace } from '@opentelemetry/api';
import { inSpan, tracingEnabled } from '@threadline/platform';
import { lagAfter, reportProjectionLag } from './store-metrics';

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
  /** Empties the read model (a rebuild starts from nothing). Unused by versioned projections. */
  reset(sql: Sql): Promise<void>;
  /**
   * Optional: applies several events, in order, with few statements (multi-row writes). The runner
   * uses it for a rebuild's batches and for a live event plus its backfill; without it, `apply` each.
   * Must leave the same rows as `apply` of each event in turn.
   */
  applyBatch?(sql: Sql, events: readonly E[]): Promise<void>;
  /**
   * Optional: the read model is versioned (ARCHITECTURE rule 6). Each version lives in its own Postgres
   * schema `<schemaPrefix>_v<n>`; the pointer row in `projection_versions` says which version is live.
   * The runner sets `search_path` to the version's schema (then `public`) before calling `create`,
   * `apply` or `applyBatch`, so the projection's SQL names its tables unqualified.
   * A rebuild then builds a new version beside the live one (see `ProjectionRunner.rebuild`).
   */
  readonly versioning?: ProjectionVersioning<E>;
}

/** How a versioned projection's tables are made; see {@link Projection.versioning}. */
export interface ProjectionVersioning<E extends ParsedEvent = ParsedEvent> {
  /** Lowercase SQL identifier (letters, digits, `_`): version n lives in schema `<schemaPrefix>_v<n>`. */
  readonly schemaPrefix: string;
  /** Creates the empty tables and indexes of a new version (unqualified names: search_path is set). */
  create(sql: Sql): Promise<void>;
  /**
   * Optional: secondary indexes, created after a rebuild's bulk replay and before its catch-up and
   * switch (building an index once is cheaper than maintaining it row by row). A version created
   * empty (the first one) gets them right after `create`. Primary keys belong in `create`.
   */
  createIndexes?(sql: Sql): Promise<void>;
  /**
   * Optional (default 1): the revision of the version's definition. Raise it with any change of
   * `create`, `createIndexes` or the apply functions that leaves a version built by the old code
   * unreadable or wrong for the new one. A live version of another revision is rebuilt before it
   * is used (see {@link ProjectionRunner.ensureLive}), as Marten's `ProjectionVersion` makes a
   * changed projection build into new tables.
   */
  readonly revision?: number;
  /**
   * Optional: how a rebuild's bulk replay writes the version it builds. That version is written by the
   * rebuild alone and read by nobody until its switch, so it may be written more cheaply than live
   * handling writes: `batch(events).write` replaces the projection's `applyBatch` for the bulk batches
   * (e.g. facts only, without the rows derived from them), then the `finish` steps run once, after the
   * last bulk batch and before `createIndexes`, the catch-up and the switch, and must leave exactly the
   * rows incremental handling gives (the catch-up then applies the remaining events with the
   * projection's own `applyBatch`).
   * The same idea as PostgreSQL's "Populating a Database" (manual, section 14.4): load first, then derive.
   */
  readonly replay?: {
    /**
     * Prepares one batch of the bulk replay (at least one event): whether it is independent, and how to
     * write it. Called once per batch, in commit order, so that what both need (e.g. the batch folded
     * into rows) is computed once.
     */
    batch(events: readonly E[]): BulkBatch;
    /**
     * Steps run at once, each in a transaction of its own (so none may depend on another's writes):
     * after the load, Postgres alone works, and one statement uses one core. A failed step fails the
     * rebuild once every step has settled.
     */
    finish: readonly ((sql: SqlTransaction) => Promise<void>)[];
  };
}

/** One batch of a rebuild's bulk replay, as {@link ProjectionVersioning.replay} prepared it. */
export interface BulkBatch {
  /**
   * Whether writing it neither reads nor changes rows that earlier batches wrote (only new rows, found
   * by nothing else). Such a batch is written while the batch before it is still being written, in
   * another transaction; any other batch waits for every write before it, and the next waits for it.
   */
  readonly independent: boolean;
  /** Writes the batch, in a transaction of its own (`copyFrom` loads rows with COPY). */
  write(sql: SqlTransaction): Promise<void>;
}

/** One version of a versioned projection, as `projection_versions` holds it. */
export interface ProjectionVersion {
  version: number;
  schema: string;
  status: 'building' | 'live';
}

/** Progress and result of a rebuild. `events` counts the events replayed; `tookMs` is wall time (ms). */
export interface RebuildResult {
  events: number;
  tookMs: number;
  /** The version now live (versioned projections only). */
  version?: number;
  /**
   * Versioned projections only: wall time of each step, ms. `replay`: the bulk replay (from the start
   * of the rebuild); `finish`: `versioning.replay.finish`; `indexes`: `createIndexes`; `analyze`: the
   * new tables' statistics; `switch`: the catch-up, the switch and the drop of the replaced version.
   */
  phasesMs?: RebuildPhases;
}

/** See {@link RebuildResult.phasesMs}. */
export interface RebuildPhases {
  replay: number;
  finish: number;
  indexes: number;
  analyze: number;
  switch: number;
}

/** `projection_versions`: created on first use by the runner (idempotent DDL under an advisory lock). */
const PROJECTION_VERSIONS_DDL = `
  CREATE TABLE IF NOT EXISTS projection_versions (
    projection  text        NOT NULL,
    version     integer     NOT NULL,
    schema_name text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('building', 'live')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    switched_at timestamptz,
    PRIMARY KEY (projection, version)
  );
  ALTER TABLE projection_versions ADD COLUMN IF NOT EXISTS revision integer NOT NULL DEFAULT 1;
  CREATE UNIQUE INDEX IF NOT EXISTS projection_versions_one_live ON projection_versions (projection)
    WHERE status = 'live'`;

/**
 * Upserts a projection checkpoint; the arguments are the SQL parameters holding its name, its commit
 * position's transaction id (null keeps the stored one) and its global position (it only moves forward).
 */
const checkpointUpsert = (name: string, transactionId: string, globalPosition: string) => `
  INSERT INTO checkpoints (name, transaction_id, global_position)
  VALUES (${name}, COALESCE(${transactionId}::xid8, '0'::xid8), ${globalPosition})
  ON CONFLICT (name) DO UPDATE SET
    transaction_id = COALESCE(${transactionId}::xid8, checkpoints.transaction_id),
    global_position = GREATEST(checkpoints.global_position, EXCLUDED.global_position),
    updated_at = now()`;

const lockKey = (name: string) => `hashtextextended('${name.replaceAll("'", "''")}', 0)`;

/** A stopwatch from `since` (performance.now() ms): each call answers the ms since the previous one. */
function phaseTimer(since: number): () => number {
  let last = since;
  return () => {
    const now = performance.now();
    const elapsed = now - last;
    last = now;
    return elapsed;
  };
}

/** Most write transactions of a rebuild's bulk replay at once (see `ProjectionVersioning.replay`). */
const MAX_BULK_WRITES = 2;

/**
 * The write transactions of a rebuild's bulk replay. An independent write starts while at most
 * `max - 1` others run; any other write waits for every write before it, and the next waits for it.
 * A failed write is thrown by the next call (or by `drain`), once every started write has settled.
 */
class BulkWrites {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly max: number) {}

  async write(independent: boolean, run: () => Promise<void>): Promise<void> {
    if (independent) {
      while (this.running.size >= this.max) await Promise.race(this.running);
    } else {
      await Promise.all(this.running);
    }
    this.throwIfFailed();
    const running: Promise<void> = run()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(running));
    this.running.add(running);
    if (!independent) await this.drain();
  }

  /** Waits for every write started; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.running);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** Thrown by `rebuild()` when another rebuild of the same projection holds its rebuild lock. */
export class RebuildInProgressError extends Error {
  constructor(name: string) {
    super(`A rebuild of projection ${name} is already running`);
    this.name = 'RebuildInProgressError';
  }
}

export type HandleOutcome = 'applied' | 'skipped' | 'backfilled' | 'ignored';

/** Most live events committed in one transaction by {@link ProjectionRunner.handle}. */
export const MAX_LIVE_BATCH = 500;

/** An event read by a rebuild and its parsed form (null when erased: not applied, its position counts). */
interface ReplayedEvent<P> {
  envelope: EventEnvelope;
  parsed: P | null;
}

interface PendingEvent {
  envelope: EventEnvelope;
  resolve: (outcome: HandleOutcome) => void;
  reject: (error: unknown) => void;
  /** With tracing on: the span of its handling, linked from the batch that commits it. */
  span?: SpanContext | undefined;
}

/** A caller of {@link ProjectionRunner.whenApplied}: woken when the committed position reaches `position`. */
interface PositionWaiter {
  position: number;
  wake: (reached: boolean) => void;
}

/** Postgres error codes of a relation or schema that no longer exists (a reader raced a drop). */
const DROPPED_RELATION_CODES = new Set(['42P01', '3F000']);

function pgCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const direct = (error as { code?: unknown }).code;
  if (typeof direct === 'string') return direct;
  const driver = (error as { driverError?: { code?: unknown } }).driverError?.code;
  return typeof driver === 'string' ? driver : undefined;
}

/**
 * Runs one projection, idempotently and gap-aware (ARCHITECTURE rules 5 and 6):
 * an event is applied only if its stream position is the next one for its stream; one already
 * applied is skipped; one past a gap first backfills the missing events from the event store.
 * The read-model writes, the stream position and the checkpoint commit in one transaction.
 *
 * A projection with `versioning` keeps its rows in one Postgres schema per version; the live one is
 * named by a pointer row (`projection_versions`), its stream positions are kept under
 * `<name>@v<n>` in `projection_streams` and its checkpoint is `projection:<name>@v<n>`. Its rebuild
 * builds a new version beside the live one in short batch transactions, catches up, switches the
 * pointer atomically and drops the old version, while queries ({@link read}) keep answering.
 */
export class ProjectionRunner<Defs extends readonly AnyEventDefinition[] = readonly AnyEventDefinition[]> {
  private liveEnsured: Promise<void> | undefined;
  /** Live events waiting for the next group-commit transaction, in arrival order. */
  private pending: PendingEvent[] = [];
  private flushing = false;
  /** Highest global position this runner's live handling has committed to a checkpoint (0: none yet). */
  private committedPosition = 0;
  private readonly positionWaiters = new Set<PositionWaiter>();

  constructor(
    private readonly db: Db,
    private readonly store: EventStore,
    private readonly registry: EventRegistry<Defs>,
    readonly projection: Projection<ParsedEvent<Defs>>,
  ) {
    // `threadline_projection_lag_*{projection}`, read at scrape time (never in a process not scraped).
    reportProjectionLag(projection.name, async () =>
      lagAfter(db, await this.position(), projection.streamTypes),
    );
  }

  /** Name of the lock shared by live handlers and taken exclusively by a rebuild's switch (and its checkpoint for unversioned projections). */
  get checkpointName(): string {
    return `projection:${this.projection.name}`;
  }

  /**
   * SQL of the advisory lock key that {@link read} takes shared (in its first statement: no extra round
   * trip) and a rebuild takes exclusively to drop the version it replaced.
   */
  private get readersLock(): string {
    return lockKey(`readers:${this.checkpointName}`);
  }

  /** Whether the projection keeps one schema per version (see {@link Projection.versioning}). */
  get versioned(): boolean {
    return this.projection.versioning !== undefined;
  }

  /** The `projection_streams.projection` key of a version (`<name>@v<n>`), or the name when unversioned. */
  positionsKey(version: number | null): string {
    return version === null ? this.projection.name : `${this.projection.name}@v${version}`;
  }

  /** The checkpoint name of a version (`projection:<name>@v<n>`), or `projection:<name>` when unversioned. */
  checkpointOf(version: number | null): string {
    return `projection:${this.positionsKey(version)}`;
  }

  /**
   * Handles one event delivered live (from JetStream) and resolves with its outcome once it is
   * committed: `applied`, `skipped` (already applied), `backfilled` (applied after the events of the
   * gap before it, read from the event store) or `ignored` (not a followed stream type). Rejects when
   * the projection's `apply` (or `applyBatch`) throws for it, or when Postgres fails.
   *
   * Concurrent calls are committed together (group commit): calls that arrive while a transaction is
   * running wait for it and then go into the next one, at most {@link MAX_LIVE_BATCH} per
   * transaction, handled in arrival order with exactly the outcomes and rows that handling them one
   * by one in that order gives. When that transaction fails, its events are retried one per
   * transaction, so only the one that fails is rejected (and redelivered by its consumer).
   */
  async handle(envelope: EventEnvelope): Promise<HandleOutcome> {
    if (!this.projection.streamTypes.includes(envelope.streamType)) return 'ignored';
    if (this.versioned) await this.ensureLive();
    const enqueue = (span?: SpanContext) =>
      new Promise<HandleOutcome>((resolve, reject) => {
        this.pending.push({ envelope, resolve, reject, span });
        if (!this.flushing) void this.flush();
      });
    if (!tracingEnabled()) return enqueue();
    // One span per event until its batch commits (in the event's trace); the batch links them all.
    return inSpan(
      `project ${this.projection.name}`,
      {
        attributes: {
          'threadline.projection': this.projection.name,
          'threadline.event_type': envelope.eventType,
        },
      },
      async (span) => {
        const outcome = await enqueue(span.spanContext());
        span.setAttribute('threadline.outcome', outcome);
        return outcome;
      },
    );
  }

  /**
   * Resolves `true` as soon as this runner, in this process, has committed live handling up to global
   * position `position` or beyond (at once when it already has), `false` after `timeoutMs` (ms)
   * otherwise. Only what this runner commits wakes it: a checkpoint moved by another process (another
   * instance, a rebuild CLI) is seen by reading it ({@link position}). Once `true`, {@link position}
   * is at least `position` too: the version handled was live at the commit (live handlers hold the lock
   * a switch takes exclusively), and a rebuilt version replays every event published before its switch.
   */
  whenApplied(position: number, timeoutMs: number): Promise<boolean> {
    if (this.committedPosition >= position) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiter: PositionWaiter = {
        position,
        wake: (reached) => {
          clearTimeout(timer);
          this.positionWaiters.delete(waiter);
          resolve(reached);
        },
      };
      const timer = setTimeout(() => waiter.wake(false), Math.max(0, timeoutMs));
      this.positionWaiters.add(waiter);
    });
  }

  /**
   * Rebuilds the read model from the event store and returns the events replayed and the time (ms).
   *
   * Versioned projections (ARCHITECTURE rule 6, no downtime): creates version n+1 in its own schema;
   * replays every event of the followed stream types in commit order, `batchSize` events per short
   * transaction (a long writing transaction would hold back `pg_snapshot_xmin`, and so every tail on
   * the server); then, under the exclusive lock live handlers share, replays the tail that committed
   * meanwhile and moves the pointer to n+1 in one commit; then drops version n. Live handling goes on
   * into version n until the switch (it waits only for the switch's short transaction) and into n+1
   * after it, skipping what the rebuild applied; queries read version n until the switch. Every event a
   * live handler applied to version n was published by the relay below the xmin horizon, so the
   * rebuild's final catch-up includes it. A second concurrent rebuild of the same projection throws
   * {@link RebuildInProgressError}; a rebuild that died leaves a `building` version the next one drops.
   *
   * Unversioned projections: one transaction (reset, replay, commit); readers see the old rows until
   * the commit (MVCC) and live handling waits for it.
   */
  async rebuild(
    opts: { batchSize?: number; onProgress?: (replayed: number) => void } = {},
  ): Promise<RebuildResult> {
    return this.versioned ? this.rebuildVersioned(opts) : this.rebuildInOneTransaction(opts);
  }

  /**
   * Runs `fn` on a consistent view of the live read model: one REPEATABLE READ, read-only transaction
   * whose `search_path` is the live version's schema (versioned projections), with `asOf`, the highest
   * global position applied to what `fn` reads (`as_of_position`). A read that races the drop of the
   * version it started on is retried on the new one (at most 3 attempts). Round trips: the BEGIN (which
   * sets the isolation), one statement for the live version and its checkpoint, `fn`'s, the COMMIT.
   */
  async read<T>(fn: (sql: Sql, asOf: number) => Promise<T>): Promise<T> {
    if (this.versioned) await this.ensureLive();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(
          async (sql) =>
            fn(sql, this.versioned ? await this.useLivePosition(sql) : await this.positionOf(sql, null)),
          { isolation: 'repeatable read', readOnly: true },
        );
      } catch (error) {
        const code = pgCodeOf(error);
        if (attempt >= 3 || code === undefined || !DROPPED_RELATION_CODES.has(code)) throw error;
      }
    }
  }

  /** The highest global position this projection has applied (0 when none): `as_of_position`. */
  async position(sql: Sql = this.db): Promise<number> {
    if (!this.versioned) return this.positionOf(sql, null);
    await this.ensureLive();
    const live = await this.liveVersion(sql);
    return live ? this.positionOf(sql, live.version) : 0;
  }

  /** The live version of a versioned projection (undefined when unversioned). */
  async liveVersion(sql: Sql = this.db): Promise<ProjectionVersion | undefined> {
    if (!this.versioned) return undefined;
    await this.ensureLive();
    const [row] = await sql.query<{ version: number; schema_name: string }>(
      `SELECT version, schema_name FROM projection_versions WHERE projection = $1 AND status = 'live'`,
      [this.projection.name],
    );
    return row ? { version: row.version, schema: row.schema_name, status: 'live' } : undefined;
  }

  /** The number of streams whose position the live version tracks. */
  async streamsTracked(sql: Sql = this.db): Promise<number> {
    const live = await this.liveVersion(sql);
    const [row] = await sql.query<{ n: string }>(
      'SELECT count(*) AS n FROM projection_streams WHERE projection = $1',
      [this.positionsKey(live?.version ?? null)],
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Makes sure a versioned projection has a live version of its definition's revision
   * ({@link ProjectionVersioning.revision}): creates `projection_versions` when missing and version 1
   * (empty) when none is live. A live version of another revision (built by older code) is rebuilt
   * first, beside it, and switched to ({@link rebuild}); `onStaleRevision` is told before (the
   * services call this at boot, before they consume or answer anything). When another process is
   * already rebuilding it, waits for that rebuild's switch (checked every second). Idempotent and safe
   * concurrently (advisory lock). Throws what the rebuild throws.
   */
  async ensureLive(opts: { onStaleRevision?: (live: number, wanted: number) => void } = {}): Promise<void> {
    if (!this.projection.versioning) return;
    // One check per runner, shared by concurrent callers; a failed one is tried again by the next call.
    this.liveEnsured ??= (async () => {
      const live = await this.liveRevision();
      if (live === this.revision) return;
      opts.onStaleRevision?.(live, this.revision);
      for (;;) {
        try {
          await this.rebuildVersioned({});
          return;
        } catch (error) {
          if (!(error instanceof RebuildInProgressError)) throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if ((await this.liveRevision()) === this.revision) return;
      }
    })().catch((error: unknown) => {
      this.liveEnsured = undefined;
      throw error;
    });
    await this.liveEnsured;
  }

  /** The revision of this code's definition of the projection (versioned projections). */
  private get revision(): number {
    return this.projection.versioning?.revision ?? 1;
  }

  // The live version's revision, after creating `projection_versions` when missing and version 1 (empty,
  // of this code's revision) when none is live.
  private liveRevision(): Promise<number> {
    return this.db.transaction(async (sql) => {
      await sql.query(`SELECT pg_advisory_xact_lock(${lockKey('projection_versions')})`);
      await sql.query(PROJECTION_VERSIONS_DDL);
      const [live] = await sql.query<{ revision: number }>(
        `SELECT revision FROM projection_versions WHERE projection = $1 AND status = 'live'`,
        [this.projection.name],
      );
      if (live) return live.revision;
      await this.createVersion(sql, 'live');
      return this.revision;
    });
  }

  // ---- internals ----

  // Commits the pending live events, one transaction at a time: what arrives during a commit goes into
  // the next one.
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        await this.commitBatch(this.pending.splice(0, MAX_LIVE_BATCH));
      }
    } finally {
      this.flushing = false;
    }
  }

  // One transaction for the batch; when it fails, one transaction per event, so that only the events
  // that fail on their own are rejected. Never throws.
  private async commitBatch(batch: readonly PendingEvent[]): Promise<void> {
    try {
      // Live handling finds every row by key: generic plans without sequential scans (see keyedPlans),
      // so that plans made while the tables were small do not keep scanning them as they grow.
      const commit = () =>
        this.db.transaction(
          (sql) =>
            this.handleBatch(
              sql,
              batch.map((p) => p.envelope),
            ),
          { keyedPlans: true },
        );
      const { outcomes, checkpoint } = tracingEnabled()
        ? await this.tracedCommit(batch, commit)
        : await commit();
      this.committed(checkpoint);
      batch.forEach((p, i) => p.resolve(outcomes[i] ?? 'skipped'));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      for (const p of batch) await this.commitBatch([p]);
    }
  }

  // The batch's transaction as a span in the trace of its first event, linked to every event's span
  // (OpenTelemetry's way for one operation over messages of many traces).
  private tracedCommit<T>(batch: readonly PendingEvent[], commit: () => Promise<T>): Promise<T> {
    const spans = batch.flatMap((p) => (p.span ? [p.span] : []));
    const first = spans[0];
    return inSpan(
      `${this.projection.name} commit`,
      {
        parent: first ? trace.setSpanContext(ROOT_CONTEXT, first) : ROOT_CONTEXT,
        links: spans.map((context) => ({ context })),
        attributes: { 'threadline.projection': this.projection.name, 'threadline.batch_size': batch.length },
      },
      commit,
    );
  }

  // Records a committed checkpoint (global position) and wakes the waiters it satisfies.
  private committed(position: number): void {
    if (position <= this.committedPosition) return;
    this.committedPosition = position;
    for (const waiter of this.positionWaiters) if (waiter.position <= position) waiter.wake(true);
  }

  // Handles live events in one transaction, in order, as `handle` describes; returns their outcomes and
  // the highest global position it applied (0 when none).
  // Statements per batch, whatever its size: the shared lock, the live version, the positions of its
  // streams (created at 0 and locked, in stream id order so that concurrent batches cannot deadlock),
  // the erasure check, the projection's writes, and the positions with the checkpoint.
  private async handleBatch(
    sql: Sql,
    envelopes: readonly EventEnvelope[],
  ): Promise<{ outcomes: HandleOutcome[]; checkpoint: number }> {
    // Shared with other live handlers, exclusive against a rebuild (see rebuild()).
    await sql.query(`SELECT pg_advisory_xact_lock_shared(${lockKey(this.checkpointName)})`);
    let version: number | null = null;
    if (this.versioned) {
      // Read after the lock: a switch that committed while we waited is seen (READ COMMITTED).
      const live = await this.useLive(sql);
      if (!live) throw new Error(`Projection ${this.projection.name} has no live version`);
      version = live.version;
    }
    const key = this.positionsKey(version);
    const streamIds = [...new Set(envelopes.map((e) => e.streamId))].sort();
    // ON CONFLICT DO UPDATE (a no-op) locks an existing row and returns its position, or the new row's 0.
    const rows = await sql.query<{ stream_id: string; position: string }>(
      `INSERT INTO projection_streams (projection, stream_id, position)
       SELECT $1, s, 0 FROM unnest($2::text[]) AS s
       ON CONFLICT (projection, stream_id) DO UPDATE SET position = projection_streams.position
       RETURNING stream_id, position`,
      [key, streamIds],
    );
    const positions = new Map(rows.map((r) => [r.stream_id, Number(r.position)]));
    const outcomes: HandleOutcome[] = [];
    const toApply: EventEnvelope[] = [];
    const touched = new Set<string>();
    for (const envelope of envelopes) {
      const applied = positions.get(envelope.streamId) ?? 0;
      if (envelope.streamPosition <= applied) {
        outcomes.push('skipped');
        continue;
      }
      let events = [envelope];
      const gap = envelope.streamPosition > applied + 1;
      if (gap) {
        // Read through this transaction's connection: a second pool connection per handler can exhaust
        // the pool when many handlers hold theirs (a deadlock under load). The event store is the
        // record: what it holds between the two positions is what we apply.
        events = await new EventStoreTransaction(sql).readStream(envelope.streamId, {
          from: applied + 1,
          to: envelope.streamPosition,
        });
      }
      outcomes.push(gap ? 'backfilled' : 'applied');
      toApply.push(...events);
      positions.set(envelope.streamId, (events[events.length - 1] ?? envelope).streamPosition);
      touched.add(envelope.streamId);
    }
    if (toApply.length === 0) return { outcomes, checkpoint: 0 };
    await this.applyEvents(sql, await this.withErasures(sql, toApply));
    const checkpoint = toApply.reduce((max, e) => Math.max(max, e.globalPosition), 0);
    const ids = [...touched];
    await sql.query(
      `WITH moved AS (
         UPDATE projection_streams p SET position = u.position
         FROM unnest($2::text[], $3::bigint[]) AS u(stream_id, position)
         WHERE p.projection = $1 AND p.stream_id = u.stream_id
       )
       ${checkpointUpsert('$4', '$5', '$6')}`,
      [key, ids, ids.map((id) => positions.get(id) ?? 0), this.checkpointOf(version), null, checkpoint],
    );
    return { outcomes, checkpoint };
  }

  // The events as the store holds them now: those a user erasure tombstoned since they were published
  // (or read) come back marked erased. The rows are locked FOR SHARE, so an erasure running now waits
  // for this transaction, or this one waits for it and then sees the tombstones: a message still in
  // flight on JetStream when its event is erased never brings the erased data into the read model.
  private async withErasures(sql: Sql, events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    if (events.length === 0) return [];
    const rows = await sql.query<{ global_position: string; erased: boolean }>(
      `SELECT global_position, metadata ? 'erased' AS erased FROM events
       WHERE global_position = ANY($1::bigint[]) ORDER BY global_position FOR SHARE`,
      [events.map((e) => e.globalPosition)],
    );
    const erased = new Set(rows.filter((r) => r.erased).map((r) => Number(r.global_position)));
    return events.map((e) =>
      erased.has(e.globalPosition) && !isErased(e)
        ? { ...e, data: ERASED_DATA, metadata: { tenantId: e.metadata.tenantId, erased: true } }
        : e,
    );
  }

  // Erased events (a user erasure tombstoned their data, see `isErased`) are skipped: their positions
  // still count as applied, and no replay brings the erased data back.
  private async applyEvents(sql: Sql, events: readonly EventEnvelope[]): Promise<void> {
    await this.applyParsed(
      sql,
      events.map((e) => this.parseUnlessErased(e)),
    );
  }

  // The event upcast and parsed by the registry, or null when it was erased (it is not applied).
  private parseUnlessErased(event: EventEnvelope): ParsedEvent<Defs> | null {
    return isErased(event) ? null : this.registry.parse(event);
  }

  private async applyParsed(sql: Sql, events: readonly (ParsedEvent<Defs> | null)[]): Promise<void> {
    const parsed = events.filter((e) => e !== null);
    if (parsed.length === 0) return;
    if (this.projection.applyBatch) return this.projection.applyBatch(sql, parsed);
    for (const event of parsed) await this.projection.apply(sql, event);
  }

  // useLive and positionOf in one statement: sets this transaction's search_path to the live version's
  // schema and returns that version's checkpoint (the name checkpointOf(version) gives, built in SQL).
  // Throws when there is no live version.
  // Also takes the readers' lock shared (see readersLock).
  private async useLivePosition(sql: Sql): Promise<number> {
    const [row] = await sql.query<{ global_position: string }>(
      `SELECT pg_advisory_xact_lock_shared(${this.readersLock}) AS reading,
              set_config('search_path', quote_ident(v.schema_name) || ', public', true) AS path,
              COALESCE((SELECT c.global_position FROM checkpoints c WHERE c.name = $2::text || v.version), 0)
                AS global_position
       FROM projection_versions v WHERE v.projection = $1 AND v.status = 'live'`,
      [this.projection.name, `projection:${this.projection.name}@v`],
    );
    if (!row) throw new Error(`Projection ${this.projection.name} has no live version`);
    return Number(row.global_position);
  }

  // Sets this transaction's search_path to the live version's schema and returns the version.
  private async useLive(sql: Sql): Promise<ProjectionVersion | undefined> {
    const [row] = await sql.query<{ version: number; schema_name: string }>(
      `SELECT version, schema_name, set_config('search_path', quote_ident(schema_name) || ', public', true) AS path
       FROM projection_versions WHERE projection = $1 AND status = 'live'`,
      [this.projection.name],
    );
    return row ? { version: row.version, schema: row.schema_name, status: 'live' } : undefined;
  }

  private async useSchema(sql: Sql, schema: string): Promise<void> {
    await sql.query(`SELECT set_config('search_path', quote_ident($1) || ', public', true)`, [schema]);
  }

  // useSchema for a transaction of a rebuild's bulk replay, which also commits without waiting for the
  // WAL flush (synchronous_commit off): a crash can lose only the last such commits, of a version still
  // `building`, which no reader sees and the next rebuild drops; the switch's commit is synchronous and
  // flushes every commit before it.
  private async useSchemaForBulk(sql: Sql, schema: string): Promise<void> {
    await sql.query(
      `SELECT set_config('search_path', quote_ident($1) || ', public', true),
              set_config('synchronous_commit', 'off', true)`,
      [schema],
    );
  }

  private async positionOf(sql: Sql, version: number | null): Promise<number> {
    const [row] = await sql.query<{ global_position: string }>(
      'SELECT global_position FROM checkpoints WHERE name = $1',
      [this.checkpointOf(version)],
    );
    return Number(row?.global_position ?? 0);
  }

  private async saveCheckpoint(
    sql: Sql,
    version: number | null,
    transactionId: string | null,
    globalPosition: number,
  ): Promise<void> {
    await sql.query(checkpointUpsert('$1', '$2', '$3'), [
      this.checkpointOf(version),
      transactionId,
      globalPosition,
    ]);
  }

  // Creates the next version (schema, tables, pointer row with `status`) inside the caller's transaction,
  // which holds the projection_versions lock. Drops what a dead rebuild left: `building` versions and
  // schemas of this prefix that no row names.
  private async createVersion(
    sql: Sql,
    status: 'building' | 'live',
    opts: { indexes: boolean } = { indexes: true },
  ): Promise<ProjectionVersion> {
    const versioning = this.projection.versioning;
    if (!versioning) throw new Error(`Projection ${this.projection.name} is not versioned`);
    if (!/^[a-z][a-z0-9_]*$/.test(versioning.schemaPrefix)) {
      throw new Error(`Invalid schema prefix ${versioning.schemaPrefix}: lowercase letters, digits and _`);
    }
    const leftovers = await sql.query<{ version: number }>(
      `DELETE FROM projection_versions WHERE projection = $1 AND status = 'building' RETURNING version`,
      [this.projection.name],
    );
    for (const l of leftovers) await this.forgetVersion(sql, l.version);
    const orphans = await sql.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname ~ ('^' || $1 || '_v[0-9]+$')
         AND nspname NOT IN (SELECT schema_name FROM projection_versions WHERE projection = $2)`,
      [versioning.schemaPrefix, this.projection.name],
    );
    for (const o of orphans) await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(o.nspname)} CASCADE`);
    const [next] = await sql.query<{ v: number }>(
      'SELECT (COALESCE(max(version), 0) + 1)::int AS v FROM projection_versions WHERE projection = $1',
      [this.projection.name],
    );
    const version = next?.v ?? 1;
    const schema = `${versioning.schemaPrefix}_v${version}`;
    await this.forgetVersion(sql, version);
    await sql.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await this.useSchema(sql, schema);
    await versioning.create(sql);
    if (opts.indexes) await versioning.createIndexes?.(sql);
    await sql.query(`SELECT set_config('search_path', 'public', true)`);
    await sql.query(
      `INSERT INTO projection_versions (projection, version, schema_name, status, switched_at, revision)
       VALUES ($1, $2, $3, $4, CASE WHEN $4 = 'live' THEN now() END, $5)`,
      [this.projection.name, version, schema, status, this.revision],
    );
    return { version, schema, status };
  }

  // Removes a version's positions and checkpoint (its schema is dropped by the caller or was never made).
  private async forgetVersion(sql: Sql, version: number): Promise<void> {
    const versioning = this.projection.versioning;
    if (versioning) {
      await sql.query(
        `DROP SCHEMA IF EXISTS ${quoteIdent(`${versioning.schemaPrefix}_v${version}`)} CASCADE`,
      );
    }
    await sql.query('DELETE FROM projection_streams WHERE projection = $1', [this.positionsKey(version)]);
    await sql.query('DELETE FROM checkpoints WHERE name = $1', [this.checkpointOf(version)]);
  }

  // Events after `after`, in commit order, below the xmin horizon, of `streamTypes` (null: of every
  // type). ORDER BY names the table's columns: a bare `transaction_id` is the text output column, whose
  // order is not commit order ('10' < '9') and which no index serves (each batch would sort the table).
  private async readInCommitOrder(
    sql: Sql,
    after: CommitPosition,
    limit: number,
    streamTypes: readonly string[] | null,
  ): Promise<EventEnvelope[]> {
    const rows = await sql.query(
      `SELECT global_position, transaction_id::text AS transaction_id, stream_id, stream_type, stream_position,
              event_id, event_type, schema_version, data, metadata, created_at
       FROM events
       WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         AND ($3::text[] IS NULL OR stream_type = ANY($3::text[]))
       ORDER BY events.transaction_id, events.global_position
       LIMIT $4`,
      [after.transactionId, after.globalPosition, streamTypes && [...streamTypes], limit],
    );
    return rows.map(toEnvelope);
  }

  // Applies replayed events gap-aware against the in-memory positions (the rebuild owns the version it
  // builds, or holds the exclusive lock, so nobody else moves them); saves the positions of the streams
  // touched and the checkpoint. `version` is null for an unversioned projection.
  private async applyReplayed(
    sql: Sql,
    version: number | null,
    batch: readonly ReplayedEvent<ParsedEvent<Defs>>[],
    positions: Map<string, number>,
  ): Promise<void> {
    const { toApply, touched, highest } = await this.inStreamOrder(sql, batch, positions);
    await this.applyParsed(sql, toApply);
    await this.savePositions(sql, version, [...touched], positions);
    const last = batch[batch.length - 1];
    if (last) await this.saveCheckpoint(sql, version, last.envelope.transactionId, highest);
  }

  // The events of a replayed batch to apply, each stream's in order: those the in-memory positions say
  // are applied are left out, and the events of a gap before one are read from the store first (commit
  // order is not stream order when a later append's transaction got the lower xid). Moves `positions`.
  // `touched`: the streams moved; `highest`: the highest global position among the events to apply.
  private async inStreamOrder(
    sql: Sql,
    batch: readonly ReplayedEvent<ParsedEvent<Defs>>[],
    positions: Map<string, number>,
  ): Promise<{ toApply: (ParsedEvent<Defs> | null)[]; touched: Set<string>; highest: number }> {
    const toApply: (ParsedEvent<Defs> | null)[] = [];
    const touched = new Set<string>();
    let highest = 0;
    for (const { envelope: event, parsed } of batch) {
      const applied = positions.get(event.streamId) ?? 0;
      if (event.streamPosition <= applied) continue;
      if (event.streamPosition > applied + 1) {
        const missing = await new EventStoreTransaction(sql).readStream(event.streamId, {
          from: applied + 1,
          to: event.streamPosition,
        });
        for (const e of missing) {
          toApply.push(this.parseUnlessErased(e));
          highest = Math.max(highest, e.globalPosition);
        }
      } else {
        toApply.push(parsed);
        highest = Math.max(highest, event.globalPosition);
      }
      positions.set(event.streamId, event.streamPosition);
      touched.add(event.streamId);
    }
    return { toApply, touched, highest };
  }

  private async savePositions(
    sql: Sql,
    version: number | null,
    streamIds: readonly string[],
    positions: ReadonlyMap<string, number>,
  ): Promise<void> {
    if (streamIds.length === 0) return;
    await sql.query(
      `INSERT INTO projection_streams (projection, stream_id, position)
       SELECT $1, s, p FROM unnest($2::text[], $3::bigint[]) AS u(s, p)
       ON CONFLICT (projection, stream_id) DO UPDATE SET position = EXCLUDED.position`,
      [this.positionsKey(version), streamIds, streamIds.map((id) => positions.get(id) ?? 0)],
    );
  }

  // Events replayed in commit order after `after` (see readInCommitOrder), each parsed as soon as it is read:
  // a rebuild parses the next batch while Postgres writes the current one.
  private async readReplayed(
    sql: Sql,
    after: CommitPosition,
    limit: number,
    streamTypes: readonly string[] | null = this.projection.streamTypes,
  ): Promise<ReplayedEvent<ParsedEvent<Defs>>[]> {
    const events = await this.readInCommitOrder(sql, after, limit, streamTypes);
    return events.map((envelope) => ({ envelope, parsed: this.parseUnlessErased(envelope) }));
  }

  private async rebuildVersioned(opts: {
    batchSize?: number;
    onProgress?: (replayed: number) => void;
  }): Promise<RebuildResult> {
    const started = performance.now();
    const batchSize = opts.batchSize ?? 5000;
    // A live version must exist (the switch replaces it), of any revision: this rebuild replaces it.
    await this.liveRevision();
    // A session advisory lock on a dedicated connection (no transaction, so no xmin held) keeps two
    // rebuilds of one projection apart.
    const guard = await this.db.dedicated();
    try {
      const rebuildLock = lockKey(`rebuild:${this.checkpointName}`);
      const [got] = await guard.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${rebuildLock}) AS ok`);
      if (!got?.ok) throw new RebuildInProgressError(this.projection.name);
      try {
        const target = await this.db.transaction(async (sql) => {
          await sql.query(`SELECT pg_advisory_xact_lock(${lockKey('projection_versions')})`);
          return this.createVersion(sql, 'building', { indexes: false });
        });
        const positions = new Map<string, number>();
        let after: CommitPosition = START;
        let replayed = 0;
        let highest = 0;
        const advance = (batch: readonly ReplayedEvent<unknown>[]) => {
          const last = batch[batch.length - 1]?.envelope;
          if (last) after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
          replayed += batch.length;
        };
        // 1. Replay in batches, one short transaction each, while live handling goes on into the live version.
        // The next batch is read and parsed while this one is written (a second pool connection), and a
        // batch the projection calls independent (`BulkBatch.independent`) is written while the one before
        // it still is (a third). The positions and the checkpoint are kept in memory meanwhile: nobody
        // reads them before the switch, and a rebuild that dies leaves a `building` version the next drops.
        const writes = new BulkWrites(MAX_BULK_WRITES);
        const replay = this.projection.versioning?.replay;
        const none: Promise<ReplayedEvent<ParsedEvent<Defs>>[]> = Promise.resolve([]);
        let next = this.readReplayed(this.db, after, batchSize);
        for (;;) {
          const batch = await next;
          if (batch.length === 0) break;
          advance(batch);
          next = batch.length < batchSize ? none : this.readReplayed(this.db, after, batchSize);
          // Awaited in the next turn of the loop; if applying throws first, that rejection is the one reported.
          next.catch(() => undefined);
          const events = await this.inStreamOrder(this.db, batch, positions);
          highest = Math.max(highest, events.highest);
          const parsed = events.toApply.filter((e) => e !== null);
          if (parsed.length > 0) {
            // A batch of the bulk replay is written by `versioning.replay` when the projection has it.
            const bulk = replay?.batch(parsed);
            await writes.write(bulk?.independent ?? false, () =>
              this.db.transaction(async (sql) => {
                await this.useSchemaForBulk(sql, target.schema);
                if (bulk) await bulk.write(sql);
                else await this.applyParsed(sql, parsed);
              }),
            );
          }
          opts.onProgress?.(replayed);
        }
        await writes.drain();
        const lap = phaseTimer(started);
        const replayMs = lap();
        await this.db.transaction(async (sql) => {
          await this.savePositions(sql, target.version, [...positions.keys()], positions);
          if (replayed > 0) await this.saveCheckpoint(sql, target.version, after.transactionId, highest);
        });
        const versioning = this.projection.versioning;
        const finishing = await Promise.allSettled(
          (versioning?.replay?.finish ?? []).map((step) =>
            this.db.transaction(async (sql) => {
              await this.useSchema(sql, target.schema);
              await step(sql);
            }),
          ),
        );
        const failed = finishing.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        const finishMs = lap();
        if (versioning?.createIndexes) {
          await this.db.transaction(async (sql) => {
            await this.useSchema(sql, target.schema);
            await versioning.createIndexes?.(sql);
          });
        }
        const indexesMs = lap();
        // Statistics for the new tables before queries read them: without them the planner guessed
        // (at 1M turns a one-session stats read used a partial index and took 15 ms instead of 2).
        const tables = await this.db.query<{ name: string }>(
          `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = $1`,
          [target.schema],
        );
        for (const table of tables) await this.db.query(`ANALYZE ${table.name}`);
        const analyzeMs = lap();
        // 2. Catch up and switch, under the lock live handlers share: they wait for this one transaction.
        const old = await this.db.transaction(async (sql) => {
          await sql.query(`SELECT pg_advisory_xact_lock(${lockKey(this.checkpointName)})`);
          const tail: ReplayedEvent<ParsedEvent<Defs>>[] = [];
          for (;;) {
            const batch = await this.readReplayed(sql, after, batchSize);
            if (batch.length === 0) break;
            tail.push(...batch);
            advance(batch);
          }
          await this.useSchema(sql, target.schema);
          await this.applyReplayed(sql, target.version, tail, positions);
          await sql.query(`SELECT set_config('search_path', 'public', true)`);
          // The new version's checkpoint can be below the old one's only if nothing was replayed since;
          // never answer an older as_of_position than before the switch.
          const previous = await sql.query<{ version: number }>(
            `DELETE FROM projection_versions WHERE projection = $1 AND status = 'live' RETURNING version`,
            [this.projection.name],
          );
          await sql.query(
            `UPDATE projection_versions SET status = 'live', switched_at = now() WHERE projection = $1 AND version = $2`,
            [this.projection.name, target.version],
          );
          return previous;
        });
        opts.onProgress?.(replayed);
        // 3. Drop the old version, once the readers that may be on it are done: the drop takes the readers'
        // lock exclusively, so it never holds one table of the version while a reader holds another (the
        // deadlock that failed the rebuild spec about 1 run in 8, a reader between two of its tables),
        // and readers that come meanwhile wait, then read the new pointer. One that read the old pointer
        // before waiting retries on the new version (see read()).
        for (const o of old) {
          await this.db.transaction(async (sql) => {
            await sql.query(`SELECT pg_advisory_xact_lock(${this.readersLock})`);
            await this.forgetVersion(sql, o.version);
          });
        }
        const phasesMs = {
          replay: replayMs,
          finish: finishMs,
          indexes: indexesMs,
          analyze: analyzeMs,
          switch: lap(),
        };
        return { events: replayed, tookMs: performance.now() - started, version: target.version, phasesMs };
      } finally {
        await guard.query(`SELECT pg_advisory_unlock(${rebuildLock})`);
      }
    } finally {
      await guard.release();
    }
  }

  private async rebuildInOneTransaction(opts: {
    batchSize?: number;
    onProgress?: (replayed: number) => void;
  }): Promise<RebuildResult> {
    const started = performance.now();
    const batchSize = opts.batchSize ?? 1000;
    const events = await this.db.transaction(async (sql) => {
      await sql.query(`SELECT pg_advisory_xact_lock(${lockKey(this.checkpointName)})`);
      await this.projection.reset(sql);
      await sql.query('DELETE FROM projection_streams WHERE projection = $1', [this.projection.name]);
      await sql.query('DELETE FROM checkpoints WHERE name = $1', [this.checkpointName]);
      const positions = new Map<string, number>();
      let after: CommitPosition = START;
      let replayed = 0;
      for (;;) {
        // Every event is read (and counted), those of the followed stream types applied.
        const batch = await this.readInCommitOrder(sql, after, batchSize, null);
        if (batch.length === 0) break;
        const followed = batch
          .filter((e) => this.projection.streamTypes.includes(e.streamType))
          .map((envelope) => ({ envelope, parsed: this.parseUnlessErased(envelope) }));
        await this.applyReplayed(sql, null, followed, positions);
        replayed += batch.length;
        const last = batch[batch.length - 1]!;
        after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
        opts.onProgress?.(replayed);
      }
      return replayed;
    });
    return { events, tookMs: performance.now() - started };
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
