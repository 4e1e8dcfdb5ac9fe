import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { z } from 'zod';

/** A service instance's answer to a health request: it runs, and its own check (Postgres) passed. */
export const ServiceHealthReply = z.object({
  service: z.string(),
  status: z.enum(['ok', 'down']),
});
export type ServiceHealthReply = z.infer<typeof ServiceHealthReply>;

/** Subject of the health requests of `service` (its queue group name): `<prefix>.health.<service>`. */
export const healthSubject = (prefix: string, service: string): string => `${prefix}.health.${service}`;

/**
 * Answers the health requests of `service` on `nc`, in the queue group `service` (one instance
 * answers each): `{ service, status: 'ok' }` when `check` (e.g. `SELECT 1` on the service's pool)
 * resolves within `timeoutMs`, else `status: 'down'`. Unsubscribe the returned subscription to stop.
 */
export function serveHealth(
  nc: NatsConnection,
  prefix: string,
  service: string,
  check: () => Promise<unknown> = () => Promise.resolve(),
  timeoutMs = 1500,
): Subscription {
  return nc.subscribe(healthSubject(prefix, service), {
    queue: service,
    callback: (error, msg) => {
      if (error) return;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      });
      void Promise.race([check(), timedOut])
        .then(
          () => 'ok' as const,
          () => 'down' as const,
        )
        .then((status) => {
          clearTimeout(timer);
          const reply: ServiceHealthReply = { service, status };
          msg.respond(JSON.stringify(reply));
        });
    },
  });
}

/**
 * Asks `service` for its health ({@link serveHealth}): 'up' when an instance answers `ok` within
 * `timeoutMs`; 'down' when none listens (NATS answers no-responders at once), it answers `down`, its
 * answer is not a {@link ServiceHealthReply}, or nothing comes in time.
 */
export async function askHealth(
  nc: NatsConnection,
  prefix: string,
  service: string,
  timeoutMs: number,
): Promise<'up' | 'down'> {
  try {
    const msg = await nc.request(healthSubject(prefix, service), '', { timeout: timeoutMs });
    const reply = ServiceHealthReply.safeParse(JSON.parse(msg.string()));
    return reply.success && reply.data.status === 'ok' ? 'up' : 'down';
  } catch {
    return 'down';
  }
}
