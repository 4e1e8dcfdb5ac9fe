import { z } from 'zod';
import {
  Metadata,
  SessionContext,
  SessionId,
  type SessionPage,
  SessionStatus,
  type SessionView,
  UserId,
  type SessionSort as SessionSortSchema,
  type SessionStatusFilter as SessionStatusFilterSchema,
  type SortOrder as SortOrderSchema,
} from '@threadline/contracts';
import type { Sql } from '@threadline/event-store';
import { ValidationError } from '@threadline/platform';

type SessionSort = z.infer<typeof SessionSortSchema>;
type SortOrder = z.infer<typeof SortOrderSchema>;
type SessionStatusFilter = z.infer<typeof SessionStatusFilterSchema>;

const COLUMNS = `tenant_id, session_id, user_id, title, status, metadata, created_from, created_at, updated_at,
  last_activity_at, ended_at, version, last_global_position, turn_count, context`;

/** A row of `sessions` as read back from Postgres (parsed, never cast). bigint columns arrive as strings. */
const SessionRow = z.object({
  tenant_id: z.string(),
  session_id: SessionId,
  user_id: UserId.nullable(),
  title: z.string(),
  status: SessionStatus,
  metadata: Metadata,
  created_from: z.string().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  last_activity_at: z.date(),
  ended_at: z.date().nullable(),
  version: z.coerce.number().int(),
  last_global_position: z.coerce.number().int(),
  turn_count: z.coerce.number().int().min(0),
  context: SessionContext,
});

/** A session of the read model: its view and the global position of the last event applied to it. */
export interface SessionRecord {
  view: SessionView;
  lastGlobalPosition: number;
}

function toRecord(row: unknown): SessionRecord {
  const r = SessionRow.parse(row);
  return {
    view: {
      session_id: r.session_id,
      thread_id: r.session_id,
      user_id: r.user_id,
      title: r.title,
      status: r.status,
      metadata: r.metadata,
      created_from: r.created_from,
      created_at: r.created_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
      last_activity_at: r.last_activity_at.toISOString(),
      ended_at: r.ended_at ? r.ended_at.toISOString() : null,
      version: r.version,
      turn_count: r.turn_count,
      context: r.context,
    },
    lastGlobalPosition: r.last_global_position,
  };
}

/**
 * One session of `tenantId`, or null when there is none (unknown or deleted). With `userId`, a
 * session of another user (or of no user) is null too: never reveal that it exists.
 */
export async function findSession(
  sql: Sql,
  tenantId: string,
  sessionId: string,
  userId?: string,
): Promise<SessionRecord | null> {
  const rows = await sql.query(
    `SELECT ${COLUMNS} FROM sessions
     WHERE tenant_id = $1 AND session_id = $2 AND ($3::text IS NULL OR user_id = $3)`,
    [tenantId, sessionId, userId ?? null],
  );
  return rows[0] === undefined ? null : toRecord(rows[0]);
}

/**
 * The user's current session: their active session with the most recent activity (ties: the latest
 * created, then the highest id), or null when they have none active.
 */
export async function findCurrentSession(
  sql: Sql,
  tenantId: string,
  userId: string,
): Promise<SessionRecord | null> {
  const rows = await sql.query(
    `SELECT ${COLUMNS} FROM sessions
     WHERE tenant_id = $1 AND user_id = $2 AND status = 'active'
     ORDER BY last_activity_at DESC, session_id DESC LIMIT 1`,
    [tenantId, userId],
  );
  return rows[0] === undefined ? null : toRecord(rows[0]);
}

/**
 * The opaque page cursor: base64url of JSON `{ s: sort, o: order, k: sort value, id: session id }`, the
 * last row of the previous page. `k` is Postgres's own text of the timestamp (microseconds kept), so the
 * keyset comparison is exact. Sort and order are in the cursor so a cursor is only valid for the listing
 * that produced it.
 */
const Cursor = z.object({
  s: z.enum(['created_at', 'last_activity_at']),
  o: z.enum(['asc', 'desc']),
  k: z.iso.datetime({ offset: true }),
  id: SessionId,
});
type Cursor = z.infer<typeof Cursor>;

const encodeCursor = (cursor: Cursor): string =>
  Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');

