import pino, { type Logger } from 'pino';
import { traceFields } from './tracing';

/**
 * The process logger (pino, JSON lines), with `trace_id`/`span_id` when tracing is on. Secrets never reach logs: authorization headers, keys,
 * tokens and passwords are redacted wherever they appear in a logged object.
 */
export function createLogger(service: string, level: string): Logger {
  return pino({
    name: service,
    level,
    // When tracing is on, every line carries the active span's `trace_id` and `span_id`.
    mixin: traceFields,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        '*.password',
        '*.token',
        '*.apiKey',
        'config.DATABASE_URL',
        'config.NATS_PASS',
      ],
      censor: '[redacted]',
    },
  });
}

export type { Logger };

/**
 * What a log line says of a thrown value: `{ type, message, stack }` for an Error (and its `cause`,
 * the same way, when it has one), `{ message }` with its JSON (or `String()`) for anything else.
 * `JSON.stringify` of an Error gives `{}`: log this instead.
 */
export function errorDetails(error: unknown): {
  type?: string;
  message: string;
  stack?: string;
  cause?: unknown;
} {
  if (error instanceof Error) {
    return {
      type: error.name,
      message: error.message,
      ...(error.stack !== undefined ? { stack: error.stack } : {}),
      ...(error.cause !== undefined ? { cause: errorDetails(error.cause) } : {}),
    };
  }
  try {
    return { message: JSON.stringify(error) ?? String(error) };
  } catch {
    return { message: String(error) };
  }
}
