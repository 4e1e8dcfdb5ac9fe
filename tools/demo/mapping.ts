import type { z } from 'zod';
import { CreateSessionBody, type Json, LogTurnBody, type ToolCallStatus } from '@threadline/contracts';
import { jsonPath, type Annotation, type Dialog } from './dataset';

/** `POST /sessions` body as the importer sends it. */
export type CreateSessionInput = z.input<typeof CreateSessionBody>;
/** `POST /sessions/{session_id}/turns` body as the importer sends it. */
export type LogTurnInput = z.input<typeof LogTurnBody>;
type ToolCallInput = NonNullable<LogTurnInput['tool_calls']>[number];
type AgentResponseInput = NonNullable<LogTurnInput['agent_responses']>[number];

/** Agent name and model of every imported response (the dataset's assistant is one coffee agent). */
export const DEMO_AGENT = 'coffee-agent';
export const DEMO_MODEL = 'gpt-4o-mini';
/** `metadata.source` of imported sessions. */
export const DEMO_SOURCE = 'taskmaster4';
/** Longest session title the API accepts (CreateSessionBody). */
const MAX_TITLE = 255;

/** A dialog that cannot become valid request bodies (e.g. an utterance over the API's 100,000 characters). */
export class MappingError extends Error {
  override readonly name = 'MappingError';
}

/** What one dialog sends: one session, then its turns in order. */
export interface DialogPlan {
  /** Position of the dialog in the file (0-based). */
  index: number;
  conversationId: string;
  userId: string;
  session: CreateSessionInput;
  turns: LogTurnInput[];
  /** Utterances of the dialog, tool calls over all its turns. */
  utterances: number;
  toolCalls: number;
}

/** `demo-user-1` ... `demo-user-<users>`: round robin over the dialogs' positions. */
export function userIdFor(dialogIndex: number, users: number): string {
  return `demo-user-${(dialogIndex % users) + 1}`;
}

/** The parsed JSON of an annotation value, or the raw string when it is not valid JSON. */
export function parseJsonOrRaw(value: string): Json {
  try {
    return JSON.parse(value) as Json;
  } catch {
    return value;
  }
}

const CONTEXT = /^(api_call|api_response)_(\d+)$/;

interface ToolCallDraft {
  name?: string;
  responseName?: string;
  request?: Json;
  result?: Json;
  hasResult: boolean;
  /** Turn the call's first annotation belongs to. */
  turn: number;
}

/**
 * Maps one Taskmaster-4 dialog to the requests that import it.
 *
 * - Session: `user_id` = `userId`, `title` = the scenario (cut to 255 characters; the conversation
 *   id when there is none), `metadata` {source: 'taskmaster4', conversation_id, vertical, demo_run:
 *   `runId`}, `created_from: 'demo'`.
 * - Turns: each user utterance starts a turn (`user_input` = its text). Every assistant utterance
 *   that follows, up to the next user utterance, is one agent response of that turn with
 *   `turn_order` 0, 1, 2 ... (consecutive assistant utterances stay separate responses, in order),
 *   `agent_name` {@link DEMO_AGENT}, `model` {@link DEMO_MODEL}, no usage (the service estimates it
 *   with its tokenizer). Assistant utterances before the first user utterance form an opening turn
 *   with an empty `user_input`. A user utterance followed by another gets a turn without responses.
 * - Tool calls: annotations are grouped by the number `<n>` of their context (`api_call_<n>` holds
 *   the `api_call` name and the `request`, `api_response_<n>` the `response`), across the dialog.
 *   Each group becomes one tool call {name, request, status, result} of the turn holding its first
 *   annotation, whichever speaker's utterance carries it (Taskmaster-4 puts them on the user
 *   utterance the agent answers), in the order they first occur. `request`/`result` are the parsed
 *   JSON, or the raw string when it does not parse; absent when the dataset has none. `status` is
 *   `completed` when a response is recorded, else `pending`. Other annotations are ignored.
 *
 * Every body is validated with the API's zod schemas (CreateSessionBody, LogTurnBody).
 * Throws {@link MappingError} naming the dialog and the bad field when one is invalid.
 */
