import { z } from 'zod';
import { defineQuery, type RequestDefinition } from '../define-message';

/** The services that answer requests over NATS, each in its own queue group named after it. */
export const BACKEND_SERVICES = [
  'session-service',
  'chat-log-service',
  'cleanup-worker',
  'analytics-projector',
] as const;
export type BackendService = (typeof BACKEND_SERVICES)[number];

/**
 * What a service answers to its ping: its name, how long its process has run (seconds) and, for a
 * service with a database, whether its own Postgres check (`SELECT 1` on its pool) passed: `postgres`.
 */
export const PingReply = z.object({
  service: z.string().min(1),
  uptimeSeconds: z.number().min(0),
  postgres: z.enum(['up', 'down']).optional(),
});
export type PingReply = z.infer<typeof PingReply>;

/** The ping of one service: no payload. */
export const PingRequest = z.object({}).strict();

/**
 * The health ping of `service` (queue group `service`): subject `<prefix>.qry.health.<service>`,
 * answered by the service's request transport itself, so an answer proves the process is up and
 * serving NATS requests. The gateway's `/health` and `/health/ready` ask each service of its
 * `HEALTH_SERVICES` (default: {@link BACKEND_SERVICES}); `postgres: 'down'` counts as down.
 */
export const pingOf = (service: string): RequestDefinition<typeof PingRequest, typeof PingReply> =>
  defineQuery('health', service, PingRequest, PingReply);
