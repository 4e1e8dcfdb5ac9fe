import type { IngestResult } from './ingest';
import type { MachineFacts } from './machine';
import { peersMarkdown, peerTargets } from './peers/report';
import type { PeersResult } from './peers/scenario';
import type { PgActivity } from './pg-activity';
import type { ReadsResult } from './reads';
import type { ReadFloorResult, RebuildResult } from './rebuild';
import { cpuMsPerUnit, type MachineUsage, type ProcessUsage } from './resources';
import { sdkOverheadMarkdown, sdkOverheadTargets, type SdkOverheadResult } from './sdk-overhead';
import type { SeedResult } from './seed';
import type { StoreResult } from './store';

/** Everything one `npm run bench` measured; written as `bench/results/<date>.json`. */
export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  /** The exact command line (what to run to measure again). */
  command: string;
  options: Record<string, unknown>;
  machine: MachineFacts;
  loadAtEnd: number[];
  ingest?: IngestResult & {
    resources: { processes: ProcessUsage[]; machine: MachineUsage };
    postgresActivity: PgActivity;
  };
  store?: StoreResult;
  peers?: PeersResult;
  /** The dataset of scenarios 6 and 7 (seeded by this run, or reused); `kept`: not dropped at the end. */
  seed?: SeedResult & { kept: boolean };
  rebuild?: RebuildResult;
  /** Scenario 6's floor: the events read and parsed alone. */
  readFloor?: ReadFloorResult;
  reads?: ReadsResult;
  /** Scenario 9 (issue 18): the CPU the TypeScript SDK adds per call. */
  sdk?: SdkOverheadResult;
  /** Scenarios of issue 6 this run did not measure, with why. */
  notDone: string[];
  /** Each target of issue 6 this run can judge. */
  targets: TargetCheck[];
}

/** One target of issue 6 against the measured figure. */
export interface TargetCheck {
  scenario: string;
  what: string;
  target: string;
  measured: string;
  met: boolean;
}

/** Scenario 6's target (issue 6): events replayed per second. */
const REBUILD_TARGET_EVENTS_PER_SECOND = 50_000;

const n = (x: number) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: 2 }) : 'n/a';

