import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  MAX_JSON_DEPTH,
  TOO_DEEP,
  type ApiErrorBody,
  type IngestEvent,
  type Run,
  type Step,
  readableError,
} from '@runlog/core';
import {
  describeEachDb,
  createTestApp,
  ingestOk,
  json,
  waitFor,
  type TestApp,
} from '../../test/harness.js';
import { findRun, listSteps } from '../runs/runs.repository.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import { normalizeStepType } from './apply.js';
import { IngestWriter, applyEvents } from './writer.js';
import { deleteRun } from '../control/control.service.js';
import { closeContext, createContext } from '../server.js';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');

/** A 207 answer of /ingest: each event's result, a refused one with its error. */
interface PartialAnswer {
  accepted: number;
  rejected: number;
  results: {
    index: number;
    ok: boolean;
    error?: { code: string; message: string; details: { field: string }[] };
  }[];
}

function fullRun(runId: string, agentId = 'bug-triager') {
  return [
    {
      type: 'run.start',
      run: {
        id: runId,
        agent_id: agentId,
        trigger: 'api',
        source: 'n8n',
        input: { pr: 42 },
        started_at: T0,
        tags: ['ci'],
      },
    },
    {
      type: 'step.start',
      step: {
        id: `${runId}-s1`,
        run_id: runId,
        type: 'llm',
        name: 'plan',
        model: 'gpt-4o-mini',
        started_at: T0 + 10,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${runId}-s1`,
        run_id: runId,
        status: 'succeeded',
        input_tokens: 1200,
        output_tokens: 300,
        output: 'plan text',
        ended_at: T0 + 510,
      },
    },
    {
      type: 'step.start',
      step: {
        id: `${runId}-s2`,
        run_id: runId,
        parent_step_id: `${runId}-s1`,
        type: 'tool',
        name: 'search',
        started_at: T0 + 600,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${runId}-s2`,
        run_id: runId,
        status: 'error',
        error: 'timeout talking to GitHub',
        ended_at: T0 + 900,
      },
    },
    { type: 'run.update', run: { id: runId, metadata: { pr_title: 'Fix it' } } },
    {
      type: 'run.end',
      run: { id: runId, status: 'success', output: { verdict: 'ok' }, ended_at: T0 + 1000 },
    },
  ];
}

/**
 * Runs `between` just before the next write a route hands to the write path (by `submit` or
 * `transact`), then lets that write go on: the window between a route's checks and its write.
 */
function beforeNextWrite(writer: IngestWriter, between: () => Promise<unknown>): void {
  const own = IngestWriter.prototype;
  const intercept = async () => {
    // the own properties shadow the class's methods: deleting them ends the interception
    Reflect.deleteProperty(writer, 'submit');
    Reflect.deleteProperty(writer, 'transact');
    await between();
  };
  Object.assign(writer, {
    submit: async (...args: Parameters<IngestWriter['submit']>) => {
      await intercept();
      return own.submit.apply(writer, args);
    },
    transact: async (...args: Parameters<IngestWriter['transact']>) => {
      await intercept();
      return own.transact.apply(writer, args);
    },
  });
}

async function snapshot(t: TestApp, runId: string) {
  const run = await findRun(t.ctx.db, 'default', runId);
  const steps = await listSteps(t.ctx.db, 'default', runId);
  const { created_at: _c, updated_at: _u, lease_expires_at: _l, ...stable } = toRun(run!);
  return {
    run: stable,
    steps: steps.map((s) => toStep(s)).sort((a, b) => a.id.localeCompare(b.id)),
  };
}

