import type { z } from 'zod';
import type { LogTurnBody } from '@threadline/contracts';
import { loadDataset, resolveDatasetPath, type Dialog } from '../demo/dataset';

/** `POST /sessions/{session_id}/turns` body as the bench sends it. */
export type TurnInput = z.input<typeof LogTurnBody>;

/** The bench's turns: bodies already serialized (the load generator must not spend time on JSON). */
export interface TurnPool {
  /** Where the texts come from (the dataset path). */
  source: string;
  bodies: Buffer[];
  /** Mean body size in bytes. */
  meanBytes: number;
}

/** Smallest body the bench sends (the "about 1 KB" turn): shorter ones get the dialog's next reply appended. */
const MIN_BYTES = 900;

/** The first `api_call_<n>` group of `dialog` at or after utterance `from`: name, request, result. */
function toolCallOf(
  dialog: Dialog,
  from: number,
): { name: string; request: unknown; result: unknown } | undefined {
  const groups = new Map<string, { name?: string; request?: unknown; result?: unknown }>();
  const order: string[] = [];
  for (const u of dialog.utterances.slice(from)) {
    for (const a of u.annotations) {
      const m = /^api_(?:call|response)_(\d+)$/.exec(a.context);
      if (!m?.[1]) continue;
      if (!groups.has(m[1])) {
        groups.set(m[1], {});
        order.push(m[1]);
      }
      const g = groups.get(m[1])!;
      const json = (): unknown => {
        try {
          return JSON.parse(a.value) as unknown;
        } catch {
          return a.value;
        }
      };
      if (a.name === 'api_call') g.name = a.value;
      else if (a.name === 'request') g.request = json();
      else if (a.name === 'response') g.result = json();
    }
  }
  for (const key of order) {
    const g = groups.get(key)!;
    if (g.name) return { name: g.name.slice(0, 128), request: g.request ?? {}, result: g.result ?? {} };
  }
  return undefined;
}

/**
 * Builds whole turns from Taskmaster-4 dialogs: each user utterance that is followed by at least two
 * assistant utterances gives one turn with `user_input` = its text, two agent responses (the next two
 * assistant utterances, as `coffee-agent` and `order-checker`, model gpt-4o-mini, client-reported usage
 * unless `estimateUsage`), and one completed tool call (the dialog's first api_call group from there on).
 * A body under ~900 bytes gets the dialog's following assistant texts appended to the second response
 * until it is about 1 KB. Throws DatasetError when the file cannot be read; Error when no turn fits.
 */
export async function loadTurns(opts: {
  file?: string;
  cwd: string;
  estimateUsage: boolean;
  max?: number;
}): Promise<TurnPool> {
  const path = resolveDatasetPath(opts.file, opts.cwd, __dirname);
  const dialogs = await loadDataset(path);
  const bodies: Buffer[] = [];
  const max = opts.max ?? 5_000;
  for (const dialog of dialogs) {
    const us = dialog.utterances;
    for (let i = 0; i < us.length && bodies.length < max; i++) {
      if (us[i]!.speaker !== 'user' || us[i]!.text.trim() === '') continue;
      const replies = us.slice(i + 1).filter((u) => u.speaker === 'assistant' && u.text.trim() !== '');
      if (replies.length < 2) continue;
      const tool = toolCallOf(dialog, i) ?? toolCallOf(dialog, 0);
      if (!tool) continue;
      const usage = (input: number, output: number) =>
        opts.estimateUsage ? {} : { usage: { input_tokens: input, output_tokens: output } };
      let second = replies[1]!.text;
      const turn = (): TurnInput => ({
        user_input: us[i]!.text,
        agent_responses: [
          {
            agent_name: 'coffee-agent',
            response: replies[0]!.text,
            turn_order: 0,
            model: 'gpt-4o-mini',
            execution_time_ms: 640,
            ...usage(412, 38),
          },
          {
            agent_name: 'order-checker',
            response: second,
            turn_order: 1,
            model: 'gpt-4o-mini',
            execution_time_ms: 210,
            ...usage(530, 61),
          },
        ],
        tool_calls: [{ name: tool.name, request: tool.request, status: 'completed', result: tool.result }],
        processing_time_ms: 930,
      });
      let body = Buffer.from(JSON.stringify(turn()));
      for (let k = 2; body.length < MIN_BYTES && k < replies.length; k++) {
        second = `${second} ${replies[k]!.text}`;
        body = Buffer.from(JSON.stringify(turn()));
      }
      if (body.length < MIN_BYTES) second = second.padEnd(second.length + (MIN_BYTES - body.length), ' .');
      bodies.push(Buffer.from(JSON.stringify(turn())));
    }
  }
  if (bodies.length === 0)
    throw new Error(`${path}: no user utterance followed by two assistant replies and a tool call`);
  const meanBytes = Math.round(bodies.reduce((a, b) => a + b.length, 0) / bodies.length);
  return { source: path, bodies, meanBytes };
}
