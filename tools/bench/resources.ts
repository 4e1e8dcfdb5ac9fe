import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Memory and CPU of one process over a measured window. */
export interface ProcessUsage {
  name: string;
  pid: number;
  /** Peak resident set since the process started (`VmHWM` of /proc/<pid>/status at the end), MB. */
  peakRssMb: number;
  /** Highest `VmRSS` sampled during the window, MB. */
  maxSampledRssMb: number;
  /** RSS at the start of the window, MB. */
  startRssMb: number;
  /** CPU time (user + system) during the window over its wall time, in % of one core. */
  cpuPercent: number;
}

/** Whole-machine CPU use during the window (all processes, from /proc/stat), % of all cores. */
export interface MachineUsage {
  cpuBusyPercent: number;
  cores: number;
  /** CPU of every `postgres` process during the window, % of one core (all databases: other users' load included). */
  postgresCpuPercent: number;
  /** CPU of `nats-server` during the window, % of one core. */
  natsCpuPercent: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux (sysconf(_SC_CLK_TCK) is 100 on every mainstream kernel)

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** utime + stime of `pid` in clock ticks (NaN when it is gone). */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU ticks of every process whose `comm` is `comm`, by pid. */
export function ticksByComm(comm: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      out.set(Number(entry), cpuTicks(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Ticks spent between two snapshots (a pid new in `after` counts its whole life; a gone pid is lost). */
function spent(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, t] of after) if (Number.isFinite(t)) sum += t - (before.get(pid) ?? 0);
  return sum;
}

/**
 * CPU ms spent per unit of work (a turn, a request) by a process that used `cpuPercent` of one core
 * while `unitsPerSecond` units were done: steadier across runs and machines than the rate itself, and
 * what a change saves. NaN when nothing was done. Rounded to µs.
 */
export function cpuMsPerUnit(cpuPercent: number, unitsPerSecond: number): number {
  return unitsPerSecond > 0 ? Math.round((cpuPercent * 10 * 1000) / unitsPerSecond) / 1000 : Number.NaN;
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

/**
 * Samples every `intervalMs` (default 250) the RSS of each process in `procs` (scenario 8) and, at
 * `stop()`, returns each one's peak RSS (VmHWM), highest sampled RSS, and CPU % of one core over the
 * window, plus the whole machine's busy CPU %. Linux only (/proc).
 */
export function startSampler(procs: readonly { name: string; pid: number }[], intervalMs = 250) {
  const t0 = Date.now();
  const m0 = machineTicks();
  const pg0 = ticksByComm('postgres');
  const nats0 = ticksByComm('nats-server');
  const start = procs.map((p) => ({
    ...p,
    ticks: cpuTicks(p.pid),
    rss: statusKb(p.pid, 'VmRSS'),
    maxRss: statusKb(p.pid, 'VmRSS'),
  }));
  const timer = setInterval(() => {
    for (const p of start) {
      const rss = statusKb(p.pid, 'VmRSS');
      if (rss > p.maxRss) p.maxRss = rss;
    }
  }, intervalMs);
  timer.unref();
  return {
    stop(): { processes: ProcessUsage[]; machine: MachineUsage } {
      clearInterval(timer);
      const seconds = (Date.now() - t0) / 1000;
      const m1 = machineTicks();
      const pct = (ticks: number) => Math.round((ticks / CLOCK_TICKS / seconds) * 1000) / 10;
      const processes = start.map((p) => ({
        name: p.name,
        pid: p.pid,
        peakRssMb: mb(statusKb(p.pid, 'VmHWM')),
        maxSampledRssMb: mb(p.maxRss),
        startRssMb: mb(p.rss),
        cpuPercent: Math.round(((cpuTicks(p.pid) - p.ticks) / CLOCK_TICKS / seconds) * 1000) / 10,
      }));
      const total = m1.total - m0.total;
      return {
        processes,
        machine: {
          cpuBusyPercent: total > 0 ? Math.round(((m1.busy - m0.busy) / total) * 1000) / 10 : Number.NaN,
          cores: cpus().length,
          postgresCpuPercent: pct(spent(pg0, ticksByComm('postgres'))),
          natsCpuPercent: pct(spent(nats0, ticksByComm('nats-server'))),
        },
      };
    },
  };
}
