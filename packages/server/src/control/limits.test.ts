import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  readableError,
  type Agent,
  type HeartbeatResponse,
  type IngestEvent,
  type Run,
} from '@runlog/core';
import { describeEachDb, createTestApp, ingestOk, json, type TestApp } from '../../test/harness.js';
import { exportText } from '../../test/cli-fixtures.js';
import { cancelRun } from './control.service.js';
import { budgetVerdict, sweepOnce, sweepVerdict } from './sweeper.js';
import { newRunRow } from '../ingest/apply.js';

it('says which limit a run passed, cost first, and nothing within them', () => {
  const run = {
    ...newRunRow('p', 'r', 0),
    status: 'running',
    cost_nanos: 1_020_000_000,
    input_tokens: 90_000,
    output_tokens: 20_000,
    step_count: 101,
  };
  const none = { max_cost_nanos: null, max_tokens: null, max_steps: null };
  expect(budgetVerdict(run, none)).toBeUndefined();
  expect(budgetVerdict(run, { ...none, max_steps: 101 })).toBeUndefined();
  expect(budgetVerdict(run, { ...none, max_steps: 100 })).toEqual({
    status: 'failed',
    error: {
      type: 'BudgetExceeded',
      message: "stopped: 101 steps passed the agent's max_steps (100 steps)",
    },
  });
  // one, not "1 steps"
  expect(budgetVerdict({ ...run, step_count: 2 }, { ...none, max_steps: 1 })?.error?.message).toBe(
    "stopped: 2 steps passed the agent's max_steps (1 step)",
  );
  expect(budgetVerdict(run, { ...none, max_tokens: 100_000 })?.error?.message).toBe(
    "stopped: 110,000 tokens passed the agent's max_tokens (100,000 tokens)",
  );
  expect(
    budgetVerdict(run, { max_cost_nanos: 1_000_000_000, max_tokens: 1, max_steps: 1 })?.error
      ?.message,
  ).toBe("stopped: $1.02 passed the agent's max_cost_usd ($1)");
});

it('ends a run gone quiet as its lease says, over a limit or not', () => {
  const run = {
    ...newRunRow('p', 'r', 0),
    status: 'running',
    step_count: 10,
    lease_expires_at: 1_000,
  };
  const limits = { max_cost_nanos: null, max_tokens: null, max_steps: 5 };
  expect(sweepVerdict(run, 2_000, 30_000, undefined, limits)?.error?.type).toBe('LeaseExpired');
  expect(
    sweepVerdict({ ...run, lease_expires_at: 5_000 }, 2_000, 30_000, undefined, limits),
  ).toMatchObject({ status: 'failed', error: { type: 'BudgetExceeded' } });
});

it("leaves a paused agent's queued run past its deadline waiting, and names the agent's timeout_ms", () => {
  const run = { ...newRunRow('p', 'r', 0), status: 'queued', queued_at: 0, deadline_at: 5_000 };
  const none = { max_cost_nanos: null, max_tokens: null, max_steps: null };
  // paused after the sweep read it: looked at again under the lock, it waits on
  expect(
    sweepVerdict(run, 9_000, 30_000, undefined, { ...none, paused_at: 1_000 }),
  ).toBeUndefined();
  // its deadline moved on by a pause: the agent's timeout_ms is what it waited for
  expect(
    sweepVerdict(run, 9_000, 30_000, undefined, { ...none, timeout_ms: 1_000, paused_at: null })
      ?.error?.message,
  ).toMatch(/^timed out after timeout_ms \(1000 ms\) while still queued/);
  // a running run of a paused agent is not held: its timeout ends it
  expect(
    sweepVerdict({ ...run, status: 'running' }, 9_000, 30_000, undefined, {
      ...none,
      paused_at: 1_000,
    })?.status,
  ).toBe('timed_out');
});

