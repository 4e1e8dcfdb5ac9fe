import type { HttpClient } from './http-client';
import { nowMs, summarize, type LatencySummary } from './stats';
import type { TurnPool } from './turns';

/** Options of {@link runIngest}. */
export interface IngestOptions {
  client: HttpClient;
  /** Virtual users: each sends one turn at a time (closed loop), to its own sessions in turn. */
  users: number;
  sessionsPerUser: number;
  /** A session that has this many turns is replaced by a new one of the same user (POST /sessions); 0: never. */
  turnsPerSession: number;
  /** Measured seconds (after the warm-up). */
  durationS: number;
  /** Seconds of load before measuring (JIT, pools, caches). */
  warmupS: number;
  turns: TurnPool;
  /** Projection-lag probes (scenario 2): one every this many ms, at most 4 in flight. 0: none. */
  lagProbeIntervalMs: number;
  /** Called once a second with the turns answered 201 so far in the measured window. */
  onSecond?: (second: number, ok: number, errors: number) => void;
}

/** Requests that did not answer 201: counts by status (`"500"`) or `network`, and a few examples. */
export interface ErrorTally {
  total: number;
  byKind: Record<string, number>;
  examples: string[];
}

/** Scenario 2's figures: ms from a turn's 201 to `GET /sessions/{id}/stats?min_position=` answering 200. */
export interface LagResult {
  probes: number;
  latency: LatencySummary;
  /** Probes answered 503 (not applied within the gateway's STATS_WAIT_MS) or failed otherwise. */
  notAppliedInTime: number;
  failed: number;
  /** After the load stopped: ms until the last turn's position was applied (the backlog), or null if not within 120 s. */
  drainMs: number | null;
}

/** Scenario 1's figures. */
export interface IngestResult {
  users: number;
  /** Sessions created, before and during the load. */
  sessions: number;
  turnsPerSession: number;
  /** `POST /sessions` of the replacement sessions during the measured window: ms. */
  sessionCreateLatency: LatencySummary;
  measuredS: number;
  warmupS: number;
  turnsOk: number;
  turnsPerSecond: number;
  /** ms from sending a turn to its 201, measured turns only. */
  latency: LatencySummary;
  errors: ErrorTally;
  /** Turns per second of each measured second: lowest, median, highest (stability). */
  perSecond: { min: number; median: number; max: number };
  meanBodyBytes: number;
  /** CPU the load generator itself used (this process), % of one core over warm-up and measured window. */
  generatorCpuPercent: number;
  lag: LagResult;
}

interface Probe {
  sessionId: string;
  position: number;
  at: number;
}

const SessionCreated = (body: string): string => {
  const parsed = JSON.parse(body) as { session_id?: unknown; session?: { session_id?: unknown } };
  const id = parsed.session_id ?? parsed.session?.session_id;
  if (typeof id !== 'string') throw new Error(`POST /sessions answered no session_id: ${body.slice(0, 200)}`);
  return id;
};

/**
 * Scenario 1 (with scenario 2's probes running alongside): creates `users × sessionsPerUser` sessions
 * (`bench-user-<n>`), then `users` closed-loop virtual users POST whole turns
 * (`/sessions/{id}/turns`, bodies from `turns` in rotation) for `warmupS + durationS` seconds.
 * Only requests sent after the warm-up count. Throws when the sessions cannot be created; request
 * failures during the load are counted, never thrown.
 */
