/**
 * Who calls the API (issue 7):
 *
 * - `admin`: an API key of an operator; everything of its tenant, including the admin-only routes.
 * - `service`: an API key of an application backend; every user's sessions and turns of its tenant.
 * - `user`: a user token minted by an admin or service key; only that user's sessions and turns.
 */
export type Role = 'admin' | 'service' | 'user';

/** The roles an API key may have (user tokens are minted, never stored). */
export const KEY_ROLES = ['admin', 'service'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

/**
 * The authenticated caller of one request: its tenant, role, the API key it is (or, for a user
 * token, the key that minted it), and for a user token the one user it is scoped to.
 */
export interface Caller {
  tenantId: string;
  role: Role;
  keyId: string;
  userId?: string;
}
