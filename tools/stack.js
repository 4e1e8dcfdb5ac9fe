#!/usr/bin/env node
// Helper of tools/start.sh: waits until the gateway answers `GET /health` with 200, then prints where
// the API and its docs are and how long the start took. Exits 0 when ready, 1 after `--timeout-ms`
// (default 180000), and quietly when the process that started it (the stack) has gone.
//   node tools/stack.js wait-ready --url http://127.0.0.1:3000 --started-at <epoch ms>
'use strict';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};

async function waitReady() {
  const url = new URL(option('url', 'http://127.0.0.1:3000'));
  const startedAt = Number(option('started-at', String(Date.now())));
  const timeoutMs = Number(option('timeout-ms', '180000'));
  const parent = process.ppid;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.ppid !== parent) return 0; // the stack stopped before it was ready
    try {
      const res = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) {
        const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
        const base = url.toString().replace(/\/$/, '');
        process.stdout.write(
          `\n  Threadline is up (${seconds} s after npm start)\n` +
            `    API:      ${base}\n` +
            `    API docs: ${base}/docs\n` +
            `    Health:   ${base}/health\n` +
            `  Ctrl-C stops every service.\n\n`,
        );
        return 0;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  process.stderr.write(`threadline: the gateway did not answer ${url}health with 200 within ${timeoutMs} ms\n`);
  return 1;
}

const command = args[0];
if (command === 'wait-ready') {
  waitReady().then((code) => process.exit(code));
} else {
  process.stderr.write('usage: node tools/stack.js wait-ready [--url URL] [--started-at MS] [--timeout-ms MS]\n');
  process.exit(2);
}
