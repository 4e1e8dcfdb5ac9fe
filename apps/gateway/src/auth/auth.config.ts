import { z } from 'zod';
import { ConfigError } from '@threadline/platform';

const unsetWhenEmpty = <S extends z.ZodType>(schema: S) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

/**
 * The gateway's authentication and rate-limit settings (zod over env; see the README "Security"):
 *
 * - `AUTH_MODE`: `api_key` (default): every route but `/health` and `/docs` needs
 *   `Authorization: Bearer <API key or user token>`. `none`: no authentication, every request is an
 *   admin of `DEFAULT_TENANT_ID` (local experiments only: warned at every start, refused when
 *   `NODE_ENV=production`).
 * - `AUTH_TOKEN_SECRET`: HMAC secret (at least 32 characters) that signs user tokens (HS256). When
 *   unset, the gateway generates 32 random bytes once and keeps them in its `auth_secrets` table, so
 *   every gateway instance of the database shares it; set it to rotate (tokens signed before stop working).
 * - `RATE_LIMIT_WINDOW_SECONDS`: the fixed window of the rate limit, seconds (default 60).
 * - `RATE_LIMIT_KEY_REQUESTS`: requests per window of one API key (default 1200; a key may have its own).
 * - `RATE_LIMIT_USER_REQUESTS`: requests per window of one user through user tokens (default 120).
 * - `RATE_LIMIT_SYNC_MS`: how often a gateway adds the requests it counted to the shared counts and
 *   reads the other instances' counts, ms (default 100). One instance enforces a limit exactly; with
 *   several, a bucket can get over its limit by what the others admit in about two sync intervals.
 * - `AUTH_KEY_CACHE_MS`: how long a gateway keeps an active API key in memory, ms (default 5000; 0 looks
 *   every request up): a revoked key, and the user tokens it minted, stop working at most this long
 *   after `npm run keys -- revoke`.
 */
export const AuthConfig = z.object({
  AUTH_MODE: z.enum(['api_key', 'none']).default('api_key'),
  AUTH_TOKEN_SECRET: unsetWhenEmpty(z.string().min(32, 'at least 32 characters').max(4096)),
  RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  RATE_LIMIT_KEY_REQUESTS: z.coerce.number().int().min(1).max(10_000_000).default(1200),
  RATE_LIMIT_USER_REQUESTS: z.coerce.number().int().min(1).max(10_000_000).default(120),
  RATE_LIMIT_SYNC_MS: z.coerce.number().int().min(10).max(10_000).default(100),
  AUTH_KEY_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(5000),
});
export type AuthConfig = z.infer<typeof AuthConfig>;

/**
 * Refuses `AUTH_MODE=none` when `NODE_ENV=production` (issue 7: no unauthenticated production).
 * @throws ConfigError naming `AUTH_MODE`.
 */
export function assertAuthModeAllowed(config: {
  NODE_ENV: string;
  AUTH_MODE: AuthConfig['AUTH_MODE'];
}): void {
  if (config.AUTH_MODE === 'none' && config.NODE_ENV === 'production') {
    throw new ConfigError(['AUTH_MODE: "none" is refused when NODE_ENV=production; use api_key']);
  }
}