/** Judges the issue's targets (issue 6, "Targets on this 2-core machine") on what `r` measured. */
export function checkTargets(
  r: Pick<BenchResults, 'ingest' | 'store' | 'options' | 'rebuild' | 'reads' | 'peers' | 'sdk'>,
): TargetCheck[] {
  const out: TargetCheck[] = [];
  const i = r.ingest;
  if (i) {
    out.push({
      scenario: '1',
      what: 'turns/s',
      target: '>= 3,000 (60 s)',
      measured: `${n(i.turnsPerSecond)} (${i.measuredS} s)`,
      met: i.turnsPerSecond >= 3000 && i.measuredS >= 60,
    });
    out.push({
      scenario: '1',
      what: 'p99 latency',
      target: '<= 50 ms',
      measured: `${n(i.latency.p99)} ms`,
      met: i.latency.p99 <= 50,
    });
    out.push({
      scenario: '1',
      what: 'errors',
      target: '0',
      measured: n(i.errors.total),
      met: i.errors.total === 0,
    });
    out.push({
      scenario: '2',
      what: 'projection lag p99',
      target: '<= 250 ms at 3,000 turns/s',
      measured: `${n(i.lag.latency.p99)} ms at ${n(i.turnsPerSecond)} turns/s${i.lag.notAppliedInTime ? `, ${i.lag.notAppliedInTime} probes > STATS_WAIT_MS` : ''}`,
      met: i.lag.latency.p99 <= 250 && i.lag.notAppliedInTime === 0 && i.turnsPerSecond >= 3000,
    });
    for (const p of i.resources.processes) {
      out.push({
        scenario: '8',
        what: `peak RSS ${p.name}`,
        target: '<= 250 MB',
        measured: `${n(p.peakRssMb)} MB`,
        met: p.peakRssMb <= 250,
      });
    }
  }
  const s = r.store;
  if (s) {
    out.push({
      scenario: '3',
      what: 'single-event appends/s (8 writers)',
      target: '>= 8,000',
      measured: n(s.eventStoreSingle.rowsPerSecond),
      met: s.eventStoreSingle.rowsPerSecond >= 8000,
    });
    out.push({
      scenario: '3',
      what: `batched events/s (${s.eventStoreBatched.batch} per append)`,
      target: '>= 40,000',
      measured: n(s.eventStoreBatched.rowsPerSecond),
      met: s.eventStoreBatched.rowsPerSecond >= 40000,
    });
  }
  if (r.peers) out.push(...peerTargets(r.peers));
  if (r.sdk) out.push(...sdkOverheadTargets(r.sdk));
  const rb = r.rebuild;
  if (rb) {
    out.push({
      scenario: '6',
      what: `rebuild ${rb.projection}, events/s`,
      target: '>= 50,000 at 1,000,000 events',
      measured: `${n(rb.eventsPerSecond)} (${n(rb.events)} replayed, ${n(rb.storeEvents)} in the store)`,
      met: rb.eventsPerSecond >= REBUILD_TARGET_EVENTS_PER_SECOND && rb.storeEvents >= 1_000_000,
    });
  }
  const rd = r.reads;
  if (rd) {
    const atSize = rd.dataset.sessions >= 100_000 && rd.dataset.turns >= 1_000_000;
    for (const x of rd.series) {
      const failed = Object.values(x.errors).reduce((a, b) => a + b, 0) + x.wrong;
      out.push({
        scenario: '7',
        what: `p99 ${x.route}, ${x.clients} ${x.clients === 1 ? 'client' : 'clients'}`,
        target: '<= 10 ms at 100k sessions / 1M turns',
        measured: `${n(x.latency.p99)} ms (${n(rd.dataset.sessions)} sessions, ${n(rd.dataset.turns)} turns${failed ? `, ${failed} errors or wrong answers` : ''})`,
        met: x.latency.p99 <= 10 && atSize && failed === 0,
      });
    }
  }
  return out;
}

