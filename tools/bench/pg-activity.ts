import { Db } from '@threadline/event-store';

/** What the database's connections were doing, from samples of `pg_stat_activity`. */
export interface PgActivity {
  samples: number;
  /** Share of sampled connection-samples per `state / wait_event_type:wait_event`, most frequent first (%). */
  waits: { what: string; percent: number }[];
  /** The statements most often seen active or waiting (first 120 characters), with their share (%). */
  statements: { query: string; percent: number }[];
}

/**
 * Samples `pg_stat_activity` of database `name` every `intervalMs` (default 100) until `stop()`:
 * where the services' connections spend their time (running, waiting on a lock, on WAL, idle in a
 * transaction while the service computes, ...). Connections of the sampler itself are excluded.
 */
export async function startPgActivity(opts: { url: string; name: string; intervalMs?: number }) {
  const db = await Db.connect({ url: opts.url, poolSize: 1, applicationName: 'threadline-bench-activity' });
  const waits = new Map<string, number>();
  const statements = new Map<string, number>();
  let samples = 0;
  let rows = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const found = await db
        .query<{ state: string | null; wait: string | null; query: string | null }>(
          `SELECT state, wait_event_type || ':' || wait_event AS wait, left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS query
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
             AND application_name <> 'threadline-bench-activity'`,
          [opts.name],
        )
        .catch(() => []);
      samples++;
      for (const r of found) {
        if (r.state === 'idle') continue;
        rows++;
        const what = `${r.state ?? '?'} / ${r.wait ?? 'on CPU'}`;
        waits.set(what, (waits.get(what) ?? 0) + 1);
        if (r.query) statements.set(r.query, (statements.get(r.query) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
    }
  })();
  const top = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([what, c]) => ({ what, percent: Math.round((c / Math.max(1, rows)) * 1000) / 10 }));
  return {
    async stop(): Promise<PgActivity> {
      running = false;
      await loop;
      await db.close();
      return {
        samples,
        waits: top(waits, 12),
        statements: top(statements, 12).map(({ what, percent }) => ({ query: what, percent })),
      };
    },
  };
}
