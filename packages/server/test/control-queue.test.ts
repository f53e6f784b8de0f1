import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  readableError,
  type AgentSummary,
  type Run,
  type RunList,
  type StatsResponse,
} from '@runlog/core';
import { sweepOnce } from '../src/control/sweeper.js';
import { findRun } from '../src/runs/runs.repository.js';
import { tryLockRuns } from '../src/ingest/unit-of-work.js';
import { createTestApp, describeEachDb, json, type TestApp } from './harness.js';

/** The advisory lock number the server takes for a key (`lockId`): the key in this schema. */
const LOCK_OF = (key: string) =>
  `hashtextextended(coalesce(current_schema(), '') || '/' || ${key}, 0)`;

const P = 'default';
let n = 0;
const uniq = (base: string) => `${base}-${Date.now().toString(36)}-${n++}`;

interface ErrorBody {
  error: { code: string; message: string };
}

describeEachDb('the run queue through the HTTP API', (dialect) => {
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
  const claim = (agent: string, extra: Record<string, unknown> = {}) =>
    t.request('POST', '/api/v1/workers/claim', { agents: [agent], ...extra });
  const getRun = async (id: string) => json<Run>(await t.request('GET', `/api/v1/runs/${id}`));
  const runsOf = async (agent: string) =>
    json<{ runs: Run[]; total: number }>(await t.request('GET', `/api/v1/runs?agent_id=${agent}`));
  const setTimeoutMs = async (agent: string, timeout_ms: number) =>
    expect((await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms })).statusCode).toBe(
      200,
    );

  it('answers a repeated enqueue with the same id with the same run, stored once', async () => {
    const agent = uniq('idempotent');
    const id = uniq('run');
    const first = await enqueue(agent, { id, input: { n: 1 } });
    expect(first.statusCode).toBe(202);
    const again = await enqueue(agent, { id, input: { n: 1 } });
    expect(again.statusCode).toBe(202);
    expect(json<Run>(again)).toEqual(json<Run>(first));
    const stored = await runsOf(agent);
    expect(stored.total).toBe(1);
    expect(stored.runs.map((r) => r.id)).toEqual([id]);
  });

  it('claims the oldest queued runs no one else holds, and the held one once it is free', async () => {
    const agent = uniq('held');
    const ids = [uniq('r0'), uniq('r1'), uniq('r2')];
    for (const id of ids) expect((await enqueue(agent, { id })).statusCode).toBe(202);
    if (dialect !== 'postgres') {
      const runs = json<{ runs: Run[] }>(await claim(agent, { max: 2 })).runs;
      expect(runs.map((r) => r.id)).toEqual(ids.slice(0, 2));
      return;
    }
    // another transaction (an ingest batch, another instance's write) holds the oldest run
    const holder = await t.ctx.db.pgPool!.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(${LOCK_OF('$1')})`, [`default/${ids[0]}`]);
      // the claim neither waits for it (nor deadlocks with it) nor takes it
      const first = json<{ runs: Run[] }>(await claim(agent, { max: 2 })).runs;
      expect(first.map((r) => r.id)).toEqual(ids.slice(1));
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    expect(json<Run>(await claim(agent)).id).toBe(ids[0]);
    // a claim locks no more runs than it takes: the others stay free for other instances
    await t.ctx.db.kysely.transaction().execute(async (trx) => {
      const got = await tryLockRuns(trx, 'default', ['x-a', 'x-b', 'x-c'], 1);
      expect(got).toEqual({ locked: ['x-a'], tried: 1 });
      const other = await t.ctx.db.pgPool!.connect();
      try {
        const free = await other.query<{ ok: boolean }>(
          `SELECT pg_try_advisory_lock(${LOCK_OF('$1')}) AS ok`,
          ['default/x-b'],
        );
        expect(free.rows[0]?.ok).toBe(true);
        await other.query(`SELECT pg_advisory_unlock(${LOCK_OF('$1')})`, ['default/x-b']);
      } finally {
        other.release();
      }
    });
  });

  it('claims past however many runs other claims hold, as SKIP LOCKED did', async () => {
    if (dialect !== 'postgres') return;
    const agent = uniq('many-held');
    const ids = Array.from({ length: 130 }, (_, i) => `${agent}-${String(i).padStart(3, '0')}`);
    const runs = ids.map((id) => ({ agent_id: agent, id }));
    expect((await t.request('POST', '/api/v1/runs/enqueue', { runs })).statusCode).toBe(202);
    // one max-100 claim on another instance holds the 120 oldest (and some more besides)
    const holder = await t.ctx.db.pgPool!.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        `SELECT pg_advisory_xact_lock(${LOCK_OF('k')}) FROM unnest($1::text[]) AS k`,
        [ids.slice(0, 120).map((id) => `default/${id}`)],
      );
      // before, a claim looked at the 40 oldest, found them held and answered 204
      const got = await claim(agent);
      expect(got.statusCode).toBe(200);
      expect(json<Run>(got).id).toBe(ids[120]);
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
  });

  it('refuses with 409 an enqueue whose id belongs to another agent, writing nothing', async () => {
    const agent = uniq('owner');
    const other = uniq('intruder');
    const id = uniq('run');
    const first = json<Run>(await enqueue(agent, { id, input: { n: 1 } }));
    const res = await enqueue(other, { id, input: { n: 2 } });
    expect(res.statusCode).toBe(409);
    expect(json<ErrorBody>(res).error).toMatchObject({
      code: 'conflict',
      message: `run ${id} already exists for agent ${agent}`,
    });
    expect(await getRun(id)).toEqual(first);
    expect((await runsOf(other)).total).toBe(0);
    // agents are created on first use: a refused enqueue must not create one
    expect((await t.request('GET', `/api/v1/agents/${other}`)).statusCode).toBe(404);
  });

  it('refuses (413) to queue an input its worker would get truncated, and to retry one stored so', async () => {
    const agent = uniq('big-input');
    const big = { doc: 'x'.repeat(1_100_000) };
    // before: queued with the input stored as a marker and a preview, which the worker executed
    const res = await enqueue(agent, { input: big });
    expect(res.statusCode).toBe(413);
    expect(json<ErrorBody>(res).error.code).toBe('payload_too_large');
    expect(json<ErrorBody>(res).error.message).toMatch(/^body\.input: 1100010 bytes of JSON/);
    expect((await runsOf(agent)).total).toBe(0);
    expect((await t.request('GET', `/api/v1/agents/${agent}`)).statusCode).toBe(404);
    const batch = await t.request('POST', '/api/v1/runs/enqueue', {
      runs: [
        { agent_id: agent, input: { n: 1 } },
        { agent_id: agent, input: big },
      ],
    });
    expect(batch.statusCode).toBe(413);
    expect(json<ErrorBody>(batch).error.message).toMatch(/^body\.runs\.1\.input: /);
    expect((await runsOf(agent)).total).toBe(0);
    // a run recorded as it ran keeps its input truncated; its retry would run on the preview
    const recorded = uniq('recorded');
    const started = await t.request('POST', '/api/v1/runs', {
      id: recorded,
      agent_id: agent,
      input: big,
    });
    expect(started.statusCode).toBeLessThan(300);
    await t.request('PATCH', `/api/v1/runs/${recorded}`, { status: 'failed' });
    expect((await getRun(recorded)).status).toBe('failed');
    const retry = await t.request('POST', `/api/v1/runs/${recorded}/retry`);
    expect(retry.statusCode).toBe(409);
    expect(json<ErrorBody>(retry).error.message).toMatch(/input was stored truncated/);
    expect(
      json<{ runs: Run[] }>(await t.request('GET', `/api/v1/runs?retry_of=${recorded}`)).runs,
    ).toEqual([]);
  });

  it('ends a queued run that nobody claims as timed_out once its agent timeout_ms passes', async () => {
    const agent = uniq('unclaimed');
    await setTimeoutMs(agent, 1000);
    const queued = json<Run>(await enqueue(agent));
    await sweepOnce(t.ctx);
    expect((await getRun(queued.id)).status).toBe('queued');
    await sweepOnce(t.ctx, Date.now() + 2000);
    const run = await getRun(queued.id);
    expect(run.status).toBe('timed_out');
    expect(run.error).toMatchObject({
      type: 'Timeout',
      message:
        "timed out after timeout_ms (1000 ms) while still queued: no worker claimed it in time (none asked, or its agent's concurrency caps held it back)",
    });
    expect(run.ended_at).not.toBeNull();
    expect(run.started_at).toBeNull();
    expect(run.duration_ms).toBeNull();
    expect((await claim(agent)).statusCode).toBe(204);
  });

  it('ends a run recorded without a worker as timed_out once its agent timeout_ms passes', async () => {
    const agent = uniq('recorded-timeout');
    await setTimeoutMs(agent, 1000);
    // its agent's clock a minute ahead: the timeout counts from when the server heard of the
    // start, not from the start it gives
    const before = Date.now();
    const started = before + 60_000;
    // one run starts with its agent; the other is begun by a step and named by a later start
    const direct = uniq('run');
    const named = uniq('run');
    await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: direct, agent_id: agent, started_at: started } },
        { type: 'step.start', step: { id: 's1', run_id: named, type: 'tool' } },
      ],
    });
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: named, agent_id: agent, started_at: started } }],
    });
    const after = Date.now();
    await sweepOnce(t.ctx, before + 999);
    expect((await getRun(direct)).status).toBe('running');
    expect((await getRun(named)).status).toBe('running');
    await sweepOnce(t.ctx, after + 1001);
    for (const id of [direct, named]) {
      expect(await getRun(id)).toMatchObject({
        status: 'timed_out',
        error: {
          type: 'Timeout',
          message: 'timed out after timeout_ms (1000 ms) without finishing',
        },
      });
    }
  });

  it('counts the timeout_ms of a run recorded from a host whose clock is behind from its arrival', async () => {
    const agent = uniq('clock-behind');
    await setTimeoutMs(agent, 1000);
    const id = uniq('run');
    const before = Date.now();
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id, agent_id: agent, started_at: before - 3_600_000 } }],
    });
    const after = Date.now();
    await sweepOnce(t.ctx, before + 999);
    expect((await getRun(id)).status).toBe('running');
    await sweepOnce(t.ctx, after + 1001);
    expect(await getRun(id)).toMatchObject({
      status: 'timed_out',
      error: { type: 'Timeout', message: 'timed out after timeout_ms (1000 ms) without finishing' },
    });
  });

  it('counts the timeout_ms of a run recorded from a host whose clock is ahead from its arrival, not from its start', async () => {
    const agent = uniq('clock-ahead');
    await setTimeoutMs(agent, 1000);
    const ahead = uniq('run');
    const never = uniq('run');
    const before = Date.now();
    await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: ahead, agent_id: agent, started_at: before + 3_600_000 } },
        {
          type: 'run.start',
          run: { id: never, agent_id: agent, started_at: '9999-01-01T00:00:00Z' },
        },
      ],
    });
    const after = Date.now();
    await sweepOnce(t.ctx, before + 999);
    expect((await getRun(ahead)).status).toBe('running');
    // before: an hour late, and a start in 9999 never
    await sweepOnce(t.ctx, after + 1001);
    for (const id of [ahead, never])
      expect(await getRun(id)).toMatchObject({
        status: 'timed_out',
        error: {
          type: 'Timeout',
          message: 'timed out after timeout_ms (1000 ms) without finishing',
        },
      });
  });

  it('counts the timeout_ms of a run first heard of by a step from that step, as its message says', async () => {
    const agent = uniq('step-first');
    await setTimeoutMs(agent, 1000);
    const id = uniq('run');
    const before = Date.now();
    // a step first: the run starts under `unknown`, and is named a moment later by its start,
    // whose clock is an hour behind
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'step.start', step: { id: 's1', run_id: id, type: 'tool', name: 'fetch' } }],
    });
    const heard = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id, agent_id: agent, started_at: before - 3_600_000 } }],
    });
    await sweepOnce(t.ctx, before + 999);
    expect((await getRun(id)).status).toBe('running');
    await sweepOnce(t.ctx, heard + 1001);
    // before: counted from the naming and told from the step, "(1050 ms)" or so
    expect(await getRun(id)).toMatchObject({
      status: 'timed_out',
      error: { type: 'Timeout', message: 'timed out after timeout_ms (1000 ms) without finishing' },
    });
  });

  it('ends the steps still running when the control plane ends or takes back their run', async () => {
    const agent = uniq('open-steps');
    await setTimeoutMs(agent, 1000);
    const started = Date.now() + 60_000;
    const timedOut = uniq('run');
    await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: timedOut, agent_id: agent, started_at: started } },
        {
          type: 'step.start',
          step: { id: 'open', run_id: timedOut, type: 'tool', started_at: started + 10 },
        },
        {
          type: 'step.end',
          step: { id: 'done', run_id: timedOut, type: 'tool', started_at: started },
        },
      ],
    });
    await sweepOnce(t.ctx, started + 1001);
    const ended = json<
      Run & { steps: { id: string; status: string; error: unknown; duration_ms: number }[] }
    >(await t.request('GET', `/api/v1/runs/${timedOut}?include=steps`));
    expect(ended).toMatchObject({ status: 'timed_out', error_count: 1, step_count: 2 });
    expect(ended.steps.find((s) => s.id === 'open')).toMatchObject({
      status: 'failed',
      error: {
        type: 'RunEnded',
        message: 'the run ended timed_out before this step reported its end',
      },
    });
    expect(ended.steps.find((s) => s.id === 'done')).toMatchObject({ status: 'succeeded' });

    // a worker gives its run back: the attempt's open step ends, the run waits in the queue
    const queued = json<Run>(await enqueue(uniq('released')));
    expect((await claim(queued.agent_id, { worker_id: 'w-give-back' })).statusCode).toBe(200);
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'step.start', step: { id: 'mid', run_id: queued.id, type: 'llm' } }],
    });
    await t.request('POST', `/api/v1/runs/${queued.id}/release`, { worker_id: 'w-give-back' });
    const back = json<Run & { steps: { status: string; error: { type: string } }[] }>(
      await t.request('GET', `/api/v1/runs/${queued.id}?include=steps`),
    );
    expect(back).toMatchObject({ status: 'queued', error_count: 1 });
    expect(back.steps[0]).toMatchObject({ status: 'failed', error: { type: 'Released' } });
  });

  it('ends a run cancelled, not queued again, when its worker releases it after a Stop', async () => {
    const agent = uniq('stopped-then-released');
    const queued = json<Run>(await enqueue(agent));
    expect((await claim(agent, { worker_id: 'w-release' })).statusCode).toBe(200);
    const stopped = await t.request('POST', `/api/v1/runs/${queued.id}/cancel`);
    expect(json<Run>(stopped)).toMatchObject({ status: 'running' });
    expect(json<Run>(stopped).cancel_requested_at).not.toBeNull();
    const released = await t.request('POST', `/api/v1/runs/${queued.id}/release`, {
      worker_id: 'w-release',
    });
    expect(released.statusCode).toBe(200);
    const run = await getRun(queued.id);
    expect(run).toMatchObject({
      status: 'cancelled',
      lease_expires_at: null,
      error: { type: 'Cancelled', message: 'stopped while its worker shut down' },
    });
    expect(run.ended_at).not.toBeNull();
    expect(run.duration_ms).toBe(Date.parse(run.ended_at!) - Date.parse(run.started_at!));
    expect(json<Run>(released)).toEqual(run);
    expect((await claim(agent)).statusCode).toBe(204);
  });

  it('counts the deadline of a claimed run from the claim, not from the enqueue', async () => {
    const agent = uniq('deadline');
    await setTimeoutMs(agent, 60_000);
    const queued = json<Run>(await enqueue(agent));
    // as if the run had waited 50 s in the queue: its queued deadline is 10 s away
    const queuedAt = Date.parse(queued.queued_at!) - 50_000;
    await t.ctx.db.kysely
      .updateTable('runs')
      .set({ queued_at: queuedAt, deadline_at: queuedAt + 60_000 })
      .where('project_id', '=', P)
      .where('id', '=', queued.id)
      .execute();
    const claimed = json<Run>(await claim(agent, { lease_ms: 3_600_000 }));
    expect(claimed.id).toBe(queued.id);
    const startedAt = Date.parse(claimed.started_at!);
    expect((await findRun(t.ctx.db, P, queued.id))?.deadline_at).toBe(startedAt + 60_000);
    await sweepOnce(t.ctx, startedAt + 30_000);
    expect((await getRun(queued.id)).status).toBe('running');
    await sweepOnce(t.ctx, startedAt + 61_000);
    const run = await getRun(queued.id);
    expect(run.status).toBe('timed_out');
    expect(readableError(run.error!).message).toBe(
      'timed out after timeout_ms (60000 ms) without finishing',
    );
  });

  it('holds a run queued with delay_ms or run_at until then, and a waiting claim takes it then', async () => {
    const agent = uniq('later');
    await setTimeoutMs(agent, 60_000);
    const asked = Date.now();
    const later = json<Run>(await enqueue(agent, { delay_ms: 1_500, input: { n: 1 } }));
    const queuedAt = Date.parse(later.queued_at!);
    expect(queuedAt).toBeGreaterThanOrEqual(asked + 1_500);
    expect(queuedAt).toBeLessThan(Date.now() + 1_500 + 1);
    expect(later.status).toBe('queued');
    // its wait for a worker (the agent's timeout) counts from when it may start
    expect((await findRun(t.ctx.db, P, later.id))?.deadline_at).toBe(queuedAt + 60_000);
    // it has not happened yet: not the agent's latest run
    const latest = async () =>
      json<AgentSummary>(await t.request('GET', `/api/v1/agents/${agent}`)).latest_run?.id ?? null;
    expect(await latest()).toBeNull();
    // a run queued after it, to start now, goes first
    const now = json<Run>(await enqueue(agent));
    expect(await latest()).toBe(now.id);
    expect(json<Run>(await claim(agent)).id).toBe(now.id);
    expect((await claim(agent)).statusCode).toBe(204);
    // the sweeper leaves it be though its queued_at is ahead of the deadline of a plain run
    await sweepOnce(t.ctx, queuedAt + 30_000);
    expect((await getRun(later.id)).status).toBe('queued');
    // a claim long-polling from before its time takes it when it comes (within a poll)
    const claimed = json<Run>(await claim(agent, { wait_ms: 10_000 }));
    expect(claimed.id).toBe(later.id);
    expect(Date.parse(claimed.started_at!)).toBeGreaterThanOrEqual(queuedAt);

    // run_at: an instant (ISO or epoch ms); one passed already starts at once
    const at = Date.now() + 3_600_000;
    const iso = json<Run>(await enqueue(agent, { run_at: new Date(at).toISOString() }));
    expect(iso.queued_at).toBe(new Date(at).toISOString());
    const passed = json<Run>(await enqueue(agent, { run_at: Date.now() - 86_400_000 }));
    expect(Date.parse(passed.queued_at!)).toBeGreaterThanOrEqual(asked);
    expect(json<Run>(await claim(agent)).id).toBe(passed.id);
    expect((await claim(agent)).statusCode).toBe(204);
    // listed where it starts: ahead of every run of the agent, and Stop cancels it
    expect((await runsOf(agent)).runs[0]!.id).toBe(iso.id);
    expect(await latest()).toBe(passed.id);
    const cancelled = json<Run>(await t.request('POST', `/api/v1/runs/${iso.id}/cancel`));
    expect(cancelled.status).toBe('cancelled');

    // the same through POST /runs/enqueue, and sent again with its id, the same run
    const id = uniq('batch-later');
    const body = { runs: [{ agent_id: agent, id, delay_ms: 600_000 }] };
    const [batched] = json<{ runs: Run[] }>(
      await t.request('POST', '/api/v1/runs/enqueue', body),
    ).runs;
    expect(Date.parse(batched!.queued_at!) - Date.now()).toBeGreaterThan(590_000);
    expect(
      json<{ runs: Run[] }>(await t.request('POST', '/api/v1/runs/enqueue', body)).runs,
    ).toEqual([batched]);
  });

  it('retries with a fix to the input, even a run whose own input was stored truncated', async () => {
    const agent = uniq('fixed-input');
    const failed = json<Run>(await enqueue(agent, { input: { pr: 1, lang: 'fr' } }));
    expect(json<Run>(await claim(agent)).id).toBe(failed.id);
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.end', run: { id: failed.id, status: 'failed' } }],
    });
    const retry = async (body: unknown) =>
      t.request('POST', `/api/v1/runs/${failed.id}/retry`, body);
    const fixed = json<Run>(await retry({ input: { pr: 1, lang: 'en' } }));
    expect(fixed).toMatchObject({
      retry_of: failed.id,
      attempt: 2,
      status: 'queued',
      input: { pr: 1, lang: 'en' },
    });
    // null: a retry without input; left out, the run's own
    expect(json<Run>(await retry({ input: null })).input).toBeNull();
    expect(json<Run>(await retry({})).input).toEqual({ pr: 1, lang: 'fr' });
    // over the field limit: 413 naming it, nothing queued
    const before = (await runsOf(agent)).total;
    const big = await retry({ input: { doc: 'x'.repeat(1_100_000) } });
    expect(big.statusCode).toBe(413);
    expect(json<ErrorBody>(big).error.message).toMatch(/^body\.input: 1100010 bytes of JSON/);
    expect((await runsOf(agent)).total).toBe(before);
    // a run recorded with an input stored truncated: no retry on its preview, but one on a
    // fixed input is fine
    const recorded = uniq('truncated');
    await t.request('POST', '/api/v1/runs', {
      id: recorded,
      agent_id: agent,
      input: { doc: 'x'.repeat(1_100_000) },
    });
    await t.request('PATCH', `/api/v1/runs/${recorded}`, { status: 'failed' });
    expect((await t.request('POST', `/api/v1/runs/${recorded}/retry`)).statusCode).toBe(409);
    const small = await t.request('POST', `/api/v1/runs/${recorded}/retry`, {
      input: { doc: 'short' },
    });
    expect(small.statusCode).toBe(201);
    expect(json<Run>(small).input).toEqual({ doc: 'short' });
  });

  it('lists, counts and sums a run held back and stopped before its start when it was stopped', async () => {
    const agent = uniq('stopped-early');
    const thread = uniq('thread');
    const later = json<Run>(await enqueue(agent, { delay_ms: 3 * 3_600_000, thread_id: thread }));
    const stopped = json<Run>(await t.request('POST', `/api/v1/runs/${later.id}/cancel`));
    expect(stopped.status).toBe('cancelled');
    // the start it was to have is kept ("was to start" on its page)
    expect(stopped.queued_at).toBe(later.queued_at);
    const now = json<Run>(await enqueue(agent, {}));
    // newest first: the run queued after the stop comes first, not the stopped one
    const list = json<RunList>(await t.request('GET', `/api/v1/runs?agent_id=${agent}`));
    expect(list.runs.map((r) => r.id)).toEqual([now.id, later.id]);
    // the stats count it in the hour it was stopped, not three hours ahead
    const window = (from: number, to: number) =>
      `/api/v1/runs/stats?agent_id=${agent}&from=${from}&to=${to}`;
    const at = Date.parse(stopped.ended_at!);
    const stats = json<StatsResponse>(await t.request('GET', window(at - 60_000, at + 60_000)));
    expect(stats.totals.by_status.cancelled).toBe(1);
    const ahead = json<StatsResponse>(
      await t.request('GET', window(at + 3_600_000, at + 4 * 3_600_000)),
    );
    expect(ahead.totals.runs).toBe(0);
    // its thread's last activity is now, not "in 3 h"
    const threadSummary = json<{ last_at: string }>(
      await t.request('GET', `/api/v1/threads/${thread}`),
    );
    expect(Date.parse(threadSummary.last_at)).toBeLessThanOrEqual(Date.now());
  });

  it('starts now a run held back until later, its wait for a worker counted from now', async () => {
    const agent = uniq('start-now');
    await setTimeoutMs(agent, 60_000);
    const later = json<Run>(await enqueue(agent, { delay_ms: 3 * 3_600_000 }));
    expect((await claim(agent)).statusCode).toBe(204);
    // the stats count it in the hour it starts: not in the hours to the next half hour (3 h
    // ahead, whatever the minute), then in them
    const statsRuns = async () => {
      const q = `agent_id=${agent}&from=${Date.now() - 3_600_000}&to=${Date.now() + 1_800_000}`;
      return json<{ totals: { runs: number } }>(await t.request('GET', `/api/v1/runs/stats?${q}`))
        .totals.runs;
    };
    expect(await statsRuns()).toBe(0);
    const before = Date.now();
    const res = await t.request('POST', `/api/v1/runs/${later.id}/start-now`);
    expect(res.statusCode).toBe(200);
    const started = json<Run>(res);
    const at = Date.parse(started.queued_at!);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
    expect((await findRun(t.ctx.db, P, later.id))?.deadline_at).toBe(at + 60_000);
    // listed now, among the runs of now
    expect((await getRun(later.id)).queued_at).toBe(started.queued_at);
    expect(await statsRuns()).toBe(1);
    // again: a run already due is answered as it is
    const again = await t.request('POST', `/api/v1/runs/${later.id}/start-now`);
    expect(again.statusCode).toBe(200);
    expect(json<Run>(again)).toEqual(started);
    // a worker takes it at once
    expect(json<Run>(await claim(agent)).id).toBe(later.id);
    const running = await t.request('POST', `/api/v1/runs/${later.id}/start-now`);
    expect(running.statusCode).toBe(409);
    expect(json<ErrorBody>(running).error.message).toBe(
      `run ${later.id} is running: only a queued run waits to start`,
    );
    expect((await t.request('POST', '/api/v1/runs/no-such-run/start-now')).statusCode).toBe(404);
  });

  it('refuses a start both delayed and at a time, too far ahead or malformed, naming the field and queueing nothing', async () => {
    const agent = uniq('later-bad');
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        { delay_ms: 1000, run_at: Date.now() + 5000 },
        'body.run_at',
        /delay_ms or run_at, not both/,
      ],
      [
        { run_at: new Date(Date.now() + 400 * 86_400_000).toISOString() },
        'body.run_at',
        /more than a year ahead/,
      ],
      [{ delay_ms: 366 * 86_400_000 }, 'body.delay_ms', /./],
      [{ delay_ms: -1 }, 'body.delay_ms', /./],
      [{ delay_ms: 1.5 }, 'body.delay_ms', /./],
      [{ run_at: 'tomorrow' }, 'body.run_at', /ISO-8601/],
    ];
    for (const [body, field, message] of cases) {
      const res = await enqueue(agent, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      const error = json<{ error: { message: string; details: { field: string }[] } }>(res).error;
      expect(error.details[0]!.field).toBe(field);
      expect(error.message).toMatch(message);
    }
    const batch = await t.request('POST', '/api/v1/runs/enqueue', {
      runs: [{ agent_id: agent }, { agent_id: agent, delay_ms: 10, run_at: Date.now() }],
    });
    expect(batch.statusCode).toBe(400);
    expect(json<ErrorBody>(batch).error.message).toMatch(/^body\.runs\.1\.run_at: /);
    expect((await runsOf(agent)).total).toBe(0);
    expect((await t.request('GET', `/api/v1/agents/${agent}`)).statusCode).toBe(404);
  });
});
