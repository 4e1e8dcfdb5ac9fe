import type { AgentInputItem } from '@openai/agents-core';
import type { AgentResponseInput, LogTurnInput, ToolCallInput, Turn } from '@threadline/client';
import { z } from 'zod';

/**
 * Name and `tool_call_id` of the entry that holds a turn's exact items (see {@link turnOfItems}).
 * Its `request` names the format, its `result` is the items as JSON.
 */
export const TRANSCRIPT_TOOL_NAME = 'threadline.transcript';
/** `request` of the transcript entry: which adapter wrote it and in which format. */
export const TRANSCRIPT_FORMAT = { format: 'openai_agents.items', version: 1 } as const;

/** Threadline identifiers (`tool_call_id`): 1-128 letters, digits and `_-.:@`. */
const IDENTIFIER = /^[A-Za-z0-9_\-.:@]{1,128}$/;
const MAX_NAME = 128;

/** What the mapping needs besides the items (the Session interface sees items only). */
export interface MappingOptions {
  /** `agent_name` of the assistant messages (items do not say which agent wrote them). */
  agentName: string;
  /** `model` of the assistant messages, when known (items do not carry it). */
  model?: string;
}

type Item = AgentInputItem;
type Of<T extends string> = Extract<Item, { type: T }>;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An item as the API gives it back: an object with a string `type` or `role` (JSON of an {@link AgentInputItem}). */
const ItemSchema = z.custom<Item>(
  (value) => isRecord(value) && (typeof value['type'] === 'string' || typeof value['role'] === 'string'),
  'an agent input item (an object with a string type or role)',
);
const TranscriptSchema = z.array(ItemSchema);
/** The transcript entry's `request`: a turn another writer tagged differently is read from its fields. */
const TranscriptRequestSchema = z.object({
  format: z.literal(TRANSCRIPT_FORMAT.format),
  version: z.literal(1),
});

const jsonCopy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const isRole = <R extends 'user' | 'assistant' | 'system'>(
  item: Item,
  role: R,
): item is Extract<Item, { role: R }> =>
  'role' in item && item.role === role && (item.type === undefined || item.type === 'message');

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      if (!isRecord(part)) return '';
      if (typeof part['text'] === 'string') return part['text'];
      if (typeof part['refusal'] === 'string') return part['refusal'];
      if (typeof part['transcript'] === 'string') return part['transcript'];
      return '';
    })
    .join('');
}

/** A function call's `arguments` as the tool call's `request`: the parsed JSON when it prints back the same, else the string. */
function requestOf(args: string | undefined): unknown {
  if (args === undefined) return null;
  try {
    const parsed: unknown = JSON.parse(args);
    return JSON.stringify(parsed) === args ? parsed : args;
  } catch {
    return args;
  }
}

const statusOf = (status: string | undefined): ToolCallInput['status'] =>
  status === 'incomplete' ? 'failed' : status === 'in_progress' ? 'running' : 'completed';

/**
 * The items of one `addItems` call (the runner makes one per run: the run's input, then what the run
 * produced) as one Threadline turn (one `POST /sessions/{session_id}/turns`):
 *
 * - `user_input`: the text of the user messages (joined by a blank line), `""` when there is none.
 * - `agent_responses`: one per assistant message, in order: `response` its text (output text and
 *   refusals), `agent_name` and `model` from `options`. Items carry no token usage, so the API
 *   estimates it with its tokenizer.
 * - `tool_calls`: one per function call (`tool_call_id` its `callId`, `name`, `request` its parsed
 *   `arguments`), completed with the `output` of its `function_call_result` (`incomplete` is failed),
 *   pending without one; one per hosted tool call (`output` as result).
 * - Reasoning items, system messages, ids, `providerData` and every other item have no field of a
 *   turn: the exact items are kept whole in one more entry, {@link TRANSCRIPT_TOOL_NAME}, whose
 *   `result` is the items as JSON; {@link itemsOfTurn} reads them back from it.
 */
