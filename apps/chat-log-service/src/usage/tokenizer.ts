import { createRequire } from 'node:module';
import type {
  getEncodingNameForModel as GetEncodingNameForModel,
  Tiktoken,
  TiktokenEncoding,
} from 'js-tiktoken/lite' with { 'resolution-mode': 'require' };
import { z } from 'zod';
import { secondsSince, tokenizerDuration } from '@threadline/platform';

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
type Ranks = z.infer<typeof Ranks>;

/**
 * Fills `rankMap` from `bpeRanks`, the ranks text of a js-tiktoken ranks module: lines
 * `! <first rank> <base64 token> <base64 token> ...` (ranks consecutive within a line), each token
 * stored under the key js-tiktoken's `encode` looks up, its bytes joined by commas (`"104,105"`).
 * Scans the text in place: no intermediate token list or object. Throws Error on a line whose first
 * rank is not a number.
 */
function fillRankMap(rankMap: Map<string, number>, bpeRanks: string, encoding: string): void {
  let lineStart = 0;
  while (lineStart < bpeRanks.length) {
    let lineEnd = bpeRanks.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = bpeRanks.length;
    const next = (from: number) => {
      const space = bpeRanks.indexOf(' ', from);
      return space < 0 || space > lineEnd ? lineEnd : space;
    };
    let start = next(lineStart) + 1;
    let end = next(start);
    let rank = Number.parseInt(bpeRanks.slice(start, end), 10);
    if (!Number.isSafeInteger(rank)) {
      throw new Error(`js-tiktoken/ranks/${encoding}: no first rank at offset ${lineStart}`);
    }
    for (start = end + 1; start < lineEnd; start = end + 1) {
      end = next(start);
      rankMap.set(Buffer.from(bpeRanks.slice(start, end), 'base64').join(','), rank++);
    }
    lineStart = lineEnd + 1;
  }
}

/**
 * A js-tiktoken encoder of `ranks` without the tables we never use. js-tiktoken's `Tiktoken`
 * constructor builds, besides the rank map `encode` reads, a rank -> bytes map for `decode` (one
 * Uint8Array per token) through a 200,000-key intermediate object: for o200k_base +150 MB RSS at
 * peak and 68 MB of heap kept. Here the encoder is constructed without ranks and its rank map (an
 * internal field, `rankMap`, absent from js-tiktoken's typings) is filled by {@link fillRankMap}:
 * +49 MB at peak, 21 MB kept, the same map; `decode` then returns "" (we never call it). Should a
 * js-tiktoken version lay its fields out otherwise, the library's own constructor is used (same
 * counts, more memory; `usage.spec.ts` fails on it).
 */
function compactEncoder(ranks: Ranks, encoding: string): Tiktoken {
  const encoder = new TiktokenClass({ ...ranks, bpe_ranks: '' });
  const rankMap = (encoder as unknown as { rankMap?: unknown }).rankMap;
  if (!(rankMap instanceof Map) || rankMap.size !== 0) return new TiktokenClass(ranks);
  fillRankMap(rankMap as Map<string, number>, ranks.bpe_ranks, encoding);
  return encoder;
}

const encoders = new Map<TiktokenEncoding, Tiktoken>();
/** Each encoding's pre-tokenizer (its `pat_str`, as js-tiktoken compiles it: flags `ug`). */
const pieceRegexes = new Map<TiktokenEncoding, RegExp>();

/**
 * The encoder of `encoding` (encode only, see {@link compactEncoder}), built once per process and
 * cached: the ranks (0.5-2.3 MB of text each) are loaded on first use only (at boot for
 * {@link BOOT_ENCODINGS}, see {@link warmEncoders}).
 */
export function encoderFor(encoding: TiktokenEncoding): Tiktoken {
  let encoder = encoders.get(encoding);
  if (!encoder) {
    const ranks = Ranks.parse(load(`js-tiktoken/ranks/${encoding}`));
    encoder = compactEncoder(ranks, encoding);
    encoders.set(encoding, encoder);
    pieceRegexes.set(encoding, new RegExp(ranks.pat_str, 'ug'));
  }
  return encoder;
}

