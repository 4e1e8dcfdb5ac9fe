import { jetstreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { type Db } from '@threadline/event-store';
import { connectNats } from '@threadline/messaging';
import { GatewayClient } from './http';
import { sleep, type Write } from './load';
import { STREAM, TENANT } from './stack';

/** What a scenario's checks found. Counts are of writes (creates, turns, ends, deletes). */
export interface Verdict {
  acknowledged: number;
  /** Acknowledged writes found in the event store (at least once). */
  stored: number;
  /** Acknowledged turns of sessions not deleted, present in the turns read model, `turn_count` and usage stats. */
  projected: number;
  /** Acknowledged turns that should be projected (of sessions not deleted). */
  projectable: number;
  /** Acknowledged writes not in the store. */
  lost: number;
  /** Writes in the store more than once: acknowledged ones, and (separately) unacknowledged ones. */
  duplicated: number;
  duplicatedUnacknowledged: number;
  /** Writes left unacknowledged (given up) and how many of them committed anyway (once). */
  unacknowledged: number;
  unacknowledgedStored: number;
  /** Writes answered with a non-retryable 4xx. */
  rejected: number;
  /** Dead letters recorded during the scenario that are not the poison it sent. */
  unexpectedDeadLetters: number;
  poisonDeadLetters: number;
  /** Seconds from the end of the load until every check passed (or the limit). */
  quiescenceSeconds: number;
  /** False when the read models or JetStream consumers did not catch up within the limit. */
  quiescent: boolean;
  /** Why the scenario fails, one line each (empty: pass). */
  problems: string[];
}

const Count = z.object({ marker: z.string(), session_id: z.string(), n: z.coerce.number() });
const SessionCount = z.object({ event_type: z.string(), session_id: z.string(), n: z.coerce.number() });
const SessionAnswer = z.object({ turn_count: z.number(), status: z.string() });
const TurnsAnswer = z.object({ turns: z.array(z.object({ user_input: z.string() })) });
const StatsAnswer = z.object({ interactions: z.number(), total_tokens_in: z.number() });
const DeadLetterRow = z.object({ id: z.coerce.number(), consumer: z.string(), payload: z.string() });

/** `body` parsed as JSON, or undefined when it is not JSON. */
function jsonOf(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** `text` with LIKE's wildcards escaped (backslash is LIKE's default escape). */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}-%`;

export interface VerifyInput {
  db: Db;
  natsUrl: string;
  gatewayUrls: readonly string[];
  apiKey: string;
  /** The scenario's prefix of keys and markers. */
  tag: string;
  writes: readonly Write[];
  /** Dead letters with an id above this one are the scenario's. */
  deadLetterFloor: number;
  /** A substring of the poison message's payload that the scenario published on purpose. */
  poisonMarker: string;
  /** Messages published to the stream on purpose besides the relay's (the poison). */
  extraStreamMessages: number;
  /** How long the read models and consumers have to catch up, ms. */
  quiesceMs: number;
  /** Progress lines while waiting (every 5 s). */
  log?: (line: string) => void;
  /** Asked each round: a reason to stop waiting early (nothing left running that could catch up), or undefined. */
  hopeless?: () => string | undefined;
}

/** What {@link tally} counts. */
export interface Tally {
  acknowledged: number;
  stored: number;
  lost: number;
  duplicated: number;
  duplicatedUnacknowledged: number;
  unacknowledged: number;
  unacknowledgedStored: number;
  rejected: number;
}

/**
 * Counts `writes` against `stored(w)` (how many times the store holds write `w`): an acknowledged
 * write stored 0 times is lost, more than once duplicated; an unacknowledged one may be stored once
 * (committed, then the answer was lost), never twice. Answers the counts and a line per kind of loss
 * or duplication, with up to 5 examples.
 */
export function tally(
  writes: readonly Write[],
  stored: (w: Write) => number,
): { counts: Tally; problems: string[] } {
  const c: Tally = {
    acknowledged: 0,
    stored: 0,
    lost: 0,
    duplicated: 0,
    duplicatedUnacknowledged: 0,
    unacknowledged: 0,
    unacknowledgedStored: 0,
    rejected: 0,
  };
  const lostExamples: string[] = [];
  const dupExamples: string[] = [];
  for (const w of writes) {
    const n = stored(w);
    if (w.rejected !== undefined) c.rejected++;
    if (w.acked) {
      c.acknowledged++;
      if (n > 0) c.stored++;
      if (n === 0) {
        c.lost++;
        if (lostExamples.length < 5) lostExamples.push(`${w.kind} ${w.key}`);
      }
      if (n > 1) {
        c.duplicated++;
        if (dupExamples.length < 5) dupExamples.push(`${w.kind} ${w.key} x${n}`);
      }
    } else {
      c.unacknowledged++;
      if (n === 1) c.unacknowledgedStored++;
      if (n > 1) {
        c.duplicatedUnacknowledged++;
        if (dupExamples.length < 5) dupExamples.push(`unacknowledged ${w.kind} ${w.key} x${n}`);
      }
    }
  }
  const problems: string[] = [];
  if (c.lost > 0) problems.push(`${c.lost} acknowledged writes lost, e.g. ${lostExamples.join(', ')}`);
  if (c.duplicated + c.duplicatedUnacknowledged > 0)
    problems.push(`writes stored more than once, e.g. ${dupExamples.join(', ')}`);
  return { counts: c, problems };
}

/** The highest dead-letter id now (0 when none): the floor of the next scenario. */
export async function deadLetterHead(db: Db): Promise<number> {
  const [row] = await db.query<{ id: string | null }>('SELECT max(id)::text AS id FROM dead_letters');
  return Number(row?.id ?? 0);
}

/**
 * The checks after a scenario, once its load stopped: every acknowledged write is in the event store
 * exactly once (creates by title, turns by `user_input`, ends and deletes by session: each carries the
 * write's idempotency key or session), nothing unacknowledged is there twice; then, polling until
 * `quiesceMs`: every session not deleted has, through the public API, a `turn_count`, a turns list and
 * usage stats (`interactions`, tokens in) that match its turns in the store, every deleted one is 404,
 * every JetStream consumer has nothing pending, and the stream holds every stored event once (relay).
 * Dead letters recorded since `deadLetterFloor` are only the poison sent on purpose.
 */
export async function verify(input: VerifyInput): Promise<Verdict> {
  const { db, tag, writes } = input;
  const problems: string[] = [];
  const rows = (
    await db.query(
      `SELECT coalesce(data->>'title', data->>'userInput') AS marker, data->>'sessionId' AS session_id, count(*) AS n
         FROM events
        WHERE tenant_id = $1
          AND ((event_type = 'SessionCreated.v1' AND data->>'title' LIKE $2)
            OR (event_type = 'TurnLogged.v1' AND data->>'userInput' LIKE $2))
        GROUP BY 1, 2`,
      [TENANT, likePrefix(tag)],
    )
  ).map((r) => Count.parse(r));
  const byMarker = new Map<string, number>();
  const sessionIds = new Set<string>();
  const turnsBySession = new Map<string, Set<string>>();
  for (const r of rows) {
    byMarker.set(r.marker, (byMarker.get(r.marker) ?? 0) + r.n);
    if (/-w\d+-s\d+$/.test(r.marker)) sessionIds.add(r.session_id);
  }
  for (const r of rows) {
    if (!/-w\d+-t\d+$/.test(r.marker)) continue;
    const set = turnsBySession.get(r.session_id) ?? new Set<string>();
    set.add(r.marker);
    turnsBySession.set(r.session_id, set);
  }
  const lifecycle = (
    await db.query(
      `SELECT event_type, data->>'sessionId' AS session_id, count(*) AS n
         FROM events
        WHERE tenant_id = $1 AND event_type IN ('SessionEnded.v1', 'SessionDeleted.v1')
          AND data->>'sessionId' = ANY($2::text[])
        GROUP BY 1, 2`,
      [TENANT, [...sessionIds]],
    )
  ).map((r) => SessionCount.parse(r));
  const ended = new Map<string, number>();
  const deleted = new Map<string, number>();
  for (const r of lifecycle) (r.event_type === 'SessionEnded.v1' ? ended : deleted).set(r.session_id, r.n);

  const stored = (w: Write): number => {
    switch (w.kind) {
      case 'create':
      case 'turn':
        return byMarker.get(w.key) ?? 0;
      case 'end':
        return w.sessionId === undefined ? 0 : (ended.get(w.sessionId) ?? 0);
      case 'delete':
        return w.sessionId === undefined ? 0 : (deleted.get(w.sessionId) ?? 0);
    }
  };

  const v: Verdict = {
    acknowledged: 0,
    stored: 0,
    projected: 0,
    projectable: 0,
    lost: 0,
    duplicated: 0,
    duplicatedUnacknowledged: 0,
    unacknowledged: 0,
    unacknowledgedStored: 0,
    rejected: 0,
    unexpectedDeadLetters: 0,
    poisonDeadLetters: 0,
    quiescenceSeconds: 0,
    quiescent: false,
    problems,
  };
  const tallied = tally(writes, stored);
  Object.assign(v, tallied.counts);
  problems.push(...tallied.problems);
  if (v.rejected > 0) {
    const byStatus = new Map<number, number>();
    for (const w of writes)
      if (w.rejected !== undefined) byStatus.set(w.rejected, (byStatus.get(w.rejected) ?? 0) + 1);
    problems.push(
      `${v.rejected} writes answered a non-retryable 4xx: ${[...byStatus].map(([s, n]) => `${n}x ${s}`).join(', ')}`,
    );
  }

  // Projections: poll until they agree with the store (or the limit).
  const liveSessions = [...sessionIds].filter((s) => !deleted.has(s));
  const deletedSessions = [...sessionIds].filter((s) => deleted.has(s));
  const ackedTurns = writes.filter((w) => w.kind === 'turn' && w.acked);
  v.projectable = ackedTurns.filter((w) => w.sessionId !== undefined && !deleted.has(w.sessionId)).length;
  const client = new GatewayClient(input.gatewayUrls[0]!, input.apiKey, 8, 10_000);
  const fallback = new GatewayClient(
    input.gatewayUrls[input.gatewayUrls.length - 1]!,
    input.apiKey,
    8,
    10_000,
  );
  const get = async (path: string) => {
    try {
      return await client.send('GET', path);
    } catch {
      return fallback.send('GET', path).catch(() => ({ status: 0, body: '' }));
    }
  };
  const passed = new Set<string>();
  const why = new Map<string, string>();
  const checkSession = async (sessionId: string): Promise<void> => {
    const expected = turnsBySession.get(sessionId) ?? new Set<string>();
    const id = encodeURIComponent(sessionId);
    if (deleted.has(sessionId)) {
      const s = await get(`/sessions/${id}`);
      if (s.status === 404) passed.add(sessionId);
      else why.set(sessionId, `deleted session ${sessionId} answers ${s.status}`);
      return;
    }
    const [s, t, st] = await Promise.all([
      get(`/sessions/${id}`),
      get(`/sessions/${id}/turns?limit=200`),
      get(`/sessions/${id}/stats`),
    ]);
    const session = s.status === 200 ? SessionAnswer.safeParse(jsonOf(s.body)) : undefined;
    const turns = t.status === 200 ? TurnsAnswer.safeParse(jsonOf(t.body)) : undefined;
    const stats = st.status === 200 ? StatsAnswer.safeParse(jsonOf(st.body)) : undefined;
    if (!session?.success || !turns?.success || !stats?.success) {
      why.set(sessionId, `session ${sessionId}: answers ${s.status}/${t.status}/${st.status}`);
      return;
    }
    const listed = new Set(turns.data.turns.map((x) => x.user_input));
    const missing = [...expected].filter((m) => !listed.has(m));
    if (
      session.data.turn_count !== expected.size ||
      listed.size !== expected.size ||
      missing.length > 0 ||
      stats.data.interactions !== expected.size ||
      stats.data.total_tokens_in !== 10 * expected.size
    ) {
      why.set(
        sessionId,
        `session ${sessionId}: store ${expected.size} turns, turn_count ${session.data.turn_count}, ` +
          `listed ${listed.size} (${missing.length} missing), stats interactions ${stats.data.interactions}, tokens in ${stats.data.total_tokens_in}`,
      );
      return;
    }
    why.delete(sessionId);
    passed.add(sessionId);
  };

  const nc = await connectNats({ NATS_URL: input.natsUrl }, 'threadline-chaos-verify');
  const jsm = await jetstreamManager(nc);
  const [eventsRow] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM events');
  let streamProblem = '';
  const streamCaughtUp = async (): Promise<boolean> => {
    try {
      const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM events');
      const events = Number(row?.n ?? eventsRow?.n ?? 0);
      const info = await jsm.streams.info(STREAM);
      const expectedMessages = events + input.extraStreamMessages;
      const pending: string[] = [];
      for await (const c of jsm.consumers.list(STREAM)) {
        if (c.num_pending > 0 || c.num_ack_pending > 0)
          pending.push(`${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} unacknowledged`);
      }
      if (info.state.messages !== expectedMessages || pending.length > 0) {
        streamProblem = `stream holds ${info.state.messages} messages for ${events} events + ${input.extraStreamMessages} poison; ${pending.join('; ') || 'consumers caught up'}`;
        return false;
      }
      streamProblem = '';
      return true;
    } catch (error) {
      streamProblem = `JetStream not answering: ${String(error)}`;
      return false;
    }
  };

  const all = [...liveSessions, ...deletedSessions];
  const started = Date.now();
  const deadline = started + input.quiesceMs;
  let lastProgress = started;
  for (;;) {
    const todo = all.filter((s) => !passed.has(s));
    for (let i = 0; i < todo.length; i += 16) await Promise.all(todo.slice(i, i + 16).map(checkSession));
    const streamOk = await streamCaughtUp();
    if (passed.size === all.length && streamOk) {
      // Once more for all of them: nothing passed earlier and changed since.
      passed.clear();
      for (let i = 0; i < all.length; i += 16) await Promise.all(all.slice(i, i + 16).map(checkSession));
      if (passed.size === all.length) {
        v.quiescent = true;
        break;
      }
    }
    if (Date.now() > deadline) break;
    const hopeless = Date.now() - started > 20_000 ? input.hopeless?.() : undefined;
    if (hopeless !== undefined) {
      problems.push(`stopped waiting after ${Math.round((Date.now() - started) / 1000)} s: ${hopeless}`);
      break;
    }
    if (Date.now() - lastProgress > 5000) {
      lastProgress = Date.now();
      const first = all.find((x) => !passed.has(x));
      input.log?.(
        `waiting: ${all.length - passed.size}/${all.length} sessions disagree${first ? ` (${why.get(first) ?? first})` : ''}; ${streamProblem || 'stream caught up'}`,
      );
    }
    await sleep(1000);
  }
  v.quiescenceSeconds = (Date.now() - started) / 1000;
  await nc.close();
  client.close();
  fallback.close();
  v.projected = ackedTurns.filter(
    (w) => w.sessionId !== undefined && !deleted.has(w.sessionId) && passed.has(w.sessionId),
  ).length;
  if (!v.quiescent) {
    const failing = all.filter((s) => !passed.has(s));
    if (failing.length > 0)
      problems.push(
        `${failing.length} sessions' read models disagree with the store after ${Math.round(v.quiescenceSeconds)} s, e.g. ${failing
          .slice(0, 3)
          .map((s) => why.get(s) ?? s)
          .join('; ')}`,
      );
    if (streamProblem !== '') problems.push(`not caught up: ${streamProblem}`);
  }

  const letters = (
    await db.query('SELECT id, consumer, payload FROM dead_letters WHERE id > $1 ORDER BY id', [
      input.deadLetterFloor,
    ])
  ).map((r) => DeadLetterRow.parse(r));
  for (const l of letters) {
    if (l.payload.includes(input.poisonMarker)) v.poisonDeadLetters++;
    else v.unexpectedDeadLetters++;
  }
  if (v.unexpectedDeadLetters > 0)
    problems.push(
      `${v.unexpectedDeadLetters} unexpected dead letters, e.g. ${letters
        .filter((l) => !l.payload.includes(input.poisonMarker))
        .slice(0, 3)
        .map((l) => `${l.consumer}: ${l.payload.slice(0, 120)}`)
        .join('; ')}`,
    );
  if (v.poisonDeadLetters === 0) problems.push('the poison message sent on purpose was not dead-lettered');
  return v;
}