export function turnOfItems(items: Item[], options: MappingOptions): LogTurnInput {
  const users: string[] = [];
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

  for (const item of items) {
    if (isRole(item, 'user')) {
      users.push(textOf(item.content));
    } else if (isRole(item, 'assistant')) {
      const response: AgentResponseInput = {
        agent_name: options.agentName.slice(0, MAX_NAME),
        response: textOf(item.content),
        turn_order: responses.length,
      };
      if (options.model !== undefined) response.model = options.model.slice(0, MAX_NAME);
      responses.push(response);
    } else if (item.type === 'function_call') {
      const call: Of<'function_call'> = item;
      const entry: ToolCallInput = {
        tool_call_id: idFor(call.callId),
        name: call.name.slice(0, MAX_NAME),
        request: jsonCopy(requestOf(call.arguments)),
        status: 'pending',
      };
      calls.push(entry);
      callsById.set(call.callId, entry);
    } else if (item.type === 'function_call_result') {
      const result: Of<'function_call_result'> = item;
      const answered = callsById.get(result.callId);
      const entry: ToolCallInput = answered ?? {
        tool_call_id: idFor(result.callId),
        name: result.name.slice(0, MAX_NAME),
      };
      entry.status = statusOf(result.status);
      entry.result = jsonCopy(result.output);
      if (entry.status === 'failed') entry.error = 'incomplete';
      if (answered === undefined) calls.push(entry);
    } else if (item.type === 'hosted_tool_call') {
      const hosted: Of<'hosted_tool_call'> = item;
      calls.push({
        tool_call_id: idFor(hosted.id),
        name: hosted.name.slice(0, MAX_NAME),
        request: jsonCopy(requestOf(hosted.arguments)),
        status: statusOf(hosted.status),
        ...(hosted.output === undefined ? {} : { result: hosted.output }),
      });
    }
    // Reasoning, system messages, computer/shell/patch calls, compaction: only in the transcript.
  }

  calls.push({
    tool_call_id: TRANSCRIPT_TOOL_NAME,
    name: TRANSCRIPT_TOOL_NAME,
    request: { ...TRANSCRIPT_FORMAT },
    status: 'completed',
    result: jsonCopy(items),
  });
  return { user_input: users.join('\n\n'), agent_responses: responses, tool_calls: calls };
}

function transcriptOf(turn: Turn): Item[] | undefined {
  const entry = turn.tool_calls.find((c) => c.tool_call_id === TRANSCRIPT_TOOL_NAME);
  if (entry === undefined) return undefined;
  if (!TranscriptRequestSchema.safeParse(entry.request).success) return undefined;
  const parsed = TranscriptSchema.safeParse(entry.result);
  if (!parsed.success)
    throw new Error(`turn ${turn.turn_id}: its ${TRANSCRIPT_TOOL_NAME} entry is not a list of agent items`);
  return parsed.data;
}

/**
 * The items of a turn. A turn this adapter wrote gives back exactly the items it was written with
 * (as JSON: `undefined` properties are not kept). Any other turn (logged with the SDK or the HTTP
 * API) is read from its fields: a user message with `user_input` (when not empty), a function call
 * and its result per tool call, then an assistant message per agent response.
 * @throws Error when the turn's transcript entry is malformed.
 */
export function itemsOfTurn(turn: Turn): Item[] {
  const transcript = transcriptOf(turn);
  if (transcript !== undefined) return transcript;

  const items: Item[] = [];
  if (turn.user_input !== '') items.push({ type: 'message', role: 'user', content: turn.user_input });
  for (const c of turn.tool_calls) {
    items.push({
      type: 'function_call',
      callId: c.tool_call_id,
      name: c.name,
      arguments: typeof c.request === 'string' ? c.request : JSON.stringify(c.request ?? {}),
      status: 'completed',
    });
    if (c.status !== 'completed' && c.status !== 'failed') continue;
    const result = c.result ?? c.error ?? '';
    items.push({
      type: 'function_call_result',
      callId: c.tool_call_id,
      name: c.name,
      status: c.status === 'failed' ? 'incomplete' : 'completed',
      output: typeof result === 'string' ? result : JSON.stringify(result),
    });
  }
  for (const r of turn.agent_responses) {
    items.push({
      type: 'message',
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: r.response }],
    });
  }
  return items;
}
