import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';

/**
 * The process's Prometheus metrics (prom-client, text exposition format), one catalog for every
 * service: each metric is defined here once, with its unit in its name (`_seconds`, `_total`,
 * `_bytes`; Prometheus's naming guide), and recorded where it happens. Labels are bounded by
 * construction: route templates, subjects and stream types come from code, consumers and projections
 * from configuration; never a user, session, tenant or turn id (docs/observability.md lists them all).
 */
export const metricsRegistry = new Registry();

let defaultsCollected = false;

/**
 * Starts the default Node metrics (event loop lag, heap, GC, CPU, handles) on {@link metricsRegistry}
 * and labels every series of this process with `service`. Idempotent.
 */
export function enableProcessMetrics(service: string): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  metricsRegistry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: metricsRegistry });
}

/** The `Content-Type` of {@link metricsRegistry}'s exposition (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = metricsRegistry.contentType;

/** Latency buckets in seconds, 0.5 ms to 10 s: requests here answer in ms, a stuck one in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const registers = [metricsRegistry];

/** HTTP requests answered by the gateway, by route template (`/sessions/:id/turns`), method and status. */
export const httpRequestsTotal = new Counter({
  name: 'http_requests_total',
  help: 'HTTP requests answered, by route template, method and status code',
  labelNames: ['method', 'route', 'status_code'] as const,
  registers,
});

