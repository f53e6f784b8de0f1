import { describe, expect, it } from 'vitest';
import { agentFixture } from '../../../../core/test/fixtures';
import {
  settingsBody,
  settingsErrors,
  settingsFieldOf,
  settingsForm,
  timeoutParts,
  type EditableAgent,
} from './agentSettings';

const plain: EditableAgent = agentFixture({ id: 'bug-triager' });

const configured: EditableAgent = agentFixture({
  name: 'Nightly report',
  description: 'Writes the report',
  schedule: { cron: '0 3 * * *', timezone: 'Europe/Oslo', paused: false },
  timeout_ms: 600_000,
  max_cost_usd: 2,
  max_tokens: 50_000,
  max_steps: 200,
  max_cost_usd_24h: 20,
  max_concurrency: 4,
});

describe('settingsForm', () => {
  it("fills the inputs from the agent's settings, an unset one empty", () => {
    expect(settingsForm(configured)).toEqual({
      name: 'Nightly report',
      description: 'Writes the report',
      scheduled: true,
      cron: '0 3 * * *',
      timezone: 'Europe/Oslo',
      timeout: '10',
      timeoutUnit: 'min',
      maxCost: '2',
      maxTokens: '50000',
      maxSteps: '200',
      maxCost24h: '20',
      maxAttempts: '',
      retryDelay: '10',
      retryBackoff: 'exponential',
      maxConcurrency: '4',
      maxConcurrencyPerThread: '',
    });
    const empty = settingsForm(plain, 'America/New_York');
    expect(empty).toMatchObject({
      description: '',
      scheduled: false,
      cron: '',
      timezone: 'America/New_York',
      timeout: '',
      maxCost: '',
      maxTokens: '',
      maxSteps: '',
      maxCost24h: '',
    });
  });

  it('shows a timeout in the largest unit it is a whole number of', () => {
    expect(timeoutParts(7_200_000)).toEqual({ value: '2', unit: 'h' });
    expect(timeoutParts(5_400_000)).toEqual({ value: '90', unit: 'min' });
    expect(timeoutParts(90_000)).toEqual({ value: '90', unit: 's' });
    expect(timeoutParts(1_500)).toEqual({ value: '1.5', unit: 's' });
  });
});

