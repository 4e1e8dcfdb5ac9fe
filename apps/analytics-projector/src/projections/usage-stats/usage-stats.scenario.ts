import {
  CONVERSATION_CATEGORY,
  type ConversationEvent,
  conversationStreamId,
  type EventEnvelope,
  SESSION_CATEGORY,
  type SessionEvent,
  sessionStreamId,
  type AgentResponseData,
  type ToolCallData,
} from '@threadline/contracts';
import type { EventStore, ProjectionRunner, Sql } from '@threadline/event-store';
import { globalStats } from './stats.queries';
import { AGGREGATES_FROM_FACTS, USAGE_STATS_TABLES } from './usage-stats.projection';

// Test support for the usage_stats specs and the rebuild benchmark (no test framework here).

export const at = (minute: number, day = 1) => new Date(Date.UTC(2025, 0, day, 12, minute)).toISOString();

export const response = (
  agentName: string,
  model: string | null,
  tokens: { in: number; out: number; cached?: number },
  costUsd: number,
  executionTimeMs: number | null,
  startedAt: string | null = null,
): AgentResponseData => ({
  agentName,
  response: `answer of ${agentName}`,
  turnOrder: 0,
  model,
  startedAt,
  executionTimeMs,
  usage: {
    inputTokens: tokens.in,
    outputTokens: tokens.out,
    cachedTokens: tokens.cached ?? 0,
    reasoningTokens: 0,
    totalTokens: tokens.in + tokens.out,
  },
  usageSource: 'reported',
  costUsd,
});

export const toolCall = (
  toolCallId: string,
  status: ToolCallData['status'],
  name = 'search',
): ToolCallData => ({
  toolCallId,
  name,
  request: { q: 'x' },
  status,
  result: status === 'completed' ? { ok: true } : null,
  error: status === 'failed' ? 'boom' : null,
});

/** Appends session events to `session:<tenant>:<id>` (expected version 'any'). */
export async function appendSession(
  store: EventStore,
  tenantId: string,
  sessionId: string,
  events: SessionEvent[],
): Promise<EventEnvelope[]> {
  const { events: stored } = await store.append(
    sessionStreamId(tenantId, sessionId),
    SESSION_CATEGORY,
    'any',
    events,
    {
      metadata: { tenantId },
    },
  );
  return stored;
}

/** Appends conversation events to `conversation:<tenant>:<id>` (expected version 'any'). */
export async function appendConversation(
  store: EventStore,
  tenantId: string,
  sessionId: string,
  events: ConversationEvent[],
): Promise<EventEnvelope[]> {
  const { events: stored } = await store.append(
    conversationStreamId(tenantId, sessionId),
    CONVERSATION_CATEGORY,
    'any',
    events,
    { metadata: { tenantId } },
  );
  return stored;
}

export const created = (sessionId: string, userId: string | null, minute = 0): SessionEvent => ({
  type: 'SessionCreated.v1',
  data: { sessionId, userId, title: '', metadata: {}, createdFrom: null, startedAt: at(minute) },
});

type TurnLoggedData = Extract<ConversationEvent, { type: 'TurnLogged.v1' }>['data'];

/**
 * A whole turn of `userId` in `sessionId`: completed at minute 2 after starting at minute 1, first of
 * its conversation, no responses, tool calls or cache hit unless `data` says otherwise.
 */
export const logged = (
  turnId: string,
  sessionId: string,
  userId: string | null,
  data: Partial<TurnLoggedData> = {},
): ConversationEvent => ({
  type: 'TurnLogged.v1',
  data: {
    turnId,
    sessionId,
    userId,
    conversationTurn: 1,
    userInput: 'hello',
    agentResponses: [],
    toolCalls: [],
    vectorCacheHit: false,
    processingTimeMs: null,
    status: 'completed',
    error: null,
    startedAt: at(1),
    completedAt: at(2),
    ...data,
  },
});

