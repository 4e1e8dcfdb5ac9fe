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
      process.stderr.write(`${name}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  });
}
