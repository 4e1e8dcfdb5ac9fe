import { Paginator } from '../paging';
import type { RequestOptions, Transport, WriteOptions } from '../transport';
import type {
  CompleteTurnInput,
  FailTurnInput,
  ListTurnsQuery,
  LogTurnInput,
  Turn,
  TurnPage,
  TurnResponseInput,
  UserTurnsQuery,
} from '../types';

/** Options of {@link Turns.list}: page size `limit`, `order` (`asc` by default), `last` (only the latest N). */
export type ListTurnsOptions = ListTurnsQuery & { cursor?: string };

/** `client.turns`: the conversation of each session. Every method throws {@link ThreadlineError}. */
export class Turns {
  constructor(private readonly t: Transport) {}

  /**
   * Logs a whole turn (`POST /sessions/{session_id}/turns`): `user_input`, `agent_responses`,
   * `tool_calls`, token usage, `processing_time_ms`; `status` `completed` unless given. Retried calls
   * carry the same `Idempotency-Key`, so a turn is never logged twice.
   * @throws NotFoundError (session); ConflictError `SESSION.ALREADY_ENDED`, `TURN.ALREADY_EXISTS`; BadRequestError.
   */
  log(sessionId: string, input: LogTurnInput, options?: WriteOptions): Promise<Turn> {
    return this.t.json({
      method: 'post',
      path: '/sessions/{session_id}/turns',
      params: { session_id: sessionId },
      body: input,
      write: true,
      options,
    });
  }

  /** Opens a turn (`status: in_progress`) to add responses to as they come ({@link addResponse}, then {@link complete} or {@link fail}). */
  start(sessionId: string, input: Omit<LogTurnInput, 'status'>, options?: WriteOptions): Promise<Turn> {
    return this.log(sessionId, { ...input, status: 'in_progress' }, options);
  }

  /** Adds an agent response and/or a tool call to an open turn (`POST /turns/{turn_id}/responses`). @throws ConflictError `TURN.NOT_OPEN`. */
  addResponse(turnId: string, input: TurnResponseInput, options?: WriteOptions): Promise<Turn> {
    return this.t.json({
      method: 'post',
      path: '/turns/{turn_id}/responses',
      params: { turn_id: turnId },
      body: input,
      write: true,
      options,
    });
  }

  /** Completes an open turn (`POST /turns/{turn_id}/complete`). @throws ConflictError `TURN.NOT_OPEN`. */
  complete(turnId: string, input: CompleteTurnInput = {}, options?: WriteOptions): Promise<Turn> {
    return this.t.json({
      method: 'post',
      path: '/turns/{turn_id}/complete',
      params: { turn_id: turnId },
      body: input,
      write: true,
      options,
    });
  }

  /** Marks an open turn failed with `error` (`POST /turns/{turn_id}/fail`). @throws ConflictError `TURN.NOT_OPEN`. */
  fail(turnId: string, input: FailTurnInput, options?: WriteOptions): Promise<Turn> {
    return this.t.json({
      method: 'post',
      path: '/turns/{turn_id}/fail',
      params: { turn_id: turnId },
      body: input,
      write: true,
      options,
    });
  }

  /** The session's turns in order, as an async iterable over every page (`GET /sessions/{session_id}/turns`). */
  list(
    sessionId: string,
    filters: ListTurnsOptions = {},
    options?: RequestOptions,
  ): Paginator<Turn, TurnPage> {
    const { cursor, ...query } = filters;
    return new Paginator(
      (next) =>
        this.t.json({
          method: 'get',
          path: '/sessions/{session_id}/turns',
          params: { session_id: sessionId },
          query: { ...query, cursor: next },
          options,
        }),
      (page) => page.turns,
      cursor,
    );
  }

  /** One turn (`GET /turns/{turn_id}`). @throws NotFoundError `TURN.NOT_FOUND`. */
  get(turnId: string, options?: RequestOptions): Promise<Turn> {
    return this.t.json({ method: 'get', path: '/turns/{turn_id}', params: { turn_id: turnId }, options });
  }

  /** Deletes one turn (`DELETE /turns/{turn_id}`). @throws NotFoundError. */
  async delete(turnId: string, options?: WriteOptions): Promise<void> {
    await this.t.request({
      method: 'delete',
      path: '/turns/{turn_id}',
      params: { turn_id: turnId },
      write: true,
      options,
    });
  }

  /**
   * The user's latest turns across their sessions (`GET /users/{user_id}/turns`, one page of at most
   * `limit`): `q` full-text searches inputs and responses, `user_input` matches the input exactly.
   */
  listForUser(userId: string, query: UserTurnsQuery = {}, options?: RequestOptions): Promise<TurnPage> {
    return this.t.json({
      method: 'get',
      path: '/users/{user_id}/turns',
      params: { user_id: userId },
      query,
      options,
    });
  }
}