/**
 * Six sessions of one tenant, session events only: alice's a1 (created, renamed, ended), a2 (created,
 * metadata, deleted), a3 (active); bob's b1 (created, ended, deleted), b2 (active); n1 without user
 * (created, ended). Appended with `EventStore.append`, one event per transaction, round-robin over the
 * sessions (so streams interleave in the store). Returns the stored envelopes in append order.
 */
export async function appendSessionScenario(store: EventStore, tenantId: string): Promise<EventEnvelope[]> {
  const scenario: { sessionId: string; userId: string | null; events: SessionEvent[] }[] = [
    { sessionId: 'a1', userId: 'alice', events: [created('a1', 'alice'), titled('a1'), ended('a1')] },
    { sessionId: 'a2', userId: 'alice', events: [created('a2', 'alice'), updated('a2'), deleted('a2')] },
    { sessionId: 'a3', userId: 'alice', events: [created('a3', 'alice')] },
    { sessionId: 'b1', userId: 'bob', events: [created('b1', 'bob'), ended('b1'), deleted('b1')] },
    { sessionId: 'b2', userId: 'bob', events: [created('b2', 'bob')] },
    { sessionId: 'n1', userId: null, events: [created('n1', null), ended('n1')] },
  ];
  const stored: EventEnvelope[] = [];
  for (let i = 0; i < 3; i += 1) {
    for (const s of scenario) {
      const event = s.events[i];
      if (!event) continue;
      const result = await store.append(
        sessionStreamId(tenantId, s.sessionId),
        SESSION_CATEGORY,
        i,
        [event],
        {
          metadata: { tenantId, userId: s.userId },
        },
      );
      stored.push(...result.events);
    }
  }
  return stored;
}

const titled = (sessionId: string): SessionEvent => ({
  type: 'SessionTitleChanged.v1',
  data: { sessionId, title: 'renamed', changedAt: at(1) },
});
const updated = (sessionId: string): SessionEvent => ({
  type: 'SessionMetadataUpdated.v1',
  data: { sessionId, patch: { k: 'v' }, updatedAt: at(1) },
});
const ended = (sessionId: string): SessionEvent => ({
  type: 'SessionEnded.v1',
  data: { sessionId, reason: 'user', endedAt: at(2) },
});
const deleted = (sessionId: string): SessionEvent => ({
  type: 'SessionDeleted.v1',
  data: { sessionId, deletedAt: at(3) },
});

/** The session figures {@link appendSessionScenario} yields for its tenant (deleted sessions count nowhere). */
export const expectedScenarioSessions = {
  sessions: { active: 2, ended: 2, expired: 0, total: 4 },
  users: 2,
};

/** The session figures of `tenantId` in the live version of `runner`'s `usage_stats` (its global stats). */
export async function readSessionFigures(
  runner: ProjectionRunner,
  tenantId: string,
): Promise<typeof expectedScenarioSessions> {
  const g = await runner.read(async (sql, asOf) =>
    globalStats(sql, asOf, {
      tenantId,
      positionsKey: runner.positionsKey((await runner.liveVersion(sql))?.version ?? null),
      streamTypes: runner.projection.streamTypes,
    }),
  );
  return { sessions: g.sessions, users: g.users };
}

/** The column of each aggregate table that counts its facts: a row where it is 0 counts as absent. */
const AGGREGATE_COUNTS: Record<string, string> = {
  stats_session_counts: 'sessions',
  stats_turn_counts: 'turns',
  stats_response_cells: 'calls',
  stats_agent_turns: 'turns',
  stats_model_turns: 'turns',
};

/**
 * Every row of every table of the live version (search_path set by the caller), sorted, without the
 * aggregate rows whose count fell to 0: for comparisons.
 */
export async function dumpUsageStats(sql: Sql): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of USAGE_STATS_TABLES) {
    const count = AGGREGATE_COUNTS[table];
    out[table] = await sql.query(`SELECT * FROM ${table} x ${count ? `WHERE ${count} <> 0` : ''} ORDER BY x`);
  }
  return out;
}

