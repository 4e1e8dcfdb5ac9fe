import { useMemo } from 'preact/hooks';
import type { GlobalStatsView, UserStatsView } from '@threadline/contracts';
import { request } from '../api';
import type { Caller } from '../auth';
import { DailyChart, ErrorBox, Figure, Loading, Panel, UpdatedAt, type Series } from '../components';
import { formatInt, formatRate, formatUsd, ratio } from '../format';
import { useLoad } from '../hooks';
import { fetchUsage, perDay, utcDay, type DayUsage } from '../usage';

/** How often the overview refreshes, ms. */
export const OVERVIEW_POLL_MS = 5000;
const RANGE_DAYS = 30;

/** The figures both kinds of answer have: the tenant's (`GET /sessions/stats`) or one user's. */
type Totals = Pick<
  GlobalStatsView,
  | 'sessions'
  | 'turns'
  | 'turns_failed'
  | 'total_tokens_in'
  | 'total_tokens_out'
  | 'total_tokens_cached'
  | 'total_tokens'
  | 'cost_usd'
> & { users?: number; projection_lag?: number };

interface OverviewData {
  totals: Totals;
  days: DayUsage[];
}

async function loadOverview(caller: Caller, signal: AbortSignal): Promise<OverviewData> {
  const from = utcDay(-(RANGE_DAYS - 1));
  const to = utcDay();
  const totals: Promise<Totals> =
    caller.role === 'user'
      ? request<UserStatsView>(`/users/${encodeURIComponent(caller.userId ?? '')}/stats`, caller.credential, {
          signal,
        })
      : request<GlobalStatsView>('/sessions/stats', caller.credential, { signal });
  const usage = fetchUsage(caller.credential, 'day', from, to, signal);
  const [t, u] = await Promise.all([totals, usage]);
  return { totals: t, days: perDay(u.rows, from, to) };
}

/**
 * The overview: sessions by status, turns, tokens, cost, error rate and prompt-cache hit rate (the
 * tenant's for an API key, the user's for a user token), and tokens and cost per day over the last
 * 30 days (UTC). Refreshes every {@link OVERVIEW_POLL_MS} without reloading the page.
 */
export function OverviewPage(props: { caller: Caller }) {
  const { caller } = props;
  const loaded = useLoad((signal) => loadOverview(caller, signal), [caller.credential], OVERVIEW_POLL_MS);
  const series = useMemo<Series[]>(
    () =>
      loaded.data === undefined
        ? []
        : [
            {
              label: 'tokens',
              values: loaded.data.days.map((d) => d.total_tokens),
              color: '#2563eb',
              bars: true,
              format: formatInt,
            },
            {
              label: 'cost (USD)',
              values: loaded.data.days.map((d) => d.cost_usd),
              color: '#d97706',
              right: true,
              format: formatUsd,
            },
          ],
    [loaded.data],
  );
  const days = useMemo(() => loaded.data?.days.map((d) => d.day) ?? [], [loaded.data]);
  if (loaded.data === undefined)
    return loaded.error === undefined ? <Loading /> : <ErrorBox error={loaded.error} />;
  const { totals } = loaded.data;
  const errorRate = ratio(totals.turns_failed, totals.turns);
  const cacheRate = ratio(totals.total_tokens_cached, totals.total_tokens_in);
  const active = loaded.data.days.filter((d) => d.total_tokens > 0 || d.turns > 0).reverse();
  return (
    <div class="page" data-testid="page-overview">
      <div class="page-title">
        <h1>Overview{caller.role === 'user' ? ` of ${caller.userId ?? ''}` : ''}</h1>
        <UpdatedAt at={loaded.at} loading={loaded.loading} />
      </div>
      <ErrorBox error={loaded.error} />
      <Panel title="Sessions">
        <div class="figures">
          <Figure
            label="Active"
            testId="sessions-active"
            value={totals.sessions.active}
            text={formatInt(totals.sessions.active)}
          />
          <Figure
            label="Ended"
            testId="sessions-ended"
            value={totals.sessions.ended}
            text={formatInt(totals.sessions.ended)}
          />
          <Figure
            label="Expired"
            testId="sessions-expired"
            value={totals.sessions.expired}
            text={formatInt(totals.sessions.expired)}
          />
          <Figure
            label="Total"
            testId="sessions-total"
            value={totals.sessions.total}
            text={formatInt(totals.sessions.total)}
          />
          {totals.users !== undefined && (
            <Figure label="Users" testId="users" value={totals.users} text={formatInt(totals.users)} />
          )}
        </div>
      </Panel>
      <Panel title="Turns, tokens and cost">
        <div class="figures">
          <Figure label="Turns" testId="turns" value={totals.turns} text={formatInt(totals.turns)} />
          <Figure
            label="Failed turns"
            testId="turns-failed"
            value={totals.turns_failed}
            text={formatInt(totals.turns_failed)}
          />
          <Figure
            label="Error rate"
            testId="error-rate"
            value={errorRate}
            text={formatRate(errorRate)}
            hint="failed turns / turns"
          />
          <Figure
            label="Tokens"
            testId="tokens-total"
            value={totals.total_tokens}
            text={formatInt(totals.total_tokens)}
          />
          <Figure
            label="Tokens in"
            testId="tokens-in"
            value={totals.total_tokens_in}
            text={formatInt(totals.total_tokens_in)}
          />
          <Figure
            label="Tokens out"
            testId="tokens-out"
            value={totals.total_tokens_out}
            text={formatInt(totals.total_tokens_out)}
          />
          <Figure label="Cost" testId="cost" value={totals.cost_usd} text={formatUsd(totals.cost_usd)} />
          <Figure
            label="Cache hit rate"
            testId="cache-hit-rate"
            value={cacheRate}
            text={formatRate(cacheRate)}
            hint="prompt cache: cached input tokens / input tokens"
          />
        </div>
      </Panel>
      <Panel title={`Tokens and cost per day (last ${RANGE_DAYS} days, UTC)`}>
        <DailyChart days={days} series={series} testId="chart-per-day" />
        <table class="table" data-testid="per-day-table">
          <thead>
            <tr>
              <th>Day</th>
              <th class="num" title="turns with at least one agent response">
                Turns answered
              </th>
              <th class="num">Agent calls</th>
              <th class="num">Tokens</th>
              <th class="num">Cost</th>
            </tr>
          </thead>
          <tbody>
            {active.length === 0 && (
              <tr>
                <td colSpan={5} class="empty">
                  No usage in these days.
                </td>
              </tr>
            )}
            {active.map((d) => (
              <tr key={d.day} data-day={d.day}>
                <td>{d.day}</td>
                <td class="num">{formatInt(d.turns)}</td>
                <td class="num">{formatInt(d.calls)}</td>
                <td class="num" data-testid="day-tokens" data-value={d.total_tokens}>
                  {formatInt(d.total_tokens)}
                </td>
                <td class="num" data-testid="day-cost" data-value={d.cost_usd}>
                  {formatUsd(d.cost_usd)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Panel>
    </div>
  );
}
