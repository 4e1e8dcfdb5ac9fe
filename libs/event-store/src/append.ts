import { v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import { StreamVersionConflictError } from '@threadline/platform';
import type { Db, Sql } from './db';
import { GroupCommitQueue, type Queued } from './group-commit';
import type { AppendOptions, AppendResult, ExpectedVersion, NewEvent } from './event-store';
import { z } from 'zod';
import { EventEnvelope } from '@threadline/contracts';
import { countAppends, timedAppend } from './store-metrics';

/** How an append checks its stream's version; one fixed SQL text per mode (a prepared statement each). */
type AppendMode = 'new' | 'any' | 'exists' | 'exact';

/** An append with everything computed that does not need the database (ids, JSON, schema versions). */
export interface PreparedAppend {
  streamId: string;
  streamType: string;
  tenantId: string;
  expected: ExpectedVersion;
  mode: AppendMode;
  eventIds: string[];
  types: string[];
  /** Each event's data as the caller gave it: the envelopes the append returns carry these objects. */
  values: unknown[];
  /** Each event's data as JSON text (what is stored). */
  data: string[];
  schemaVersions: number[];
  metadata: string;
}

const VERSION_SUFFIX = /\.v(\d+)$/;
function schemaVersionOf(type: string): number {
  const match = VERSION_SUFFIX.exec(type);
  if (!match?.[1]) throw new Error(`Event type ${type} has no version suffix (.vN)`);
  return Number(match[1]);
}

function appendMode(expected: ExpectedVersion): AppendMode {
  if (expected === 'no_stream' || expected === 0) return 'new';
  if (expected === 'any') return 'any';
  if (expected === 'stream_exists') return 'exists';
  return 'exact';
}

// Namespace for event ids derived from idempotency keys (any fixed UUID).
const EVENT_ID_NAMESPACE = '0f5c3c52-7a8e-4d53-9d5b-3f4bcb6b1a10';

/**
 * Validates and serializes one append. Event ids are UUIDv7 (RFC 9562: time-ordered, so the unique
 * index on event_id grows at its right edge like the other indexes instead of at random pages), or
 * derived from the metadata's idempotency key (uuid v5 of tenant, key, stream and index: a retry
 * yields the same ids).
 * Throws for no events or an event type without its `.vN` suffix.
 */
export function prepareAppend(
  streamId: string,
  streamType: string,
  expected: ExpectedVersion,
  events: readonly NewEvent[],
  opts: AppendOptions,
): PreparedAppend {
  if (events.length === 0) throw new Error('append needs at least one event');
  const { tenantId, idempotencyKey } = opts.metadata;
  return {
    streamId,
    streamType,
    tenantId,
    expected,
    mode: appendMode(expected),
    eventIds: events.map((_, i) =>
      idempotencyKey
        ? uuidv5(`${tenantId}\u0000${idempotencyKey}\u0000${streamId}\u0000${i}`, EVENT_ID_NAMESPACE)
        : uuidv7(),
    ),
    types: events.map((e) => e.type),
    values: events.map((e) => e.data),
    data: events.map((e) => JSON.stringify(e.data)),
    schemaVersions: events.map((e) => schemaVersionOf(e.type)),
    metadata: JSON.stringify(opts.metadata),
  };
}

/**
 * What the database assigns to an appended event; the rest of its envelope is what the append sent,
 * so the data does not travel back (a 50-event append of 1 KB events would read 50 KB back and parse it).
 */
const APPENDED_COLUMNS =
  'global_position, transaction_id::text AS transaction_id, stream_position, created_at';
const AppendedRow = z.object({
  global_position: z.coerce.number().int().min(1),
  transaction_id: EventEnvelope.shape.transactionId,
  stream_position: z.coerce.number().int().min(1),
  created_at: z.date(),
});

/**
 * The events of an append travel as ONE JSON array parameter ({@link eventsJson}), unpacked by
 * Postgres: sending each column as an array made node-postgres escape every event's JSON text again.
 * `json`, not `jsonb`: each event's data goes into `events.data` (a `json` column) as the text it came
 * as, and is never parsed into `jsonb`'s binary form (see the migration `EventDataJson1733000000000`).
 */
const EVENT_ROWS = (param: string) =>
  `ROWS FROM (json_to_recordset(${param}::json)
     AS (i int, event_id uuid, event_type text, data json, schema_version int))`;

/** The append's events as a JSON array (their data is already JSON text: spliced in, not re-encoded). */
function eventsJson(appends: readonly PreparedAppend[]): string {
  const rows: string[] = [];
  appends.forEach((a, i) => {
    a.eventIds.forEach((id, k) => {
      rows.push(
        `{"i":${i + 1},"event_id":"${id}","event_type":${JSON.stringify(a.types[k])},"schema_version":${a.schemaVersions[k]},"data":${a.data[k]}}`,
      );
    });
  });
  return `[${rows.join(',')}]`;
}

const UPSERT_STREAM = `INSERT INTO streams (stream_id, stream_type, tenant_id, version) VALUES ($1, $2, $3, $4)`;
const VERSION_CTE: Record<AppendMode, string> = {
  new: `${UPSERT_STREAM} ON CONFLICT (stream_id) DO NOTHING RETURNING 0::bigint AS base`,
  any: `${UPSERT_STREAM} ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + $4, updated_at = now()
        WHERE streams.tenant_id = EXCLUDED.tenant_id
        RETURNING version - $4 AS base`,
  exists: `UPDATE streams SET version = version + $4, updated_at = now() WHERE stream_id = $1 AND tenant_id = $3
           RETURNING version - $4 AS base`,
  exact: `UPDATE streams SET version = version + $4, updated_at = now()
          WHERE stream_id = $1 AND tenant_id = $3 AND version = $7
          RETURNING version - $4 AS base`,
};
// The stream row is the per-stream lock: its version moves in the same statement as the insert, so
// two appends with the same expected version cannot both succeed. A stream belongs to the tenant of its
// first append: another tenant's append to it (a stream id that two tenants' ids make alike, see
// `ReadStreamOptions.tenantId`) moves no row and is a conflict, so no stream mixes tenants' events. $1..$6 are the insert's (stream,
// type, tenant, count, events, metadata), $7 the expected version (exact mode only).
const APPEND_SQL = Object.fromEntries(
  (Object.keys(VERSION_CTE) as AppendMode[]).map((mode) => [
    mode,
    `WITH s AS (${VERSION_CTE[mode]})
     INSERT INTO events (stream_id, stream_type, stream_position, event_id, event_type, schema_version,
                         data, metadata, tenant_id)
     SELECT $1::text, $2::text, s.base + e.ord, e.event_id, e.event_type, e.schema_version, e.data, $6::jsonb, $3::text
     FROM s, ${EVENT_ROWS('$5')} WITH ORDINALITY AS e(i, event_id, event_type, data, schema_version, ord)
     RETURNING ${APPENDED_COLUMNS}`,
  ]),
) as Record<AppendMode, string>;

/**
 * The envelopes of `append` from the rows its insert returned (one per event, any order). Each
 * envelope's `data` is the object the caller appended, not a parse of the stored JSON: parsing it back
 * was 15% of the appending process's CPU for 50-event appends of 900-byte turns (bench scenario 3,
 * `node --cpu-prof`). Event data is plain JSON by contract (zod-parsed contracts of strings, numbers,
 * booleans, arrays and objects), so the two are equal.
 */
function resultOf(append: PreparedAppend, rows: readonly unknown[]): AppendResult {
  const metadata = EventEnvelope.shape.metadata.parse(JSON.parse(append.metadata));
  const events = rows
    .map((row) => AppendedRow.parse(row))
    .sort((a, b) => a.stream_position - b.stream_position)
    // Sorted by stream position, row k is the append's event k.
    .map((r, k): EventEnvelope => {
      return {
        eventId: append.eventIds[k]!,
        eventType: append.types[k]!,
        schemaVersion: append.schemaVersions[k]!,
        streamId: append.streamId,
        streamType: append.streamType,
        streamPosition: r.stream_position,
        globalPosition: r.global_position,
        transactionId: r.transaction_id,
        data: append.values[k],
        metadata,
        createdAt: r.created_at.toISOString(),
      };
    });
  if (events.length !== append.eventIds.length)
    throw new Error(`append of ${append.eventIds.length} events stored ${events.length}`);
  const last = events[events.length - 1]!;
  return { nextExpectedVersion: last.streamPosition, lastGlobalPosition: last.globalPosition, events };
}

async function conflictOf(sql: Sql, append: PreparedAppend): Promise<StreamVersionConflictError> {
  // Another tenant's stream of the same id is no version of this tenant's: reported as none.
  const [current] = await sql.query<{ version: string }>(
    'SELECT version FROM streams WHERE stream_id = $1 AND tenant_id = $2',
    [append.streamId, append.tenantId],
  );
  return new StreamVersionConflictError(
    append.streamId,
    append.expected,
    current ? Number(current.version) : null,
  );
}

/**
 * Runs one append as ONE statement (a CTE moves the stream row's version, the insert depends on it),
 * atomic on its own or as part of the caller's transaction. Throws {@link StreamVersionConflictError}
 * when the stream's version does not match.
 */
export async function appendPrepared(sql: Sql, append: PreparedAppend): Promise<AppendResult> {
  const params: unknown[] = [
    append.streamId,
    append.streamType,
    append.tenantId,
    append.eventIds.length,
    eventsJson([append]),
    append.metadata,
  ];
  if (append.mode === 'exact') params.push(append.expected);
  const rows = await timedAppend(1, () => sql.query(APPEND_SQL[append.mode], params));
  if (rows.length === 0) throw await conflictOf(sql, append);
  countAppends([{ streamType: append.streamType, events: append.eventIds.length }]);
  return resultOf(append, rows);
}

/**
 * Several appends to DISTINCT streams in ONE statement: `a` holds one row per append (its index `i`,
 * stream, mode, expected version, metadata), `e` one row per event. Each mode's CTE moves the versions
 * of its appends' streams and yields their base version; an append whose check fails yields no base
 * and so inserts nothing (its caller gets a conflict), the others are unaffected.
 */
const BATCH_SQL = `
WITH a AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::jsonb[])
    WITH ORDINALITY AS a(stream_id, stream_type, tenant_id, mode, expected, n, metadata, i)
), fresh AS (
  INSERT INTO streams (stream_id, stream_type, tenant_id, version)
  SELECT stream_id, stream_type, tenant_id, n FROM a WHERE mode = 'new'
  ON CONFLICT (stream_id) DO NOTHING
  RETURNING stream_id, 0::bigint AS base
), upserted AS (
  INSERT INTO streams (stream_id, stream_type, tenant_id, version)
  SELECT stream_id, stream_type, tenant_id, n FROM a WHERE mode = 'any'
  ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + EXCLUDED.version, updated_at = now()
  WHERE streams.tenant_id = EXCLUDED.tenant_id
  RETURNING stream_id, version
), updated AS (
  UPDATE streams SET version = streams.version + a.n, updated_at = now()
  FROM a
  WHERE streams.stream_id = a.stream_id AND streams.tenant_id = a.tenant_id
    AND (a.mode = 'exists' OR (a.mode = 'exact' AND streams.version = a.expected))
  RETURNING streams.stream_id, streams.version - a.n AS base
), bases AS (
  SELECT stream_id, base FROM fresh
  UNION ALL SELECT u.stream_id, u.version - a.n FROM upserted u JOIN a USING (stream_id)
  UNION ALL SELECT stream_id, base FROM updated
)
INSERT INTO events (stream_id, stream_type, stream_position, event_id, event_type, schema_version,
                    data, metadata, tenant_id)
SELECT a.stream_id, a.stream_type, b.base + e.ord, e.event_id, e.event_type, e.schema_version, e.data, a.metadata,
       a.tenant_id
FROM (
  SELECT r.*, row_number() OVER (PARTITION BY r.i ORDER BY r.n) AS ord
  FROM ${EVENT_ROWS('$8')} WITH ORDINALITY AS r(i, event_id, event_type, data, schema_version, n)
) e
JOIN a ON a.i = e.i
JOIN bases b ON b.stream_id = a.stream_id
ORDER BY e.i, e.ord
RETURNING stream_id, ${APPENDED_COLUMNS}`;

/** The rows a {@link BATCH_SQL} statement returned, by stream (each row names its stream). */
function rowsByStream(rows: readonly Record<string, unknown>[]): Map<string, Record<string, unknown>[]> {
  const byStream = new Map<string, Record<string, unknown>[]>();
  for (const row of rows) {
    const streamId = String(row['stream_id']);
    const list = byStream.get(streamId);
    if (list) list.push(row);
    else byStream.set(streamId, [row]);
  }
  return byStream;
}

/**
 * Several appends to DISTINCT streams in ONE statement ({@link BATCH_SQL}), atomic on its own or as
 * part of the caller's transaction. Returns, in order, each append's result, or null when its stream's
 * version did not match its expected version (that append wrote nothing; the others are written).
 * Throws what the statement throws (then nothing of it is written) and when an append came back with
 * the wrong number of events.
 */
export async function appendPreparedMany(
  sql: Sql,
  appends: readonly PreparedAppend[],
): Promise<(AppendResult | null)[]> {
  const byStream = rowsByStream(
    await timedAppend(appends.length, () => sql.query(BATCH_SQL, batchParams(appends))),
  );
  countAppends(
    appends.flatMap((a) =>
      byStream.has(a.streamId) ? [{ streamType: a.streamType, events: a.eventIds.length }] : [],
    ),
  );
  return appends.map((a) => {
    const stored = byStream.get(a.streamId);
    return stored ? resultOf(a, stored) : null;
  });
}

/**
 * Group commit of standalone appends (`EventStore.append` without an inline projection), on a
 * {@link GroupCommitQueue} keyed by stream: appends that arrive while earlier ones are being written are
 * written together, in one statement ({@link BATCH_SQL}) and one commit, instead of one commit
 * each. Each append keeps its own outcome: a version conflict fails only that append; any other failure
 * of a combined statement (a duplicate event id, a deadlock) reruns its appends one by one, so each
 * caller gets its own result or error. Appends to one stream are written in the order they were made,
 * never in the same or in concurrent statements. At most {@link AppendBatcher.maxInFlight} statements
 * run at once; a batch holds at most {@link AppendBatcher.maxBatch} appends. An append of at least
 * {@link AppendBatcher.aloneFrom} events is written alone, as soon as its stream's earlier appends are
 * written, beside the batches (not counted in `maxInFlight`; the pool bounds them).
 */
export class AppendBatcher {
  static readonly maxInFlight = 2;
  static readonly maxBatch = 256;
  /**
   * Events from which an append is written alone (one statement of its own) instead of merged.
   * Merged, 8 writers of 50-event appends share at most 2 statements, so 2 backends (bench scenario
   * 3: 31,630 events/s, against 81,000 rows/s of plain 50-row INSERTs). Measured with 8 writers on
   * separate streams, merged against alone, 6-8 s runs alternated (load average 3-8, other benches
   * running): 8 events 40.4k/34.9k against 35.9k/24.1k events/s (merging wins); 16 events 29.8k,
   * 40.8k, 20.5k, 24.2k, 19.3k against 52.0k, 35.3k, 23.0k, 25.8k, 26.8k; 32 events 36.2k, 38.4k
   * against 43.5k, 42.8k. Alone costs more Postgres CPU per event (about 19 against 15 us: a
   * commit per append), so below 16 events the saved commits are worth more than the parallelism.
   */
  static readonly aloneFrom = 16;
  private readonly queue: GroupCommitQueue<PreparedAppend, AppendResult>;

  constructor(private readonly db: Db) {
    this.queue = new GroupCommitQueue({
      maxInFlight: AppendBatcher.maxInFlight,
      maxBatch: AppendBatcher.maxBatch,
      keysOf: (append) => [append.streamId],
      alone: (append) => append.eventIds.length >= AppendBatcher.aloneFrom,
      write: (batch) => this.write(batch),
    });
  }

  append(append: PreparedAppend): Promise<AppendResult> {
    return this.queue.push(append);
  }

  private async write(batch: readonly Queued<PreparedAppend, AppendResult>[]): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch as [Queued<PreparedAppend, AppendResult>];
      await appendPrepared(this.db, only.item).then(only.resolve, only.reject);
      return;
    }
    let rows: Record<string, unknown>[];
    try {
      rows = await timedAppend(batch.length, () =>
        this.db.query(BATCH_SQL, batchParams(batch.map((q) => q.item))),
      );
    } catch {
      // Whatever failed the combined statement (nothing of it is written), each append gets its own outcome.
      await Promise.all(batch.map((q) => appendPrepared(this.db, q.item).then(q.resolve, q.reject)));
      return;
    }
    // Written and committed: from here on, never rerun an append.
    const byStream = rowsByStream(rows);
    countAppends(
      batch.flatMap((q) =>
        byStream.has(q.item.streamId)
          ? [{ streamType: q.item.streamType, events: q.item.eventIds.length }]
          : [],
      ),
    );
    await Promise.all(
      batch.map(async (q) => {
        try {
          const stored = byStream.get(q.item.streamId);
          if (stored) q.resolve(resultOf(q.item, stored));
          else q.reject(await conflictOf(this.db, q.item));
        } catch (error) {
          q.reject(error);
        }
      }),
    );
  }
}

function batchParams(appends: readonly PreparedAppend[]): unknown[] {
  return [
    appends.map((a) => a.streamId),
    appends.map((a) => a.streamType),
    appends.map((a) => a.tenantId),
    appends.map((a) => a.mode),
    appends.map((a) => (a.mode === 'exact' ? a.expected : null)),
    appends.map((a) => a.eventIds.length),
    appends.map((a) => a.metadata),
    eventsJson(appends),
  ];
}
