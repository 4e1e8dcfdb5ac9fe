import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { freePort } from '@threadline/stack';

/** One step of tearing down what the harness made; run in reverse order of registration. */
type Teardown = { name: string; run: () => void };

/**
 * Everything the harness started or made (Postgres cluster, NATS nodes, services, the temp
 * directory), torn down on a normal end, on SIGINT/SIGTERM and on an uncaught error. Each step is
 * synchronous (SIGKILL, `pg_ctl stop -m immediate`, `rm -rf`), so it also runs from `process.on('exit')`.
 */
export class Cleanup {
  private readonly steps: Teardown[] = [];
  private done = false;

  constructor() {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`chaos: ${signal}: cleaning up\n`);
      this.runAll();
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('exit', () => this.runAll());
  }

  add(name: string, run: () => void): void {
    this.steps.push({ name, run });
  }

  /** Runs every step once, newest first; a failing step is reported and the others still run. */
  runAll(): void {
    if (this.done) return;
    this.done = true;
    for (const step of this.steps.reverse()) {
      try {
        step.run();
      } catch (error) {
        process.stderr.write(`chaos: cleanup of ${step.name} failed: ${String(error)}\n`);
      }
    }
  }
}

/** A temp directory owned by user `postgres` (initdb refuses root), removed by `cleanup`. */
export function makeWorkDir(cleanup: Cleanup): string {
  const dir = mkdtempSync(join(tmpdir(), 'threadline-chaos-'));
  cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const execFileAsync = promisify(execFile);

const PG_BIN = (): string => execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();

/** argv that runs `cmd args` as user postgres when we are root (initdb and pg_ctl refuse root). */
function asPostgres(cmd: string, args: readonly string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, [...args]];
}

