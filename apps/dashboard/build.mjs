// Bundles the dashboard (apps/dashboard/src) with esbuild into dist/apps/dashboard: index.html plus
// content-hashed assets/app-<hash>.js and .css, which the gateway serves at /dashboard/ (index.html
// revalidated on every load, the hashed files cached for a year). `npm run build` runs it after tsc.
// `--watch` rebuilds on change (for working on the dashboard against `npm start`).
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const outdir = join(root, 'dist/apps/dashboard');
const watch = process.argv.includes('--watch');

/** Writes index.html naming the hashed bundles of this build (esbuild's metafile says which). */
const htmlPlugin = {
  name: 'index-html',
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length > 0 || !result.metafile) return;
      const outputs = Object.keys(result.metafile.outputs).map((path) => relative(outdir, join(root, path)));
      const js = outputs.find((p) => p.endsWith('.js'));
      const css = outputs.find((p) => p.endsWith('.css'));
      if (!js || !css)
        throw new Error(`dashboard build: expected a .js and a .css output, got ${outputs.join(', ')}`);
      const template = await readFile(join(here, 'src/index.html'), 'utf8');
      const html = template.replace('%APP_CSS%', `./${css}`).replace('%APP_JS%', `./${js}`);
      await writeFile(join(outdir, 'index.html'), html);
      if (!watch)
        process.stdout.write(
          `dashboard: ${outputs.map((p) => basename(p)).join(', ')} -> ${relative(root, outdir)}\n`,
        );
    });
  },
};

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
const options = {
  absWorkingDir: root,
  entryPoints: { app: join(here, 'src/main.tsx') },
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  platform: 'browser',
  minify: true,
  sourcemap: 'linked',
  metafile: true,
  outdir,
  entryNames: 'assets/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(here, 'tsconfig.json'),
  legalComments: 'linked',
  logLevel: 'warning',
  plugins: [htmlPlugin],
};
if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
  process.stdout.write('dashboard: watching apps/dashboard/src\n');
} else {
  await esbuild.build(options);
}
