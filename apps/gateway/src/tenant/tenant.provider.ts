import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DomainError } from '@threadline/platform';
import type { Caller } from '../auth/caller';

/** The caller of each request, set once by the global `AuthGuard` (keyed by the request object). */
const callers = new WeakMap<object, Caller>();

/** Records `caller` as the authenticated caller of `request` (the `AuthGuard` only). */
export function setCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}

/**
 * Who a request acts for: the {@link Caller} the global `AuthGuard` authenticated (an API key, a
 * user token, or with `AUTH_MODE=none` an admin of `DEFAULT_TENANT_ID`). Every controller gets the
 * tenant and the user scope from here, so a new route is isolated by using it (ARCHITECTURE rule 9).
 */
@Injectable()
export class TenantResolver {
  /**
   * The caller of `request`. Throws `REQUEST.UNAUTHORIZED` (401) when the request was not
   * authenticated (a route marked `@Public()` has no caller).
   */
  callerOf(request: FastifyRequest): Caller {
    const caller = callers.get(request);
    if (!caller) throw new DomainError('REQUEST.UNAUTHORIZED', 'This request is not authenticated');
    return caller;
  }

  /** The tenant of `request` (its caller's). Throws like {@link callerOf}. */
  tenantOf(request: FastifyRequest): string {
    return this.callerOf(request).tenantId;
  }

  /**
   * The user scope to spread into a command or query (`userId` fields of the contracts): `{ userId }`
   * for a user token, so the services answer 404 for another user's data; `{}` for an API key.
   */
  scopeOf(request: FastifyRequest): { userId?: string } {
    const { userId } = this.callerOf(request);
    return userId !== undefined ? { userId } : {};
  }

  /**
   * The user a write names: for a user token its own user (naming another one in `requested` is
   * 404 `ROUTE.NOT_FOUND`: a user token cannot reach, or learn about, other users); for an API key
   * `requested` as given (any user of the tenant, or none).
   */
  userFor(request: FastifyRequest, requested: string | undefined): string | undefined {
    const { userId } = this.callerOf(request);
    if (userId === undefined) return requested;
    if (requested !== undefined && requested !== userId) throw otherUser();
    return userId;
  }
}

/** The answer to a user token that names another user: 404, as if nothing were there. */
export const otherUser = (): DomainError => new DomainError('ROUTE.NOT_FOUND', 'Not found');
