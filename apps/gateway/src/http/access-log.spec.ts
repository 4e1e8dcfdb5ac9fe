import { Writable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import pino from 'pino';
import { accessLogHook } from './access-log';

/** A pino logger at `level` writing its JSON lines into `lines`. */
function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level }, sink) };
}

const request = {
  id: 'req-42',
  method: 'POST',
  url: '/sessions/s1/turns?x=1',
  headers: { authorization: 'Bearer tlk_secret' },
} as unknown as FastifyRequest;
const replyWith = (statusCode: number) => ({ statusCode, elapsedTime: 3.4 }) as unknown as FastifyReply;

/** Runs the hook; pino writes synchronously into the sink. */
function log(hook: ReturnType<typeof accessLogHook>, statusCode: number): void {
  let called = false;
  hook(request, replyWith(statusCode), () => (called = true));
  expect(called).toBe(true);
}

describe('access log', () => {
  it('writes one line per request: id, method, URL, status, response time; no headers', () => {
    const { lines, logger } = capture('info');
    log(accessLogHook(logger), 201);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request completed',
      reqId: 'req-42',
      req: { method: 'POST', url: '/sessions/s1/turns?x=1' },
      res: { statusCode: 201 },
      responseTime: 3,
    });
    expect(JSON.stringify(lines[0])).not.toContain('secret');
  });

  it('a 5xx is an error line, and a level above info hides the others', () => {
    const { lines, logger } = capture('warn');
    const hook = accessLogHook(logger);
    log(hook, 404);
    log(hook, 503);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: 'request errored', res: { statusCode: 503 } });
  });
});
