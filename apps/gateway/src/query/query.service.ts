import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  type CommandContext,
  CreateSession,
  GetSession,
  GetTurn,
  ListSessionTurns,
  LogTurn,
  type LogTurnBody,
  type SessionView,
  type TurnView,
} from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { DomainError, type ErrorCode } from '@threadline/platform';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config';
import { AGENT_BACKEND, type AgentBackend, AgentBackendError, type AgentReply } from './agent-backend';
import { buildChatMessages, contextTurnsOf, RESPONSE_SEPARATOR } from './agent-messages';
import type { QueryBody, QueryReply } from './query.schemas';

/** `agent_name` of the logged response when the query names no `agent_type`. */
export const DEFAULT_AGENT_NAME = 'agent';
/** Longest `error` a turn takes (the `LogTurn` contract), characters. */
const MAX_ERROR_CHARS = 10_000;

/**
 * What `/query` did: `answered` (200 with the reply) or `failed` (the agent backend failed; the turn
 * was logged as failed: 502). `position` is the global position of the logged turn's event, absent
 * when the answer is a replay of an earlier request with the same `Idempotency-Key`.
 */
export type QueryOutcome =
  | { kind: 'answered'; reply: QueryReply; position?: number }
  | { kind: 'failed'; turnId: string; threadId: string; detail: string; position?: number };

/** Who asks: the tenant and the write's headers (`Idempotency-Key`, correlation id). */
export interface QueryCaller {
  tenantId: string;
  idempotencyKey?: string | undefined;
  correlationId?: string | undefined;
}

const hasCode = (error: unknown, code: ErrorCode): boolean =>
  error instanceof DomainError && error.code === code;

/**
 * The turn id a `/query` with `Idempotency-Key` logs its turn under: derived from the tenant and the
 * key, so a retry finds the first request's turn (and its answer) instead of asking the agent again.
 */
export const turnIdForKey = (tenantId: string, key: string): string =>
  `query-${createHash('sha256').update(`${tenantId}\u0000${key}`).digest('hex').slice(0, 40)}`;

/**
 * `POST /query` (seed 004): finds or creates the session, sends its latest turns and the query to the
 * agent backend, logs the whole turn (with the backend's usage and the measured latencies) through
 * the chat-log-service, and answers with the agent's response.
 *
 * Errors (DomainError, mapped to problems by the gateway's filter): `SESSION.NOT_FOUND` (404) for a
 * `thread_id` of another user, `SESSION.ALREADY_ENDED` (409) for an ended or expired session,
 * `REQUEST.INVALID` (400) for an `Idempotency-Key` reused with a different query,
 * `SERVICE.UNAVAILABLE` (503) when a service does not answer. A failing agent backend is no error
 * here: it is a `failed` outcome, after the turn is logged as failed with the error.
 */
@Injectable()
export class QueryService {
  private readonly logger = new Logger('QueryService');

  constructor(
    private readonly client: RequestClient,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(AGENT_BACKEND) private readonly backend: AgentBackend,
  ) {}

