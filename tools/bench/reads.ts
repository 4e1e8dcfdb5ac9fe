import { z } from 'zod';
import { Db } from '@threadline/event-store';
import type { HttpClient } from './http-client';
import { nowMs, summarize, type LatencySummary } from './stats';
import { cpuMsPerUnit, startSampler } from './resources';

/** One read series of scenario 7: `requests` measured requests from `clients` closed-loop clients. */
export interface ReadSeries {
  /** The route, e.g. `GET /sessions/{id}/turns?last=20`. */
  route: string;
  clients: number;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  /** ms from sending to the whole answer, 200s only. */
  latency: LatencySummary;
  /** Answers other than 200, by status (or `network`). */
  errors: Record<string, number>;
  /** 200 answers whose content disagrees with the dataset (turn count, session total, interactions). */
  wrong: number;
  /** A few of the errors and wrong answers. */
  examples: string[];
  /**
   * CPU time (user + system) spent during the measured requests over their number, ms per request:
   * by each service of `processes`, by every `postgres` process, by `nats-server`, by this load
   * generator, and by all of them (`all`). Absent when no processes were given.
   */
  cpuMsPerRequest?: Record<string, number>;
}

/** Scenario 7's figures: the dataset read and one series per route. */
export interface ReadsResult {
  dataset: { sessions: number; turns: number; users: number };
  warmup: number;
  series: ReadSeries[];
}

interface Target {
  sessionId: string;
  userId: string;
  turnCount: number;
  /** Sessions of the user (the listing's `total`). */
  userSessions: number;
}

const SampleRow = z.object({
  session_id: z.string(),
  user_id: z.string(),
  turn_count: z.coerce.number().int(),
  user_sessions: z.coerce.number().int(),
});
const DatasetRow = z.object({
  sessions: z.coerce.number().int(),
  turns: z.coerce.number().int(),
  users: z.coerce.number().int(),
});
// Only what the checks read: parsing the whole answers would take the services' CPU from them.
const TurnsAnswer = z.looseObject({ turns: z.array(z.unknown()) });
const SessionsAnswer = z.looseObject({ total: z.number().int(), sessions: z.array(z.unknown()) });
const StatsAnswer = z.looseObject({ interactions: z.number().int() });

/** mulberry32: a small seeded PRNG (deterministic picks across runs), floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Route {
  route: string;
  path: (t: Target) => string;
  /** Null when the answer matches the dataset, else what is wrong. */
  check: (t: Target, body: string) => string | null;
}

const ROUTES: Route[] = [
  {
    route: 'GET /users/{id}/sessions',
    path: (t) => `/users/${encodeURIComponent(t.userId)}/sessions`,
    check: (t, body) => {
      const a = SessionsAnswer.parse(JSON.parse(body));
      const page = Math.min(50, t.userSessions);
      return a.total === t.userSessions && a.sessions.length === page
        ? null
        : `user ${t.userId}: total ${a.total} (${a.sessions.length} on the page), expected ${t.userSessions} (${page})`;
    },
  },
  {
    route: 'GET /sessions/{id}/turns?last=20',
    path: (t) => `/sessions/${t.sessionId}/turns?last=20`,
    check: (t, body) => {
      const n = TurnsAnswer.parse(JSON.parse(body)).turns.length;
      const expected = Math.min(20, t.turnCount);
      return n === expected ? null : `session ${t.sessionId}: ${n} turns, expected ${expected}`;
    },
  },
  {
    route: 'GET /sessions/{id}/stats',
    path: (t) => `/sessions/${t.sessionId}/stats`,
    check: (t, body) => {
      const n = StatsAnswer.parse(JSON.parse(body)).interactions;
      return n === t.turnCount ? null : `session ${t.sessionId}: ${n} interactions, expected ${t.turnCount}`;
    },
  },
];

/**
 * Scenario 7 over HTTP through the running stack: for each route (`GET /users/{id}/sessions`,
 * `GET /sessions/{id}/turns?last=20`, `GET /sessions/{id}/stats`) and each count of `clients`, one
 * series: `warmup` unmeasured requests, then `requests` measured ones from that many closed-loop
 * clients, each to a session (or its user) picked at random (seeded) among up to 20,000 sampled from
 * the `sessions` read model of tenant `default`. Every 200 is checked against the read model (listing
 * total, `min(20, turn_count)` turns, `interactions` = `turn_count`). Failed requests are counted,
 * never thrown; throws when the database has no sessions.
 */
