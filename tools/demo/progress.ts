import { Presets, SingleBar } from 'cli-progress';
import type { ImportProgress } from './importer';

/** Shows an import's progress; `stop()` ends the display (call once, at the end). */
export interface ProgressDisplay {
  update(progress: ImportProgress): void;
  stop(): void;
}

/** Plain lines at most this often when the output is not a terminal, ms. */
export const PLAIN_INTERVAL_MS = 2000;

/** Turns per second since `startedMs` (a `performance.now()` reading), one decimal. */
function rate(count: number, startedMs: number): string {
  const seconds = (performance.now() - startedMs) / 1000;
  return seconds > 0 ? (count / seconds).toFixed(1) : '0.0';
}

/**
 * On a TTY, a cli-progress bar on `stream` (dialogs done / total, turns, turns/s, errors); otherwise
 * a plain line at most every {@link PLAIN_INTERVAL_MS} and one at the end, so logs stay readable.
 */
export function createProgress(total: number, stream: NodeJS.WriteStream): ProgressDisplay {
  const started = performance.now();
  if (stream.isTTY) {
    const bar = new SingleBar(
      {
        stream,
        format:
          'import [{bar}] {value}/{total} dialogs | {turns} turns | {tps} turns/s | {errors} errors | {duration_formatted}',
        hideCursor: true,
        fps: 10,
      },
      Presets.shades_classic,
    );
    bar.start(total, 0, { turns: 0, tps: '0.0', errors: 0 });
    return {
      update: (p) => bar.update(p.done, { turns: p.turns, tps: rate(p.turns, started), errors: p.errors }),
      stop: () => bar.stop(),
    };
  }
  let last = started;
  let latest: ImportProgress = { done: 0, total, turns: 0, toolCalls: 0, errors: 0 };
  const line = (p: ImportProgress): void => {
    stream.write(
      `import: ${p.done}/${p.total} dialogs, ${p.turns} turns, ${rate(p.turns, started)} turns/s, ${p.errors} errors\n`,
    );
  };
  return {
    update: (p) => {
      latest = p;
      const now = performance.now();
      if (now - last >= PLAIN_INTERVAL_MS) {
        last = now;
        line(p);
      }
    },
    stop: () => line(latest),
  };
}
