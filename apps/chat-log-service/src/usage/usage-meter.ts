import type { AgentResponseInput, TokenUsage, UsageSource } from '@threadline/contracts';
import { costUsd, type PriceTable, priceOf } from './price-table';
import { countTokens } from './tokenizer';

/** What metering adds to an agent response: its token usage, where the counts came from, its cost (USD). */
export interface Metered {
  usage: TokenUsage;
  usageSource: UsageSource;
  costUsd: number;
}

/** Measures an agent response of a turn (the decider's view of the usage module). */
export interface Meter {
  measure(response: AgentResponseInput, userInput: string): Metered;
}

/**
 * Usage and cost of agent responses (seed 000 `LogTokens`, done with a real tokenizer and price table).
 *
 * Usage: reported counts are kept. A missing `input_tokens` is the token count of the turn's
 * `user_input`, a missing `output_tokens` that of the response text, both with the encoding of the
 * response's `model` (see `tokenizer.ts`); missing `cached_tokens` and `reasoning_tokens` are 0 (not
 * knowable from text); a missing `total_tokens` is input + output. `usageSource` is `"estimated"` when
 * input or output tokens were counted here, else `"reported"`.
 *
 * Cost: a client-provided `cost_usd` is kept as is; otherwise {@link costUsd} of the model's price in
 * the table (0 for an unknown or absent model).
 */
export class UsageMeter implements Meter {
  constructor(readonly prices: PriceTable) {}

  measure(response: AgentResponseInput, userInput: string): Metered {
    const reported = response.usage ?? {};
    const model = response.model ?? null;
    const inputTokens = reported.input_tokens ?? countTokens(userInput, model);
    const outputTokens = reported.output_tokens ?? countTokens(response.response, model);
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
