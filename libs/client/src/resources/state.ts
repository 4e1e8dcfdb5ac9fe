import { Paginator } from '../paging';
import type { ConditionalWriteOptions, RequestOptions, Transport } from '../transport';
import type {
  HistoryQuery,
  PutToolCallInput,
  SessionHistoryEvent,
  SessionHistoryPage,
  SessionState,
  SessionStatePatch,
  StateQuery,
} from '../types';

/** Options of {@link State.history}: page size `limit` (1-200). */
export type HistoryOptions = HistoryQuery & { cursor?: string };

/** `client.state`: each session's workflow state and history. Every method throws {@link ThreadlineError}. */
export class State {
  constructor(private readonly t: Transport) {}

  /**
   * The session's state (`GET /sessions/{session_id}/state`); `version: N` or `at: ISO-8601` give it as
   * it was then. @throws NotFoundError; BadRequestError for a version past the current one.
   */
  get(sessionId: string, query: StateQuery = {}, options?: RequestOptions): Promise<SessionState> {
    return this.t.json({
      method: 'get',
      path: '/sessions/{session_id}/state',
      params: { session_id: sessionId },
      query,
      options,
    });
  }

  /**
   * Changes the state with a JSON merge patch (RFC 7396: `null` removes) (`PATCH /sessions/{session_id}/state`).
   * @throws PreconditionFailedError when `ifMatch` is stale; NotFoundError.
   */
  patch(
    sessionId: string,
    patch: SessionStatePatch,
    options: ConditionalWriteOptions = {},
  ): Promise<SessionState> {
    return this.t.json({
      method: 'patch',
      path: '/sessions/{session_id}/state',
      params: { session_id: sessionId },
      body: patch,
      write: true,
      ifMatch: options.ifMatch,
      options,
    });
  }

  /**
   * Sets tool call `name`'s status, result and error, planning it when new (`PUT /sessions/{session_id}/tool-calls/{name}`).
   * @throws PreconditionFailedError when `ifMatch` is stale; NotFoundError.
   */
  putToolCall(
    sessionId: string,
    name: string,
    input: PutToolCallInput,
    options: ConditionalWriteOptions = {},
  ): Promise<SessionState> {
    return this.t.json({
      method: 'put',
      path: '/sessions/{session_id}/tool-calls/{name}',
      params: { session_id: sessionId, name },
      body: input,
      write: true,
      ifMatch: options.ifMatch,
      options,
    });
  }

  /** Every event of the session's lifecycle and state, oldest first, over every page (`GET /sessions/{session_id}/history`). */
  history(
    sessionId: string,
    filters: HistoryOptions = {},
    options?: RequestOptions,
  ): Paginator<SessionHistoryEvent, SessionHistoryPage> {
    const { cursor, ...query } = filters;
    return new Paginator(
      (next) =>
        this.t.json({
          method: 'get',
          path: '/sessions/{session_id}/history',
          params: { session_id: sessionId },
          query: { ...query, cursor: next },
          options,
        }),
      (page) => page.events,
      cursor,
    );
  }
}
