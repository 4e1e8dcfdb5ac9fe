import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys';

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
      throw new Error(
        `${cmd} ${args.join(' ')} failed: ${e.message ?? ''}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
      );
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

/** What {@link writeNatsCredentials} wrote: the server's config file and one user's creds file. */
export interface NatsCredentialFiles {
  /** nats-server config: trusted operator, memory resolver with the account (JetStream on) and a system account. */
  serverConfig: string;
  /** The user's `.creds` file (its JWT and nkey seed), as `NATS_CREDS_FILE` takes it. */
  credsFile: string;
}

const base64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');

/** A NATS JWT (header `ed25519-nkey`) of `claims`, signed by `signer` (NATS decentralized auth). */
function natsJwt(claims: Record<string, unknown>, signer: KeyPair): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const body = base64url(JSON.stringify(claims));
  return `${header}.${body}.${base64url(signer.sign(Buffer.from(`${header}.${body}`)))}`;
}

/**
 * Writes, into `dir`, an operator-mode setup for a private nats-server (what `nsc` would make, which
 * is not installed here): an operator, an account with JetStream and no limits, a system account, and
 * a user of the account whose creds file is what services read from `NATS_CREDS_FILE`. Start the
 * server with `-c <serverConfig>`; a connection without the creds is refused.
 */
export function writeNatsCredentials(dir: string): NatsCredentialFiles {
  const operator = createOperator();
  const account = createAccount();
  const system = createAccount();
  const user = createUser();
  const iat = Math.floor(Date.now() / 1000);
  const claims = (sub: KeyPair, name: string, nats: Record<string, unknown>) => ({
    jti: randomBytes(16).toString('hex'),
    iat,
    sub: sub.getPublicKey(),
    name,
    nats: { version: 2, ...nats },
  });
  const unlimited = { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1 };
  const sign = (c: ReturnType<typeof claims>, issuer: KeyPair) =>
    natsJwt({ ...c, iss: issuer.getPublicKey() }, issuer);
  const operatorJwt = sign(claims(operator, 'test-operator', { type: 'operator' }), operator);
  const accountJwt = sign(
    claims(account, 'test-account', {
      type: 'account',
      limits: { ...unlimited, wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    }),
    operator,
  );
  const systemJwt = sign(
    claims(system, 'SYS', { type: 'account', limits: { ...unlimited, wildcards: true } }),
    operator,
  );
  const userJwt = sign(
    claims(user, 'test-user', { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 }),
    account,
  );
  const serverConfig = join(dir, 'server.conf');
  writeFileSync(
    serverConfig,
    [
      `operator: ${operatorJwt}`,
      `system_account: ${system.getPublicKey()}`,
      'resolver: MEMORY',
      'resolver_preload: {',
      `  ${account.getPublicKey()}: ${accountJwt}`,
      `  ${system.getPublicKey()}: ${systemJwt}`,
      '}',
      '',
    ].join('\n'),
  );
  const credsFile = join(dir, 'user.creds');
  writeFileSync(
    credsFile,
    [
      '-----BEGIN NATS USER JWT-----',
      userJwt,
      '------END NATS USER JWT------',
      '',
      '-----BEGIN USER NKEY SEED-----',
      Buffer.from(user.getSeed()).toString('utf8'),
      '------END USER NKEY SEED------',
      '',
    ].join('\n'),
  );
  return { serverConfig, credsFile };
}
