/** Display formats (en-US, UTC): what the page shows, and what the browser test reads back. */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** `1234567` -> `1,234,567`. */
export const formatInt = (value: number): string => integer.format(value);

/**
 * USD: 6 decimals under a cent (one agent call costs fractions of a cent), 4 under $100, 2 above:
 * `$0.000412`, `$0.0123`, `$1,234.50`.
 */
export function formatUsd(value: number): string {
  const size = Math.abs(value);
  const digits = size === 0 ? 2 : size < 0.01 ? 6 : size < 100 ? 4 : 2;
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

/** A share 0..1 as a percentage with one decimal, `—` when unknown (no turns yet). */
export const formatRate = (value: number | null): string =>
  value === null || !Number.isFinite(value) ? '—' : `${(value * 100).toFixed(1)}%`;

/** Milliseconds: `840 ms`, `2.4 s`, `—` when unknown. */
export function formatMs(value: number | null): string {
  if (value === null) return '—';
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

/** An ISO instant as `2026-12-07 01:02:03 UTC`; `—` for null. */
export const formatTime = (iso: string | null): string =>
  iso === null ? '—' : `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;

/** `part / whole`, null when `whole` is 0. */
export const ratio = (part: number, whole: number): number | null => (whole === 0 ? null : part / whole);

/** JSON for a `<pre>` block (tool requests and results, state, event data). */
export const formatJson = (value: unknown): string =>
  value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 2);
