import { jetstream } from '@nats-io/jetstream';
import { connectNats } from '@threadline/messaging';
import { type Scenario } from './faults';
import { LoadGenerator, type LoadOptions, type LoadStats, sleep } from './load';
import { type ChaosStack, PREFIX } from './stack';
import { deadLetterHead, type Verdict, verify } from './verify';

/** Load shape and timings shared by every scenario. */
export interface RunSettings {
  workers: number;
  rate: number;
  turnsPerSession: number;
  deleteEvery: number;
  /** Load before the fault, ms. */
  warmupMs: number;
  /** Load after the fault was lifted, ms. */
  afterMs: number;
  giveUpMs: number;
  requestTimeoutMs: number;
  quiesceMs: number;
}

/** One row of the table. */
export interface ScenarioResult {
  id: string;
  title: string;
  fault: string;
  verdict: Verdict | undefined;
  /** Seconds from the fault's start until writes succeeded again (first ack after the last failure); null: never. */
  recoverySeconds: number | null;
  /** Seconds the fault lasted (from its start until it was lifted). */
  faultSeconds: number;
  /** The longest an acknowledged write took from its first attempt to its 2xx (retries included), seconds. */
  longestWriteSeconds: number;
  load: Omit<LoadStats, 'failureTimes' | 'ackTimes'> & { durationSeconds: number; ackedPerSecond: number };
  /** Instances that exited without the harness asking, with their last output. */
  crashed: string[];
  pass: boolean;
  problems: string[];
}

/** Poison messages published so far (each dead-lettered on purpose; the stream holds them besides the events). */
let poisonSent = 0;

/** Publishes a message no consumer can parse on a subject consumers follow: it must be dead-lettered, nothing else. */
async function publishPoison(natsUrl: string, marker: string): Promise<void> {
  const nc = await connectNats({ NATS_URL: natsUrl }, 'threadline-chaos-poison');
  try {
    await jetstream(nc).publish(
      `${PREFIX}.evt.conversation.TurnLogged.v1`,
      JSON.stringify({ poison: marker, note: 'sent on purpose by the chaos harness' }),
      { msgID: marker },
    );
    poisonSent++;
  } finally {
    await nc.close();
  }
}

/** Recovery: from `faultStartMs` (load clock), the first ack after the last failure; 0 when nothing failed. */
export function recoveryOf(stats: LoadStats, faultStartMs: number): number | null {
  const failures = stats.failureTimes.filter((t) => t >= faultStartMs);
  if (failures.length === 0) return 0;
  const lastFailure = Math.max(...failures);
  const ack = stats.ackTimes.find((t) => t > lastFailure);
  return ack === undefined ? null : Math.max(0, (ack - faultStartMs) / 1000);
}

const loadSummary = (load: LoadGenerator, durationMs: number): ScenarioResult['load'] => {
  const { failureTimes: _f, ackTimes, ...rest } = load.stats;
  return {
    ...rest,
    durationSeconds: durationMs / 1000,
    ackedPerSecond: Math.round((ackTimes.length / durationMs) * 1000),
  };
};

/** "every instance of X exited" when some service has no instance running (nothing will catch up), else undefined. */
function deadServices(stack: ChaosStack): string | undefined {
  const names = [...new Set(stack.instances.map((i) => i.name))];
  const dead = names.filter((n) => stack.of(n).every((i) => i.proc.exited));
  return dead.length > 0 ? `every instance of ${dead.join(', ')} exited` : undefined;
}

/** Launches every instance that died without the harness asking; answers what died (with its last output). */
export async function heal(stack: ChaosStack, log: (line: string) => void): Promise<string[]> {
  const dead = stack.crashed();
  const lines = dead.map(
    (i) => `${i.name}#${i.slot} exited: ${stack.tail(i, 800).replace(/\s+/g, ' ').trim()}`,
  );
  for (const i of dead) {
    log(`healing: ${i.name}#${i.slot} had exited; starting it again`);
    stack.relaunch(i);
  }
  if (dead.length > 0 || lines.length > 0) await stack.waitReady(Date.now() + 120_000).catch(() => undefined);
  return lines;
}

function loadOptions(stack: ChaosStack, settings: RunSettings, tag: string, rate: number): LoadOptions {
  return {
    gatewayUrls: stack.gatewayUrls,
    apiKey: stack.apiKey,
    workers: settings.workers,
    rate,
    turnsPerSession: settings.turnsPerSession,
    deleteEvery: settings.deleteEvery,
    tag,
    giveUpMs: settings.giveUpMs,
    requestTimeoutMs: settings.requestTimeoutMs,
  };
}

