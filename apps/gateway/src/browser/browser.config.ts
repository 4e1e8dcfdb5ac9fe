import { z } from 'zod';

/**
 * One allowed origin: `scheme://host[:port]` (http or https), exactly as a browser sends it in
 * `Origin` (no path, no trailing slash: `https://app.example.com`, `http://127.0.0.1:5173`).
 */
const Origin = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
    } catch {
      return false;
    }
  }, 'an origin like https://app.example.com or http://127.0.0.1:5173 (scheme, host, optional port; no path)');

/**
 * The gateway's browser settings (zod over env; see the README's configuration table):
 *
 * - `CORS_ORIGINS`: comma-separated origins whose pages may call the API from a browser (CORS,
 *   `@fastify/cors`), e.g. `https://app.example.com,http://127.0.0.1:5173`. Unset or empty: none
 *   (no `Access-Control-Allow-Origin` is ever sent; the dashboard at `/dashboard` is same-origin and
 *   needs none). Credentials travel in `Authorization` (an API key or a user token), never cookies.
 */
export const BrowserConfig = z.object({
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((raw) =>
      raw
        .split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin !== ''),
    )
    .pipe(z.array(Origin).max(100)),
});
export type BrowserConfig = z.infer<typeof BrowserConfig>;