export function mapDialog(
  dialog: Dialog,
  options: { index: number; userId: string; runId: string },
): DialogPlan {
  const title = (dialog.scenario ?? '').trim() || `Taskmaster-4 ${dialog.conversation_id}`;
  const session: CreateSessionInput = {
    user_id: options.userId,
    title: title.slice(0, MAX_TITLE),
    metadata: {
      source: DEMO_SOURCE,
      conversation_id: dialog.conversation_id,
      ...(dialog.vertical ? { vertical: dialog.vertical } : {}),
      demo_run: options.runId,
    },
    created_from: 'demo',
  };

  const turns: { user_input: string; agent_responses: AgentResponseInput[] }[] = [];
  const calls = new Map<number, ToolCallDraft>();
  for (const utterance of dialog.utterances) {
    if (utterance.speaker === 'user' || turns.length === 0) {
      turns.push({ user_input: utterance.speaker === 'user' ? utterance.text : '', agent_responses: [] });
    }
    const turn = turns.length - 1;
    const current = turns[turn];
    if (current === undefined) throw new MappingError('unreachable: no current turn');
    if (utterance.speaker === 'assistant') {
      current.agent_responses.push({
        agent_name: DEMO_AGENT,
        response: utterance.text,
        turn_order: current.agent_responses.length,
        model: DEMO_MODEL,
      });
    }
    for (const annotation of utterance.annotations) collectAnnotation(calls, annotation, turn);
  }

  const toolCallsByTurn = new Map<number, ToolCallInput[]>();
  for (const draft of calls.values()) {
    const list = toolCallsByTurn.get(draft.turn) ?? [];
    list.push(toolCallOf(draft));
    toolCallsByTurn.set(draft.turn, list);
  }

  const bodies: LogTurnInput[] = turns.map((t, i) => ({
    user_input: t.user_input,
    agent_responses: t.agent_responses,
    tool_calls: toolCallsByTurn.get(i) ?? [],
  }));

  validate(CreateSessionBody, session, dialog, 'session');
  bodies.forEach((body, i) => validate(LogTurnBody, body, dialog, `turn ${i + 1}`));
  return {
    index: options.index,
    conversationId: dialog.conversation_id,
    userId: options.userId,
    session,
    turns: bodies,
    utterances: dialog.utterances.length,
    toolCalls: calls.size,
  };
}

function collectAnnotation(calls: Map<number, ToolCallDraft>, annotation: Annotation, turn: number): void {
  const match = CONTEXT.exec(annotation.context);
  if (!match) return;
  const kind = match[1];
  const n = Number(match[2]);
  const draft = calls.get(n) ?? { hasResult: false, turn };
  calls.set(n, draft);
  if (kind === 'api_call') {
    if (annotation.name === 'api_call') draft.name ??= annotation.value;
    else if (annotation.name === 'request') draft.request ??= parseJsonOrRaw(annotation.value);
  } else if (annotation.name === 'api_response') {
    draft.responseName ??= annotation.value;
  } else if (annotation.name === 'response' && !draft.hasResult) {
    draft.result = parseJsonOrRaw(annotation.value);
    draft.hasResult = true;
  }
}

function toolCallOf(draft: ToolCallDraft): ToolCallInput {
  const status: ToolCallStatus = draft.hasResult ? 'completed' : 'pending';
  return {
    name: (draft.name ?? draft.responseName ?? '').trim() || 'unknown',
    ...(draft.request !== undefined ? { request: draft.request } : {}),
    status,
    ...(draft.hasResult ? { result: draft.result } : {}),
  };
}

function validate(schema: z.ZodType, body: unknown, dialog: Dialog, what: string): void {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${jsonPath(i.path)}: ${i.message}`).join('; ');
    throw new MappingError(
      `dialog ${dialog.conversation_id}: ${what} is not a valid request body: ${issues}`,
    );
  }
}

/** Totals of a set of plans (what an import sends when nothing fails). */
export interface PlanTotals {
  dialogs: number;
  utterances: number;
  turns: number;
  agentResponses: number;
  toolCalls: number;
}

/** Sums {@link DialogPlan}s. */
export function totalsOf(plans: readonly DialogPlan[]): PlanTotals {
  return plans.reduce<PlanTotals>(
    (t, p) => ({
      dialogs: t.dialogs + 1,
      utterances: t.utterances + p.utterances,
      turns: t.turns + p.turns.length,
      agentResponses:
        t.agentResponses + p.turns.reduce((n, turn) => n + (turn.agent_responses?.length ?? 0), 0),
      toolCalls: t.toolCalls + p.toolCalls,
    }),
    { dialogs: 0, utterances: 0, turns: 0, agentResponses: 0, toolCalls: 0 },
  );
}

/** A dialog of the file and its plan, or why it has none. */
export type PlannedDialog =
  { ok: true; plan: DialogPlan } | { ok: false; index: number; conversationId: string; error: MappingError };

/**
 * Maps the first `limit` dialogs (all when undefined) with users assigned round robin over `users`.
 * A dialog that fails validation is returned as `{ok: false}` with its {@link MappingError}.
 */
export function planDialogs(
  dialogs: readonly Dialog[],
  options: { users: number; runId: string; limit?: number },
): PlannedDialog[] {
  return dialogs.slice(0, options.limit ?? dialogs.length).map((dialog, index): PlannedDialog => {
    try {
      return {
        ok: true,
        plan: mapDialog(dialog, { index, userId: userIdFor(index, options.users), runId: options.runId }),
      };
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      return { ok: false, index, conversationId: dialog.conversation_id, error };
    }
  });
}
