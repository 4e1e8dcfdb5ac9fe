import { z } from 'zod';
import { SessionId, TenantId, UserId } from '../common';
import { defineQuery } from '../define-message';
import { SessionPage, SessionStatus, SessionView } from './session.views';

export const SessionStatusFilter = z.enum(['active', 'ended', 'expired', 'all']);
export const SessionSort = z.enum(['created_at', 'last_activity_at']);
export const SortOrder = z.enum(['asc', 'desc']);

export const GetSession = defineQuery(
  'session',
  'GetSession',
  z.object({ tenantId: TenantId, sessionId: SessionId, userId: UserId.optional() }),
  SessionView,
);

export const ListUserSessions = defineQuery(
  'session',
  'ListUserSessions',
  z.object({
    tenantId: TenantId,
    userId: UserId,
    status: SessionStatusFilter,
    limit: z.number().int().min(1).max(200),
    cursor: z.string().max(512).optional(),
    sort: SessionSort,
    order: SortOrder,
    metadata: z.record(z.string().max(128), z.string().max(1024)).optional(),
  }),
  SessionPage,
);

export const GetCurrentSession = defineQuery(
  'session',
  'GetCurrentSession',
  z.object({ tenantId: TenantId, userId: UserId }),
  SessionView,
);

export const ListSessions = defineQuery(
  'session',
  'ListSessions',
  z.object({
    tenantId: TenantId,
    status: SessionStatusFilter,
    limit: z.number().int().min(1).max(200),
    cursor: z.string().max(512).optional(),
  }),
  SessionPage,
);

export { SessionStatus };
