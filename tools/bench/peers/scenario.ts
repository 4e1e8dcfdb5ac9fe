import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { Db, ensureDatabase } from '@threadline/event-store';
import { databaseUrlFor, dropDatabase } from '../stack';
import { nowMs, summarize, type LatencySummary } from '../stats';
import { emmettAdapter } from './emmett';
import { langgraphGraphAdapter, langgraphSaverAdapter } from './langgraph';
import { PeersNotInstalledError } from './load';
import { mastraAdapter } from './mastra';
import { threadlineAdapter } from './threadline';
import { LAST_TURNS, type PeerAdapter, type PeerSession, type PeerTurn } from './types';

/** The peers scenario 5 can measure besides Threadline (the `--peers` names). */
export const PEER_NAMES = ['emmett', 'mastra', 'langgraph-saver', 'langgraph-graph'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** One library's series of scenario 5. Figures are absent unless `status` is `measured`. */
export interface PeerSeries {
  name: string;
  label: string;
  /** `package@version` of each library package measured (empty when not installed). */
  versions: string[];
  /** How the logical work maps to the library's API. */
  mapping: string;
  /** `measured`; `unavailable`: not installed here; `failed`: it could not be opened or set up. */
  status: 'measured' | 'unavailable' | 'failed';
  /** Why it was not measured. */
  reason?: string;
  /** ms to open the library and create its schema through its own API on the fresh database. */
  setupMs?: number;
  /** Measured operations (append one turn + read back the last 20), each checked against what was written. */
  operations?: number;
  opsPerSecond?: number;
  /** Latency of one operation, ms. */
  latency?: LatencySummary;
  /** Operations that threw or read back something else than the conversation's last turns (warm-up included). */
  errors?: number;
  errorExamples?: string[];
  /** Conversations started (a full one is replaced by a new one). */
  conversations?: number;
  /** opsPerSecond / Threadline's opsPerSecond (below 1: Threadline is ahead). */
  ratioToThreadline?: number;
  /** latency.p99 / Threadline's latency.p99 (above 1: Threadline answers faster). */
  p99RatioToThreadline?: number;
}

/** Scenario 5: Threadline first, then each peer, each on a fresh database of its own. */
export interface PeersResult {
  writers: number;
  warmupS: number;
  seconds: number;
  /** A conversation is replaced by a new one after this many turns (0: never). */
  conversationTurns: number;
  /** Turns read back after each append. */
  lastTurns: number;
  /** Mean bytes (UTF-8) of a turn's two message texts. */
  meanTurnBytes: number;
  series: PeerSeries[];
}

const TurnBody = z.object({
  user_input: z.string(),
  agent_responses: z.array(z.object({ response: z.string() })).min(1),
});

/** The bench turns (HTTP bodies of scenario 1) as two messages: the user input, and the agent responses joined by a blank line. */
export function peerTurnsOf(bodies: readonly Buffer[]): PeerTurn[] {
  return bodies.map((b) => {
    const t = TurnBody.parse(JSON.parse(b.toString('utf8')));
    return { user: t.user_input, assistant: t.agent_responses.map((r) => r.response).join('\n\n') };
  });
}

/** The adapters in run order: Threadline first, then the selected peers. */
function adaptersFor(root: string, peers: readonly PeerName[]): PeerAdapter[] {
  const peersDir = join(root, 'tools/bench/peers');
  const all: Record<PeerName, () => PeerAdapter> = {
    emmett: () => emmettAdapter(peersDir),
    mastra: () => mastraAdapter(peersDir),
    'langgraph-saver': () => langgraphSaverAdapter(peersDir),
    'langgraph-graph': () => langgraphGraphAdapter(peersDir),
  };
  return [threadlineAdapter(root), ...PEER_NAMES.filter((p) => peers.includes(p)).map((p) => all[p]())];
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Waits (at most `timeoutMs`) until database `name` has no connections left: some libraries' `close`
 * resolves before their sockets are gone, and the drop (`WITH (FORCE)`) would then kill live
 * connections under them. Resolves either way.
 */
async function waitDisconnected(postgresUrl: string, name: string, timeoutMs = 5_000): Promise<void> {
  const admin = await Db.connect({
    url: databaseUrlFor(postgresUrl, 'postgres'),
    poolSize: 1,
    applicationName: 'threadline-bench',
  });
  try {
    for (const end = Date.now() + timeoutMs; Date.now() < end;) {
      const [row] = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [
        name,
      ]);
      if (z.number().parse(row?.['n']) === 0) return;
      await new Promise((done) => setTimeout(done, 50));
    }
  } finally {
    await admin.close();
  }
}

/**
 * `writers` closed-loop workers, each on conversations of its own, for `warmupS` then `seconds`: each
 * operation appends the next turn and reads back the last {@link LAST_TURNS} turns; what was read is
 * checked (count, and the last two messages are the turn just written) after the operation's time is
 * taken. A failed operation abandons its conversation (the worker starts a new one).
 */
async function measure(
  session: PeerSession,
  turns: readonly PeerTurn[],
  opts: { writers: number; warmupS: number; seconds: number; conversationTurns: number },
): Promise<
  Required<
    Pick<PeerSeries, 'operations' | 'opsPerSecond' | 'latency' | 'errors' | 'errorExamples' | 'conversations'>
  >
> {
  const from = nowMs() + opts.warmupS * 1000;
  const end = from + opts.seconds * 1000;
  const latencies: number[] = [];
  const examples: string[] = [];
  let errors = 0;
  let conversations = 0;
  const fail = (what: string) => {
    errors += 1;
    if (examples.length < 3) examples.push(what.slice(0, 300));
  };
  await Promise.all(
    Array.from({ length: opts.writers }, async (_, w) => {
      let conversation: Awaited<ReturnType<PeerSession['conversation']>> | undefined;
      let written = 0;
      let next = w * 97;
      while (nowMs() < end) {
        if (!conversation || (opts.conversationTurns > 0 && written >= opts.conversationTurns)) {
          try {
            conversation = await session.conversation(randomUUID());
            conversations += 1;
            written = 0;
          } catch (error) {
            conversation = undefined;
            fail(`starting a conversation: ${message(error)}`);
            continue;
          }
        }
        const turn = turns[next++ % turns.length]!;
        const t0 = nowMs();
        let readBack: unknown;
        try {
          readBack = await conversation.write(turn);
        } catch (error) {
          conversation = undefined;
          fail(message(error));
          continue;
        }
        const t1 = nowMs();
        written += 1;
        try {
          const read = conversation.messagesOf(readBack);
          const want = 2 * Math.min(written, LAST_TURNS);
          const [user, assistant] = read.slice(-2);
          if (
            read.length !== want ||
            user?.role !== 'user' ||
            user.content !== turn.user ||
            assistant?.role !== 'assistant' ||
            assistant.content !== turn.assistant
          )
            throw new Error(
              `read back ${read.length} messages (want ${want}) ending with ${user?.role ?? '-'}/${assistant?.role ?? '-'}${user?.content === turn.user && assistant?.content === turn.assistant ? '' : ', not the turn just written'}`,
            );
        } catch (error) {
          conversation = undefined;
          fail(`check of what was read back: ${message(error)}`);
          continue;
        }
        if (t1 >= from) latencies.push(t1 - t0);
      }
    }),
  );
  const elapsedS = (nowMs() - from) / 1000;
  return {
    operations: latencies.length,
    opsPerSecond: Math.round(latencies.length / elapsedS),
    latency: summarize(latencies),
    errors,
    errorExamples: examples,
    conversations,
  };
}

/**
 * Scenario 5 of issue 6 (peers): Threadline's event store and each selected peer library do the same
 * logical work with the same turns and the same concurrency, one after the other, each on a fresh
 * database of its own (`threadline_bench_<runTag>_peer_<name>`, created, then dropped whatever
 * happens) with its schema created through its own API and a pool of `writers` connections. A peer
 * that is not installed (tools/bench/peers/node_modules) or cannot be opened is recorded with the
 * reason, never skipped silently. Throws only when a database cannot be created or dropped.
 */
export async function runPeers(opts: {
  root: string;
  postgresUrl: string;
  runTag: string;
  turns: readonly PeerTurn[];
  peers: readonly PeerName[];
  writers: number;
  warmupS: number;
  seconds: number;
  conversationTurns: number;
  log: (line: string) => void;
}): Promise<PeersResult> {
  const series: PeerSeries[] = [];
  for (const adapter of adaptersFor(opts.root, opts.peers)) {
    const base: PeerSeries = {
      name: adapter.name,
      label: adapter.label,
      versions: [],
      mapping: adapter.mapping,
      status: 'failed',
    };
    try {
      base.versions = adapter.versions();
    } catch (error) {
      const status = error instanceof PeersNotInstalledError ? 'unavailable' : 'failed';
      opts.log(`scenario 5: ${adapter.label}: ${status}: ${message(error)}`);
      series.push({ ...base, status, reason: message(error) });
      continue;
    }
    const name = `threadline_bench_${opts.runTag}_peer_${adapter.name.replace(/\W/g, '_')}`;
    const url = databaseUrlFor(opts.postgresUrl, name);
    await ensureDatabase(url);
    try {
      const t0 = nowMs();
      let session: PeerSession;
      try {
        session = await adapter.open(url, opts.writers);
      } catch (error) {
        opts.log(`scenario 5: ${adapter.label}: could not be opened: ${message(error)}`);
        series.push({ ...base, status: 'failed', reason: `open / schema setup failed: ${message(error)}` });
        continue;
      }
      const setupMs = Math.round(nowMs() - t0);
      opts.log(
        `scenario 5: ${adapter.label} (${base.versions.join(', ')}) on ${name}: ${opts.writers} workers, ${opts.warmupS} s warm-up + ${opts.seconds} s`,
      );
      try {
        const measured = await measure(session, opts.turns, opts);
        series.push({ ...base, status: 'measured', setupMs, ...measured });
        opts.log(
          `scenario 5: ${adapter.label}: ${measured.opsPerSecond} ops/s, p50 ${measured.latency.p50} ms, p99 ${measured.latency.p99} ms, ${measured.errors} errors`,
        );
      } finally {
        await session
          .close()
          .catch((error: unknown) =>
            opts.log(`scenario 5: ${adapter.label}: close failed: ${message(error)}`),
          );
      }
    } finally {
      await waitDisconnected(opts.postgresUrl, name);
      await dropDatabase(opts.postgresUrl, name);
    }
  }
  const ours = series.find((s) => s.name === 'threadline');
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 100) / 100 : undefined;
  for (const s of series) {
    if (s === ours || s.status !== 'measured' || ours?.status !== 'measured') continue;
    s.ratioToThreadline = ratio(s.opsPerSecond, ours.opsPerSecond);
    s.p99RatioToThreadline = ratio(s.latency?.p99, ours.latency?.p99);
  }
  const bytes = opts.turns.map((t) => Buffer.byteLength(t.user) + Buffer.byteLength(t.assistant));
  return {
    writers: opts.writers,
    warmupS: opts.warmupS,
    seconds: opts.seconds,
    conversationTurns: opts.conversationTurns,
    lastTurns: LAST_TURNS,
    meanTurnBytes: Math.round(bytes.reduce((a, b) => a + b, 0) / Math.max(1, bytes.length)),
    series,
  };
}
