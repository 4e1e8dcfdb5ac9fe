import { z } from 'zod';
import { Identifier, IsoDate, JsonValue, SessionId, UserId } from '../common';
import { ToolCallStatus, TurnId, TurnText, UsageSource } from './conversation.events';

const Count = z.number().int().min(0).max(1_000_000_000);
const Millis = z.number().int().min(0).max(86_400_000);

/** Token usage as a client reports it (all optional; what is missing is estimated with a tokenizer). */
export const UsageInput = z.strictObject({
  input_tokens: Count.optional(),
  output_tokens: Count.optional(),
  cached_tokens: Count.optional(),
  reasoning_tokens: Count.optional(),
  total_tokens: Count.optional(),
});

/** One agent's response as a client sends it (seed 000 AgentResponse). */
export const AgentResponseInput = z.strictObject({
  agent_name: z.string().min(1).max(128),
  response: TurnText,
  turn_order: z.number().int().min(0).max(10_000).optional(),
  model: z.string().max(128).optional(),
  started_at: IsoDate.optional(),
  execution_time_ms: Millis.optional(),
  usage: UsageInput.optional(),
  cost_usd: z
    .number()
    .min(0)
    .max(1_000_000)
    .optional()
    .describe('USD; computed from the price table when absent'),
});
export type AgentResponseInput = z.infer<typeof AgentResponseInput>;

/** A tool call as a client sends it (seed 003); the same `tool_call_id` again updates it. */
export const ToolCallInput = z.strictObject({
  tool_call_id: Identifier.optional(),
  name: z.string().min(1).max(128),
  request: JsonValue.optional(),
  status: ToolCallStatus.default('completed'),
  result: JsonValue.optional(),
  error: z.string().max(10_000).optional(),
});
export type ToolCallInput = z.infer<typeof ToolCallInput>;

/**
 * `POST /sessions/{session_id}/turns`: a whole turn (`status` completed|failed, the default completed),
 * or the start of one (`status: "in_progress"`, responses follow).
 */
export const LogTurnBody = z.strictObject({
  turn_id: TurnId.optional(),
  user_input: TurnText,
  status: z.enum(['completed', 'failed', 'in_progress']).default('completed'),
  agent_responses: z.array(AgentResponseInput).max(50).default([]),
  tool_calls: z.array(ToolCallInput).max(100).default([]),
  vector_cache_hit: z.boolean().default(false),
  processing_time_ms: Millis.optional(),
  error: z.string().max(10_000).optional(),
  started_at: IsoDate.optional(),
  completed_at: IsoDate.optional(),
});
export type LogTurnBody = z.infer<typeof LogTurnBody>;

/** `POST /turns/{turn_id}/responses`: exactly one of an agent response or a tool call. */
export const TurnResponseBody = z
  .strictObject({ agent_response: AgentResponseInput.optional(), tool_call: ToolCallInput.optional() })
  .refine(
    (b) => (b.agent_response === undefined) !== (b.tool_call === undefined),
    'give exactly one of agent_response or tool_call',
  );
export type TurnResponseBody = z.infer<typeof TurnResponseBody>;

/** `POST /turns/{turn_id}/complete`. */
export const CompleteTurnBody = z.strictObject({
  processing_time_ms: Millis.optional(),
  vector_cache_hit: z.boolean().optional(),
});
/** `POST /turns/{turn_id}/fail`. */
export const FailTurnBody = z.strictObject({
  error: z.string().min(1).max(10_000),
  processing_time_ms: Millis.optional(),
});

export const TurnIdParams = z.strictObject({ turn_id: TurnId });

/** `GET /sessions/{session_id}/turns` query: cursor paging, or `last=N` for the N most recent in ascending order. */
export const ListSessionTurnsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
  order: z.enum(['asc', 'desc']).default('asc'),
  last: z.coerce.number().int().min(1).max(200).optional(),
});

/** `GET /users/{user_id}/turns` query: most recent first; `user_input` exact match, `q` full-text search. */
export const ListUserTurnsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  user_input: z.string().max(10_000).optional(),
  q: z.string().min(1).max(500).optional(),
});

export const UsageView = z.object({
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cached_tokens: z.number().int(),
  reasoning_tokens: z.number().int(),
  total_tokens: z.number().int(),
});

/** A turn as the HTTP API returns it. Costs in USD, times in ms. */
export const TurnView = z.object({
  turn_id: TurnId,
  session_id: SessionId,
  user_id: UserId.nullable(),
  conversation_turn: z.number().int(),
  user_input: z.string(),
  agent_responses: z.array(
    z.object({
      agent_name: z.string(),
      response: z.string(),
      turn_order: z.number().int(),
      model: z.string().nullable(),
      started_at: IsoDate.nullable(),
      execution_time_ms: z.number().int().nullable(),
      usage: UsageView,
      usage_source: UsageSource,
      cost_usd: z.number(),
    }),
  ),
  tool_calls: z.array(
    z.object({
      tool_call_id: z.string(),
      name: z.string(),
      request: JsonValue.nullable(),
      status: ToolCallStatus,
      result: JsonValue.nullable(),
      error: z.string().nullable(),
      updated_at: IsoDate,
    }),
  ),
  usage: UsageView.describe('Sum over the agent responses'),
  cost_usd: z.number().describe('Sum over the agent responses, USD'),
  vector_cache_hit: z.boolean(),
  processing_time_ms: z.number().int().nullable(),
  status: z.enum(['in_progress', 'completed', 'failed']),
  error: z.string().nullable(),
  started_at: IsoDate,
  completed_at: IsoDate.nullable(),
  updated_at: IsoDate,
});
export type TurnView = z.infer<typeof TurnView>;

export const TurnWriteReply = z.object({ turn: TurnView, position: z.number().int() });
export type TurnWriteReply = z.infer<typeof TurnWriteReply>;

export const TurnPage = z.object({ turns: z.array(TurnView), next_cursor: z.string().nullable() });
export type TurnPage = z.infer<typeof TurnPage>;
