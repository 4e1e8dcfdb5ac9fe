import type { UsageRow, UsageStatsView } from '@threadline/contracts';
import { request, withQuery } from './api';

/** One UTC day of usage, summed over models. Tokens in tokens, cost in USD. */
export interface DayUsage {
  day: string;
  turns: number;
  calls: number;
  total_tokens: number;
  cost_usd: number;
}

const DAY_MS = 86_400_000;

/** Every UTC day from `from` to `to` (both `YYYY-MM-DD`, inclusive). */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

/** The UTC day `offsetDays` from now (`-29`: 29 days ago). */
export const utcDay = (offsetDays = 0, now = Date.now()): string =>
  new Date(now + offsetDays * DAY_MS).toISOString().slice(0, 10);

/**
 * `GET /stats/usage?group_by=day` rows (one per day and model) summed per day, with a zero row for
 * every day of the range without usage, oldest first.
 */
export function perDay(rows: readonly UsageRow[], from: string, to: string): DayUsage[] {
  const byDay = new Map<string, DayUsage>(
    daysBetween(from, to).map((day) => [day, { day, turns: 0, calls: 0, total_tokens: 0, cost_usd: 0 }]),
  );
  for (const row of rows) {
    if (row.day === undefined) continue;
    const day = byDay.get(row.day) ?? { day: row.day, turns: 0, calls: 0, total_tokens: 0, cost_usd: 0 };
    // A turn answered by two models counts in both rows: the day's turns are at most the sum.
    day.turns += row.turns;
    day.calls += row.calls;
    day.total_tokens += row.total_tokens;
    day.cost_usd += row.cost_usd;
    byDay.set(row.day, day);
  }
  return [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day));
}

/** `GET /stats/usage` over the UTC days `from`..`to` (inclusive), grouped by `groupBy`. */
export const fetchUsage = (
  credential: string,
  groupBy: 'day' | 'model' | 'agent',
  from: string,
  to: string,
  signal?: AbortSignal,
): Promise<UsageStatsView> =>
  request<UsageStatsView>(withQuery('/stats/usage', { group_by: groupBy, from, to }), credential, { signal });
