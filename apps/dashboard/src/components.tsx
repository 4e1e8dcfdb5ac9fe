import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { describeError } from './api';
import { formatTime } from './format';

/**
 * One figure with its label. `value` is the raw number (in `data-value`, for tests and copy-paste),
 * `text` what is shown; `testId` names it for the browser test.
 */
export function Figure(props: {
  label: string;
  text: string;
  value?: number | null;
  testId: string;
  hint?: string;
}) {
  return (
    <div class="figure" title={props.hint}>
      <div class="figure-label">{props.label}</div>
      <div
        class={props.text.length > 12 ? 'figure-value figure-value-long' : 'figure-value'}
        data-testid={props.testId}
        data-value={props.value === undefined || props.value === null ? '' : String(props.value)}
      >
        {props.text}
      </div>
    </div>
  );
}

/** An error said in words, never a blank page. */
export function ErrorBox(props: { error: unknown }) {
  if (props.error === undefined) return null;
  return (
    <div class="error" role="alert" data-testid="error">
      {describeError(props.error)}
    </div>
  );
}

/** "Loading…" while nothing has arrived yet. */
export const Loading = () => (
  <div class="loading" data-testid="loading">
    Loading…
  </div>
);

/** A titled panel. */
export function Panel(props: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
  testId?: string;
}) {
  return (
    <section class="panel" data-testid={props.testId}>
      <header class="panel-header">
        <h2>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

/** When the data shown last arrived, and whether a refresh is running. */
export function UpdatedAt(props: { at: Date | undefined; loading: boolean }) {
  return (
    <span class="updated" data-testid="updated-at">
      {props.at === undefined ? '' : `updated ${formatTime(props.at.toISOString())}`}
      {props.loading ? ' · refreshing' : ''}
    </span>
  );
}

/**
 * Previous / next over a cursor-paged API list: `cursors` are the cursors of the pages seen before
 * this one (their last element opens the previous page), `next` the API's `next_cursor`.
 */
export function Pager(props: {
  page: number;
  hasPrevious: boolean;
  hasNext: boolean;
  onPrevious: () => void;
  onNext: () => void;
  label?: string;
}) {
  return (
    <nav class="pager" aria-label={props.label ?? 'pages'}>
      <button
        type="button"
        disabled={!props.hasPrevious}
        onClick={props.onPrevious}
        data-testid="page-previous"
      >
        ← Previous
      </button>
      <span data-testid="page-number">page {props.page}</span>
      <button type="button" disabled={!props.hasNext} onClick={props.onNext} data-testid="page-next">
        Next →
      </button>
    </nav>
  );
}

/** A status badge (`active`, `completed`, `failed`...). */
export const Badge = (props: { status: string }) => (
  <span class={`badge badge-${props.status}`}>{props.status}</span>
);

const HALF_DAY_S = 43_200;

export interface Series {
  label: string;
  values: number[];
  color: string;
  /** Right-hand axis (a second unit, e.g. USD beside tokens). */
  right?: boolean;
  /** Drawn as bars (default a line). */
  bars?: boolean;
  format?: (value: number) => string;
}

/**
 * A time chart (uPlot) of daily values: `days` are UTC days (`YYYY-MM-DD`), one value per day per
 * series. Resizes with its container.
 */
export function DailyChart(props: { days: string[]; series: Series[]; height?: number; testId: string }) {
  const container = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = container.current;
    if (element === null) return undefined;
    const xs = props.days.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);
    const rightSeries = props.series.find((s) => s.right);
    const leftSeries = props.series.find((s) => !s.right);
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 300),
      height: props.height ?? 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      // Half a day either side of the range: a single day is a bar in the middle, not a point on years of axis.
      scales: {
        x: { time: true, range: () => [(xs[0] ?? 0) - HALF_DAY_S, (xs[xs.length - 1] ?? 0) + HALF_DAY_S] },
        left: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        right: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {},
        {
          scale: 'left',
          size: 60,
          values: (_u, ticks) => ticks.map((t) => (leftSeries?.format ?? String)(t)),
        },
        ...(rightSeries
          ? [
              {
                scale: 'right',
                side: 1,
                // Wide enough for `$0.000200` (canvas text past the axis is cut off).
                size: 80,
                grid: { show: false },
                values: (_u: uPlot, ticks: number[]) => ticks.map((t) => (rightSeries.format ?? String)(t)),
              },
            ]
          : []),
      ],
      series: [
        {
          label: 'day',
          value: (_u, ts) => (ts === null ? '' : new Date(ts * 1000).toISOString().slice(0, 10)),
        },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: s.bars ? `${s.color}99` : `${s.color}22`,
          width: s.bars ? 0 : 2,
          ...(s.bars ? { paths: uPlot.paths.bars?.({ size: [0.6, 40] }) } : {}),
          scale: s.right ? 'right' : 'left',
          points: { show: !s.bars },
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : (s.format ?? String)(v)),
        })),
      ],
    };
    const plot = new uPlot(options, [xs, ...props.series.map((s) => s.values)], element);
    const observer = new ResizeObserver(() =>
      plot.setSize({ width: Math.max(element.clientWidth, 300), height: options.height }),
    );
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [props.days, props.series, props.height]);
  return <div class="chart" ref={container} data-testid={props.testId} />;
}

/** Horizontal bars of labelled values (usage by model or agent), plain HTML. */
export function Bars(props: { rows: { label: string; value: number; text: string }[]; testId: string }) {
  const max = Math.max(...props.rows.map((r) => r.value), 0);
  return (
    <div class="bars" data-testid={props.testId}>
      {props.rows.map((row) => (
        <div class="bar-row" key={row.label}>
          <span class="bar-label">{row.label}</span>
          <span class="bar-track">
            <span class="bar" style={{ width: `${max === 0 ? 0 : (row.value / max) * 100}%` }} />
          </span>
          <span class="bar-text">{row.text}</span>
        </div>
      ))}
    </div>
  );
}
