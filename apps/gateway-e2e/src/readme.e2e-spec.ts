import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { type Stack, startStack } from './stack';

// The README's curl examples, run top to bottom as a new user would paste them, against a fresh
// stack: every shell block that talks to `$API`, in order, in one bash with `set -euo pipefail`.
// Each curl call's HTTP status is checked: 2xx, or the status its line ends with (`# 404`).

const run = promisify(execFile);
const README = resolve(__dirname, '../../../README.md');
const README_URL = 'http://localhost:3000';

/** The ```sh / ```bash blocks of `markdown` that use `$API`, in order. */
export function apiBlocks(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/^ *```(?:sh|bash)\n([\s\S]*?)^ *```$/gm)].map((m) => m[1] ?? '');
  return blocks.filter((b) => b.includes('$API'));
}

/**
 * The blocks as one script: every `curl` becomes `readme_curl <expected>`, a function that records
 * `STATUS <expected> <line> <status>` on stderr (expected: the `# NNN` ending the line, else `2xx`).
 */
export function scriptOf(blocks: readonly string[], baseUrl: string): string {
  let line = 0;
  const body = blocks
    .join('\n')
    .replaceAll(README_URL, baseUrl)
    .split('\n')
    .map((text) => {
      const expected = /#\s*(\d{3})\b[^#]*$/.exec(text)?.[1] ?? '2xx';
      line += 1;
      return text.replace(/(^|\$\(|\s)curl /g, `$1readme_curl ${expected} ${line} `);
    })
    .join('\n');
  return [
    'set -euo pipefail',
    'readme_curl() {',
    '  local expected=$1 line=$2; shift 2',
    '  command curl -w "%{stderr}STATUS $expected $line %{http_code}\\n" "$@"',
    '}',
    body,
  ].join('\n');
}

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ tenantId: 'default' });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

it('finds the examples of every section that has them', () => {
  const blocks = apiBlocks(readFileSync(README, 'utf8'));
  expect(blocks.length).toBeGreaterThanOrEqual(6);
  expect(blocks.join('\n')).toContain('/sessions/s-42/turns');
});

it('runs every curl example of the README in order, each answering the status it shows', async () => {
  const script = scriptOf(apiBlocks(readFileSync(README, 'utf8')), stack.baseUrl);
  const calls = (script.match(/readme_curl \S+ \d+ /g) ?? []).length;
  const { stdout, stderr } = await run('bash', ['-c', script], {
    env: { ...process.env, THREADLINE_API_KEY: stack.adminKey.key },
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`the README's examples stopped: ${error.message}\n${error.stderr ?? ''}\n${error.stdout ?? ''}`);
  });
  const statuses = stderr
    .split('\n')
    .flatMap((l) => (l.startsWith('STATUS ') ? [l.split(' ')] : []))
    .map(([, expected, line, status]) => ({ expected, line: Number(line), status }));
  expect(statuses).toHaveLength(calls);
  const wrong = statuses.filter(({ expected, status }) =>
    expected === '2xx' ? !/^2\d\d$/.test(status ?? '') : status !== expected,
  );
  expect({ wrong, stdout: wrong.length > 0 ? stdout.slice(-4000) : '' }).toEqual({ wrong: [], stdout: '' });
}, 180_000);
