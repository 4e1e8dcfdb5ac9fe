import { randomUUID } from 'node:crypto';
import { Threadline } from '@threadline/client';
import type { TargetCheck } from './report';
import { startStack } from './stack';

/** Scenario 9's target (issue 18): CPU the SDK adds per call over a raw `fetch` of the same request, in ms. */
export const SDK_OVERHEAD_TARGET_MS = 0.05;

/** One compared pair: the bench process's CPU per call with a raw `fetch` and with the SDK. */
export interface SdkOverheadSeries {
  name: string;
  /** Calls of each kind (raw and SDK), in `rounds` alternating blocks. */
  calls: number;
  rounds: number;
  /** Mean CPU (user + system) of this process per raw `fetch` call, in ms. */
  rawCpuMsPerCall: number;
  /** The same per SDK call, in ms. */
  sdkCpuMsPerCall: number;
  /** `sdkCpuMsPerCall - rawCpuMsPerCall`: what the SDK adds, in ms. */
  addedCpuMsPerCall: number;
  /** Median over the rounds of each round's added CPU per call, in ms (less sensitive to one noisy block). */
  addedCpuMsPerCallMedian: number;
}

/** What scenario 9 measured. */
export interface SdkOverheadResult {
  /** Against the running stack: the same HTTP request, answered by the gateway. */
  network: SdkOverheadSeries[];
  /** With a `fetch` that answers from memory: the SDK's own CPU alone, without the HTTP stack's. */
  inMemory: SdkOverheadSeries[];
}

interface Pair {
  name: string;
  raw: () => Promise<unknown>;
  sdk: () => Promise<unknown>;
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/**
 * Runs `pair.raw` and `pair.sdk` `calls` times each, sequentially and alternating call by call (raw,
 * SDK, raw, ...: drift of the machine's load hits both alike), timing each call's CPU; `rounds` splits
 * the calls into groups for the median. A warm-up of up to 200 pairs comes first.
 */
async function measure(pair: Pair, calls: number, rounds: number): Promise<SdkOverheadSeries> {
  const perRound = Math.max(1, Math.floor(calls / rounds));
  for (let i = 0; i < Math.min(perRound, 200); i++) {
    await pair.raw();
    await pair.sdk();
  }
  let raw = 0;
  let sdk = 0;
  const added: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let rawRound = 0;
    let sdkRound = 0;
    for (let i = 0; i < perRound; i++) {
      let start = cpuMs();
      await pair.raw();
      rawRound += cpuMs() - start;
      start = cpuMs();
      await pair.sdk();
      sdkRound += cpuMs() - start;
    }
    raw += rawRound;
    sdk += sdkRound;
    added.push((sdkRound - rawRound) / perRound);
  }
  added.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10_000) / 10_000;
  const total = perRound * rounds;
  return {
    name: pair.name,
    calls: total,
    rounds,
    rawCpuMsPerCall: round(raw / total),
    sdkCpuMsPerCall: round(sdk / total),
    addedCpuMsPerCall: round((sdk - raw) / total),
    addedCpuMsPerCallMedian: round(added[Math.floor(added.length / 2)] ?? NaN),
  };
}

/** The raw client an application would write by hand: the same URL, headers and body as the SDK sends. */
function rawClient(fetchImpl: typeof globalThis.fetch, baseUrl: string, apiKey: string) {
  const headers = { accept: 'application/json', authorization: `Bearer ${apiKey}` };
  return {
    async getSession(sessionId: string): Promise<unknown> {
      const res = await fetchImpl(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}`, {
        method: 'GET',
        headers,
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status} ${text}`);
      return JSON.parse(text) as unknown;
    },
    async logTurn(sessionId: string, body: unknown): Promise<unknown> {
      const res = await fetchImpl(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}/turns`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status} ${text}`);
      return JSON.parse(text) as unknown;
    },
  };
}

const TURN = {
  user_input: 'What is the capital of France?',
  agent_responses: [
    {
      agent_name: 'geo',
      response: 'Paris.',
      model: 'gpt-4o-mini',
      usage: { input_tokens: 12, output_tokens: 2, total_tokens: 14 },
    },
  ],
  processing_time_ms: 150,
};

/**
 * Scenario 9 (issue 18): the CPU `@threadline/client` adds per call over a raw `fetch` of the same
 * request (same URL, headers, Idempotency-Key and body; the raw side reads the body as text and parses
 * it, as the SDK does). Measured as this process's CPU (`process.cpuUsage`, the services' CPU is not
 * in it), `calls` sequential calls of each kind in alternating blocks, for a read (`GET
 * /sessions/{id}`) and a write (`POST /sessions/{id}/turns`): once against a stack of its own, once
 * with a `fetch` answering from memory (the SDK's own work, free of the HTTP stack's noise).
 */