/** The aggregate tables' rows as {@link AGGREGATES_FROM_FACTS} defines them, sorted as {@link dumpUsageStats}. */
export async function aggregatesFromFacts(sql: Sql): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, select] of Object.entries(AGGREGATES_FROM_FACTS)) {
    // Typed as the table's rows (same names and types), through a temporary copy of its shape.
    out[table] = await sql.query(
      `WITH x AS (SELECT (f::text::${table}).* FROM (${select}) f) SELECT * FROM x ORDER BY x`,
    );
  }
  return out;
}

/** A dialog in the shape of Taskmaster-4's: utterances of the user and the assistant, with annotations. */
export interface Dialog {
  conversation_id: string;
  utterances: {
    speaker: 'user' | 'assistant';
    text: string;
    annotations: { name: string; value: string; context: string }[];
  }[];
}

const DRINKS = ['chai latte', 'flat white', 'cold brew', 'mocha', 'espresso', 'matcha latte'] as const;
const SIZES = ['small', 'medium', 'large'] as const;

/**
 * `count` coffee-ordering dialogs in the shape of Taskmaster-4's (user and assistant utterances, the
 * user's `api_call` annotations), made up deterministically so that specs need no file from outside
 * the repository: dialog i has 1 to 6 user utterances of varying length, each answered by the
 * assistant except every 4th dialog's last, and an `api_call` on every other user utterance.
 */
export function coffeeDialogs(count: number): Dialog[] {
  return Array.from({ length: count }, (_, i) => {
    const utterances: Dialog['utterances'] = [];
    const userTurns = 1 + (i % 6);
    for (let t = 0; t < userTurns; t++) {
      const drink = DRINKS[(i + t) % DRINKS.length] ?? 'coffee';
      const size = SIZES[(i * 7 + t) % SIZES.length] ?? 'small';
      utterances.push({
        speaker: 'user',
        text: `${'please '.repeat((i + t) % 4)}one ${size} ${drink}${t > 0 ? `, and add ${t} more` : ''}`,
        annotations:
          (i + t) % 2 === 0
            ? [
                {
                  name: 'api_call',
                  value: t % 3 === 0 ? 'get_menu_items' : 'add_to_order',
                  context: `api_call_${t}`,
                },
              ]
            : [],
      });
      if (!(i % 4 === 3 && t === userTurns - 1)) {
        utterances.push({
          speaker: 'assistant',
          text: `${size} ${drink} added${'.'.repeat(1 + ((i * 3 + t) % 5))} anything else?`,
          annotations: [],
        });
      }
    }
    return { conversation_id: `dlg-${i}`, utterances };
  });
}

const MODELS = ['gpt-4o-mini', 'gpt-4o', null] as const;

/**
 * Imports `dialogs` as events, as the demo importer does through the API: each dialog a session of one
 * of `users` users; each user utterance and the assistant reply after it a turn (whole, or incrementally
 * for every third turn: started, responded, tool calls, completed); `api_call` annotations become tool
 * calls. Every 7th dialog's session is ended, every 11th deleted, every 5th dialog's second turn
 * deleted and every 13th dialog's last turn fails. Appends with `store` (one append per session
 * event and per turn). `tag` makes ids unique per call. Returns the events appended.
 */
