import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * A Postgres cluster of one test's own, which the test may restart or stop (fault tests): `initdb`
 * of the installed binaries (`pg_config --bindir`) into a temp directory, trust auth, listening on
 * 127.0.0.1:`port` with its socket in that directory. Postgres refuses to run as root, so when the
 * test runs as root the cluster belongs to the `postgres` user (`su postgres`).
 */
export interface PrivatePostgres {
  port: number;
  /** Admin URL (`postgres` database, user `postgres`). */
  adminUrl: string;
  /** `pg_ctl restart -m <mode>` (immediate: no shutdown checkpoint, crash recovery at start). */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl stop -m <mode>`. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl start` (after {@link stop}). */
  start(): Promise<void>;
  /** Stops the cluster (immediate) and removes its directory. Idempotent. */
  destroy(): Promise<void>;
}

function userIds(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Creates and starts a {@link PrivatePostgres} on `port` (fsync off: the machine does not crash, the
 * server does). Resolves when it accepts connections.
 * @throws when `initdb`/`pg_ctl` fail (their output in the message).
 */
export async function startPrivatePostgres(port: number): Promise<PrivatePostgres> {
  const bindir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'tl-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { uid, gid } = userIds('postgres');
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const runAs = async (cmd: string, args: string[]) => {
    const line = [join(bindir, cmd), ...args].map(shellQuote).join(' ');
    try {
      if (asRoot) await exec('su', ['postgres', '-c', line], { timeout: 60_000 });
      else await exec(join(bindir, cmd), args, { timeout: 60_000 });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message?: string };
      throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message ?? ''}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  };
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const ctl = (action: string, extra: string[] = []) =>
    runAs('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options, action, ...extra]);
  await runAs('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  await ctl('start');
  let destroyed = false;
  return {
    port,
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: (mode) => ctl('restart', ['-m', mode]),
    stop: (mode = 'fast') => ctl('stop', ['-m', mode]),
    start: () => ctl('start'),
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await ctl('stop', ['-m', 'immediate']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A nats-server of one test's own (JetStream on, its store in a temp directory). */
export interface PrivateNats {
  port: number;
  url: string;
  /** SIGTERM, wait for the exit, start again with the same store and options. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory. Idempotent. */
  destroy(): Promise<void>;
}

/**
 * Starts `nats-server -a 127.0.0.1 -p <port> -js -sd <tmp>` plus `args` (e.g. `--user u --pass p`, or
 * `-c <config file>`). Resolves when it accepts TCP connections.
 * @throws when it exits at start or does not listen within 10 s.
 */
export async function startPrivateNats(port: number, args: readonly string[] = []): Promise<PrivateNats> {
  const dir = mkdtempSync(join(tmpdir(), 'tl-nats-'));
  let child: ChildProcess | undefined;
  let output = '';
  const launch = async () => {
    output = '';
    const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 10_000;
    while (!/Server is ready/.test(output)) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited at start:\n${output}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start in 10 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const halt = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };
  await launch();
  let destroyed = false;
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    restart: async () => {
      await halt();
      await launch();
    },
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
