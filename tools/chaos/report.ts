import { type HostileResult } from './hostile';
import { type ScenarioResult, type SoakResult } from './runner';

/** Everything a run found: written as `<time>.json` and `.md` under the results folder. */
export interface ChaosResults {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: { cores: number; node: string; postgres: string; nats: string; loadAtStart: number[] };
  settings: Record<string, unknown>;
  scenarios: ScenarioResult[];
  soak: SoakResult | undefined;
  hostile: HostileResult | undefined;
  pass: boolean;
}

const cell = (v: number | string | null | undefined) => (v === null || v === undefined ? '-' : String(v));

/** The scenario table (scenario, acknowledged, stored, projected, lost, duplicated, recovery s, ...). */
export function scenarioTable(rows: readonly ScenarioResult[]): string {
  const head =
    '| scenario | acknowledged | stored | projected | lost | duplicated | recovery s | longest write s | unacked (committed) | quiescence s | result |\n' +
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|';
  const lines = rows.map((r) => {
    const v = r.verdict;
    const projected = v ? `${v.projected}/${v.projectable}` : '-';
    const duplicated = v ? v.duplicated + v.duplicatedUnacknowledged : undefined;
    return `| ${r.id} | ${cell(v?.acknowledged)} | ${cell(v?.stored)} | ${projected} | ${cell(v?.lost)} | ${cell(duplicated)} | ${
      r.recoverySeconds === null ? 'never' : r.recoverySeconds.toFixed(1)
    } | ${r.longestWriteSeconds.toFixed(1)} | ${v ? `${v.unacknowledged} (${v.unacknowledgedStored})` : '-'} | ${v ? v.quiescenceSeconds.toFixed(1) : '-'} | ${r.pass ? 'PASS' : 'FAIL'} |`;
  });
  return [head, ...lines].join('\n');
}

export function toMarkdown(results: ChaosResults): string {
  const out: string[] = [];
  out.push(`# Chaos run ${results.startedAt}`, '');
  out.push(`Command: \`${results.command}\``, '');
  const m = results.machine;
  out.push(
    `Machine: ${m.cores} cores, node ${m.node}, ${m.postgres}, nats-server ${m.nats}, load at start ${m.loadAtStart.join(' ')}.`,
    '',
  );
  out.push(`Settings: \`${JSON.stringify(results.settings)}\``, '');
  if (results.scenarios.length > 0) {
    out.push('## Scenarios', '');
    out.push(
      'acknowledged: writes (session creates, turns, ends, deletes) answered 2xx; stored: of them, in the event store; ' +
        'projected: acknowledged turns of sessions not deleted whose session agrees with the store in the turns read model, ' +
        '`turn_count` and usage stats; lost: acknowledged but not stored; duplicated: stored more than once (acknowledged or not); ' +
        'recovery: seconds from the fault until no attempt failed any more (the first acknowledgement after the last failed attempt; ' +
        'a client retrying through the other gateway or instance may have been served all along); ' +
        'longest write: the longest an acknowledged write took from its first attempt to its 2xx, retries included; unacked: writes given up by the client (of them committed once); ' +
        'quiescence: seconds after the load until read models, consumers and the stream agreed with the store.',
      '',
    );
    out.push(scenarioTable(results.scenarios), '');
    for (const r of results.scenarios) {
      out.push(`### ${r.id}: ${r.title}`, '');
      out.push(`- fault: ${r.fault} (${r.faultSeconds.toFixed(1)} s)`);
      out.push(
        `- load: ${r.load.durationSeconds.toFixed(0)} s, ${r.load.attempts} requests (${r.load.retries} retries, ${r.load.networkErrors} network errors), ${r.load.ackedPerSecond} acknowledged/s, statuses ${JSON.stringify(r.load.statuses)}`,
      );
      if (r.verdict)
        out.push(
          `- dead letters: ${r.verdict.poisonDeadLetters} of the poison sent on purpose, ${r.verdict.unexpectedDeadLetters} others; rejected writes: ${r.verdict.rejected}`,
        );
      out.push(`- result: ${r.pass ? 'PASS' : 'FAIL'}`);
      for (const p of r.problems) out.push(`  - ${p}`);
      out.push('');
    }
  }
  if (results.soak) {
    const s = results.soak;
    out.push('## Soak', '');
    out.push(
      `${s.seconds} s at ${s.rate} requests/s (half of the ${s.capacityAckedPerSecond.toFixed(0)} acknowledged writes/s measured unthrottled), warm-up ${s.warmupSeconds} s: ${s.pass ? 'PASS' : 'FAIL'}`,
      '',
    );
    out.push('| instance | RSS growth after warm-up % |', '|---|--:|');
    for (const [name, g] of Object.entries(s.rssGrowthPercent)) out.push(`| ${name} | ${g} |`);
    out.push('');
    if (s.verdict)
      out.push(
        `acknowledged ${s.verdict.acknowledged}, stored ${s.verdict.stored}, projected ${s.verdict.projected}/${s.verdict.projectable}, lost ${s.verdict.lost}, duplicated ${s.verdict.duplicated + s.verdict.duplicatedUnacknowledged}, errors ${s.errors}`,
        '',
      );
    for (const p of s.problems) out.push(`- ${p}`);
    out.push('');
  }
  if (results.hostile) {
    const h = results.hostile;
    out.push('## Hostile input at volume', '');
    out.push(
      `${h.requests} generated requests${h.requests < h.asked ? ` of ${h.asked} asked (stopped at --hostile-max-seconds)` : ''} (seed ${h.seed}) in ${h.seconds.toFixed(0)} s: ${h.fiveXx} answered 5xx, ${h.noAnswer} without answer, ` +
        `${h.unsendable} refused by the HTTP client itself, ${h.fourXxThatAppended} 4xx that appended, ` +
        `untagged appends ${h.untaggedAppends} for ${h.untagged2xx} untagged 2xx, instances down: ${h.crashed.length}: ${h.pass ? 'PASS' : 'FAIL'}`,
      '',
    );
    out.push(`Statuses: \`${JSON.stringify(h.statuses)}\``, '');
    for (const e of h.examples) out.push(`- ${e.replace(/\n/g, ' ')}`);
    for (const c of h.crashed) out.push(`- down: ${c.replace(/\s+/g, ' ').slice(0, 600)}`);
    out.push('');
  }
  out.push(`Overall: ${results.pass ? 'PASS' : 'FAIL'}`, '');
  return out.join('\n');
}
