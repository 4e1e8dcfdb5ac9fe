import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@threadline/platform';
import { costUsd, loadPriceTable, type ModelPrice, priceOf, SHIPPED_PRICE_TABLE } from './price-table';
import { countTokens, encoderFor, encodingNameFor } from './tokenizer';
import { COUNTED_CHARS_PER_REQUEST, TokenBudget, UsageMeter } from './usage-meter';

// js-tiktoken's own encoder and its internal tables, as reference (required at run time, see tokenizer.ts).
interface Internals {
  rankMap: Map<string, number>;
  textMap: Map<number, Uint8Array>;
}
const { Tiktoken } = createRequire(__filename)('js-tiktoken/lite') as {
  Tiktoken: new (ranks: unknown) => Internals;
};

const price = (input: number, cached: number, output: number): ModelPrice => ({
  input,
  cached_input: cached,
  output,
  source: 'https://example.com/pricing',
  read_at: '2026-11-21',
});

describe('tokenizer', () => {
  it('encodes known strings exactly as OpenAI’s tiktoken does', () => {
    // OpenAI Cookbook, "How to count tokens with tiktoken": cl100k_base encodes "tiktoken is great!" as
    // [83, 1609, 5963, 374, 2294, 0]; o200k_base encodes "hello world" as [24912, 2375].
    expect(encoderFor('cl100k_base').encode('tiktoken is great!')).toEqual([83, 1609, 5963, 374, 2294, 0]);
    expect(encoderFor('o200k_base').encode('hello world')).toEqual([24912, 2375]);
    expect(countTokens('tiktoken is great!', 'gpt-4')).toBe(6);
    expect(countTokens('', 'gpt-4o')).toBe(0);
  });

  it('picks the encoding of the model (o200k_base for gpt-4o/4.1/o-series and unknown, cl100k_base for gpt-3.5/4)', () => {
    expect(encodingNameFor('gpt-4o')).toBe('o200k_base');
    expect(encodingNameFor('gpt-4o-mini-2024-07-18')).toBe('o200k_base');
    expect(encodingNameFor('gpt-4.1-mini')).toBe('o200k_base');
    expect(encodingNameFor('gpt-4.1-2099-01-01')).toBe('o200k_base'); // a variant js-tiktoken does not list
    expect(encodingNameFor('o3-mini')).toBe('o200k_base');
    expect(encodingNameFor('GPT-3.5-Turbo')).toBe('cl100k_base');
    expect(encodingNameFor('gpt-3.5-turbo-9999')).toBe('cl100k_base');
    expect(encodingNameFor('gpt-4')).toBe('cl100k_base');
    expect(encodingNameFor('gpt-4-turbo-2024-04-09')).toBe('cl100k_base');
    expect(encodingNameFor('text-davinci-003')).toBe('p50k_base');
    expect(encodingNameFor('claude-3-5-sonnet-20241022')).toBe('o200k_base');
    expect(encodingNameFor(null)).toBe('o200k_base');
    // The encodings really differ: Hindi text is 5 tokens in o200k_base, 13 in cl100k_base.
    expect(countTokens('नमस्ते दुनिया', 'gpt-4o')).toBe(5);
    expect(countTokens('नमस्ते दुनिया', 'gpt-3.5-turbo')).toBe(13);
  });

  it.each(['o200k_base', 'cl100k_base'] as const)(
    'builds the %s rank map exactly as js-tiktoken does, without its decode table',
    (encoding) => {
      const reference = new Tiktoken(createRequire(__filename)(`js-tiktoken/ranks/${encoding}`));
      const ours = encoderFor(encoding) as unknown as Internals;
      expect(ours.textMap.size).toBe(0);
      expect(ours.rankMap.size).toBe(reference.rankMap.size);
      let differing = 0;
      for (const [bytes, rank] of reference.rankMap) if (ours.rankMap.get(bytes) !== rank) differing++;
      expect(differing).toBe(0);
    },
  );

  it('counts special-token text as ordinary text instead of throwing', () => {
    expect(countTokens('<|endoftext|>', 'gpt-4o')).toBe(7);
  });

  it('counts ordinary text exactly as the whole-text encoding does', () => {
    const prose =
      'The quick brown fox jumps over the lazy dog, twice: 1234567 times!\n\tIndented — ünïcødé 🙂 https://example.com/a?b=c ';
    const text = prose.repeat(40);
    for (const model of ['gpt-4o', 'gpt-4']) {
      expect(countTokens(text, model)).toBe(encoderFor(encodingNameFor(model)).encode(text).length);
    }
  });

  it('counts a long run of one letter in slices (whole, 20,000 letters take about a minute)', () => {
    // js-tiktoken merges one piece in quadratic time (10,000 letters took 16.7 s, 30,000 took 117 s):
    // unsliced, this test overruns its timeout. Sliced, a run is counted at the rate a short one has
    // (4 tokens per 32 x).
    expect(countTokens('x'.repeat(32), 'gpt-4o')).toBe(4);
    expect(countTokens('x'.repeat(20_000), 'gpt-4o')).toBe(2_500);
    // Around such a run, ordinary text still counts; pairs of surrogates are never split.
    const emoji = '🙂'.repeat(5_000);
    const around = countTokens(`hello ${'x'.repeat(50_000)} world`, 'gpt-4o');
    expect(around).toBeGreaterThanOrEqual(6_250);
    expect(around).toBeLessThanOrEqual(6_260);
    expect(countTokens(emoji, 'gpt-4o')).toBeGreaterThan(0);
    expect(countTokens(`a${emoji}`, 'gpt-4o')).toBeLessThanOrEqual(countTokens(emoji, 'gpt-4o') + 2);
  });
});