function runSync(cmd: string, args: readonly string[], timeoutMs: number): string {
  const [file, argv] = asPostgres(cmd, args);
  return execFileSync(file, argv, {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * A Postgres 15 cluster of the harness's own: `initdb` into `<workDir>/pg` with the installed
 * binaries (`pg_config --bindir`), listening on 127.0.0.1:`port` and a socket in the work dir.
 * `fsync=off` only: the harness kills processes, never the machine, so what was written to the kernel
 * survives; `synchronous_commit` stays on, since with it off an immediate shutdown really loses the
 * last acknowledged commits (a first run lost 4 acknowledged turns that way). Stopped (`-m immediate`) on cleanup.
 */
export class PgCluster {
  readonly dataDir: string;
  private readonly bin = PG_BIN();

  private constructor(
    readonly workDir: string,
    readonly port: number,
  ) {
    this.dataDir = join(workDir, 'pg');
  }

  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Runs initdb and starts the server; resolves once it accepts connections (pg_ctl -w). */
  static async start(workDir: string, cleanup: Cleanup): Promise<PgCluster> {
    const cluster = new PgCluster(workDir, await freePort());
    if (process.getuid?.() === 0) chownSync(workDir, uidOf('postgres'), gidOf('postgres'));
    runSync(
      join(cluster.bin, 'initdb'),
      ['-D', cluster.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'],
      120_000,
    );
    writeFileSync(
      join(cluster.dataDir, 'conf.d-chaos.conf'),
      [
        `listen_addresses = '127.0.0.1'`,
        `port = ${cluster.port}`,
        `unix_socket_directories = '${workDir}'`,
        `fsync = off`,
        `max_connections = 200`,
        `shared_buffers = '128MB'`,
        '',
      ].join('\n'),
    );
    appendFileSync(join(cluster.dataDir, 'postgresql.conf'), `\ninclude 'conf.d-chaos.conf'\n`);
    cleanup.add('postgres', () => cluster.stopSync());
    cluster.pgCtl(['start', '-w', '-t', '60', '-l', join(workDir, 'postgres.log')]);
    return cluster;
  }

  private pgCtl(args: readonly string[]): string {
    return runSync(join(this.bin, 'pg_ctl'), ['-D', this.dataDir, ...args], 90_000);
  }

  /**
   * `pg_ctl restart -m <mode>` (asynchronous: the load keeps running meanwhile); resolves when the
   * server accepts connections again (-w).
   */
  async restart(mode: 'fast' | 'immediate'): Promise<void> {
    const [file, argv] = asPostgres(join(this.bin, 'pg_ctl'), [
      '-D',
      this.dataDir,
      'restart',
      '-w',
      '-t',
      '60',
      '-m',
      mode,
      '-l',
      join(this.workDir, 'postgres.log'),
    ]);
    await execFileAsync(file, argv, { timeout: 90_000 });
  }

  stopSync(): void {
    if (!existsSync(join(this.dataDir, 'postmaster.pid'))) return;
    try {
      this.pgCtl(['stop', '-w', '-t', '20', '-m', 'immediate']);
    } catch {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }
  }
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}

/** One node of the NATS cluster. */
interface NatsNode {
  name: string;
  clientPort: number;
  clusterPort: number;
  storeDir: string;
  child?: ChildProcess | undefined;
  exit?: Promise<void> | undefined;
}

/**
 * A 3-node NATS cluster of the harness's own (the installed `nats-server`, JetStream on, file store
 * per node, `--cluster`/`--routes` on loopback ports), for R3 streams. Each node runs in its own
 * process group; every node is SIGKILLed on cleanup.
 */
export class NatsCluster {
  private constructor(
    readonly nodes: NatsNode[],
    private readonly workDir: string,
  ) {}

  /** Client URLs of every node, comma-separated (the services' NATS_URL). */
  get url(): string {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.clientPort}`).join(',');
  }

  static async start(workDir: string, size: number, cleanup: Cleanup): Promise<NatsCluster> {
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      nodes.push({
        name: `chaos-n${i + 1}`,
        clientPort: await freePort(),
        clusterPort: await freePort(),
        storeDir: join(workDir, `nats-n${i + 1}`),
      });
    }
    const cluster = new NatsCluster(nodes, workDir);
    cleanup.add('nats', () => {
      for (const n of cluster.nodes) cluster.killSync(n);
    });
    for (const n of nodes) cluster.startNode(n);
    await Promise.all(nodes.map((n) => waitForPort(n.clientPort, 20_000)));
    return cluster;
  }

  private startNode(node: NatsNode): void {
    mkdirSync(node.storeDir, { recursive: true });
    const routes = this.nodes
      .filter((n) => n !== node)
      .map((n) => `nats-route://127.0.0.1:${n.clusterPort}`)
      .join(',');
    const log = join(this.workDir, `${node.name}.log`);
    const child = spawn(
      'nats-server',
      [
        '-a',
        '127.0.0.1',
        '-p',
        String(node.clientPort),
        '-n',
        node.name,
        '-js',
        '-sd',
        node.storeDir,
        '--cluster_name',
        'threadline-chaos',
        '--cluster',
        `nats://127.0.0.1:${node.clusterPort}`,
        '--routes',
        routes,
        '-l',
        log,
      ],
      { detached: true, stdio: 'ignore' },
    );
    node.child = child;
    node.exit = new Promise((done) => child.once('exit', () => done()));
  }

  private killSync(node: NatsNode): void {
    const pid = node.child?.pid;
    if (pid !== undefined && node.child?.exitCode === null && node.child.signalCode === null) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  /** Stops node `index` (SIGTERM: a clean shutdown, as a rolling restart does; SIGKILL after 10 s). */
  async stopNode(index: number): Promise<void> {
    const node = this.nodes[index];
    if (!node?.child?.pid) return;
    const exited = node.exit;
    process.kill(-node.child.pid, 'SIGTERM');
    const timer = setTimeout(() => this.killSync(node), 10_000);
    await exited;
    clearTimeout(timer);
    node.child = undefined;
  }

  /** Starts node `index` again on the same ports and store; resolves when its client port answers. */
  async startAgain(index: number): Promise<void> {
    const node = this.nodes[index];
    if (!node) return;
    this.startNode(node);
    await waitForPort(node.clientPort, 20_000);
  }
}

/** Resolves once 127.0.0.1:`port` accepts a TCP connection; throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`127.0.0.1:${port} did not accept connections in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
