import { execFileSync } from 'node:child_process';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { Db } from '@threadline/event-store';
import { connectNats } from '@threadline/messaging';

/** The machine and servers a run measured, for the results file. */
export interface MachineFacts {
  host: string;
  kernel: string;
  cores: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  postgres: string;
  /** Postgres settings that change write throughput. */
  postgresSettings: Record<string, string>;
  /** How the services and series reach Postgres: `unix socket <dir>` or `tcp <host:port>`. */
  postgresTransport: string;
  nats: string;
  /** `git rev-parse --short HEAD`, with `+dirty` when the work tree has changes outside bench/results. */
  commit: string;
  /** 1/5/15-minute load averages when the run started (other work on the machine skews results). */
  loadAtStart: number[];
}

function git(root: string, args: string[]): string {
  try {
    return execFileSync('git', args, {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

/** Collects {@link MachineFacts}; asks Postgres (`SHOW`) and NATS (the server's INFO) for their versions. */
export async function machineFacts(opts: {
  root: string;
  postgresUrl: string;
  natsUrl: string;
}): Promise<MachineFacts> {
  const db = await Db.connect({ url: opts.postgresUrl, poolSize: 1, applicationName: 'threadline-bench' });
  const settings: Record<string, string> = {};
  let postgres = '';
  try {
    const [v] = await db.query<{ server_version: string }>('SHOW server_version');
    postgres = v?.server_version ?? '';
    for (const name of [
      'synchronous_commit',
      'fsync',
      'shared_buffers',
      'max_connections',
      'wal_level',
      'commit_delay',
    ]) {
      const [row] = await db.query<Record<string, string>>(`SHOW ${name}`);
      settings[name] = row?.[name] ?? '';
    }
  } finally {
    await db.close();
  }
  const nc = await connectNats({ NATS_URL: opts.natsUrl }, 'threadline-bench-facts');
  const nats = nc.info?.version ?? '';
  await nc.close();
  // The bench's own results (written by earlier runs, committed or not) do not make the code dirty.
  const dirty = git(opts.root, ['status', '--porcelain', '--', '.', ':(exclude)bench/results']) !== '';
  return {
    host: hostname(),
    kernel: release(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? '',
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres,
    postgresSettings: settings,
    postgresTransport: transportOf(opts.postgresUrl),
    nats,
    commit: `${git(opts.root, ['rev-parse', '--short', 'HEAD'])}${dirty ? '+dirty' : ''}`,
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function transportOf(url: string): string {
  const host = decodeURIComponent(new URL(url).hostname);
  return host.startsWith('/') ? `unix socket ${host}` : `tcp ${new URL(url).host}`;
}