describe('price table', () => {
  it('ships prices for the listed models, each with its source and the date it was read', () => {
    for (const model of [
      'gpt-4o',
      'gpt-4o-mini',
      'gpt-4.1',
      'gpt-4.1-mini',
      'o3-mini',
      'gpt-3.5-turbo',
      'claude-3-5-sonnet',
      'claude-3-5-haiku',
      'gemini-1.5-pro',
      'gemini-1.5-flash',
    ]) {
      const p = SHIPPED_PRICE_TABLE.models[model];
      expect(p).toBeDefined();
      expect(p?.source).toMatch(/^https:\/\//);
      expect(p?.read_at).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('matches exact names, then the longest prefix before a dash, case-insensitively', () => {
    const t = SHIPPED_PRICE_TABLE;
    expect(priceOf(t, 'gpt-4o')).toBe(t.models['gpt-4o']);
    expect(priceOf(t, 'gpt-4o-2024-08-06')).toBe(t.models['gpt-4o']);
    expect(priceOf(t, 'gpt-4o-mini-2024-07-18')).toBe(t.models['gpt-4o-mini']);
    expect(priceOf(t, 'Claude-3-5-Sonnet-20241022')).toBe(t.models['claude-3-5-sonnet']);
    expect(priceOf(t, 'gpt-4oo')).toBeUndefined();
    expect(priceOf(t, 'llama-3-70b')).toBeUndefined();
    expect(priceOf(t, null)).toBeUndefined();
  });

  it('computes (input - cached) * input + cached * cached_input + output * output, per million tokens', () => {
    const p = price(2.5, 1.25, 10); // gpt-4o's rates
    // 1000 uncached input, 0 cached, 500 output: 1000*2.5/1e6 + 500*10/1e6 = 0.0025 + 0.005
    expect(costUsd(p, { input: 1000, cached: 0, output: 500 })).toBe(0.0075);
    // 1000 input of which 400 cached: 600*2.5/1e6 + 400*1.25/1e6 + 500*10/1e6 = 0.0015 + 0.0005 + 0.005
    expect(costUsd(p, { input: 1000, cached: 400, output: 500 })).toBe(0.007);
    // cached beyond input is capped at input
    expect(costUsd(p, { input: 100, cached: 1000, output: 0 })).toBe(0.000125);
    // one million of each: the table's numbers themselves
    expect(costUsd(price(0.15, 0.075, 0.6), { input: 1_000_000, cached: 0, output: 1_000_000 })).toBe(0.75);
    // unknown model: 0
    expect(costUsd(undefined, { input: 1000, cached: 0, output: 1000 })).toBe(0);
    // float noise is rounded away (0.1 + 0.2 style)
    expect(costUsd(price(0.1, 0.1, 0.2), { input: 1_000_000, cached: 0, output: 1_000_000 })).toBe(0.3);
  });

  it('loads an override file of the same shape, and refuses a bad one with a ConfigError naming PRICE_TABLE_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prices-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ models: { 'my-model': price(1, 0.5, 2) } }));
    const table = loadPriceTable(good);
    expect(Object.keys(table.models)).toEqual(['my-model']);
    expect(loadPriceTable(undefined)).toBe(SHIPPED_PRICE_TABLE);

    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ models: { 'my-model': { input: -1, output: 'x', source: 'nope' } } }),
    );
    expect(() => loadPriceTable(bad)).toThrow(ConfigError);
    try {
      loadPriceTable(bad);
    } catch (error) {
      const problems = (error as ConfigError).problems;
      expect(problems.every((p) => p.startsWith('PRICE_TABLE_FILE'))).toBe(true);
      expect(problems.join('\n')).toMatch(/models\.my-model\.input/);
      expect(problems.join('\n')).toMatch(/models\.my-model\.cached_input/);
    }
    const notJson = join(dir, 'broken.json');
    writeFileSync(notJson, '{ not json');
    expect(() => loadPriceTable(notJson)).toThrow(/PRICE_TABLE_FILE: cannot read/);
    expect(() => loadPriceTable(join(dir, 'missing.json'))).toThrow(ConfigError);
  });
});