export async function runSdkOverhead(opts: {
  root: string;
  postgresUrl: string;
  natsUrl: string;
  runTag: string;
  poolSize: number;
  calls: number;
  log: (line: string) => void;
}): Promise<SdkOverheadResult> {
  const rounds = 10;
  opts.log('scenario 9: starting the stack...');
  const stack = await startStack({
    root: opts.root,
    postgresUrl: opts.postgresUrl,
    natsUrl: opts.natsUrl,
    runTag: `${opts.runTag}_sdk`,
    poolSize: opts.poolSize,
    profile: [],
    profileDir: opts.root,
  });
  const network: SdkOverheadSeries[] = [];
  try {
    const sdk = new Threadline({ baseUrl: stack.baseUrl, apiKey: stack.apiKey, maxRetries: 0 });
    const raw = rawClient(globalThis.fetch, stack.baseUrl, stack.apiKey);
    const { session_id: sessionId } = await sdk.sessions.create({ user_id: 'bench-sdk' });
    // Writes go to a few sessions so no conversation grows past a few thousand turns.
    const writeSessions = await Promise.all(
      Array.from({ length: 4 }, () => sdk.sessions.create({ user_id: 'bench-sdk' })),
    );
    let w = 0;
    const nextSession = () => writeSessions[w++ % writeSessions.length]!.session_id;
    network.push(
      await measure(
        {
          name: 'GET /sessions/{id}',
          raw: () => raw.getSession(sessionId),
          sdk: () => sdk.sessions.get(sessionId),
        },
        opts.calls,
        rounds,
      ),
    );
    opts.log(`  ${JSON.stringify(network.at(-1))}`);
    // The noise floor: the raw call against itself, measured the same way (0 but for noise).
    network.push(
      await measure(
        {
          name: 'A/A: GET /sessions/{id}, raw against raw',
          raw: () => raw.getSession(sessionId),
          sdk: () => raw.getSession(sessionId),
        },
        opts.calls,
        rounds,
      ),
    );
    opts.log(`  ${JSON.stringify(network.at(-1))}`);
    network.push(
      await measure(
        {
          name: 'POST /sessions/{id}/turns',
          raw: () => raw.logTurn(nextSession(), TURN),
          sdk: () => sdk.turns.log(nextSession(), TURN),
        },
        Math.max(rounds, Math.floor(opts.calls / 2)),
        rounds,
      ),
    );
    opts.log(`  ${JSON.stringify(network.at(-1))}`);
  } finally {
    await stack.stop();
  }

  const session = JSON.stringify({ session_id: 's1', title: 'x'.repeat(200), metadata: { app: 'bench' } });
  const answer: typeof globalThis.fetch = () =>
    Promise.resolve(new Response(session, { status: 200, headers: { 'content-type': 'application/json' } }));
  const memoryBase = 'http://threadline.invalid';
  const memorySdk = new Threadline({
    baseUrl: memoryBase,
    apiKey: 'tlk_bench',
    fetch: answer,
    maxRetries: 0,
  });
  const memoryRaw = rawClient(answer, memoryBase, 'tlk_bench');
  const inMemory = [
    await measure(
      {
        name: 'GET /sessions/{id}',
        raw: () => memoryRaw.getSession('s1'),
        sdk: () => memorySdk.sessions.get('s1'),
      },
      opts.calls * 4,
      rounds,
    ),
    await measure(
      {
        name: 'POST /sessions/{id}/turns',
        raw: () => memoryRaw.logTurn('s1', TURN),
        sdk: () => memorySdk.turns.log('s1', TURN),
      },
      opts.calls * 4,
      rounds,
    ),
  ];
  opts.log(`  in memory: ${JSON.stringify(inMemory)}`);
  return { network, inMemory };
}

const ms = (x: number) => `${x.toFixed(4)} ms`;

/**
 * Scenario 9's checks: the CPU the SDK adds per call over a raw `fetch` against the stack, at most
 * {@link SDK_OVERHEAD_TARGET_MS}. The in-memory figure (the SDK's own work, without the HTTP stack) is
 * shown beside it. On a loaded 2-core machine the figure against the stack moves by a few hundredths
 * of a ms between runs: compare the A/A row of the same run.
 */
export function sdkOverheadTargets(r: SdkOverheadResult): TargetCheck[] {
  return r.network
    .filter((s) => !s.name.startsWith('A/A'))
    .map((s) => {
      const memory = r.inMemory.find((m) => m.name === s.name);
      return {
        scenario: '9',
        what: `SDK CPU added per call, ${s.name}`,
        target: `<= ${SDK_OVERHEAD_TARGET_MS} ms`,
        measured:
          `${ms(s.addedCpuMsPerCall)} against the stack (median of rounds ${ms(s.addedCpuMsPerCallMedian)}; ` +
          `raw ${ms(s.rawCpuMsPerCall)}, SDK ${ms(s.sdkCpuMsPerCall)})` +
          (memory ? `; ${ms(memory.addedCpuMsPerCall)} in memory` : ''),
        met: s.addedCpuMsPerCall <= SDK_OVERHEAD_TARGET_MS,
      };
    });
}

/** The markdown section of scenario 9. */
export function sdkOverheadMarkdown(r: SdkOverheadResult): string[] {
  const lines = [
    '## 9. SDK overhead: @threadline/client over a raw fetch of the same request',
    '',
    'CPU of the bench process per call (user + system); sequential calls, alternating raw and SDK call by call. ' +
      'The A/A row measures the raw call against itself: its "added" is the noise floor of the run. ' +
      "The in-memory rows are the SDK's own work (a fetch answering from memory, no HTTP).",
    '',
    '| series | request | calls each | raw ms/call | SDK ms/call | added ms/call | added, median of rounds |',
    '|---|---|---|---|---|---|---|',
  ];
  const row = (where: string, s: SdkOverheadSeries) =>
    lines.push(
      `| ${where} | ${s.name} | ${s.calls} | ${s.rawCpuMsPerCall} | ${s.sdkCpuMsPerCall} | ${s.addedCpuMsPerCall} | ${s.addedCpuMsPerCallMedian} |`,
    );
  for (const s of r.network) row('against the stack', s);
  for (const s of r.inMemory) row('fetch answering from memory', s);
  lines.push('');
  return lines;
}