/** The markdown report: command, machine, the targets table, then every figure. */
export function toMarkdown(r: BenchResults): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`# Threadline benchmark, ${r.startedAt}`, '');
  lines.push('```sh', r.command, '```', '');
  lines.push('| machine | |', '|---|---|');
  lines.push(`| CPU | ${m.cores} cores, ${m.cpuModel} |`);
  lines.push(`| memory | ${m.memoryGb} GB |`);
  lines.push(
    `| Node | ${m.node} |`,
    `| Postgres | ${m.postgres} (${Object.entries(m.postgresSettings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}) |`,
  );
  lines.push(
    `| Postgres reached by | ${m.postgresTransport} |`,
    `| NATS | ${m.nats} |`,
    `| kernel | ${m.kernel} |`,
    `| commit | ${m.commit} |`,
  );
  lines.push(
    `| load average (1/5/15 min) | start ${m.loadAtStart.join(' / ')}, end ${r.loadAtEnd.join(' / ')} |`,
    '',
  );

  lines.push(
    '## Targets (issue 6)',
    '',
    '| scenario | what | target | measured | met |',
    '|---|---|---|---|---|',
  );
  for (const t of r.targets)
    lines.push(`| ${t.scenario} | ${t.what} | ${t.target} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push('');

  const i = r.ingest;
  if (i) {
    lines.push('## 1. Turn ingestion over HTTP (`POST /sessions/{id}/turns`)', '');
    lines.push(
      `${i.users} virtual users (closed loop, one request in flight each), ${i.sessions} sessions (a new one after ${i.turnsPerSession || 'unlimited'} turns; ` +
        `POST /sessions p50 ${n(i.sessionCreateLatency.p50)} ms, p99 ${n(i.sessionCreateLatency.p99)} ms, not counted below), turns of ${i.meanBodyBytes} bytes on average, ${i.warmupS} s warm-up then ${i.measuredS} s measured.`,
      '',
    );
    lines.push(
      '| turns/s | per-second min / median / max | p50 ms | p95 ms | p99 ms | max ms | errors | generator CPU |',
      '|---|---|---|---|---|---|---|---|',
    );
    lines.push(
      `| ${n(i.turnsPerSecond)} | ${i.perSecond.min} / ${i.perSecond.median} / ${i.perSecond.max} | ${n(i.latency.p50)} | ${n(i.latency.p95)} | ${n(i.latency.p99)} | ${n(i.latency.max)} | ${i.errors.total}${
        i.errors.total
          ? ` (${Object.entries(i.errors.byKind)
              .map(([k, v]) => `${k}: ${v}`)
              .join(', ')})`
          : ''
      } | ${i.generatorCpuPercent}% of a core |`,
      '',
    );
    if (i.errors.examples.length)
      lines.push('Error examples:', '', ...i.errors.examples.map((e) => `- \`${e.replace(/`/g, "'")}\``), '');
    lines.push('## 2. Projection lag under that load', '');
    lines.push(
      "ms from a turn's 201 to `GET /sessions/{id}/stats?min_position=<its position>` answering 200 (includes that GET's own round trip).",
      '',
    );
    lines.push(
      '| probes | p50 ms | p95 ms | p99 ms | max ms | > STATS_WAIT_MS | failed | backlog after the load (ms) |',
      '|---|---|---|---|---|---|---|---|',
    );
    const l = i.lag;
    lines.push(
      `| ${l.probes} | ${n(l.latency.p50)} | ${n(l.latency.p95)} | ${n(l.latency.p99)} | ${n(l.latency.max)} | ${l.notAppliedInTime} | ${l.failed} | ${l.drainMs ?? 'not drained in 120 s'} |`,
      '',
    );
    lines.push('## 8. Memory and CPU of each service during scenario 1', '');
    lines.push(
      '| service | peak RSS (VmHWM) MB | highest sampled RSS MB | RSS at start MB | CPU % of one core | CPU ms per turn |',
      '|---|---|---|---|---|---|',
    );
    // CPU per turn: a process's CPU share (sampled over warm-up and measurement, both under the same
    // load) over the measured rate.
    const perTurn = (cpuPercent: number) => cpuMsPerUnit(cpuPercent, i.turnsPerSecond);
    for (const p of i.resources.processes)
      lines.push(
        `| ${p.name} | ${n(p.peakRssMb)} | ${n(p.maxSampledRssMb)} | ${n(p.startRssMb)} | ${n(p.cpuPercent)} | ${n(perTurn(p.cpuPercent))} |`,
      );
    const mu = i.resources.machine;
    lines.push(
      `| all postgres processes (every database on the server) | | | | ${n(mu.postgresCpuPercent)} | ${n(perTurn(mu.postgresCpuPercent))} |`,
    );
    lines.push(`| nats-server | | | | ${n(mu.natsCpuPercent)} | ${n(perTurn(mu.natsCpuPercent))} |`);
    lines.push(
      `| load generator (this process) | | | | ${n(i.generatorCpuPercent)} | ${n(perTurn(i.generatorCpuPercent))} |`,
      '',
    );
    const allPercent =
      i.resources.processes.reduce((sum, p) => sum + p.cpuPercent, 0) +
      mu.postgresCpuPercent +
      mu.natsCpuPercent +
      i.generatorCpuPercent;
    lines.push(
      `Whole machine: ${n(mu.cpuBusyPercent)}% busy of ${mu.cores} cores; the rows above spent ${n(perTurn(allPercent))} ms of CPU per turn.`,
      '',
    );
    const a = i.postgresActivity;
    lines.push("### Where the services' Postgres connections spent scenario 1", '');
    lines.push(
      `${a.samples} samples of \`pg_stat_activity\` (non-idle connections of the bench database).`,
      '',
    );
    lines.push(
      '| state / wait event | share |',
      '|---|---|',
      ...a.waits.map((w) => `| ${w.what} | ${w.percent}% |`),
      '',
    );
    lines.push(
      '| statement (active or waiting) | share |',
      '|---|---|',
      ...a.statements.map((q) => `| \`${q.query.replace(/[|`]/g, ' ')}\` | ${q.percent}% |`),
      '',
    );
  }
  const s = r.store;
  if (s) {
    lines.push('## 3 and 4. Event store append against plain INSERT (same Postgres, same payload)', '');
    lines.push(`Payload ${s.payloadBytes} bytes of JSON (one turn); ${s.seconds} s per series.`, '');
    lines.push(
      '| series | writers | rows per op | rows/s | ops/s | p50 ms | p99 ms | errors |',
      '|---|---|---|---|---|---|---|---|',
    );
    const row = (name: string, w: StoreResult['plainSingle']) =>
      lines.push(
        `| ${name} | ${w.writers} | ${w.batch} | ${n(w.rowsPerSecond)} | ${n(w.opsPerSecond)} | ${n(w.latency.p50)} | ${n(w.latency.p99)} | ${w.errors} |`,
      );
    row('3. EventStore.append, one event', s.eventStoreSingle);
    row('3. EventStore.append, batch', s.eventStoreBatched);
    row('4. plain INSERT, one row', s.plainSingle);
    row('4. plain INSERT, multi-row', s.plainBatched);
    lines.push('', `Ratio to the physical limit: single ${s.singleRatio}, batched ${s.batchedRatio}.`, '');
  }
  if (r.peers) lines.push(...peersMarkdown(r.peers));
  if (r.sdk) lines.push(...sdkOverheadMarkdown(r.sdk));
  const seed = r.seed;
  if (seed) {
    const p = seed.phases;
    lines.push('## Dataset of scenarios 6 and 7', '');
    lines.push(
      `Database \`${seed.databaseName}\` (${seed.reused ? 'reused from an earlier run' : 'seeded by this run'}${seed.kept ? ', kept' : ', dropped at the end'}): ` +
        `${n(seed.counts.events)} events, ${n(seed.counts.sessions)} sessions of ${n(seed.counts.users)} users, ${n(seed.counts.turns)} turns, ${n(seed.counts.databaseMb)} MB. ` +
        `${seed.params.templates} template turns written through the services, then ${n(seed.params.sessions)} sessions with ${seed.params.turnsPerSession} turns on average by SQL.`,
      '',
      '| seeding phase | s |',
      '|---|---|',
      `| templates (stack up, turns through HTTP, stack down) | ${n(p.templates)} |`,
      `| SQL: events, streams, inline read models, session_context (${n(seed.sqlEventsPerSecond)} events/s) | ${n(p.sql)} |`,
      `| VACUUM ANALYZE | ${n(p.vacuum)} |`,
      `| total | ${n(p.total)} |`,
      '',
    );
  }
  const rb = r.rebuild;
  if (rb) {
    lines.push('## 6. Rebuild (projections CLI, a new version of the projection)', '');
    lines.push(
      `\`projections rebuild ${rb.projection} --batch-size ${rb.batchSize}\` with ${n(rb.storeEvents)} events in the store and nothing else running.`,
      '',
      '| events replayed | s | events/s | version live | CLI wall s | CLI CPU | Postgres CPU | machine busy |',
      '|---|---|---|---|---|---|---|---|',
      `| ${n(rb.events)} | ${n(rb.seconds)} | ${n(rb.eventsPerSecond)} | ${rb.version ?? '-'} | ${n(rb.wallSeconds)} | ${n(rb.cliCpuPercent)}% of a core | ${n(rb.postgresCpuPercent)}% of a core | ${n(rb.machineBusyPercent)}% |`,
      '',
    );
    if (rb.phases) {
      const ph = rb.phases;
      lines.push(
        "Where the rebuild's time went (s): the bulk replay, then `finish`, the index builds, ANALYZE, and the catch-up and switch.",
        '',
        '| replay | finish | indexes | analyze | switch |',
        '|---|---|---|---|---|',
        `| ${n(ph.replay)} | ${n(ph.finish)} | ${n(ph.indexes)} | ${n(ph.analyze)} | ${n(ph.switch)} |`,
        '',
      );
    }
    const f = r.readFloor;
    if (f) {
      lines.push(
        `The floor: every event read in commit order (\`EventStore.readAll\`, ${n(f.batchSize)} per batch) and parsed with the projection's \`EventRegistry\`, writing nothing, in the bench's own process. Its CPU is work the CLI's replay does on its one JavaScript thread before it folds or writes anything.`,
        '',
        '| events read | of them parsed | wall s | CPU s | events per CPU-second |',
        '|---|---|---|---|---|',
        `| ${n(f.events)} | ${n(f.parsed)} | ${n(f.seconds)} | ${n(f.cpuSeconds)} | ${n(f.eventsPerCpuSecond)} |`,
        '',
      );
      if (rb.phases) {
        const tenths = (s: number) => n(Math.round(s * 10) / 10);
        const after = rb.phases.finish + rb.phases.indexes + rb.phases.analyze + rb.phases.switch;
        const budget = rb.events / REBUILD_TARGET_EVENTS_PER_SECOND;
        const left =
          budget > after
            ? `leaves the replay ${tenths(budget - after)} s, ${n(Math.round(rb.events / (budget - after)))} events/s`
            : 'leaves the replay no time';
        lines.push(
          `At ${n(REBUILD_TARGET_EVENTS_PER_SECOND)} events/s the whole rebuild of ${n(rb.events)} events has ${tenths(budget)} s. The steps after the replay took ${tenths(after)} s here, which ${left}; reading and parsing alone ran at ${n(f.eventsPerCpuSecond)} events per CPU-second of one core.`,
          '',
        );
      }
    }
  }
  const rd = r.reads;
  if (rd) {
    lines.push('## 7. Reads at size, over HTTP through the gateway', '');
    lines.push(
      `${n(rd.dataset.sessions)} sessions, ${n(rd.dataset.turns)} turns, ${n(rd.dataset.users)} users; random sessions (and their users); ${rd.warmup} warm-up requests per route, then:`,
      '',
      '| route | clients | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | wrong answers |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const x of rd.series) {
      const errors = Object.entries(x.errors)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ');
      lines.push(
        `| \`${x.route}\` | ${x.clients} | ${n(x.requests)} | ${n(x.requestsPerSecond)} | ${n(x.latency.p50)} | ${n(x.latency.p95)} | ${n(x.latency.p99)} | ${n(x.latency.max)} | ${errors || 0} | ${x.wrong} |`,
      );
    }
    lines.push('');
    const cpu = rd.series.filter((x) => x.cpuMsPerRequest);
    if (cpu.length) {
      const names = Object.keys(cpu[0]!.cpuMsPerRequest!);
      lines.push(
        'CPU ms per measured request, by process (user + system, from /proc; postgres: every process of the server):',
        '',
        `| route | clients | ${names.join(' | ')} |`,
        `|---|---|${names.map(() => '---|').join('')}`,
        ...cpu.map(
          (x) =>
            `| \`${x.route}\` | ${x.clients} | ${names.map((k) => n(x.cpuMsPerRequest![k] ?? Number.NaN)).join(' | ')} |`,
        ),
        '',
      );
    }
    const examples = rd.series.flatMap((x) => x.examples.map((e) => `${x.route}: ${e}`));
    if (examples.length)
      lines.push('Examples:', '', ...examples.map((e) => `- \`${e.replace(/`/g, "'")}\``), '');
  }
  if (r.notDone.length) lines.push('## Not measured by this run', '', ...r.notDone.map((x) => `- ${x}`), '');
  return lines.join('\n');
}