export async function importDialogs(
  store: EventStore,
  tenantId: string,
  dialogs: Dialog[],
  opts: { users?: number; tag?: string } = {},
): Promise<number> {
  const users = opts.users ?? 7;
  let appended = 0;
  for (const [i, dialog] of dialogs.entries()) {
    const sessionId = `${opts.tag ?? 's'}-${i}`;
    const userId = `user-${i % users}`;
    const day = 1 + (i % 3);
    appended += (await appendSession(store, tenantId, sessionId, [created(sessionId, userId)])).length;
    let turn = 0;
    const turnIds: string[] = [];
    for (let u = 0; u < dialog.utterances.length; u++) {
      const utterance = dialog.utterances[u];
      if (!utterance || utterance.speaker !== 'user') continue;
      const reply = dialog.utterances[u + 1]?.speaker === 'assistant' ? dialog.utterances[u + 1] : undefined;
      turn += 1;
      const turnId = `${sessionId}-t${turn}`;
      turnIds.push(turnId);
      const model = MODELS[(i + turn) % MODELS.length] ?? null;
      const calls = utterance.annotations
        .filter((a) => a.name === 'api_call')
        .map((a, k) => toolCall(`${turnId}-c${k}`, k % 4 === 3 ? 'failed' : 'completed', a.value));
      const r = response(
        turn % 2 ? 'planner' : 'barista',
        model,
        { in: utterance.text.length, out: reply?.text.length ?? 0, cached: turn % 3 },
        (utterance.text.length + (reply?.text.length ?? 0)) / 1_000_000,
        100 + ((i * 37 + turn * 11) % 900),
        at(turn, day),
      );
      const fails = i % 13 === 0 && u + 2 >= dialog.utterances.length;
      const startedAt = at(turn, day);
      if (turn % 3 === 0) {
        const events: ConversationEvent[] = [
          {
            type: 'TurnStarted.v1',
            data: {
              turnId,
              sessionId,
              userId,
              conversationTurn: turn,
              userInput: utterance.text,
              vectorCacheHit: false,
              startedAt,
            },
          },
          {
            type: 'AgentResponded.v1',
            data: { turnId, sessionId, agentResponse: r, respondedAt: at(turn + 1, day) },
          },
          ...calls.map((c): ConversationEvent => ({
            type: 'ToolCallRecorded.v1',
            data: { turnId, sessionId, toolCall: c, recordedAt: startedAt },
          })),
        ];
        for (const e of events)
          appended += (await appendConversation(store, tenantId, sessionId, [e])).length;
        const close: ConversationEvent = fails
          ? {
              type: 'TurnFailed.v1',
              data: {
                turnId,
                sessionId,
                error: 'backend down',
                processingTimeMs: 900,
                failedAt: at(turn + 2, day),
              },
            }
          : {
              type: 'TurnCompleted.v1',
              data: {
                turnId,
                sessionId,
                processingTimeMs: null,
                vectorCacheHit: turn % 2 === 0,
                completedAt: at(turn + 2, day),
              },
            };
        appended += (await appendConversation(store, tenantId, sessionId, [close])).length;
      } else {
        appended += (
          await appendConversation(store, tenantId, sessionId, [
            {
              type: 'TurnLogged.v1',
              data: {
                turnId,
                sessionId,
                userId,
                conversationTurn: turn,
                userInput: utterance.text,
                agentResponses: [r],
                toolCalls: calls,
                vectorCacheHit: turn % 4 === 0,
                processingTimeMs: turn % 5 === 0 ? null : 150 + turn * 10,
                status: fails ? 'failed' : 'completed',
                error: fails ? 'backend down' : null,
                startedAt,
                completedAt: at(turn + 1, day),
              },
            },
          ])
        ).length;
      }
    }
    const second = turnIds[1];
    if (i % 5 === 0 && second) {
      appended += (
        await appendConversation(store, tenantId, sessionId, [
          { type: 'TurnDeleted.v1', data: { turnId: second, sessionId, deletedAt: at(50, day) } },
        ])
      ).length;
    }
    if (i % 7 === 0) {
      appended += (
        await appendSession(store, tenantId, sessionId, [
          { type: 'SessionEnded.v1', data: { sessionId, reason: 'user', endedAt: at(55, day) } },
        ])
      ).length;
    }
    if (i % 11 === 0) {
      appended += (
        await appendSession(store, tenantId, sessionId, [
          { type: 'SessionDeleted.v1', data: { sessionId, deletedAt: at(58, day) } },
        ])
      ).length;
    }
  }
  return appended;
}
