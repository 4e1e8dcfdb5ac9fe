import type { GlobalStatsView, SessionPage, UserStatsView } from '@threadline/contracts';
import { ApiError, request } from './api';

/**
 * Who is signed in, as the API answered it:
 * - `admin`: an admin API key (every page, the tenant's user list);
 * - `service`: a service API key (the tenant's figures; users are opened by id);
 * - `user`: a user token (that user's figures and sessions only).
 */
export interface Caller {
  credential: string;
  role: 'admin' | 'service' | 'user';
  /** The user of a user token (its `sub` claim). */
  userId?: string;
}

/** sessionStorage key of the credential: the tab's own, gone when it closes, never in a URL. */
const STORAGE_KEY = 'threadline.dashboard.credential';

export const storedCredential = (): string | undefined => sessionStorage.getItem(STORAGE_KEY) ?? undefined;
export const storeCredential = (credential: string): void => sessionStorage.setItem(STORAGE_KEY, credential);
export const forgetCredential = (): void => sessionStorage.removeItem(STORAGE_KEY);

/**
 * The `sub` of a JWT-shaped credential (a user token), read without verifying it: the API verifies
 * every request, this only says which user's pages to open. undefined for an API key.
 */
export function tokenSubject(credential: string): string | undefined {
  const parts = credential.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const claims: unknown = JSON.parse(json);
    if (typeof claims === 'object' && claims !== null && 'sub' in claims && typeof claims.sub === 'string') {
      return claims.sub;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * Asks the API who `credential` is: a user token must read its own user's stats; an API key must
 * read the tenant's stats (`GET /sessions/stats`), and is an admin key when the operators' list
 * (`GET /sessions`, admin only) answers too. Rejects with the API's error (401 for a wrong key).
 */
export async function identify(credential: string): Promise<Caller> {
  const userId = tokenSubject(credential);
  if (userId !== undefined) {
    await request<UserStatsView>(`/users/${encodeURIComponent(userId)}/stats`, credential);
    return { credential, role: 'user', userId };
  }
  await request<GlobalStatsView>('/sessions/stats', credential);
  try {
    await request<SessionPage>('/sessions?limit=1', credential);
    return { credential, role: 'admin' };
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return { credential, role: 'service' };
    throw error;
  }
}
