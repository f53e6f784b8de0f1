import { describe, expect, it } from 'vitest';
import {
  builtinPrice,
  computeCostNanos,
  findPrice,
  MAX_STEP_COST_USD,
  matchModel,
  unpricedModels,
  usageByModel,
  NANOS_PER_USD,
  nanosToUsd,
  usdToNanos,
} from './cost.js';

describe('cost model', () => {
  it('prices uncached input, cached input and output separately', () => {
    const nanos = computeCostNanos(
      { input: 3, output: 15, cachedInput: 0.3 },
      {
        inputTokens: 1_000_000,
        cachedInputTokens: 400_000,
        outputTokens: 10_000,
        reasoningTokens: 5_000,
      },
    );
    // 600k * $3/M + 400k * $0.30/M + 10k * $15/M (reasoning is inside output)
    expect(nanosToUsd(nanos)).toBeCloseTo(1.8 + 0.12 + 0.15, 12);
  });

  it('charges cached tokens at the input price when the model has no cache price', () => {
    expect(
      computeCostNanos({ input: 10, output: 30 }, { inputTokens: 100, cachedInputTokens: 50 }),
    ).toBe(1_000_000);
  });

  it('never counts more cached tokens than input tokens', () => {
    expect(
      computeCostNanos(
        { input: 1, output: 1, cachedInput: 0 },
        { inputTokens: 10, cachedInputTokens: 99 },
      ),
    ).toBe(0);
  });

  it('sums money exactly in nano-USD', () => {
    let total = 0;
    for (let i = 0; i < 1000; i++) total += usdToNanos(0.001);
    expect(total).toBe(1_000_000_000);
    expect(nanosToUsd(total)).toBe(1);
  });

  it.each([
    ['gpt-4o-mini-2024-07-18', 0.15],
    ['openai/gpt-4o-mini', 0.15],
    ['gpt-4o-2024-08-06', 2.5],
    ['GPT-4.1-mini', 0.4],
    ['claude-sonnet-4-5-20250929', 3],
    ['claude-3-5-haiku-latest', 0.8],
    ['anthropic.claude-3-5-sonnet-20240620-v1:0', 3],
    ['models/gemini-2.5-flash', 0.3],
    ['gemini-2.5-flash-lite', 0.1],
    ['mistral-large-latest', 2],
    ['o3-mini-2025-01-31', 1.1],
    // variants dearer or cheaper than the family their name starts with
    ['o3-pro-2025-06-10', 20],
    ['o1-pro', 150],
    ['gpt-5-pro', 15],
    ['gpt-4.5-preview', 75],
    ['gpt-4o-realtime-preview-2024-12-17', 5],
    ['gpt-4o-mini-realtime-preview', 0.6],
    ['gpt-realtime-mini-2025-10-06', 0.6],
    ['gpt-4o-mini-tts', 0.6],
    ['o4-mini-deep-research', 2],
  ])('finds the built-in price of %s', (model, input) => {
    expect(builtinPrice(model)?.input).toBe(input);
  });

  it('names the models whose tokens a cost leaves out', () => {
    const s = (model: string | null, tokens: number, cost: number | null) => ({
      model,
      input_tokens: tokens,
      output_tokens: null,
      cost_usd: cost,
    });
    expect(
      unpricedModels([
        s('gpt-4o', 100, 0.001),
        s('llama-3.1-70b', 110_000, null),
        s(null, 5, null),
        s('llama-3.1-70b', 10, null),
        // no tokens, no cost: nothing left out
        s('mystery', 0, null),
      ]),
    ).toEqual(['(no model)', 'llama-3.1-70b']);
    expect(unpricedModels([s('gpt-4o', 100, 0.001)])).toEqual([]);
  });

  it('knows no price for an unknown model', () => {
    expect(builtinPrice('my-own-model')).toBeUndefined();
    expect(matchModel('gpt-4o-mini', ['gpt-4'])).toBeUndefined();
  });

  it('prefers a project override, matched the same way', () => {
    const overrides = new Map([['gpt-4o', { input: 1, output: 2 }]]);
    expect(findPrice('gpt-4o-2024-08-06', overrides)).toEqual({ input: 1, output: 2 });
    expect(findPrice('gpt-4o-mini', overrides)?.input).toBe(0.15);
  });
});

it('holds a computed cost to the most one step can cost', () => {
  const nanos = computeCostNanos({ input: 10_000, output: 10_000 }, { inputTokens: 1e12 });
  expect(nanos).toBe(MAX_STEP_COST_USD * NANOS_PER_USD);
});

describe('usageByModel', () => {
  const step = (
    type: string,
    model: string | null,
    input: number | null,
    output: number | null,
    cost: number | null,
  ) => ({ type, model, input_tokens: input, output_tokens: output, cost_usd: cost });
  it("sums a run's steps per model, most cost first, as the stats count them", () => {
    expect(
      usageByModel([
        step('llm', 'gpt-4o', 100, 10, 0.002),
        step('llm', 'gpt-4o', 50, 5, 0.001),
        step('llm', 'claude-sonnet-4', 10, 1, 0.01),
        step('evaluator', 'gpt-4o-mini', 7, 3, null),
        step('llm', null, 4, 0, null),
        step('tool', null, null, null, 0.5),
        step('tool', null, 0, 0, 0), // usage given as zero counts nowhere
        step('tool', null, null, null, null),
      ]),
    ).toEqual([
      { model: null, calls: 1, input_tokens: 4, output_tokens: 0, cost_usd: 0.5 },
      { model: 'claude-sonnet-4', calls: 1, input_tokens: 10, output_tokens: 1, cost_usd: 0.01 },
      { model: 'gpt-4o', calls: 2, input_tokens: 150, output_tokens: 15, cost_usd: 0.003 },
      { model: 'gpt-4o-mini', calls: 1, input_tokens: 7, output_tokens: 3, cost_usd: 0 },
    ]);
  });
});
