import type { z } from 'zod';
import type { UsageInput } from '@threadline/contracts';
import type { QueryParameters } from './query.schemas';

/** One chat message as OpenAI-compatible chat-completions APIs take it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What the agent is asked: the conversation so far, ending with the user's new message. */
export interface AgentRequest {
  messages: ChatMessage[];
  /** Sampling parameters from the `/query` body, passed on as is. */
  parameters?: QueryParameters;
}

/**
 * The agent's answer. `model` is the model that answered (the backend's `model` field, else the one
 * asked for); `usage` the token counts the backend reported (omitted when it reported none, so the
 * chat-log-service estimates them).
 */
export interface AgentReply {
  content: string;
  model: string;
  usage?: z.infer<typeof UsageInput>;
}

/** Why a backend call failed, for the failed turn's `error` and the 502 problem's `detail`. */
export type AgentFailureKind = 'unreachable' | 'timeout' | 'http_status' | 'bad_reply';

/**
 * The agent backend failed: unreachable, timed out, answered a non-2xx status, or answered something
 * that is not a chat completion. `message` is safe to show to the client (no API key, no body dump
 * beyond a short excerpt of the backend's error).
 */
export class AgentBackendError extends Error {
  constructor(
    readonly kind: AgentFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'AgentBackendError';
  }
}

/**
 * The agent `POST /query` talks to. Implementations: `OpenAiCompatibleBackend` (any
 * chat-completions endpoint) and `EchoAgentBackend` (offline); `createAgentBackend` picks one from
 * the config. `complete` resolves with the answer or rejects with an {@link AgentBackendError}.
 */
export interface AgentBackend {
  /** `openai-compatible` or `echo`, for logs. */
  readonly kind: string;
  complete(request: AgentRequest): Promise<AgentReply>;
}

/** DI token of the gateway's {@link AgentBackend}. */
export const AGENT_BACKEND = Symbol('AGENT_BACKEND');
