import { z } from 'zod';
import { ConfigError } from './config';

/**
 * Runs a service's `main`: an invalid configuration prints every bad variable and exits 1; any other
 * boot failure is printed and exits 1. SIGINT/SIGTERM shutdown is the app's (`enableShutdownHooks`).
 */
export function runService(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else {
      process.stderr.write(
        `${name}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
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
