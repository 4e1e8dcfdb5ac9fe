import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { ZodError } from 'zod';
import { DatasetError } from './dataset';
import { demoProgram, newRunId, runDemo, type DemoIo } from './main';

function io(): { io: DemoIo; output: () => string } {
  const stdout = new PassThrough();
  const chunks: string[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { io: { stdout, stderr: process.stderr, cwd: __dirname }, output: () => chunks.join('') };
}

describe('runDemo', () => {
  it('with dryRun maps a file given relative to cwd and prints its counts, sending nothing', async () => {
    const { io: demoIo, output } = io();
    const report = await runDemo(
      { file: 'fixtures/dialogs.json', dryRun: true, url: 'http://127.0.0.1:1' },
      demoIo,
    );
    expect(report.exitCode).toBe(0);
    expect(report.file).toBe(join(__dirname, 'fixtures/dialogs.json'));
    expect(report.planned).toEqual({ dialogs: 2, utterances: 10, turns: 6, agentResponses: 5, toolCalls: 4 });
    expect(report.imported).toBeUndefined();
    expect(output()).toContain('2 dialogs, 10 utterances -> 6 turns, 5 agent responses, 4 tool calls');
  });

  it('rejects a file of another format naming its path, before sending anything', async () => {
    await expect(runDemo({ file: '../../package.json' }, io().io)).rejects.toThrow(DatasetError);
    await expect(runDemo({ file: '../../package.json' }, io().io)).rejects.toThrow(
      /package\.json is not a Taskmaster-4 dialog file/,
    );
  });

  it('rejects invalid options', async () => {
    await expect(runDemo({ users: '0', dryRun: true }, io().io)).rejects.toThrow(ZodError);
    await expect(runDemo({ url: 'ftp://x', dryRun: true }, io().io)).rejects.toThrow(/http\(s\) URL/);
  });
});

describe('demoProgram', () => {
  it('parses the flags into runDemo options, env for url and api key', async () => {
    const previous = process.env['THREADLINE_API_KEY'];
    process.env['THREADLINE_API_KEY'] = 'secret';
    try {
      const program = demoProgram();
      await program.parseAsync(
        ['--file', 'x.json', '--users', '5', '--concurrency', '8', '--limit', '10', '--dry-run'],
        { from: 'user' },
      );
      expect(program.opts()).toEqual({
        file: 'x.json',
        url: 'http://127.0.0.1:3000',
        apiKey: 'secret',
        users: '5',
        concurrency: '8',
        limit: '10',
        sample: '20',
        catchUpMs: '15000',
        dryRun: true,
      });
    } finally {
      if (previous === undefined) delete process.env['THREADLINE_API_KEY'];
      else process.env['THREADLINE_API_KEY'] = previous;
    }
  });

  it('makes run ids that are valid metadata values and idempotency key parts', () => {
    expect(newRunId(new Date('2025-01-02T03:04:05.678Z'))).toMatch(/^20250102T030405Z-[0-9a-f]{6}$/);
  });
});
