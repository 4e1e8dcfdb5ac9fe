import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

const run = promisify(execFile);

/** The five services, in start order, each run from its build output `dist/apps/<name>/src/main.js`. */
export const SERVICES = [
  'session-service',
  'chat-log-service',
  'cleanup-worker',
  'analytics-projector',
  'gateway',
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Output kept per service: the last 64 KiB. */
const OUTPUT_LIMIT = 64 * 1024;

/** One running service process and what it wrote (stdout and stderr interleaved, last 64 KiB). */
export interface ServiceProcess {
  name: ServiceName;
  pid: number;
  child: ChildProcess;
  output: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
  /** Set by {@link ServiceGroup.stop}: an exit from then on is expected. */
  stopping: boolean;
}

/** An API key made with the keys CLI (`--json`): the key (shown once) and its public id. */
export const CreatedKey = z.object({
  key: z.string().min(1),
  key_id: z.string(),
  tenant_id: z.string(),
  role: z.enum(['admin', 'service']),
});
export type CreatedKey = z.infer<typeof CreatedKey>;

/** A TCP port free on 127.0.0.1 now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Runs the built keys CLI (`<root>/dist/apps/gateway/src/keys-cli.js`, as `npm run keys` does) against
 * `databaseUrl` with `LOG_LEVEL=warn`; answers its stdout.
 * @throws when the CLI is not built, exits non-zero or runs longer than `timeoutMs`.
 */
export async function runKeysCli(opts: {
  root: string;
  databaseUrl: string;
  args: readonly string[];
  timeoutMs: number;
}): Promise<string> {
  const cli = join(opts.root, 'dist/apps/gateway/src/keys-cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  const { stdout } = await run(process.execPath, [cli, ...opts.args], {
    cwd: opts.root,
    env: { ...process.env, DATABASE_URL: opts.databaseUrl, LOG_LEVEL: 'warn' },
    timeout: opts.timeoutMs,
  });
  return stdout;
}

export interface ServiceGroupOptions {
  /** Repository root (where `dist/` is); the services' working directory. */
  root: string;
  /** Time a service has to exit after SIGTERM before SIGKILL, ms. */
  stopGraceMs: number;
  /** Said when a service's build output is missing (e.g. `npm run build`). */
  buildHint: string;
  /** Called with every chunk a service writes (stdout and stderr), besides keeping its last 64 KiB. */
  onOutput?: (name: ServiceName, chunk: Buffer) => void;
}

/**
 * The built services of one stack as child processes, started like a deployment would (`node
 * dist/apps/<name>/src/main.js`, the environment given), for the gateway e2e tests and the benchmark:
 * each of them makes its database, stream and keys, then launches the services here, waits until they
 * answer and stops them. Shared so both run the stack the same way.
 */
export class ServiceGroup {
  readonly processes: ServiceProcess[] = [];

  constructor(private readonly options: ServiceGroupOptions) {}

  /**
   * Starts service `name` with environment `env` and node flags `nodeArgs` before its main file.
   * @throws when its build output is missing or it could not be spawned.
   */
  launch(name: ServiceName, env: NodeJS.ProcessEnv, nodeArgs: readonly string[] = []): ServiceProcess {
    const main = join(this.options.root, 'dist/apps', name, 'src/main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: build first (${this.options.buildHint})`);
    const child = spawn(process.execPath, [...nodeArgs, main], {
      cwd: this.options.root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new Error(`${name} did not start`);
    const proc: ServiceProcess = {
      name,
      pid: child.pid,
      child,
      output: '',
      exited: false,
      stopping: false,
      exit: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal }))),
    };
    const keep = (chunk: Buffer) => {
      proc.output = (proc.output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
      this.options.onOutput?.(name, chunk);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    void proc.exit.then(({ code, signal }) => {
      proc.exited = true;
      if (!proc.stopping) proc.output += `\n[${name} exited unexpectedly: code ${code}, signal ${signal}]\n`;
    });
    this.processes.push(proc);
    return proc;
  }

  /**
   * Polls `url` (every 100 ms, 2 s per request, `authorization: Bearer <apiKey>` when given) until it
   * answers 200.
   * @throws at `deadline` (epoch ms), or as soon as a service has exited.
   */
  async waitFor200(url: string, deadline: number, apiKey?: string): Promise<void> {
    let last = 'no answer';
    for (;;) {
      const dead = this.processes.find((p) => p.exited);
      if (dead) throw new Error(`${dead.name} exited while the stack was starting`);
      try {
        const res = await fetch(url, {
          signal: AbortSignal.timeout(2_000),
          headers: apiKey !== undefined ? { authorization: `Bearer ${apiKey}` } : {},
        });
        if (res.status === 200) return;
        last = `status ${res.status}`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > deadline) throw new Error(`${url} did not answer 200 in time (last: ${last})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** What each service wrote so far (headed by its name and pid), and how those that stopped unexpectedly exited. */
  report(): string {
    return this.processes
      .filter((p) => p.output.trim() !== '')
      .map((p) => `----- ${p.name} (pid ${p.pid}) -----\n${p.output.trim()}`)
      .join('\n');
  }

  /** SIGTERM to the processes of service `name`, SIGKILL `stopGraceMs` later; resolves when they exited. */
  async stopOne(name: ServiceName): Promise<void> {
    await Promise.all(this.processes.filter((p) => p.name === name).map((p) => this.stopProcess(p)));
  }

  /** SIGTERM to every service, SIGKILL to those still running `stopGraceMs` later; resolves when all exited. */
  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => this.stopProcess(p)));
  }

  private async stopProcess(proc: ServiceProcess): Promise<void> {
    proc.stopping = true;
    if (proc.exited) return;
    proc.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      proc.exit.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.options.stopGraceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut && !proc.exited) {
      proc.output += `\n[${proc.name} did not stop within ${this.options.stopGraceMs} ms of SIGTERM: SIGKILL]\n`;
      proc.child.kill('SIGKILL');
      await proc.exit;
    }
  }
}
