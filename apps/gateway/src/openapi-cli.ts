import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { renderOpenApiDocument } from './http/openapi-document';

// `npm run openapi` (tools/openapi/run.sh) runs this: writes the gateway's OpenAPI document (what it
// serves at /docs/json) to the committed openapi.json at the repository root, without Postgres or
// NATS. `--check` writes nothing and exits 1 when the file differs. Exit code 0, 1 on failure.

const ROOT = resolve(__dirname, '../../../..');

async function main(): Promise<number> {
  const options = new Command('openapi')
    .description('Writes the OpenAPI document of the gateway to a file')
    .option('--out <file>', 'where to write it', resolve(ROOT, 'openapi.json'))
    .option('--check', 'write nothing; exit 1 when the file is not the current document', false)
    .parse()
    .opts<{ out: string; check: boolean }>();
  const document = await renderOpenApiDocument();
  if (options.check) {
    let current = '';
    try {
      current = readFileSync(options.out, 'utf8');
    } catch {
      // A missing file is stale.
    }
    if (current === document) return 0;
    process.stderr.write(`openapi: ${options.out} is stale; run npm run openapi\n`);
    return 1;
  }
  writeFileSync(options.out, document);
  process.stderr.write(`openapi: wrote ${options.out}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `openapi: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
