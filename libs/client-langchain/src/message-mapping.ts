import {
  AIMessage,
  type BaseMessage,
  HumanMessage,
  mapChatMessagesToStoredMessages,
  mapStoredMessagesToChatMessages,
  type StoredMessage,
  ToolMessage,
  type UsageMetadata,
} from '@langchain/core/messages';
import type { AgentResponseInput, LogTurnInput, ToolCallInput, Turn } from '@threadline/client';
import { z } from 'zod';

/**
 * Name and `tool_call_id` of the entry that holds a turn's exact messages (see {@link turnOfMessages}).
 * Its `request` names the format, its `result` is the messages as LangChain's `StoredMessage[]`.
 */
export const TRANSCRIPT_TOOL_NAME = 'threadline.transcript';
/** `request` of the transcript entry: which adapter wrote it and in which format. */
export const TRANSCRIPT_FORMAT = { format: 'langchain.stored_messages', version: 1 } as const;

/** Threadline identifiers (`tool_call_id`): 1-128 letters, digits and `_-.:@`. */
const IDENTIFIER = /^[A-Za-z0-9_\-.:@]{1,128}$/;
/** Longest agent name and model name the API takes, in characters. */
const MAX_NAME = 128;
/** Longest tool-call error the API takes, in characters. */
const MAX_ERROR = 10_000;

/** What the mapping needs besides the messages. */
export interface MappingOptions {
  /** `agent_name` of AI messages that carry no `name` of their own (the API requires one). */
  agentName: string;
}

/**
 * The stored form LangChain itself uses for message stores (`mapChatMessagesToStoredMessages`): a
 * `type` and the message's fields under `data` (`content` a string or content blocks).
 */
const StoredMessageSchema = z.custom<StoredMessage>(
  (value) =>
    isRecord(value) &&
    typeof value['type'] === 'string' &&
    isRecord(value['data']) &&
    'content' in value['data'],
  'a stored LangChain message ({ type, data: { content, ... } })',
);
const TranscriptSchema = z.array(StoredMessageSchema);
/** The transcript entry's `request`: a turn another writer tagged differently is read from its fields. */
const TranscriptRequestSchema = z.object({
  format: z.literal(TRANSCRIPT_FORMAT.format),
  version: z.literal(1),
});

/** A JSON copy: what the API stores is JSON, so `undefined` properties are dropped before comparing or sending. */
const jsonCopy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * One `addMessages` call as one Threadline turn (one `POST /sessions/{id}/turns`):
 *
 * - `user_input`: the text of the human messages (joined by a blank line; usually there is one), or
 *   `""` when the call has none.
 * - `agent_responses`: one per AI message, in order: `response` its text, `agent_name` its `name` or
 *   `options.agentName`, `model` from `response_metadata.model_name` (or `.model`), `usage` from
 *   `usage_metadata` (tokens: input, output, total, `input_token_details.cache_read` as cached,
 *   `output_token_details.reasoning` as reasoning). Without `usage_metadata` the API estimates usage.
 * - `tool_calls`: one per tool call of the AI messages (`tool_call_id` its id, `request` its args),
 *   completed or failed with the result of the tool message answering it (`status: "error"` is
 *   failed), pending when none does; a tool message answering no call of this write becomes a call of
 *   its own.
 * - System messages, ids, `additional_kwargs` and everything else have no field of a turn: the exact
 *   messages are kept whole in one more entry, {@link TRANSCRIPT_TOOL_NAME}, whose `result` is the
 *   messages as LangChain's `StoredMessage[]`; {@link messagesOfTurn} reads them back from it.
 */
export function turnOfMessages(messages: BaseMessage[], options: MappingOptions): LogTurnInput {
  const humans: string[] = [];
  const responses: AgentResponseInput[] = [];
  const calls: ToolCallInput[] = [];
  const callsById = new Map<string, ToolCallInput>();
  const usedIds = new Set<string>([TRANSCRIPT_TOOL_NAME]);
  const idFor = (wanted: string | undefined): string => {
    let id = wanted !== undefined && IDENTIFIER.test(wanted) ? wanted : `call-${usedIds.size}`;
    while (usedIds.has(id)) id = `call-${usedIds.size}-${id}`.slice(0, MAX_NAME);
    usedIds.add(id);
    return id;
  };

  for (const message of messages) {
    if (HumanMessage.isInstance(message)) {
      humans.push(message.text);
    } else if (AIMessage.isInstance(message)) {
      responses.push(responseOf(message, responses.length, options));
      for (const call of message.tool_calls ?? []) {
        const entry: ToolCallInput = {
          tool_call_id: idFor(call.id),
          name: call.name,
          request: jsonCopy(call.args),
          status: 'pending',
        };
        calls.push(entry);
        if (call.id !== undefined) callsById.set(call.id, entry);
      }
    } else if (ToolMessage.isInstance(message)) {
      const failed = message.status === 'error';
      const answered = callsById.get(message.tool_call_id);
      const entry: ToolCallInput = answered ?? {
        tool_call_id: idFor(message.tool_call_id),
        name: message.name ?? 'tool',
      };
      entry.status = failed ? 'failed' : 'completed';
      entry.result = jsonCopy(message.content);
      if (failed) entry.error = message.text.slice(0, MAX_ERROR) || 'tool error';
      if (answered === undefined) calls.push(entry);
    }
    // System, developer, function and generic messages have no field of a turn: the transcript keeps them.
  }

  calls.push({
    tool_call_id: TRANSCRIPT_TOOL_NAME,
    name: TRANSCRIPT_TOOL_NAME,
    request: { ...TRANSCRIPT_FORMAT },
    status: 'completed',
    result: jsonCopy(mapChatMessagesToStoredMessages(messages)),
  });
  return { user_input: humans.join('\n\n'), agent_responses: responses, tool_calls: calls };
}

