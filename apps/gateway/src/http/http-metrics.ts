import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import {
  httpRequestDuration,
  httpRequestsTotal,
  METRICS_CONTENT_TYPE,
  renderMetrics,
} from '@threadline/platform';

/** The `route` label of a request that matched no route (404s of unknown paths): one series, not one per path. */
export const UNMATCHED_ROUTE = 'unmatched';

type Children = {
  count: ReturnType<typeof httpRequestsTotal.labels>;
  duration: ReturnType<typeof httpRequestDuration.labels>;
};

/**
 * Fastify `onResponse` hook: counts the request and observes its duration (`reply.elapsedTime`, from
 * receipt to response sent) under its route TEMPLATE (`/sessions/:id/turns`, Fastify's
 * `routeOptions.url`), method and status code. Label values are bounded: templates are the routes the
 * gateway declares, methods the ones they accept (others are 404 `unmatched`), status codes those it
 * answers. The series of each label combination are looked up once (prom-client hashes the labels on
 * every `labels()` call).
 */
export function httpMetricsHook() {
  const children = new Map<string, Children>();
  return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = route === UNMATCHED_ROUTE ? 'other' : request.method;
    const status = String(reply.statusCode);
    const key = `${method} ${route} ${status}`;
    let series = children.get(key);
    if (!series) {
      series = {
        count: httpRequestsTotal.labels(method, route, status),
        duration: httpRequestDuration.labels(method, route, status),
      };
      children.set(key, series);
    }
    series.count.inc();
    series.duration.observe(reply.elapsedTime / 1000);
    done();
  };
}

/**
 * `GET /metrics` on the gateway's HTTP port: the Prometheus text exposition of this process. Public
 * (Prometheus scrapes without credentials) and free of ids: labels never carry users, sessions or keys.
 * Registered on Fastify directly, outside Nest's guards, and left out of the OpenAPI document.
 */
export function registerMetricsRoute(fastify: FastifyInstance): void {
  fastify.get('/metrics', async (_request, reply) => {
    const text = await renderMetrics();
    return reply.header('content-type', METRICS_CONTENT_TYPE).header('cache-control', 'no-store').send(text);
  });
}
