import { styleText } from 'node:util';
import { prettyFactory } from 'pino-pretty';
import { z } from 'zod';
import { CreatedKey, runKeysCli, ServiceGroup, type ServiceName, SERVICES } from '@threadline/stack';
import { findRepoRoot } from '../demo/dataset';

/**
 * `npm start`'s supervisor (run by tools/start.sh after install, build and migrations): creates the
 * first admin key when the database has none, runs the five built services as child processes with
 * their output prefixed by name (pino's JSON lines made human-readable by pino-pretty when stdout is
 * a terminal, JSON otherwise), prints a banner once the gateway's `/health` is 200, and on Ctrl-C
 * (SIGINT) or SIGTERM stops every service (SIGTERM, SIGKILL after the grace) and says in one line
 * whether all stopped cleanly. When a service exits by itself, the others are stopped and the exit
 * code is 1.
 */

const Env = z.object({
  PORT: z.coerce.number().int().min(1).max(65_535).default(3000),
  AUTH_MODE: z.enum(['api_key', 'none']).default('api_key'),
  DATABASE_URL: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/threadline'),
  DEFAULT_TENANT_ID: z.string().min(1).default('default'),
  /** `auto` (default): pretty on a terminal, JSON otherwise. */
  LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
  /** Node flags of every service process (tools/lib.sh's SERVICE_NODE_FLAGS). */
  THREADLINE_NODE_FLAGS: z.string().default(''),
  /** When `npm start` began (epoch ms), for the time to healthy in the banner. */
  THREADLINE_STARTED_AT: z.coerce.number().int().optional(),
});
type Env = z.infer<typeof Env>;

const READY_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 10_000;
const KEYS_TIMEOUT_MS = 60_000;
const COLORS = ['blue', 'magenta', 'cyan', 'yellow', 'green'] as const;

/** A box around `lines` (monospace terminal), as the banner shows the admin key. */
export function box(lines: readonly string[]): string {
  const width = Math.max(...lines.map((l) => l.length));
  const rule = '─'.repeat(width + 2);
  return [`┌${rule}┐`, ...lines.map((l) => `│ ${l.padEnd(width)} │`), `└${rule}┘`].join('\n');
}

/** The banner printed once the gateway is healthy; `createdKey` is the first admin key, if made now. */
export function banner(opts: {
  baseUrl: string;
  seconds: number | undefined;
  tenantId: string;
  authMode: Env['AUTH_MODE'];
  createdKey?: CreatedKey;
}): string {
  const took = opts.seconds === undefined ? '' : ` (${opts.seconds.toFixed(1)} s after npm start)`;
  const lines = [
    '',
    `  Threadline is up${took}`,
    `    API:       ${opts.baseUrl}`,
    `    API docs:  ${opts.baseUrl}/docs`,
    `    Health:    ${opts.baseUrl}/health`,
  ];
  const more = `npm run keys -- create --tenant ${opts.tenantId} --role admin --name <who>`;
  if (opts.authMode === 'none') lines.push('    Auth:      off (AUTH_MODE=none): no key needed');
  else if (opts.createdKey) {
    lines.push(
      '',
      box([
        `First admin API key (tenant ${opts.createdKey.tenant_id}, ${opts.createdKey.key_id}):`,
        '',
        `  ${opts.createdKey.key}`,
        '',
        'Shown once, only its hash is stored: keep it now.',
        'Send it as: Authorization: Bearer <key>',
        `More keys:  ${more}`,
      ]).replace(/^/gm, '  '),
    );
  } else {
    lines.push(`    API keys:  the database has keys already; make one with`, `               ${more}`);
  }
  lines.push('  Ctrl-C stops every service.', '');
  return lines.join('\n');
}