describe('settingsBody', () => {
  it('sends nothing when nothing changed', () => {
    expect(settingsBody(settingsForm(configured), configured)).toEqual({ ok: true, body: {} });
    expect(settingsBody(settingsForm(plain), plain)).toEqual({ ok: true, body: {} });
  });

  it('sends only the fields that changed, so a save keeps every other one as it is', () => {
    const form = { ...settingsForm(configured), maxSteps: '50', name: 'Nightly report v2' };
    expect(settingsBody(form, configured)).toEqual({
      ok: true,
      body: { name: 'Nightly report v2', max_steps: 50 },
    });
  });

  it('sends an emptied input as null: no limit, no timeout, no description', () => {
    const form = {
      ...settingsForm(configured),
      description: '  ',
      timeout: '',
      maxCost: '',
      maxTokens: '',
      maxSteps: '',
    };
    expect(settingsBody(form, configured)).toEqual({
      ok: true,
      body: {
        description: null,
        timeout_ms: null,
        max_cost_usd: null,
        max_tokens: null,
        max_steps: null,
      },
    });
  });

  it('maps the timeout in its unit to timeout_ms, the same duration in another unit being no change', () => {
    const form = settingsForm(plain);
    expect(settingsBody({ ...form, timeout: '90', timeoutUnit: 's' }, plain)).toEqual({
      ok: true,
      body: { timeout_ms: 90_000 },
    });
    expect(settingsBody({ ...form, timeout: '1.5', timeoutUnit: 'h' }, plain)).toEqual({
      ok: true,
      body: { timeout_ms: 5_400_000 },
    });
    expect(
      settingsBody({ ...settingsForm(configured), timeout: '600', timeoutUnit: 's' }, configured),
    ).toEqual({ ok: true, body: {} });
  });

  it('sets, changes and removes the schedule as a whole', () => {
    const set = { ...settingsForm(plain, 'UTC'), scheduled: true, cron: ' */15 * * * * ' };
    expect(settingsBody(set, plain)).toEqual({
      ok: true,
      body: { schedule: { cron: '*/15 * * * *', timezone: 'UTC' } },
    });
    const zone = { ...settingsForm(configured), timezone: 'UTC' };
    expect(settingsBody(zone, configured)).toEqual({
      ok: true,
      body: { schedule: { cron: '0 3 * * *', timezone: 'UTC' } },
    });
    const none = { ...settingsForm(configured), scheduled: false };
    expect(settingsBody(none, configured)).toEqual({ ok: true, body: { schedule: null } });
    // choosing No schedule for an agent without one changes nothing
    expect(settingsBody({ ...settingsForm(plain), cron: 'x' }, plain)).toEqual({
      ok: true,
      body: {},
    });
  });

  it('reads a cost written with a dollar sign or thousands separators', () => {
    const form = { ...settingsForm(plain), maxCost: '$1,250.50', maxTokens: '1,000,000' };
    expect(settingsBody(form, plain)).toEqual({
      ok: true,
      body: { max_cost_usd: 1250.5, max_tokens: 1_000_000 },
    });
  });

  it('refuses inputs that are not their value, naming each input, and sends nothing', () => {
    const form = {
      ...settingsForm(plain),
      name: ' ',
      scheduled: true,
      cron: '',
      timezone: '',
      timeout: '0.1',
      timeoutUnit: 's' as const,
      maxCost: 'two dollars',
      maxTokens: '1.5',
      maxSteps: '-3',
    };
    const result = settingsBody(form, plain);
    expect(result.ok).toBe(false);
    expect(!result.ok && Object.keys(result.errors).sort()).toEqual(
      ['cron', 'maxCost', 'maxSteps', 'maxTokens', 'name', 'timeout', 'timezone'].sort(),
    );
    expect(!result.ok && result.errors.maxTokens).toBe('Enter a whole number');
    expect(!result.ok && result.errors.timeout).toBe('The shortest timeout is 1 second');
    expect(settingsBody({ ...settingsForm(plain), timeout: '8', timeoutUnit: 'h' }, plain)).toEqual(
      { ok: true, body: { timeout_ms: 28_800_000 } },
    );
    const long = settingsBody({ ...settingsForm(plain), timeout: '169', timeoutUnit: 'h' }, plain);
    expect(!long.ok && long.errors.timeout).toMatch(/7 days/);
  });
});

describe('settingsErrors', () => {
  it("maps each detail's field to its input", () => {
    expect(settingsFieldOf('body.schedule.cron')).toBe('cron');
    expect(settingsFieldOf('body.schedule.timezone')).toBe('timezone');
    expect(settingsFieldOf('body.timeout_ms')).toBe('timeout');
    expect(settingsFieldOf('body.max_cost_usd')).toBe('maxCost');
    expect(settingsFieldOf('body.max_tokens')).toBe('maxTokens');
    expect(settingsFieldOf('body.max_steps')).toBe('maxSteps');
    expect(settingsFieldOf('body.metadata')).toBeUndefined();
    expect(
      settingsErrors('body.schedule.cron: bad', [
        { field: 'body.schedule.cron', message: 'not a cron expression: 61 is no minute' },
        { field: 'body.max_steps', message: 'Too small: expected number to be >=1' },
        { field: 'body.max_steps', message: 'a second complaint' },
      ]),
    ).toEqual({
      cron: 'not a cron expression: 61 is no minute',
      maxSteps: 'Too small: expected number to be >=1',
    });
  });

  it('puts an error naming no input, or none at all, above the buttons', () => {
    expect(
      settingsErrors('body.metadata: too big', [
        { field: 'body.max_steps', message: 'Too small' },
        { field: 'body.metadata', message: 'too big' },
      ]),
    ).toEqual({ maxSteps: 'Too small', form: 'body.metadata: too big' });
    expect(settingsErrors('body: expected an object', [])).toEqual({
      form: 'body: expected an object',
    });
    expect(settingsErrors('odd answer', [null, 'text'])).toEqual({ form: 'odd answer' });
  });
});

