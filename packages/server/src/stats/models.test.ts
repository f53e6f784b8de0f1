import { describe, expect, it } from 'vitest';
import {
  addModelUsage,
  decodeModels,
  encodeModels,
  stepModelUsage,
  type ModelUsage,
} from './models.js';

const step = (over: Partial<Parameters<typeof stepModelUsage>[0] & object> = {}) => ({
  type: 'llm',
  model: 'gpt-4o',
  input_tokens: 10,
  output_tokens: 2,
  cost_nanos: 30,
  ...over,
});

describe("a run's usage by model", () => {
  it('counts LLM calls and steps with usage above 0, nothing else', () => {
    expect(stepModelUsage(step())).toEqual({ model: 'gpt-4o', totals: [1, 10, 2, 30] });
    expect(stepModelUsage(step({ type: 'tool', model: null, cost_nanos: 5 }))).toEqual({
      model: '',
      totals: [0, 10, 2, 5],
    });
    const zero = { type: 'tool', model: null, input_tokens: 0, output_tokens: 0, cost_nanos: 0 };
    expect(stepModelUsage(zero)).toBeUndefined();
    expect(stepModelUsage(undefined)).toBeUndefined();
  });

  it('keys a model with a lone surrogate as the databases store it (U+FFFD)', () => {
    expect(stepModelUsage(step({ model: 'bad\ud800' }))?.model).toBe('bad\ufffd');
    expect(stepModelUsage(step({ model: 'ok\ud83d\ude00' }))?.model).toBe('ok\ud83d\ude00');
  });

  it('drops a model whose sums fall to zero, and encodes in key order', () => {
    const usage: ModelUsage = new Map();
    addModelUsage(usage, stepModelUsage(step({ model: 'b' })), 1);
    addModelUsage(usage, stepModelUsage(step({ model: 'a' })), 1);
    expect(encodeModels(usage)).toBe('{"a":[1,10,2,30],"b":[1,10,2,30]}');
    addModelUsage(usage, stepModelUsage(step({ model: 'b' })), -1);
    expect(decodeModels(encodeModels(usage))).toEqual(new Map([['a', [1, 10, 2, 30]]]));
    expect(decodeModels('not json')).toEqual(new Map());
  });
});
