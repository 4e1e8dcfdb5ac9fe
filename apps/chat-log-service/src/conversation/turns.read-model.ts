import { z } from 'zod';
import {
  SessionId,
  TurnId,
  type TurnPage,
  TurnView,
  TurnWriteReply,
  UserId,
  type ListSessionTurnsQuery,
  type ListUserTurnsQuery,
} from '@threadline/contracts';
import type { Sql } from '@threadline/event-store';
import { ValidationError } from '@threadline/platform';

/** The columns of `turns` that {@link toRecord} parses. */
export const COLUMNS = `tenant_id, turn_id, session_id, user_id, conversation_turn, user_input, agent_responses, tool_calls,
  input_tokens, output_tokens, cached_tokens, reasoning_tokens, total_tokens, cost_usd, status, error,
  vector_cache_hit, processing_time_ms, started_at, completed_at, updated_at, version, last_global_position`;

const Count = z.coerce.number().int().min(0);

/**
 * A row of `turns` as read back from Postgres (parsed, never cast). bigint and numeric arrive as strings.
 * Compiled (`z.compile`: generated code for valid rows, zod's own parser and errors for invalid ones),
 * as every read and every LogTurn parses its rows here.
 */
const TurnRow = z.compile(
  z.object({
    tenant_id: z.string(),
    turn_id: TurnId,
    session_id: SessionId,
    user_id: UserId.nullable(),
    conversation_turn: z.number().int(),
    user_input: z.string(),
    agent_responses: TurnView.shape.agent_responses,
    tool_calls: TurnView.shape.tool_calls,
    input_tokens: Count,
    output_tokens: Count,
    cached_tokens: Count,
    reasoning_tokens: Count,
    total_tokens: Count,
    cost_usd: z.coerce.number().min(0),
    status: TurnView.shape.status,
    error: z.string().nullable(),
    vector_cache_hit: z.boolean(),
    processing_time_ms: z.number().int().nullable(),
    started_at: z.date(),
    completed_at: z.date().nullable(),
    updated_at: z.date(),
    version: z.coerce.number().int(),
    last_global_position: z.coerce.number().int(),
  }),
);

/**
 * {@link TurnWriteReply} compiled (as {@link TurnRow}): every turn write parses its reply with it before
 * answering, the LogTurn batch and the single path alike.
 */
export const TurnWriteReplySchema = z.compile(TurnWriteReply);

/** A turn of the read model: its view, and the stream / global position of the last event applied to it. */
export interface TurnRecord {
  view: TurnView;
  version: number;
  lastGlobalPosition: number;
}

/** A row of `turns` (selected or returned with {@link COLUMNS}) as a {@link TurnRecord}. Throws for an invalid row. */
export function toRecord(row: unknown): TurnRecord {
  const r = TurnRow.parse(row);
  return {
    view: {
      turn_id: r.turn_id,
      session_id: r.session_id,
      user_id: r.user_id,
      conversation_turn: r.conversation_turn,
      user_input: r.user_input,
      agent_responses: r.agent_responses,
      tool_calls: r.tool_calls,
      usage: {
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cached_tokens: r.cached_tokens,
        reasoning_tokens: r.reasoning_tokens,
        total_tokens: r.total_tokens,
      },
      cost_usd: r.cost_usd,
      vector_cache_hit: r.vector_cache_hit,
      processing_time_ms: r.processing_time_ms,
      status: r.status,
      error: r.error,
      started_at: r.started_at.toISOString(),
      completed_at: r.completed_at ? r.completed_at.toISOString() : null,
      updated_at: r.updated_at.toISOString(),
    },
    version: r.version,
    lastGlobalPosition: r.last_global_position,
  };
}

/**
 * One turn of `tenantId`, or null (unknown, deleted, or deleted with its session). With `userId`, a
 * turn of another user (or of none) is null too. `forUpdate` locks the row (projection writes).
 */
export async function findTurn(
  sql: Sql,
  tenantId: string,
  turnId: string,
  opts: { userId?: string | undefined; forUpdate?: boolean } = {},
): Promise<TurnRecord | null> {
  const rows = await sql.query(
    `SELECT ${COLUMNS} FROM turns
     WHERE tenant_id = $1 AND turn_id = $2 AND ($3::text IS NULL OR user_id = $3)${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [tenantId, turnId, opts.userId ?? null],
  );
  return rows[0] === undefined ? null : toRecord(rows[0]);
}

/** The session a turn id was ever used in (deleted turns included), or null when the id is unused. */
export async function sessionOfTurnId(sql: Sql, tenantId: string, turnId: string): Promise<string | null> {
  const [session] = await sessionsOfTurnIds(sql, [{ tenantId, turnId }]);
  return session ?? null;
}

const TurnIdRow = z.object({ tenant_id: z.string(), turn_id: z.string(), session_id: SessionId });

/** {@link sessionOfTurnId} for several turn ids, in ONE statement; answers in the order asked. */
export async function sessionsOfTurnIds(
  sql: Sql,
  ids: readonly { tenantId: string; turnId: string }[],
): Promise<(string | null)[]> {
  const rows = TurnIdRow.array().parse(
    await sql.query(
      `SELECT tenant_id, turn_id, session_id FROM turn_ids
       WHERE (tenant_id, turn_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [ids.map((i) => i.tenantId), ids.map((i) => i.turnId)],
    ),
  );
  const sessions = new Map(rows.map((r) => [`${r.tenant_id}\u0000${r.turn_id}`, r.session_id]));
  return ids.map((i) => sessions.get(`${i.tenantId}\u0000${i.turnId}`) ?? null);
}