describe('the retry policy in the settings', () => {
  it('sends the policy the Retries inputs say, whole, only when it changed', () => {
    const form = settingsForm(plain);
    expect(form).toMatchObject({ maxAttempts: '', retryDelay: '10', retryBackoff: 'exponential' });
    expect(settingsBody(form, plain)).toEqual({ ok: true, body: {} });
    expect(settingsBody({ ...form, maxAttempts: '3', retryDelay: '1.5' }, plain)).toEqual({
      ok: true,
      body: { retry: { max_attempts: 3, delay_ms: 1500, backoff: 'exponential' } },
    });
    const retrying = {
      ...plain,
      retry: { max_attempts: 3, delay_ms: 30_000, backoff: 'fixed' as const },
    };
    const shown = settingsForm(retrying);
    expect(shown).toMatchObject({ maxAttempts: '3', retryDelay: '30', retryBackoff: 'fixed' });
    expect(settingsBody(shown, retrying)).toEqual({ ok: true, body: {} });
    expect(settingsBody({ ...shown, retryBackoff: 'exponential' }, retrying)).toEqual({
      ok: true,
      body: { retry: { max_attempts: 3, delay_ms: 30_000, backoff: 'exponential' } },
    });
    // emptied attempts: no automatic retry
    expect(settingsBody({ ...shown, maxAttempts: ' ' }, retrying)).toEqual({
      ok: true,
      body: { retry: null },
    });
  });

  it('refuses attempts and delays the server would, beside their inputs', () => {
    const form = settingsForm(plain);
    for (const [maxAttempts, retryDelay, field] of [
      ['1', '10', 'maxAttempts'],
      ['21', '10', 'maxAttempts'],
      ['2.5', '10', 'maxAttempts'],
      ['3', '-1', 'retryDelay'],
      ['3', '90000', 'retryDelay'],
      ['3', 'soon', 'retryDelay'],
    ] as const) {
      const result = settingsBody({ ...form, maxAttempts, retryDelay }, plain);
      expect(result.ok, `${maxAttempts} ${retryDelay}`).toBe(false);
      if (!result.ok) expect(Object.keys(result.errors)).toEqual([field]);
    }
    expect(settingsFieldOf('body.retry.delay_ms')).toBe('retryDelay');
  });
});

describe('the concurrency cap', () => {
  it('sends the cap changed, null for an emptied input, and refuses what the server would', () => {
    expect(settingsBody({ ...settingsForm(plain), maxConcurrency: ' 3 ' }, plain)).toEqual({
      ok: true,
      body: { max_concurrency: 3 },
    });
    expect(settingsBody({ ...settingsForm(configured), maxConcurrency: '' }, configured)).toEqual({
      ok: true,
      body: { max_concurrency: null },
    });
    // unchanged: not sent, so a cap set meanwhile elsewhere stays
    expect(settingsBody(settingsForm(configured), configured)).toEqual({ ok: true, body: {} });
    for (const text of ['0', '-2', '2.5', '10001', 'two']) {
      const result = settingsBody({ ...settingsForm(plain), maxConcurrency: text }, plain);
      expect(result.ok, text).toBe(false);
      if (!result.ok) expect(Object.keys(result.errors)).toEqual(['maxConcurrency']);
    }
    expect(settingsFieldOf('body.max_concurrency')).toBe('maxConcurrency');
    // and the same of a thread's
    expect(settingsBody({ ...settingsForm(plain), maxConcurrencyPerThread: '1' }, plain)).toEqual({
      ok: true,
      body: { max_concurrency_per_thread: 1 },
    });
    const bad = settingsBody({ ...settingsForm(plain), maxConcurrencyPerThread: '0' }, plain);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(Object.keys(bad.errors)).toEqual(['maxConcurrencyPerThread']);
    expect(settingsFieldOf('body.max_concurrency_per_thread')).toBe('maxConcurrencyPerThread');
  });
});

