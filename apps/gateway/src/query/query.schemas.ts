import { z } from 'zod';
import { SessionId, TurnId, TurnText, UsageSource, UsageView, UserId } from '@threadline/contracts';

/**
 * Sampling parameters of `POST /query` that are passed on to an OpenAI-compatible backend as is
 * (names and ranges of the OpenAI chat-completions API). Unknown names are a 400, not silently
 * dropped; the echo agent ignores them.
 */
export const QueryParameters = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  seed: z.number().int().optional(),
  stop: z.union([z.string().max(256), z.array(z.string().max(256)).max(4)]).optional(),
});
export type QueryParameters = z.infer<typeof QueryParameters>;

/**
 * `POST /query` body (seed 004): `query` is the user's message; `thread_id` the session to continue
 * (absent: a new session; unknown: a new session with that id); `user_id` the end user (a session
 * of another user is 404); `agent_type` names the answering agent in the logged turn (default `agent`).
 */
export const QueryBody = z.strictObject({
  query: TurnText.min(1),
  thread_id: SessionId.optional(),
  user_id: UserId.optional(),
  agent_type: z.string().min(1).max(128).optional(),
  parameters: QueryParameters.optional(),
});
export type QueryBody = z.infer<typeof QueryBody>;

/**
 * What `POST /query` answers (seed 004's shape). Times in ms, tokens as counted for the turn
 * (reported by the backend, or estimated by the chat-log-service: `usage_source`), cost in USD.
 */
export const QueryReply = z.object({
  response: z.string().describe("The agent's answer"),
  thread_id: SessionId,
  turn_id: TurnId,
  usage: UsageView,
  metadata: z.object({
    thread_id: SessionId,
    user_id: UserId.nullable(),
    query_count: z.number().int().describe("This turn's number in the session (1, 2, 3 ...)"),
    agent_type: z.string(),
    model: z.string().nullable(),
    execution_time_ms: z.number().int().nullable().describe("The agent backend's time, ms"),
    processing_time_ms: z.number().int().nullable().describe('The whole request until logged, ms'),
    created_session: z.boolean().describe('true when this query created the session'),
    context_turns: z
      .number()
      .int()
      .nullable()
      .describe('Earlier turns sent to the agent as context; null on a replay (same Idempotency-Key)'),
    usage_source: UsageSource.describe('reported by the backend, or estimated with a tokenizer'),
    cost_usd: z.number().describe('USD, from the price table'),
  }),
});
export type QueryReply = z.infer<typeof QueryReply>;

/**
 * The 502 problem of `POST /query` when the agent backend failed: the RFC 9457 fields plus the
 * failed turn that keeps the user's query (`turn_id`) and its session (`thread_id`).
 */
export const AgentFailureProblem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.literal(502),
  detail: z.string(),
  code: z.literal('AGENT.BACKEND_FAILED'),
  instance: z.string().optional(),
  turn_id: TurnId,
  thread_id: SessionId,
});
export type AgentFailureProblem = z.infer<typeof AgentFailureProblem>;