describeEachDb('POST /ingest', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it('records a full run with its steps, rollups and computed cost', async () => {
    const res = await t.request('POST', '/api/v1/ingest', { events: fullRun('full-1') });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({ accepted: 7, rejected: 0 });
    const { run, steps } = await snapshot(t, 'full-1');
    expect(run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      trigger: 'api',
      source: 'n8n',
      input: { pr: 42 },
      output: { verdict: 'ok' },
      metadata: { pr_title: 'Fix it' },
      tags: ['ci'],
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:01.000Z',
      duration_ms: 1000,
      step_count: 2,
      error_count: 1,
      llm_calls: 1,
      tool_calls: 1,
      input_tokens: 1200,
      output_tokens: 300,
      total_tokens: 1500,
      model: 'gpt-4o-mini',
    });
    // gpt-4o-mini: 1200 * $0.15/M + 300 * $0.60/M
    expect(run.cost_usd).toBeCloseTo(0.00036, 9);
    expect(steps).toHaveLength(2);
    expect(steps[0]).toMatchObject({
      type: 'llm',
      status: 'succeeded',
      duration_ms: 500,
      output: 'plan text',
    });
    expect(steps[1]).toMatchObject({
      type: 'tool',
      status: 'failed',
      parent_step_id: 'full-1-s1',
      error: { message: 'timeout talking to GitHub' },
    });
  });

  it('changes nothing when the same batch is sent twice', async () => {
    await t.request('POST', '/api/v1/ingest', { events: fullRun('twice-1') });
    const first = await snapshot(t, 'twice-1');
    const again = await t.request('POST', '/api/v1/ingest', { events: fullRun('twice-1') });
    expect(again.statusCode).toBe(200);
    expect(await snapshot(t, 'twice-1')).toEqual(first);
  });

  it('gives the same run when events arrive in reverse order', async () => {
    await t.request('POST', '/api/v1/ingest', { events: fullRun('order-fwd', 'order-agent') });
    const reversed = fullRun('order-rev', 'order-agent').reverse();
    expect((await t.request('POST', '/api/v1/ingest', { events: reversed })).statusCode).toBe(200);
    const fwd = await snapshot(t, 'order-fwd');
    const rev = await snapshot(t, 'order-rev');
    // seq is the arrival order (unless the caller gives one), so it alone may differ
    const strip = (s: typeof fwd) =>
      JSON.parse(
        JSON.stringify({ ...s, steps: s.steps.map(({ seq: _seq, ...rest }) => rest) })
          .replaceAll('order-fwd', 'X')
          .replaceAll('order-rev', 'X'),
      ) as unknown;
    expect(strip(rev)).toEqual(strip(fwd));
  });

  it('never stores a run or step ending before it starts when its start comes later, from a clock ahead', async () => {
    const end = Date.parse('2026-03-01T10:00:00.000Z');
    const late = end + 10_000;
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.end', run: { id: 'skewed-1', status: 'succeeded', ended_at: end } },
        {
          type: 'step.end',
          step: { id: 's', run_id: 'skewed-1', status: 'succeeded', ended_at: end },
        },
        { type: 'run.start', run: { id: 'skewed-1', agent_id: 'a', started_at: late } },
        {
          type: 'step.start',
          step: { id: 's', run_id: 'skewed-1', type: 'tool', started_at: late },
        },
      ],
    });
    expect(res.statusCode).toBe(200);
    const { run, steps } = await snapshot(t, 'skewed-1');
    expect(run).toMatchObject({
      agent_id: 'a',
      started_at: new Date(end).toISOString(),
      duration_ms: 0,
    });
    expect(steps[0]).toMatchObject({
      type: 'tool',
      started_at: new Date(end).toISOString(),
      duration_ms: 0,
    });
  });

  it("never moves a step's updated_at back, so other instances do not take its change for a stale one", async () => {
    const start = { type: 'step.start', step: { id: 's', run_id: 'step-clock-1', type: 'tool' } };
    expect((await t.request('POST', '/api/v1/ingest', { events: [start] })).statusCode).toBe(200);
    // the start was written by an instance whose clock is a minute ahead
    const ahead = Date.now() + 60_000;
    await t.ctx.db.kysely
      .updateTable('steps')
      .set({ updated_at: ahead })
      .where('run_id', '=', 'step-clock-1')
      .execute();
    const end = {
      type: 'step.end',
      step: { id: 's', run_id: 'step-clock-1', status: 'succeeded' },
    };
    expect((await t.request('POST', '/api/v1/ingest', { events: [end] })).statusCode).toBe(200);
    const row = await t.ctx.db.kysely
      .selectFrom('steps')
      .select(['status', 'updated_at'])
      .where('run_id', '=', 'step-clock-1')
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'succeeded', updated_at: ahead + 1 });
  });

  it('leaves the duration unknown when a start without a time arrives after the end', async () => {
    const end = { type: 'run.end', run: { id: 'late-start-1', status: 'succeeded' } };
    expect((await t.request('POST', '/api/v1/ingest', { events: [end] })).statusCode).toBe(200);
    const start = { type: 'run.start', run: { id: 'late-start-1', agent_id: 'a' } };
    expect((await t.request('POST', '/api/v1/ingest', { events: [start] })).statusCode).toBe(200);
    const { run } = await snapshot(t, 'late-start-1');
    // the server's clock at the start's arrival is no start: it was 0 ms, counted in p50
    expect(run).toMatchObject({ agent_id: 'a', started_at: null, duration_ms: null });
  });

  it("records an LLM step's first token, held between its start and end, in every read", async () => {
    const step = (id: string, fields: object) => ({
      type: 'step.end',
      step: {
        id,
        run_id: 'ttft-1',
        type: 'llm',
        started_at: '2026-03-01T10:00:00.000Z',
        ended_at: '2026-03-01T10:00:02.000Z',
        ...fields,
      },
    });
    const events = [
      { type: 'run.start', run: { id: 'ttft-1', agent_id: 'a', started_at: 1772359200000 } },
      step('streamed', { first_token_at: '2026-03-01T10:00:00.420Z' }),
      step('epoch-ms', { first_token_at: 1772359200250 }),
      // a clock mistake: before the start, after the end
      step('early', { first_token_at: '2026-03-01T09:59:59.000Z' }),
      step('late', { first_token_at: '2026-03-01T10:00:09.000Z' }),
      step('whole', {}),
    ];
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    const res = await t.request('GET', '/api/v1/runs/ttft-1/steps');
    const byId = Object.fromEntries(
      (json(res).steps as Step[]).map((s) => [s.id, [s.first_token_at, s.time_to_first_token_ms]]),
    );
    expect(byId).toEqual({
      streamed: ['2026-03-01T10:00:00.420Z', 420],
      'epoch-ms': ['2026-03-01T10:00:00.250Z', 250],
      early: ['2026-03-01T10:00:00.000Z', 0],
      late: ['2026-03-01T10:00:02.000Z', 2000],
      whole: [null, null],
    });
    // a later event without it keeps it; the same batch again changes nothing
    const again = await t.request('POST', '/api/v1/ingest', { events });
    expect(again.statusCode).toBe(200);
    const detail = json(await t.request('GET', '/api/v1/runs/ttft-1?include=steps')) as {
      steps: Step[];
    };
    expect(detail.steps.find((s) => s.id === 'streamed')?.time_to_first_token_ms).toBe(420);
    const bad = await t.request('POST', '/api/v1/ingest', {
      events: [step('bad', { first_token_at: 'soon' })],
    });
    expect(bad.statusCode).toBe(207);
    expect(JSON.stringify(json(bad))).toContain('step.first_token_at');
  });

  it('keeps a terminal run terminal when a late event arrives', async () => {
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.end', run: { id: 'late-1', agent_id: 'a', status: 'cancelled' } }],
    });
    await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'late-1' } },
        { type: 'run.end', run: { id: 'late-1', status: 'succeeded' } },
        { type: 'step.end', step: { id: 'late-s', run_id: 'late-1', type: 'tool' } },
      ],
    });
    const { run, steps } = await snapshot(t, 'late-1');
    expect(run.status).toBe('cancelled');
    expect(steps.map((s) => s.id)).toEqual(['late-s']);
    expect(run.step_count).toBe(1);
  });

  it("keeps a finished run's result when a late end reports another outcome", async () => {
    const end = (id: string, run: Record<string, unknown>) =>
      t.request('POST', '/api/v1/ingest', { events: [{ type: 'run.end', run: { id, ...run } }] });
    await end('late-ok', { agent_id: 'a', status: 'succeeded', output: { v: 1 }, ended_at: T0 });
    await end('late-ok', { status: 'failed', error: { message: 'late' }, ended_at: T0 + 5 });
    await end('late-fail', { agent_id: 'a', status: 'failed', error: { message: 'boom' } });
    await end('late-fail', { status: 'succeeded', output: { late: true } });
    const ok = (await snapshot(t, 'late-ok')).run;
    expect(ok).toMatchObject({ status: 'succeeded', output: { v: 1 }, error: null });
    expect(ok.ended_at).toBe(new Date(T0).toISOString());
    expect((await snapshot(t, 'late-fail')).run).toMatchObject({
      status: 'failed',
      output: null,
      error: { message: 'boom' },
    });
    // the same outcome sent again still fills what the first end left out
    await end('late-ok', { status: 'succeeded', error: null, metadata: { again: 1 } });
    expect((await snapshot(t, 'late-ok')).run.metadata).toEqual({ again: 1 });
  });

  it("keeps a finished step's result when a late end reports another outcome", async () => {
    const end = (step: Record<string, unknown>) =>
      t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'step.end', step: { run_id: 'late-steps', ...step } }],
      });
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'late-steps', agent_id: 'a' } }],
    });
    await end({ id: 'ok', type: 'llm', status: 'succeeded', input_tokens: 100, ended_at: T0 });
    await end({ id: 'ok', status: 'failed', error: { message: 'late' }, ended_at: T0 + 5 });
    await end({ id: 'bad', type: 'tool', status: 'failed', error: { message: 'boom' } });
    await end({ id: 'bad', status: 'succeeded', output: 'fixed' });
    let { run, steps } = await snapshot(t, 'late-steps');
    const byId = (id: string) => steps.find((s) => s.id === id)!;
    // before, the succeeded step showed the late error, and the failed one the late output
    expect(byId('ok')).toMatchObject({ status: 'succeeded', error: null, input_tokens: 100 });
    expect(byId('ok').ended_at).toBe(new Date(T0).toISOString());
    expect(byId('bad')).toMatchObject({
      status: 'failed',
      output: null,
      error: { message: 'boom' },
    });
    expect(run).toMatchObject({ step_count: 2, error_count: 1 });
    // the same outcome sent again still fills what the first end left out
    await end({ id: 'ok', status: 'succeeded', output: 'answer' });
    ({ run, steps } = await snapshot(t, 'late-steps'));
    expect(byId('ok').output).toBe('answer');
  });

  it("takes no first token from a late end that reports another outcome than the step's", async () => {
    const end = (step: Record<string, unknown>) =>
      t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'step.end', step: { run_id: 'late-ttft', type: 'llm', ...step } }],
      });
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'late-ttft', agent_id: 'a', started_at: T0 } }],
    });
    // failed before its stream began; then an end of another attempt (the same step id from
    // code run again) that streamed: its first token is not this step's
    await end({
      id: 'ttft-failed',
      status: 'failed',
      error: { message: 'refused' },
      started_at: T0,
      ended_at: T0 + 300,
    });
    await end({
      id: 'ttft-failed',
      status: 'succeeded',
      started_at: T0,
      first_token_at: T0 + 900,
      ended_at: T0 + 2000,
    });
    // the same outcome, late, still fills the first token the first end left out
    await end({ id: 'ttft-ok', status: 'succeeded', started_at: T0, ended_at: T0 + 2000 });
    await end({ id: 'ttft-ok', status: 'succeeded', first_token_at: T0 + 400 });
    const { steps } = await snapshot(t, 'late-ttft');
    const byId = (id: string) => steps.find((s) => s.id === id)!;
    expect(byId('ttft-failed')).toMatchObject({
      status: 'failed',
      first_token_at: null,
      time_to_first_token_ms: null,
    });
    expect(byId('ttft-ok')).toMatchObject({
      first_token_at: new Date(T0 + 400).toISOString(),
      time_to_first_token_ms: 400,
    });
  });

  it('ends a step still running when its run ends, until the step reports its own end', async () => {
    const send = (...events: unknown[]) => t.request('POST', '/api/v1/ingest', { events });
    const start = (id: string, at: number) => ({
      type: 'step.start',
      step: { id, run_id: 'open-1', type: 'tool', name: id, started_at: at },
    });
    await send(
      { type: 'run.start', run: { id: 'open-1', agent_id: 'a', started_at: T0 } },
      start('stored', T0 + 10),
    );
    // the run ends with one step stored running, one started in the same batch and one
    // started and ended in it, before and after the run's end
    await send(
      start('same-batch', T0 + 20),
      start('ends-after', T0 + 30),
      { type: 'run.end', run: { id: 'open-1', status: 'succeeded', ended_at: T0 + 100 } },
      { type: 'step.end', step: { id: 'ends-after', run_id: 'open-1', ended_at: T0 + 90 } },
    );
    let { run, steps } = await snapshot(t, 'open-1');
    const byId = (id: string) => steps.find((s) => s.id === id)!;
    for (const id of ['stored', 'same-batch']) {
      expect(byId(id)).toMatchObject({
        status: 'failed',
        ended_at: new Date(T0 + 100).toISOString(),
        error: {
          message: 'the run ended succeeded before this step reported its end',
          type: 'RunEnded',
        },
      });
    }
    expect(byId('stored').duration_ms).toBe(90);
    expect(byId('ends-after')).toMatchObject({ status: 'succeeded', error: null, duration_ms: 60 });
    expect(run).toMatchObject({ status: 'succeeded', step_count: 3, error_count: 2 });

    // the step's own end, arriving late, replaces the stand-in and the run's counts follow
    await send({
      type: 'step.end',
      step: { id: 'stored', run_id: 'open-1', output: 'done late', ended_at: T0 + 150 },
    });
    ({ run, steps } = await snapshot(t, 'open-1'));
    expect(byId('stored')).toMatchObject({
      status: 'succeeded',
      error: null,
      output: 'done late',
      ended_at: new Date(T0 + 150).toISOString(),
      duration_ms: 140,
    });
    expect(run).toMatchObject({ status: 'succeeded', error_count: 1 });

    // a step that starts after its run ended ends with it at once
    await send(start('after-end', T0 + 200));
    ({ steps } = await snapshot(t, 'open-1'));
    expect(byId('after-end')).toMatchObject({ status: 'failed', duration_ms: 0 });
    expect(byId('after-end').error).toMatchObject({ type: 'RunEnded' });
  });

  it('maps status aliases', async () => {
    const events = [
      ['alias-1', 'completed', 'succeeded'],
      ['alias-2', 'max_steps', 'failed'],
      ['alias-3', 'timeout', 'timed_out'],
      ['alias-4', 'canceled', 'cancelled'],
      ['alias-5', 'stopped', 'cancelled'],
      ['alias-6', 'error', 'failed'],
    ] as const;
    await t.request('POST', '/api/v1/ingest', {
      events: events.map(([id, status]) => ({
        type: 'run.end',
        run: { id, agent_id: 'a', status },
      })),
    });
    for (const [id, , expected] of events) {
      expect((await findRun(t.ctx.db, 'default', id))?.status).toBe(expected);
    }
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'alias-7', agent_id: 'a', status: 'pending' } }],
    });
    expect((await findRun(t.ctx.db, 'default', 'alias-7'))?.status).toBe('queued');
  });

  it('refuses a status named like an Object property, and keeps the events beside it', async () => {
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'proto-ok', agent_id: 'a' } },
        { type: 'run.start', run: { id: 'proto-1', agent_id: 'a', status: 'constructor' } },
        { type: 'run.update', run: { id: 'proto-ok', status: '__proto__' } },
        { type: 'step.end', step: { id: 's', run_id: 'proto-ok', status: 'constructor' } },
      ],
    });
    expect(res.statusCode).toBe(207);
    const answer = json<PartialAnswer>(res);
    expect(answer.results.map((r) => r.ok)).toEqual([true, false, false, false]);
    expect(answer.results[1]!.error?.details[0]?.field).toBe('events.1.run.status');
    expect(answer.results[3]!.error?.details[0]?.field).toBe('events.3.step.status');
    expect((await findRun(t.ctx.db, 'default', 'proto-ok'))?.status).toBe('running');
    expect(await findRun(t.ctx.db, 'default', 'proto-1')).toBeUndefined();
    const patch = await t.request('PATCH', '/api/v1/runs/proto-ok', { status: 'constructor' });
    expect(patch.statusCode).toBe(400);
    expect(json<ApiErrorBody>(patch).error.details).toEqual([
      expect.objectContaining({ field: 'body.status' }),
    ]);
  });

  it('refuses a time sent in epoch seconds, naming the field, and keeps the events beside it', async () => {
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'secs-ok', agent_id: 'a', started_at: 1_764_900_000_000 } },
        { type: 'run.start', run: { id: 'secs-1', agent_id: 'a', started_at: 1_764_900_000 } },
        { type: 'step.end', step: { id: 's', run_id: 'secs-ok', ended_at: 1_764_900_001 } },
      ],
    });
    expect(res.statusCode).toBe(207);
    const answer = json<PartialAnswer>(res);
    expect(answer.results.map((r) => r.ok)).toEqual([true, false, false]);
    expect(answer.results[1]!.error?.details[0]).toMatchObject({
      field: 'events.1.run.started_at',
      message: expect.stringContaining('looks like epoch seconds'),
    });
    expect(answer.results[2]!.error?.details[0]?.field).toBe('events.2.step.ended_at');
    expect(await findRun(t.ctx.db, 'default', 'secs-1')).toBeUndefined();
    expect((await findRun(t.ctx.db, 'default', 'secs-ok'))?.step_count).toBe(0);
  });

  it('refuses a time before 1970, whose run no cursor could page to, naming the field', async () => {
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        {
          type: 'run.start',
          run: { id: 'zero-1', agent_id: 'zero', started_at: '2026-01-01T00:00:00Z' },
        },
        {
          type: 'run.start',
          run: { id: 'zero-2', agent_id: 'zero', started_at: '0001-01-01T00:00:00Z' },
        },
        {
          type: 'run.start',
          run: { id: 'zero-3', agent_id: 'zero', started_at: '1969-12-31T23:59:59Z' },
        },
      ],
    });
    expect(res.statusCode).toBe(207);
    const answer = json<PartialAnswer>(res);
    expect(answer.results.map((r) => r.ok)).toEqual([true, false, false]);
    expect(answer.results[1]!.error?.details[0]?.field).toBe('events.1.run.started_at');
    // every run of the agent is reached page by page
    const page = json<{ runs: { id: string }[]; next_cursor: string | null }>(
      await t.request('GET', '/api/v1/runs?agent_id=zero&limit=1'),
    );
    expect(page.runs.map((r) => r.id)).toEqual(['zero-1']);
    expect(page.next_cursor).toBeNull();
  });

  it('keeps rollups right with 20 concurrent writers to one run', async () => {
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'conc-1', agent_id: 'conc' } }],
    });
    const writers = Array.from({ length: 20 }, (_, w) =>
      t.request('POST', '/api/v1/ingest', {
        events: Array.from({ length: 5 }, (_, i) => ({
          type: 'step.end',
          step: {
            id: `w${w}-s${i}`,
            run_id: 'conc-1',
            type: i % 2 ? 'tool' : 'llm',
            status: i === 4 ? 'failed' : 'succeeded',
            input_tokens: 10,
            output_tokens: 1,
            cost_usd: 0.001,
          },
        })),
      }),
    );
    const answers = await Promise.all(writers);
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(200));
    const run = toRun((await findRun(t.ctx.db, 'default', 'conc-1'))!);
    expect(run).toMatchObject({
      step_count: 100,
      error_count: 20,
      llm_calls: 60,
      tool_calls: 40,
      input_tokens: 1000,
      output_tokens: 100,
    });
    expect(run.cost_usd).toBeCloseTo(0.1, 9);
  });

  it('rejects an invalid event with its own error and keeps the valid ones', async () => {
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'mixed-1', agent_id: 'a' } },
        { type: 'run.start', run: { id: 'bad id with spaces' } },
        { type: 'step.end', step: { id: 's', run_id: 'mixed-1', input_tokens: -5 } },
        { type: 'nope' },
        { type: 'run.end', run: { id: 'mixed-1', status: 'weird' } },
        { type: 'run.end', run: { id: 'mixed-1', status: 'ok' } },
        // past a 32-bit column: PostgreSQL failed the whole batch with a 500
        { type: 'step.end', step: { id: 's2', run_id: 'mixed-1', seq: 2 ** 31 } },
        // past the last time a date can name, as text: stored, it failed every list with a 500
        { type: 'step.end', step: { id: 's3', run_id: 'mixed-1', started_at: '9999999999999999' } },
      ],
    });
    expect(res.statusCode).toBe(207);
    const body = json<PartialAnswer>(res);
    expect(body.accepted).toBe(2);
    expect(body.rejected).toBe(6);
    expect(body.results.map((r) => r.ok)).toEqual([
      true,
      false,
      false,
      false,
      false,
      true,
      false,
      false,
    ]);
    expect(body.results[6]?.error?.details[0]?.field).toBe('events.6.step.seq');
    expect(body.results[7]?.error?.details[0]?.field).toBe('events.7.step.started_at');
    expect(body.results[1]?.error?.details[0]?.field).toBe('events.1.run.id');
    expect(body.results[2]?.error?.details[0]?.field).toBe('events.2.step.input_tokens');
    expect(body.results[3]?.error?.details[0]?.field).toBe('events.3.type');
    expect(body.results[4]?.error?.message).toContain('events.4.run.status');
    expect((await findRun(t.ctx.db, 'default', 'mixed-1'))?.status).toBe('succeeded');
    expect(await listSteps(t.ctx.db, 'default', 'mixed-1')).toHaveLength(0);
  });

  it('refuses events of a run deleted while it was recording, and keeps the others of the batch', async () => {
    const start = { type: 'run.start', run: { id: 'deleted-1', agent_id: 'a' } };
    const step = (id: string) => ({
      type: 'step.end',
      step: { id, run_id: 'deleted-1', type: 'tool', name: id },
    });
    expect(
      (await t.request('POST', '/api/v1/ingest', { events: [start, step('s1')] })).statusCode,
    ).toBe(200);
    expect((await t.request('DELETE', '/api/v1/runs/deleted-1')).statusCode).toBe(204);
    // the agent goes on: its next steps and its end must not bring the run back
    const late = await t.request('POST', '/api/v1/ingest', {
      events: [
        step('s2'),
        { type: 'run.start', run: { id: 'kept-1', agent_id: 'a' } },
        { type: 'run.end', run: { id: 'deleted-1', status: 'succeeded' } },
      ],
    });
    expect(late.statusCode).toBe(207);
    const body = json<PartialAnswer>(late);
    expect(body).toMatchObject({ accepted: 1, rejected: 2 });
    expect(body.results.map((r) => r.ok)).toEqual([false, true, false]);
    expect(body.results[0]?.error?.code).toBe('not_found');
    expect(body.results[0]?.error?.message).toBe(
      'events.0.step.run_id: run deleted-1 was deleted: its events are not recorded',
    );
    expect(body.results[2]?.error?.details[0]?.field).toBe('events.2.run.id');
    expect(await findRun(t.ctx.db, 'default', 'deleted-1')).toBeUndefined();
    expect(await listSteps(t.ctx.db, 'default', 'deleted-1')).toEqual([]);
    expect(await findRun(t.ctx.db, 'default', 'kept-1')).toBeDefined();
    // POST /runs cannot take the id either
    const again = await t.request('POST', '/api/v1/runs', { id: 'deleted-1', agent_id: 'a' });
    expect(again.statusCode).toBe(409);
    expect(json<{ error: { details: { field: string }[] } }>(again).error.details[0]?.field).toBe(
      'body.id',
    );

    // a run that ended days ago is recorded by nobody: deleted, its id takes events again
    const old = Date.now() - 3 * 24 * 3_600_000;
    const oldRun = [
      { type: 'run.start', run: { id: 'deleted-old', agent_id: 'a', started_at: old } },
      { type: 'run.end', run: { id: 'deleted-old', status: 'succeeded', ended_at: old + 1000 } },
    ];
    expect((await t.request('POST', '/api/v1/ingest', { events: oldRun })).statusCode).toBe(200);
    expect((await t.request('DELETE', '/api/v1/runs/deleted-old')).statusCode).toBe(204);
    expect((await t.request('POST', '/api/v1/ingest', { events: oldRun })).statusCode).toBe(200);
    expect((await findRun(t.ctx.db, 'default', 'deleted-old'))?.status).toBe('succeeded');

    // a day later the id is free again, and retention forgets it
    await t.ctx.db.kysely
      .updateTable('deleted_runs')
      .set({ deleted_at: Date.now() - 25 * 3_600_000 })
      .where('run_id', '=', 'deleted-1')
      .execute();
    expect((await t.request('POST', '/api/v1/ingest', { events: [start] })).statusCode).toBe(200);
    expect(await findRun(t.ctx.db, 'default', 'deleted-1')).toBeDefined();
  });

  it('refuses the later events of a run deleted in the same group commit', async () => {
    const step = (id: string) => ({
      type: 'step.end' as const,
      step: { id, run_id: 'same-group', type: 'tool' as const },
    });
    await t.ctx.writer.submit('default', [
      { type: 'run.start', run: { id: 'same-group', agent_id: 'a' } },
    ]);
    // queued in one turn: they share one transaction, the delete between the two recordings
    const [before, deleted, after] = await Promise.all([
      t.ctx.writer.submit('default', [step('s1')]),
      deleteRun(t.ctx, 'default', 'same-group'),
      t.ctx.writer.submit('default', [step('s2'), step('s3')]),
    ]);
    expect(before).toEqual([]);
    expect(deleted).toBe(true);
    expect(after).toEqual([
      { index: 0, reason: 'deleted_run' },
      { index: 1, reason: 'deleted_run' },
    ]);
    expect(await findRun(t.ctx.db, 'default', 'same-group')).toBeUndefined();
  });

  it('rejects a malformed body, writing nothing', async () => {
    const cases: [unknown, string][] = [
      [{}, 'body.events'],
      [{ events: [] }, 'body.events'],
      [{ events: Array(1001).fill({ type: 'run.heartbeat', run: { id: 'x' } }) }, 'body.events'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request('POST', '/api/v1/ingest', body);
      expect(res.statusCode).toBe(400);
      const err = json<{ error: { code: string; details: { field: string }[] } }>(res).error;
      expect(err.code).toBe('invalid_input');
      expect(err.details[0]?.field).toBe(field);
    }
    const broken = await t.request('POST', '/api/v1/ingest', '{"events": [');
    expect(broken.statusCode).toBe(400);
    expect(json<{ error: { code: string } }>(broken).error.code).toBe('invalid_input');
    // a body that cannot be read as sent is refused for the header that says so, not as
    // broken JSON (gzip) or read wrongly as UTF-8 (another charset)
    const one = JSON.stringify({
      events: [{ type: 'run.start', run: { id: 'unread-1', input: 'café' } }],
    });
    for (const [headers, field] of [
      [{ 'content-encoding': 'gzip' }, 'headers.content-encoding'],
      [{ 'content-encoding': 'br' }, 'headers.content-encoding'],
      [{ 'content-type': 'application/json; charset=utf-16' }, 'headers.content-type'],
      [{ 'content-type': 'application/json; charset=latin1' }, 'headers.content-type'],
    ] as const) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/ingest',
        headers: {
          authorization: `Bearer ${t.adminKey}`,
          'content-type': 'application/json',
          ...headers,
        },
        payload: one,
      });
      expect(res.statusCode, field).toBe(400);
      expect(json<ApiErrorBody>(res).error.details).toEqual([
        { field, message: expect.any(String) },
      ]);
    }
    expect(await findRun(t.ctx.db, 'default', 'unread-1')).toBeUndefined();
    // plain ASCII reads the same in any such charset: an old client saying latin1 is fine
    const ascii = await t.app.inject({
      method: 'POST',
      url: '/api/v1/ingest',
      headers: {
        authorization: `Bearer ${t.adminKey}`,
        'content-type': 'application/json; charset=ISO-8859-1',
      },
      payload: JSON.stringify({ events: [{ type: 'run.start', run: { id: 'latin1-ascii' } }] }),
    });
    expect(ascii.statusCode).toBe(200);
    const poisoned = await t.request('POST', '/api/v1/ingest', '{"__proto__": {"events": []}}');
    expect(poisoned.statusCode).toBe(400);
    expect(json<ApiErrorBody>(poisoned).error.message).toMatch(/^body: a key named __proto__/);
  });

  it('refuses a NUL in a text field on its own, and keeps an error message holding one', async () => {
    const nul = '\u0000';
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'nul-1', agent_id: 'a', user_id: `u${nul}1` } },
        { type: 'run.start', run: { id: 'nul-2', agent_id: 'a', tags: [`t${nul}`] } },
        { type: 'step.start', step: { id: 'nul-s', run_id: 'nul-3', name: `n${nul}` } },
        { type: 'run.start', run: { id: 'nul-3', agent_id: 'a', source: 'cli' } },
        {
          type: 'run.end',
          run: { id: 'nul-3', status: 'failed', error: { message: `bad${nul}byte`, stack: nul } },
        },
      ],
    });
    expect(res.statusCode).toBe(207);
    const body = json<{
      results: { ok: boolean; error?: { details: { field: string; message: string }[] } }[];
    }>(res);
    expect(body.results.map((r) => r.ok)).toEqual([false, false, false, true, true]);
    expect(body.results[0]?.error?.details[0]).toMatchObject({
      field: 'events.0.run.user_id',
      message: expect.stringContaining('NUL'),
    });
    expect(body.results[1]?.error?.details[0]?.field).toBe('events.1.run.tags.0');
    expect(body.results[2]?.error?.details[0]?.field).toBe('events.2.step.name');
    expect(await findRun(t.ctx.db, 'default', 'nul-1')).toBeUndefined();
    const run = toRun((await findRun(t.ctx.db, 'default', 'nul-3'))!);
    expect(run.error).toEqual({ message: 'bad\ufffdbyte', stack: '\ufffd' });
    expect(await listSteps(t.ctx.db, 'default', 'nul-3')).toHaveLength(0);
  });

  it('stores a lone surrogate in a text field as U+FFFD, so filters and threads find it', async () => {
    // half an emoji, as a title cut in the middle of one ends
    await ingestOk(t, [
      {
        type: 'run.start',
        run: { id: 'half-1', agent_id: 'halves', thread_id: 'chat \ud83d', user_id: 'u\udc00' },
      },
      {
        type: 'step.end',
        step: { id: 's', run_id: 'half-1', type: 'llm', name: 'n\ud83d', model: 'm\ud83d' },
      },
    ]);
    const run = json<Run>(await t.request('GET', '/api/v1/runs/half-1?include=steps'));
    // SQLite answered 'chat \ufffd\ufffd\ufffd', PostgreSQL 'chat \ufffd'
    expect(run).toMatchObject({ thread_id: 'chat \ufffd', user_id: 'u\ufffd', model: 'm\ufffd' });
    expect((run as Run & { steps: Step[] }).steps[0]).toMatchObject({ name: 'n\ufffd' });
    const q = (s: string) => encodeURIComponent(s);
    const byThread = await t.request('GET', `/api/v1/runs?thread_id=${q('chat \ufffd')}`);
    expect(json<{ runs: Run[] }>(byThread).runs.map((r) => r.id)).toEqual(['half-1']);
    const byUser = await t.request('GET', `/api/v1/runs?user_id=${q('u\ufffd')}`);
    expect(json<{ runs: Run[] }>(byUser).runs.map((r) => r.id)).toEqual(['half-1']);
    const threads = await t.request('GET', '/api/v1/threads?agent_id=halves');
    expect(json<{ threads: { thread_id: string }[] }>(threads).threads).toMatchObject([
      { thread_id: 'chat \ufffd' },
    ]);
    const thread = await t.request('GET', `/api/v1/threads/${q('chat \ufffd')}`);
    expect(thread.statusCode).toBe(200);
  });

  it('stores a value nested past the depth limit cut there, and still lists the project', async () => {
    const nest = (levels: number, leaf: unknown = 'leaf'): unknown => {
      let value: unknown = leaf;
      for (let i = 0; i < levels; i++) value = i % 2 ? { k: value } : [value];
      return value;
    };
    // deep enough to run JSON.stringify out of stack (so written as text)
    const tooDeep = '['.repeat(5000) + ']'.repeat(5000);
    const events = [
      { type: 'run.start', run: { id: 'deep-2', agent_id: 'deep', metadata: { m: nest(200) } } },
      { type: 'step.end', step: { id: 's', run_id: 'deep-3', output: nest(MAX_JSON_DEPTH + 1) } },
      { type: 'run.start', run: { id: 'deep-3', agent_id: 'deep', input: nest(MAX_JSON_DEPTH) } },
    ];
    const res = await t.request(
      'POST',
      '/api/v1/ingest',
      `{"events": [{"type": "run.end", "run": {"id": "deep-1", "agent_id": "deep", "status": "succeeded", "input": ${tooDeep}}}, ${events.map((e) => JSON.stringify(e)).join(', ')}]}`,
    );
    // nothing is lost over it: every event is taken, the deep part alone is cut
    expect(res.statusCode).toBe(200);
    const listed = await t.request('GET', '/api/v1/runs?agent_id=deep');
    expect(listed.statusCode).toBe(200);
    const runs = json<{ runs: Run[] }>(listed).runs;
    expect(runs.map((r) => r.id).sort()).toEqual(['deep-1', 'deep-2', 'deep-3']);
    const byId = new Map(runs.map((r) => [r.id, r]));
    expect(byId.get('deep-1')?.status).toBe('succeeded');
    let cut: unknown = TOO_DEEP;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) cut = [cut];
    expect(byId.get('deep-1')?.input).toEqual(cut);
    // exactly at the limit, kept whole
    expect(byId.get('deep-3')?.input).toEqual(nest(MAX_JSON_DEPTH));
    const steps = await listSteps(t.ctx.db, 'default', 'deep-3');
    // the innermost array, level 129, is what was cut
    let cutStep: unknown = TOO_DEEP;
    for (let i = 1; i <= MAX_JSON_DEPTH; i++) cutStep = i % 2 ? { k: cutStep } : [cutStep];
    expect(JSON.parse(steps[0]!.output!)).toEqual(cutStep);

    const rest = await t.request(
      'POST',
      '/api/v1/runs',
      `{"agent_id": "deep", "input": ${tooDeep}}`,
    );
    expect(rest.statusCode).toBe(201);
  });

  it('never deadlocks two instances writing the same runs, and counts every step once', async () => {
    if (dialect !== 'postgres') return; // one SQLite writer holds the file alone
    const other = (await createContext(t.ctx.config)).ctx;
    try {
      // each instance counts the groups it had to run again (a deadlock, on this schema's
      // runs only: the database's own deadlock count takes in every test file's schemas)
      const retries = (ctx: typeof other) =>
        Number(/^runlog_writer_retries_total (\d+)$/m.exec(ctx.metrics.render())?.[1] ?? 0);
      const before = retries(t.ctx) + retries(other);
      const runs = Array.from({ length: 12 }, (_, i) => `dl-${i}`);
      const jobs: Promise<unknown>[] = [];
      for (let j = 0; j < 200; j++) {
        // each batch touches three runs, in an order of its own; batches alternate instances
        const picked = [...runs].sort(() => Math.random() - 0.5).slice(0, 3);
        const events = picked.map((run) => ({
          type: 'step.end' as const,
          step: { id: `s-${j}`, run_id: run, type: 'tool' as const, input_tokens: 1 },
        }));
        jobs.push((j % 2 ? other : t.ctx).writer.submit('default', events));
      }
      await Promise.all(jobs);
      expect(retries(t.ctx) + retries(other)).toBe(before);
      const counted = await t.ctx.db.kysely
        .selectFrom('runs')
        .select((eb) => eb.fn.sum<number>('step_count').as('n'))
        .where('id', 'like', 'dl-%')
        .executeTakeFirstOrThrow();
      expect(Number(counted.n)).toBe(200 * 3);
    } finally {
      await closeContext(other);
    }
  });

  it('moves updated_at forward on every change, even when the clock says an earlier time', async () => {
    const ingest = (events: unknown[]) => t.request('POST', '/api/v1/ingest', { events });
    await ingest([{ type: 'run.start', run: { id: 'clock-1', agent_id: 'clock' } }]);
    // another instance, whose clock runs ahead, wrote the run last
    const ahead = Date.now() + 60_000;
    await t.ctx.db.kysely
      .updateTable('runs')
      .set({ updated_at: ahead })
      .where('id', '=', 'clock-1')
      .execute();
    const seen: number[] = [];
    const unsubscribe = t.ctx.hub.subscribe((e) => {
      if (e.kind === 'run' && e.runId === 'clock-1') seen.push(e.updatedAt);
    });
    await ingest([{ type: 'run.end', run: { id: 'clock-1', status: 'succeeded' } }]);
    unsubscribe();
    const row = (await findRun(t.ctx.db, 'default', 'clock-1'))!;
    expect(row.status).toBe('succeeded');
    expect(row.updated_at).toBe(ahead + 1);
    expect(seen).toEqual([ahead + 1]);
  });

  it('stores an oversized field truncated with a marker and its size', async () => {
    const big = 'x'.repeat(1_200_000);
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'big-1', agent_id: 'a', input: { text: big } } }],
    });
    expect(res.statusCode).toBe(200);
    const run = toRun((await findRun(t.ctx.db, 'default', 'big-1'))!);
    expect(run.input).toMatchObject({ __runlog_truncated__: true, original_size: big.length + 11 });
    expect(JSON.stringify(run.input).length).toBeLessThanOrEqual(1024 * 1024);
  });

  it('keeps metadata stored truncated as it is when the batch comes again, and replaces it on an update', async () => {
    const start = {
      type: 'run.start',
      run: { id: 'big-meta', agent_id: 'a', metadata: { m: 'x'.repeat(1_100_000), k: 1 } },
    };
    const stored = async () =>
      toRun((await findRun(t.ctx.db, 'default', 'big-meta'))!).metadata as Record<string, unknown>;
    await t.request('POST', '/api/v1/ingest', { events: [start] });
    const first = await stored();
    expect(first).toMatchObject({ __runlog_truncated__: true });
    await t.request('POST', '/api/v1/ingest', { events: [start] });
    await t.request('POST', '/api/v1/ingest', { events: [start] });
    expect(await stored()).toEqual(first);
    // the truncated keys cannot be merged with: an update's keys replace them, unmixed
    const update = { type: 'run.update', run: { id: 'big-meta', metadata: { pr_title: 'hello' } } };
    await t.request('POST', '/api/v1/ingest', { events: [update] });
    expect(await stored()).toEqual({ pr_title: 'hello' });
  });

  it("keeps a run's agent when a later event names another", async () => {
    const events = [
      { type: 'run.start', run: { id: 'agent-kept', agent_id: 'first' } },
      { type: 'run.update', run: { id: 'agent-kept', agent_id: 'second' } },
      { type: 'run.end', run: { id: 'agent-kept', agent_id: 'third', status: 'succeeded' } },
    ];
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    expect((await findRun(t.ctx.db, 'default', 'agent-kept'))?.agent_id).toBe('first');
    // a run first known by a step has no agent yet: a later event names it
    const late = [
      { type: 'step.end', step: { id: 's', run_id: 'agent-late', type: 'tool' } },
      { type: 'run.end', run: { id: 'agent-late', agent_id: 'named', status: 'succeeded' } },
    ];
    expect((await t.request('POST', '/api/v1/ingest', { events: late })).statusCode).toBe(200);
    expect((await findRun(t.ctx.db, 'default', 'agent-late'))?.agent_id).toBe('named');
  });

  it("keeps a run's end whose error message and stack are over their length, cut", async () => {
    const message = 'm'.repeat(100_001);
    const stack = 's'.repeat(300_000);
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'long-error', agent_id: 'a' } },
        {
          type: 'step.end',
          step: { id: 's', run_id: 'long-error', status: 'failed', error: { message, stack } },
        },
        { type: 'run.end', run: { id: 'long-error', status: 'failed', error: { message, stack } } },
      ],
    });
    expect(res.statusCode).toBe(200);
    const run = toRun((await findRun(t.ctx.db, 'default', 'long-error'))!);
    expect(run.status).toBe('failed');
    expect(readableError(run.error!).message).toBe(`${'m'.repeat(99_999)}…`);
    expect(readableError(run.error!).stack).toBe(`${'s'.repeat(99_999)}…`);
    const [step] = (await listSteps(t.ctx.db, 'default', 'long-error')).map(toStep);
    expect(readableError(step!.error!).message).toHaveLength(100_000);
  });

  it('takes the largest token counts, holding the computed cost to its bound', async () => {
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'huge-1', agent_id: 'a' } },
        ...[1, 2].map((n) => ({
          type: 'step.end',
          step: {
            id: `huge-s${n}`,
            run_id: 'huge-1',
            type: 'llm',
            model: 'gpt-5',
            input_tokens: 1e12,
            output_tokens: 1e12,
          },
        })),
      ],
    });
    expect(res.statusCode).toBe(200);
    const run = toRun((await findRun(t.ctx.db, 'default', 'huge-1'))!);
    expect(run).toMatchObject({ input_tokens: 2e12, total_tokens: 4e12, cost_usd: 2e6 });
    const over = await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'step.end', step: { id: 'x', run_id: 'huge-1', input_tokens: 1e13 } }],
    });
    expect(json<{ rejected: number }>(over).rejected).toBe(1);
  });

  it('holds metadata of runs, steps and agents to the same limit', async () => {
    const big = { text: 'x'.repeat(1_200_000) };
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: 'bigmeta-1', agent_id: 'a', metadata: big } },
        { type: 'step.start', step: { id: 'bigmeta-s', run_id: 'bigmeta-1', metadata: big } },
      ],
    });
    expect(res.statusCode).toBe(200);
    const run = toRun((await findRun(t.ctx.db, 'default', 'bigmeta-1'))!);
    expect(run.metadata).toMatchObject({ __runlog_truncated__: true });
    const [step] = (await listSteps(t.ctx.db, 'default', 'bigmeta-1')).map(toStep);
    expect(step?.metadata).toMatchObject({ __runlog_truncated__: true });
    const agent = await t.request('PUT', '/api/v1/agents/bigmeta-agent', { metadata: big });
    expect(agent.statusCode).toBe(200);
    const stored = json<{ metadata: Record<string, unknown> }>(agent).metadata;
    expect(stored).toMatchObject({ __runlog_truncated__: true, original_size: 1_200_011 });
    expect(JSON.stringify(stored).length).toBeLessThanOrEqual(1024 * 1024);
  });

  it('renews the lease of a run recorded without a worker on its steps and heartbeats', async () => {
    const LEASE = 15 * 60_000;
    const lease = async (id: string) =>
      (await findRun(t.ctx.db, 'default', id))!.lease_expires_at ?? 0;
    /** What the sweeper would see once `leftMs` of the lease is left. */
    const shorten = (id: string, leftMs: number) =>
      t.ctx.db.kysely
        .updateTable('runs')
        .set({ lease_expires_at: Date.now() + leftMs })
        .where('id', '=', id)
        .execute();
    const step = (runId: string, id: string) => ({
      type: 'step.end',
      step: { id, run_id: runId, type: 'tool', name: 'grep' },
    });
    const start = (id: string) => ({ type: 'run.start', run: { id, agent_id: 'leased' } });
    const send = async (events: unknown[]) =>
      expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);

    await send([start('lease-1')]);
    const before = Date.now();
    await shorten('lease-1', 60_000);
    await send([step('lease-1', 's1')]);
    expect(await lease('lease-1')).toBeGreaterThanOrEqual(before + LEASE);
    // with more than half of it left, a step leaves the lease (and its index entry) alone
    await shorten('lease-1', LEASE - 60_000);
    const kept = await lease('lease-1');
    await send([step('lease-1', 's2')]);
    expect(await lease('lease-1')).toBe(kept);
    // so does a heartbeat event, as POST /runs/:id/heartbeat does, and renews it once it is short
    const beat = { type: 'run.heartbeat', run: { id: 'lease-1' } };
    await send([beat]);
    expect(await lease('lease-1')).toBe(kept);
    await shorten('lease-1', 60_000);
    const renewedFrom = Date.now();
    await send([beat]);
    expect(await lease('lease-1')).toBeGreaterThanOrEqual(renewedFrom + LEASE);

    // a claimed run's lease is its worker's: steps do not stretch it
    await send([start('lease-2')]);
    await t.ctx.db.kysely
      .updateTable('runs')
      .set({ worker_id: 'w1' })
      .where('id', '=', 'lease-2')
      .execute();
    await shorten('lease-2', 60_000);
    const claimed = await lease('lease-2');
    await send([step('lease-2', 's1')]);
    expect(await lease('lease-2')).toBe(claimed);
  });

  it('requires a write key', async () => {
    const body = { events: [{ type: 'run.start', run: { id: 'auth-1', agent_id: 'a' } }] };
    expect((await t.request('POST', '/api/v1/ingest', body, null)).statusCode).toBe(401);
    expect((await t.request('POST', '/api/v1/ingest', body, 'rl_wrong')).statusCode).toBe(401);
    const created = json<{ key: string }>(
      await t.request('POST', '/api/v1/keys', { scope: 'read' }),
    );
    const res = await t.request('POST', '/api/v1/ingest', body, created.key);
    expect(res.statusCode).toBe(403);
    expect(json<{ error: { code: string } }>(res).error.code).toBe('forbidden');
    expect(await findRun(t.ctx.db, 'default', 'auth-1')).toBeUndefined();
  });
});

