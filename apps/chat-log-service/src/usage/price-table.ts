import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, formatIssues } from '@threadline/platform';
// Imported (not read from disk) so that `tsc` copies prices.json next to the compiled file.
import shippedPrices from './prices.json';

/** USD per 1,000,000 tokens; at most $100,000 per million so a typo like 2500000 is refused. */
const UsdPerMillion = z.number().min(0).max(100_000);

/**
 * One model's prices, USD per million tokens: `input` (uncached prompt tokens), `cached_input`
 * (prompt-cache hits), `output` (completion tokens, reasoning included). `source` is the provider's
 * pricing page the rates were read from, `read_at` the day they were read (YYYY-MM-DD).
 */
export const ModelPrice = z.object({
  input: UsdPerMillion,
  cached_input: UsdPerMillion,
  output: UsdPerMillion,
  source: z.url(),
  read_at: z.iso.date(),
  note: z.string().max(1000).optional(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;

/**
 * A price table: `{ models: { "<model or prefix>": ModelPrice } }` (the shape of `prices.json` and of
 * a `PRICE_TABLE_FILE`). Keys are matched case-insensitively; see {@link priceOf}.
 */
export const PriceTable = z.object({
  $comment: z.string().optional(),
  models: z.record(z.string().min(1).max(128), ModelPrice),
});
export type PriceTable = z.infer<typeof PriceTable>;

/** The table shipped with the service (`prices.json`), parsed; a broken file fails at import. */
export const SHIPPED_PRICE_TABLE: PriceTable = PriceTable.parse(shippedPrices);

/**
 * The price table in effect: the JSON file at `file` (env `PRICE_TABLE_FILE`) when given, else the
 * shipped one. Throws `ConfigError` naming `PRICE_TABLE_FILE` when the file cannot be read, is not
 * JSON, or does not match {@link PriceTable} (the service then refuses to boot).
 */
export function loadPriceTable(file: string | undefined): PriceTable {
  if (file === undefined) return SHIPPED_PRICE_TABLE;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError([
      `PRICE_TABLE_FILE: cannot read ${file} as JSON: ${error instanceof Error ? error.message : String(error)}`,
    ]);
  }
  const parsed = PriceTable.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(
      formatIssues(parsed.error.issues).map(
        (i) => `PRICE_TABLE_FILE (${file}): ${i.path || '(root)'}: ${i.message}`,
      ),
    );
  }
  return parsed.data;
}

/**
 * The price of `model`: the entry whose key equals the model name, else the longest key the name
 * starts with followed by `-` (dated variants: `gpt-4o-2024-08-06` -> `gpt-4o`, never `gpt-4o-mini-x`
 * -> `gpt-4o` while `gpt-4o-mini` exists). Case-insensitive. Undefined for an unknown or absent model.
 */
export function priceOf(table: PriceTable, model: string | null | undefined): ModelPrice | undefined {
  if (!model) return undefined;
  const name = model.toLowerCase();
  let best: { key: string; price: ModelPrice } | undefined;
  for (const [key, price] of Object.entries(table.models)) {
    const k = key.toLowerCase();
    if (name === k) return price;
    if (name.startsWith(`${k}-`) && (!best || k.length > best.key.length)) best = { key: k, price };
  }
  return best?.price;
}

/** Token counts a cost is computed from (tokens); `reasoning` is part of `output`. */
export interface BillableTokens {
  input: number;
  cached: number;
  output: number;
}

/** Costs are rounded to 1e-10 USD so float noise (0.0025000000000000005) never reaches the ledger. */
export const roundUsd = (usd: number): number => Math.round(usd * 1e10) / 1e10;

/**
 * Cost in USD of one model call:
 *
 *   cost = (input - cached) * input_price / 1e6 + cached * cached_price / 1e6 + output * output_price / 1e6
 *
 * with prices in USD per million tokens. `cached` is the part of `input` served from the provider's
 * prompt cache (OpenAI `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`); a
 * reported `cached` above `input` is capped at `input`. Reasoning tokens are not added: they are
 * already part of `output` (OpenAI's accounting, `completion_tokens_details.reasoning_tokens`).
 * An unknown model (no price) costs 0: the ledger cannot know what it costs, and says so by 0 rather
 * than by guessing. Rounded with {@link roundUsd}.
 */
export function costUsd(price: ModelPrice | undefined, tokens: BillableTokens): number {
  if (!price) return 0;
  const cached = Math.min(tokens.cached, tokens.input);
  return roundUsd(
    ((tokens.input - cached) * price.input + cached * price.cached_input + tokens.output * price.output) /
      1e6,
  );
}
