import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cron } from 'croner';
import type { Agent, AgentSummary, IngestEvent, Run, RunList, StatsResponse } from '@runlog/core';
import { describeEachDb, createTestApp, ingestOk, json, type TestApp } from '../../test/harness.js';
import { listSteps } from '../runs/runs.repository.js';
import { findAgent } from './agents.repository.js';
import { deleteAgent } from './agents.service.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

type Fields = { error: { message: string; details: { field: string; message: string }[] } };

describeEachDb('agents API', (dialect) => {
  let t: TestApp;
  const now = Date.now();
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const at = (ago: number) => now - ago;
    const ended = (
      id: string,
      status: string,
      ago: number,
      extra: Record<string, unknown> = {},
    ) => ({
      type: 'run.end',
      run: {
        id,
        agent_id: 'health',
        status,
        trigger: 'api',
        started_at: at(ago),
        ended_at: at(ago) + 2000,
        ...extra,
      },
    });
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        // three days ago: outside the 24 h counts, still the agent's history
        ended('h-old', 'failed', 72 * HOUR, { error: 'ancient failure' }),
        ended('h-ok1', 'succeeded', 5 * HOUR),
        ended('h-fail', 'failed', 4 * HOUR, {
          error: { message: 'rate limited', type: 'RateLimit' },
        }),
        {
          type: 'step.end',
          step: { id: 'h-fail-s1', run_id: 'h-fail', type: 'tool', status: 'failed' },
        },
        // tokens and cost in 24 h; the old run's are outside them
        {
          type: 'step.end',
          step: {
            id: 'h-ok1-llm',
            run_id: 'h-ok1',
            type: 'llm',
            input_tokens: 900,
            output_tokens: 100,
            cost_usd: 0.25,
          },
        },
        {
          type: 'step.end',
          step: { id: 'h-old-llm', run_id: 'h-old', type: 'llm', input_tokens: 5, cost_usd: 7 },
        },
        ended('h-timeout', 'timed_out', 3 * HOUR, { error: 'lease lapsed' }),
        ended('h-ok2', 'succeeded', 2 * HOUR),
        ended('h-cancel', 'cancelled', 90 * MIN),
        {
          type: 'run.start',
          run: { id: 'h-running', agent_id: 'health', trigger: 'manual', started_at: at(MIN) },
        },
        ...Array.from({ length: 22 }, (_, i) => ({
          type: 'run.end',
          run: {
            id: `many-${String(i).padStart(2, '0')}`,
            agent_id: 'many',
            status: 'succeeded',
            trigger: i % 2 ? 'schedule' : 'api',
            started_at: at(30 * HOUR) + i * 1000,
            ended_at: at(30 * HOUR) + i * 1000 + 100,
          },
        })),
      ],
    });
    expect(res.statusCode).toBe(200);
  });
  afterAll(async () => {
    await t.close();
  });

  const get = async <T>(url: string) => {
    const res = await t.request('GET', url);
    expect(res.statusCode, res.body).toBe(200);
    return json<T>(res);
  };

  describe('GET /agents', () => {
    it('counts 24 h as the stats do: up to the end of the current hour, not past it', async () => {
      // its own server: the other tests list this file's agents
      const own = await createTestApp(dialect);
      try {
        // a run stamped hours ahead (a host whose clock runs fast) is not in the last 24 h
        const ahead = Date.now() + 3 * HOUR;
        const res = await own.request('POST', '/api/v1/ingest', {
          events: [
            {
              type: 'run.start',
              run: { id: 'ahead-1', agent_id: 'clock-ahead', started_at: ahead },
            },
            {
              type: 'step.end',
              step: { id: 's', run_id: 'ahead-1', type: 'llm', input_tokens: 10, cost_usd: 1 },
            },
          ],
        });
        expect(res.statusCode).toBe(200);
        const agent = json<AgentSummary>(await own.request('GET', '/api/v1/agents/clock-ahead'));
        expect(agent.counts_24h).toMatchObject({ runs: 0, total_tokens: 0, cost_usd: 0 });
      } finally {
        await own.close();
      }
    });

    it('lists agents, and searches runs, beside an error holding a lone surrogate', async () => {
      // its own server: the other tests list this file's agents
      const own = await createTestApp(dialect);
      try {
        // JSON.stringify writes a lone surrogate as the escape `\ud800`, which jsonb refuses
        const res = await own.request('POST', '/api/v1/ingest', {
          events: [
            {
              type: 'run.end',
              run: {
                id: 'half-1',
                agent_id: 'half',
                status: 'failed',
                tags: ['t\ud800'],
                error: { message: 'bad \ud800 half', type: 'x\udc00' },
              },
            },
          ],
        });
        expect(res.statusCode).toBe(200);
        const { agents } = json<{ agents: AgentSummary[] }>(
          await own.request('GET', '/api/v1/agents'),
        );
        expect(agents.map((a) => a.id)).toEqual(['half']);
        expect((await own.request('GET', '/api/v1/agents/half')).statusCode).toBe(200);
        const found = await own.request('GET', '/api/v1/runs?q=half');
        expect(json<{ runs: { id: string }[] }>(found).runs.map((r) => r.id)).toEqual(['half-1']);
        const tagged = await own.request('GET', '/api/v1/runs?tag=t');
        expect(json<{ runs: unknown[] }>(tagged).runs).toEqual([]);
      } finally {
        await own.close();
      }
    });

    it('summarises each agent with its latest run, last error and 24 h counts', async () => {
      const { agents } = await get<{ agents: AgentSummary[] }>('/api/v1/agents');
      expect(agents.map((a) => a.id)).toEqual(['health', 'many']);
      const health = agents[0]!;
      expect(health.latest_run?.id).toBe('h-running');
      expect(health.last_error).toEqual({
        run_id: 'h-timeout',
        message: 'lease lapsed',
        at: new Date(now - 3 * HOUR + 2000).toISOString(),
      });
      // 24 h: ok1, fail, timeout, ok2, cancel, running (h-old is three days back)
      expect(health.counts_24h).toEqual({
        runs: 6,
        succeeded: 2,
        failed: 2,
        failed_not_retried: 2,
        running: 1,
        fail_rate: 2 / 5,
        total_tokens: 1000,
        cost_usd: 0.25,
      });
      const many = agents[1]!;
      expect(many.latest_run?.id).toBe('many-21');
      expect(many.last_error).toBeNull();
      expect(many.counts_24h).toEqual({
        runs: 0,
        succeeded: 0,
        failed: 0,
        failed_not_retried: 0,
        running: 0,
        fail_rate: null,
        total_tokens: 0,
        cost_usd: 0,
      });
    });

    it("counts a failure out of failed_not_retried once a run retries it, and the retry's own failure in", async () => {
      const failed = (id: string, ago: number) => ({
        type: 'run.end',
        run: {
          id,
          agent_id: 'retried',
          status: 'failed',
          started_at: now - ago,
          ended_at: now - ago + 1000,
        },
      });
      await ingestOk(t, [failed('rt-1', 3 * HOUR), failed('rt-2', 2 * HOUR)] as IngestEvent[]);
      const counts = async () => (await get<AgentSummary>('/api/v1/agents/retried')).counts_24h;
      expect(await counts()).toMatchObject({ failed: 2, failed_not_retried: 2 });
      const retry = json<{ id: string }>(await t.request('POST', '/api/v1/runs/rt-1/retry'));
      expect(await counts()).toMatchObject({ failed: 2, failed_not_retried: 1 });
      // the retry fails in turn: a failure nothing retried again
      await ingestOk(t, [
        { type: 'run.end', run: { id: retry.id, status: 'failed', ended_at: Date.now() } },
      ] as IngestEvent[]);
      expect(await counts()).toMatchObject({ failed: 3, failed_not_retried: 2 });
      const { agents } = await get<{ agents: AgentSummary[] }>('/api/v1/agents');
      expect(agents.find((a) => a.id === 'retried')?.counts_24h.failed_not_retried).toBe(2);
    });

    it('takes as last error the failed run that ended last, not the one that started last', async () => {
      const ended = (id: string, startedAgo: number, endedAgo: number, message: string) => ({
        type: 'run.end',
        run: {
          id,
          agent_id: 'late-fail',
          status: 'failed',
          started_at: now - startedAgo,
          ended_at: now - endedAgo,
          error: { message },
        },
      });
      const res = await t.request('POST', '/api/v1/ingest', {
        events: [
          // a long run failing 10 minutes ago, and a short one that started after it
          ended('lf-long', 3 * HOUR, 10 * MIN, 'newest error'),
          ended('lf-short', 2 * HOUR, 115 * MIN, 'older error'),
        ],
      });
      expect(res.statusCode).toBe(200);
      const agent = await get<AgentSummary>('/api/v1/agents/late-fail');
      expect(agent.last_error).toMatchObject({ run_id: 'lf-long', message: 'newest error' });
      // a summary: a long message (an error may hold 1 MiB) comes cut, the run has it whole
      const long = 'é'.repeat(100_000);
      await t.request('POST', '/api/v1/ingest', { events: [ended('lf-big', 2 * MIN, MIN, long)] });
      const big = await get<AgentSummary>('/api/v1/agents/late-fail');
      expect(big.last_error).toMatchObject({ run_id: 'lf-big', message: long.slice(0, 2000) });
      // a stored message that is not text (an import may bring one) is none: the status
      // speaks for the run
      await t.ctx.db.kysely
        .updateTable('runs')
        .set({ error: '{"message":{"code":42}}' })
        .where('id', '=', 'lf-big')
        .execute();
      const odd = await get<AgentSummary>('/api/v1/agents/late-fail');
      expect(odd.last_error).toMatchObject({ run_id: 'lf-big', message: 'run failed' });
      expect((await t.request('DELETE', '/api/v1/agents/late-fail')).statusCode).toBe(204);
    });

    it('shows an agent created by PUT with no runs yet', async () => {
      const put = await t.request('PUT', '/api/v1/agents/idle-one', { name: 'Idle' });
      expect(put.statusCode).toBe(200);
      const { agents } = await get<{ agents: AgentSummary[] }>('/api/v1/agents');
      const idle = agents.find((a) => a.id === 'idle-one');
      expect(idle).toMatchObject({
        name: 'Idle',
        latest_run: null,
        last_error: null,
        counts_24h: { runs: 0, fail_rate: null },
      });
    });
  });

  it('lists the unknown-agent placeholder only while it holds runs', async () => {
    const ids = async () =>
      (await get<{ agents: AgentSummary[] }>('/api/v1/agents')).agents.map((a) => a.id);
    // a step arrives before its run: the run waits under `unknown`
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'step.start', step: { id: 's1', run_id: 'nameless', type: 'tool' } }],
    });
    expect(await ids()).toContain('unknown');
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'nameless', agent_id: 'named-later' } }],
    });
    expect(await ids()).toContain('named-later');
    expect(await ids()).not.toContain('unknown');
    expect((await t.request('GET', '/api/v1/agents/unknown')).statusCode).toBe(200);
  });

  describe('GET /agents/:agent_id', () => {
    it('answers the agent summary, with its 20 newest runs when include=runs', async () => {
      const plain = await get<AgentSummary & { runs?: Run[] }>('/api/v1/agents/many');
      expect(plain.id).toBe('many');
      expect(plain.latest_run?.id).toBe('many-21');
      expect(plain.runs).toBeUndefined();
      const withRuns = await get<AgentSummary & { runs: Run[] }>(
        '/api/v1/agents/many?include=runs',
      );
      expect(withRuns.runs.map((r) => r.id)).toEqual(
        Array.from({ length: 20 }, (_, i) => `many-${String(21 - i).padStart(2, '0')}`),
      );
    });

    it('answers 404 for an unknown agent and 400 for an unknown include', async () => {
      expect((await t.request('GET', '/api/v1/agents/ghost')).statusCode).toBe(404);
      expect((await t.request('GET', '/api/v1/agents/ghost/runs')).statusCode).toBe(404);
      const bad = await t.request('GET', '/api/v1/agents/many?include=steps');
      expect(bad.statusCode).toBe(400);
      expect(json<{ error: { details: { field: string }[] } }>(bad).error.details[0]?.field).toBe(
        'query.include',
      );
    });
  });

  describe('GET /agents/:agent_id/runs', () => {
    it('lists an agent runs newest first with status and trigger filters and cursor paging', async () => {
      const page1 = await get<RunList>('/api/v1/agents/many/runs?limit=8');
      expect(page1.total).toBe(22);
      expect(page1.runs).toHaveLength(8);
      expect(page1.runs[0]?.id).toBe('many-21');
      // DESIGN.md's own form of the URL: empty parameters are absent ones
      const blank = await get<RunList>('/api/v1/agents/many/runs?limit=8&cursor=&status=&trigger=');
      expect(blank.runs.map((r) => r.id)).toEqual(page1.runs.map((r) => r.id));
      expect(blank.total).toBe(22);
      const page2 = await get<RunList>(
        `/api/v1/agents/many/runs?limit=8&cursor=${page1.next_cursor}`,
      );
      const page3 = await get<RunList>(
        `/api/v1/agents/many/runs?limit=8&cursor=${page2.next_cursor}`,
      );
      const all = [...page1.runs, ...page2.runs, ...page3.runs].map((r) => r.id);
      expect(new Set(all).size).toBe(22);
      expect(page3.has_more).toBe(false);
      const scheduled = await get<RunList>('/api/v1/agents/many/runs?trigger=schedule&limit=100');
      expect(scheduled.total).toBe(11);
      expect(scheduled.runs.every((r) => r.trigger === 'schedule')).toBe(true);
      const failed = await get<RunList>('/api/v1/agents/health/runs?status=failed,timed_out');
      expect(failed.runs.map((r) => r.id)).toEqual(['h-timeout', 'h-fail', 'h-old']);
      expect(failed.total).toBe(3);
      const bad = await t.request('GET', '/api/v1/agents/many/runs?status=nope');
      expect(bad.statusCode).toBe(400);
    });
  });

  describe('POST /agents/:agent_id/runs', () => {
    it('queues a run (trigger api by default, manual when asked) and answers 202', async () => {
      const res = await t.request('POST', '/api/v1/agents/worker-agent/runs', {
        input: { task: 'x' },
        thread_id: 'th-1',
      });
      expect(res.statusCode).toBe(202);
      const run = json<Run>(res);
      expect(run).toMatchObject({
        agent_id: 'worker-agent',
        status: 'queued',
        trigger: 'api',
        input: { task: 'x' },
        thread_id: 'th-1',
      });
      expect((await get<Run>(`/api/v1/runs/${run.id}`)).status).toBe('queued');
      const manual = await t.request('POST', '/api/v1/agents/worker-agent/runs', {
        trigger: 'manual',
      });
      expect(json<Run>(manual).trigger).toBe('manual');
      const bad = await t.request('POST', '/api/v1/agents/worker-agent/runs', { trigger: 'retry' });
      expect(bad.statusCode).toBe(400);
    });

    it('refuses a field it does not take, naming it, and queues nothing', async () => {
      // a misspelt input would otherwise queue a run its worker executes without its input
      const before = json<RunList>(
        await t.request('GET', '/api/v1/runs?agent_id=typo-agent,typo-batch'),
      ).runs;
      const one = await t.request('POST', '/api/v1/agents/typo-agent/runs', {
        inptu: { task: 'x' },
      });
      expect(one.statusCode).toBe(400);
      expect(json<Fields>(one).error.details).toEqual([
        { field: 'body.inptu', message: 'unknown field' },
      ]);
      const batch = await t.request('POST', '/api/v1/runs/enqueue', {
        runs: [
          { agent_id: 'typo-batch', input: 1 },
          { agent_id: 'typo-batch', inptu: 2 },
        ],
      });
      expect(batch.statusCode).toBe(400);
      expect(json<Fields>(batch).error.details).toEqual([
        { field: 'body.runs.1.inptu', message: 'unknown field' },
      ]);
      const after = json<RunList>(
        await t.request('GET', '/api/v1/runs?agent_id=typo-agent,typo-batch'),
      ).runs;
      expect(after).toEqual(before);
    });
  });

  describe('PUT /agents/:agent_id', () => {
    it('creates an agent with a schedule and sets its next slot', async () => {
      const before = Date.now();
      const res = await t.request('PUT', '/api/v1/agents/nightly', {
        name: 'Nightly report',
        description: 'Writes the report',
        schedule: { cron: '0 3 * * *', timezone: 'Europe/Paris' },
        timeout_ms: 60_000,
        metadata: { team: 'ops' },
      });
      expect(res.statusCode).toBe(200);
      expect(json<Agent>(res)).toMatchObject({
        id: 'nightly',
        name: 'Nightly report',
        description: 'Writes the report',
        schedule: { cron: '0 3 * * *', timezone: 'Europe/Paris' },
        timeout_ms: 60_000,
        metadata: { team: 'ops' },
      });
      const row = await findAgent(t.ctx.db, 'default', 'nightly');
      const expected = new Cron('0 3 * * *', { timezone: 'Europe/Paris', paused: true })
        .nextRun(new Date(before))!
        .getTime();
      expect(row?.schedule_next_at).toBe(expected);
      // the answer to the PUT, the agent and the list say when the schedule queues next
      expect(json<Agent>(res).next_run_at).toBe(new Date(expected).toISOString());
      const summary = json<AgentSummary>(await t.request('GET', '/api/v1/agents/nightly'));
      expect(summary.next_run_at).toBe(new Date(expected).toISOString());
      const listed = json<{ agents: AgentSummary[] }>(
        await t.request('GET', '/api/v1/agents'),
      ).agents;
      expect(listed.find((a) => a.id === 'nightly')?.next_run_at).toBe(
        new Date(expected).toISOString(),
      );
      expect(listed.find((a) => a.id !== 'nightly')?.next_run_at).toBeNull();
    });

    it('keeps fields the body leaves out and removes the schedule when it is null', async () => {
      await t.request('PUT', '/api/v1/agents/nightly', { description: 'Changed' });
      const kept = await findAgent(t.ctx.db, 'default', 'nightly');
      expect(kept).toMatchObject({
        name: 'Nightly report',
        description: 'Changed',
        schedule_cron: '0 3 * * *',
        timeout_ms: 60_000,
      });
      expect(kept?.schedule_next_at).toEqual(expect.any(Number));
      const res = await t.request('PUT', '/api/v1/agents/nightly', { schedule: null });
      expect(json<Agent>(res).schedule).toBeNull();
      const removed = await findAgent(t.ctx.db, 'default', 'nightly');
      expect(removed?.schedule_next_at).toBeNull();
      expect(removed?.schedule_cron).toBeNull();
    });

    it('rejects a bad cron expression or unknown time zone naming the field', async () => {
      const cases: [unknown, string][] = [
        [{ schedule: { cron: 'every tuesday', timezone: 'UTC' } }, 'body.schedule.cron'],
        [{ schedule: { cron: '61 * * * *' } }, 'body.schedule.cron'],
        [{ schedule: { cron: '0 * * * *', timezone: 'Mars/Olympus' } }, 'body.schedule.timezone'],
        [{ timeout_ms: 5 }, 'body.timeout_ms'],
      ];
      for (const [body, field] of cases) {
        const res = await t.request('PUT', '/api/v1/agents/bad-sched', body);
        expect(res.statusCode, field).toBe(400);
        const err = json<{ error: { details: { field: string }[] } }>(res).error;
        expect(err.details.map((d) => d.field)).toContain(field);
      }
      // both wrong: both said at once, not one per try
      const both = await t.request('PUT', '/api/v1/agents/bad-sched', {
        schedule: { cron: 'every tuesday', timezone: 'Mars/Olympus' },
      });
      expect(both.statusCode).toBe(400);
      expect(
        json<{ error: { details: { field: string }[] } }>(both).error.details.map((d) => d.field),
      ).toEqual(['body.schedule.cron', 'body.schedule.timezone']);
      expect(await findAgent(t.ctx.db, 'default', 'bad-sched')).toBeUndefined();
    });

    it('refuses a field it does not take, naming it, and changes nothing', async () => {
      // `timeout` for timeout_ms, or a misspelt limit, would otherwise answer 200 and leave a
      // runaway agent without the limit its owner believes set
      await t.request('PUT', '/api/v1/agents/typo-limits', { max_steps: 10 });
      const stored = await findAgent(t.ctx.db, 'default', 'typo-limits');
      const res = await t.request('PUT', '/api/v1/agents/typo-limits', {
        timeout: 60_000,
        max_cost: 0.5,
      });
      expect(res.statusCode).toBe(400);
      expect(json<Fields>(res).error.details).toEqual([
        { field: 'body.timeout', message: 'unknown field' },
        { field: 'body.max_cost', message: 'unknown field' },
      ]);
      expect(await findAgent(t.ctx.db, 'default', 'typo-limits')).toEqual(stored);
      const created = await t.request('PUT', '/api/v1/agents/typo-new', { descripton: 'x' });
      expect(created.statusCode).toBe(400);
      expect(await findAgent(t.ctx.db, 'default', 'typo-new')).toBeUndefined();
    });
  });

  describe('pausing a schedule', () => {
    const put = (id: string, body: unknown) => t.request('PUT', `/api/v1/agents/${id}`, body);

    it('pauses with {paused} alone, keeping the cron, and resumes from the next slot', async () => {
      await put('paused-1', { schedule: { cron: '0 3 * * *', timezone: 'Europe/Paris' } });
      const paused = await put('paused-1', { schedule: { paused: true } });
      expect(paused.statusCode).toBe(200);
      expect(json<Agent>(paused)).toMatchObject({
        schedule: { cron: '0 3 * * *', timezone: 'Europe/Paris', paused: true },
        next_run_at: null,
      });
      // the agent and the list say so too, not the slot stored
      const one = json<AgentSummary>(await t.request('GET', '/api/v1/agents/paused-1'));
      expect(one.schedule).toEqual({ cron: '0 3 * * *', timezone: 'Europe/Paris', paused: true });
      expect(one.next_run_at).toBeNull();
      const listed = json<{ agents: AgentSummary[] }>(await t.request('GET', '/api/v1/agents'));
      expect(listed.agents.find((a) => a.id === 'paused-1')?.schedule?.paused).toBe(true);
      expect((await findAgent(t.ctx.db, 'default', 'paused-1'))?.schedule_paused).toBe(1);

      const before = Date.now();
      const resumed = json<Agent>(await put('paused-1', { schedule: { paused: false } }));
      const expected = new Cron('0 3 * * *', { timezone: 'Europe/Paris', paused: true })
        .nextRun(new Date(before))!
        .getTime();
      expect(resumed.schedule).toEqual({
        cron: '0 3 * * *',
        timezone: 'Europe/Paris',
        paused: false,
      });
      expect(resumed.next_run_at).toBe(new Date(expected).toISOString());
    });

    it('keeps a schedule paused when its cron changes, and a removed one comes back running', async () => {
      const created = json<Agent>(
        await put('paused-2', { schedule: { cron: '0 * * * *', paused: true } }),
      );
      expect(created.schedule).toEqual({ cron: '0 * * * *', timezone: 'UTC', paused: true });
      expect(created.next_run_at).toBeNull();
      // the settings dialog sends the schedule whole, without paused: still paused
      const edited = json<Agent>(
        await put('paused-2', { schedule: { cron: '30 * * * *', timezone: 'UTC' } }),
      );
      expect(edited.schedule?.paused).toBe(true);
      expect(edited.next_run_at).toBeNull();
      // re-saved unchanged with paused: false resumes from the next slot
      const resumed = json<Agent>(
        await put('paused-2', { schedule: { cron: '30 * * * *', timezone: 'UTC', paused: false } }),
      );
      expect(resumed.schedule?.paused).toBe(false);
      expect(Date.parse(resumed.next_run_at!)).toBe(
        new Cron('30 * * * *', { paused: true }).nextRun(new Date())!.getTime(),
      );
      await put('paused-2', { schedule: { paused: true } });
      await put('paused-2', { schedule: null });
      const again = json<Agent>(await put('paused-2', { schedule: { cron: '0 * * * *' } }));
      expect(again.schedule?.paused).toBe(false);
      expect(again.next_run_at).not.toBeNull();
    });

    it('refuses a pause it cannot apply, naming the field, and writes nothing', async () => {
      await put('paused-3', { description: 'no schedule' });
      const stored = await findAgent(t.ctx.db, 'default', 'paused-3');
      const cases: [string, unknown, string, RegExp][] = [
        [
          'paused-3',
          { schedule: { paused: true } },
          'body.schedule.cron',
          /^required: agent paused-3 has no schedule to pause$/,
        ],
        [
          'paused-3',
          { schedule: { paused: false } },
          'body.schedule.cron',
          /^required: agent paused-3 has no schedule to resume$/,
        ],
        ['paused-3', { schedule: { paused: 'yes' } }, 'body.schedule.paused', /boolean/],
        ['paused-3', { schedule: { timezone: 'UTC' } }, 'body.schedule.cron', /with timezone/],
        ['paused-3', { schedule: {} }, 'body.schedule', /paused: true or false/],
        // a misspelt paused would otherwise set a schedule that runs, queuing what was to wait
        [
          'paused-3',
          { schedule: { cron: '0 9 * * *', pause: true } },
          'body.schedule.pause',
          /^unknown field$/,
        ],
        // an agent not there yet is not made by a pause that fails
        [
          'paused-new',
          { schedule: { paused: true } },
          'body.schedule.cron',
          /no schedule to pause/,
        ],
      ];
      for (const [id, body, field, message] of cases) {
        const res = await put(id, body);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        const details = json<Fields>(res).error.details;
        expect(details.map((d) => d.field)).toEqual([field]);
        expect(details[0]!.message).toMatch(message);
      }
      expect(await findAgent(t.ctx.db, 'default', 'paused-3')).toEqual(stored);
      expect(await findAgent(t.ctx.db, 'default', 'paused-new')).toBeUndefined();
    });

    it('describes paused in the OpenAPI document, on the body and on the agent', async () => {
      const doc = json<{
        paths: Record<string, Record<string, unknown>>;
      }>(await t.request('GET', '/api/v1/openapi.json'));
      const text = JSON.stringify(doc.paths['/api/v1/agents/{agent_id}']);
      const put = doc.paths['/api/v1/agents/{agent_id}']!.put as {
        requestBody: { content: { 'application/json': { schema: unknown } } };
      };
      const body = JSON.stringify(put.requestBody.content['application/json'].schema);
      expect(body).toMatch(/"paused":\{[^}]*"type":"boolean"/);
      expect(text).toMatch(/"required":\["cron","timezone","paused"\]/);
    });
  });

  describe('DELETE /agents/:agent_id', () => {
    it('deletes the agent with its runs and steps and drops them from stats', async () => {
      const stats = async () =>
        get<StatsResponse>(`/api/v1/runs/stats?from=${now - 4 * 24 * HOUR}&to=${now}`);
      const before = await stats();
      expect(before.by_agent.map((a) => a.agent_id)).toContain('health');
      const healthRuns = before.by_agent.find((a) => a.agent_id === 'health')!.runs;
      expect(healthRuns).toBe(7);
      expect(await listSteps(t.ctx.db, 'default', 'h-fail')).toHaveLength(1);
      const res = await t.request('DELETE', '/api/v1/agents/health');
      expect(res.statusCode).toBe(204);
      expect(await listSteps(t.ctx.db, 'default', 'h-fail')).toEqual([]);
      expect((await t.request('GET', '/api/v1/agents/health')).statusCode).toBe(404);
      expect((await t.request('GET', '/api/v1/runs/h-fail')).statusCode).toBe(404);
      expect((await t.request('GET', '/api/v1/runs/h-fail/steps')).statusCode).toBe(404);
      const after = await stats();
      expect(after.by_agent.map((a) => a.agent_id)).not.toContain('health');
      expect(after.totals.runs).toBe(before.totals.runs - healthRuns);
      const { agents } = await get<{ agents: AgentSummary[] }>('/api/v1/agents');
      expect(agents.map((a) => a.id)).not.toContain('health');
      expect((await t.request('DELETE', '/api/v1/agents/health')).statusCode).toBe(404);
    });

    it('keeps a run recorded while its agent is being deleted, with the agent it makes again', async () => {
      const agent = 'deleted-busy';
      // a coarse clock puts the runs and the deletion's start in one tick, as a fast machine can
      const clock = vi.spyOn(Date, 'now').mockImplementation(() => {
        const now = new Date().getTime();
        return now - (now % 250);
      });
      await t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'run.end', run: { id: 'db-old', agent_id: agent, status: 'succeeded' } }],
      });
      // a run recorded between the agent's deletion and its runs': accepted, so kept
      const transact = t.ctx.writer.transact.bind(t.ctx.writer);
      let late: Promise<unknown> | undefined;
      const spy = vi.spyOn(t.ctx.writer, 'transact').mockImplementation(async (fn) => {
        late ??= t.request('POST', '/api/v1/ingest', {
          events: [{ type: 'run.start', run: { id: 'db-new', agent_id: agent } }],
        });
        await late;
        return transact(fn);
      });
      try {
        expect((await t.request('DELETE', `/api/v1/agents/${agent}`)).statusCode).toBe(204);
      } finally {
        spy.mockRestore();
        clock.mockRestore();
      }
      expect((await t.request('GET', '/api/v1/runs/db-old')).statusCode).toBe(404);
      expect((await t.request('GET', '/api/v1/runs/db-new')).statusCode).toBe(200);
      expect((await t.request('GET', `/api/v1/agents/${agent}`)).statusCode).toBe(200);
    });

    it('leaves no run without its agent when the run came just before the agent went', async () => {
      const agent = 'deleted-racing';
      // recorded after the deletion began but while the agent was still there: it did not
      // make the agent again, and the agent is deleted after it
      await t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'run.start', run: { id: 'dr-new', agent_id: agent } }],
      });
      vi.spyOn(Date, 'now').mockReturnValueOnce(Date.now() - 60_000);
      await deleteAgent(t.ctx, 'default', agent);
      expect((await t.request('GET', '/api/v1/runs/dr-new')).statusCode).toBe(200);
      expect((await t.request('GET', `/api/v1/agents/${agent}`)).statusCode).toBe(200);
    });
  });
});