/**
 * Runs one scenario: load for `warmupMs`, the fault (which lifts itself), load for `afterMs`, the
 * load stopped (writes in flight retry until acknowledged or given up), then {@link verify}. An
 * instance that died on its own is reported (the scenario fails) and started again afterwards, so
 * the next scenario starts whole.
 */
export async function runScenario(
  stack: ChaosStack,
  scenario: Scenario,
  index: number,
  settings: RunSettings,
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const tag = `c${String(index + 1).padStart(2, '0')}-${scenario.id}`;
  const floor = await deadLetterHead(stack.db);
  const poisonMarker = `chaos-poison-${tag}`;
  await publishPoison(stack.nats.url, poisonMarker);
  const load = new LoadGenerator(loadOptions(stack, settings, tag, settings.rate));
  load.start();
  log(`${scenario.id}: load running (${settings.workers} clients, ${settings.rate || 'unbounded'} req/s)`);
  await sleep(settings.warmupMs);
  const faultStart = Date.now() - load.startedAt;
  let fault: string;
  try {
    log(`${scenario.id}: fault: ${scenario.title}`);
    fault = await scenario.fault(stack, log);
  } catch (error) {
    fault = `the fault could not be made: ${String(error)}`;
  }
  const faultSeconds = (Date.now() - load.startedAt - faultStart) / 1000;
  log(`${scenario.id}: ${fault}; load continues ${settings.afterMs / 1000} s`);
  await sleep(settings.afterMs);
  await load.stop();
  const durationMs = Date.now() - load.startedAt;
  const crashed = stack
    .crashed()
    .map((i) => `${i.name}#${i.slot} exited: ${stack.tail(i, 800).replace(/\s+/g, ' ').trim()}`);
  log(`${scenario.id}: load stopped (${load.writes.length} writes); verifying`);
  let verdict: Verdict | undefined;
  const problems: string[] = [];
  try {
    verdict = await verify({
      db: stack.db,
      natsUrl: stack.nats.url,
      gatewayUrls: stack.gatewayUrls,
      apiKey: stack.apiKey,
      tag,
      writes: load.writes,
      deadLetterFloor: floor,
      poisonMarker,
      extraStreamMessages: poisonSent,
      quiesceMs: settings.quiesceMs,
      log: (line) => log(`${scenario.id}: ${line}`),
      hopeless: () => deadServices(stack),
    });
    problems.push(...verdict.problems);
  } catch (error) {
    problems.push(`verification failed: ${String(error)}`);
  }
  if (crashed.length > 0)
    problems.push(`instances exited on their own: ${crashed.map((c) => c.slice(0, 300)).join(' | ')}`);
  if (fault.startsWith('the fault could not')) problems.push(fault);
  await heal(stack, log);
  if (crashed.length > 0 && verdict) {
    // What a manual restart would have recovered: the same checks once the dead instances run again.
    const again = await verify({
      db: stack.db,
      natsUrl: stack.nats.url,
      gatewayUrls: stack.gatewayUrls,
      apiKey: stack.apiKey,
      tag,
      writes: load.writes,
      deadLetterFloor: floor,
      poisonMarker,
      extraStreamMessages: poisonSent,
      quiesceMs: settings.quiesceMs,
      log: (line) => log(`${scenario.id} (after restart): ${line}`),
    }).catch(() => undefined);
    if (again)
      problems.push(
        `after the harness restarted the dead instances (not part of the pass): lost ${again.lost}, duplicated ${again.duplicated + again.duplicatedUnacknowledged}, projected ${again.projected}/${again.projectable}, quiescent ${again.quiescent}`,
      );
  }
  const recoverySeconds = recoveryOf(load.stats, faultStart);
  if (recoverySeconds === null) problems.push('writes never succeeded again after the fault');
  return {
    id: scenario.id,
    title: scenario.title,
    fault,
    verdict,
    recoverySeconds,
    faultSeconds,
    longestWriteSeconds: load.writes.reduce((m, w) => Math.max(m, w.latencyMs ?? 0), 0) / 1000,
    load: loadSummary(load, durationMs),
    crashed,
    pass: problems.length === 0,
    problems,
  };
}

/** Acknowledged writes per second of the scenarios' load, unthrottled, without faults, over `ms`. */
export async function measureCapacity(
  stack: ChaosStack,
  settings: RunSettings,
  ms: number,
): Promise<{ ackedPerSecond: number; attemptsPerSecond: number }> {
  const load = new LoadGenerator(loadOptions(stack, settings, 'capacity', 0));
  load.start();
  await sleep(ms);
  const elapsed = Date.now() - load.startedAt;
  const acked = load.stats.ackTimes.length;
  const attempts = load.stats.attempts;
  await load.stop();
  return { ackedPerSecond: (acked / elapsed) * 1000, attemptsPerSecond: (attempts / elapsed) * 1000 };
}

