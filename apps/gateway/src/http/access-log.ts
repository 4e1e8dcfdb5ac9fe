import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Logger } from 'pino';

/**
 * Fastify `onResponse` hook: one access-log line per request, after the answer is sent — `request
 * completed` at `info`, `request errored` at `error` for a 5xx — with `reqId` (the correlation id),
 * `req: { method, url }`, `res: { statusCode }` and `responseTime` (ms); never headers or bodies, so
 * never credentials. Below the line's level it costs one level check.
 *
 * It replaces pino-http's middleware (nestjs-pino's default), which made a child logger with the
 * serialized request and ran the rest of every request in an AsyncLocalStorage context (promise hooks
 * on every await): measured ~20% of the gateway's CPU per `POST /sessions/{id}/turns`. Log lines
 * written while handling a request name it themselves (the problem filter writes the request id).
 */
export function accessLogHook(logger: Logger) {
  return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const statusCode = reply.statusCode;
    const failed = statusCode >= 500;
    const level = failed ? 'error' : 'info';
    if (logger.isLevelEnabled(level)) {
      logger[level](
        {
          reqId: request.id,
          req: { method: request.method, url: request.url },
          res: { statusCode },
          responseTime: Math.round(reply.elapsedTime),
        },
        failed ? 'request errored' : 'request completed',
      );
    }
    done();
  };
}
