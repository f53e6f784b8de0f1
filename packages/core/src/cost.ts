/**
 * The cost model. Money is kept as integer nano-USD (1 USD = 1e9) so sums are exact;
 * prices are USD per million tokens.
 *
 * Token convention (OpenAI's): `input_tokens` includes `cached_input_tokens`, and
 * `output_tokens` includes `reasoning_tokens`. Reasoning tokens are billed at the output
 * rate by every provider in the table, so they need no price of their own.
 */

export interface Price {
  /** USD per million input tokens. */
  input: number;
  /** USD per million output tokens (reasoning tokens included). */
  output: number;
  /** USD per million input tokens read from the prompt cache; the input price when absent. */
  cachedInput?: number | null;
}

export interface Usage {
  inputTokens?: number | null;
  outputTokens?: number | null;
  cachedInputTokens?: number | null;
  reasoningTokens?: number | null;
}

export const NANOS_PER_USD = 1_000_000_000;

/** The most one step can cost, given or computed: far above any real call, far below overflow. */
export const MAX_STEP_COST_USD = 1_000_000;

/**
 * Whether a run's cost is unknown rather than zero: it used tokens and has no cost, so a model
 * it called has no price (its steps' `cost_usd` is null and the run's sum counts them as 0).
 */
export function costUnknown(run: { cost_usd: number; total_tokens: number }): boolean {
  return run.cost_usd === 0 && run.total_tokens > 0;
}

/** What `unpricedModels` reads of a step. */
export interface PricedStep {
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
}

/**
 * The models of `steps` that used tokens at no known cost, so a run's cost leaves them out:
 * a run calling a priced and an unpriced model has a cost that is only part of it. Sorted,
 * each once; a step without a model counts as `(no model)`.
 * @example unpricedModels(run.steps) // ['llama-3.1-70b-instruct']
 */
export function unpricedModels(steps: readonly PricedStep[]): string[] {
  const models = new Set<string>();
  for (const s of steps)
    if (s.cost_usd === null && (s.input_tokens ?? 0) + (s.output_tokens ?? 0) > 0)
      models.add(s.model ?? '(no model)');
  return [...models].sort();
}

/**
 * How a step counts in its run's usage by model (the stats' `by_model`, `usageByModel`): as
 * an LLM call (1) when it is of type `llm` or names a model, as usage alone (0) when it has
 * tokens or a cost above 0 (`cost` in any unit), not at all (undefined) otherwise. Every step
 * that counts adds something, so a model whose sums fall to zero has no step left.
 */
export function modelCall(
  step: {
    type: string;
    model: string | null;
    input_tokens: number | null;
    output_tokens: number | null;
  },
  cost: number | null,
): 0 | 1 | undefined {
  if (step.type === 'llm' || step.model !== null) return 1;
  return step.input_tokens || step.output_tokens || cost ? 0 : undefined;
}

/** What `usageByModel` reads of a step. */
export interface UsageStep extends PricedStep {
  type: string;
}

