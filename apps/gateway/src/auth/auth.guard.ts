import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '@threadline/platform';
import { otherUser, setCaller } from '../tenant/tenant.provider';
import { DEFAULT_ROLES, PUBLIC_ROUTE, ROUTE_ROLES } from './auth.decorators';
import { Authenticator } from './authenticator';
import type { Role } from './caller';
import { assertBodyDepth, assertWellFormedBody } from './json-depth';

/**
 * The global guard (registered as `APP_GUARD` by `AuthModule`): every HTTP route but those marked
 * `@Public()` authenticates its caller ({@link Authenticator}: 401, 429), records it for
 * `TenantResolver`, then checks the route's roles (`@AdminOnly()`, `@AllowUserTokens()`, default
 * API keys only: 403 `REQUEST.FORBIDDEN`) and, for a user token, that a `user_id` path parameter is
 * its own user (else 404 `ROUTE.NOT_FOUND`, so other users' existence does not leak), and that the
 * body nests at most `MAX_BODY_DEPTH` levels (400: deeper JSON would overflow the recursive schemas).
 * Runs before the validation pipe: an unauthenticated request is 401 whatever its body.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(Authenticator) private readonly authenticator: Authenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(PUBLIC_ROUTE, targets) === true) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const caller = await this.authenticator.authenticate(request.headers.authorization, reply);
    setCaller(request, caller);

    const roles = this.reflector.getAllAndOverride<readonly Role[] | undefined>(ROUTE_ROLES, targets);
    if (!(roles ?? DEFAULT_ROLES).includes(caller.role)) {
      throw new DomainError(
        'REQUEST.FORBIDDEN',
        caller.role === 'user'
          ? 'This route needs an API key; user tokens cannot use it'
          : 'This route needs an admin key',
      );
    }
    if (caller.userId !== undefined) {
      const params = (request.params ?? {}) as Record<string, unknown>;
      if (params['user_id'] !== undefined && params['user_id'] !== caller.userId) throw otherUser();
    }
    assertBodyDepth(request.body);
    assertWellFormedBody(request.body);
    return true;
  }
}
