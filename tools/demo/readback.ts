import { setTimeout as delay } from 'node:timers/promises';
import { ZodError } from 'zod';
import { SessionPage, SessionView, TurnPage, type TurnView } from '@threadline/contracts';
import { ApiError, type ApiClient } from './http';
import type { DialogOutcome } from './importer';

/** The page size the turn list allows at most (ListSessionTurnsQuery). */
const MAX_PAGE = 200;
/** Poll interval while waiting for an eventually consistent read model, ms. */
const POLL_MS = 250;

/** One sampled session read back through `GET /sessions/{id}/turns` and `GET /sessions/{id}`. */
export interface SessionCheck {
  conversationId: string;
  sessionId: string;
  userId: string;
  sentTurns: number;
  readTurns: number;
  sentToolCalls: number;
  readToolCalls: number;
  /** Sums over the turns read, tokens and USD. */
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  costUsd: number;
  /** Agent responses read, and those whose usage the service estimated. */
  responses: number;
  estimatedResponses: number;
  /** The session's `turn_count` once it equalled `sentTurns`, or the last value seen. */
  sessionTurnCount: number | undefined;
}

/** One user's sessions of this run, `GET /users/{user}/sessions?metadata.demo_run=<runId>`. */
export interface UserCheck {
  userId: string;
  /** Sessions this run created for the user, and the list's `total`. */
  created: number;
  listed: number | undefined;
}

export interface ReadBack {
  users: UserCheck[];
  sessions: SessionCheck[];
  /** The body of `GET /sessions/stats`; undefined when the endpoint does not exist (404). */
  stats?: unknown;
  /** Every difference between what was sent and what was read, one line each. */
  mismatches: string[];
  /** Requests of the read-back that failed, one line each. */
  failures: string[];
}

export interface ReadBackOptions {
  runId: string;
  /** Sessions to read back, spread evenly over the imported ones. */
  sample: number;
  /** How long read models fed over the bus (session `turn_count`, user lists) may take to catch up, ms. */
  catchUpMs: number;
  concurrency: number;
}

/** Up to `n` items spread evenly over `items` (first and last included). */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (n <= 0 || items.length === 0) return [];
  if (n >= items.length) return [...items];
  if (n === 1) return [items[0] as T];
  return Array.from({ length: n }, (_, i) => items[Math.round((i * (items.length - 1)) / (n - 1))] as T);
}

/**
 * Reads the import back through the API and compares it with what was sent:
 * - per user of the run, `GET /users/{user}/sessions?metadata.demo_run=<runId>&limit=1` `total`
 *   against the sessions created (waiting up to `catchUpMs` for the list to catch up);
 * - per sampled session, every turn (`GET /sessions/{id}/turns?last=<sent+1>`, or cursor pages when
 *   more than 199 were sent): count, `conversation_turn` 1..n, user input, responses and tool calls
 *   turn by turn; sums of tokens and `cost_usd`; and `GET /sessions/{id}` `turn_count` (waiting up
 *   to `catchUpMs`, since the session-service learns of turns over the bus);
 * - `GET /sessions/stats` when it exists (a 404 is skipped).
 * Failed requests are listed in `failures`, differences in `mismatches`; never throws for API errors.
 */
