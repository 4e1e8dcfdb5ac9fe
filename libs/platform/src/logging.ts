import pino, { type Logger } from 'pino';

/**
 * The process logger (pino, JSON lines). Secrets never reach logs: authorization headers, keys,
 * tokens and passwords are redacted wherever they appear in a logged object.
 */
export function createLogger(service: string, level: string): Logger {
  return pino({
    name: service,
    level,
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