/**
 * Longest piece of the pre-tokenizer's split (UTF-16 code units) that is byte-pair merged whole.
 * js-tiktoken merges each piece in time quadratic in its length: one run of 10,000 letters took
 * 16.7 s and 30,000 took 117 s on this machine, blocking the chat-log-service (the hostile-input e2e
 * timed out on such a turn). Ordinary words and numbers are far shorter; a longer piece (a run of one
 * character, a long URL or base64 blob) is counted in slices of this length: 0.19 ms each, so a
 * 100,000-character run takes about 0.6 s, and its count stays an estimate of the same size (a run of
 * `x` gives 4 tokens per 32 characters whole or sliced).
 */
export const MAX_PIECE_CHARS = 32;

/**
 * Number of tokens of `text` for `model` (tokens, no chat-format overhead: the text alone). Special
 * token strings such as `<|endoftext|>` in user text are counted as ordinary text, never rejected.
 * Pieces of the encoding's pre-tokenizer longer than {@link MAX_PIECE_CHARS} are counted in slices:
 * exact for text without such pieces, an estimate of the same size otherwise.
 */
export function countTokens(text: string, model: string | null | undefined): number {
  if (text.length === 0) return 0;
  const encoding = encodingNameFor(model);
  const start = performance.now();
  try {
    return countWith(encoding, text);
  } finally {
    timerOf(encoding).observe(secondsSince(start));
  }
}

/** `threadline_tokenizer_duration_seconds` of each encoding (prom-client's label lookup hashes per call). */
const timers = new Map<TiktokenEncoding, ReturnType<typeof tokenizerDuration.labels>>();
function timerOf(encoding: TiktokenEncoding) {
  let timer = timers.get(encoding);
  if (!timer) {
    timer = tokenizerDuration.labels(encoding);
    timers.set(encoding, timer);
  }
  return timer;
}

function countWith(encoding: TiktokenEncoding, text: string): number {
  const encoder = encoderFor(encoding);
  const pieces = pieceRegexes.get(encoding);
  if (!pieces || text.length <= MAX_PIECE_CHARS) return encoder.encode(text, [], []).length;
  const count = (part: string) => (part.length === 0 ? 0 : encoder.encode(part, [], []).length);
  let tokens = 0;
  // Consecutive short pieces are encoded together (the encoder splits them again the same way).
  let from = 0;
  for (const match of text.matchAll(pieces)) {
    const piece = match[0];
    if (piece.length <= MAX_PIECE_CHARS) continue;
    const at = match.index;
    tokens += count(text.slice(from, at));
    for (let start = 0; start < piece.length;) {
      let end = Math.min(start + MAX_PIECE_CHARS, piece.length);
      // Never split a surrogate pair.
      const last = piece.charCodeAt(end - 1);
      if (end < piece.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
      tokens += count(piece.slice(start, end));
      start = end;
    }
    from = at + piece.length;
  }
  return tokens + count(text.slice(from));
}

/**
 * The encodings built at boot: o200k_base (current OpenAI models, and the default for others) and
 * cl100k_base (gpt-4, gpt-4-turbo, gpt-3.5-turbo). The legacy p50k/r50k/gpt2 encodings of retired
 * completion models are built on first use.
 */
export const BOOT_ENCODINGS: readonly TiktokenEncoding[] = [DEFAULT_ENCODING, 'cl100k_base'];

/**
 * Builds the encoders of `encodings` now, so the first turn that needs an estimate does not pay for
 * it inside a request and its timeout. Called once at boot with {@link BOOT_ENCODINGS}: measured
 * 0.5 s and +49 MB peak RSS for o200k_base, 0.4 s and +19 MB more for cl100k_base (2 cores, Node 20).
 */
export function warmEncoders(encodings: readonly TiktokenEncoding[] = BOOT_ENCODINGS): void {
  for (const encoding of encodings) encoderFor(encoding);
}