describe('UsageMeter', () => {
  const meter = new UsageMeter(SHIPPED_PRICE_TABLE);
  const userInput = 'What were the total orders for CFC1 in the last week?'; // 14 tokens in o200k_base
  const response = 'hello world'; // 2 tokens in o200k_base

  it('estimates missing input and output tokens with the model’s tokenizer and prices them', () => {
    const m = meter.measure({ agent_name: 'SummAgent', response, model: 'gpt-4o' }, userInput);
    expect(m).toEqual({
      usage: { inputTokens: 14, outputTokens: 2, cachedTokens: 0, reasoningTokens: 0, totalTokens: 16 },
      usageSource: 'estimated',
      costUsd: (14 * 2.5 + 2 * 10) / 1e6,
    });
  });

  it('keeps reported usage, marks it reported, and prices cached and reasoning tokens per the formula', () => {
    const m = meter.measure(
      {
        agent_name: 'GenAgent',
        response,
        model: 'o3-mini-2025-01-31',
        usage: { input_tokens: 2000, output_tokens: 800, cached_tokens: 1000, reasoning_tokens: 600 },
      },
      userInput,
    );
    expect(m.usageSource).toBe('reported');
    expect(m.usage).toEqual({
      inputTokens: 2000,
      outputTokens: 800,
      cachedTokens: 1000,
      reasoningTokens: 600,
      totalTokens: 2800,
    });
    // (2000 - 1000) * 1.10 + 1000 * 0.55 + 800 * 4.40, per million; reasoning is inside the 800 output tokens
    expect(m.costUsd).toBe(0.00517); // 1100 + 550 + 3520 = 5170 micro-USD
  });

  it('estimates only what is missing, keeps a given total and a client cost, and prices unknown models at 0', () => {
    const partial = meter.measure(
      { agent_name: 'a', response, model: 'gpt-4o-mini', usage: { input_tokens: 100, total_tokens: 999 } },
      userInput,
    );
    expect(partial.usage).toMatchObject({ inputTokens: 100, outputTokens: 2, totalTokens: 999 });
    expect(partial.usageSource).toBe('estimated');

    const clientCost = meter.measure(
      { agent_name: 'a', response, model: 'gpt-4o', cost_usd: 0.42 },
      userInput,
    );
    expect(clientCost.costUsd).toBe(0.42);

    const unknown = meter.measure({ agent_name: 'a', response, model: 'my-local-llama' }, userInput);
    expect(unknown.costUsd).toBe(0);
    expect(unknown.usage.inputTokens).toBe(14); // still counted (o200k_base)
  });
});

describe('UsageMeter.measureAll: the token budget of one request', () => {
  const meter = new UsageMeter(SHIPPED_PRICE_TABLE);
  const sentence = 'The quick brown fox jumps over the lazy dog while agents discuss SQL queries. ';
  const text = (chars: number) => sentence.repeat(Math.ceil(chars / sentence.length)).slice(0, chars);

  it('counts a turn’s user_input once for all its responses, and tokenizes at most the budget', () => {
    const userInput = text(100_000);
    const responses = Array.from({ length: 50 }, (_, i) => ({
      agent_name: `a${i}`,
      response: text(2_000 + i),
      model: 'gpt-4o',
    }));
    const budget = new TokenBudget();
    const metered = meter.measureAll(responses, userInput, budget);
    expect(budget.charactersCounted).toBe(COUNTED_CHARS_PER_REQUEST);
    expect(new Set(metered.map((m) => m.usage.inputTokens)).size).toBe(1);
    // Estimates of the same size as the exact counts (this text: ~4.7 characters per token).
    const exactInput = countTokens(userInput, 'gpt-4o');
    expect(Math.abs(metered[0]!.usage.inputTokens - exactInput) / exactInput).toBeLessThan(0.02);
    const exactLast = countTokens(responses[49]!.response, 'gpt-4o');
    expect(Math.abs(metered[49]!.usage.outputTokens - exactLast) / exactLast).toBeLessThan(0.02);
    expect(metered.every((m) => m.usageSource === 'estimated')).toBe(true);
  });

  it('counts a text once per encoding, however often it is asked', () => {
    const budget = new TokenBudget();
    const t = text(5_000);
    const first = budget.count(t, 'gpt-4o');
    expect(budget.count(t, 'gpt-4o-mini')).toBe(first); // same encoding (o200k_base)
    expect(budget.charactersCounted).toBe(5_000);
    budget.count(t, 'gpt-4'); // cl100k_base: counted again
    expect(budget.charactersCounted).toBe(10_000);
  });

  it('counts exactly within the budget, and never splits a surrogate pair at its end', () => {
    const small = meter.measureAll(
      [{ agent_name: 'a', response: 'hello world', model: 'gpt-4o' }],
      'hi there',
    );
    expect(small[0]!.usage).toMatchObject({
      inputTokens: countTokens('hi there', 'gpt-4o'),
      outputTokens: 2,
    });
    const emoji = '🙂'.repeat(COUNTED_CHARS_PER_REQUEST); // 2 code units each: the limit falls inside a pair
    const [m] = meter.measureAll([{ agent_name: 'a', response: 'ok', model: 'gpt-4o' }], emoji);
    expect(m!.usage.inputTokens).toBeGreaterThan(0);
    expect(m!.usage.outputTokens).toBeGreaterThan(0); // past the budget: the request's own ratio
  });
});
