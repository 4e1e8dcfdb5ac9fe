import { z } from 'zod';
import {
  type EventEnvelope,
  EventRegistry,
  type HistoryEntry,
  type SessionHistoryPage,
  SessionEvents,
  SessionStateEvents,
  sessionStateStreamId,
  sessionStreamId,
  isErased,
} from '@threadline/contracts';
import { type Sql, toEnvelope } from '@threadline/event-store';
import { ValidationError } from '@threadline/platform';
import { stateEventRegistry } from './session-states.projection';
import { evolve, initialState, type WorkflowState } from './state.decider';

const historyRegistry = new EventRegistry([...SessionEvents, ...SessionStateEvents]);

const EVENT_COLUMNS = `global_position, transaction_id::text AS transaction_id, stream_id, stream_type,
  stream_position, event_id, event_type, schema_version, data, metadata, created_at`;

/**
 * The workflow state of a session as it was: folded from its state stream up to stream position
 * `version` (0 = before the first event), or over the longest prefix of the stream whose events were
 * stored at or before `at` (ISO-8601; the events' store time to the millisecond, as `time` in the
 * history shows it, so `at` = an event's `time` includes that event). Throws
 * `ValidationError` (REQUEST.INVALID) for a version past the stream's end. Does not check that the
 * session exists.
 */
export async function stateAt(
  sql: Sql,
  tenantId: string,
  sessionId: string,
  point: { version: number } | { at: string },
): Promise<WorkflowState> {
  const streamId = sessionStateStreamId(tenantId, sessionId);
  const params: unknown[] = [streamId];
  let where = 'stream_id = $1';
  if ('version' in point) {
    params.push(point.version);
    where += ' AND stream_position <= $2';
  } else {
    // The prefix before the first event stored after `at`.
    params.push(point.at);
    where += ` AND stream_position < COALESCE((SELECT min(stream_position) FROM events
               WHERE stream_id = $1 AND date_trunc('milliseconds', created_at) > $2::timestamptz), 9223372036854775807)`;
  }
  const rows = await sql.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where} ORDER BY stream_position`,
    params,
  );
  const events = rows.map(toEnvelope);
  if ('version' in point && events.length < point.version) {
    throw new ValidationError(`The state has no version ${point.version}`, [
      { path: 'version', message: `at most ${events.length}, the current version` },
    ]);
  }
  return events.reduce(
    (state, e) => (isErased(e) ? state : evolve(state, stateEventRegistry.parse(e))),
    initialState(),
  );
}

/** The opaque history cursor: base64url of JSON `{ p: global position of the previous page's last event }`. */
const HistoryCursor = z.object({ p: z.number().int().min(0) });

const encodeCursor = (position: number): string =>
  Buffer.from(JSON.stringify({ p: position }), 'utf8').toString('base64url');

function decodeCursor(text: string): number {
  try {
    const parsed = HistoryCursor.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data.p;
  } catch {
    // not base64url JSON: answered below
  }
  throw new ValidationError('Invalid cursor', [
    { path: 'cursor', message: 'not a cursor returned by this listing' },
  ]);
}

function entryOf(envelope: EventEnvelope): HistoryEntry {
  // Readers see the latest version of each event; a type this service does not know is shown as stored.
  const known = !isErased(envelope) && historyRegistry.knows(envelope.eventType);
  const parsed = known ? historyRegistry.parse(envelope) : null;
  return {
    event_id: envelope.eventId,
    stream: envelope.streamType === 'session' ? 'session' : 'session_state',
    type: parsed?.type ?? envelope.eventType,
    version: envelope.streamPosition,
    position: envelope.globalPosition,
    time: envelope.createdAt,
    data: parsed ? parsed.data : envelope.data,
  };
}

/**
 * One page of a session's history: the events of its lifecycle stream and its state stream merged in
 * global-position order, oldest first, `limit` per page, after `cursor` (from the previous page's
 * `next_cursor`, null on the last page). Global-position order is commit order here: every state
 * write holds the session's stream row `FOR SHARE` and every lifecycle write updates it, so the two
 * streams' transactions never overlap, and a page never skips an event committed later. Throws
 * `ValidationError` for a foreign cursor. Does not check that the session exists.
 */
export async function readHistory(
  sql: Sql,
  tenantId: string,
  sessionId: string,
  page: { limit: number; cursor?: string | undefined },
): Promise<SessionHistoryPage> {
  const after = page.cursor === undefined ? 0 : decodeCursor(page.cursor);
  const rows = await sql.query(
    `SELECT ${EVENT_COLUMNS} FROM events
     WHERE stream_id = ANY($1::text[]) AND global_position > $2
     ORDER BY global_position LIMIT $3`,
    [
      [sessionStreamId(tenantId, sessionId), sessionStateStreamId(tenantId, sessionId)],
      after,
      page.limit + 1,
    ],
  );
  const envelopes = rows.map(toEnvelope);
  const more = envelopes.length > page.limit;
  const events = envelopes.slice(0, page.limit).map(entryOf);
  const last = events[events.length - 1];
  return { events, next_cursor: more && last ? encodeCursor(last.position) : null };
}
