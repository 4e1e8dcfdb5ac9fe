// Builds the package (`npm run build`, and `npm pack` via prepack) as @threadline/client builds: tsc
// compiles src/ to CommonJS in dist/cjs (with declarations), then dist/esm/index.mjs re-exports it for
// `import`, so one implementation serves both. `@threadline/client` stays a peer (its types come from
// ../client/dist, built first when missing). Uses the TypeScript of the enclosing workspace.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const sdk = join(root, '../client');
if (!existsSync(join(sdk, 'dist/cjs/index.d.ts')))
  execFileSync(process.execPath, [join(sdk, 'scripts/build.mjs')], { stdio: 'inherit' });
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.lib.json')],
  {
    stdio: 'inherit',
  },
);
// The runtime export names, read by loading the build with the peer SDK resolvable (NODE_PATH).
const peers = mkdtempSync(join(tmpdir(), 'threadline-peers-'));
mkdirSync(join(peers, '@threadline'));
symlinkSync(sdk, join(peers, '@threadline/client'), 'dir');
const listed = execFileSync(
  process.execPath,
  [
    '-e',
    `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(join(root, 'dist/cjs/index.js'))}))))`,
  ],
  { encoding: 'utf8', env: { ...process.env, NODE_PATH: peers } },
);
rmSync(peers, { recursive: true, force: true });
const names = JSON.parse(listed)
  .filter((n) => n !== '__esModule')
  .sort();
mkdirSync(join(root, 'dist/esm'), { recursive: true });
writeFileSync(
  join(root, 'dist/esm/index.mjs'),
  `import cjs from '../cjs/index.js';\n\nexport const { ${names.join(', ')} } = cjs;\n`,
);
writeFileSync(join(root, 'dist/esm/index.d.mts'), `export * from '../cjs/index.js';\n`);
process.stderr.write(
  `@threadline/client-langchain: built dist/cjs and dist/esm (${names.length} runtime exports)\n`,
);