describe('numbers in the settings', () => {
  const plain: EditableAgent = {
    name: 'b',
    description: null,
    schedule: null,
    timeout_ms: null,
    max_cost_usd: null,
    max_tokens: null,
    max_steps: null,
    max_cost_usd_24h: null,
    retry: null,
    max_concurrency: null,
    max_concurrency_per_thread: null,
  };
  it('never reads a decimal comma as a thousands separator (0,50 is not $50)', () => {
    for (const [field, text] of [
      ['maxCost', '0,50'],
      ['maxCost', '1,5'],
      ['timeout', '1,5'],
      ['maxSteps', '1,5'],
    ] as const) {
      const result = settingsBody({ ...settingsForm(plain), [field]: text }, plain);
      expect(result.ok, `${field}=${text} → ${JSON.stringify(result)}`).toBe(false);
    }
    expect(settingsBody({ ...settingsForm(plain), maxTokens: '1,000,000' }, plain)).toEqual({
      ok: true,
      body: { max_tokens: 1_000_000 },
    });
  });

  it('takes plain decimals only', () => {
    for (const text of ['0x10', '1e3', 'Infinity', '5 steps'])
      expect(settingsBody({ ...settingsForm(plain), maxSteps: text }, plain).ok, text).toBe(false);
    expect(settingsBody({ ...settingsForm(plain), maxCost: '.5' }, plain)).toEqual({
      ok: true,
      body: { max_cost_usd: 0.5 },
    });
  });
});

describe('the budget over 24 hours', () => {
  it('sends a budget set or changed, null for an emptied input, nothing when unchanged', () => {
    expect(settingsBody({ ...settingsForm(plain), maxCost24h: ' $1,250.50 ' }, plain)).toEqual({
      ok: true,
      body: { max_cost_usd_24h: 1250.5 },
    });
    expect(settingsBody({ ...settingsForm(configured), maxCost24h: '25' }, configured)).toEqual({
      ok: true,
      body: { max_cost_usd_24h: 25 },
    });
    expect(settingsBody({ ...settingsForm(configured), maxCost24h: '' }, configured)).toEqual({
      ok: true,
      body: { max_cost_usd_24h: null },
    });
    // unchanged, written otherwise: not sent, so a budget set meanwhile elsewhere stays
    expect(settingsBody({ ...settingsForm(configured), maxCost24h: '20.00' }, configured)).toEqual({
      ok: true,
      body: {},
    });
    // the per-run limit is another field: changing one leaves the other out of the body
    expect(settingsBody({ ...settingsForm(configured), maxCost: '3' }, configured)).toEqual({
      ok: true,
      body: { max_cost_usd: 3 },
    });
  });

  it('refuses what the server would, with the messages of the other money inputs', () => {
    const errorOf = (text: string) => {
      const result = settingsBody({ ...settingsForm(plain), maxCost24h: text }, plain);
      expect(result.ok, text).toBe(false);
      if (result.ok) return undefined;
      expect(Object.keys(result.errors), text).toEqual(['maxCost24h']);
      return result.errors.maxCost24h;
    };
    const costErrorOf = (text: string) => {
      const result = settingsBody({ ...settingsForm(plain), maxCost: text }, plain);
      return result.ok ? undefined : result.errors.maxCost;
    };
    for (const text of ['0', '-5', 'twenty', '0,50', '1e3', 'Infinity'])
      expect(errorOf(text), text).toBe(costErrorOf(text));
    expect(errorOf('0')).toBe('Enter a number above 0, or leave it empty');
    expect(errorOf('0,50')).toBe('Use a dot for decimals (0.50), commas only between thousands');
    expect(errorOf('1000000000.01')).toBe('Enter at most $1,000,000,000, or leave it empty');
    expect(settingsBody({ ...settingsForm(plain), maxCost24h: '1000000000' }, plain)).toEqual({
      ok: true,
      body: { max_cost_usd_24h: 1e9 },
    });
  });

  it("puts the server's error on the budget beside its input", () => {
    expect(settingsFieldOf('body.max_cost_usd_24h')).toBe('maxCost24h');
    expect(
      settingsErrors('body.max_cost_usd_24h: Too big', [
        { field: 'body.max_cost_usd_24h', message: 'Too big: expected number to be <=1000000000' },
      ]),
    ).toEqual({ maxCost24h: 'Too big: expected number to be <=1000000000' });
  });

  it('shows a tiny money limit in plain digits, which a save takes back unchanged', () => {
    const tiny = { ...plain, max_cost_usd: 1e-7, max_cost_usd_24h: 1e-9 };
    expect(settingsForm(tiny)).toMatchObject({ maxCost: '0.0000001', maxCost24h: '0.000000001' });
    expect(settingsBody(settingsForm(tiny), tiny)).toEqual({ ok: true, body: {} });
  });
});