describeEachDb('agents list payloads', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it("carries at most 1 MiB of the latest runs' payloads whole, then previews", async () => {
    // 30 agents whose latest runs hold 60 KB prompts and answers: 3.6 MB of payloads
    const prompt = (i: number) => `${i}:`.padEnd(60_000, 'p');
    const events = Array.from({ length: 30 }, (_, i) => ({
      type: 'run.end',
      run: {
        id: `fat-${String(i).padStart(2, '0')}`,
        agent_id: `fat-agent-${String(i).padStart(2, '0')}`,
        status: 'succeeded',
        input: { prompt: prompt(i) },
        output: 'o'.repeat(60_000),
        metadata: { small: true },
        started_at: Date.now() - 60_000 + i,
        ended_at: Date.now() - 50_000 + i,
      },
    }));
    for (let i = 0; i < events.length; i += 10) {
      const res = await t.request('POST', '/api/v1/ingest', { events: events.slice(i, i + 10) });
      expect(res.statusCode).toBe(200);
    }
    const res = await t.request('GET', '/api/v1/agents');
    expect(res.payload.length).toBeLessThan(1_300_000);
    const { agents } = json<{ agents: AgentSummary[] }>(res);
    expect(agents).toHaveLength(30);
    const latest = agents.map((a) => a.latest_run!);
    const whole = latest.filter((r) => typeof r.output === 'string');
    // eight runs of 120 KB fit in 1 MiB; the others' large fields are previews
    expect(whole).toHaveLength(8);
    for (const r of whole) expect(r.input).toEqual({ prompt: prompt(Number(r.id.slice(4))) });
    const previewed = latest.find((r) => typeof r.output !== 'string')!;
    expect(previewed.output).toEqual({
      __runlog_truncated__: true,
      original_size: 60_002,
      preview: `"${'o'.repeat(1999)}`,
    });
    expect(previewed.metadata).toEqual({ small: true });
    // the run itself has them whole
    const run = json<Run>(await t.request('GET', `/api/v1/runs/${previewed.id}`));
    expect(run.output).toBe('o'.repeat(60_000));
  });
});
