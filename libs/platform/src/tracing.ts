import {
  type Context,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { z } from 'zod';

/**
 * OpenTelemetry tracing of the whole system, configured by the standard `OTEL_*` variables
 * (OpenTelemetry SDK environment variable specification): it is ON when an OTLP endpoint is set
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and neither
 * `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise. Off, the SDK is never loaded:
 * `@opentelemetry/api` stays its no-op, and every hook of ours checks {@link tracingEnabled} first
 * (one boolean read per message), so tracing off costs nothing measurable.
 *
 * On: `@opentelemetry/sdk-node` with W3C trace context propagation, the OTLP exporter (protocol from
 * `OTEL_EXPORTER_OTLP_PROTOCOL`, default `http/protobuf`), the sampler of `OTEL_TRACES_SAMPLER` (default
 * `parentbased_always_on`), the service name of `OTEL_SERVICE_NAME` (default: the service's own name),
 * and the instrumentations of `http` (the gateway's server spans) and `pg` (every Postgres statement).
 * Our own spans follow a turn across processes: NATS request headers, the event's metadata, JetStream
 * message headers (see `@threadline/messaging` and `@threadline/event-store`).
 */
export const TracingConfig = z.object({
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional(),
  OTEL_TRACES_EXPORTER: z.string().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
});
export type TracingConfig = z.infer<typeof TracingConfig>;

/** Whether `env` turns tracing on (see {@link TracingConfig}). Throws `ZodError` for a malformed endpoint. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  const config = TracingConfig.parse(env);
  if (config.OTEL_SDK_DISABLED === 'true') return false;
  if (config.OTEL_TRACES_EXPORTER?.split(',').includes('none')) return false;
  return (
    config.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined ||
    config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined
  );
}

let enabled = false;
let sdk: { shutdown(): Promise<void> } | undefined;

/** True once {@link startTracing} started the SDK in this process. */
export const tracingEnabled = (): boolean => enabled;

/**
 * Starts tracing for `service` when the environment asks for it ({@link tracingWanted}); otherwise
 * does nothing and loads nothing. Must run before `pg` is first required (the `pg` instrumentation
 * patches it on load): each service's `main.ts` imports its `instrument.ts` first. OTLP metrics and
 * logs stay off unless `OTEL_METRICS_EXPORTER` / `OTEL_LOGS_EXPORTER` ask (metrics are Prometheus).
 * Throws `ZodError` when an `OTEL_*` variable is malformed.
 */
export function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): void {
  if (enabled || !tracingWanted(env)) return;
  env['OTEL_METRICS_EXPORTER'] ??= 'none';
  env['OTEL_LOGS_EXPORTER'] ??= 'none';
  // Loaded only when on: the SDK and its exporters are several MB of modules.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } =
    require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { PgInstrumentation } =
    require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const started = new NodeSDK({
    ...(env['OTEL_SERVICE_NAME'] ? {} : { serviceName: service }),
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes are not traced; outgoing HTTP is only the exporter's own.
        ignoreIncomingRequestHook: (req) => /^\/(metrics|health)(\/|\?|$)/.test(req.url ?? ''),
        disableOutgoingRequestInstrumentation: true,
      }),
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  started.start();
  sdk = started;
  enabled = true;
}

/** Flushes and stops the SDK (at shutdown: spans still in the batch are exported). No-op when off. */
export async function stopTracing(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  enabled = false;
  await running?.shutdown().catch(() => undefined);
}

/** The tracer of Threadline's own spans. */
export const tracer = (): Tracer => trace.getTracer('threadline');

/** Carrier getter/setter over plain string maps (`{ traceparent, tracestate }`). */
type Carrier = Record<string, string>;

/**
 * The W3C `traceparent` of `ctx`'s span (default: the active one), or undefined when there is none
 * or tracing is off. What is stored in an event's metadata and sent in message headers.
 */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  if (!enabled) return undefined;
  const carrier: Carrier = {};
  propagation.inject(ctx, carrier);
  return carrier['traceparent'];
}

/** The context of a W3C `traceparent` (plus `tracestate`), or the root context when absent or invalid. */
export function contextOf(traceparent: string | undefined, tracestate?: string): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  const carrier: Carrier = { traceparent };
  if (tracestate !== undefined) carrier['tracestate'] = tracestate;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** Injects the active (or given) context's trace headers into `set` (a message's headers). */
export function injectTrace(
  set: (name: string, value: string) => void,
  ctx: Context = context.active(),
): void {
  const carrier: Carrier = {};
  propagation.inject(ctx, carrier);
  for (const [name, value] of Object.entries(carrier)) set(name, value);
}

/** The span context a `traceparent` names, for a span link; undefined when absent or invalid. */
export function spanContextOf(traceparent: string | undefined): SpanContext | undefined {
  const spanContext = trace.getSpanContext(contextOf(traceparent));
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext : undefined;
}

/**
 * Runs `fn` inside a new span `name` (child of `parent`, default the active context), ended when
 * `fn` settles; a throw is recorded on the span (status ERROR) and rethrown. Only call when
 * {@link tracingEnabled}.
 */
export async function inSpan<T>(
  name: string,
  opts: { kind?: SpanKind; parent?: Context; attributes?: Record<string, string | number>; links?: Link[] },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = tracer().startSpan(
    name,
    {
      kind: opts.kind ?? SpanKind.INTERNAL,
      ...(opts.attributes ? { attributes: opts.attributes } : {}),
      ...(opts.links ? { links: opts.links } : {}),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    throw error;
  } finally {
    span.end();
  }
}

/** The `trace_id` and `span_id` of the active span for a log line (empty when tracing is off). */
export function traceFields(): { trace_id?: string; span_id?: string } {
  if (!enabled) return {};
  const spanContext = trace.getSpanContext(context.active());
  return spanContext ? { trace_id: spanContext.traceId, span_id: spanContext.spanId } : {};
}

export { SpanKind };
