/** Latency summary of one measured series, all in ms (nearest-rank percentiles). */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentile `p` (0..100) of `sorted` (ascending). Returns NaN for an empty series.
 * Source of the method: the nearest-rank definition (NIST/Wikipedia "Percentile"), no interpolation.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summarizes `samples` (ms, any order); every figure is rounded to 0.01 ms; NaN figures for none. */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  const round = (x: number) => Math.round(x * 100) / 100;
  const sum = arr.reduce((a, b) => a + b, 0);
  return {
    count: arr.length,
    min: round(arr[0] ?? Number.NaN),
    mean: round(arr.length ? sum / arr.length : Number.NaN),
    p50: round(percentile(arr, 50)),
    p95: round(percentile(arr, 95)),
    p99: round(percentile(arr, 99)),
    max: round(arr[arr.length - 1] ?? Number.NaN),
  };
}

/** Milliseconds since an arbitrary origin, sub-ms resolution (monotonic). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
