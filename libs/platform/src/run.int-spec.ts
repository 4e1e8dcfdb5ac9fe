import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

// Issue 20: a service that dies says so in one fatal JSON log line, like every other line it writes
// (before, a crash was plain text on stderr, invisible to a search of error-level logs). Runs the
// built `runService` (dist/, `npm run build` first) in a child process.

const ROOT = resolve(__dirname, '../../..');
const PLATFORM = join(ROOT, 'dist/libs/platform/src/index.js');
const run = promisify(execFile);

const FatalLine = z.object({
  level: z.literal(60),
  name: z.literal('svc'),
  msg: z.string(),
  err: z.object({ type: z.string(), message: z.string(), stack: z.string() }),
});

async function dieWith(body: string): Promise<{ code: number; lines: unknown[]; stderr: string }> {
  if (!existsSync(PLATFORM)) throw new Error(`${PLATFORM} is missing: run npm run build first`);
  const script = `const { runService, loadConfig, BaseConfig } = require(${JSON.stringify(PLATFORM)});\n${body}`;
  try {
    await run(process.execPath, ['-e', script], { env: { PATH: process.env['PATH'] }, timeout: 20_000 });
    return { code: 0, lines: [], stderr: '' };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    const lines = e.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
    return { code: e.code, lines, stderr: e.stderr };
  }
}

it('an uncaught exception of a running service is a fatal JSON line, then exit 1', async () => {
  const { code, lines, stderr } = await dieWith(
    `runService('svc', async () => { setTimeout(() => { throw new Error('boom'); }, 10); setTimeout(() => {}, 5000); });`,
  );
  expect(code).toBe(1);
  expect(stderr).toBe('');
  expect(lines).toHaveLength(1);
  const line = FatalLine.parse(lines[0]);
  expect(line).toMatchObject({ msg: 'uncaught exception', err: { message: 'boom' } });
});

it('an unhandled rejection and a boot failure are fatal JSON lines too', async () => {
  const rejected = await dieWith(
    `runService('svc', async () => { void Promise.reject(new Error('lost')); setTimeout(() => {}, 5000); });`,
  );
  expect(rejected.code).toBe(1);
  expect(FatalLine.parse(rejected.lines[0])).toMatchObject({ msg: 'unhandled promise rejection' });
  const boot = await dieWith(`runService('svc', async () => { throw new Error('no database'); });`);
  expect(FatalLine.parse(boot.lines[0])).toMatchObject({
    msg: 'failed to start',
    err: { message: 'no database' },
  });
});

it('an invalid configuration names every bad variable in its fatal line', async () => {
  const { code, lines } = await dieWith(
    `runService('svc', async () => { loadConfig(BaseConfig, { DATABASE_URL: 'nope', LOG_LEVEL: 'loud' }); });`,
  );
  expect(code).toBe(1);
  const line = FatalLine.extend({ problems: z.array(z.string()) }).parse(lines[0]);
  expect(line.problems).toEqual([
    expect.stringMatching(/^LOG_LEVEL/),
    expect.stringMatching(/^DATABASE_URL/),
  ]);
});