export async function runIngest(opts: IngestOptions): Promise<IngestResult> {
  const { client } = opts;
  let created = 0;
  const createSession = async (user: number): Promise<string> => {
    const res = await client.send(
      'POST',
      '/sessions',
      Buffer.from(
        JSON.stringify({
          user_id: `bench-user-${user}`,
          title: `bench ${user}.${++created}`,
          created_from: 'bench',
        }),
      ),
    );
    if (res.status !== 201)
      throw new Error(`POST /sessions answered ${res.status}: ${res.body.slice(0, 300)}`);
    return SessionCreated(res.body);
  };
  const sessions: string[][] = await Promise.all(
    Array.from({ length: opts.users }, async (_, u) => {
      const own: string[] = [];
      for (let s = 0; s < opts.sessionsPerUser; s++) own.push(await createSession(u + 1));
      return own;
    }),
  );
  const sessionLatencies: number[] = [];

  const start = nowMs();
  const measureFrom = start + opts.warmupS * 1000;
  const end = measureFrom + opts.durationS * 1000;
  const latencies: number[] = [];
  const errors: ErrorTally = { total: 0, byKind: {}, examples: [] };
  const buckets = new Array<number>(Math.ceil(opts.durationS)).fill(0);
  const bucketErrors = new Array<number>(Math.ceil(opts.durationS)).fill(0);
  let next = 0;
  let lastTurn: Probe | undefined;
  let lastAny: Probe | undefined;
  const fail = (kind: string, detail: string, t0: number) => {
    if (t0 < measureFrom) return;
    errors.total++;
    errors.byKind[kind] = (errors.byKind[kind] ?? 0) + 1;
    if (errors.examples.length < 5) errors.examples.push(`${kind}: ${detail.slice(0, 300)}`);
    const b = Math.floor((nowMs() - measureFrom) / 1000);
    if (b < bucketErrors.length) bucketErrors[b]! += 1;
  };

  const vu = async (own: string[], user: number) => {
    const counts = own.map(() => 0);
    for (let k = 0; nowMs() < end; k++) {
      const slot = k % own.length;
      if (opts.turnsPerSession > 0 && counts[slot]! >= opts.turnsPerSession) {
        const t0 = nowMs();
        try {
          own[slot] = await createSession(user);
          counts[slot] = 0;
          if (t0 >= measureFrom) sessionLatencies.push(nowMs() - t0);
        } catch (error) {
          fail('session', error instanceof Error ? error.message : String(error), t0);
        }
        continue;
      }
      counts[slot]! += 1;
      const sessionId = own[slot]!;
      const body = opts.turns.bodies[next++ % opts.turns.bodies.length]!;
      const t0 = nowMs();
      try {
        const res = await client.send('POST', `/sessions/${sessionId}/turns`, body);
        const t1 = nowMs();
        if (res.status !== 201) {
          fail(String(res.status), res.body, t0);
          continue;
        }
        if (res.position !== undefined) lastAny = { sessionId, position: res.position, at: t1 };
        if (t0 < measureFrom) continue;
        latencies.push(t1 - t0);
        const b = Math.floor((t1 - measureFrom) / 1000);
        if (b < buckets.length) buckets[b]! += 1;
        if (res.position !== undefined) lastTurn = { sessionId, position: res.position, at: t1 };
      } catch (error) {
        fail('network', error instanceof Error ? error.message : String(error), t0);
      }
    }
  };

  // Scenario 2: probes of the projection lag under this load.
  const lags: number[] = [];
  let notAppliedInTime = 0;
  let probeFailures = 0;
  let inFlight = 0;
  let probed: Probe | undefined;
  const probe = async (p: Probe) => {
    inFlight++;
    try {
      for (;;) {
        const res = await client.send('GET', `/sessions/${p.sessionId}/stats?min_position=${p.position}`);
        if (res.status === 200) {
          lags.push(nowMs() - p.at);
          return;
        }
        if (res.status === 503) {
          notAppliedInTime++;
          return;
        }
        // 404: the projection has not seen the session yet (its first event is older, so this is lag too): retry.
        if (res.status !== 404 || nowMs() - p.at > 30_000) {
          probeFailures++;
          return;
        }
      }
    } catch {
      probeFailures++;
    } finally {
      inFlight--;
    }
  };
  const probeTimer =
    opts.lagProbeIntervalMs > 0
      ? setInterval(() => {
          if (lastTurn && lastTurn !== probed && inFlight < 4 && nowMs() < end) {
            probed = lastTurn;
            void probe(lastTurn);
          }
        }, opts.lagProbeIntervalMs)
      : undefined;

  let reported = 0;
  const secondTimer = setInterval(() => {
    const second = Math.floor((nowMs() - measureFrom) / 1000);
    if (second > reported && second <= buckets.length) {
      opts.onSecond?.(second, buckets[second - 1] ?? 0, bucketErrors[second - 1] ?? 0);
      reported = second;
    }
  }, 200);

  const cpu0 = process.cpuUsage();
  await Promise.all(sessions.map((own, u) => vu(own, u + 1)));
  const cpu = process.cpuUsage(cpu0);
  clearInterval(secondTimer);
  if (probeTimer) clearInterval(probeTimer);
  const stoppedAt = nowMs();
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));

  // Backlog: how long until the last turn answered is applied by the projection.
  let drainMs: number | null = null;
  const last = lastAny;
  if (last) {
    while (nowMs() - stoppedAt < 120_000) {
      const res = await client
        .send('GET', `/sessions/${last.sessionId}/stats?min_position=${last.position}`)
        .catch(() => undefined);
      if (res?.status === 200) {
        drainMs = Math.round(nowMs() - stoppedAt);
        break;
      }
      if (res?.status !== 503) await new Promise((r) => setTimeout(r, 50));
    }
  }

  const sortedBuckets = [...buckets].sort((a, b) => a - b);
  const measuredS = opts.durationS;
  return {
    users: opts.users,
    sessions: created,
    turnsPerSession: opts.turnsPerSession,
    sessionCreateLatency: summarize(sessionLatencies),
    measuredS,
    warmupS: opts.warmupS,
    turnsOk: latencies.length,
    turnsPerSecond: Math.round(latencies.length / measuredS),
    latency: summarize(latencies),
    errors,
    perSecond: {
      min: sortedBuckets[0] ?? 0,
      median: sortedBuckets[Math.floor(sortedBuckets.length / 2)] ?? 0,
      max: sortedBuckets[sortedBuckets.length - 1] ?? 0,
    },
    meanBodyBytes: opts.turns.meanBytes,
    generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1e3 / (stoppedAt - start)) * 1000) / 10,
    lag: {
      probes: lags.length + notAppliedInTime + probeFailures,
      latency: summarize(lags),
      notAppliedInTime,
      failed: probeFailures,
      drainMs,
    },
  };
}
