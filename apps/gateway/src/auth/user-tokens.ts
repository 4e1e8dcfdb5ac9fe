import { randomBytes, randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { TenantId, UserId } from '@threadline/contracts';
import type { Sql } from '@threadline/event-store';
import { KeyId } from './api-keys';

/** `iss` and `aud` of every user token. */
export const TOKEN_ISSUER = 'threadline';
/** Longest lifetime of a user token, seconds (24 h): they are meant to be short-lived. */
export const MAX_TOKEN_TTL_SECONDS = 86_400;
/** Clock skew tolerated between gateway instances for `iat`, seconds. */
const CLOCK_SKEW_SECONDS = 60;
/** Name of the generated signing secret in `auth_secrets`. */
const SECRET_NAME = 'user-token-hs256';

/** A user token's claims: JWT registered claims plus `tid` (tenant) and `kid` (minting key id). */
export const UserTokenClaims = z.object({
  iss: z.literal(TOKEN_ISSUER),
  aud: z.literal(TOKEN_ISSUER),
  sub: UserId,
  tid: TenantId,
  kid: KeyId,
  iat: z.number().int(),
  exp: z.number().int(),
  jti: z.string().max(64),
});
export type UserTokenClaims = z.infer<typeof UserTokenClaims>;

/** Thrown by {@link UserTokens.verify}; `reason` is for logs only (never sent: a 401 says no more). */
export class InvalidUserTokenError extends Error {
  constructor(readonly reason: string) {
    super(`invalid user token: ${reason}`);
    this.name = 'InvalidUserTokenError';
  }
}

// Why jose refused a token, in words for the log.
function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported)
    return 'bad header';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return 'bad claims';
  if (error instanceof joseErrors.JOSEError) return 'not a compact JWS';
  throw error;
}

/**
 * User tokens (issue 7): JWTs signed with HMAC-SHA256 by `jose` (RFC 7515/7519; only `HS256` is
 * accepted, `none` and every other algorithm are refused). A token names one user of one tenant and
 * the API key that minted it, and expires after at most {@link MAX_TOKEN_TTL_SECONDS}.
 */
export class UserTokens {
  private readonly secret: Uint8Array;

  /** `secret`: the HMAC key (at least 32 bytes). */
  constructor(secret: string | Buffer) {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    if (bytes.length < 32) throw new Error('the user-token secret must be at least 32 bytes');
    this.secret = new Uint8Array(bytes);
  }

  /**
   * Signs a token for `userId` of `tenantId`, minted by `keyId`, valid `ttlSeconds` (1 to
   * {@link MAX_TOKEN_TTL_SECONDS}) from `now`. Returns the token and its expiry.
   */
  async sign(
    input: { tenantId: string; userId: string; keyId: string; ttlSeconds: number },
    now: Date = new Date(),
  ): Promise<{ token: string; expiresAt: Date }> {
    const iat = Math.floor(now.getTime() / 1000);
    const ttl = Math.min(Math.max(Math.floor(input.ttlSeconds), 1), MAX_TOKEN_TTL_SECONDS);
    const token = await new SignJWT({ tid: input.tenantId, kid: input.keyId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_ISSUER)
      .setSubject(input.userId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .setJti(randomUUID())
      .sign(this.secret);
    return { token, expiresAt: new Date((iat + ttl) * 1000) };
  }

  /**
   * The claims of a valid token. Throws {@link InvalidUserTokenError} when it is malformed, signed
   * with another secret or algorithm, issued in the future, or expired (at `now`).
   */
  async verify(token: string, now: Date = new Date()): Promise<UserTokenClaims> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.secret, {
        algorithms: ['HS256'],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_ISSUER,
        currentDate: now,
      }));
    } catch (error) {
      throw new InvalidUserTokenError(reasonOf(error));
    }
    const claims = UserTokenClaims.safeParse(payload);
    if (!claims.success) throw new InvalidUserTokenError('bad claims');
    if (claims.data.iat > Math.floor(now.getTime() / 1000) + CLOCK_SKEW_SECONDS) {
      throw new InvalidUserTokenError('issued in the future');
    }
    return claims.data;
  }
}

/** Does `credential` look like a JWT (three base64url parts) rather than an API key? */
export const looksLikeToken = (credential: string): boolean => credential.split('.').length === 3;

/**
 * The user-token signing secret: `AUTH_TOKEN_SECRET` when set; otherwise the one in `auth_secrets`,
 * generated (32 random bytes) by the first gateway that needs it. Concurrent first starts agree:
 * the insert is `ON CONFLICT DO NOTHING` and everyone reads the winner's row.
 */
export async function resolveTokenSecret(configured: string | undefined, sql: Sql): Promise<Buffer> {
  if (configured !== undefined) return Buffer.from(configured, 'utf8');
  await sql.query(`INSERT INTO auth_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [
    SECRET_NAME,
    randomBytes(32).toString('base64url'),
  ]);
  const [row] = await sql.query<{ secret: string }>(`SELECT secret FROM auth_secrets WHERE name = $1`, [
    SECRET_NAME,
  ]);
  if (!row) throw new Error('auth_secrets has no user-token secret after inserting one');
  return Buffer.from(row.secret, 'base64url');
}
