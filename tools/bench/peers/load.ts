import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The peer libraries of scenario 5 live in `tools/bench/peers/node_modules` (their own
 * package.json and lock, installed by `tools/bench/run.sh` only when scenario 5 runs), never in
 * the root install: nothing outside this folder may import them statically, so the root build,
 * typecheck and CI never need them. They are loaded at run time with `require` from that folder
 * (each ships a CommonJS build; Node 20 cannot `require` an ES module), typed by the small
 * structural interfaces the adapters declare for the calls they make.
 */

/** The peers folder is missing its install: what to run. */
export class PeersNotInstalledError extends Error {
  constructor(peersDir: string, detail: string) {
    super(
      `${detail}: the peer libraries are installed by \`npm run bench\` (tools/bench/run.sh) when scenario 5 runs, or by hand with \`npm ci --prefix ${peersDir}\``,
    );
  }
}

const PackageJson = z.object({ version: z.string() });

/** `require` resolving from `<peersDir>/node_modules`; throws {@link PeersNotInstalledError} when that folder is not installed. */
export function peersRequire(peersDir: string): NodeJS.Require {
  if (!existsSync(join(peersDir, 'node_modules', '.package-lock.json')))
    throw new PeersNotInstalledError(peersDir, `${join(peersDir, 'node_modules')} is not installed`);
  return createRequire(join(peersDir, 'package.json'));
}

/**
 * The installed version of package `name` under `<peersDir>/node_modules` (read from its
 * package.json file, which some packages do not export). Throws {@link PeersNotInstalledError} when it is not installed.
 */
export function installedVersion(peersDir: string, name: string): string {
  const file = join(peersDir, 'node_modules', name, 'package.json');
  if (!existsSync(file)) throw new PeersNotInstalledError(peersDir, `${name} is not installed`);
  return PackageJson.parse(JSON.parse(readFileSync(file, 'utf8'))).version;
}

/** Throws unless every name in `functions` is a function of `mod` (a wrong install fails loudly, not mid-run). */
export function expectFunctions(what: string, mod: unknown, functions: readonly string[]): void {
  for (const name of functions) {
    if (typeof (mod as Record<string, unknown> | null)?.[name] !== 'function')
      throw new Error(`${what}: ${name} is not a function (unexpected version installed?)`);
  }
}

/** The part of `pg` the adapters use (the peers' own copy, so each library gets the pool it expects). */
export interface PgModule {
  Pool: new (config: { connectionString: string; max: number; application_name?: string }) => PgPool;
}
export interface PgPool {
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * A node-postgres pool of the peers' own `pg` with `max` connections. `end()` resolves before the
 * sockets are closed; an error of an idle connection then (the database being dropped) is ignored
 * instead of crashing the bench on an unhandled `error` event.
 */
export function peerPool(pg: PgModule, url: string, max: number, app: string): PgPool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: app });
  pool.on('error', () => undefined);
  return pool;
}
