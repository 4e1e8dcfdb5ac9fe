import { useEffect, useMemo, useState } from 'preact/hooks';
import type { SessionPage, UserStatsView } from '@threadline/contracts';
import { request, withQuery } from '../api';
import type { Caller } from '../auth';
import { ErrorBox, Loading, Pager, Panel } from '../components';
import { formatInt, formatTime, formatUsd } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';

/** Users shown per page. */
export const USERS_PAGE_SIZE = 20;
/** Sessions read per `GET /sessions` page while collecting user ids (the API's maximum). */
const SCAN_PAGE = 200;
/** Pages of sessions read before asking the operator to scan further. */
const SCAN_PAGES_PER_STEP = 5;

/** Users seen in the operators' session list: id and sessions seen, in first-seen order. */
interface Scan {
  users: Map<string, number>;
  sessionsSeen: number;
  sessionsTotal: number;
  next: string | null;
}

/**
 * Reads the tenant's sessions (`GET /sessions`, admin keys only) from `from`, up to
 * {@link SCAN_PAGES_PER_STEP} pages, collecting the distinct user ids: the API has no user list (users
 * are not registered, they are who sessions name), so this is where the page finds them.
 */
async function scanSessions(credential: string, from: Scan, signal: AbortSignal): Promise<Scan> {
  const users = new Map(from.users);
  let { sessionsSeen, next, sessionsTotal } = from;
  let cursor: string | undefined = next ?? undefined;
  for (let page = 0; page < SCAN_PAGES_PER_STEP; page++) {
    const answer: SessionPage = await request<SessionPage>(
      withQuery('/sessions', { limit: SCAN_PAGE, cursor }),
      credential,
      {
        signal,
      },
    );
    sessionsTotal = answer.total;
    sessionsSeen += answer.sessions.length;
    for (const s of answer.sessions)
      if (s.user_id !== null) users.set(s.user_id, (users.get(s.user_id) ?? 0) + 1);
    next = answer.next_cursor;
    if (next === null) break;
    cursor = next;
  }
  return { users, sessionsSeen, sessionsTotal, next };
}

const EMPTY_SCAN: Scan = { users: new Map(), sessionsSeen: 0, sessionsTotal: 0, next: null };

function OpenUser() {
  const [id, setId] = useState('');
  return (
    <form
      class="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (id.trim() !== '') location.hash = href({ page: 'user', userId: id.trim() });
      }}
    >
      <input
        placeholder="user id"
        value={id}
        onInput={(e) => setId(e.currentTarget.value)}
        aria-label="user id"
        data-testid="open-user-id"
      />
      <button type="submit">Open user</button>
    </form>
  );
}

