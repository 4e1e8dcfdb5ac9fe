import { NotFoundError } from '../errors';
import { Paginator } from '../paging';
import type {
  ConditionalWriteOptions,
  QueryValue,
  RequestOptions,
  Transport,
  WriteOptions,
} from '../transport';
import type {
  CleanupReport,
  CreateSessionInput,
  CurrentSessionInput,
  ListAllSessionsQuery,
  ListUserSessionsQuery,
  Session,
  SessionPage,
  UpdateSessionInput,
} from '../types';

/** Options of {@link Sessions.list}: with `userId`, that user's sessions; without, every session of the tenant (admin keys). */
export type ListSessionsOptions = ListUserSessionsQuery & {
  /** Whose sessions; required with a user token (its own user) and for `sort`, `order` and `metadata`. */
  userId?: string;
};

/** `client.sessions`: the sessions of the tenant's users. Every method throws {@link ThreadlineError}. */
export class Sessions {
  constructor(private readonly t: Transport) {}

  /**
   * Creates a session (`POST /sessions`): `user_id` (required with an API key), optional
   * `session_id` (generated when absent), `title`, `metadata`, `created_from`.
   * @throws ConflictError `SESSION.ALREADY_EXISTS` when `session_id` is taken.
   */
  create(input: CreateSessionInput = {}, options?: WriteOptions): Promise<Session> {
    return this.t.json({ method: 'post', path: '/sessions', body: input, write: true, options });
  }

  /** The session (`GET /sessions/{session_id}`). @throws NotFoundError `SESSION.NOT_FOUND`. */
  get(sessionId: string, options?: RequestOptions): Promise<Session> {
    return this.t.json({
      method: 'get',
      path: '/sessions/{session_id}',
      params: { session_id: sessionId },
      options,
    });
  }

  /** Whether the session exists and the caller may see it (`HEAD /sessions/{session_id}`); other errors throw. */
  async exists(sessionId: string, options?: RequestOptions): Promise<boolean> {
    try {
      await this.t.request({
        method: 'head',
        path: '/sessions/{session_id}',
        params: { session_id: sessionId },
        options,
      });
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  /**
   * Changes the title and/or merges `metadata` (a `null` value removes the key) (`PATCH /sessions/{session_id}`).
   * With `ifMatch` (the `version` you read), a concurrent change makes it throw instead of overwrite.
   * @throws PreconditionFailedError `SESSION.VERSION_MISMATCH` when `ifMatch` is stale; NotFoundError; ConflictError.
   */
  update(
    sessionId: string,
    input: UpdateSessionInput,
    options: ConditionalWriteOptions = {},
  ): Promise<Session> {
    return this.t.json({
      method: 'patch',
      path: '/sessions/{session_id}',
      params: { session_id: sessionId },
      body: input,
      write: true,
      ifMatch: options.ifMatch,
      options,
    });
  }

  /** Ends the session (`POST /sessions/{session_id}/end`); ending an ended one changes nothing. @throws NotFoundError. */
  end(sessionId: string, options?: WriteOptions): Promise<Session> {
    return this.t.json({
      method: 'post',
      path: '/sessions/{session_id}/end',
      params: { session_id: sessionId },
      write: true,
      options,
    });
  }

  /** Deletes the session and its turns (`DELETE /sessions/{session_id}`); afterwards it is 404. @throws NotFoundError. */
  async delete(sessionId: string, options?: WriteOptions): Promise<void> {
    await this.t.request({
      method: 'delete',
      path: '/sessions/{session_id}',
      params: { session_id: sessionId },
      write: true,
      options,
    });
  }

  /**
   * Sessions, newest first by default, as an async iterable over every page:
   * `for await (const s of client.sessions.list({ userId: 'ada', status: 'active' }))`.
   * With `userId`: `GET /users/{user_id}/sessions` (filters `status`, `sort`, `order`, `metadata`);
   * without: `GET /sessions` (every user's; admin keys; `status` only). `limit` is the page size (1-200).
   * @throws TypeError when `sort`, `order` or `metadata` is given without `userId`.
   */
  list(filters: ListSessionsOptions = {}, options?: RequestOptions): Paginator<Session, SessionPage> {
    const { userId, metadata, cursor, ...query } = filters;
    if (userId === undefined) {
      if (query.sort !== undefined || query.order !== undefined || metadata !== undefined)
        throw new TypeError('sessions.list: sort, order and metadata filters need a userId');
      const all: ListAllSessionsQuery = { status: query.status, limit: query.limit };
      return new Paginator(
        (next) => this.t.json({ method: 'get', path: '/sessions', query: { ...all, cursor: next }, options }),
        (page) => page.sessions,
        cursor,
      );
    }
    const base: Record<string, QueryValue> = { ...query };
    for (const [key, value] of Object.entries(metadata ?? {})) base[`metadata.${key}`] = value;
    return new Paginator(
      (next) =>
        this.t.json({
          method: 'get',
          path: '/users/{user_id}/sessions',
          params: { user_id: userId },
          query: { ...base, cursor: next },
          options,
        }),
      (page) => page.sessions,
      cursor,
    );
  }

  /** The user's current session: the most recently active one (`GET /users/{user_id}/sessions/current`). @throws NotFoundError when none is active. */
  current(userId: string, options?: RequestOptions): Promise<Session> {
    return this.t.json({
      method: 'get',
      path: '/users/{user_id}/sessions/current',
      params: { user_id: userId },
      options,
    });
  }

  /** The user's current session, created (with `input`'s title and metadata) when none is active (`POST /users/{user_id}/sessions/current`). */
  getOrCreate(userId: string, input: CurrentSessionInput = {}, options?: WriteOptions): Promise<Session> {
    return this.t.json({
      method: 'post',
      path: '/users/{user_id}/sessions/current',
      params: { user_id: userId },
      body: input,
      write: true,
      options,
    });
  }

  /** Runs the expiry and retention policy now (`POST /sessions/cleanup`; admin keys): how many sessions expired and were deleted. */
  cleanup(options?: WriteOptions): Promise<CleanupReport> {
    return this.t.json({ method: 'post', path: '/sessions/cleanup', write: true, options });
  }
}
