import { trace } from '@opentelemetry/api';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/**
 * Fastify `preHandler` hook (added only when tracing is on): names the request's SERVER span (made by
 * the `http` instrumentation) after its route template, `POST /sessions/:session_id/turns`, and sets
 * `http.route` and the correlation id on it (OpenTelemetry HTTP semantic conventions), so spans group
 * by route, never by path.
 */
export function httpSpanHook(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const span = trace.getActiveSpan();
  const route = request.routeOptions.url;
  if (span && route !== undefined) {
    span.updateName(`${request.method} ${route}`);
    span.setAttribute('http.route', route);
    span.setAttribute('threadline.correlation_id', request.id);
  }
  done();
}
