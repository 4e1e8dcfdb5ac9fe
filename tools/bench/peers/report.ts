import type { TargetCheck } from '../report';
import type { PeersResult } from './scenario';

const n = (x: number | undefined) =>
  x !== undefined && Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: 2 }) : 'n/a';

/**
 * Issue 6's "ahead of every peer in scenario 5", one check per peer: Threadline's operations per
 * second above the peer's, its p99 no higher, and no errors. A peer that was not measured (not
 * installed, could not be opened) is a target not met, with the reason.
 */
export function peerTargets(p: PeersResult): TargetCheck[] {
  const ours = p.series.find((s) => s.name === 'threadline');
  return p.series
    .filter((s) => s !== ours)
    .map((s) => {
      const check = {
        scenario: '5',
        what: `ahead of ${s.label}`,
        target: 'more ops/s, p99 no higher, no errors',
      };
      if (ours?.status !== 'measured')
        return { ...check, measured: `Threadline not measured: ${ours?.reason ?? 'missing'}`, met: false };
      if (s.status !== 'measured')
        return { ...check, measured: `${s.status}: ${s.reason ?? ''}`, met: false };
      return {
        ...check,
        measured: `${n(ours.opsPerSecond)} vs ${n(s.opsPerSecond)} ops/s (peer at ${n(s.ratioToThreadline)}x), p99 ${n(ours.latency?.p99)} vs ${n(s.latency?.p99)} ms, errors ${ours.errors ?? 0} vs ${s.errors ?? 0}`,
        met:
          (ours.opsPerSecond ?? 0) > (s.opsPerSecond ?? 0) &&
          (ours.latency?.p99 ?? Infinity) <= (s.latency?.p99 ?? Infinity) &&
          ours.errors === 0,
      };
    });
}

/** The markdown section of scenario 5: the table, each library's mapping of the work, error examples. */
export function peersMarkdown(p: PeersResult): string[] {
  const lines: string[] = ['## 5. Peers: same Postgres, same turns, same work', ''];
  lines.push(
    `${p.writers} closed-loop workers, each on conversations of its own (a new one after ${p.conversationTurns || 'unlimited'} turns). ` +
      `One operation = append one turn of two messages (user, assistant: ${p.meanTurnBytes} bytes of text on average, from the scenario 1 turns) ` +
      `to the conversation, then read back its last ${p.lastTurns} turns (${2 * p.lastTurns} messages), which the bench checks. ` +
      `Each library in turn, on a fresh database of its own with its schema created by its own API and a pool of ${p.writers} connections: ` +
      `${p.warmupS} s warm-up, then ${p.seconds} s measured. Ratio = the library's ops/s (p99) over Threadline's.`,
    '',
  );
  lines.push(
    '| library | packages | ops/s | ops/s ratio | p50 ms | p95 ms | p99 ms | p99 ratio | errors | schema setup ms |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const s of p.series) {
    const versions = s.versions.join(', ') || '-';
    if (s.status !== 'measured') {
      lines.push(
        `| ${s.label} | ${versions} | ${s.status}: ${(s.reason ?? '').replace(/\|/g, '/')} | | | | | | | |`,
      );
      continue;
    }
    const l = s.latency;
    lines.push(
      `| ${s.label} | ${versions} | ${n(s.opsPerSecond)} | ${s.name === 'threadline' ? '1' : n(s.ratioToThreadline)} | ${n(l?.p50)} | ${n(l?.p95)} | ${n(l?.p99)} | ${s.name === 'threadline' ? '1' : n(s.p99RatioToThreadline)} | ${s.errors ?? 0} | ${n(s.setupMs)} |`,
    );
  }
  lines.push('', 'How each library does the work:', '');
  for (const s of p.series) lines.push(`- ${s.label}: ${s.mapping}`);
  lines.push('');
  const examples = p.series.flatMap((s) => (s.errorExamples ?? []).map((e) => `${s.label}: ${e}`));
  if (examples.length)
    lines.push('Error examples:', '', ...examples.map((e) => `- \`${e.replace(/`/g, "'")}\``), '');
  return lines;
}
