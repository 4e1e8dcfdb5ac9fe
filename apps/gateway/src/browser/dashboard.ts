import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';

/** Where the dashboard is served: `/dashboard/` (`/dashboard` answers 301 to it: relative asset URLs need the slash). */
export const DASHBOARD_PREFIX = '/dashboard';

/**
 * The dashboard's built assets: `dist/apps/dashboard` (written by `npm run build`,
 * tools/dashboard/build.mjs), found from this file's place in `dist/apps/gateway/src/browser/`.
 */
export const DASHBOARD_ROOT = resolve(__dirname, '../../../dashboard');

/** `Cache-Control` of the content-hashed bundles (`assets/app-<hash>.js`): a new build has new names. */
export const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';
/** `Cache-Control` of `index.html`: revalidate each load (ETag / Last-Modified), so a deploy shows at once. */
export const REVALIDATE_CACHE = 'no-cache';

/**
 * What the dashboard page may load: its own scripts and styles only (no CDN, no inline script), and
 * API calls to its own origin. Inline styles are allowed for the chart library's positioning.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the dashboard single-page app from `root` at {@link DASHBOARD_PREFIX} with `@fastify/static`:
 * plain Fastify routes, outside Nest, so loading the page needs no credentials (its API calls do).
 * `index.html` is revalidated on every load, the hashed bundles are cached for a year. Returns false
 * (and serves nothing) when `root` has no `index.html`, i.e. the dashboard was not built.
 */
export async function registerDashboard(
  app: NestFastifyApplication,
  root: string = DASHBOARD_ROOT,
): Promise<boolean> {
  if (!existsSync(join(root, 'index.html'))) return false;
  await app.register(fastifyStatic, {
    root,
    prefix: DASHBOARD_PREFIX,
    redirect: true,
    decorateReply: false,
    schemaHide: true,
    index: 'index.html',
    dotfiles: 'deny',
    cacheControl: false,
    setHeaders: (res, path) => {
      res.setHeader('cache-control', path.endsWith('.html') ? REVALIDATE_CACHE : IMMUTABLE_CACHE);
      res.setHeader('content-security-policy', DASHBOARD_CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
    },
  });
  return true;
}
