import type { RequestOptions, Transport } from '../transport';
import type { GlobalStats, SessionStats, StatsQuery, UsageQuery, UsageStats, UserStats } from '../types';

/**
 * `client.stats`: the analytics read models. They follow writes asynchronously: pass `min_position`
 * (a write's position, e.g. `client.lastPosition`) to wait until they include it, or construct the
 * client with `readYourWrites: true` to send the last write's position by default. A read that cannot
 * catch up in time throws a 503 {@link ServiceUnavailableError} (retried like any 503).
 */
export class Stats {
  constructor(
    private readonly t: Transport,
    private readonly minPosition: () => number | undefined,
  ) {}

  /** The tenant's figures (`GET /sessions/stats`): sessions by status, users, turns, tokens, cost (USD), per agent and model. */
  global(query: StatsQuery = {}, options?: RequestOptions): Promise<GlobalStats> {
    return this.t.json({ method: 'get', path: '/sessions/stats', query: this.withPosition(query), options });
  }

  /** A session's summary (`GET /sessions/{session_id}/stats`). @throws NotFoundError. */
  session(sessionId: string, query: StatsQuery = {}, options?: RequestOptions): Promise<SessionStats> {
    return this.t.json({
      method: 'get',
      path: '/sessions/{session_id}/stats',
      params: { session_id: sessionId },
      query: this.withPosition(query),
      options,
    });
  }

  /** A user's figures (`GET /users/{user_id}/stats`); zeros for a user without sessions. */
  user(userId: string, query: StatsQuery = {}, options?: RequestOptions): Promise<UserStats> {
    return this.t.json({
      method: 'get',
      path: '/users/{user_id}/stats',
      params: { user_id: userId },
      query: this.withPosition(query),
      options,
    });
  }

  /** Usage over time (`GET /stats/usage`): `group_by` day, model or agent; `from`/`to` days or instants (default: 30 days). */
  usage(query: UsageQuery = {}, options?: RequestOptions): Promise<UsageStats> {
    return this.t.json({ method: 'get', path: '/stats/usage', query: this.withPosition(query), options });
  }

  private withPosition<Q extends { min_position?: number }>(query: Q): Q {
    if (query.min_position !== undefined) return query;
    const position = this.minPosition();
    return position === undefined ? query : { ...query, min_position: position };
  }
}
