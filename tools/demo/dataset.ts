import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';

/**
 * The Taskmaster-4 dialog file format (`data_*.json`: a JSON array of dialogs), as released by
 * Byrne & Ganesh, Google LLC (CC BY 4.0) with the PERL paper (arXiv:2403.10704). Only the fields
 * the importer uses are required; unknown fields are allowed so that other files of the same
 * format (other `data_*.json` shards, other verticals) load too.
 */
export const Annotation = z.looseObject({
  /** `api_call`, `request`, `api_response` or `response` (others are ignored). */
  name: z.string(),
  /** The API name (`api_call`, `api_response`) or a JSON string (`request`, `response`). */
  value: z.string(),
  /** `api_call_<n>` or `api_response_<n>`: `<n>` pairs a call with its response within a dialog. */
  context: z.string(),
});
export type Annotation = z.infer<typeof Annotation>;

export const Speaker = z.enum(['user', 'assistant']);
export type Speaker = z.infer<typeof Speaker>;

export const Utterance = z.looseObject({
  index: z.number().int().min(0),
  speaker: Speaker,
  text: z.string(),
  segments: z.array(z.unknown()).optional(),
  annotations: z
    .array(Annotation)
    .nullish()
    .transform((a) => a ?? []),
});
export type Utterance = z.infer<typeof Utterance>;

export const Dialog = z.looseObject({
  conversation_id: z.string().min(1),
  vertical: z.string().nullish(),
  scenario: z.string().nullish(),
  instructions: z.string().nullish(),
  utterances: z.array(Utterance),
});
export type Dialog = z.infer<typeof Dialog>;

export const DialogFile = z.array(Dialog);

/** The dataset file cannot be read, is not JSON, or is not in the Taskmaster-4 format. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}

/** Issues shown in a {@link DatasetError}; the rest are counted. */
const MAX_ISSUES_SHOWN = 10;

/** `[3].utterances[2].speaker` for the path `[3, 'utterances', 2, 'speaker']`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  const text = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return text === '' ? '(root)' : text.replace(/^\./, '');
}

/**
 * Validates parsed JSON as a Taskmaster-4 dialog file. `source` (the file path) is named in errors.
 * Returns the dialogs with each dialog's utterances sorted by `index`.
 * Throws {@link DatasetError} listing the first {@link MAX_ISSUES_SHOWN} bad fields with their JSON
 * paths, e.g. `data.json is not a Taskmaster-4 dialog file: [3].utterances[2].speaker: Invalid option...`.
 */
export function parseDataset(raw: unknown, source: string): Dialog[] {
  const result = DialogFile.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues;
    const shown = issues.slice(0, MAX_ISSUES_SHOWN).map((i) => `  ${jsonPath(i.path)}: ${i.message}`);
    const more =
      issues.length > MAX_ISSUES_SHOWN ? [`  ... and ${issues.length - MAX_ISSUES_SHOWN} more`] : [];
    throw new DatasetError(
      `${source} is not a Taskmaster-4 dialog file (a JSON array of {conversation_id, utterances: [{index, speaker, text, annotations}]}):\n` +
        [...shown, ...more].join('\n'),
    );
  }
  return result.data.map((d) => ({ ...d, utterances: [...d.utterances].sort((a, b) => a.index - b.index) }));
}

/**
 * Reads and validates a dataset file (see {@link parseDataset}); a path ending in `.gz` is
 * gunzipped first (the bundled copy is stored compressed).
 * Throws {@link DatasetError} naming `path` when it cannot be read or unzipped, is not JSON, or has
 * the wrong shape.
 */
export async function loadDataset(path: string): Promise<Dialog[]> {
  let text: string;
  try {
    const bytes = await readFile(path);
    text = (path.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
  } catch (error) {
    throw new DatasetError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new DatasetError(`${path} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseDataset(raw, path);
}

/**
 * The bundled dataset, relative to the repository root: Taskmaster-4's `data_00.json` (500 dialogs),
 * gzipped; its licence (CC BY 4.0) and attribution are in the README beside it.
 */
export const DEFAULT_DATASET = 'tools/demo/data/taskmaster4/data_00.json.gz';

/** The repository root: the nearest ancestor of `from` holding `nx.json`, or `undefined`. */
export function findRepoRoot(from: string): string | undefined {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'nx.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The dataset path to load. A given `file` is resolved against `cwd` (and must exist when read).
 * Without one, {@link DEFAULT_DATASET} in the repository found above `moduleDir` (so `npm run demo`
 * works from any directory of any clone).
 * Throws {@link DatasetError} naming the path tried when the bundled file is missing.
 */
export function resolveDatasetPath(file: string | undefined, cwd: string, moduleDir: string): string {
  if (file !== undefined) return resolve(cwd, file);
  const root = findRepoRoot(moduleDir);
  const bundled = root === undefined ? undefined : resolve(root, DEFAULT_DATASET);
  if (bundled === undefined || !existsSync(bundled)) {
    throw new DatasetError(
      `no dataset given and the bundled one is missing (${bundled ?? `no repository above ${moduleDir}`}); pass --file <path>`,
    );
  }
  return bundled;
}
