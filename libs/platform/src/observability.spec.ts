import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { ConfigError, loadConfig } from './config';
import { errorDetails } from './logging';
import {
  MetricsConfig,
  metricsRegistry,
  onScrape,
  relayLagEvents,
  renderMetrics,
  serveMetrics,
} from './metrics';
import { traceFields, traceparentOf, tracingEnabled, tracingWanted } from './tracing';

describe('METRICS_PORT', () => {
  const schema = z.object(MetricsConfig(9102).shape);

  it('defaults to the service port, takes 0 to disable, and rejects anything else', () => {
    expect(loadConfig(schema, {})).toEqual({ METRICS_PORT: 9102, METRICS_HOST: '0.0.0.0' });
    expect(loadConfig(schema, { METRICS_PORT: '0' }).METRICS_PORT).toBe(0);
    expect(() => loadConfig(schema, { METRICS_PORT: 'ninety' })).toThrow(ConfigError);
    expect(() => loadConfig(schema, { METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
  });
});

describe('serveMetrics', () => {
  it('starts nothing on port 0', async () => {
    expect(await serveMetrics(0)).toBeNull();
  });

  it('serves the registry at GET /metrics after the scrape hooks, and 404 elsewhere', async () => {
    const stop = onScrape(() => {
      relayLagEvents.labels('spec').set(42);
    });
    const failing = onScrape(() => Promise.reject(new Error('postgres is down')));
    const real = await serveMetrics(await freePort(), '127.0.0.1');
    try {
      const { port } = real!.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(metricsRegistry.contentType);
      expect(await res.text()).toContain('threadline_relay_lag_events{relay="spec"} 42');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      stop();
      failing();
      relayLagEvents.remove('spec');
      real?.close();
    }
    expect(await renderMetrics()).not.toContain('relay="spec"');
  });
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('tracing configuration (OTEL_*)', () => {
  it('is on only when an OTLP endpoint is set and nothing disables it', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(
      true,
    );
    expect(
      tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }),
    ).toBe(false);
    expect(
      tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }),
    ).toBe(false);
    expect(() => tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow();
  });

  it('off, gives no trace context and no log fields', () => {
    expect(tracingEnabled()).toBe(false);
    expect(traceparentOf()).toBeUndefined();
    expect(traceFields()).toEqual({});
  });
});

describe('errorDetails', () => {
  it('keeps an error message, type, stack and cause, which JSON.stringify drops', () => {
    const error = new TypeError('relay publish failed', { cause: new Error('NATS closed') });
    expect(JSON.stringify(error)).toBe('{}');
    const details = errorDetails(error);
    expect(details).toMatchObject({
      type: 'TypeError',
      message: 'relay publish failed',
      cause: { message: 'NATS closed' },
    });
    expect(details.stack).toContain('observability.spec.ts');
    expect(errorDetails({ code: 'X' })).toEqual({ message: '{"code":"X"}' });
    expect(errorDetails(undefined)).toEqual({ message: 'undefined' });
  });
});