function responseOf(ai: AIMessage, order: number, options: MappingOptions): AgentResponseInput {
  const response: AgentResponseInput = {
    agent_name: (ai.name ?? options.agentName).slice(0, MAX_NAME),
    response: ai.text,
    turn_order: order,
  };
  const meta = ai.response_metadata as Record<string, unknown> | undefined;
  const model = meta?.['model_name'] ?? meta?.['model'];
  if (typeof model === 'string' && model !== '') response.model = model.slice(0, MAX_NAME);
  const usage = ai.usage_metadata;
  if (usage !== undefined) response.usage = usageOf(usage);
  return response;
}

function usageOf(usage: UsageMetadata): NonNullable<AgentResponseInput['usage']> {
  const out: NonNullable<AgentResponseInput['usage']> = {
    input_tokens: usage.input_tokens,
    output_tokens: usage.output_tokens,
    total_tokens: usage.total_tokens,
  };
  const cached = usage.input_token_details?.cache_read;
  const reasoning = usage.output_token_details?.reasoning;
  if (cached !== undefined) out.cached_tokens = cached;
  if (reasoning !== undefined) out.reasoning_tokens = reasoning;
  return out;
}

/** The transcript entry's messages, or `undefined` when the turn has none (or not in a format this adapter wrote). */
function transcriptOf(turn: Turn): StoredMessage[] | undefined {
  const entry = turn.tool_calls.find((c) => c.tool_call_id === TRANSCRIPT_TOOL_NAME);
  if (entry === undefined) return undefined;
  if (!TranscriptRequestSchema.safeParse(entry.request).success) return undefined;
  const parsed = TranscriptSchema.safeParse(entry.result);
  if (!parsed.success)
    throw new Error(
      `turn ${turn.turn_id}: its ${TRANSCRIPT_TOOL_NAME} entry is not a list of stored messages`,
    );
  return parsed.data;
}

/**
 * The messages of a turn. A turn this adapter wrote gives back exactly the messages it was written
 * with (from its {@link TRANSCRIPT_TOOL_NAME} entry). Any other turn (logged with the SDK or the HTTP
 * API) is read from its fields: a human message with `user_input` (when not empty), an AI message
 * asking for its tool calls (args from `request`) followed by a tool message per finished call, then
 * an AI message per agent response (`name` the agent, `response_metadata.model_name` the model,
 * `usage_metadata` when the usage was reported rather than estimated).
 * @throws Error when the turn's transcript entry is malformed.
 */
export function messagesOfTurn(turn: Turn): BaseMessage[] {
  const transcript = transcriptOf(turn);
  if (transcript !== undefined) return mapStoredMessagesToChatMessages(transcript);

  const messages: BaseMessage[] = [];
  if (turn.user_input !== '') messages.push(new HumanMessage(turn.user_input));
  if (turn.tool_calls.length > 0) {
    messages.push(
      new AIMessage({
        content: '',
        tool_calls: turn.tool_calls.map((c) => ({
          id: c.tool_call_id,
          name: c.name,
          args: isRecord(c.request) ? c.request : { input: c.request },
          type: 'tool_call' as const,
        })),
      }),
    );
    for (const c of turn.tool_calls) {
      if (c.status !== 'completed' && c.status !== 'failed') continue;
      const result = c.result ?? c.error ?? '';
      messages.push(
        new ToolMessage({
          content: typeof result === 'string' ? result : JSON.stringify(result),
          tool_call_id: c.tool_call_id,
          name: c.name,
          status: c.status === 'failed' ? 'error' : 'success',
        }),
      );
    }
  }
  for (const r of turn.agent_responses) {
    messages.push(
      new AIMessage({
        content: r.response,
        name: r.agent_name,
        response_metadata: r.model === null ? {} : { model_name: r.model },
        ...(r.usage_source === 'reported'
          ? {
              usage_metadata: {
                input_tokens: r.usage.input_tokens,
                output_tokens: r.usage.output_tokens,
                total_tokens: r.usage.total_tokens,
                input_token_details: { cache_read: r.usage.cached_tokens },
                output_token_details: { reasoning: r.usage.reasoning_tokens },
              },
            }
          : {}),
      }),
    );
  }
  return messages;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
