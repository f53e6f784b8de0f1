import { describe, expect, it } from 'vitest';
import { parseEventFast } from './event-fast-path.js';
import { IngestEvent, MAX_INT32, RunFields, StepFields } from './schemas.js';
import { MAX_TIME_MS, PLAIN_YEARS_END_MS } from './time.js';

/**
 * The fast path may pass an event to the schema (undefined), but what it answers must be
 * what the schema's parse answers: never an event the schema refuses, never another value.
 */
function agrees(raw: unknown): boolean {
  const fast = parseEventFast(raw);
  if (fast === undefined) return false;
  const parsed = IngestEvent.safeParse(raw);
  expect(parsed.success, JSON.stringify(raw)?.slice(0, 300)).toBe(true);
  expect(fast).toStrictEqual(parsed.data);
  // stored metadata is this text: the keys' order counts too
  expect(JSON.stringify(fast)).toBe(JSON.stringify(parsed.data));
  return true;
}

const T = 1_765_000_000_000;

// every field the schemas name, read from them: a field added there is tried here too
const STEP_FIELDS = Object.keys(StepFields.shape);
const RUN_FIELDS = Object.keys(RunFields.shape);

const NUMBERS = [
  -1,
  -0,
  0,
  0.5,
  1,
  2,
  999,
  1000,
  1001,
  1e6,
  1e6 + 0.5,
  1e9 - 1,
  1e9,
  1e10 - 1,
  1e10,
  1e12,
  1e12 + 1,
  MAX_INT32,
  MAX_INT32 + 1,
  T,
  PLAIN_YEARS_END_MS - 1,
  PLAIN_YEARS_END_MS,
  MAX_TIME_MS,
  2 ** 53,
  1e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
];

const TEXTS = [
  '',
  'a',
  'plan',
  'r-1',
  'A.b:c_d-9',
  '.',
  '..',
  'stats',
  'has space',
  'a\u0000b',
  'emoji 😀',
  'half \ud83d',
  'ok',
  'success',
  'succeeded',
  'Completed',
  'running',
  'queued',
  'constructor',
  '__proto__',
  'api',
  'manual',
  'schedule',
  'retry',
  'bogus',
  '2026-12-07T10:00:00Z',
  '2026-12-07T10:00:00.123+01:00',
  '2026-12-07T10:00:00.123456789Z',
  '2026-12-07T10:00:00-08:00',
  '2026-12-07t10:00:00z',
  '2026-12-07T10:00Z',
  '2026-12-07 10:00:00Z',
  '2026-12-07T10:00:00',
  '2026-12-07T10:00:00+0100',
  '2026-02-29T10:00:00Z',
  '2024-02-29T10:00:00Z',
  '2026-13-07T10:00:00Z',
  '1970-01-01T00:00:00Z',
  '1969-12-31T23:59:59Z',
  '1970-01-12T13:46:40Z',
  '9999-12-31T23:59:59.999Z',
  ' 2026-12-07T10:00:00Z',
  '1765000000000',
  '0',
  '123',
  '1000000000',
  '0001765000000000',
  '00001765000000000',
  '8640000000000000',
  '9999999999999999',
  '17650000000000000',
  '-1',
  '1e12',
  '１２３',
];

const OTHERS: unknown[] = [
  // a key set to undefined, as events built in code (OTLP's) may hold
  undefined,
  null,
  true,
  false,
  {},
  [],
  ['a', 'b'],
  ['a', 'a'],
  [''],
  ['a\u0000'],
  [1],
  Array.from({ length: 100 }, (_, i) => `t${i}`),
  Array.from({ length: 101 }, (_, i) => `t${i}`),
  { a: 1, b: { c: [1, 2] } },
  { 2: 'x', b: 1, a: 2 },
  JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}') as unknown,
  { constructor: 1 },
  { message: 'boom' },
  { message: 'boom', type: 'TypeError', stack: 'at x', extra: 1 },
  { message: 'boom', type: null },
  { message: 1 },
  { message: 'a\u0000b' },
  { message: 'x'.repeat(100_001) },
  { message: 'm', type: 'x'.repeat(501) },
  { message: 'm', stack: 'x'.repeat(100_000) },
  { type: 'TypeError' },
];