describeEachDb('REST recording sugar', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it('starts, records steps of and ends a run', async () => {
    const started = await t.request('POST', '/api/v1/runs', {
      agent_id: 'rest-agent',
      input: { q: 'hi' },
      trigger: 'manual',
    });
    expect(started.statusCode).toBe(201);
    const run = json<{ id: string; status: string; trigger: string }>(started);
    expect(run).toMatchObject({ status: 'running', trigger: 'manual' });
    // the same id again is the same call; the id under another agent is refused, unchanged
    const again = await t.request('POST', '/api/v1/runs', { id: run.id, agent_id: 'rest-agent' });
    expect(again.statusCode).toBe(201);
    const other = await t.request('POST', '/api/v1/runs', {
      id: run.id,
      agent_id: 'another-agent',
      input: { q: 'overwritten?' },
    });
    expect(other.statusCode).toBe(409);
    expect(json<{ error: { details: { field: string }[] } }>(other).error.details[0]?.field).toBe(
      'body.id',
    );
    expect(
      json<{ input: unknown }>(await t.request('GET', `/api/v1/runs/${run.id}`)).input,
    ).toEqual({ q: 'hi' });

    const step = await t.request('POST', `/api/v1/runs/${run.id}/steps`, {
      type: 'llm',
      model: 'claude-sonnet-4-5-20250929',
      input_tokens: 1_000_000,
      output_tokens: 100_000,
      cached_input_tokens: 500_000,
      status: 'succeeded',
    });
    expect(step.statusCode).toBe(201);
    // 500k uncached * $3/M + 500k cached * $0.30/M + 100k * $15/M
    expect(json<{ cost_usd: number }>(step).cost_usd).toBeCloseTo(1.5 + 0.15 + 1.5, 9);

    const ended = await t.request('PATCH', `/api/v1/runs/${run.id}`, {
      status: 'failed',
      error: { message: 'boom', type: 'Error' },
    });
    expect(ended.statusCode).toBe(200);
    expect(json(ended)).toMatchObject({
      status: 'failed',
      error: { message: 'boom', type: 'Error' },
      step_count: 1,
    });
  });

  it('gives one run and one 409 to two starts racing with one id for two agents', async () => {
    for (let i = 0; i < 5; i++) {
      const id = `race-${i}`;
      const answers = await Promise.all(
        ['race-a', 'race-b'].map((agent_id) => t.request('POST', '/api/v1/runs', { id, agent_id })),
      );
      expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 409]);
      const won = json<{ agent_id: string }>(answers.find((a) => a.statusCode === 201)!);
      const stored = json<{ agent_id: string }>(await t.request('GET', `/api/v1/runs/${id}`));
      expect(stored.agent_id).toBe(won.agent_id);
    }
  });

  it('starts a run running: another status is a 400 naming it, writing nothing', async () => {
    for (const status of ['pending', 'failed']) {
      const res = await t.request('POST', '/api/v1/runs', {
        id: `start-${status}`,
        agent_id: 'starter',
        status,
      });
      expect(res.statusCode).toBe(400);
      const err = json<{ error: { details: { field: string }[] } }>(res).error;
      expect(err.details[0]?.field).toBe('body.status');
      expect((await t.request('GET', `/api/v1/runs/start-${status}`)).statusCode).toBe(404);
    }
    const alias = await t.request('POST', '/api/v1/runs', {
      agent_id: 'starter',
      status: 'started',
    });
    expect(json<{ status: string }>(alias).status).toBe('running');
  });

  it('refuses to move a run to another agent with PATCH, naming the field', async () => {
    const run = json<{ id: string }>(
      await t.request('POST', '/api/v1/runs', { agent_id: 'owner' }),
    );
    const moved = await t.request('PATCH', `/api/v1/runs/${run.id}`, { agent_id: 'thief' });
    expect(moved.statusCode).toBe(409);
    const err = json<{ error: { details: { field: string }[] } }>(moved).error;
    expect(err.details[0]?.field).toBe('body.agent_id');
    const same = await t.request('PATCH', `/api/v1/runs/${run.id}`, { agent_id: 'owner' });
    expect(json<{ agent_id: string }>(same).agent_id).toBe('owner');
  });

  it('gives a run first known from a step its agent by POST /runs or PATCH, as /ingest does', async () => {
    for (const how of ['post', 'patch'] as const) {
      const id = `from-step-${how}`;
      const ingested = await t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'step.end', step: { id: `${id}-s`, run_id: id, type: 'tool' } }],
      });
      expect(ingested.statusCode).toBe(200);
      const named =
        how === 'post'
          ? await t.request('POST', '/api/v1/runs', { id, agent_id: 'named-later' })
          : await t.request('PATCH', `/api/v1/runs/${id}`, { agent_id: 'named-later' });
      expect(named.statusCode).toBe(how === 'post' ? 201 : 200);
      expect(json<{ agent_id: string; step_count: number }>(named)).toMatchObject({
        agent_id: 'named-later',
        step_count: 1,
      });
      // named now, it keeps that agent
      const moved = await t.request('PATCH', `/api/v1/runs/${id}`, { agent_id: 'thief' });
      expect(moved.statusCode).toBe(409);
    }
  });

  it('answers a step posted to an ended run as it was stored: ended with its run', async () => {
    const run = json<{ id: string }>(await t.request('POST', '/api/v1/runs', { agent_id: 'late' }));
    await t.request('PATCH', `/api/v1/runs/${run.id}`, { status: 'succeeded' });
    const res = await t.request('POST', `/api/v1/runs/${run.id}/steps`, {
      id: 'late-1',
      type: 'tool',
    });
    expect(res.statusCode).toBe(201);
    const answered = json<{ status: string; ended_at: string | null }>(res);
    const stored = json<{ steps: unknown[] }>(
      await t.request('GET', `/api/v1/runs/${run.id}?include=steps`),
    ).steps[0];
    expect(answered).toEqual(stored);
    expect(answered.status).toBe('failed');
  });

  it('counts the events of PATCH and of POST steps in /metrics, and not a 404', async () => {
    const events = async () => {
      const text = (await t.request('GET', '/metrics')).body;
      return Number(/^runlog_ingest_events_total (\d+)$/m.exec(text)?.[1]);
    };
    const run = json<{ id: string }>(
      await t.request('POST', '/api/v1/runs', { agent_id: 'counted' }),
    );
    const before = await events();
    await t.request('POST', `/api/v1/runs/${run.id}/steps`, { type: 'tool', status: 'succeeded' });
    await t.request('PATCH', `/api/v1/runs/${run.id}`, { status: 'succeeded' });
    expect(await events()).toBe(before + 2);
    expect(
      (await t.request('PATCH', '/api/v1/runs/missing', { status: 'failed' })).statusCode,
    ).toBe(404);
    expect(await events()).toBe(before + 2);
  });

  it('serves runs with the longest ids and prices of the longest model names by path', async () => {
    const id = 'r'.repeat(128);
    const recorded = await t.request('PATCH', `/api/v1/runs/${id}`, { status: 'failed' });
    expect(recorded.statusCode).toBe(404);
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id, agent_id: 'long-ids' } }],
    });
    expect(json<{ id: string }>(await t.request('GET', `/api/v1/runs/${id}`)).id).toBe(id);
    const model = encodeURIComponent(`vendor/${'m'.repeat(193)}`);
    const price = { input_per_mtok: 1, output_per_mtok: 2 };
    expect((await t.request('PUT', `/api/v1/prices/${model}`, price)).statusCode).toBe(200);
    expect((await t.request('DELETE', `/api/v1/prices/${model}`)).statusCode).toBe(204);
  });

  it("prices a group commit's steps with the project's overrides when they change during it", async () => {
    const put = await t.request('PUT', '/api/v1/prices/house-llm', {
      input_per_mtok: 1,
      output_per_mtok: 2,
    });
    expect(put.statusCode).toBe(200);
    await t.ctx.writer.transact(
      async (uow, env) => {
        // another override changes while this group commits (a PUT here, or on another
        // instance, heard over LISTEN)
        t.ctx.prices.invalidate('default', 'remote');
        await applyEvents(
          uow,
          'default',
          [
            { type: 'run.start', run: { id: 'priced-mid-group', agent_id: 'p' } },
            {
              type: 'step.end',
              step: {
                id: 's',
                run_id: 'priced-mid-group',
                type: 'llm',
                model: 'house-llm',
                input_tokens: 1000,
                output_tokens: 1000,
              },
            },
          ],
          env,
        );
      },
      { events: 2, projectId: 'default' },
    );
    const steps = json<{ steps: { cost_usd: number | null }[] }>(
      await t.request('GET', '/api/v1/runs/priced-mid-group/steps'),
    ).steps;
    expect(steps[0]?.cost_usd).toBeCloseTo(0.003, 9);
  });

  it('uses a project price override', async () => {
    const put = await t.request('PUT', '/api/v1/prices/my-finetune', {
      input_per_mtok: 1,
      output_per_mtok: 2,
    });
    expect(put.statusCode).toBe(200);
    const run = json<{ id: string }>(await t.request('POST', '/api/v1/runs', { agent_id: 'p' }));
    const step = await t.request('POST', `/api/v1/runs/${run.id}/steps`, {
      type: 'llm',
      model: 'my-finetune-v3',
      input_tokens: 1000,
      output_tokens: 1000,
      status: 'succeeded',
    });
    expect(json<{ cost_usd: number }>(step).cost_usd).toBeCloseTo(0.003, 9);
  });

  it('prices a step whose usage comes in parts over all of it, and keeps a cost it was given', async () => {
    const stepCost = async (runId: string) =>
      json<{ steps: Step[] }>(await t.request('GET', `/api/v1/runs/${runId}/steps`)).steps[0]
        ?.cost_usd;
    const usage = (id: string): IngestEvent[] => [
      { type: 'run.start', run: { id, agent_id: 'parts' } },
      {
        type: 'step.end',
        step: { id: 's', run_id: id, type: 'llm', model: 'gpt-4o', input_tokens: 1_000_000 },
      },
    ];
    // the input tokens with the step's end, the output tokens in a later event
    await ingestOk(t, usage('parts-1'));
    await ingestOk(t, [
      { type: 'step.end', step: { id: 's', run_id: 'parts-1', output_tokens: 1_000_000 } },
    ]);
    // gpt-4o: $2.50 per million input tokens, $10 per million output tokens
    expect(await stepCost('parts-1')).toBeCloseTo(12.5, 9);
    const run = json<{ cost_usd: number }>(await t.request('GET', '/api/v1/runs/parts-1'));
    expect(run.cost_usd).toBeCloseTo(12.5, 9);
    // a cost the step was given stays, whatever usage comes after it
    await ingestOk(t, [
      { type: 'run.start', run: { id: 'parts-2', agent_id: 'parts' } },
      {
        type: 'step.end',
        step: {
          id: 's',
          run_id: 'parts-2',
          type: 'llm',
          model: 'gpt-4o',
          input_tokens: 1_000_000,
          cost_usd: 1,
        },
      },
    ]);
    await ingestOk(t, [
      { type: 'step.end', step: { id: 's', run_id: 'parts-2', output_tokens: 1_000_000 } },
    ]);
    expect(await stepCost('parts-2')).toBe(1);
    // also when it came with the step's start: its end (the usage with it or not) keeps it
    await ingestOk(t, [
      { type: 'run.start', run: { id: 'parts-3', agent_id: 'parts' } },
      {
        type: 'step.start',
        step: { id: 's', run_id: 'parts-3', type: 'llm', model: 'gpt-4o', cost_usd: 0.5 },
      },
      {
        type: 'step.start',
        step: {
          id: 't',
          run_id: 'parts-3',
          type: 'llm',
          model: 'gpt-4o',
          input_tokens: 1_000_000,
          output_tokens: 1_000_000,
          cost_usd: 0.25,
        },
      },
      // a call its provider did not charge for
      {
        type: 'step.start',
        step: { id: 'u', run_id: 'parts-3', type: 'llm', model: 'gpt-4o', cost_usd: 0 },
      },
    ]);
    await ingestOk(t, [
      { type: 'step.end', step: { id: 's', run_id: 'parts-3', input_tokens: 1_000_000 } },
      { type: 'step.end', step: { id: 't', run_id: 'parts-3', status: 'succeeded' } },
      { type: 'step.end', step: { id: 'u', run_id: 'parts-3', input_tokens: 1_000_000 } },
    ]);
    const given = json<{ steps: Step[] }>(
      await t.request('GET', '/api/v1/runs/parts-3/steps'),
    ).steps;
    expect(given.map((s) => [s.id, s.cost_usd])).toEqual([
      ['s', 0.5],
      ['t', 0.25],
      ['u', 0],
    ]);
    const parts3 = json<{ cost_usd: number }>(await t.request('GET', '/api/v1/runs/parts-3'));
    expect(parts3.cost_usd).toBeCloseTo(0.75, 9);
    // a computed cost follows the usage and model a running step's end gives
    await ingestOk(t, [
      { type: 'run.start', run: { id: 'parts-4', agent_id: 'parts' } },
      {
        type: 'step.start',
        step: { id: 's', run_id: 'parts-4', type: 'llm', model: 'gpt-4o', input_tokens: 1e6 },
      },
    ]);
    expect(await stepCost('parts-4')).toBeCloseTo(2.5, 9);
    await ingestOk(t, [
      {
        type: 'step.end',
        step: { id: 's', run_id: 'parts-4', model: 'gpt-4o-mini', output_tokens: 1e6 },
      },
    ]);
    // gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens
    expect(await stepCost('parts-4')).toBeCloseTo(0.75, 9);
  });

  it('prices usage that comes after a price change over all of it, at the new price', async () => {
    const put = (input: number, output: number) =>
      t.request('PUT', '/api/v1/prices/repriced-llm', {
        input_per_mtok: input,
        output_per_mtok: output,
      });
    expect((await put(1, 2)).statusCode).toBe(200);
    await ingestOk(t, [
      { type: 'run.start', run: { id: 'repriced', agent_id: 'parts' } },
      {
        type: 'step.end',
        step: {
          id: 's',
          run_id: 'repriced',
          type: 'llm',
          model: 'repriced-llm',
          input_tokens: 1e6,
        },
      },
    ]);
    expect((await put(3, 4)).statusCode).toBe(200);
    // the output tokens come after the price changed: the cost was not a price of its input
    // tokens any more, and stayed $1, the output tokens never priced
    await ingestOk(t, [
      { type: 'step.end', step: { id: 's', run_id: 'repriced', output_tokens: 1e6 } },
    ]);
    const steps = json<{ steps: Step[] }>(
      await t.request('GET', '/api/v1/runs/repriced/steps'),
    ).steps;
    expect(steps[0]?.cost_usd).toBeCloseTo(7, 9);
    const run = json<{ cost_usd: number }>(await t.request('GET', '/api/v1/runs/repriced'));
    expect(run.cost_usd).toBeCloseTo(7, 9);
  });

  it('answers 404 for an unknown run and 400 naming the field', async () => {
    expect((await t.request('PATCH', '/api/v1/runs/nope', { status: 'failed' })).statusCode).toBe(
      404,
    );
    const bad = await t.request('POST', '/api/v1/runs', { agent_id: 'a', attempt: 0 });
    expect(bad.statusCode).toBe(400);
    expect(json<{ error: { details: { field: string }[] } }>(bad).error.details[0]?.field).toBe(
      'body.attempt',
    );
  });

  it('answers 404 to a PATCH or a step of a deleted run, leaving no row', async () => {
    await t.request('POST', '/api/v1/runs', { id: 'gone-1', agent_id: 'a' });
    expect((await t.request('DELETE', '/api/v1/runs/gone-1')).statusCode).toBe(204);
    const patched = await t.request('PATCH', '/api/v1/runs/gone-1', { status: 'failed' });
    expect(patched.statusCode).toBe(404);
    const step = await t.request('POST', '/api/v1/runs/gone-1/steps', { type: 'tool' });
    expect(step.statusCode).toBe(404);
    expect(await findRun(t.ctx.db, 'default', 'gone-1')).toBeUndefined();
    expect(await listSteps(t.ctx.db, 'default', 'gone-1')).toEqual([]);
  });

  it('never brings back a run deleted between the check and the write of a PATCH or a step', async () => {
    for (const [i, write] of [
      ['PATCH', (id: string) => t.request('PATCH', `/api/v1/runs/${id}`, { status: 'failed' })],
      ['step', (id: string) => t.request('POST', `/api/v1/runs/${id}/steps`, { type: 'tool' })],
    ] as const) {
      const id = `race-${i}`;
      await t.request('POST', '/api/v1/runs', { id, agent_id: 'racer' });
      let deleted = 0;
      beforeNextWrite(t.ctx.writer, async () => {
        deleted = (await t.request('DELETE', `/api/v1/runs/${id}`)).statusCode;
      });
      const res = await write(id);
      expect(deleted).toBe(204);
      expect(res.statusCode).toBe(404);
      expect(await findRun(t.ctx.db, 'default', id)).toBeUndefined();
      expect(await listSteps(t.ctx.db, 'default', id)).toEqual([]);
    }
  });

  it('leaves every run deleted when PATCHes race their DELETEs', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `race-many-${i}`);
    for (const id of ids) await t.request('POST', '/api/v1/runs', { id, agent_id: 'racer' });
    const answers = await Promise.all(
      ids.map(async (id) => {
        const [patched, deleted] = await Promise.all([
          t.request('PATCH', `/api/v1/runs/${id}`, { metadata: { n: 1 } }),
          t.request('DELETE', `/api/v1/runs/${id}`),
        ]);
        return [patched.statusCode, deleted.statusCode];
      }),
    );
    for (const [patched, deleted] of answers) {
      expect([200, 404]).toContain(patched);
      expect(deleted).toBe(204);
    }
    for (const id of ids) expect(await findRun(t.ctx.db, 'default', id)).toBeUndefined();
  });

  it('applies /ingest rules to the REST routes, naming the body field and writing nothing', async () => {
    const field = (res: Awaited<ReturnType<TestApp['request']>>) =>
      json<{ error: { details: { field: string }[] } }>(res).error.details[0]?.field;
    const started = await t.request('POST', '/api/v1/runs', {
      id: 'rest-rules',
      agent_id: 'a',
      started_at: 2000,
      ended_at: 1000,
    });
    expect(started.statusCode).toBe(400);
    expect(field(started)).toBe('body.ended_at');
    expect(await findRun(t.ctx.db, 'default', 'rest-rules')).toBeUndefined();

    expect(
      (await t.request('POST', '/api/v1/runs', { id: 'rest-rules', agent_id: 'a' })).statusCode,
    ).toBe(201);
    const patched = await t.request('PATCH', '/api/v1/runs/rest-rules', {
      started_at: 2000,
      ended_at: 1000,
    });
    expect(patched.statusCode).toBe(400);
    expect(field(patched)).toBe('body.ended_at');
    expect((await findRun(t.ctx.db, 'default', 'rest-rules'))!.ended_at).toBeNull();

    const selfParent = await t.request('POST', '/api/v1/runs/rest-rules/steps', {
      id: 's1',
      type: 'tool',
      parent_step_id: 's1',
    });
    expect(selfParent.statusCode).toBe(400);
    expect(field(selfParent)).toBe('body.parent_step_id');
    const backwards = await t.request('POST', '/api/v1/runs/rest-rules/steps', {
      type: 'tool',
      started_at: 2000,
      ended_at: 1000,
    });
    expect(field(backwards)).toBe('body.ended_at');
    // an id the body repeats must be the path's: before, another was silently ignored
    const elsewhere = await t.request('POST', '/api/v1/runs/rest-rules/steps', {
      run_id: 'other-run',
      type: 'tool',
    });
    expect(elsewhere.statusCode).toBe(400);
    expect(field(elsewhere)).toBe('body.run_id');
    expect(await listSteps(t.ctx.db, 'default', 'rest-rules')).toEqual([]);
    const renamed = await t.request('PATCH', '/api/v1/runs/rest-rules', {
      id: 'other-run',
      status: 'failed',
    });
    expect(renamed.statusCode).toBe(400);
    expect(field(renamed)).toBe('body.id');
    expect((await findRun(t.ctx.db, 'default', 'rest-rules'))!.status).toBe('running');
    // the path's own id is fine
    const same = await t.request('POST', '/api/v1/runs/rest-rules/steps', {
      run_id: 'rest-rules',
      type: 'tool',
    });
    expect(same.statusCode).toBe(201);
    const ended = await t.request('PATCH', '/api/v1/runs/rest-rules', {
      id: 'rest-rules',
      status: 'failed',
    });
    expect(json<Run>(ended).status).toBe('failed');
  });
});

