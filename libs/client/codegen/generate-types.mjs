// Generates the TypeScript SDK's types (libs/client/src/generated/schema.ts) from the committed
// openapi.json with openapi-typescript (pinned in the root package.json): `paths`, `components`,
// `operations`. Fields with a default stay optional (`defaultNonNullable: false`): a request body
// may leave them out. Deterministic: the same document gives the same text.
//
//   node libs/client/codegen/generate-types.mjs            writes the file (`npm run openapi` does)
//   node libs/client/codegen/generate-types.mjs --stdout   prints it (the staleness spec compares)
//
// Plain ESM, not TypeScript: openapi-typescript's CommonJS build requires an ESM-only dependency,
// which Jest's module loader cannot load; Node itself can. Exit code 0, 1 on failure.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

const here = dirname(fileURLToPath(import.meta.url));
const documentPath = resolve(here, '../../../openapi.json');
const outPath = resolve(here, '../src/generated/schema.ts');

try {
  const document = JSON.parse(readFileSync(documentPath, 'utf8'));
  const ast = await openapiTS(document, { defaultNonNullable: false, silent: true });
  const text = COMMENT_HEADER + astToString(ast);
  if (process.argv.includes('--stdout')) {
    process.stdout.write(text);
  } else {
    writeFileSync(outPath, text);
    process.stderr.write(`openapi: wrote ${outPath}\n`);
  }
} catch (error) {
  process.stderr.write(
    `openapi: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
}