export async function runReads(opts: {
  client: HttpClient;
  databaseUrl: string;
  requests: number;
  /**
   * Closed-loop clients of each series, e.g. `[1, 4]`: one client shows a read's own latency at size;
   * several, on this 2-core machine, its latency while the machine is saturated (clients / req/s).
   */
  clients: readonly number[];
  warmup: number;
  seed?: number;
  /** The stack's services, for the CPU each spends per request (`ReadSeries.cpuMsPerRequest`). */
  processes?: readonly { name: string; pid: number }[];
}): Promise<ReadsResult> {
  const db = await Db.connect({ url: opts.databaseUrl, poolSize: 1, applicationName: 'threadline-bench' });
  let targets: Target[];
  let dataset: ReadsResult['dataset'];
  try {
    dataset = DatasetRow.parse(
      (
        await db.query(
          `SELECT (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM turns) AS turns,
                  (SELECT count(DISTINCT user_id) FROM sessions) AS users`,
        )
      )[0],
    );
    // setseed: the same sample on the same dataset.
    await db.query('SELECT setseed(0.42)');
    const rows = await db.query(
      `WITH sample AS (
         SELECT session_id, user_id, turn_count FROM sessions
         WHERE tenant_id = 'default' AND user_id IS NOT NULL ORDER BY random() LIMIT 20000)
       SELECT s.session_id, s.user_id, s.turn_count, u.n AS user_sessions
       FROM sample s
       JOIN (SELECT user_id, count(*) AS n FROM sessions
             WHERE tenant_id = 'default' AND user_id IN (SELECT user_id FROM sample) GROUP BY user_id) u
         USING (user_id)`,
    );
    targets = rows.map((r) => {
      const s = SampleRow.parse(r);
      return {
        sessionId: s.session_id,
        userId: s.user_id,
        turnCount: s.turn_count,
        userSessions: s.user_sessions,
      };
    });
  } finally {
    await db.close();
  }
  if (targets.length === 0) throw new Error('scenario 7: no sessions with a user in the database');

  const random = prng(opts.seed ?? 7);
  const series: ReadSeries[] = [];
  for (const route of ROUTES) {
    for (const clients of opts.clients) {
      const latencies: number[] = [];
      const errors: Record<string, number> = {};
      const examples: string[] = [];
      let wrong = 0;
      let sent = 0;
      const total = opts.warmup + opts.requests;
      let t0 = nowMs();
      let measuredFrom = Number.NaN;
      let sampler: ReturnType<typeof startSampler> | undefined;
      let cpu0 = process.cpuUsage();
      const startCounting = () => {
        measuredFrom = nowMs();
        if (opts.processes) sampler = startSampler(opts.processes);
        cpu0 = process.cpuUsage();
      };
      if (opts.warmup === 0) startCounting();
      const note = (line: string) => {
        if (examples.length < 5) examples.push(line.slice(0, 300));
      };
      const worker = async () => {
        while (sent < total) {
          const index = sent++;
          const measured = index >= opts.warmup;
          if (index === opts.warmup && opts.warmup > 0) startCounting();
          const target = targets[Math.floor(random() * targets.length)]!;
          const start = nowMs();
          try {
            const res = await opts.client.send('GET', route.path(target));
            const elapsed = nowMs() - start;
            if (!measured) continue;
            if (res.status !== 200) {
              errors[String(res.status)] = (errors[String(res.status)] ?? 0) + 1;
              note(`${res.status}: ${res.body}`);
              continue;
            }
            latencies.push(elapsed);
            let problem: string | null;
            try {
              problem = route.check(target, res.body);
            } catch (error) {
              problem = `unreadable answer: ${error instanceof Error ? error.message : String(error)}`;
            }
            if (problem !== null) {
              wrong++;
              note(problem);
            }
          } catch (error) {
            if (!measured) continue;
            errors['network'] = (errors['network'] ?? 0) + 1;
            note(`network: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: clients }, worker));
      t0 = Number.isNaN(measuredFrom) ? t0 : measuredFrom;
      const seconds = (nowMs() - t0) / 1000;
      const usage = sampler?.stop();
      const generator = process.cpuUsage(cpu0);
      let cpuMsPerRequest: Record<string, number> | undefined;
      if (usage) {
        const perRequest = (cpuPercent: number) => cpuMsPerUnit(cpuPercent, opts.requests / seconds);
        const generatorPercent = ((generator.user + generator.system) / 1000 / (seconds * 1000)) * 100;
        const entries: [string, number][] = [
          ...usage.processes.map((p): [string, number] => [p.name, perRequest(p.cpuPercent)]),
          ['postgres', perRequest(usage.machine.postgresCpuPercent)],
          ['nats-server', perRequest(usage.machine.natsCpuPercent)],
          ['load generator', perRequest(generatorPercent)],
        ];
        entries.push(['all', Math.round(entries.reduce((sum, [, ms]) => sum + ms, 0) * 1000) / 1000]);
        cpuMsPerRequest = Object.fromEntries(entries);
      }
      series.push({
        route: route.route,
        clients,
        requests: opts.requests,
        seconds: Math.round(seconds * 100) / 100,
        requestsPerSecond: Math.round(opts.requests / seconds),
        latency: summarize(latencies),
        errors,
        wrong,
        examples,
        ...(cpuMsPerRequest ? { cpuMsPerRequest } : {}),
      });
    }
  }
  return { dataset, warmup: opts.warmup, series };
}