describeEachDb('limits on a run (max_cost_usd, max_tokens, max_steps)', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  let seq = 0;
  const agentName = (base: string) => `${base}-${seq++}`;
  const put = (agent: string, body: Record<string, unknown>) =>
    t.request('PUT', `/api/v1/agents/${agent}`, body);
  const ingest = (events: IngestEvent[], key?: string) => ingestOk(t, events, key);
  const run = async (id: string) => json<Run>(await t.request('GET', `/api/v1/runs/${id}`));
  const steps = (runId: string, n: number, extra: Record<string, unknown> = {}): IngestEvent[] =>
    Array.from({ length: n }, (_, i) => ({
      type: 'step.end',
      step: { id: `s${i}`, run_id: runId, type: 'tool', name: `t${i}`, ...extra },
    }));

  it("sets, shows and clears an agent's limits, refusing bad ones by field", async () => {
    const agent = agentName('limited');
    const set = await put(agent, { max_cost_usd: 2.5, max_tokens: 100_000, max_steps: 50 });
    expect(set.statusCode, set.body).toBe(200);
    expect(json<Agent>(set)).toMatchObject({
      max_cost_usd: 2.5,
      max_tokens: 100_000,
      max_steps: 50,
    });
    // a field not given keeps its value; null clears it
    const cleared = json<Agent>(await put(agent, { max_tokens: null }));
    expect(cleared).toMatchObject({ max_cost_usd: 2.5, max_tokens: null, max_steps: 50 });
    expect(json<Agent>(await t.request('GET', `/api/v1/agents/${agent}`))).toMatchObject({
      max_cost_usd: 2.5,
      max_steps: 50,
    });
    for (const [body, field] of [
      [{ max_cost_usd: 0 }, 'body.max_cost_usd'],
      [{ max_cost_usd: -1 }, 'body.max_cost_usd'],
      // below a nano-dollar, the unit costs are kept in: it would be stored as one
      [{ max_cost_usd: 1e-12 }, 'body.max_cost_usd'],
      [{ max_tokens: 1.5 }, 'body.max_tokens'],
      [{ max_steps: 0 }, 'body.max_steps'],
      [{ max_steps: '10' }, 'body.max_steps'],
    ] as const) {
      const res = await put(agent, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.body).toContain(field);
    }
    // nothing of a refused body was written
    expect(json<Agent>(await t.request('GET', `/api/v1/agents/${agent}`))).toMatchObject({
      max_cost_usd: 2.5,
      max_tokens: null,
      max_steps: 50,
    });
    // an agent made by its first run has none
    const made = agentName('free');
    await ingest([{ type: 'run.start', run: { id: agentName('free-run'), agent_id: made } }]);
    expect(json<Agent>(await t.request('GET', `/api/v1/agents/${made}`))).toMatchObject({
      max_cost_usd: null,
      max_tokens: null,
      max_steps: null,
    });
  });

  it('ends a running run past its steps limit as failed, and tells its agent', async () => {
    const agent = agentName('looping');
    await put(agent, { max_steps: 3 });
    const within = agentName('within');
    const over = agentName('over');
    await ingest([
      { type: 'run.start', run: { id: within, agent_id: agent } },
      ...steps(within, 3),
      { type: 'run.start', run: { id: over, agent_id: agent } },
      ...steps(over, 4),
    ]);
    expect(await sweepOnce(t.ctx)).toBeGreaterThanOrEqual(1);
    expect(await run(within)).toMatchObject({ status: 'running', error: null });
    const ended = await run(over);
    expect(ended).toMatchObject({
      status: 'failed',
      error: {
        type: 'BudgetExceeded',
        message: "stopped: 4 steps passed the agent's max_steps (3 steps)",
      },
    });
    expect(ended.ended_at).not.toBeNull();
    // the process running it hears on its next heartbeat that the run is over
    const beat = await t.request('POST', `/api/v1/runs/${over}/heartbeat`, {});
    expect(json<HeartbeatResponse>(beat)).toMatchObject({
      status: 'failed',
      // and why, in the run's own words
      end_reason: "stopped: 4 steps passed the agent's max_steps (3 steps)",
    });
    // a run still going has none
    const going = await t.request('POST', `/api/v1/runs/${within}/heartbeat`, {});
    expect(json<HeartbeatResponse>(going)).toMatchObject({ status: 'running', end_reason: null });
    // its own end, arriving later, leaves the outcome as the limit made it
    await ingest([{ type: 'run.end', run: { id: over, status: 'succeeded', output: 'done' } }]);
    expect(await run(over)).toMatchObject({ status: 'failed', output: null });
  });

  it('ends a run past its cost or its tokens, and one whose agent lowered its limit', async () => {
    const agent = agentName('spender');
    await put(agent, { max_cost_usd: 0.01, max_tokens: 5_000 });
    const costly = agentName('costly');
    const wordy = agentName('wordy');
    const later = agentName('later');
    const llm = (runId: string, input: number, output: number, model = 'gpt-4o'): IngestEvent => ({
      type: 'step.end',
      step: {
        id: 'llm',
        run_id: runId,
        type: 'llm',
        model,
        input_tokens: input,
        output_tokens: output,
      },
    });
    await ingest([
      { type: 'run.start', run: { id: costly, agent_id: agent } },
      // gpt-4o: 4,000 output tokens cost about $0.04
      llm(costly, 100, 4_000),
      { type: 'run.start', run: { id: wordy, agent_id: agent } },
      // cheap, but past 5,000 tokens: a model with no price
      llm(wordy, 6_000, 10, 'in-house-7b'),
      { type: 'run.start', run: { id: later, agent_id: agent } },
      ...steps(later, 5),
    ]);
    await sweepOnce(t.ctx);
    expect((await run(costly)).error).toMatchObject({ type: 'BudgetExceeded' });
    expect(readableError((await run(costly)).error!).message).toMatch(
      /^stopped: \$0\.04\d* passed the agent's max_cost_usd \(\$0\.01\)$/,
    );
    expect(readableError((await run(wordy)).error!).message).toBe(
      "stopped: 6,010 tokens passed the agent's max_tokens (5,000 tokens)",
    );
    expect((await run(later)).status).toBe('running');
    // a limit lowered while a run goes on holds from the next sweep
    await put(agent, { max_steps: 4 });
    await sweepOnce(t.ctx);
    expect(await run(later)).toMatchObject({ status: 'failed', error: { type: 'BudgetExceeded' } });
  });

  it('leaves a run stopped by hand to end as stopped, and runs without limits alone', async () => {
    const agent = agentName('stopped');
    await put(agent, { max_steps: 1 });
    const stopped = agentName('stopped-run');
    await ingest([{ type: 'run.start', run: { id: stopped, agent_id: agent } }]);
    await cancelRun(t.ctx, 'default', stopped);
    await ingest(steps(stopped, 3));
    await sweepOnce(t.ctx);
    expect(await run(stopped)).toMatchObject({ status: 'running' });
    expect((await run(stopped)).cancel_requested_at).not.toBeNull();
    // with no limits, any number of steps goes on
    const free = agentName('unlimited');
    const freeRun = agentName('free-run');
    await ingest([
      { type: 'run.start', run: { id: freeRun, agent_id: free } },
      ...steps(freeRun, 20),
    ]);
    await put(agent, { max_steps: null });
    await sweepOnce(t.ctx);
    expect((await run(freeRun)).status).toBe('running');
  });

  it('carries the limits in an export', async () => {
    const agent = agentName('exported');
    await put(agent, { max_cost_usd: 0.5, max_steps: 10 });
    const lines = (await exportText(t.ctx.db))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.kind === 'agent' && l.id === agent)).toMatchObject({
      max_cost_usd: 0.5,
      max_tokens: null,
      max_steps: 10,
    });
  });
});

it("says a queued run that timed out waited for its agent's 24 h budget when it was over it", () => {
  const run = { ...newRunRow('p', 'r', 0), status: 'queued', queued_at: 0, deadline_at: 5_000 };
  const none = { max_cost_nanos: null, max_tokens: null, max_steps: null, timeout_ms: 5_000 };
  expect(
    sweepVerdict(run, 9_000, 30_000, undefined, { ...none, over_budget_at: 1_000 })?.error?.message,
  ).toBe(
    "timed out after timeout_ms (5000 ms) while still queued: no worker claimed it in time (its agent's runs of the last 24 hours cost its budget, max_cost_usd_24h, so none was handed it)",
  );
  expect(
    sweepVerdict(run, 9_000, 30_000, undefined, { ...none, over_budget_at: null })?.error?.message,
  ).toMatch(/in time \(none asked, or its agent's concurrency caps held it back\)$/);
});