/**
 * The opaque cursor of a session's turns: base64url of JSON `{ o: order, n: conversation_turn }` of
 * the previous page's last turn. The order is in it, so a cursor only continues the listing that made it.
 */
const SessionCursor = z.object({ o: z.enum(['asc', 'desc']), n: z.number().int().min(0) });
type SessionCursor = z.infer<typeof SessionCursor>;

const encodeCursor = (cursor: SessionCursor): string =>
  Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');

function decodeCursor(text: string, order: 'asc' | 'desc'): SessionCursor {
  let parsed: SessionCursor | undefined;
  try {
    const result = SessionCursor.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    if (result.success) parsed = result.data;
  } catch {
    parsed = undefined;
  }
  if (!parsed || parsed.o !== order) {
    throw new ValidationError('Invalid cursor', [
      { path: 'cursor', message: 'not a cursor returned by this listing (same order)' },
    ]);
  }
  return parsed;
}

/**
 * A page of a session's turns by `conversation_turn`, ascending or descending (`order`), `limit` per
 * page, `next_cursor` null on the last page. `last=N` answers the N most recent turns in ascending
 * order in one page (no cursor; `limit` and `order` do not apply). Throws `ValidationError`
 * (REQUEST.INVALID) for a foreign cursor or `last` combined with `cursor`.
 */
export async function listSessionTurns(
  sql: Sql,
  tenantId: string,
  sessionId: string,
  query: z.infer<typeof ListSessionTurnsQuery>,
): Promise<TurnPage> {
  if (query.last !== undefined) {
    if (query.cursor !== undefined) {
      throw new ValidationError('last cannot be combined with cursor', [
        { path: 'cursor', message: 'not allowed with last' },
      ]);
    }
    const rows = await sql.query(
      `SELECT * FROM (SELECT ${COLUMNS} FROM turns WHERE tenant_id = $1 AND session_id = $2
                      ORDER BY conversation_turn DESC LIMIT $3) recent
       ORDER BY conversation_turn ASC`,
      [tenantId, sessionId, query.last],
    );
    return { turns: rows.map((r) => toRecord(r).view), next_cursor: null };
  }
  const params: unknown[] = [tenantId, sessionId];
  let after = '';
  if (query.cursor !== undefined) {
    params.push(decodeCursor(query.cursor, query.order).n);
    after = ` AND conversation_turn ${query.order === 'asc' ? '>' : '<'} $${params.length}`;
  }
  params.push(query.limit + 1);
  const rows = await sql.query(
    `SELECT ${COLUMNS} FROM turns WHERE tenant_id = $1 AND session_id = $2${after}
     ORDER BY conversation_turn ${query.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, query.limit).map((r) => toRecord(r).view);
  const last = page[page.length - 1];
  return {
    turns: page,
    next_cursor:
      rows.length > query.limit && last ? encodeCursor({ o: query.order, n: last.conversation_turn }) : null,
  };
}

/**
 * A user's most recent turns across sessions (`started_at` descending, then turn id), at most `limit`.
 * `user_input`: only turns whose input is exactly this text. `q`: only turns whose input matches the
 * web-search-style query (`websearch_to_tsquery('english', q)`: words, "quoted phrases", `or`, `-not`)
 * against `to_tsvector('english', user_input)`. `next_cursor` is always null (one page).
 */
export async function listUserTurns(
  sql: Sql,
  tenantId: string,
  userId: string,
  query: z.infer<typeof ListUserTurnsQuery>,
): Promise<TurnPage> {
  const params: unknown[] = [tenantId, userId];
  const where = ['tenant_id = $1', 'user_id = $2'];
  if (query.user_input !== undefined) {
    params.push(query.user_input);
    // The hash comparison lets Postgres use the `turns_user_input` index; the text comparison is the filter.
    where.push(`md5(user_input) = md5($${params.length}) AND user_input = $${params.length}`);
  }
  if (query.q !== undefined) {
    params.push(query.q);
    where.push(`search_tsv @@ websearch_to_tsquery('english', $${params.length})`);
  }
  params.push(query.limit);
  const rows = await sql.query(
    `SELECT ${COLUMNS} FROM turns WHERE ${where.join(' AND ')}
     ORDER BY started_at DESC, turn_id DESC LIMIT $${params.length}`,
    params,
  );
  return { turns: rows.map((r) => toRecord(r).view), next_cursor: null };
}
