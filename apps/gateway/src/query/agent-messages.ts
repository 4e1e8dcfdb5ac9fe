import { z } from 'zod';
import type { TurnView, UsageInput } from '@threadline/contracts';
import type { ChatMessage } from './agent-backend';

/** Separates the answers of several agents of one past turn in its assistant message. */
export const RESPONSE_SEPARATOR = '\n\n';

/**
 * The messages sent to the agent for a new query (pure):
 *
 * 1. the system prompt (`AGENT_SYSTEM_PROMPT`), when set and not blank;
 * 2. for each past turn, oldest first: its `user_input` as a `user` message, then its agent
 *    responses (ordered by `turn_order`, joined by a blank line) as one `assistant` message.
 *    Turns without any response (failed before an agent answered, or still in progress) are left
 *    out: an unanswered question in the history would be answered again;
 * 3. the new query as the last `user` message.
 *
 * `history` is the session's latest turns in any order; they are sorted by `conversation_turn`.
 */
export function buildChatMessages(
  systemPrompt: string | undefined,
  history: readonly TurnView[],
  query: string,
): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (systemPrompt !== undefined && systemPrompt.trim() !== '') {
    messages.push({ role: 'system', content: systemPrompt });
  }
  const ordered = [...history].sort((a, b) => a.conversation_turn - b.conversation_turn);
  for (const turn of ordered) {
    if (turn.agent_responses.length === 0) continue;
    const answer = [...turn.agent_responses]
      .sort((a, b) => a.turn_order - b.turn_order)
      .map((r) => r.response)
      .join(RESPONSE_SEPARATOR);
    messages.push({ role: 'user', content: turn.user_input }, { role: 'assistant', content: answer });
  }
  messages.push({ role: 'user', content: query });
  return messages;
}

/** How many past turns {@link buildChatMessages} put into the messages. */
export const contextTurnsOf = (history: readonly TurnView[]): number =>
  history.filter((t) => t.agent_responses.length > 0).length;

const TokenCount = z.number().int().min(0).max(1_000_000_000);

/**
 * `usage` of an OpenAI chat completion (all fields optional: compatible servers report subsets;
 * `null` is read as absent). Unknown fields are ignored.
 */
export const OpenAiUsage = z.object({
  prompt_tokens: TokenCount.nullish(),
  completion_tokens: TokenCount.nullish(),
  total_tokens: TokenCount.nullish(),
  prompt_tokens_details: z.object({ cached_tokens: TokenCount.nullish() }).nullish(),
  completion_tokens_details: z.object({ reasoning_tokens: TokenCount.nullish() }).nullish(),
});
export type OpenAiUsage = z.infer<typeof OpenAiUsage>;

/**
 * The turn's usage from a backend's OpenAI `usage` (pure): `prompt_tokens` -> `input_tokens`,
 * `completion_tokens` -> `output_tokens`, `prompt_tokens_details.cached_tokens` -> `cached_tokens`,
 * `completion_tokens_details.reasoning_tokens` -> `reasoning_tokens`, `total_tokens` as is (tokens).
 * Only reported counts are set; `undefined` when nothing was reported (absent `usage`, or one without
 * any count), so the chat-log-service estimates the usage with a tokenizer instead.
 */
export function toUsageInput(usage: OpenAiUsage | null | undefined): z.infer<typeof UsageInput> | undefined {
  if (!usage) return undefined;
  const reported: z.infer<typeof UsageInput> = {};
  const set = (key: keyof typeof reported, count: number | null | undefined) => {
    if (count !== null && count !== undefined) reported[key] = count;
  };
  set('input_tokens', usage.prompt_tokens);
  set('output_tokens', usage.completion_tokens);
  set('cached_tokens', usage.prompt_tokens_details?.cached_tokens);
  set('reasoning_tokens', usage.completion_tokens_details?.reasoning_tokens);
  set('total_tokens', usage.total_tokens);
  return Object.keys(reported).length > 0 ? reported : undefined;
}