export interface SoakSample {
  atSeconds: number;
  errors: number;
  acked: number;
  rssKiB: Record<string, number>;
}

export interface SoakResult {
  seconds: number;
  rate: number;
  capacityAckedPerSecond: number;
  warmupSeconds: number;
  samples: SoakSample[];
  /** Per instance: RSS growth from the first samples after warm-up to the last ones (max of 3 each), in %. */
  rssGrowthPercent: Record<string, number>;
  errors: number;
  verdict: Verdict | undefined;
  crashed: string[];
  pass: boolean;
  problems: string[];
}

/**
 * The soak: the scenarios' load at `rate` requests per second (half the measured capacity) for
 * `seconds`, no fault; RSS of each instance and the error count sampled every 10 s. Passes with no
 * error (no 5xx, no network error, no rejected write, no crash, verification clean) and every
 * instance's RSS growth under 10% after warm-up (the first fifth of the run, at least 60 s when the
 * run is long enough).
 */
export async function runSoak(
  stack: ChaosStack,
  settings: RunSettings,
  seconds: number,
  rate: number,
  capacity: number,
  log: (line: string) => void,
): Promise<SoakResult> {
  const tag = 'soak';
  const floor = await deadLetterHead(stack.db);
  const poisonMarker = 'chaos-poison-soak';
  await publishPoison(stack.nats.url, poisonMarker);
  const load = new LoadGenerator(loadOptions(stack, settings, tag, rate));
  const warmupSeconds = Math.min(Math.max(60, seconds / 5), seconds / 2);
  const samples: SoakSample[] = [];
  const errorsOf = () =>
    load.stats.networkErrors +
    Object.entries(load.stats.statuses)
      .filter(([s]) => Number(s) >= 300)
      .reduce((sum, [, n]) => sum + n, 0);
  load.start();
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    await sleep(Math.min(10_000, seconds * 1000 - (Date.now() - started)));
    const sample: SoakSample = {
      atSeconds: Math.round((Date.now() - started) / 1000),
      errors: errorsOf(),
      acked: load.stats.ackTimes.length,
      rssKiB: Object.fromEntries(stack.rss()),
    };
    samples.push(sample);
    log(`soak: ${sample.atSeconds} s, ${sample.acked} acknowledged, ${sample.errors} errors`);
  }
  await load.stop();
  const crashed = stack.crashed().map((i) => `${i.name}#${i.slot} exited: ${stack.tail(i, 800)}`);
  const problems: string[] = [];
  let verdict: Verdict | undefined;
  try {
    verdict = await verify({
      db: stack.db,
      natsUrl: stack.nats.url,
      gatewayUrls: stack.gatewayUrls,
      apiKey: stack.apiKey,
      tag,
      writes: load.writes,
      deadLetterFloor: floor,
      poisonMarker,
      extraStreamMessages: poisonSent,
      quiesceMs: settings.quiesceMs,
      log: (line) => log(`soak: ${line}`),
    });
    problems.push(...verdict.problems);
  } catch (error) {
    problems.push(`verification failed: ${String(error)}`);
  }
  const after = samples.filter((s) => s.atSeconds >= warmupSeconds);
  const growth: Record<string, number> = {};
  if (after.length >= 2) {
    const head = after.slice(0, Math.min(3, Math.ceil(after.length / 2)));
    const tail = after.slice(-Math.min(3, Math.floor(after.length / 2)));
    for (const name of Object.keys(after[0]!.rssKiB)) {
      const base = Math.max(...head.map((s) => s.rssKiB[name] ?? 0));
      const last = Math.max(...tail.map((s) => s.rssKiB[name] ?? 0));
      if (base > 0) growth[name] = Math.round(((last - base) / base) * 1000) / 10;
    }
  } else
    problems.push(`too short to judge memory: ${after.length} samples after a ${warmupSeconds} s warm-up`);
  for (const [name, g] of Object.entries(growth))
    if (g >= 10) problems.push(`${name}: RSS grew ${g}% after warm-up`);
  const errors = errorsOf();
  if (errors > 0)
    problems.push(
      `${errors} errors: ${JSON.stringify(load.stats.statuses)}, ${load.stats.networkErrors} network errors`,
    );
  if (crashed.length > 0) problems.push(`instances exited: ${crashed.join(' | ')}`);
  return {
    seconds,
    rate,
    capacityAckedPerSecond: capacity,
    warmupSeconds,
    samples,
    rssGrowthPercent: growth,
    errors,
    verdict,
    crashed,
    pass: problems.length === 0,
    problems,
  };
}