function decodeCursor(text: string, sort: SessionSort, order: SortOrder): Cursor {
  let parsed: Cursor | undefined;
  try {
    const result = Cursor.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    if (result.success) parsed = result.data;
  } catch {
    parsed = undefined;
  }
  if (!parsed || parsed.s !== sort || parsed.o !== order) {
    throw new ValidationError('Invalid cursor', [
      { path: 'cursor', message: 'not a cursor returned by this listing (same sort and order)' },
    ]);
  }
  return parsed;
}

export interface ListSessionsFilter {
  tenantId: string;
  /** Only this user's sessions (per-user listing); all users when absent (operators' list). */
  userId?: string;
  status: SessionStatusFilter;
  /** Only sessions whose metadata contains every pair (`metadata @> {...}`, string values). */
  metadata?: Record<string, string>;
  sort: SessionSort;
  order: SortOrder;
  /** 1-200 */
  limit: number;
  cursor?: string;
}

function sortColumn(sort: SessionSort): string {
  switch (sort) {
    case 'created_at':
      return 'created_at';
    case 'last_activity_at':
      return 'last_activity_at';
    default: {
      const unreachable: never = sort;
      return unreachable;
    }
  }
}

/** The statuses to match, or null for every status (the column's CHECK allows only these three). */
function statusesOf(status: SessionStatusFilter): SessionStatus[] | null {
  switch (status) {
    case 'all':
      return null;
    case 'active':
    case 'ended':
    case 'expired':
      return [status];
    default: {
      const unreachable: never = status;
      return unreachable;
    }
  }
}

const Total = z.coerce.number().int().min(0);
const SortKey = z.iso.datetime({ offset: true });

/**
 * A page of sessions in keyset order `(sort column, session_id)` ascending or descending, with
 * `next_cursor` (null on the last page) and `total`, the number of sessions matching the filters
 * (all pages). One statement (one snapshot): the page and the total are read together. Throws
 * `ValidationError` (REQUEST.INVALID) for a cursor this listing did not produce.
 */
export async function listSessions(sql: Sql, f: ListSessionsFilter): Promise<SessionPage> {
  const column = sortColumn(f.sort);
  const params: unknown[] = [f.tenantId];
  const where = ['tenant_id = $1'];
  const statuses = statusesOf(f.status);
  if (statuses !== null) {
    params.push(statuses);
    where.push(`status = ANY($${params.length}::text[])`);
  }
  if (f.userId !== undefined) {
    params.push(f.userId);
    where.push(`user_id = $${params.length}`);
  }
  if (f.metadata && Object.keys(f.metadata).length > 0) {
    params.push(JSON.stringify(f.metadata));
    where.push(`metadata @> $${params.length}::jsonb`);
  }
  const filterWhere = where.join(' AND ');

  const direction = f.order === 'asc' ? 'ASC' : 'DESC';
  if (f.cursor !== undefined) {
    const cursor = decodeCursor(f.cursor, f.sort, f.order);
    params.push(cursor.k, cursor.id);
    const cmp = f.order === 'asc' ? '>' : '<';
    where.push(`(${column}, session_id) ${cmp} ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(f.limit + 1);
  // The count is the one row of the left side: an empty page still answers its total (a row of NULLs).
  const rows = await sql.query<Record<string, unknown> & { sort_key: unknown; total: unknown }>(
    `SELECT page.*, c.total
     FROM (SELECT count(*) AS total FROM sessions WHERE ${filterWhere}) c
     LEFT JOIN (SELECT ${COLUMNS}, to_json(${column}) #>> '{}' AS sort_key FROM sessions
                WHERE ${where.join(' AND ')}
                ORDER BY ${column} ${direction}, session_id ${direction}
                LIMIT $${params.length}) page ON true
     ORDER BY page.${column} ${direction}, page.session_id ${direction}`,
    params,
  );
  const total = Total.parse(rows[0]?.total);
  const found = rows.filter((row) => row['session_id'] !== null);
  const page = found.slice(0, f.limit);
  const last = page[page.length - 1];
  let nextCursor: string | null = null;
  if (found.length > f.limit && last) {
    nextCursor = encodeCursor({
      s: f.sort,
      o: f.order,
      k: SortKey.parse(last.sort_key),
      id: SessionId.parse(last['session_id']),
    });
  }
  return { sessions: page.map((row) => toRecord(row).view), next_cursor: nextCursor, total };
}
