import { useState } from 'preact/hooks';
import type { SessionPage, UserStatsView } from '@threadline/contracts';
import { request, withQuery } from '../api';
import type { Caller } from '../auth';
import { Badge, ErrorBox, Figure, Loading, Pager, Panel } from '../components';
import { formatInt, formatTime, formatUsd } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';

/** Sessions shown per page. */
export const SESSIONS_PAGE_SIZE = 20;

type Status = 'all' | 'active' | 'ended' | 'expired';
type Sort = 'created_at' | 'last_activity_at';

/** The filters of `GET /users/{id}/sessions`: status, sort, order and one optional metadata equality. */
interface Filters {
  status: Status;
  sort: Sort;
  order: 'asc' | 'desc';
  metaKey: string;
  metaValue: string;
}

const DEFAULT_FILTERS: Filters = {
  status: 'all',
  sort: 'created_at',
  order: 'desc',
  metaKey: '',
  metaValue: '',
};

function sessionsPath(userId: string, filters: Filters, cursor: string | undefined): string {
  const query: Record<string, string | number | undefined> = {
    status: filters.status,
    sort: filters.sort,
    order: filters.order,
    limit: SESSIONS_PAGE_SIZE,
    cursor,
  };
  if (filters.metaKey.trim() !== '') query[`metadata.${filters.metaKey.trim()}`] = filters.metaValue;
  return withQuery(`/users/${encodeURIComponent(userId)}/sessions`, query);
}

function UserFigures(props: { stats: UserStatsView }) {
  const s = props.stats;
  return (
    <div class="figures">
      <Figure
        label="Sessions"
        testId="user-sessions-total"
        value={s.sessions.total}
        text={formatInt(s.sessions.total)}
      />
      <Figure
        label="Active"
        testId="user-sessions-active"
        value={s.sessions.active}
        text={formatInt(s.sessions.active)}
      />
      <Figure
        label="Ended"
        testId="user-sessions-ended"
        value={s.sessions.ended}
        text={formatInt(s.sessions.ended)}
      />
      <Figure
        label="Expired"
        testId="user-sessions-expired"
        value={s.sessions.expired}
        text={formatInt(s.sessions.expired)}
      />
      <Figure label="Turns" testId="user-turns" value={s.turns} text={formatInt(s.turns)} />
      <Figure
        label="Failed turns"
        testId="user-turns-failed"
        value={s.turns_failed}
        text={formatInt(s.turns_failed)}
      />
      <Figure label="Tokens" testId="user-tokens" value={s.total_tokens} text={formatInt(s.total_tokens)} />
      <Figure label="Cost" testId="user-cost" value={s.cost_usd} text={formatUsd(s.cost_usd)} />
      <Figure label="Last activity" testId="user-last-activity" text={formatTime(s.last_activity_at)} />
    </div>
  );
}

/**
 * One user: their figures (`GET /users/{id}/stats`) and their sessions
 * (`GET /users/{id}/sessions`): filter by status and a metadata value, sort by creation or last
 * activity, pages of {@link SESSIONS_PAGE_SIZE} (cursor paging, previous pages remembered).
 */
