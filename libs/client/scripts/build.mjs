// Builds the package (`npm run build`, and `npm pack` via prepack): tsc compiles src/ to CommonJS in
// dist/cjs (with declarations), then dist/esm/index.mjs re-exports it for `import`. One implementation
// serves both (Node's "ES module wrapper" for dual packages): `instanceof ThreadlineError` holds whichever
// way the package was loaded. Uses the TypeScript of the enclosing workspace (or a global one).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.lib.json')],
  {
    stdio: 'inherit',
  },
);
const names = Object.keys(require(join(root, 'dist/cjs/index.js')))
  .filter((n) => n !== '__esModule')
  .sort();
mkdirSync(join(root, 'dist/esm'), { recursive: true });
writeFileSync(
  join(root, 'dist/esm/index.mjs'),
  `import cjs from '../cjs/index.js';\n\nexport const { ${names.join(', ')} } = cjs;\n`,
);
writeFileSync(join(root, 'dist/esm/index.d.mts'), `export * from '../cjs/index.js';\n`);
process.stderr.write(`@threadline/client: built dist/cjs and dist/esm (${names.length} runtime exports)\n`);
