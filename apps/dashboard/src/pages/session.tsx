import { useState } from 'preact/hooks';
import type {
  SessionHistoryPage,
  SessionStateView,
  SessionStatsView,
  SessionView,
  TurnPage,
  TurnView,
} from '@threadline/contracts';
import { request, withQuery } from '../api';
import type { Caller } from '../auth';
import { Badge, ErrorBox, Figure, Loading, Pager, Panel } from '../components';
import { formatInt, formatJson, formatMs, formatRate, formatTime, formatUsd } from '../format';
import { useLoad, type Loaded } from '../hooks';
import { href } from '../router';

/** Turns per page of the timeline, and history events per page. */
export const TURNS_PAGE_SIZE = 20;
export const HISTORY_PAGE_SIZE = 50;

/** Cursor paging state: the cursors of the pages seen, the current one last. */
function useCursors() {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  return {
    cursor: cursors[cursors.length - 1],
    page: cursors.length,
    previous: () => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)),
    next: (cursor: string | null | undefined) => {
      if (cursor) setCursors((c) => [...c, cursor]);
    },
  };
}

/** A turn's latency: its `processing_time_ms`, else the sum of its agents' execution times (ms). */
export function turnLatencyMs(turn: TurnView): number | null {
  if (turn.processing_time_ms !== null) return turn.processing_time_ms;
  const times = turn.agent_responses.map((r) => r.execution_time_ms).filter((t): t is number => t !== null);
  return times.length === 0 ? null : times.reduce((a, b) => a + b, 0);
}

function TurnCard(props: { turn: TurnView }) {
  const t = props.turn;
  return (
    <article class={`turn turn-${t.status}`} data-testid="turn" data-turn={t.turn_id}>
      <header class="turn-header">
        <span class="turn-number">#{t.conversation_turn}</span>
        <Badge status={t.status} />
        <span class="muted">{formatTime(t.started_at)}</span>
        <span class="turn-figures">
          <span data-testid="turn-tokens" data-value={t.usage.total_tokens}>
            {formatInt(t.usage.total_tokens)} tokens
          </span>
          {' · '}
          <span data-testid="turn-cost" data-value={t.cost_usd}>
            {formatUsd(t.cost_usd)}
          </span>
          {' · '}
          <span data-testid="turn-latency">{formatMs(turnLatencyMs(t))}</span>
          {t.vector_cache_hit ? ' · cache hit' : ''}
        </span>
      </header>
      <div class="bubble bubble-user">
        <div class="who">user</div>
        <div class="text" data-testid="turn-input">
          {t.user_input === '' ? <span class="muted">(no input)</span> : t.user_input}
        </div>
      </div>
      {t.tool_calls.length > 0 && (
        <div class="tools">
          {t.tool_calls.map((call) => (
            <details class="tool" key={call.tool_call_id} data-testid="tool-call">
              <summary>
                <span class="tool-name">{call.name}</span> <Badge status={call.status} />
                {call.error !== null && <span class="error-text"> {call.error}</span>}
              </summary>
              {call.request !== null && (
                <>
                  <div class="muted small">request</div>
                  <pre>{formatJson(call.request)}</pre>
                </>
              )}
              {call.result !== null && (
                <>
                  <div class="muted small">result</div>
                  <pre>{formatJson(call.result)}</pre>
                </>
              )}
            </details>
          ))}
        </div>
      )}
      {t.agent_responses.map((r) => (
        <div class="bubble bubble-agent" key={`${r.agent_name}:${r.turn_order}`} data-testid="agent-response">
          <div class="who">
            {r.agent_name}
            {r.model !== null && <span class="muted"> · {r.model}</span>}
            <span class="muted">
              {' '}
              · {formatInt(r.usage.input_tokens)} in / {formatInt(r.usage.output_tokens)} out
              {r.usage.cached_tokens > 0 ? ` / ${formatInt(r.usage.cached_tokens)} cached` : ''} (
              {r.usage_source}) · {formatUsd(r.cost_usd)} · {formatMs(r.execution_time_ms)}
            </span>
          </div>
          <div class="text">{r.response}</div>
        </div>
      ))}
      {t.error !== null && <div class="error-text">error: {t.error}</div>}
    </article>
  );
}