it('maps step type names of other tools, and keeps any other name as custom', () => {
  expect(normalizeStepType('Chat')).toEqual({ type: 'llm' });
  expect(normalizeStepType('execute_tool')).toEqual({ type: 'tool' });
  expect(normalizeStepType('tool')).toEqual({ type: 'tool' });
  expect(normalizeStepType('planner')).toEqual({ type: 'custom', original: 'planner' });
  // names of Object.prototype's members are names like any other
  expect(normalizeStepType('constructor')).toEqual({ type: 'custom', original: 'constructor' });
  expect(normalizeStepType('toString')).toEqual({ type: 'custom', original: 'toString' });
});

describeEachDb('recording when the write path falls behind', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect, { maxQueuedEvents: 1000 });
  });
  afterAll(async () => {
    await t.close();
  });

  const batch = (runId: string, steps: number) => ({
    events: [
      { type: 'run.start', run: { id: runId, agent_id: 'busy' } },
      ...Array.from({ length: steps }, (_, i) => ({
        type: 'step.end',
        step: { id: `s${i}`, run_id: runId, type: 'tool' },
      })),
    ],
  });

  it('answers 429 with Retry-After past the queue bound, writing nothing, and takes the batch again later', async () => {
    // hold the write path: a control change whose transaction waits on the gate
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const held = t.ctx.writer.transact(() => gate);
    const first = t.request('POST', '/api/v1/ingest', batch('busy-1', 599));
    // the first batch is queued behind the held change once the request has been handled
    await waitFor(async () => {
      const text = (await t.request('GET', '/metrics')).body;
      return /^runlog_writer_queue_jobs 1$/m.test(text);
    }, 'the first batch to wait');
    const refused = await t.request('POST', '/api/v1/ingest', batch('busy-2', 599));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(json(refused)).toMatchObject({ error: { code: 'rate_limited' } });
    // recording through a change (OTLP, the REST sugar) meets the same bound
    await expect(t.ctx.writer.transact(async () => 'ran', { events: 599 })).rejects.toMatchObject({
      code: 'rate_limited',
    });
    open();
    await held;
    expect((await first).statusCode).toBe(200);
    expect((await t.request('GET', '/api/v1/runs/busy-2')).statusCode).toBe(404);
    expect(
      json<{ step_count: number }>(await t.request('GET', '/api/v1/runs/busy-1')).step_count,
    ).toBe(599);

    const again = await t.request('POST', '/api/v1/ingest', batch('busy-2', 599));
    expect(again.statusCode).toBe(200);
    expect(
      json<{ step_count: number }>(await t.request('GET', '/api/v1/runs/busy-2')).step_count,
    ).toBe(599);
  });
});
