import type { GlobalStatsView } from '@threadline/contracts';
import { ApiError, request } from '../api';
import type { Caller } from '../auth';
import { ErrorBox, Figure, Loading, Panel, UpdatedAt } from '../components';
import { formatInt, formatJson } from '../format';
import { useLoad } from '../hooks';

/** How often the system page refreshes, ms. */
export const SYSTEM_POLL_MS = 5000;

/** One health endpoint's answer: its HTTP status and body, or that this gateway does not offer it. */
interface Probe {
  path: string;
  status: number | 'absent';
  body: unknown;
}

/** `GET path` without credentials, keeping non-2xx answers (a 503 readiness report is the point). */
async function probe(path: string, signal: AbortSignal): Promise<Probe> {
  const response = await fetch(path, {
    headers: { accept: 'application/json' },
    signal,
    cache: 'no-store',
    credentials: 'omit',
  });
  if (response.status === 404) return { path, status: 'absent', body: undefined };
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { path, status: response.status, body };
}

/** Prometheus samples whose name says lag or dead letters: `name{labels} value` lines of `/metrics`. */
interface Sample {
  name: string;
  labels: string;
  value: string;
}

const INTERESTING = /(lag|dead_letter|pending|redeliver)/;

/** The lag and dead-letter samples of a Prometheus text exposition (comments and others left out). */
export function lagSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const [, name = '', labels = '', value = ''] = match;
    if (INTERESTING.test(name) && !name.endsWith('_bucket')) samples.push({ name, labels, value });
  }
  return samples;
}

interface SystemData {
  probes: Probe[];
  stats: GlobalStatsView | ApiError;
  metrics: Sample[] | 'absent';
}

async function loadSystem(caller: Caller, signal: AbortSignal): Promise<SystemData> {
  const stats = request<GlobalStatsView>('/sessions/stats', caller.credential, { signal }).catch(
    (error: unknown) => {
      if (error instanceof ApiError) return error;
      throw error;
    },
  );
  const metrics = fetch('/metrics', { signal, cache: 'no-store', credentials: 'omit' }).then(async (r) =>
    r.ok ? lagSamples(await r.text()) : ('absent' as const),
  );
  const [probes, s, m] = await Promise.all([
    Promise.all(['/health', '/health/live', '/health/ready'].map((p) => probe(p, signal))),
    stats,
    metrics,
  ]);
  return { probes, stats: s, metrics: m };
}

/**
 * System: service health (`/health`, and `/health/live` and `/health/ready` where the gateway offers
 * them), the analytics projection's lag (`GET /sessions/stats`: head position, applied position, lag
 * in events), and the lag and dead-letter series of the gateway's `/metrics` when it serves them.
 */
export function SystemPage(props: { caller: Caller }) {
  const loaded = useLoad(
    (signal) => loadSystem(props.caller, signal),
    [props.caller.credential],
    SYSTEM_POLL_MS,
  );
  if (loaded.data === undefined)
    return loaded.error === undefined ? <Loading /> : <ErrorBox error={loaded.error} />;
  const { probes, stats, metrics } = loaded.data;
  return (
    <div class="page" data-testid="page-system">
      <div class="page-title">
        <h1>System</h1>
        <UpdatedAt at={loaded.at} loading={loaded.loading} />
      </div>
      <ErrorBox error={loaded.error} />
      <Panel title="Health">
        <table class="table" data-testid="health-table">
          <thead>
            <tr>
              <th>Endpoint</th>
              <th>Answer</th>
              <th>Report</th>
            </tr>
          </thead>
          <tbody>
            {probes.map((p) => (
              <tr key={p.path} data-path={p.path}>
                <td>GET {p.path}</td>
                <td>
                  {p.status === 'absent' ? (
                    <span class="muted">not offered by this gateway</span>
                  ) : (
                    <span
                      class={p.status === 200 ? 'badge badge-completed' : 'badge badge-failed'}
                      data-testid="health-status"
                    >
                      {p.status === 200 ? 'up' : 'down'} ({p.status})
                    </span>
                  )}
                </td>
                <td>{p.body !== undefined && <pre class="inline-pre">{formatJson(p.body)}</pre>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Panel>
      <Panel title="Analytics projection">
        {stats instanceof ApiError ? (
          <ErrorBox error={stats} />
        ) : (
          <div class="figures">
            <Figure
              label="Head position"
              testId="head-position"
              value={stats.head_position}
              text={formatInt(stats.head_position)}
              hint="highest global position of the followed streams"
            />
            <Figure
              label="Applied position"
              testId="as-of-position"
              value={stats.as_of_position}
              text={formatInt(stats.as_of_position)}
            />
            <Figure
              label="Projection lag (events)"
              testId="projection-lag"
              value={stats.projection_lag}
              text={formatInt(stats.projection_lag)}
            />
            <Figure
              label="Events projected"
              testId="events-projected"
              value={stats.events_projected}
              text={formatInt(stats.events_projected)}
              hint="this tenant's events applied"
            />
          </div>
        )}
      </Panel>
      <Panel title="Relay, consumers and dead letters (gateway /metrics)">
        {metrics === 'absent' ? (
          <p class="muted" data-testid="metrics-absent">
            This gateway serves no /metrics: relay lag, consumer pending and dead letters are not offered over
            its HTTP API.
          </p>
        ) : metrics.length === 0 ? (
          <p class="muted">/metrics has no lag or dead-letter series on this process.</p>
        ) : (
          <table class="table" data-testid="metrics-table">
            <thead>
              <tr>
                <th>Series</th>
                <th>Labels</th>
                <th class="num">Value</th>
              </tr>
            </thead>
            <tbody>
              {metrics.map((m) => (
                <tr key={m.name + m.labels}>
                  <td>{m.name}</td>
                  <td class="small">{m.labels}</td>
                  <td class="num">{m.value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
    </div>
  );
}