/** One model's part of a run's usage (`usageByModel`). */
export interface ModelUse {
  /** null: steps that name no model. */
  model: string | null;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

/**
 * A run's usage per model, from its steps, by the rule of the stats' `by_model`
 * (`modelCall`); most cost first, then most tokens.
 * @example usageByModel(run.steps) // [{ model: 'gpt-4o', calls: 3, ... }, ...]
 */
export function usageByModel(steps: readonly UsageStep[]): ModelUse[] {
  const by = new Map<string | null, ModelUse>();
  for (const s of steps) {
    const call = modelCall(s, s.cost_usd);
    if (call === undefined) continue;
    const use = by.get(s.model) ?? {
      model: s.model,
      calls: 0,
      input_tokens: 0,
      output_tokens: 0,
      cost_usd: 0,
    };
    use.calls += call;
    use.input_tokens += s.input_tokens ?? 0;
    use.output_tokens += s.output_tokens ?? 0;
    use.cost_usd += s.cost_usd ?? 0;
    by.set(s.model, use);
  }
  const tokens = (u: ModelUse) => u.input_tokens + u.output_tokens;
  return [...by.values()].sort(
    (a, b) =>
      b.cost_usd - a.cost_usd ||
      tokens(b) - tokens(a) ||
      (a.model === null ? 1 : b.model === null ? -1 : a.model < b.model ? -1 : 1),
  );
}

export function usdToNanos(usd: number): number {
  return Math.round(usd * NANOS_PER_USD);
}

export function nanosToUsd(nanos: number): number {
  return nanos / NANOS_PER_USD;
}

/**
 * Cost of one call in nano-USD.
 * @example computeCostNanos({ input: 2.5, output: 10 }, { inputTokens: 1000, outputTokens: 100 }) // 3_500_000
 */
export function computeCostNanos(price: Price, usage: Usage): number {
  const input = usage.inputTokens ?? 0;
  const cached = Math.min(usage.cachedInputTokens ?? 0, input);
  const output = usage.outputTokens ?? 0;
  const cachedPrice = price.cachedInput ?? price.input;
  // tokens * USD/Mtok * 1e9 nano/USD / 1e6 tok/Mtok
  const nanos = Math.round(
    ((input - cached) * price.input + cached * cachedPrice + output * price.output) * 1000,
  );
  return Math.min(nanos, MAX_STEP_COST_USD * NANOS_PER_USD);
}

/** Built-in list prices (USD per million tokens), keyed by model family name. */
export const BUILTIN_PRICES: Readonly<Record<string, Price>> = {
  // OpenAI
  'gpt-5': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cachedInput: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cachedInput: 0.005 },
  'gpt-4.1': { input: 2, output: 8, cachedInput: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cachedInput: 0.1 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  'gpt-4o': { input: 2.5, output: 10, cachedInput: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  o1: { input: 15, output: 60, cachedInput: 7.5 },
  'o1-mini': { input: 1.1, output: 4.4, cachedInput: 0.55 },
  o3: { input: 2, output: 8, cachedInput: 0.5 },
  'o3-mini': { input: 1.1, output: 4.4, cachedInput: 0.55 },
  'o4-mini': { input: 1.1, output: 4.4, cachedInput: 0.275 },
  // variants priced apart from their family (the family's name would match them)
  'gpt-5-pro': { input: 15, output: 120 },
  'gpt-4-5': { input: 75, output: 150, cachedInput: 37.5 },
  'o1-pro': { input: 150, output: 600 },
  'o3-pro': { input: 20, output: 80 },
  'o3-deep-research': { input: 10, output: 40, cachedInput: 2.5 },
  'o4-mini-deep-research': { input: 2, output: 8, cachedInput: 0.5 },
  // realtime models' text tokens
  'gpt-realtime': { input: 4, output: 16, cachedInput: 0.4 },
  'gpt-realtime-mini': { input: 0.6, output: 2.4, cachedInput: 0.06 },
  'gpt-4o-realtime': { input: 5, output: 20, cachedInput: 2.5 },
  'gpt-4o-mini-realtime': { input: 0.6, output: 2.4, cachedInput: 0.3 },
  // speech: text in, audio tokens out
  'gpt-4o-mini-tts': { input: 0.6, output: 12 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  'text-embedding-ada-002': { input: 0.1, output: 0 },
  // Anthropic: prompt-cache reads are a tenth of the input price
  'claude-opus-4': { input: 15, output: 75, cachedInput: 1.5 },
  'claude-opus-4-1': { input: 15, output: 75, cachedInput: 1.5 },
  'claude-opus-4-5': { input: 5, output: 25, cachedInput: 0.5 },
  'claude-sonnet-4': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-sonnet-4-5': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-haiku-4-5': { input: 1, output: 5, cachedInput: 0.1 },
  'claude-3-7-sonnet': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-3-5-sonnet': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-3-5-haiku': { input: 0.8, output: 4, cachedInput: 0.08 },
  'claude-3-opus': { input: 15, output: 75, cachedInput: 1.5 },
  'claude-3-sonnet': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-3-haiku': { input: 0.25, output: 1.25, cachedInput: 0.03 },
  // Google
  'gemini-2.5-pro': { input: 1.25, output: 10, cachedInput: 0.31 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cachedInput: 0.075 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  'gemini-2.0-flash-lite': { input: 0.075, output: 0.3 },
  'gemini-1.5-pro': { input: 1.25, output: 5, cachedInput: 0.3125 },
  'gemini-1.5-flash': { input: 0.075, output: 0.3, cachedInput: 0.01875 },
  'text-embedding-004': { input: 0, output: 0 },
  // Mistral
  'mistral-large': { input: 2, output: 6 },
  'mistral-medium': { input: 0.4, output: 2 },
  'mistral-small': { input: 0.1, output: 0.3 },
  codestral: { input: 0.3, output: 0.9 },
  'open-mistral-nemo': { input: 0.15, output: 0.15 },
  'ministral-8b': { input: 0.1, output: 0.1 },
  'ministral-3b': { input: 0.04, output: 0.04 },
  'mistral-embed': { input: 0.1, output: 0 },
  // Others
  'deepseek-chat': { input: 0.27, output: 1.1, cachedInput: 0.07 },
  'deepseek-reasoner': { input: 0.55, output: 2.19, cachedInput: 0.14 },
  'grok-4': { input: 3, output: 15, cachedInput: 0.75 },
  'grok-3': { input: 3, output: 15, cachedInput: 0.75 },
  'grok-3-mini': { input: 0.3, output: 0.5, cachedInput: 0.075 },
  'command-r-plus': { input: 2.5, output: 10 },
  'command-r': { input: 0.15, output: 0.6 },
  'llama-3.3-70b': { input: 0.59, output: 0.79 },
  'llama-3.1-8b': { input: 0.05, output: 0.08 },
};

/** Lower-case, dots as dashes: `Claude-Sonnet-4.5` and `claude-sonnet-4-5` are one model. */
export function normalizeModelName(model: string): string {
  return model.trim().toLowerCase().replace(/\./g, '-');
}

/** A price table keyed by model name, matched the way `findPrice` matches. */
export type PriceTable = ReadonlyMap<string, Price>;

function buildTable(entries: Iterable<[string, Price]>): Map<string, Price> {
  const table = new Map<string, Price>();
  for (const [name, price] of entries) table.set(normalizeModelName(name), price);
  return table;
}

const builtinTable = buildTable(Object.entries(BUILTIN_PRICES));
const builtinCache = new Map<string, string | null>();

/**
 * The table key that names `model`: the longest key found in the model name on token
 * boundaries, so `openai/gpt-4o-mini-2024-07-18`, `anthropic.claude-3-5-sonnet-20240620-v1:0`
 * and `models/gemini-2.5-flash` all resolve.
 */
export function matchModel(model: string, keys: Iterable<string>): string | undefined {
  const name = normalizeModelName(model);
  let best: string | undefined;
  for (const key of keys) {
    if (best !== undefined && key.length <= best.length) continue;
    let at = name.indexOf(key);
    while (at !== -1) {
      const after = name[at + key.length] ?? '';
      const before = at === 0 ? '' : (name[at - 1] ?? '');
      if ((before === '' || /[/:_\s-]/.test(before)) && (after === '' || /[-:@_\s]/.test(after))) {
        best = key;
        break;
      }
      at = name.indexOf(key, at + 1);
    }
  }
  return best;
}

/** The built-in price for a model, if the table knows it. */
export function builtinPrice(model: string): Price | undefined {
  const key = builtinKey(model);
  return key === undefined ? undefined : builtinTable.get(key);
}

/** The built-in table's key for `model`, remembered per model name. */
function builtinKey(model: string): string | undefined {
  const name = normalizeModelName(model);
  let key = builtinCache.get(name);
  if (key === undefined) {
    key = matchModel(name, builtinTable.keys()) ?? null;
    if (builtinCache.size > 10_000) builtinCache.clear();
    builtinCache.set(name, key);
  }
  return key ?? undefined;
}

/**
 * The price for `model`: the most specific name that matches, among the project's overrides
 * and the built-in table together (an override of `gpt-4o` does not capture `gpt-4o-mini`);
 * on the same name the override wins.
 */
export function findPrice(
  model: string,
  overrides?: ReadonlyMap<string, Price>,
): Price | undefined {
  if (!overrides || overrides.size === 0) return builtinPrice(model);
  const normalized = new Map<string, Price>();
  for (const [k, v] of overrides) normalized.set(normalizeModelName(k), v);
  const own = matchModel(model, normalized.keys());
  const builtin = builtinKey(model);
  if (own !== undefined && (builtin === undefined || own.length >= builtin.length))
    return normalized.get(own);
  return builtin === undefined ? undefined : builtinTable.get(builtin);
}
