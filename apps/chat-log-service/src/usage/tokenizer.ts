import { createRequire } from 'node:module';
import type {
  getEncodingNameForModel as GetEncodingNameForModel,
  Tiktoken,
  TiktokenEncoding,
} from 'js-tiktoken/lite' with { 'resolution-mode': 'require' };
import { z } from 'zod';

// js-tiktoken ships CommonJS builds (`require` condition) but declares `"type": "module"`, so TypeScript
// refuses a static import from this CommonJS file; the module is required at run time instead, typed
// by its own declarations.
const load = createRequire(__filename);
interface Lite {
  getEncodingNameForModel: typeof GetEncodingNameForModel;
  Tiktoken: typeof Tiktoken;
}
const { getEncodingNameForModel, Tiktoken: TiktokenClass } = load('js-tiktoken/lite') as Lite;

/**
 * Encoding of models js-tiktoken does not list, by family (OpenAI's tiktoken `MODEL_PREFIX_TO_ENCODING`):
 * gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series use o200k_base; gpt-3.5 and gpt-4 (turbo) cl100k_base.
 * Anything else (Claude, Gemini, unknown) is counted with o200k_base: their tokenizers are not public,
 * so the count is an approximation of the same order, marked `usage_source: "estimated"` like any count.
 */
const FAMILIES: readonly { prefix: string; encoding: TiktokenEncoding }[] = [
  { prefix: 'gpt-4o', encoding: 'o200k_base' },
  { prefix: 'gpt-4.1', encoding: 'o200k_base' },
  { prefix: 'gpt-4.5', encoding: 'o200k_base' },
  { prefix: 'gpt-5', encoding: 'o200k_base' },
  { prefix: 'chatgpt-4o', encoding: 'o200k_base' },
  { prefix: 'o1', encoding: 'o200k_base' },
  { prefix: 'o3', encoding: 'o200k_base' },
  { prefix: 'o4', encoding: 'o200k_base' },
  { prefix: 'gpt-3.5', encoding: 'cl100k_base' },
  { prefix: 'gpt-35', encoding: 'cl100k_base' },
  { prefix: 'gpt-4', encoding: 'cl100k_base' },
];

/** The encoding used for models we know nothing about. */
export const DEFAULT_ENCODING: TiktokenEncoding = 'o200k_base';

// js-tiktoken types its argument as the union of the model names it knows and throws
// `Unknown model` for any other string, which is exactly the lookup we want on arbitrary input.
const encodingNameForKnownModel = getEncodingNameForModel as (model: string) => TiktokenEncoding;

/**
 * The tiktoken encoding matching `model`: js-tiktoken's own table (`getEncodingNameForModel`) for the
 * names it lists, else the family rule of {@link FAMILIES} (dated or new variants), else
 * {@link DEFAULT_ENCODING} (no model, non-OpenAI or unknown models).
 */
export function encodingNameFor(model: string | null | undefined): TiktokenEncoding {
  if (!model) return DEFAULT_ENCODING;
  const name = model.toLowerCase();
  try {
    return encodingNameForKnownModel(name);
  } catch {
    // not a model js-tiktoken lists
  }
  const family = FAMILIES.find((f) => name === f.prefix || name.startsWith(`${f.prefix}-`));
  return family?.encoding ?? DEFAULT_ENCODING;
}

/** The BPE ranks module of an encoding (`js-tiktoken/ranks/<name>`), validated when loaded. */
const Ranks = z.object({
  pat_str: z.string(),
  special_tokens: z.record(z.string(), z.number()),
  bpe_ranks: z.string(),
});

const encoders = new Map<TiktokenEncoding, Tiktoken>();

/**
 * The encoder of `encoding`, built once per process and cached: the ranks (0.5-2.3 MB each) are loaded
 * on first use only, so a service that only sees gpt-4o never loads cl100k_base.
 */
export function encoderFor(encoding: TiktokenEncoding): Tiktoken {
  let encoder = encoders.get(encoding);
  if (!encoder) {
    encoder = new TiktokenClass(Ranks.parse(load(`js-tiktoken/ranks/${encoding}`)));
    encoders.set(encoding, encoder);
  }
  return encoder;
}

/**
 * Number of tokens of `text` for `model` (tokens, no chat-format overhead: the text alone). Special
 * token strings such as `<|endoftext|>` in user text are counted as ordinary text, never rejected.
 */
export function countTokens(text: string, model: string | null | undefined): number {
  if (text.length === 0) return 0;
  return encoderFor(encodingNameFor(model)).encode(text, [], []).length;
}

/**
 * Builds the encoders of `encodings` now (about 1 s each on this machine), so the first turn that
 * needs an estimate does not pay for it inside a request and its timeout. Called once at boot with the
 * default encoding only (current and unknown models): measured RSS +160 MB for o200k_base, +64 MB more
 * for cl100k_base, which therefore stays lazy (gpt-3.5/gpt-4 only).
 */
export function warmEncoders(encodings: readonly TiktokenEncoding[] = [DEFAULT_ENCODING]): void {
  for (const encoding of encodings) encoderFor(encoding);
}