/** Duration of HTTP requests (receipt to response sent), seconds (OpenTelemetry `http.server.request.duration`). */
export const httpRequestDuration = new Histogram({
  name: 'http_server_request_duration_seconds',
  help: 'Duration of HTTP requests, from receipt to response sent, in seconds',
  labelNames: ['method', 'route', 'status_code'] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

/** Time a service took to handle a NATS command or query, by subject, seconds; `outcome` ok|error. */
export const natsRequestDuration = new Histogram({
  name: 'nats_request_handling_duration_seconds',
  help: 'Time to handle a NATS request (command or query) until its reply is sent, by subject, in seconds',
  labelNames: ['subject'] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

/** LogTurn commands written per group-commit transaction (chat-log-service). */
export const logTurnBatchSize = new Histogram({
  name: 'threadline_log_turn_batch_size',
  help: 'LogTurn commands written per group-commit transaction',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128],
  registers,
});

/** Appends to the event store (one per stream written), by stream type. */
export const eventStoreAppendsTotal = new Counter({
  name: 'threadline_event_store_appends_total',
  help: 'Appends to the event store (one per stream written), by stream type',
  labelNames: ['stream_type'] as const,
  registers,
});

/** Events appended to the event store, by stream type. */
export const eventStoreEventsTotal = new Counter({
  name: 'threadline_event_store_appended_events_total',
  help: 'Events appended to the event store, by stream type',
  labelNames: ['stream_type'] as const,
  registers,
});

/** Duration of one append statement (several appends when group-committed), seconds. */
export const eventStoreAppendDuration = new Histogram({
  name: 'threadline_event_store_append_duration_seconds',
  help: 'Duration of an append statement (one or several group-committed appends), in seconds',
  buckets: LATENCY_BUCKETS,
  registers,
});

/**
 * Events committed in the store and not yet published by the relay, by relay (its checkpoint name,
 * `relay`): only the active relay of a database reports it, a standby has no series.
 */
export const relayLagEvents = new Gauge({
  name: 'threadline_relay_lag_events',
  help: 'Events committed in the event store and not yet published to JetStream by the active relay',
  labelNames: ['relay'] as const,
  registers,
});

/** Age of the oldest event the relay has not published yet, seconds (0 when caught up). */
export const relayLagSeconds = new Gauge({
  name: 'threadline_relay_lag_seconds',
  help: 'Age of the oldest event not yet published by the active relay, in seconds (0 when caught up)',
  labelNames: ['relay'] as const,
  registers,
});

/** Events of its stream types in the store and not yet applied by a projection, by projection. */
export const projectionLagEvents = new Gauge({
  name: 'threadline_projection_lag_events',
  help: 'Events of the followed stream types committed in the store and not yet applied, by projection',
  labelNames: ['projection'] as const,
  registers,
});

/** Age of the oldest event a projection has not applied yet, seconds (0 when caught up), by projection. */
export const projectionLagSeconds = new Gauge({
  name: 'threadline_projection_lag_seconds',
  help: 'Age of the oldest event not yet applied, by projection, in seconds (0 when caught up)',
  labelNames: ['projection'] as const,
  registers,
});

/** Messages of the stream a JetStream durable consumer has not delivered yet (`num_pending`). */
export const jetstreamConsumerPending = new Gauge({
  name: 'threadline_jetstream_consumer_pending_messages',
  help: 'Messages not yet delivered to a JetStream durable consumer (num_pending)',
  labelNames: ['consumer'] as const,
  registers,
});

/** Messages delivered to a consumer and not yet acknowledged (`num_ack_pending`). */
export const jetstreamConsumerAckPending = new Gauge({
  name: 'threadline_jetstream_consumer_ack_pending_messages',
  help: 'Messages delivered to a JetStream durable consumer and not yet acknowledged (num_ack_pending)',
  labelNames: ['consumer'] as const,
  registers,
});

/** Deliveries of a message after its first (a nak, a timeout), counted by the consuming process. */
export const jetstreamRedeliveriesTotal = new Counter({
  name: 'threadline_jetstream_redeliveries_total',
  help: 'JetStream messages delivered again after a failed or timed-out attempt, by consumer',
  labelNames: ['consumer'] as const,
  registers,
});

/** Poison events recorded as dead letters (and terminated), by consumer. */
export const deadLettersTotal = new Counter({
  name: 'threadline_dead_letters_total',
  help: 'Events recorded as dead letters after their last attempt, by consumer',
  labelNames: ['consumer'] as const,
  registers,
});

/** Postgres pool connections by state (`used`, `idle`), by pool (OpenTelemetry `db.client.connection.count`). */
export const dbPoolConnections = new Gauge({
  name: 'db_client_connection_count',
  help: 'Postgres pool connections, by pool and state (used, idle)',
  labelNames: ['pool_name', 'state'] as const,
  registers,
});

/** Callers waiting for a pool connection (OpenTelemetry `db.client.connection.pending_requests`). */
export const dbPoolPending = new Gauge({
  name: 'db_client_connection_pending_requests',
  help: 'Callers waiting for a Postgres pool connection, by pool',
  labelNames: ['pool_name'] as const,
  registers,
});

/** Requests refused by the gateway's rate limits (429), by limit (`key`, `user`). */
export const rateLimitRejectionsTotal = new Counter({
  name: 'threadline_rate_limit_rejections_total',
  help: 'Requests refused with 429 by a rate limit, by limit (key, user)',
  labelNames: ['limit'] as const,
  registers,
});

/** Time spent counting tokens of a turn's texts, seconds, by encoding. */
export const tokenizerDuration = new Histogram({
  name: 'threadline_tokenizer_duration_seconds',
  help: 'Time spent counting the tokens of a text, by encoding, in seconds',
  labelNames: ['encoding'] as const,
  buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
  registers,
});

type ScrapeHook = () => Promise<void> | void;
const scrapeHooks = new Set<ScrapeHook>();

/** Longest a scrape waits for a {@link onScrape} hook (a gauge read from Postgres or NATS), ms. */
const SCRAPE_HOOK_TIMEOUT_MS = 2000;

/**
 * Registers `hook`, run before each scrape to set gauges whose value lives elsewhere (lag read from
 * Postgres, consumer info from JetStream). A hook that fails or takes longer than 2 s leaves its gauges
 * as they were. Returns the function that unregisters it.
 */
export function onScrape(hook: ScrapeHook): () => void {
  scrapeHooks.add(hook);
  return () => scrapeHooks.delete(hook);
}

/** The text exposition of {@link metricsRegistry}, after running every {@link onScrape} hook. */
export async function renderMetrics(): Promise<string> {
  await Promise.all(
    [...scrapeHooks].map(async (hook) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          hook(),
          new Promise((resolve) => (timer = setTimeout(resolve, SCRAPE_HOOK_TIMEOUT_MS))),
        ]);
      } catch {
        // The gauges keep their last values; the scrape goes on.
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return metricsRegistry.metrics();
}

/** Seconds elapsed since `start` (a `performance.now()` reading). */
export const secondsSince = (start: number): number => (performance.now() - start) / 1000;

/**
 * `METRICS_PORT`: the port of a service's `/metrics` listener, `0` disables it. Each service has its
 * own documented default (docs/observability.md); the gateway serves `/metrics` on its HTTP port.
 */
export const MetricsPort = (defaultPort: number) =>
  z.coerce.number().int().min(0).max(65535).default(defaultPort);

/** `METRICS_HOST`: the address the metrics listener binds (default all interfaces, as `HOST`). */
export const MetricsHost = z.string().min(1).default('0.0.0.0');

/**
 * The metrics variables of a service without an HTTP port of its own: `METRICS_PORT` (default
 * `defaultPort`, `0` disables) and `METRICS_HOST` (default `0.0.0.0`).
 */
export const MetricsConfig = (defaultPort: number) =>
  z.object({ METRICS_PORT: MetricsPort(defaultPort), METRICS_HOST: MetricsHost });

/** Default `METRICS_PORT` of each service (the gateway serves `/metrics` on its `PORT`). */
export const DEFAULT_METRICS_PORTS = {
  'session-service': 9101,
  'chat-log-service': 9102,
  'cleanup-worker': 9103,
  'analytics-projector': 9104,
} as const;

/**
 * Starts a service's metrics: the default Node metrics labelled `service`, and its `/metrics`
 * listener on `METRICS_PORT` unless 0. Rejects when the port cannot be bound.
 */
export async function startServiceMetrics(
  service: string,
  config: { METRICS_PORT: number; METRICS_HOST: string },
): Promise<void> {
  enableProcessMetrics(service);
  await serveMetrics(config.METRICS_PORT, config.METRICS_HOST);
}

/**
 * Serves `GET /metrics` of {@link metricsRegistry} on `port` (0: nothing is started, resolves null).
 * Other paths answer 404. The server does not keep the process alive (unref'd). Rejects when the port
 * cannot be bound (EADDRINUSE).
 */
export async function serveMetrics(port: number, host = '0.0.0.0'): Promise<Server | null> {
  if (port === 0) return null;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    renderMetrics().then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
      (error: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return server;
}
