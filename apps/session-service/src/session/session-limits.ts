import { z } from 'zod';

/**
 * The per-user limit's configuration (zod over env; part of the session-service's config, see the
 * README's table). `MAX_SESSIONS_PER_USER`: active sessions one user may have (0 = no limit, default
 * 10, seed 004). `MAX_SESSIONS_POLICY`: what starting one more does: `end_oldest` ends the user's least
 * recently active session (SessionEnded, reason `replaced`), `reject` answers SESSION.LIMIT_REACHED
 * (HTTP 409).
 */
export const SessionLimitsConfig = z.object({
  MAX_SESSIONS_PER_USER: z.coerce.number().int().min(0).max(1_000_000).default(10),
  MAX_SESSIONS_POLICY: z.enum(['end_oldest', 'reject']).default('end_oldest'),
});
export type SessionLimitsConfig = z.infer<typeof SessionLimitsConfig>;

/** Token of the {@link SessionLimits} the command handler enforces. */
export const SESSION_LIMITS = Symbol('SESSION_LIMITS');

/** The per-user limit as the command handler uses it; `maxSessionsPerUser` 0 means no limit. */
export interface SessionLimits {
  maxSessionsPerUser: number;
  policy: SessionLimitsConfig['MAX_SESSIONS_POLICY'];
}

/** The {@link SessionLimits} of a parsed configuration. */
export const sessionLimitsOf = (config: SessionLimitsConfig): SessionLimits => ({
  maxSessionsPerUser: config.MAX_SESSIONS_PER_USER,
  policy: config.MAX_SESSIONS_POLICY,
});