export async function readBack(
  client: ApiClient,
  outcomes: readonly DialogOutcome[],
  options: ReadBackOptions,
): Promise<ReadBack> {
  const result: ReadBack = { users: [], sessions: [], mismatches: [], failures: [] };
  const deadline = Date.now() + options.catchUpMs;
  const created = outcomes.filter(
    (o): o is DialogOutcome & { sessionId: string } => o.sessionId !== undefined,
  );

  const perUser = new Map<string, number>();
  for (const o of created) perUser.set(o.plan.userId, (perUser.get(o.plan.userId) ?? 0) + 1);
  const users = [...perUser.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  await inPool(users, options.concurrency, async ([userId, count]) => {
    const check: UserCheck = { userId, created: count, listed: undefined };
    result.users.push(check);
    const path = `/users/${encodeURIComponent(userId)}/sessions?limit=1&metadata.demo_run=${encodeURIComponent(options.runId)}`;
    await guarded(result, async () => {
      for (;;) {
        const page = SessionPage.parse((await client.request('GET', path)).body);
        check.listed = page.total;
        if (page.total === count || Date.now() >= deadline) break;
        await delay(POLL_MS);
      }
      if (check.listed !== count)
        result.mismatches.push(`${userId}: ${count} sessions created, ${check.listed} listed`);
    });
  });
  result.users.sort((a, b) => a.userId.localeCompare(b.userId, 'en', { numeric: true }));

  // Only dialogs sent whole are compared turn by turn; a failed one is already counted as an error.
  const complete = created.filter((o) => o.error === undefined);
  await inPool(spread(complete, options.sample), options.concurrency, async (outcome) => {
    await guarded(result, async () => {
      result.sessions.push(await checkSession(client, outcome, deadline, result.mismatches));
    });
  });
  result.sessions.sort((a, b) => a.conversationId.localeCompare(b.conversationId));

  await guarded(result, async () => {
    const stats = await client.request('GET', '/sessions/stats', { accept: [404] });
    if (stats.status !== 404) result.stats = stats.body;
  });
  return result;
}

async function checkSession(
  client: ApiClient,
  outcome: DialogOutcome & { sessionId: string },
  deadline: number,
  mismatches: string[],
): Promise<SessionCheck> {
  const sent = outcome.plan.turns;
  const id = encodeURIComponent(outcome.sessionId);
  const turns = await readTurns(client, id, sent.length);
  const label = `session ${outcome.sessionId} (${outcome.plan.conversationId})`;
  const check: SessionCheck = {
    conversationId: outcome.plan.conversationId,
    sessionId: outcome.sessionId,
    userId: outcome.plan.userId,
    sentTurns: sent.length,
    readTurns: turns.length,
    sentToolCalls: outcome.toolCallsSent,
    readToolCalls: 0,
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    costUsd: 0,
    responses: 0,
    estimatedResponses: 0,
    sessionTurnCount: undefined,
  };
  if (turns.length !== sent.length)
    mismatches.push(`${label}: ${sent.length} turns sent, ${turns.length} read`);
  turns.forEach((turn, i) => {
    check.readToolCalls += turn.tool_calls.length;
    check.inputTokens += turn.usage.input_tokens;
    check.outputTokens += turn.usage.output_tokens;
    check.totalTokens += turn.usage.total_tokens;
    check.costUsd += turn.cost_usd;
    check.responses += turn.agent_responses.length;
    check.estimatedResponses += turn.agent_responses.filter((r) => r.usage_source === 'estimated').length;
    const where = `${label} turn ${i + 1}`;
    if (turn.conversation_turn !== i + 1)
      mismatches.push(`${where}: conversation_turn is ${turn.conversation_turn}`);
    const body = sent[i];
    if (body === undefined) return;
    if (turn.user_input !== body.user_input) mismatches.push(`${where}: user_input differs`);
    const sentResponses = (body.agent_responses ?? []).map((r) => r.response);
    const readResponses = [...turn.agent_responses]
      .sort((a, b) => a.turn_order - b.turn_order)
      .map((r) => r.response);
    if (JSON.stringify(sentResponses) !== JSON.stringify(readResponses)) {
      mismatches.push(
        `${where}: ${sentResponses.length} responses sent, ${readResponses.length} read, or texts differ`,
      );
    }
    const sentCalls = (body.tool_calls ?? []).map((c) => c.name);
    const readCalls = turn.tool_calls.map((c) => c.name);
    if (JSON.stringify([...sentCalls].sort()) !== JSON.stringify([...readCalls].sort())) {
      mismatches.push(`${where}: tool calls sent [${sentCalls.join(', ')}], read [${readCalls.join(', ')}]`);
    }
  });
  if (check.readToolCalls !== check.sentToolCalls) {
    mismatches.push(`${label}: ${check.sentToolCalls} tool calls sent, ${check.readToolCalls} read`);
  }
  for (;;) {
    const session = SessionView.parse((await client.request('GET', `/sessions/${id}`)).body);
    check.sessionTurnCount = session.turn_count;
    if (session.turn_count === sent.length || Date.now() >= deadline) break;
    await delay(POLL_MS);
  }
  if (check.sessionTurnCount !== sent.length) {
    mismatches.push(
      `${label}: turn_count ${check.sessionTurnCount} after waiting, ${sent.length} turns sent`,
    );
  }
  return check;
}

/** The session's turns in order: `last=<sent+1>` (so an extra turn shows), or cursor pages of 200. */
async function readTurns(client: ApiClient, id: string, sent: number): Promise<TurnView[]> {
  if (sent + 1 <= MAX_PAGE) {
    return TurnPage.parse((await client.request('GET', `/sessions/${id}/turns?last=${sent + 1}`)).body).turns;
  }
  const turns: TurnView[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=${MAX_PAGE}&order=asc${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const page: TurnPage = TurnPage.parse(
      (await client.request('GET', `/sessions/${id}/turns?${query}`)).body,
    );
    turns.push(...page.turns);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return turns;
}

/** Runs `task`, recording an API error or an unexpected reply shape in `result.failures`. */
async function guarded(result: ReadBack, task: () => Promise<void>): Promise<void> {
  try {
    await task();
  } catch (error) {
    if (error instanceof ApiError) result.failures.push(error.message);
    else if (error instanceof ZodError) result.failures.push(`unexpected reply: ${error.message}`);
    else throw error;
  }
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
async function inPool<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) await task(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
}