  async query(caller: QueryCaller, body: QueryBody): Promise<QueryOutcome> {
    const startedAt = new Date();
    const started = performance.now();
    const { session, created } = await this.resolveSession(caller, body);

    const turnId =
      caller.idempotencyKey !== undefined ? turnIdForKey(caller.tenantId, caller.idempotencyKey) : undefined;
    if (turnId !== undefined) {
      const earlier = await this.findTurn(caller.tenantId, turnId);
      if (earlier) return this.replay(earlier, session, body, created, caller.idempotencyKey);
    }

    const history = created ? [] : await this.history(caller.tenantId, session.session_id);
    const messages = buildChatMessages(this.config.AGENT_SYSTEM_PROMPT, history, body.query);
    const agentName = body.agent_type ?? DEFAULT_AGENT_NAME;
    const agentStartedAt = new Date();
    const agentStarted = performance.now();
    let answer: AgentReply | undefined;
    let failure: string | undefined;
    try {
      answer = await this.backend.complete({
        messages,
        ...(body.parameters !== undefined ? { parameters: body.parameters } : {}),
      });
    } catch (error) {
      failure = error instanceof AgentBackendError ? error.message : 'The agent backend failed unexpectedly';
      if (!(error instanceof AgentBackendError)) this.logger.error(error);
      this.logger.warn(
        `agent backend (${this.backend.kind}) failed for session ${session.session_id}: ${failure}`,
      );
    }
    const executionTimeMs = Math.round(performance.now() - agentStarted);

    const turn: LogTurnBody = {
      ...(turnId !== undefined ? { turn_id: turnId } : {}),
      user_input: body.query,
      status: answer ? 'completed' : 'failed',
      agent_responses: answer
        ? [
            {
              agent_name: agentName,
              response: answer.content,
              model: answer.model,
              started_at: agentStartedAt.toISOString(),
              execution_time_ms: executionTimeMs,
              ...(answer.usage !== undefined ? { usage: answer.usage } : {}),
            },
          ]
        : [],
      tool_calls: [],
      vector_cache_hit: false,
      processing_time_ms: Math.round(performance.now() - started),
      ...(failure !== undefined ? { error: failure.slice(0, MAX_ERROR_CHARS) } : {}),
      started_at: startedAt.toISOString(),
      completed_at: new Date().toISOString(),
    };
    let logged: { turn: TurnView; position?: number };
    try {
      logged = await this.client.request(LogTurn, {
        // No idempotency key here: the turn id derived from it makes the retry safe (TURN.ALREADY_EXISTS).
        context: this.context({ ...caller, idempotencyKey: undefined }),
        sessionId: session.session_id,
        userId: body.user_id,
        body: turn,
      });
    } catch (error) {
      // A concurrent retry with the same Idempotency-Key logged the turn first: answer as it did.
      if (turnId === undefined || !hasCode(error, 'TURN.ALREADY_EXISTS')) throw error;
      const earlier = await this.findTurn(caller.tenantId, turnId);
      if (!earlier) throw error;
      return this.replay(earlier, session, body, created, caller.idempotencyKey);
    }
    return this.outcomeOf(logged.turn, session, created, contextTurnsOf(history), logged.position);
  }

  /**
   * The session to continue: a new one without `thread_id`; the given one when it exists (scoped to
   * `user_id`); a new one with that id when it does not (seed 004). A session of another user is
   * `SESSION.NOT_FOUND` even though it exists; an ended one is `SESSION.ALREADY_ENDED`.
   */
  private async resolveSession(
    caller: QueryCaller,
    body: QueryBody,
  ): Promise<{ session: SessionView; created: boolean }> {
    const context = this.context(caller, ':session');
    if (body.thread_id === undefined) {
      const result = await this.client.request(CreateSession, {
        context,
        userId: body.user_id,
        createdFrom: 'query',
      });
      return { session: result.session, created: result.created };
    }
    const sessionId = body.thread_id;
    const get = () =>
      this.client.request(GetSession, { tenantId: caller.tenantId, sessionId, userId: body.user_id });
    let found: SessionView | undefined;
    let created = false;
    try {
      found = await get();
    } catch (error) {
      if (!hasCode(error, 'SESSION.NOT_FOUND')) throw error;
    }
    if (!found) {
      try {
        const result = await this.client.request(CreateSession, {
          context,
          sessionId,
          userId: body.user_id,
          createdFrom: 'query',
        });
        found = result.session;
        created = result.created;
      } catch (error) {
        // Taken: created a moment ago by a concurrent query (then visible now), or another user's
        // or a deleted session (still not found: 404, never revealing that it exists).
        if (!hasCode(error, 'SESSION.ALREADY_EXISTS')) throw error;
        found = await get();
      }
    }
    if (found.status !== 'active') {
      throw new DomainError(
        'SESSION.ALREADY_ENDED',
        `Session ${sessionId} is ${found.status}; start a new one`,
        {
          sessionId,
          status: found.status,
        },
      );
    }
    return { session: found, created };
  }

