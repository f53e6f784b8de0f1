import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Run } from '@runlog/core';
import { sweepOnce } from '../src/control/sweeper.js';
import { createTestApp, describeEachDb, json, type TestApp } from './harness.js';

let n = 0;
const uniq = (base: string) => `${base}-${Date.now().toString(36)}-${n++}`;

interface ErrorBody {
  error: { code: string; message: string; details: { field: string; message: string }[] };
}

describeEachDb('sub-runs queued for workers (parent_run_id)', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    // background off: the sweeper runs only when a test calls sweepOnce
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  const enqueue = (agent: string, body: Record<string, unknown> = {}) =>
    t.request('POST', `/api/v1/agents/${agent}/runs`, body);
  const queue = async (agent: string, body: Record<string, unknown> = {}) => {
    const res = await enqueue(agent, body);
    expect(res.statusCode, res.body).toBe(202);
    return json<Run>(res);
  };
  const claim = async (agent: string, worker_id: string) => {
    const res = await t.request('POST', '/api/v1/workers/claim', { agents: [agent], worker_id });
    expect(res.statusCode, res.body).toBe(200);
    return json<Run>(res);
  };
  const getRun = async (id: string) => json<Run>(await t.request('GET', `/api/v1/runs/${id}`));
  const record = async (events: Record<string, unknown>[]) => {
    const res = await t.request('POST', '/api/v1/ingest', { events });
    expect(json<{ rejected: number }>(res).rejected, res.body).toBe(0);
  };
  /** A run recorded by an SDK (no worker), running. */
  const recordRunning = async (agent: string, extra: Record<string, unknown> = {}) => {
    const id = uniq('parent');
    await record([{ type: 'run.start', run: { id, agent_id: agent, ...extra } }]);
    return id;
  };

  it('stops the queued and running sub-runs of a stopped run, and theirs, and nothing else', async () => {
    const orchestrator = uniq('orchestrator');
    const sub = uniq('sub');
    const held = uniq('held');
    const parent = await recordRunning(orchestrator);
    const queued = await queue(sub, { parent_run_id: parent, input: { part: 1 } });
    const claimedAgain = await queue(sub, { id: uniq('again'), parent_run_id: parent });
    const running = await queue(held, { parent_run_id: parent, input: { part: 2 } });
    expect((await claim(held, 'w-sub')).id).toBe(running.id);
    // a sub-run of the running sub-run, and a sub-run that ended with one queued under it
    const grandchild = await queue(uniq('leaf'), { parent_run_id: running.id });
    const ended = uniq('ended');
    await record([
      { type: 'run.start', run: { id: ended, agent_id: sub, parent_run_id: parent } },
      { type: 'run.end', run: { id: ended, status: 'succeeded', output: 'done' } },
    ]);
    const underEnded = await queue(sub, { parent_run_id: ended });
    const unrelated = await queue(sub, { input: { other: true } });

    const res = await t.request('POST', `/api/v1/runs/${parent}/cancel`);
    expect(res.statusCode, res.body).toBe(200);
    expect(json<Run>(res)).toMatchObject({ id: parent, status: 'running' });
    expect(json<Run>(res).cancel_requested_at).not.toBeNull();

    const cancelledBefore = (of: string) => ({
      status: 'cancelled',
      error: {
        type: 'Cancelled',
        message: `cancelled before it started: its parent run ${of} was stopped`,
      },
    });
    expect(await getRun(queued.id)).toMatchObject(cancelledBefore(parent));
    expect(await getRun(claimedAgain.id)).toMatchObject(cancelledBefore(parent));
    const told = await getRun(running.id);
    expect(told).toMatchObject({ status: 'running' });
    expect(told.cancel_requested_at).not.toBeNull();
    expect(await getRun(grandchild.id)).toMatchObject(cancelledBefore(running.id));
    expect(await getRun(ended)).toMatchObject({ status: 'succeeded', cancel_requested_at: null });
    expect(await getRun(underEnded.id)).toMatchObject({ status: 'queued' });
    expect(await getRun(unrelated.id)).toMatchObject({ status: 'queued' });
    // listed as the stopped run's sub-runs, as recorded ones are
    const listed = json<{ runs: Run[] }>(
      await t.request('GET', `/api/v1/runs?parent_run_id=${parent}`),
    );
    expect(listed.runs.map((r) => r.id).sort()).toEqual(
      [queued.id, running.id, claimedAgain.id, ended].sort(),
    );
    // the worker confirms: its sub-run is cancelled; stopping the parent again changes nothing
    await record([{ type: 'run.end', run: { id: running.id, status: 'cancelled' } }]);
    expect((await getRun(running.id)).status).toBe('cancelled');
    expect((await t.request('POST', `/api/v1/runs/${parent}/cancel`)).statusCode).toBe(200);
    expect(await getRun(underEnded.id)).toMatchObject({ status: 'queued' });
  });

  it('cancels a queued run with its queued sub-runs at once', async () => {
    const agent = uniq('queued-parent');
    const parent = await queue(agent);
    const child = await queue(agent, { parent_run_id: parent.id });
    const res = await t.request('POST', `/api/v1/runs/${parent.id}/cancel`);
    expect(json<Run>(res)).toMatchObject({ status: 'cancelled' });
    expect(await getRun(child.id)).toMatchObject({ status: 'cancelled' });
  });

  it('refuses a sub-run of a run stopped already (409 naming the field, nothing queued), not of one unknown or ended', async () => {
    const agent = uniq('refused');
    const stopping = await recordRunning(uniq('orchestrator'));
    expect((await t.request('POST', `/api/v1/runs/${stopping}/cancel`)).statusCode).toBe(200);
    const res = await enqueue(agent, { parent_run_id: stopping });
    expect(res.statusCode).toBe(409);
    const error = json<ErrorBody>(res).error;
    expect(error.message).toBe(`run ${stopping} is being stopped: no sub-run of it is queued`);
    expect(error.details[0]!.field).toBe('body.parent_run_id');

    const cancelled = await queue(uniq('orchestrator'));
    await t.request('POST', `/api/v1/runs/${cancelled.id}/cancel`);
    const batch = await t.request('POST', '/api/v1/runs/enqueue', {
      runs: [{ agent_id: agent }, { agent_id: agent, parent_run_id: cancelled.id }],
    });
    expect(batch.statusCode).toBe(409);
    const batchError = json<ErrorBody>(batch).error;
    expect(batchError.message).toBe(
      `runs.1.parent_run_id: run ${cancelled.id} was stopped (cancelled): no sub-run of it is queued`,
    );
    expect(batchError.details[0]!.field).toBe('body.runs.1.parent_run_id');
    expect(
      json<{ total: number }>(await t.request('GET', `/api/v1/runs?agent_id=${agent}`)),
    ).toMatchObject({
      total: 0,
    });

    const self = uniq('self');
    const own = await enqueue(agent, { id: self, parent_run_id: self });
    expect(own.statusCode).toBe(400);
    expect(json<ErrorBody>(own).error.details[0]!.field).toBe('body.parent_run_id');

    // a parent whose start is still on its way from the SDK, and one that ended on its own
    const unknown = uniq('not-yet');
    expect(await queue(agent, { parent_run_id: unknown })).toMatchObject({
      parent_run_id: unknown,
      status: 'queued',
    });
    const done = uniq('done');
    await record([
      { type: 'run.start', run: { id: done, agent_id: agent } },
      { type: 'run.end', run: { id: done, status: 'failed', error: { message: 'boom' } } },
    ]);
    expect(await queue(agent, { parent_run_id: done })).toMatchObject({ parent_run_id: done });
    // an idempotent enqueue repeated after its parent was stopped answers the run it queued
    const child = await queue(agent, { id: uniq('child'), parent_run_id: done });
    const running = await recordRunning(agent);
    const mine = await queue(agent, { id: uniq('mine'), parent_run_id: running });
    await t.request('POST', `/api/v1/runs/${running}/cancel`);
    const again = await enqueue(agent, { id: mine.id, parent_run_id: running });
    expect(again.statusCode).toBe(202);
    expect(json<Run>(again)).toMatchObject({ id: mine.id, status: 'cancelled' });
    expect(child.status).toBe('queued');
  });

  it('stops the sub-runs of a run its timeout or its limits end', async () => {
    const slow = uniq('slow');
    const costly = uniq('costly');
    expect(
      (await t.request('PUT', `/api/v1/agents/${slow}`, { timeout_ms: 1000 })).statusCode,
    ).toBe(200);
    expect((await t.request('PUT', `/api/v1/agents/${costly}`, { max_steps: 1 })).statusCode).toBe(
      200,
    );
    const timedOut = await recordRunning(slow);
    const overBudget = await recordRunning(costly);
    await record(
      ['a', 'b'].map((id) => ({
        type: 'step.end',
        step: { id, run_id: overBudget, type: 'tool', status: 'succeeded' },
      })),
    );
    const sub = uniq('sub');
    const ofTimedOut = await queue(sub, { parent_run_id: timedOut });
    const ofOverBudget = await queue(sub, { parent_run_id: overBudget });
    await sweepOnce(t.ctx, Date.now() + 1500);
    expect(await getRun(timedOut)).toMatchObject({ status: 'timed_out' });
    expect(await getRun(overBudget)).toMatchObject({
      status: 'failed',
      error: { type: 'BudgetExceeded' },
    });
    for (const [child, parent] of [
      [ofTimedOut, timedOut],
      [ofOverBudget, overBudget],
    ] as const)
      expect(await getRun(child.id)).toMatchObject({
        status: 'cancelled',
        error: { message: `cancelled before it started: its parent run ${parent} was stopped` },
      });
    // and, ended so, a sub-run of either is refused
    expect((await enqueue(sub, { parent_run_id: overBudget })).statusCode).toBe(409);
    expect((await enqueue(sub, { parent_run_id: timedOut })).statusCode).toBe(409);
  });
});