async function main(): Promise<number> {
  const env = Env.parse(process.env);
  const root = findRepoRoot(__dirname);
  if (root === undefined) throw new Error(`no repository above ${__dirname}`);
  const baseUrl = `http://localhost:${env.PORT}`;
  const pretty = env.LOG_FORMAT === 'pretty' || (env.LOG_FORMAT === 'auto' && process.stdout.isTTY === true);

  let createdKey: CreatedKey | undefined;
  if (env.AUTH_MODE === 'api_key') {
    const out = (
      await runKeysCli({
        root,
        databaseUrl: env.DATABASE_URL,
        args: ['bootstrap', '--json'],
        timeoutMs: KEYS_TIMEOUT_MS,
      })
    ).trim();
    if (out !== '') createdKey = CreatedKey.parse(JSON.parse(out));
  }

  const format = prettyFactory({
    colorize: pretty,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    ignore: 'pid,hostname,name,context',
    messageFormat: '{if context}{context}: {end}{msg}',
  });
  const width = Math.max(...SERVICES.map((s) => s.length));
  const prefixOf = (name: ServiceName) => {
    const text = `[${name}]`.padEnd(width + 2);
    return pretty ? styleText(COLORS[SERVICES.indexOf(name) % COLORS.length] ?? 'blue', text) : text;
  };
  const partial = new Map<ServiceName, string>();
  const printLine = (name: ServiceName, line: string) => {
    let text = line;
    if (pretty && line.startsWith('{')) {
      try {
        text = format(JSON.parse(line) as object).trimEnd();
      } catch {
        // not a JSON log line: as written
      }
    }
    process.stdout.write(`${text.replace(/^/gm, `${prefixOf(name)} `)}\n`);
  };
  const group = new ServiceGroup({
    root,
    stopGraceMs: STOP_GRACE_MS,
    buildHint: 'npm run build',
    onOutput: (name, chunk) => {
      const lines = ((partial.get(name) ?? '') + chunk.toString('utf8')).split('\n');
      partial.set(name, lines.pop() ?? '');
      for (const line of lines) printLine(name, line);
    },
  });

  let stopping: Promise<number> | undefined;
  const stopAll = (why: string): Promise<number> => {
    stopping ??= (async () => {
      const began = Date.now();
      for (const p of group.processes) p.stopping = true;
      process.stdout.write(`\nthreadline: ${why}; stopping ${group.processes.length} services...\n`);
      await group.stop();
      for (const [name, rest] of partial) if (rest !== '') printLine(name, rest);
      const killed = group.processes.filter((p) => p.output.includes('did not stop within'));
      const took = ((Date.now() - began) / 1000).toFixed(1);
      if (killed.length === 0) {
        process.stdout.write(
          `threadline: every service stopped cleanly (${group.processes.length} of ${group.processes.length}, ${took} s)\n`,
        );
        return 0;
      }
      process.stdout.write(
        `threadline: stopped in ${took} s; ${killed.map((p) => p.name).join(', ')} did not stop within ${STOP_GRACE_MS} ms and were killed\n`,
      );
      return 1;
    })();
    return stopping;
  };

  const nodeArgs = env.THREADLINE_NODE_FLAGS.split(' ').filter((a) => a !== '');
  for (const name of SERVICES) group.launch(name, process.env, nodeArgs);

  const stopped = new Promise<number>((done) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => void stopAll(signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM').then(done));
    }
    for (const p of group.processes) {
      void p.exit.then(({ code, signal }) => {
        if (p.stopping) return;
        process.stdout.write(`threadline: ${p.name} exited by itself (code ${code}, signal ${signal})\n`);
        void stopAll(`${p.name} exited`).then(() => done(1));
      });
    }
  });

  try {
    await group.waitFor200(`${baseUrl}/health`, Date.now() + READY_TIMEOUT_MS);
    const seconds =
      env.THREADLINE_STARTED_AT === undefined ? undefined : (Date.now() - env.THREADLINE_STARTED_AT) / 1000;
    process.stdout.write(
      `${banner({ baseUrl, seconds, tenantId: env.DEFAULT_TENANT_ID, authMode: env.AUTH_MODE, ...(createdKey ? { createdKey } : {}) })}\n`,
    );
  } catch (error) {
    if (stopping === undefined) {
      process.stdout.write(
        `threadline: the stack did not become healthy: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      await stopAll('start failed');
      return 1;
    }
  }
  return stopped;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `threadline: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
