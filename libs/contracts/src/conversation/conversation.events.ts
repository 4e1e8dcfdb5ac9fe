import { z } from 'zod';
import { Identifier, IsoDate, JsonValue, SessionId, UserId } from '../common';
import { defineEvent, type EventOf, type EventUnion } from '../define-message';

/** Stream type of a session's conversation; its streams are `conversation:<tenantId>:<sessionId>`. */
export const CONVERSATION_CATEGORY = 'conversation';

export const conversationStreamId = (tenantId: string, sessionId: string): string =>
  `${CONVERSATION_CATEGORY}:${tenantId}:${sessionId}`;

export const TurnId = Identifier.describe('Turn id');
export const ToolCallStatus = z.enum(['pending', 'running', 'completed', 'failed']);
export type ToolCallStatus = z.infer<typeof ToolCallStatus>;
export const UsageSource = z.enum(['reported', 'estimated']);
export type UsageSource = z.infer<typeof UsageSource>;

const Count = z.number().int().min(0).max(1_000_000_000);
const Millis = z.number().int().min(0).max(86_400_000);
/** Text fields of a turn: at most 100,000 characters each. */
export const TurnText = z.string().max(100_000);

/** Token usage of one model call, in tokens. `reasoningTokens` are part of `outputTokens` (OpenAI's accounting). */
export const TokenUsage = z.object({
  inputTokens: Count,
  outputTokens: Count,
  cachedTokens: Count,
  reasoningTokens: Count,
  totalTokens: Count,
});
export type TokenUsage = z.infer<typeof TokenUsage>;

/** One agent's response within a turn, as stored in events. `costUsd` in USD. */
export const AgentResponseData = z.object({
  agentName: z.string().min(1).max(128),
  response: TurnText,
  turnOrder: z.number().int().min(0).max(10_000),
  model: z.string().max(128).nullable(),
  startedAt: IsoDate.nullable(),
  executionTimeMs: Millis.nullable(),
  usage: TokenUsage,
  usageSource: UsageSource,
  costUsd: z.number().min(0),
});
export type AgentResponseData = z.infer<typeof AgentResponseData>;

/** A tool call made during a turn; a later record with the same `toolCallId` updates it. */
export const ToolCallData = z.object({
  toolCallId: Identifier,
  name: z.string().min(1).max(128),
  request: JsonValue.nullable(),
  status: ToolCallStatus,
  result: JsonValue.nullable(),
  error: z.string().max(10_000).nullable(),
});
export type ToolCallData = z.infer<typeof ToolCallData>;

/** A whole turn logged in one event (the seed ChatLogEntry). */
export const TurnLoggedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'TurnLogged',
  1,
  z.object({
    turnId: TurnId,
    sessionId: SessionId,
    userId: UserId.nullable(),
    conversationTurn: z.number().int().min(1),
    userInput: TurnText,
    agentResponses: z.array(AgentResponseData),
    toolCalls: z.array(ToolCallData),
    vectorCacheHit: z.boolean(),
    processingTimeMs: Millis.nullable(),
    status: z.enum(['completed', 'failed']),
    error: z.string().max(10_000).nullable(),
    startedAt: IsoDate,
    completedAt: IsoDate,
  }),
);
export type TurnLoggedV1 = EventOf<typeof TurnLoggedV1>;

/** Incremental logging: a turn opened, responses to follow. */
export const TurnStartedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'TurnStarted',
  1,
  z.object({
    turnId: TurnId,
    sessionId: SessionId,
    userId: UserId.nullable(),
    conversationTurn: z.number().int().min(1),
    userInput: TurnText,
    vectorCacheHit: z.boolean(),
    startedAt: IsoDate,
  }),
);
export type TurnStartedV1 = EventOf<typeof TurnStartedV1>;

export const AgentRespondedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'AgentResponded',
  1,
  z.object({ turnId: TurnId, sessionId: SessionId, agentResponse: AgentResponseData, respondedAt: IsoDate }),
);
export type AgentRespondedV1 = EventOf<typeof AgentRespondedV1>;

export const ToolCallRecordedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'ToolCallRecorded',
  1,
  z.object({ turnId: TurnId, sessionId: SessionId, toolCall: ToolCallData, recordedAt: IsoDate }),
);
export type ToolCallRecordedV1 = EventOf<typeof ToolCallRecordedV1>;

export const TurnCompletedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'TurnCompleted',
  1,
  z.object({
    turnId: TurnId,
    sessionId: SessionId,
    processingTimeMs: Millis.nullable(),
    vectorCacheHit: z.boolean().nullable(),
    completedAt: IsoDate,
  }),
);
export type TurnCompletedV1 = EventOf<typeof TurnCompletedV1>;

export const TurnFailedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'TurnFailed',
  1,
  z.object({
    turnId: TurnId,
    sessionId: SessionId,
    error: z.string().max(10_000),
    processingTimeMs: Millis.nullable(),
    failedAt: IsoDate,
  }),
);
export type TurnFailedV1 = EventOf<typeof TurnFailedV1>;

export const TurnDeletedV1 = defineEvent(
  CONVERSATION_CATEGORY,
  'TurnDeleted',
  1,
  z.object({ turnId: TurnId, sessionId: SessionId, deletedAt: IsoDate }),
);
export type TurnDeletedV1 = EventOf<typeof TurnDeletedV1>;

export const ConversationEvents = [
  TurnLoggedV1,
  TurnStartedV1,
  AgentRespondedV1,
  ToolCallRecordedV1,
  TurnCompletedV1,
  TurnFailedV1,
  TurnDeletedV1,
] as const;

/** Every conversation event, a discriminated union on `type`. */
export type ConversationEvent = EventUnion<typeof ConversationEvents>;
