import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension } from '@nestjs/swagger';
import type { Role } from './caller';

/** Metadata key: the route needs no authentication. */
export const PUBLIC_ROUTE = 'threadline:auth:public';
/** Metadata key: the roles that may call the route. */
export const ROUTE_ROLES = 'threadline:auth:roles';

/**
 * The roles of a route without a role decorator: API keys only. A user token must be allowed
 * explicitly ({@link AllowUserTokens}) because the route must then pass the caller's user scope
 * into its commands and queries (`TenantResolver.scopeOf`); forgetting it cannot leak other users' data.
 */
export const DEFAULT_ROLES: readonly Role[] = ['admin', 'service'];

/**
 * OpenAPI extension marking a public operation; `buildOpenApiDocument` (http/openapi.ts) reads it to
 * leave the operation without a security requirement, then removes it from the document.
 */
export const PUBLIC_OPERATION_EXTENSION = 'x-threadline-public';

/**
 * The route (or controller) needs no credentials (`/health`). Also marks its OpenAPI operations, so
 * the document requires the bearer scheme on every operation but these (the guard's own rule).
 */
export const Public = () =>
  applyDecorators(SetMetadata(PUBLIC_ROUTE, true), ApiExtension(PUBLIC_OPERATION_EXTENSION, true));

/** Operators only: an admin key of the tenant (403 `REQUEST.FORBIDDEN` for others). */
export const AdminOnly = () => applyDecorators(SetMetadata(ROUTE_ROLES, ['admin']), ApiBearerAuth());

/** API keys only (admin or service); the default, spelled out where it matters. */
export const KeysOnly = () => applyDecorators(SetMetadata(ROUTE_ROLES, DEFAULT_ROLES), ApiBearerAuth());

/**
 * API keys and user tokens. The handler must scope what it does to the caller's user
 * (`TenantResolver.scopeOf` / `userFor`); a `user_id` path parameter is checked by the guard.
 */
export const AllowUserTokens = () =>
  applyDecorators(SetMetadata(ROUTE_ROLES, ['admin', 'service', 'user']), ApiBearerAuth());
