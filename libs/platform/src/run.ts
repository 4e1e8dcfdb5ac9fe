import { z } from 'zod';
import { ConfigError } from './config';
import { createLogger, type Logger } from './logging';

/**
 * Logs `error` as one fatal JSON line of `logger` (pino: `err` with its type, message and stack) and
 * exits with code 1. pino writes to stdout synchronously, so the line is out before the exit.
 */
function die(logger: Logger, error: unknown, msg: string, extra: object = {}): never {
  logger.fatal({ err: error, ...extra }, msg);
  process.exit(1);
}

/**
 * Runs a service's `main`. Every way it dies is one fatal JSON log line like every other line of the
 * service (pino, `name` = the service; found by a search of error-level logs), then exit code 1: an
 * invalid configuration (`problems`: every bad variable), any other boot failure, and, once running,
 * an uncaught exception or an unhandled promise rejection (Node's default would print plain text to
 * stderr). SIGINT/SIGTERM shutdown is the app's (`enableShutdownHooks`).
 */
export function runService(name: string, main: () => Promise<void>): void {
  // The service's level is not known before its configuration is: fatal lines pass any level.
  const logger = createLogger(name, 'info');
  process.on('uncaughtException', (error) => die(logger, error, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => die(logger, reason, 'unhandled promise rejection'));
  main().catch((error: unknown) => {
    if (error instanceof ConfigError)
      die(logger, error, `invalid configuration: ${error.problems.join('; ')}`, { problems: error.problems });
    die(logger, error, 'failed to start');
  });
}

/** The sub-commands of a service's `main.js`: nothing (or `serve`) runs the service, `migrate` migrates and exits. */
export const ServiceCommand = z.enum(['serve', 'migrate']).default('serve');
export type ServiceCommand = z.infer<typeof ServiceCommand>;

/**
 * Parses `argv[2]` of `node main.js [serve|migrate]`.
 * @throws ConfigError naming the accepted commands when the argument is anything else.
 */
export function parseServiceCommand(argv: readonly string[] = process.argv): ServiceCommand {
  const parsed = ServiceCommand.safeParse(argv[2]);
  if (!parsed.success)
    throw new ConfigError([`command "${argv[2]}": unknown, use "serve" (default) or "migrate"`]);
  return parsed.data;
}
