import { useMemo, useState } from 'preact/hooks';
import type { UsageRow } from '@threadline/contracts';
import type { Caller } from '../auth';
import { Bars, DailyChart, ErrorBox, Loading, Panel, type Series } from '../components';
import { formatInt, formatMs, formatUsd } from '../format';
import { useLoad } from '../hooks';
import { fetchUsage, perDay, utcDay } from '../usage';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function UsageTable(props: {
  rows: UsageRow[];
  label: string;
  keyOf: (row: UsageRow) => string;
  testId: string;
}) {
  return (
    <table class="table" data-testid={props.testId}>
      <thead>
        <tr>
          <th>{props.label}</th>
          <th class="num">Turns</th>
          <th class="num">Calls</th>
          <th class="num">Tokens in</th>
          <th class="num">Tokens out</th>
          <th class="num">Tokens</th>
          <th class="num">Cost</th>
          <th class="num">Avg time</th>
          <th class="num">p95 time</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.length === 0 && (
          <tr>
            <td colSpan={9} class="empty">
              No usage in this range.
            </td>
          </tr>
        )}
        {props.rows.map((r) => (
          <tr key={props.keyOf(r)} data-key={props.keyOf(r)}>
            <td>{props.keyOf(r)}</td>
            <td class="num">{formatInt(r.turns)}</td>
            <td class="num" data-testid="usage-calls" data-value={r.calls}>
              {formatInt(r.calls)}
            </td>
            <td class="num">{formatInt(r.total_tokens_in)}</td>
            <td class="num">{formatInt(r.total_tokens_out)}</td>
            <td class="num" data-testid="usage-tokens" data-value={r.total_tokens}>
              {formatInt(r.total_tokens)}
            </td>
            <td class="num" data-testid="usage-cost" data-value={r.cost_usd}>
              {formatUsd(r.cost_usd)}
            </td>
            <td class="num">{formatMs(r.avg_execution_time_ms)}</td>
            <td class="num">{formatMs(r.p95_execution_time_ms)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Usage over a chosen range of UTC days (`GET /stats/usage`, `from`/`to` inclusive days): per day
 * (chart), by model and by agent (bars and tables): turns, agent calls, tokens, cost, execution time.
 * A user token sees its own usage only (the API scopes it).
 */
export function UsagePage(props: { caller: Caller }) {
  const { caller } = props;
  const [range, setRange] = useState({ from: utcDay(-29), to: utcDay() });
  const [draft, setDraft] = useState(range);
  const usage = useLoad(
    async (signal) => {
      const [day, model, agent] = await Promise.all([
        fetchUsage(caller.credential, 'day', range.from, range.to, signal),
        fetchUsage(caller.credential, 'model', range.from, range.to, signal),
        fetchUsage(caller.credential, 'agent', range.from, range.to, signal),
      ]);
      return { days: perDay(day.rows, range.from, range.to), model: model.rows, agent: agent.rows };
    },
    [caller.credential, range.from, range.to],
  );
  const series = useMemo<Series[]>(
    () =>
      usage.data === undefined
        ? []
        : [
            {
              label: 'agent calls',
              values: usage.data.days.map((d) => d.calls),
              color: '#059669',
              bars: true,
              format: formatInt,
            },
            {
              label: 'tokens',
              values: usage.data.days.map((d) => d.total_tokens),
              color: '#2563eb',
              right: true,
              format: formatInt,
            },
          ],
    [usage.data],
  );
  const days = useMemo(() => usage.data?.days.map((d) => d.day) ?? [], [usage.data]);
  const invalid = !DAY.test(draft.from) || !DAY.test(draft.to) || draft.from > draft.to;
  const modelName = (r: UsageRow) => r.model ?? '(no model)';
  const agentName = (r: UsageRow) => r.agent_name ?? '';
  return (
    <div class="page" data-testid="page-usage">
      <h1>Usage</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (!invalid) setRange(draft);
        }}
      >
        <label>
          From{' '}
          <input
            type="date"
            value={draft.from}
            onInput={(e) => setDraft({ ...draft, from: e.currentTarget.value })}
            data-testid="usage-from"
          />
        </label>
        <label>
          To{' '}
          <input
            type="date"
            value={draft.to}
            onInput={(e) => setDraft({ ...draft, to: e.currentTarget.value })}
            data-testid="usage-to"
          />
        </label>
        <button type="submit" disabled={invalid} data-testid="usage-apply">
          Show
        </button>
        {invalid && <span class="error-text">from must be a day on or before to</span>}
      </form>
      <ErrorBox error={usage.error} />
      {usage.data === undefined ? (
        usage.error === undefined && <Loading />
      ) : (
        <>
          <Panel title={`Per day, ${range.from} to ${range.to} (UTC)`}>
            <DailyChart days={days} series={series} testId="usage-chart" />
          </Panel>
          <Panel title="By model" testId="usage-by-model">
            <Bars
              testId="bars-model"
              rows={usage.data.model.map((r) => ({
                label: modelName(r),
                value: r.cost_usd,
                text: formatUsd(r.cost_usd),
              }))}
            />
            <UsageTable rows={usage.data.model} label="Model" keyOf={modelName} testId="usage-model-table" />
          </Panel>
          <Panel title="By agent" testId="usage-by-agent">
            <Bars
              testId="bars-agent"
              rows={usage.data.agent.map((r) => ({
                label: agentName(r),
                value: r.calls,
                text: `${formatInt(r.calls)} calls`,
              }))}
            />
            <UsageTable rows={usage.data.agent} label="Agent" keyOf={agentName} testId="usage-agent-table" />
          </Panel>
        </>
      )}
    </div>
  );
}