export function UserPage(props: { caller: Caller; userId: string }) {
  const { caller, userId } = props;
  const [filters, setFilters] = useState<Filters>(DEFAULT_FILTERS);
  const [draft, setDraft] = useState<Filters>(DEFAULT_FILTERS);
  // Cursors of the pages before the current one; the current page's cursor is the last.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];

  const stats = useLoad(
    (signal) =>
      request<UserStatsView>(`/users/${encodeURIComponent(userId)}/stats`, caller.credential, { signal }),
    [caller.credential, userId],
  );
  const sessions = useLoad(
    (signal) => request<SessionPage>(sessionsPath(userId, filters, cursor), caller.credential, { signal }),
    [caller.credential, userId, filters, cursor],
  );

  const apply = (next: Filters) => {
    setFilters(next);
    setCursors([undefined]);
  };
  return (
    <div class="page" data-testid="page-user">
      <div class="page-title">
        <h1>
          User <span data-testid="user-id">{userId}</span>
        </h1>
      </div>
      <Panel title="Figures">
        <ErrorBox error={stats.error} />
        {stats.data ? <UserFigures stats={stats.data} /> : stats.error === undefined && <Loading />}
      </Panel>
      <Panel title="Sessions" testId="user-sessions">
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            apply(draft);
          }}
        >
          <label>
            Status{' '}
            <select
              value={draft.status}
              data-testid="filter-status"
              onChange={(e) => {
                const next = { ...draft, status: e.currentTarget.value as Status };
                setDraft(next);
                apply(next);
              }}
            >
              <option value="all">all</option>
              <option value="active">active</option>
              <option value="ended">ended</option>
              <option value="expired">expired</option>
            </select>
          </label>
          <label>
            Sort{' '}
            <select
              value={`${draft.sort}:${draft.order}`}
              data-testid="filter-sort"
              onChange={(e) => {
                const [sort, order] = e.currentTarget.value.split(':') as [Sort, 'asc' | 'desc'];
                const next = { ...draft, sort, order };
                setDraft(next);
                apply(next);
              }}
            >
              <option value="created_at:desc">newest first</option>
              <option value="created_at:asc">oldest first</option>
              <option value="last_activity_at:desc">recently active first</option>
              <option value="last_activity_at:asc">least recently active first</option>
            </select>
          </label>
          <label>
            Metadata{' '}
            <input
              placeholder="key"
              value={draft.metaKey}
              size={10}
              onInput={(e) => setDraft({ ...draft, metaKey: e.currentTarget.value })}
              data-testid="filter-meta-key"
            />
            {' = '}
            <input
              placeholder="value"
              value={draft.metaValue}
              size={12}
              onInput={(e) => setDraft({ ...draft, metaValue: e.currentTarget.value })}
              data-testid="filter-meta-value"
            />
          </label>
          <button type="submit">Filter</button>
        </form>
        <ErrorBox error={sessions.error} />
        {sessions.data === undefined ? (
          sessions.error === undefined && <Loading />
        ) : (
          <>
            <p class="muted" data-testid="sessions-total" data-value={sessions.data.total}>
              {formatInt(sessions.data.total)} sessions match
            </p>
            <table class="table" data-testid="sessions-table">
              <thead>
                <tr>
                  <th>Session</th>
                  <th>Status</th>
                  <th class="num">Turns</th>
                  <th>Created</th>
                  <th>Last activity</th>
                  <th>Last agent</th>
                </tr>
              </thead>
              <tbody>
                {sessions.data.sessions.length === 0 && (
                  <tr>
                    <td colSpan={6} class="empty">
                      No session matches.
                    </td>
                  </tr>
                )}
                {sessions.data.sessions.map((s) => (
                  <tr key={s.session_id} data-session={s.session_id}>
                    <td>
                      <a href={href({ page: 'session', sessionId: s.session_id })} data-testid="session-link">
                        {s.title === '' ? s.session_id : s.title}
                      </a>
                      <div class="muted small">{s.session_id}</div>
                    </td>
                    <td>
                      <Badge status={s.status} />
                    </td>
                    <td class="num" data-testid="session-turn-count" data-value={s.turn_count}>
                      {formatInt(s.turn_count)}
                    </td>
                    <td>{formatTime(s.created_at)}</td>
                    <td>{formatTime(s.last_activity_at)}</td>
                    <td>{s.context.last_agent_used ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager
              page={cursors.length}
              hasPrevious={cursors.length > 1}
              hasNext={sessions.data.next_cursor !== null}
              onPrevious={() => setCursors((c) => c.slice(0, -1))}
              onNext={() => {
                const next = sessions.data?.next_cursor;
                if (next) setCursors((c) => [...c, next]);
              }}
            />
          </>
        )}
      </Panel>
    </div>
  );
}