function Timeline(props: { caller: Caller; sessionId: string }) {
  const paging = useCursors();
  const turns = useLoad(
    (signal) =>
      request<TurnPage>(
        withQuery(`/sessions/${encodeURIComponent(props.sessionId)}/turns`, {
          limit: TURNS_PAGE_SIZE,
          order: 'asc',
          cursor: paging.cursor,
        }),
        props.caller.credential,
        { signal },
      ),
    [props.caller.credential, props.sessionId, paging.cursor],
  );
  return (
    <Panel title="Turns" testId="timeline">
      <ErrorBox error={turns.error} />
      {turns.data === undefined ? (
        turns.error === undefined && <Loading />
      ) : (
        <>
          {turns.data.turns.length === 0 && <p class="muted">No turns yet.</p>}
          {turns.data.turns.map((t) => (
            <TurnCard key={t.turn_id} turn={t} />
          ))}
          <Pager
            page={paging.page}
            hasPrevious={paging.page > 1}
            hasNext={turns.data.next_cursor !== null}
            onPrevious={paging.previous}
            onNext={() => paging.next(turns.data?.next_cursor)}
            label="turn pages"
          />
        </>
      )}
    </Panel>
  );
}

function History(props: { caller: Caller; sessionId: string }) {
  const paging = useCursors();
  const history = useLoad(
    (signal) =>
      request<SessionHistoryPage>(
        withQuery(`/sessions/${encodeURIComponent(props.sessionId)}/history`, {
          limit: HISTORY_PAGE_SIZE,
          cursor: paging.cursor,
        }),
        props.caller.credential,
        { signal },
      ),
    [props.caller.credential, props.sessionId, paging.cursor],
  );
  return (
    <Panel title="History (session and state events)" testId="history">
      <ErrorBox error={history.error} />
      {history.data === undefined ? (
        history.error === undefined && <Loading />
      ) : (
        <>
          <table class="table">
            <thead>
              <tr>
                <th class="num">Position</th>
                <th>Stream</th>
                <th class="num">Version</th>
                <th>Event</th>
                <th>Time</th>
                <th>Data</th>
              </tr>
            </thead>
            <tbody>
              {history.data.events.map((e) => (
                <tr key={e.event_id} data-testid="history-event">
                  <td class="num">{e.position}</td>
                  <td>{e.stream}</td>
                  <td class="num">{e.version}</td>
                  <td>{e.type}</td>
                  <td>{formatTime(e.time)}</td>
                  <td>
                    <details>
                      <summary>data</summary>
                      <pre>{formatJson(e.data)}</pre>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager
            page={paging.page}
            hasPrevious={paging.page > 1}
            hasNext={history.data.next_cursor !== null}
            onPrevious={paging.previous}
            onNext={() => paging.next(history.data?.next_cursor)}
            label="history pages"
          />
        </>
      )}
    </Panel>
  );
}

function StatePanel(props: { state: Loaded<SessionStateView> }) {
  const state = props.state.data;
  return (
    <Panel title="State" testId="state">
      <ErrorBox error={props.state.error} />
      {state === undefined ? (
        props.state.error === undefined && <Loading />
      ) : state.version === 0 ? (
        <p class="muted">No state recorded.</p>
      ) : (
        <>
          <dl class="meta">
            <dt>Version</dt>
            <dd>{state.version}</dd>
            <dt>Status</dt>
            <dd>{state.status ?? '—'}</dd>
            <dt>Summary</dt>
            <dd>{state.summary ?? '—'}</dd>
            <dt>Complete</dt>
            <dd>{state.is_complete ? 'yes' : 'no'}</dd>
            <dt>Updated</dt>
            <dd>{formatTime(state.updated_at)}</dd>
          </dl>
          {state.tool_calls.length > 0 && (
            <table class="table">
              <thead>
                <tr>
                  <th>Planned tool call</th>
                  <th>Status</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {state.tool_calls.map((c) => (
                  <tr key={c.name}>
                    <td>{c.name}</td>
                    <td>
                      <Badge status={c.status} />
                    </td>
                    <td>{formatTime(c.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {(['constraints', 'strategy', 'response_plan'] as const).map((k) =>
            state[k] === null ? null : (
              <details key={k}>
                <summary>{k}</summary>
                <pre>{formatJson(state[k])}</pre>
              </details>
            ),
          )}
        </>
      )}
    </Panel>
  );
}

/**
 * One session: its metadata and context (`GET /sessions/{id}`), its figures (`.../stats`), its
 * workflow state (`.../state`) and event history (`.../history`, paged), and its turns as a timeline
 * (`.../turns`, paged): each agent's response, tool calls with status, tokens, cost and latency.
 */
export function SessionPage(props: { caller: Caller; sessionId: string }) {
  const { caller, sessionId } = props;
  const base = `/sessions/${encodeURIComponent(sessionId)}`;
  const session = useLoad(
    (signal) => request<SessionView>(base, caller.credential, { signal }),
    [caller.credential, sessionId],
  );
  const stats = useLoad(
    (signal) => request<SessionStatsView>(`${base}/stats`, caller.credential, { signal }),
    [caller.credential, sessionId],
  );
  const state = useLoad(
    (signal) => request<SessionStateView>(`${base}/state`, caller.credential, { signal }),
    [caller.credential, sessionId],
  );
  if (session.data === undefined)
    return session.error === undefined ? <Loading /> : <ErrorBox error={session.error} />;
  const s = session.data;
  const st = stats.data;
  return (
    <div class="page" data-testid="page-session">
      <div class="page-title">
        <h1>
          {s.title === '' ? 'Session' : s.title} <Badge status={s.status} />
        </h1>
      </div>
      <Panel title="Session">
        <dl class="meta">
          <dt>Id</dt>
          <dd data-testid="session-id">{s.session_id}</dd>
          <dt>User</dt>
          <dd>
            {s.user_id === null ? '—' : <a href={href({ page: 'user', userId: s.user_id })}>{s.user_id}</a>}
          </dd>
          <dt>Created</dt>
          <dd>
            {formatTime(s.created_at)}
            {s.created_from !== null ? ` from ${s.created_from}` : ''}
          </dd>
          <dt>Last activity</dt>
          <dd>{formatTime(s.last_activity_at)}</dd>
          <dt>Ended</dt>
          <dd>{formatTime(s.ended_at)}</dd>
          <dt>Version</dt>
          <dd>{s.version}</dd>
          <dt>Metadata</dt>
          <dd>
            <pre class="inline-pre">{formatJson(s.metadata)}</pre>
          </dd>
          <dt>Last agent</dt>
          <dd>{s.context.last_agent_used ?? '—'}</dd>
          <dt>Errors</dt>
          <dd>
            {s.context.error_count}
            {s.context.last_error !== null ? ` (last: ${s.context.last_error})` : ''}
          </dd>
        </dl>
      </Panel>
      <Panel title="Figures">
        <ErrorBox error={stats.error} />
        {st === undefined ? (
          stats.error === undefined && <Loading />
        ) : (
          <div class="figures">
            <Figure
              label="Turns"
              testId="session-interactions"
              value={st.interactions}
              text={formatInt(st.interactions)}
            />
            <Figure
              label="Failed"
              testId="session-turns-failed"
              value={st.turns_failed}
              text={formatInt(st.turns_failed)}
            />
            <Figure
              label="Tokens"
              testId="session-tokens"
              value={st.total_tokens}
              text={formatInt(st.total_tokens)}
            />
            <Figure
              label="Tokens in"
              testId="session-tokens-in"
              value={st.total_tokens_in}
              text={formatInt(st.total_tokens_in)}
            />
            <Figure
              label="Tokens out"
              testId="session-tokens-out"
              value={st.total_tokens_out}
              text={formatInt(st.total_tokens_out)}
            />
            <Figure label="Cost" testId="session-cost" value={st.cost_usd} text={formatUsd(st.cost_usd)} />
            <Figure
              label="Avg response"
              testId="session-avg-ms"
              value={st.avg_response_time_ms}
              text={formatMs(st.avg_response_time_ms)}
            />
            <Figure
              label="p95 response"
              testId="session-p95-ms"
              value={st.p95_response_time_ms}
              text={formatMs(st.p95_response_time_ms)}
            />
            <Figure
              label="Tool calls"
              testId="session-tool-calls"
              value={st.tool_calls.total}
              text={formatInt(st.tool_calls.total)}
            />
            <Figure
              label="Tool calls failed"
              testId="session-tool-calls-failed"
              value={st.tool_calls.failed}
              text={formatInt(st.tool_calls.failed)}
            />
            <Figure
              label="Vector cache hits"
              testId="session-cache-rate"
              value={st.vector_cache_hit_rate}
              text={formatRate(st.vector_cache_hit_rate)}
            />
            <Figure label="Errors" testId="session-errors" value={st.errors} text={formatInt(st.errors)} />
          </div>
        )}
      </Panel>
      <Timeline caller={caller} sessionId={sessionId} />
      <StatePanel state={state} />
      <History caller={caller} sessionId={sessionId} />
    </div>
  );
}
