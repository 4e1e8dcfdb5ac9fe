import type { AgentResponseInput, TokenUsage, UsageSource } from '@threadline/contracts';
import { costUsd, type PriceTable, priceOf } from './price-table';
import { countTokens, encodingNameFor } from './tokenizer';

/** What metering adds to an agent response: its token usage, where the counts came from, its cost (USD). */
export interface Metered {
  usage: TokenUsage;
  usageSource: UsageSource;
  costUsd: number;
}

/** Measures agent responses of a turn (the decider's view of the usage module). */
export interface Meter {
  /** One response (one request: its own {@link TokenBudget}). */
  measure(response: AgentResponseInput, userInput: string): Metered;
  /** The responses of one request, in order, sharing one {@link TokenBudget}. */
  measureAll(responses: readonly AgentResponseInput[], userInput: string): Metered[];
}

/** Characters one request may have tokenized, over all its texts (see {@link TokenBudget}). */
export const COUNTED_CHARS_PER_REQUEST = 16_384;

/** Characters per token assumed for text past the budget when nothing of the request was counted. */
export const FALLBACK_CHARS_PER_TOKEN = 4;

/**
 * Token counting of one request, bounded (tokenizing is CPU time inside the request's transaction, and
 * some text costs far more than other: see the bench's `tokens` measurement). The rule:
 * - each distinct text is counted once per encoding (a turn's `user_input` is the input of each of its
 *   responses: counted once, not once per response);
 * - texts are counted exactly, in the order asked, until {@link COUNTED_CHARS_PER_REQUEST} characters
 *   (UTF-16 code units) of the request were tokenized; the text that crosses the limit is counted on its
 *   first characters up to it and scaled to its length (tokens per character of that part);
 * - a text after the limit is estimated at the request's own ratio so far (tokens per character of all
 *   it counted), or one token per {@link FALLBACK_CHARS_PER_TOKEN} characters when it counted none.
 * Every count is marked `usage_source: "estimated"` anyway; the scaled ones are of the same size.
 */
export class TokenBudget {
  private remaining = COUNTED_CHARS_PER_REQUEST;
  private countedChars = 0;
  private countedTokens = 0;
  private readonly counts = new Map<string, Map<string, number>>();

  /** Characters tokenized so far (at most {@link COUNTED_CHARS_PER_REQUEST}). */
  get charactersCounted(): number {
    return this.countedChars;
  }

  /** Tokens of `text` for `model` under the rule above. */
  count(text: string, model: string | null): number {
    const encoding = encodingNameFor(model);
    let known = this.counts.get(encoding);
    if (!known) this.counts.set(encoding, (known = new Map()));
    const cached = known.get(text);
    if (cached !== undefined) return cached;
    const tokens = this.countNew(text, model);
    known.set(text, tokens);
    return tokens;
  }

  private countNew(text: string, model: string | null): number {
    if (text.length === 0) return 0;
    if (this.remaining === 0) {
      const perChar =
        this.countedChars > 0 ? this.countedTokens / this.countedChars : 1 / FALLBACK_CHARS_PER_TOKEN;
      return Math.round(text.length * perChar);
    }
    let end = Math.min(text.length, this.remaining);
    // Never cut a surrogate pair.
    const last = text.charCodeAt(end - 1);
    if (end < text.length && end > 1 && last >= 0xd800 && last <= 0xdbff) end -= 1;
    const part = end === text.length ? text : text.slice(0, end);
    const tokens = countTokens(part, model);
    this.remaining = Math.max(0, this.remaining - end);
    this.countedChars += end;
    this.countedTokens += tokens;
    return end === text.length ? tokens : Math.round((tokens * text.length) / end);
  }
}

/**
 * Usage and cost of agent responses (seed 000 `LogTokens`, done with a real tokenizer and price table).
 *
 * Usage: reported counts are kept. A missing `input_tokens` is the token count of the turn's
 * `user_input`, a missing `output_tokens` that of the response text, both with the encoding of the
 * response's `model` (see `tokenizer.ts`), counted within the request's {@link TokenBudget}; missing `cached_tokens` and `reasoning_tokens` are 0 (not
 * knowable from text); a missing `total_tokens` is input + output. `usageSource` is `"estimated"` when
 * input or output tokens were counted here, else `"reported"`.
 *
 * Cost: a client-provided `cost_usd` is kept as is; otherwise {@link costUsd} of the model's price in
 * the table (0 for an unknown or absent model).
 */
export class UsageMeter implements Meter {
  constructor(readonly prices: PriceTable) {}

  measure(response: AgentResponseInput, userInput: string): Metered {
    return this.measureWith(response, userInput, new TokenBudget());
  }

  /** `budget`: the request's (a new one by default). */
  measureAll(
    responses: readonly AgentResponseInput[],
    userInput: string,
    budget: TokenBudget = new TokenBudget(),
  ): Metered[] {
    return responses.map((response) => this.measureWith(response, userInput, budget));
  }

  private measureWith(response: AgentResponseInput, userInput: string, budget: TokenBudget): Metered {
    const reported = response.usage ?? {};
    const model = response.model ?? null;
    const inputTokens = reported.input_tokens ?? budget.count(userInput, model);
    const outputTokens = reported.output_tokens ?? budget.count(response.response, model);
    const cachedTokens = reported.cached_tokens ?? 0;
    const usage: TokenUsage = {
      inputTokens,
      outputTokens,
      cachedTokens,
      reasoningTokens: reported.reasoning_tokens ?? 0,
      totalTokens: reported.total_tokens ?? inputTokens + outputTokens,
    };
    const estimated = reported.input_tokens === undefined || reported.output_tokens === undefined;
    return {
      usage,
      usageSource: estimated ? 'estimated' : 'reported',
      costUsd:
        response.cost_usd ??
        costUsd(priceOf(this.prices, model), {
          input: inputTokens,
          cached: cachedTokens,
          output: outputTokens,
        }),
    };
  }
}
