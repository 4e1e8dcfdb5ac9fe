import { Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DomainError, rateLimitRejectionsTotal } from '@threadline/platform';
import type { AuthConfig } from './auth.config';
import { type ActiveKey, ApiKeyText, type ApiKeyStore, hashApiKey } from './api-keys';
import type { Caller } from './caller';
import type { RateLimiter } from './rate-limiter';
import { TtlCache } from './ttl-cache';
import { InvalidUserTokenError, looksLikeToken, type UserTokens } from './user-tokens';

/** `Authorization: Bearer <credential>`; the credential is an API key or a user token (no spaces). */
const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]{1,4096}) *$/i;

/** What {@link Authenticator} needs in `api_key` mode. */
export interface AuthBackend {
  keys: ApiKeyStore;
  tokens: UserTokens;
  limiter: RateLimiter;
  /** The clock of the key cache, ms (tests pass their own; default `Date.now`). */
  now?: () => number;
}

/** Most active keys the cache holds (each a few hundred bytes). */
const KEY_CACHE_ENTRIES = 10_000;

const unauthorized = (reply: FastifyReply, detail: string): DomainError => {
  void reply.header('www-authenticate', 'Bearer realm="threadline"');
  return new DomainError('REQUEST.UNAUTHORIZED', detail);
};

/**
 * Turns a request's `Authorization` header into a {@link Caller} and counts it against its rate
 * limit (issue 7). With `AUTH_MODE=none` every request is an admin of `DEFAULT_TENANT_ID`.
 *
 * Errors (DomainError, sent as problems): `REQUEST.UNAUTHORIZED` (401, with `WWW-Authenticate`) when
 * the header is missing or malformed, the key unknown or revoked, the token invalid, expired, or
 * minted by a key since revoked; `REQUEST.RATE_LIMITED` (429, with `Retry-After` in seconds) when the
 * key's (`key:<key_id>`) or the user's (`user:<tenant>:<user>`) bucket is over its limit. A 401 never
 * says which check failed, and neither the key nor the token is ever logged.
 *
 * Active keys found in Postgres are kept in memory for `AUTH_KEY_CACHE_MS` (by the key's SHA-256, and
 * for user tokens by the minting key's id), so a key in use costs no query per request: a revoked key,
 * and the user tokens it minted, stop working at most `AUTH_KEY_CACHE_MS` after the revocation. Unknown
 * and revoked keys are never cached (they are looked up each time).
 */
export class Authenticator {
  private readonly logger = new Logger('Authenticator');
  /** Active keys by `hashApiKey(key)`. */
  private readonly byHash: TtlCache<ActiveKey>;
  /** Active keys by key id (the minters of user tokens). */
  private readonly byId: TtlCache<ActiveKey>;

  constructor(
    private readonly config: AuthConfig & { DEFAULT_TENANT_ID: string },
    private readonly backend: AuthBackend | null,
  ) {
    const ttl = config.AUTH_KEY_CACHE_MS;
    this.byHash = new TtlCache(ttl, KEY_CACHE_ENTRIES, backend?.now);
    this.byId = new TtlCache(ttl, KEY_CACHE_ENTRIES, backend?.now);
  }

  /** The caller of a request with this `authorization` header; sets rate-limit headers on `reply`. */
  async authenticate(authorization: string | string[] | undefined, reply: FastifyReply): Promise<Caller> {
    if (this.config.AUTH_MODE === 'none' || !this.backend) {
      return { tenantId: this.config.DEFAULT_TENANT_ID, role: 'admin', keyId: 'auth-mode-none' };
    }
    if (authorization === undefined || authorization === '') {
      throw unauthorized(reply, 'Authorization: Bearer <API key or user token> is required');
    }
    const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
    const credential = match?.[1];
    if (credential === undefined) {
      throw unauthorized(reply, 'The Authorization header must be "Bearer <API key or user token>"');
    }
    const invalid = () => unauthorized(reply, 'The API key or user token is invalid, expired or revoked');
    const { keys, tokens, limiter } = this.backend;

    let caller: Caller;
    let bucket: string;
    let limit: number;
    if (looksLikeToken(credential)) {
      let claims;
      try {
        claims = await tokens.verify(credential);
      } catch (error) {
        if (!(error instanceof InvalidUserTokenError)) throw error;
        this.logger.debug(`user token refused: ${error.reason}`);
        throw invalid();
      }
      // A token dies with the key that minted it (revoking a service key logs its users out).
      const minter = await this.activeKeyById(keys, claims.kid);
      if (!minter || minter.tenantId !== claims.tid) throw invalid();
      caller = { tenantId: claims.tid, role: 'user', keyId: claims.kid, userId: claims.sub };
      bucket = `user:${claims.tid}:${claims.sub}`;
      limit = this.config.RATE_LIMIT_USER_REQUESTS;
    } else {
      if (!ApiKeyText.safeParse(credential).success) throw invalid();
      const key = await this.activeKey(keys, credential);
      if (!key) throw invalid();
      caller = { tenantId: key.tenantId, role: key.role, keyId: key.keyId };
      bucket = `key:${key.keyId}`;
      limit = key.rateLimit ?? this.config.RATE_LIMIT_KEY_REQUESTS;
    }

    const decision = await limiter.consume(bucket, limit);
    void reply.header('ratelimit-limit', String(decision.limit));
    void reply.header('ratelimit-remaining', String(decision.remaining));
    if (!decision.allowed) {
      rateLimitRejectionsTotal.inc({ limit: caller.role === 'user' ? 'user' : 'key' });
      void reply.header('retry-after', String(decision.retryAfterSeconds));
      throw new DomainError(
        'REQUEST.RATE_LIMITED',
        `Rate limit of ${decision.limit} requests per ${this.config.RATE_LIMIT_WINDOW_SECONDS} s reached; retry after ${decision.retryAfterSeconds} s`,
        { retryAfterSeconds: decision.retryAfterSeconds },
      );
    }
    return caller;
  }

  private async activeKey(keys: ApiKeyStore, key: string): Promise<ActiveKey | null> {
    const hash = hashApiKey(key);
    const cached = this.byHash.get(hash);
    if (cached) return cached;
    const found = await keys.findActiveByHash(hash);
    if (found) this.byHash.set(hash, found);
    return found;
  }

  private async activeKeyById(keys: ApiKeyStore, keyId: string): Promise<ActiveKey | null> {
    const cached = this.byId.get(keyId);
    if (cached) return cached;
    const found = await keys.findActiveById(keyId);
    if (found) this.byId.set(keyId, found);
    return found;
  }
}