  /** The session's latest `AGENT_HISTORY_TURNS` turns, oldest first (none when 0). */
  private async history(tenantId: string, sessionId: string): Promise<TurnView[]> {
    const last = this.config.AGENT_HISTORY_TURNS;
    if (last === 0) return [];
    try {
      const page = await this.client.request(ListSessionTurns, {
        tenantId,
        sessionId,
        query: { limit: last, order: 'asc', last },
      });
      return page.turns;
    } catch (error) {
      // A session the conversation log has not seen yet has no turns: no context, not an error.
      if (hasCode(error, 'SESSION.NOT_FOUND')) return [];
      throw error;
    }
  }

  private async findTurn(tenantId: string, turnId: string): Promise<TurnView | undefined> {
    try {
      return await this.client.request(GetTurn, { tenantId, turnId });
    } catch (error) {
      if (hasCode(error, 'TURN.NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /** The answer of an earlier request with the same `Idempotency-Key`, after checking it was the same query. */
  private replay(
    turn: TurnView,
    session: SessionView,
    body: QueryBody,
    created: boolean,
    key: string | undefined,
  ): QueryOutcome {
    if (turn.session_id !== session.session_id || turn.user_input !== body.query) {
      throw new DomainError(
        'REQUEST.INVALID',
        `Idempotency key ${key} was already used for a different request`,
        {
          idempotencyKey: key,
        },
      );
    }
    return this.outcomeOf(turn, session, created, null);
  }

  private outcomeOf(
    turn: TurnView,
    session: SessionView,
    created: boolean,
    contextTurns: number | null,
    position?: number,
  ): QueryOutcome {
    const at = position !== undefined ? { position } : {};
    if (turn.status === 'failed') {
      return {
        kind: 'failed',
        turnId: turn.turn_id,
        threadId: turn.session_id,
        detail: `The agent backend failed: ${turn.error ?? 'unknown error'}. The query is kept as failed turn ${turn.turn_id}.`,
        ...at,
      };
    }
    return { kind: 'answered', reply: queryReplyOf(turn, session, created, contextTurns), ...at };
  }

  /** The command context; `Idempotency-Key` is derived per command (`<key><suffix>`) when given. */
  private context(caller: QueryCaller, suffix = ''): CommandContext {
    return {
      tenantId: caller.tenantId,
      ...(caller.correlationId !== undefined ? { correlationId: caller.correlationId } : {}),
      ...(caller.idempotencyKey !== undefined ? { idempotencyKey: `${caller.idempotencyKey}${suffix}` } : {}),
    };
  }
}

/**
 * The `/query` reply of a logged turn (pure; seed 004 shape): the agent responses' text joined,
 * `thread_id` the session, `query_count` the turn's `conversation_turn`, the agent, model and
 * execution time of the first response, the turn's usage (tokens), cost (USD) and processing time (ms).
 */
export function queryReplyOf(
  turn: TurnView,
  session: SessionView,
  created: boolean,
  contextTurns: number | null,
): QueryReply {
  const responses = [...turn.agent_responses].sort((a, b) => a.turn_order - b.turn_order);
  const first = responses[0];
  return {
    response: responses.map((r) => r.response).join(RESPONSE_SEPARATOR),
    thread_id: turn.session_id,
    turn_id: turn.turn_id,
    usage: turn.usage,
    metadata: {
      thread_id: turn.session_id,
      user_id: turn.user_id ?? session.user_id,
      query_count: turn.conversation_turn,
      agent_type: first?.agent_name ?? DEFAULT_AGENT_NAME,
      model: first?.model ?? null,
      execution_time_ms: first?.execution_time_ms ?? null,
      processing_time_ms: turn.processing_time_ms,
      created_session: created,
      context_turns: contextTurns,
      usage_source: first?.usage_source ?? 'estimated',
      cost_usd: turn.cost_usd,
    },
  };
}
