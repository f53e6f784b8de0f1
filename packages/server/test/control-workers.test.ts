import { afterAll, beforeAll, expect, it } from 'vitest';
import { request } from 'node:http';
import { readableError, type Run } from '@runlog/core';
import { Runlog, type RunlogOptions } from '@runlog/sdk';
import { startServer, type RunningServer } from '../src/server.js';
import { describeEachDb, startTestServer, TEST_ADMIN_KEY, waitFor } from './harness.js';
import { spawnFixture } from './control-helpers.js';

let n = 0;
const uniq = (base: string) => `${base}-${Date.now().toString(36)}-${n++}`;

describeEachDb('workers executing queued runs', (dialect) => {
  let server: RunningServer;
  /** A second instance on the same database (PostgreSQL only). */
  let second: RunningServer | undefined;
  const clients: Runlog[] = [];
  const client = (extra: Partial<RunlogOptions> = {}) => {
    const r = new Runlog({
      url: server.url,
      apiKey: TEST_ADMIN_KEY,
      handleSignals: false,
      flushIntervalMs: 50,
      onError: () => {},
      ...extra,
    });
    clients.push(r);
    return r;
  };
  const settled = (runlog: Runlog, id: string, status?: string) =>
    waitFor(
      async () => {
        const run = await runlog.runs.get(id);
        return ['queued', 'running'].includes(run.status) ? undefined : run;
      },
      `run ${id} to end${status ? ` ${status}` : ''}`,
    );

  beforeAll(async () => {
    server = await startTestServer(dialect, { sweepIntervalMs: 100, cancelGraceMs: 1000 });
    // the same configuration, so the same database
    if (dialect === 'postgres') second = await startServer(server.ctx.config);
  });
  afterAll(async () => {
    for (const c of clients) await c.shutdown(1000);
    await second?.close();
    await server.close();
  });

  it('keeps a long-polling claim over HTTP open for its wait_ms and hands it a run queued meanwhile', async () => {
    const runlog = client();
    const agent = uniq('long-poll');
    const claim = fetch(`${server.url}/api/v1/workers/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agents: [agent], wait_ms: 20_000 }),
    });
    // past the server's one-second look-again interval, the claim still waits
    const early = await Promise.race([
      claim.then((res) => `answered ${res.status}`),
      new Promise<string>((resolve) => setTimeout(() => resolve('waiting'), 1_500)),
    ]);
    expect(early).toBe('waiting');
    const queued = await runlog.runs.enqueue(agent, { input: { x: 1 } });
    const res = await claim;
    expect(res.status).toBe(200);
    expect(((await res.json()) as Run).id).toBe(queued.id);
  });

  it('gives back to the queue a run claimed for a worker that hung up while the claim committed', async () => {
    const runlog = client();
    const agent = uniq('hung-up');
    const queued = await runlog.runs.enqueue(agent, { input: { x: 1 } });
    const seen: string[] = [];
    const unsubscribe = server.ctx.hub.subscribe((event) => {
      if (event.kind === 'run' && event.runId === queued.id) seen.push(event.status);
    });
    // hold the write path, so the claim waits for its commit while the worker hangs up
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const held = server.ctx.writer.transact(() => gate);
    const body = JSON.stringify({ agents: [agent], worker_id: 'w-gone' });
    const req = request(`${server.url}/api/v1/workers/claim`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_ADMIN_KEY}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
    });
    req.on('error', () => {}); // the hang-up below
    req.end(body);
    // the claim is in the write path's queue once the server counts it there
    await waitFor(async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return /^runlog_writer_queue_jobs [1-9]/m.test(text);
    }, 'the claim to wait for the write path');
    req.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    open();
    await held;
    // claimed, then given back: queued again, for the next worker
    await waitFor(() => seen.length >= 2, 'the claim and the give-back');
    unsubscribe();
    expect(seen).toEqual(['running', 'queued']);
    const back = await runlog.runs.get(queued.id);
    expect(back).toMatchObject({ status: 'queued', started_at: null });
    const next = await fetch(`${server.url}/api/v1/workers/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agents: [agent], worker_id: 'w-next' }),
    });
    expect(next.status).toBe(200);
    expect(((await next.json()) as Run).id).toBe(queued.id);
  });

  it('ends the run of a worker process killed with SIGKILL as timed_out once its lease lapses', async () => {
    const runlog = client();
    const agent = uniq('killed');
    const queued = await runlog.runs.enqueue(agent, { input: { x: 1 } });
    const child = spawnFixture('worker.ts', [server.url, TEST_ADMIN_KEY, agent, 'hang']);
    const line = await child.line(/^started /);
    expect(line).toBe(`started ${queued.id}`);
    child.proc.kill('SIGKILL');
    await child.exited;
    const run = await settled(runlog, queued.id);
    expect(run.status).toBe('timed_out');
    expect(readableError(run.error!).type).toBe('LeaseExpired');
    expect(readableError(run.error!).message).toContain(
      `no heartbeat from worker child-${child.proc.pid}`,
    );
    expect(run.step_count).toBe(1);
  });

  it('lets a worker finish what it holds on SIGTERM, then exit', async () => {
    const runlog = client();
    const agent = uniq('sigterm');
    const queued = await runlog.runs.enqueue(agent, {});
    const child = spawnFixture('worker.ts', [server.url, TEST_ADMIN_KEY, agent, 'finish']);
    await child.line(/^started /);
    child.proc.kill('SIGTERM');
    await child.exited;
    const run = await settled(runlog, queued.id);
    expect(run.status).toBe('succeeded');
    expect(run.output).toEqual({ finished: true });
  });

  it('fires the handler signal on Stop and ends the run cancelled', async () => {
    const runlog = client();
    const agent = uniq('stoppable');
    let fired = false;
    const worker = runlog.worker({
      agents: {
        [agent]: (run) =>
          new Promise((_, reject) =>
            run.signal.addEventListener('abort', () => {
              fired = true;
              reject(run.signal.reason as Error);
            }),
          ),
      },
      heartbeatIntervalMs: 100,
      pollWaitMs: 1000,
    });
    const queued = await runlog.runs.enqueue(agent, {});
    await waitFor(async () => (await runlog.runs.get(queued.id)).status === 'running', 'claim');
    const stopped = await runlog.runs.cancel(queued.id);
    expect(stopped.cancel_requested_at).not.toBeNull();
    const run = await settled(runlog, queued.id);
    expect(fired).toBe(true);
    expect(run.status).toBe('cancelled');
    expect(readableError(run.error!).message).toMatch(/the agent stopped/);
    await worker.stop();
  });

  it("queues an orchestrator's sub-runs from its handler as its own, in its thread, and waits for their outputs", async () => {
    const runlog = client();
    const orchestrator = uniq('orchestrator');
    const sub = uniq('doubler');
    let loose = '';
    const worker = runlog.worker({
      agents: {
        [orchestrator]: async () => {
          // two in one turn of the event loop (one POST /runs/enqueue), one alone, unlinked
          const parts = await Promise.all(
            [1, 2].map((n) => runlog.runs.enqueue(sub, { input: { n } })),
          );
          loose = (await runlog.runs.enqueue(sub, { input: { n: 0 }, parent_run_id: null })).id;
          const done = await Promise.all(parts.map((p) => runlog.runs.wait(p.id, { pollMs: 50 })));
          return done.reduce((sum, r) => sum + (r.output as number), 0);
        },
        [sub]: (run) => (run.input as { n: number }).n * 2,
      },
      concurrency: 4,
      pollWaitMs: 1000,
    });
    const parent = await runlog.runs.enqueue(orchestrator, { thread_id: 'th-fan', user_id: 'u-9' });
    expect(await settled(runlog, parent.id)).toMatchObject({ status: 'succeeded', output: 6 });
    const { runs } = await runlog.runs.list({ parent_run_id: parent.id });
    expect(runs).toHaveLength(2);
    for (const r of runs)
      expect(r).toMatchObject({
        agent_id: sub,
        status: 'succeeded',
        parent_run_id: parent.id,
        thread_id: 'th-fan',
        user_id: 'u-9',
      });
    expect(await runlog.runs.get(loose)).toMatchObject({ parent_run_id: null, thread_id: null });
    await worker.stop();
  });

  it("stops an orchestrator's sub-runs on workers with it, and its wait for them", async () => {
    const runlog = client();
    const orchestrator = uniq('orchestrator');
    const sub = uniq('sub-agent');
    const fired: string[] = [];
    let child = '';
    let waitEnded: unknown;
    const worker = runlog.worker({
      agents: {
        [orchestrator]: async () => {
          child = (await runlog.runs.enqueue(sub, { input: { q: 'research' } })).id;
          try {
            // no signal given: the run's own, which Stop fires
            return await runlog.runs.wait(child, { pollMs: 100 });
          } catch (err) {
            waitEnded = err;
            throw err;
          }
        },
        [sub]: (run) =>
          new Promise((_, reject) =>
            run.signal.addEventListener('abort', () => {
              fired.push(run.id);
              reject(run.signal.reason as Error);
            }),
          ),
      },
      concurrency: 2,
      heartbeatIntervalMs: 100,
      pollWaitMs: 1000,
    });
    const parent = await runlog.runs.enqueue(orchestrator, {});
    await waitFor(
      async () => child !== '' && (await runlog.runs.get(child)).status === 'running',
      'the sub-run to be claimed',
    );
    await runlog.runs.cancel(parent.id);
    expect(await settled(runlog, parent.id)).toMatchObject({ status: 'cancelled' });
    expect(await settled(runlog, child)).toMatchObject({ status: 'cancelled' });
    expect(fired).toEqual([child]);
    expect(waitEnded).toBeDefined();
    await worker.stop();
  });

  it('forces cancelled after the grace period when the handler ignores the signal', async () => {
    const runlog = client();
    const agent = uniq('stubborn');
    let release: () => void = () => {};
    const worker = runlog.worker({
      agents: { [agent]: () => new Promise<void>((r) => (release = r)) },
      heartbeatIntervalMs: 100,
      pollWaitMs: 1000,
    });
    const queued = await runlog.runs.enqueue(agent, {});
    await waitFor(async () => (await runlog.runs.get(queued.id)).status === 'running', 'claim');
    await runlog.runs.cancel(queued.id);
    const run = await settled(runlog, queued.id);
    expect(run.status).toBe('cancelled');
    expect(readableError(run.error!).message).toMatch(/^stop forced after grace period/);
    release();
    await worker.stop();
  });

  it('executes the retry of a failed run as a new run linked by retry_of', async () => {
    const runlog = client();
    const agent = uniq('flaky');
    const seen: { id: string; attempt: number }[] = [];
    const worker = runlog.worker({
      agents: {
        [agent]: (run) => {
          seen.push({ id: run.id, attempt: run.info!.attempt });
          if (run.info!.attempt === 1) throw new Error('first try fails');
          return { ok: true, input: run.input };
        },
      },
      pollWaitMs: 1000,
    });
    const first = await runlog.runs.enqueue(agent, { input: { pr: 7 } });
    expect((await settled(runlog, first.id)).status).toBe('failed');
    const retry = await runlog.runs.retry(first.id);
    expect(retry).toMatchObject({
      retry_of: first.id,
      attempt: 2,
      trigger: 'retry',
      status: 'queued',
    });
    const done = await settled(runlog, retry.id);
    expect(done.status).toBe('succeeded');
    expect(done.output).toEqual({ ok: true, input: { pr: 7 } });
    expect(seen.map((s) => s.id)).toEqual([first.id, retry.id]);
    // a retry with a fix to the input runs on it
    const fixed = await runlog.runs.retry(first.id, { input: { pr: 8 } });
    expect(fixed).toMatchObject({ retry_of: first.id, input: { pr: 8 } });
    expect((await settled(runlog, fixed.id)).output).toEqual({ ok: true, input: { pr: 8 } });
    await worker.stop();
  });

  it('executes a run queued for later (run_at a Date, delay_ms) no sooner than then, or at once when started now', async () => {
    const runlog = client();
    const agent = uniq('later');
    const started: Record<string, number> = {};
    const worker = runlog.worker({
      agents: {
        [agent]: (run) => {
          started[run.id] = Date.now();
          return { n: (run.input as { n: number }).n };
        },
      },
      pollWaitMs: 1000,
    });
    const at = new Date(Date.now() + 1_500);
    // two in one turn of the event loop: one POST /runs/enqueue
    const [dated, delayed] = await Promise.all([
      runlog.runs.enqueue(agent, { input: { n: 1 }, run_at: at }),
      runlog.runs.enqueue(agent, { input: { n: 2 }, delay_ms: 1_000 }),
    ]);
    expect(dated!.queued_at).toBe(at.toISOString());
    const now = await runlog.runs.enqueue(agent, { input: { n: 3 } });
    for (const r of [dated!, delayed!, now])
      expect((await settled(runlog, r.id)).status).toBe('succeeded');
    expect(started[dated!.id]).toBeGreaterThanOrEqual(at.getTime());
    expect(started[delayed!.id]).toBeGreaterThanOrEqual(Date.parse(delayed!.queued_at!));
    // the run queued after them to start at once went first
    expect(started[now.id]).toBeLessThan(started[delayed!.id]!);
    // one held an hour, started now: executed at once
    const held = await runlog.runs.enqueue(agent, { input: { n: 4 }, delay_ms: 3_600_000 });
    const asked = Date.now();
    expect(Date.parse((await runlog.runs.startNow(held.id)).queued_at!)).toBeLessThanOrEqual(
      Date.now(),
    );
    expect((await settled(runlog, held.id)).output).toEqual({ n: 4 });
    expect(started[held.id]! - asked).toBeLessThan(60_000);
    await worker.stop();
  });

  it('waits for a queued run to end with runs.wait, through the retries its agent queues', async () => {
    const runlog = client();
    const agent = uniq('waited');
    const worker = runlog.worker({
      agents: {
        [agent]: async (run) => {
          const input = run.input as { fail?: boolean; slowMs?: number };
          if (input.slowMs) await new Promise((r) => setTimeout(r, input.slowMs));
          if (input.fail && run.info!.attempt === 1) throw new Error('first try fails');
          return { attempt: run.info!.attempt };
        },
      },
      pollWaitMs: 1000,
    });
    const ok = await runlog.runs.enqueue(agent, { input: {} });
    expect(await runlog.runs.wait(ok.id)).toMatchObject({
      id: ok.id,
      status: 'succeeded',
      output: { attempt: 1 },
    });
    // its agent retries it: the outcome is the retry's, unless asked for the run's own
    await runlog.agents.update(agent, { retry: { max_attempts: 2, delay_ms: 0 } });
    const flaky = await runlog.runs.enqueue(agent, { input: { fail: true } });
    const last = await runlog.runs.wait(flaky.id);
    expect(last).toMatchObject({ retry_of: flaky.id, status: 'succeeded', output: { attempt: 2 } });
    expect(await runlog.runs.wait(flaky.id, { followRetries: false })).toMatchObject({
      id: flaky.id,
      status: 'failed',
    });
    // a timeout, and an abort: the run goes on
    const slow = await runlog.runs.enqueue(agent, { input: { slowMs: 3000 } });
    await expect(runlog.runs.wait(slow.id, { timeoutMs: 300 })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    const stop = new AbortController();
    const waiting = runlog.runs.wait(slow.id, { signal: stop.signal });
    stop.abort(new Error('no longer needed'));
    await expect(waiting).rejects.toThrow('no longer needed');
    expect((await runlog.runs.wait(slow.id)).status).toBe('succeeded');
    await expect(runlog.runs.wait('no-such-run')).rejects.toMatchObject({ status: 404 });
    await worker.stop();
  });

  it('executes each of 200 queued runs exactly once with two workers', async () => {
    const agent = uniq('many');
    const counts = new Map<string, number>();
    const handler = (run: { id: string }) => {
      counts.set(run.id, (counts.get(run.id) ?? 0) + 1);
      return 'ok';
    };
    // on PostgreSQL each worker talks to its own server instance
    const a = client();
    const b = client(second ? { url: second.url } : {});
    const wa = a.worker({ agents: { [agent]: handler }, concurrency: 4, pollWaitMs: 1000 });
    const wb = b.worker({ agents: { [agent]: handler }, concurrency: 4, pollWaitMs: 1000 });
    const ids: string[] = [];
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, j) => a.runs.enqueue(agent, { input: { i: i + j } })),
      );
      ids.push(...batch.map((r: Run) => r.id));
    }
    await waitFor(
      async () =>
        (await a.runs.list({ agent_id: agent, status: 'succeeded', limit: 1 })).total === 200,
      'all 200 runs to succeed',
      60_000,
    );
    await Promise.all([wa.stop(), wb.stop()]);
    expect(counts.size).toBe(200);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(new Set(ids)).toEqual(new Set(counts.keys()));
  });

  it("keeps two workers of 4 slots each within the agent's cap of 2 runs at once", async () => {
    const agent = uniq('capped');
    const a = client();
    const b = client(second ? { url: second.url } : {});
    await a.agents.update(agent, { max_concurrency: 2 });
    let now = 0;
    let most = 0;
    const handler = async () => {
      most = Math.max(most, ++now);
      await new Promise((r) => setTimeout(r, 40));
      now--;
      return 'ok';
    };
    const wa = a.worker({ agents: { [agent]: handler }, concurrency: 4, pollWaitMs: 1000 });
    const wb = b.worker({ agents: { [agent]: handler }, concurrency: 4, pollWaitMs: 1000 });
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => a.runs.enqueue(agent, { input: { i } })),
    );
    await waitFor(
      async () =>
        (await a.runs.list({ agent_id: agent, status: 'succeeded', limit: 1 })).total === 12,
      'all 12 runs to succeed',
      60_000,
    );
    await Promise.all([wa.stop(), wb.stop()]);
    expect(most).toBe(2);
  });

  it("executes each conversation's turns one after another, in order, with two workers", async () => {
    const agent = uniq('chat');
    const a = client();
    const b = client(second ? { url: second.url } : {});
    await a.agents.update(agent, { max_concurrency_per_thread: 1 });
    const busy = new Map<string, number>();
    const order = new Map<string, number[]>();
    let overlapped = false;
    const handler = async (run: { input: unknown }) => {
      const { thread, turn } = run.input as { thread: string; turn: number };
      if ((busy.get(thread) ?? 0) > 0) overlapped = true;
      busy.set(thread, (busy.get(thread) ?? 0) + 1);
      order.set(thread, [...(order.get(thread) ?? []), turn]);
      await new Promise((r) => setTimeout(r, 20));
      busy.set(thread, busy.get(thread)! - 1);
      return 'ok';
    };
    const wa = a.worker({ agents: { [agent]: handler }, concurrency: 4, pollWaitMs: 1000 });
    const wb = b.worker({ agents: { [agent]: handler }, concurrency: 4, pollWaitMs: 1000 });
    // three conversations, three turns each, queued turn by turn
    const threads = ['t1', 't2', 't3'].map((t) => `${agent}-${t}`);
    for (let turn = 1; turn <= 3; turn++)
      for (const thread of threads)
        await a.runs.enqueue(agent, { input: { thread, turn }, thread_id: thread });
    await waitFor(
      async () =>
        (await a.runs.list({ agent_id: agent, status: 'succeeded', limit: 1 })).total === 9,
      'all 9 turns to succeed',
      60_000,
    );
    await Promise.all([wa.stop(), wb.stop()]);
    expect(overlapped).toBe(false);
    for (const thread of threads) expect(order.get(thread)).toEqual([1, 2, 3]);
  });
});
