import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startPythonStack, type PythonStack } from './stack';

/** clients/python, and its test virtualenv (gitignored). */
const PYTHON_ROOT = join(ROOT, 'clients/python');
const VENV = join(PYTHON_ROOT, '.venv');
const VENV_PYTHON = join(VENV, 'bin/python');
/** Records which pyproject/requirements the virtualenv's dependencies were installed for. */
const STAMP = join(VENV, 'threadline-deps.sha256');

const SETUP_TIMEOUT_MS = 240_000;
const PYTEST_TIMEOUT_MS = 240_000;

interface Ran {
  code: number | null;
  output: string;
}

/** Runs a command to its end; answers its exit code and its stdout and stderr interleaved. */
function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? PYTHON_ROOT, env: opts.env ?? process.env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * pip talks to the machine's own package index (pip's configuration) and nothing else is reachable:
 * no retries (also in pip's build subprocesses), so an index that lacks a package fails at once.
 */
const PIP_ENV: NodeJS.ProcessEnv = { ...process.env, PIP_RETRIES: '0', PIP_DISABLE_PIP_VERSION_CHECK: '1' };

async function mustRun(command: string, args: string[], timeoutMs = SETUP_TIMEOUT_MS): Promise<string> {
  const ran = await run(command, args, { timeoutMs, env: PIP_ENV });
  if (ran.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${String(ran.code)}:\n${ran.output}`);
  return ran.output;
}

const pip = (args: string[]) => mustRun(VENV_PYTHON, ['-m', 'pip', 'install', ...args]);

/**
 * The test virtualenv: created with `python3 -m venv` when missing; its dependencies installed when
 * pyproject.toml or test-requirements.txt changed since the last install (else reused); then the SDK
 * itself is built into a wheel and installed from it, as a user would install it.
 *
 * `threadline[langchain]` needs langchain-core, which needs langchain-protocol; when the index lacks
 * it (this machine's does), langchain-core is installed without its dependencies and
 * test-requirements.txt brings the others it imports.
 */
async function prepareVenv(): Promise<void> {
  if (!existsSync(VENV_PYTHON)) await mustRun('python3', ['-m', 'venv', VENV]);
  const version = await mustRun(VENV_PYTHON, ['-c', 'import sys; print(sys.version_info >= (3, 10))']);
  if (version.trim() !== 'True') throw new Error('the Python SDK needs Python 3.10 or newer (python3)');

  const stamp = createHash('sha256')
    .update(readFileSync(join(PYTHON_ROOT, 'pyproject.toml')))
    .update(readFileSync(join(PYTHON_ROOT, 'test-requirements.txt')))
    .digest('hex');
  if (!existsSync(STAMP) || readFileSync(STAMP, 'utf8') !== stamp) {
    // The build backend in the venv, so builds need no isolated environment of their own.
    await pip(['hatchling']);
    try {
      await pip(['--no-build-isolation', '.[test,langchain,langgraph]']);
    } catch {
      await pip(['--no-build-isolation', '.[test]', '-r', 'test-requirements.txt']);
      await pip(['--no-deps', 'langchain-core>=1.0,<2']);
    }
    writeFileSync(STAMP, stamp);
  }

  const wheels = mkdtempSync(join(tmpdir(), 'threadline-wheel-'));
  try {
    await mustRun(VENV_PYTHON, [
      '-m',
      'pip',
      'wheel',
      '--no-deps',
      '--no-build-isolation',
      '-w',
      wheels,
      '.',
    ]);
    const wheel = readdirSync(wheels).find((name) => name.startsWith('threadline-') && name.endsWith('.whl'));
    if (wheel === undefined) throw new Error(`pip wheel made no threadline wheel in ${wheels}`);
    await pip(['--no-deps', '--force-reinstall', join(wheels, wheel)]);
  } finally {
    rmSync(wheels, { recursive: true, force: true });
  }
}

describe('Python SDK (clients/python) against the real stack', () => {
  let stack: PythonStack | undefined;

  beforeAll(async () => {
    // Both at once: the venv is pip's work, the stack node's and Postgres's.
    const [, started] = await Promise.all([prepareVenv(), startPythonStack()]);
    stack = started;
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.stop();
  }, 30_000);

  it(
    'passes pytest',
    async () => {
      if (stack === undefined) throw new Error('the stack did not start');
      const ran = await run(VENV_PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests'], {
        timeoutMs: PYTEST_TIMEOUT_MS,
        env: {
          ...process.env,
          PYTHONDONTWRITEBYTECODE: '1',
          THREADLINE_BASE_URL: stack.baseUrl,
          THREADLINE_API_KEY: stack.adminKey,
          THREADLINE_LIMITED_API_KEY: stack.limitedKey,
        },
      });
      const summary = /(\d+) passed/.exec(ran.output);
      if (ran.code !== 0 || summary === null || Number(summary[1]) === 0) {
        throw new Error(
          `pytest exited ${String(ran.code)}:\n${ran.output}\n--- services ---\n${stack.report()}`,
        );
      }
      expect(Number(summary[1])).toBeGreaterThan(0);
    },
    PYTEST_TIMEOUT_MS + 10_000,
  );
});