/** Text of every length around each bound the schema sets on a field. */
function lengths(): string[] {
  const out: string[] = [];
  for (const n of [63, 64, 65, 127, 128, 129, 199, 200, 201, 499, 500, 501])
    out.push('x'.repeat(n));
  return out;
}

const CANDIDATES: unknown[] = [...NUMBERS, ...TEXTS, ...lengths(), ...OTHERS];

const baseStep = () => ({ id: 's1', run_id: 'r1' }) as Record<string, unknown>;
const baseRun = () => ({ id: 'r1' }) as Record<string, unknown>;

describe('parseEventFast', () => {
  it('takes the events agents send, as the schema does', () => {
    const events: unknown[] = [
      {
        type: 'run.start',
        run: {
          id: 'run-1',
          agent_id: 'bug-triager',
          trigger: 'manual',
          source: 'cli',
          triggered_by: 'ana',
          user_id: 'user 7',
          thread_id: 'thread-1',
          parent_run_id: null,
          attempt: 1,
          input: { issue: 42, nested: [{ a: null }] },
          model: 'gpt-4o-mini',
          tags: ['prod', 'eu'],
          metadata: { team: 'infra', n: 3 },
          queued_at: T - 10,
          started_at: T,
        },
      },
      {
        type: 'step.end',
        step: {
          id: 'step-1',
          run_id: 'run-1',
          parent_step_id: 'step-0',
          seq: 3,
          type: 'llm',
          name: 'plan',
          status: 'succeeded',
          started_at: T + 1,
          first_token_at: T + 2,
          ended_at: T + 5,
          input: { messages: [{ role: 'user', content: 'hi' }] },
          output: 'hello',
          model: 'gpt-4o',
          provider: 'openai',
          input_tokens: 100,
          output_tokens: 20,
          cached_input_tokens: 50,
          reasoning_tokens: 0,
          cost_usd: 0.0123,
          metadata: {},
        },
      },
      {
        type: 'step.start',
        step: { id: 'step-2', run_id: 'run-1', type: 'tool', name: 'search', started_at: T },
      },
      {
        type: 'step.end',
        step: {
          id: 'step-2',
          run_id: 'run-1',
          status: 'error',
          error: { message: 'timeout', type: 'TimeoutError', stack: 'at search' },
          ended_at: T + 9,
        },
      },
      // times as ISO-8601 text, as other languages' clients send them
      {
        type: 'step.end',
        step: {
          id: 'step-3',
          run_id: 'run-1',
          status: 'succeeded',
          started_at: '2026-12-07T10:00:00Z',
          first_token_at: '2026-12-07T10:00:00.250+00:00',
          ended_at: '2026-12-07T11:00:01.5+01:00',
        },
      },
      { type: 'run.update', run: { id: 'run-1', metadata: { progress: 0.5 } } },
      {
        type: 'run.end',
        run: { id: 'run-1', status: 'success', output: { ok: true }, ended_at: T + 10 },
      },
      { type: 'run.end', run: { id: 'run-1', status: 'failed', error: { message: 'boom' } } },
    ];
    for (const e of events) expect(agrees(e), JSON.stringify(e)).toBe(true);
  });

  it('leaves every other kind of event to the schema', () => {
    for (const raw of [
      null,
      'step.end',
      [],
      [{ type: 'step.end', step: baseStep() }],
      {},
      { type: 'step.end' },
      { type: 'step.end', step: [] },
      { type: 'step.end', step: { id: 's1' } },
      { type: 'run.start', run: {} },
      { type: 'run.heartbeat', run: { id: 'r1' } },
      { type: 'score', score: { run_id: 'r1', name: 'x', value: 1 } },
      { type: 'step.finish', step: baseStep() },
    ])
      expect(parseEventFast(raw), JSON.stringify(raw)).toBeUndefined();
  });

  it('answers as the schema for each value of each field, or leaves it to the schema', () => {
    let taken = 0;
    for (const value of CANDIDATES) {
      for (const field of STEP_FIELDS) {
        for (const type of ['step.start', 'step.end']) {
          if (agrees({ type, step: { ...baseStep(), [field]: value } })) taken++;
        }
      }
      for (const field of RUN_FIELDS) {
        if (agrees({ type: 'run.update', run: { ...baseRun(), [field]: value } })) taken++;
      }
    }
    // most fields take some of these values, so the comparison above is not vacuous
    expect(taken).toBeGreaterThan(1000);
  });

  it('refuses text one character past each bound the schema sets, and takes it at the bound', () => {
    const text = ['type', 'name', 'model', 'provider'] as const;
    for (const field of text) {
      const max = schemaMaxLength((s) => ({
        type: 'step.end',
        step: { ...baseStep(), [field]: s },
      }));
      const at = { type: 'step.end', step: { ...baseStep(), [field]: 'x'.repeat(max) } };
      const past = { type: 'step.end', step: { ...baseStep(), [field]: 'x'.repeat(max + 1) } };
      expect(agrees(at), field).toBe(true);
      expect(parseEventFast(past), field).toBeUndefined();
    }
    for (const field of ['source', 'triggered_by', 'user_id', 'thread_id', 'model'] as const) {
      const max = schemaMaxLength((s) => ({
        type: 'run.start',
        run: { ...baseRun(), [field]: s },
      }));
      const at = { type: 'run.start', run: { ...baseRun(), [field]: 'x'.repeat(max) } };
      const past = { type: 'run.start', run: { ...baseRun(), [field]: 'x'.repeat(max + 1) } };
      expect(agrees(at), field).toBe(true);
      expect(parseEventFast(past), field).toBeUndefined();
    }
  });

  it('answers as the schema for random mixes of fields and stray keys', () => {
    const random = seeded(20261207);
    const pick = <V>(list: readonly V[]): V => list[Math.floor(random() * list.length)]!;
    // values more often valid than not, so that many events take the fast path
    const usual: Record<string, unknown[]> = {
      id: ['s1', 'r-2', 'stats', '..'],
      run_id: ['r1', 'stats'],
      agent_id: ['a1', 'a b'],
      status: ['succeeded', 'ok', 'running', 'nope'],
      trigger: ['api', 'cron'],
      attempt: [1, 2, 0],
      seq: [0, 7, -1],
      started_at: [T, T + 1, '2026-12-07T10:00:00Z', 1e9],
      ended_at: [T + 5, T - 5],
      input_tokens: [10, null, -1],
      cost_usd: [0.5, null, -0.1],
      tags: [['a'], []],
      metadata: [{ a: 1 }, []],
      error: [{ message: 'x' }, 'boom', null],
    };
    let taken = 0;
    for (let n = 0; n < 4000; n++) {
      const isStep = random() < 0.6;
      const names = isStep ? STEP_FIELDS : RUN_FIELDS;
      const body: Record<string, unknown> = isStep ? baseStep() : baseRun();
      for (let k = Math.floor(random() * 6); k > 0; k--) {
        const field = pick(names);
        body[field] = random() < 0.7 && usual[field] ? pick(usual[field]) : pick(CANDIDATES);
      }
      if (random() < 0.1) body.unknown_key = pick(CANDIDATES);
      const raw = isStep
        ? { type: pick(['step.start', 'step.end']), step: body }
        : { type: pick(['run.start', 'run.update', 'run.end']), run: body };
      if (random() < 0.05) Object.assign(raw, { extra: 1 });
      if (agrees(raw)) taken++;
    }
    expect(taken).toBeGreaterThan(1000);
  });
});

/** The longest text the schema takes for the field `build` sets, by bisection. */
function schemaMaxLength(build: (text: string) => unknown): number {
  let lo = 0; // taken (or the field takes no text of any length: then 0 is the answer)
  let hi = 200_001;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (IngestEvent.safeParse(build('x'.repeat(mid))).success) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** A small deterministic generator (mulberry32), so a failure repeats. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