/** Per-user usage of the users on the page (`GET /users/{id}/stats` each). */
function UserRows(props: { caller: Caller; userIds: string[]; sessionsSeen: Map<string, number> }) {
  const stats = useLoad(
    (signal) =>
      Promise.all(
        props.userIds.map((id) =>
          request<UserStatsView>(`/users/${encodeURIComponent(id)}/stats`, props.caller.credential, {
            signal,
          }),
        ),
      ),
    [props.caller.credential, props.userIds.join('\n')],
  );
  return (
    <>
      <ErrorBox error={stats.error} />
      <table class="table" data-testid="users-table">
        <thead>
          <tr>
            <th>User</th>
            <th class="num">Sessions</th>
            <th class="num">Active</th>
            <th class="num">Turns</th>
            <th class="num">Tokens</th>
            <th class="num">Cost</th>
            <th>Last activity</th>
          </tr>
        </thead>
        <tbody>
          {props.userIds.length === 0 && (
            <tr>
              <td colSpan={7} class="empty">
                No user matches.
              </td>
            </tr>
          )}
          {props.userIds.map((id, i) => {
            const s = stats.data?.[i];
            return (
              <tr key={id} data-user={id}>
                <td>
                  <a href={href({ page: 'user', userId: id })} data-testid="user-link">
                    {id}
                  </a>
                </td>
                <td class="num">
                  {s ? formatInt(s.sessions.total) : formatInt(props.sessionsSeen.get(id) ?? 0)}
                </td>
                <td class="num">{s ? formatInt(s.sessions.active) : '…'}</td>
                <td class="num" data-testid="user-turns" data-value={s?.turns ?? ''}>
                  {s ? formatInt(s.turns) : '…'}
                </td>
                <td class="num" data-testid="user-tokens" data-value={s?.total_tokens ?? ''}>
                  {s ? formatInt(s.total_tokens) : '…'}
                </td>
                <td class="num" data-testid="user-cost" data-value={s?.cost_usd ?? ''}>
                  {s ? formatUsd(s.cost_usd) : '…'}
                </td>
                <td>{s ? formatTime(s.last_activity_at) : '…'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

/**
 * Users: search and per-user usage. An admin key lists the tenant's users (from its sessions) with a
 * search box and pages of {@link USERS_PAGE_SIZE}; any key opens a user by id; a user token sees itself.
 */
export function UsersPage(props: { caller: Caller }) {
  const { caller } = props;
  const [scan, setScan] = useState<Scan>(EMPTY_SCAN);
  const [scanError, setScanError] = useState<unknown>(undefined);
  const [scanning, setScanning] = useState(caller.role === 'admin');
  const [search, setSearch] = useState('');
  const [page, setPage] = useState(1);

  const runScan = (from: Scan, signal: AbortSignal) => {
    setScanning(true);
    scanSessions(caller.credential, from, signal).then(
      (result) => {
        setScan(result);
        setScanError(undefined);
        setScanning(false);
      },
      (error: unknown) => {
        if (signal.aborted) return;
        setScanError(error);
        setScanning(false);
      },
    );
  };
  useEffect(() => {
    if (caller.role !== 'admin') return undefined;
    const controller = new AbortController();
    runScan(EMPTY_SCAN, controller.signal);
    return () => controller.abort();
  }, [caller.credential]);

  const matching = useMemo(() => {
    const needle = search.trim().toLowerCase();
    return [...scan.users.keys()].filter((id) => id.toLowerCase().includes(needle)).sort();
  }, [scan, search]);
  const pages = Math.max(1, Math.ceil(matching.length / USERS_PAGE_SIZE));
  const shown = matching.slice((page - 1) * USERS_PAGE_SIZE, page * USERS_PAGE_SIZE);

  if (caller.role === 'user') {
    return (
      <div class="page" data-testid="page-users">
        <h1>Users</h1>
        <Panel title="You">
          <UserRows caller={caller} userIds={[caller.userId ?? '']} sessionsSeen={new Map()} />
        </Panel>
      </div>
    );
  }
  return (
    <div class="page" data-testid="page-users">
      <h1>Users</h1>
      <Panel title="Open a user" actions={<OpenUser />}>
        <p class="muted">Any API key can open a user by id and see their figures and sessions.</p>
      </Panel>
      {caller.role === 'service' ? (
        <Panel title="All users">
          <p class="muted">Listing every user needs an admin key (the operators' list, GET /sessions).</p>
        </Panel>
      ) : (
        <Panel
          title="All users"
          actions={
            <input
              type="search"
              placeholder="search user id"
              value={search}
              onInput={(e) => {
                setSearch(e.currentTarget.value);
                setPage(1);
              }}
              aria-label="search users"
              data-testid="users-search"
            />
          }
        >
          <ErrorBox error={scanError} />
          <p class="muted" data-testid="users-scan">
            {formatInt(scan.users.size)} users in {formatInt(scan.sessionsSeen)} of{' '}
            {formatInt(scan.sessionsTotal)} sessions
            {scanning ? ' · reading sessions…' : ''}
            {scan.next !== null && !scanning && (
              <button type="button" class="link" onClick={() => runScan(scan, new AbortController().signal)}>
                read more sessions
              </button>
            )}
          </p>
          {scan.sessionsSeen === 0 && scanning ? (
            <Loading />
          ) : (
            <>
              <UserRows caller={caller} userIds={shown} sessionsSeen={scan.users} />
              <Pager
                page={page}
                hasPrevious={page > 1}
                hasNext={page < pages}
                onPrevious={() => setPage((p) => p - 1)}
                onNext={() => setPage((p) => p + 1)}
              />
            </>
          )}
        </Panel>
      )}
    </div>
  );
}
