import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryDelayMs, type Agent, type IngestEvent, type Run, type RunList } from '@runlog/core';
import { describeEachDb, createTestApp, ingestOk, json, type TestApp } from '../../test/harness.js';
import { exportText } from '../../test/cli-fixtures.js';
import { sweepOnce } from './sweeper.js';

describe('retryDelayMs', () => {
  it('doubles the delay per attempt made when exponential, holds it when fixed, at most a day', () => {
    const exp = { max_attempts: 5, delay_ms: 1000, backoff: 'exponential' as const };
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(exp, attempt))).toEqual([
      1000, 2000, 4000, 8000,
    ]);
    expect(retryDelayMs({ ...exp, backoff: 'fixed' }, 4)).toBe(1000);
    expect(retryDelayMs({ ...exp, delay_ms: 3_600_000 }, 20)).toBe(24 * 3_600_000);
    expect(retryDelayMs({ ...exp, delay_ms: 0 }, 3)).toBe(0);
  });
});

describeEachDb('automatic retries (an agent retry policy)', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  let seq = 0;
  const named = (base: string) => `${base}-${seq++}`;
  const put = (agent: string, body: Record<string, unknown>) =>
    t.request('PUT', `/api/v1/agents/${agent}`, body);
  const ingest = (events: IngestEvent[]) => ingestOk(t, events);
  const run = async (id: string) => json<Run>(await t.request('GET', `/api/v1/runs/${id}`));
  const retriesOf = async (id: string) =>
    json<RunList>(await t.request('GET', `/api/v1/runs?retry_of=${id}`)).runs;
  const enqueue = async (agent: string, input: unknown = { n: 1 }) =>
    json<Run>(await t.request('POST', `/api/v1/agents/${agent}/runs`, { input }));
  /** A worker's claim of `agent`'s next run, answered at once: the run, or undefined. */
  const claim = async (agent: string): Promise<Run | undefined> => {
    const res = await t.request('POST', '/api/v1/workers/claim', {
      agents: [agent],
      worker_id: 'w-1',
    });
    return res.statusCode === 204 ? undefined : json<Run>(res);
  };
  const fail = (id: string, status: 'failed' | 'timed_out' = 'failed', type = 'UpstreamError') =>
    ingest([{ type: 'run.end', run: { id, status, error: { message: 'upstream 503', type } } }]);

  it("sets, shows, clears and exports an agent's retry policy, refusing bad ones by field", async () => {
    const agent = named('policy');
    const set = await put(agent, { retry: { max_attempts: 3 } });
    expect(set.statusCode).toBe(200);
    // the delay and backoff take their defaults
    expect(json<Agent>(set).retry).toEqual({
      max_attempts: 3,
      delay_ms: 10_000,
      backoff: 'exponential',
    });
    // another field's change leaves it
    await put(agent, { description: 'flaky upstream' });
    expect(json<Agent>(await t.request('GET', `/api/v1/agents/${agent}`)).retry).toMatchObject({
      max_attempts: 3,
    });
    const lines = (await exportText(t.ctx.db))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.kind === 'agent' && l.id === agent)?.retry).toEqual({
      max_attempts: 3,
      delay_ms: 10_000,
      backoff: 'exponential',
    });
    for (const [retry, field] of [
      [{ max_attempts: 1 }, 'body.retry.max_attempts'],
      [{ max_attempts: 21 }, 'body.retry.max_attempts'],
      [{ max_attempts: 3, delay_ms: -1 }, 'body.retry.delay_ms'],
      [{ max_attempts: 3, backoff: 'linear' }, 'body.retry.backoff'],
      // a misspelt field would otherwise leave a default the user did not mean
      [{ max_attempts: 3, delay: 5000 }, 'body.retry.delay'],
      [{}, 'body.retry.max_attempts'],
    ] as const) {
      const res = await put(agent, { retry });
      expect(res.statusCode, JSON.stringify(retry)).toBe(400);
      expect(res.body).toContain(field);
    }
    expect(json<Agent>(await t.request('GET', `/api/v1/agents/${agent}`)).retry?.max_attempts).toBe(
      3,
    );
    const cleared = await put(agent, { retry: null });
    expect(json<Agent>(cleared).retry).toBeNull();
  });

  it('queues a failed run again, each retry once, until max_attempts runs were made', async () => {
    const agent = named('flaky');
    await put(agent, { retry: { max_attempts: 3, delay_ms: 0 } });
    const first = await enqueue(agent, { pr: 42 });
    expect((await claim(agent))?.id).toBe(first.id);
    await fail(first.id);
    const [second] = await retriesOf(first.id);
    expect(second).toMatchObject({
      status: 'queued',
      trigger: 'retry',
      triggered_by: 'retry policy',
      attempt: 2,
      agent_id: agent,
      input: { pr: 42 },
    });
    // the same end again (a replay, a second worker's report) queues nothing more
    await fail(first.id);
    expect(await retriesOf(first.id)).toHaveLength(1);
    expect((await claim(agent))?.id).toBe(second!.id);
    await fail(second!.id, 'timed_out', 'LeaseExpired');
    const [third] = await retriesOf(second!.id);
    expect(third).toMatchObject({ status: 'queued', attempt: 3 });
    expect((await claim(agent))?.id).toBe(third!.id);
    await fail(third!.id);
    // three runs in all: the third failure is the last
    expect(await retriesOf(third!.id)).toEqual([]);
    expect(await claim(agent)).toBeUndefined();
    // a success ends the chain
    const ok = await enqueue(agent);
    await claim(agent);
    await ingest([{ type: 'run.end', run: { id: ok.id, status: 'succeeded' } }]);
    expect(await retriesOf(ok.id)).toEqual([]);
  });

  it('holds a retry back for its delay, doubling it, and claims take it only then', async () => {
    const agent = named('backoff');
    await put(agent, { retry: { max_attempts: 4, delay_ms: 60_000 }, timeout_ms: 600_000 });
    const first = await enqueue(agent);
    await claim(agent);
    const before = Date.now();
    await fail(first.id);
    const [second] = await retriesOf(first.id);
    const waits = Date.parse(second!.queued_at!) - before;
    // the delay, and up to a fifth more at random
    expect(waits).toBeGreaterThanOrEqual(60_000);
    expect(waits).toBeLessThan(72_000 + 5_000);
    // its wait for a worker (the agent's timeout) counts from when it may be taken
    const stored = await t.ctx.db.kysely
      .selectFrom('runs')
      .select(['queued_at', 'deadline_at'])
      .where('id', '=', second!.id)
      .executeTakeFirstOrThrow();
    expect(Number(stored.deadline_at) - Number(stored.queued_at)).toBe(600_000);
    expect(await claim(agent)).toBeUndefined();
    // the delay passed (moved back here rather than waited for): a worker takes it
    await t.ctx.db.kysely
      .updateTable('runs')
      .set({ queued_at: Date.now() - 1 })
      .where('id', '=', second!.id)
      .execute();
    expect((await claim(agent))?.id).toBe(second!.id);
    const again = Date.now();
    await fail(second!.id);
    const [third] = await retriesOf(second!.id);
    const longer = Date.parse(third!.queued_at!) - again;
    expect(longer).toBeGreaterThanOrEqual(120_000);
    expect(longer).toBeLessThan(144_000 + 5_000);
    // Stop cancels a retry waiting its delay at once, as any queued run
    const stopped = await t.request('POST', `/api/v1/runs/${third!.id}/cancel`);
    expect(json<Run>(stopped).status).toBe('cancelled');
    expect(await retriesOf(third!.id)).toEqual([]);
  });

  it('spreads the retries of runs that failed together over a fifth of their delay', async () => {
    const agent = named('outage');
    await put(agent, { retry: { max_attempts: 2, delay_ms: 100_000, backoff: 'fixed' } });
    const runs: Run[] = [];
    for (let i = 0; i < 12; i++) runs.push(await enqueue(agent));
    for (const _ of runs) await claim(agent);
    const before = Date.now();
    await ingest(
      runs.map((r) => ({
        type: 'run.end' as const,
        run: { id: r.id, status: 'failed' as const, error: { message: 'upstream 503' } },
      })),
    );
    const waits = await Promise.all(
      runs.map(async (r) => Date.parse((await retriesOf(r.id))[0]!.queued_at!) - before),
    );
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(100_000);
      expect(w).toBeLessThan(120_000 + 5_000);
    }
    // not all in the same second: twelve draws over 20 s
    expect(new Set(waits.map((w) => Math.floor(w / 1000))).size).toBeGreaterThan(3);
  });

  it('retries neither runs stopped, over a limit, recorded without a worker, nor of agents without a policy', async () => {
    const agent = named('careful');
    await put(agent, { retry: { max_attempts: 5, delay_ms: 0 }, max_steps: 2 });
    // stopped: its handler threw on the abort, a failure nobody should see again
    const stopped = await enqueue(agent);
    await claim(agent);
    await t.request('POST', `/api/v1/runs/${stopped.id}/cancel`);
    await fail(stopped.id);
    expect((await run(stopped.id)).status).toBe('failed');
    // over its agent's limit: a retry would spend as much again
    const over = await enqueue(agent);
    await claim(agent);
    await ingest(
      Array.from({ length: 3 }, (_, i) => ({
        type: 'step.end' as const,
        step: { id: `s${i}`, run_id: over.id, type: 'tool' as const, name: 'loop' },
      })),
    );
    await sweepOnce(t.ctx);
    expect((await run(over.id)).error).toMatchObject({ type: 'BudgetExceeded' });
    // recorded as it ran (the SDK's runlog.run), not the queue's
    const recorded = named('recorded');
    await ingest([
      { type: 'run.start', run: { id: recorded, agent_id: agent } },
      { type: 'run.end', run: { id: recorded, status: 'failed', error: { message: 'boom' } } },
    ]);
    // an agent without a policy
    const plain = named('plain');
    const other = await enqueue(plain);
    await claim(plain);
    await fail(other.id);
    for (const id of [stopped.id, over.id, recorded, other.id])
      expect(await retriesOf(id), id).toEqual([]);
  });
});
