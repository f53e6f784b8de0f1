import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId, readableError, type Run } from '@runlog/core';
import { describeEachDb, startTestServer } from '../../server/test/harness.js';
import {
  RunCancelledError,
  RunlogError,
  type Runlog,
  type RunContext,
  type Worker,
} from '../src/index.js';
import { FaultProxy, clientFactory, deadUrl, waitFor, type TestServer } from './helpers.js';

// against a real server on each database: the SDK's reads and claims go through its queries
describeEachDb('SDK worker()', (dialect) => {
  let server: TestServer;
  let errors: Error[] = [];
  const clients = clientFactory(() => ({
    url: server.url,
    apiKey: server.adminKey,
    flushIntervalMs: 20,
    onError: (e) => errors.push(e),
  }));
  let runlog: Runlog;
  const fast = { leaseMs: 3_000, heartbeatIntervalMs: 50, pollWaitMs: 300 };

  /** A fresh agent id per test, so queued runs never leak between tests. */
  const agentId = () => `worker-agent-${newId().slice(-8)}`;

  function waitForStatus(id: string, status: Run['status']): Promise<Run> {
    return waitFor(async () => {
      const run = await runlog.runs.get(id);
      return run.status === status && run;
    }, `run ${id} to be ${status}`);
  }

  /**
   * Deletes run `id` on the server while `worker` runs it: the handler's signal says the run
   * is gone, and nothing it records afterwards brings the run back.
   */
  async function deleteWhileRunning(id: string, worker: Worker, run: RunContext) {
    const res = await fetch(`${server.url}/api/v1/runs/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(res.status).toBe(204);
    await waitFor(() => worker.active === 0, 'the handler to finish');
    expect(String(run.signal.reason)).toMatch(/no longer exists/);
    await runlog.flush();
    await expect(runlog.runs.get(id)).rejects.toMatchObject({ status: 404 });
    await worker.stop();
  }

  beforeAll(async () => {
    server = await startTestServer(dialect);
    runlog = clients.make();
  });
  afterEach(() => {
    errors = [];
  });
  afterAll(async () => {
    await clients.shutdownAll();
    await server.close();
  });

  describe('worker()', () => {
    it('claims queued runs and executes them in-process, recording output and steps', async () => {
      const agent = agentId();
      const seen: RunContext[] = [];
      const worker = runlog.worker({
        ...fast,
        concurrency: 2,
        agents: {
          [agent]: async (run) => {
            seen.push(run);
            const n = (run.input as { n: number }).n;
            return run.tool('double', { n }, (a) => a.n * 2);
          },
        },
      });
      const queued = await Promise.all(
        [1, 2, 3].map((n) => runlog.runs.enqueue(agent, { input: { n } })),
      );
      for (const [i, q] of queued.entries()) {
        const run = await waitForStatus(q.id, 'succeeded');
        expect(run.output).toBe((i + 1) * 2);
      }
      expect(seen.map((r) => r.info?.id).sort()).toEqual(queued.map((q) => q.id).sort());
      expect(seen.every((r) => r.agentId === agent)).toBe(true);
      // the server lists the worker while it runs, under the agent it asks for, and not
      // once it stopped
      const listed = async () => {
        const res = await fetch(`${server.url}/api/v1/workers`, {
          headers: { authorization: `Bearer ${server.adminKey}` },
        });
        const body = (await res.json()) as { workers: { id: string; agents: string[] }[] };
        return body.workers.filter((w) => w.agents.includes(agent));
      };
      expect(await listed()).toHaveLength(1);
      await worker.stop();
      expect(await listed()).toEqual([]);
      const steps = await runlog.runs.steps(queued[0]!.id);
      expect(steps).toHaveLength(1);
      expect(steps[0]).toMatchObject({ type: 'tool', name: 'double', output: 2 });
      expect(worker.active).toBe(0);
    });

    it('records a claimed run on the server clock when its host clock is an hour behind', async () => {
      const agent = agentId();
      const realNow = Date.now.bind(Date);
      // the SDK reads a clock an hour behind the server's (here in the same process)
      vi.spyOn(Date, 'now').mockImplementation(() =>
        /[\\/]sdk[\\/]src[\\/]/.test(new Error().stack ?? '') ? realNow() - 3_600_000 : realNow(),
      );
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: async (run) => {
            await run.tool('wait', {}, () => new Promise((r) => setTimeout(r, 200)));
            return 'done';
          },
        },
      });
      try {
        const queued = await runlog.runs.enqueue(agent, {});
        const run = await waitForStatus(queued.id, 'succeeded');
        // its duration as the worker measured it, not 0 ms from an end an hour before its start
        expect(run.duration_ms).toBeGreaterThanOrEqual(200);
        expect(run.duration_ms).toBeLessThan(60_000);
        const [step] = await runlog.runs.steps(queued.id);
        expect(Date.parse(step!.started_at!)).toBeGreaterThanOrEqual(Date.parse(run.started_at!));
        expect(Date.parse(step!.ended_at!)).toBeLessThanOrEqual(Date.parse(run.ended_at!));
      } finally {
        await worker.stop();
        vi.restoreAllMocks();
      }
    });

    it('stops even under a worker id no URL can hold (a lone surrogate)', async () => {
      const worker = runlog.worker({
        ...fast,
        workerId: 'w-\ud800',
        agents: { [agentId()]: () => 1 },
      });
      await worker.stop();
      await worker.done;
    });

    it('records a handler that throws as a failed run with the error', async () => {
      const agent = agentId();
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: () => {
            throw new RangeError('out of range');
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      const run = await waitForStatus(q.id, 'failed');
      expect(run.error).toMatchObject({ message: 'out of range', type: 'RangeError' });
      await worker.stop();
    });

    it("executes the retries its agent's retry policy queues, until an attempt succeeds", async () => {
      const agent = agentId();
      await runlog.agents.update(agent, { retry: { max_attempts: 3, delay_ms: 0 } });
      const attempts: number[] = [];
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: (run: RunContext) => {
            attempts.push(run.info!.attempt);
            if (run.info!.attempt < 3)
              throw new Error(`upstream 503 on attempt ${run.info!.attempt}`);
            return { ok: run.info!.attempt };
          },
        },
      });
      const first = await runlog.runs.enqueue(agent, { input: { pr: 7 } });
      const last = await waitFor(async () => {
        const { runs } = await runlog.runs.list({ agent_id: agent, status: 'succeeded' });
        return runs[0];
      }, 'an attempt to succeed');
      expect(last).toMatchObject({
        attempt: 3,
        trigger: 'retry',
        input: { pr: 7 },
        output: { ok: 3 },
      });
      expect(attempts).toEqual([1, 2, 3]);
      const second = (await runlog.runs.list({ retry_of: first.id })).runs[0]!;
      expect(second).toMatchObject({ status: 'failed', attempt: 2, triggered_by: 'retry policy' });
      expect(last.retry_of).toBe(second.id);
      expect((await runlog.runs.list({ agent_id: agent })).runs).toHaveLength(3);
      await worker.stop();
    });

    it('fires run.signal when the run is cancelled and records it as cancelled', async () => {
      const agent = agentId();
      let reason: unknown;
      let started = false;
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: (run) =>
            new Promise((resolve) => {
              started = true;
              run.signal.addEventListener('abort', () => {
                reason = run.signal.reason;
                resolve('partial');
              });
            }),
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => started, 'the handler to start');
      await waitForStatus(q.id, 'running');
      await runlog.runs.cancel(q.id);
      const run = await waitForStatus(q.id, 'cancelled');
      expect(reason).toBeInstanceOf(RunCancelledError);
      expect(readableError(run.error!).message).toMatch(/the agent stopped/);
      await worker.stop();
    });

    it('an idle worker with pollWaitMs 0 pauses between empty claims, not a hot loop', async () => {
      const proxy = await FaultProxy.start(server.url);
      try {
        const agent = agentId();
        const worker = clients
          .make({ url: proxy.url })
          .worker({ ...fast, pollWaitMs: 0, agents: { [agent]: () => 'ok' } });
        await new Promise((r) => setTimeout(r, 1_000));
        const claims = proxy.requests.filter((r) => r.path === '/api/v1/workers/claim').length;
        // before: about 120 a second
        expect(claims).toBeGreaterThan(0);
        expect(claims).toBeLessThanOrEqual(5);
        // a run queued meanwhile is still taken within a pause
        const q = await runlog.runs.enqueue(agent);
        expect((await waitForStatus(q.id, 'succeeded')).output).toBe('ok');
        await worker.stop();
      } finally {
        await proxy.close();
      }
    });

    it('frees the slot of a handler that ignores its Stop and never returns, and says so', async () => {
      const agent = agentId();
      const worker = runlog.worker({
        ...fast,
        abandonAfterMs: 300,
        agents: {
          // the first run hangs for good, deaf to its signal; the next returns
          [agent]: (run) =>
            (run.input as { hang?: boolean } | null)?.hang ? new Promise(() => {}) : 'next',
        },
      });
      const hung = await runlog.runs.enqueue(agent, { input: { hang: true } });
      await waitForStatus(hung.id, 'running');
      const next = await runlog.runs.enqueue(agent);
      await runlog.runs.cancel(hung.id);
      // before: concurrency 1 held by the hung handler, the next run waited forever
      expect((await waitForStatus(next.id, 'succeeded')).output).toBe('next');
      expect((await waitForStatus(hung.id, 'cancelled')).status).toBe('cancelled');
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          new RegExp(`^run ${hung.id}: its handler did not return within 300 ms of its signal`),
        ),
      ]);
      await worker.stop();
    });

    it('records nothing more of a handler it gave up on, into the run it ended', async () => {
      const agent = agentId();
      let steps = 0;
      const worker = runlog.worker({
        ...fast,
        abandonAfterMs: 200,
        agents: {
          // deaf to its signal: it goes on taking steps long after the run ended
          [agent]: async (run) => {
            for (let i = 0; i < 20; i++) {
              await run.tool('deaf', { i }, () => new Promise((r) => setTimeout(r, 50)));
              steps++;
            }
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitForStatus(q.id, 'running');
      await runlog.runs.cancel(q.id);
      const ended = await waitForStatus(q.id, 'cancelled');
      await waitFor(() => steps === 20, 'the deaf handler to finish');
      expect(await runlog.flush()).toBe(true);
      const after = await runlog.runs.get(q.id);
      // the step under way when it was given up on may still end; no new step starts
      expect(after.step_count).toBeLessThanOrEqual(ended.step_count + 1);
      expect(after.step_count).toBeLessThan(20);
      await worker.stop();
    });

    it('run.heartbeat() learns about Stop at once, and the runs of a worker beat together', async () => {
      const proxy = await FaultProxy.start(server.url);
      try {
        const viaProxy = clients.make({ url: proxy.url });
        const agent = agentId();
        const started: RunContext[] = [];
        let release: () => void = () => {};
        const held = new Promise<void>((r) => (release = r));
        const worker = viaProxy.worker({
          // no beat of its own during the test: only run.heartbeat() sends
          ...fast,
          heartbeatIntervalMs: 60_000,
          concurrency: 4,
          agents: {
            [agent]: async (run) => {
              started.push(run);
              await held;
              await run.heartbeat();
              return run.signal.aborted ? 'stopped' : 'done';
            },
          },
        });
        const queued = await Promise.all([1, 2, 3, 4].map(() => runlog.runs.enqueue(agent)));
        await waitFor(() => started.length === 4, 'four handlers to start');
        await runlog.runs.cancel(queued[0]!.id);
        const before = proxy.requests.length;
        release();
        await waitForStatus(queued[0]!.id, 'cancelled');
        for (const q of queued.slice(1)) await waitForStatus(q.id, 'succeeded');
        const beats = proxy.requests
          .slice(before)
          .filter((r) => r.path === '/api/v1/runs/heartbeat');
        // four runs asking in the same turn: one request
        expect(beats).toHaveLength(1);
        // the stopped run's handler knew it from run.heartbeat() alone (no beat of its own)
        expect((await runlog.runs.get(queued[0]!.id)).output).toBe('stopped');
        expect((await runlog.runs.get(queued[1]!.id)).output).toBe('done');
        // beaten by hand: the one warning is of the interval, longer than the lease
        expect(errors.map((e) => e.message)).toEqual([
          expect.stringMatching(/is not less than leaseMs/),
        ]);
        await worker.stop();
      } finally {
        await proxy.close();
      }
    });

    it('works with a server from before batched heartbeats and enqueues, one request per run', async () => {
      const proxy = await FaultProxy.start(server.url);
      proxy.missing.add('/api/v1/runs/heartbeat');
      proxy.missing.add('/api/v1/runs/enqueue');
      // slow 404s: the second run's first beat goes out while the first run's is unanswered,
      // and both hear the route is missing (the second was reported as an error)
      proxy.missingDelayMs = 300;
      try {
        const older = clients.make({ url: proxy.url });
        const agent = agentId();
        let stopped: unknown;
        const worker = older.worker({
          ...fast,
          heartbeatIntervalMs: 60_000,
          concurrency: 2,
          agents: {
            [agent]: async (run) => {
              if (run.input === 'stop me') {
                await runlog.runs.cancel(run.id);
                await run.heartbeat();
                stopped = run.signal.reason;
              } else await run.heartbeat();
              return 'done';
            },
          },
        });
        const [a, b] = await Promise.all([
          older.runs.enqueue(agent, { input: 'stop me' }),
          older.runs.enqueue(agent, { input: 'run me' }),
        ]);
        await waitForStatus(a!.id, 'cancelled');
        await waitForStatus(b!.id, 'succeeded');
        expect(stopped).toBeInstanceOf(RunCancelledError);
        const paths = proxy.requests.map((r) => r.path);
        expect(paths.filter((p) => p === `/api/v1/agents/${agent}/runs`)).toHaveLength(2);
        expect(paths.some((p) => /^\/api\/v1\/runs\/[^/]+\/heartbeat$/.test(p))).toBe(true);
        // beaten by hand: the one warning is of the interval, longer than the lease
        expect(errors.map((e) => e.message)).toEqual([
          expect.stringMatching(/is not less than leaseMs/),
        ]);
        await worker.stop();
      } finally {
        await proxy.close();
      }
    });

    it('stop() stops claiming and lets a running handler finish (drain)', async () => {
      const agent = agentId();
      let finish: (v: string) => void = () => {};
      let started = false;
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: () =>
            new Promise<string>((resolve) => {
              started = true;
              finish = resolve;
            }),
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => started, 'the handler to start');
      expect(worker.active).toBe(1);
      let stopped = false;
      const stopping = worker.stop().then(() => (stopped = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(stopped).toBe(false); // still draining the running handler
      finish('drained');
      await stopping;
      await worker.done;
      expect((await runlog.runs.get(q.id)).output).toBe('drained');
      // a stopped worker claims nothing more
      const later = await runlog.runs.enqueue(agent);
      await new Promise((r) => setTimeout(r, 100));
      expect((await runlog.runs.get(later.id)).status).toBe('queued');
    });

    it('stop() past drainTimeoutMs releases the run back to the queue and aborts its signal', async () => {
      const agent = agentId();
      let ctx: RunContext | undefined;
      const worker = runlog.worker({
        ...fast,
        drainTimeoutMs: 20,
        agents: {
          [agent]: (run) => {
            ctx = run;
            return new Promise((resolve) => run.signal.addEventListener('abort', resolve));
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => ctx !== undefined, 'the handler to start');
      await worker.stop();
      expect(String(ctx!.signal.reason)).toMatch(/released back to the queue/);
      const run = await runlog.runs.get(q.id);
      expect(run.status).toBe('queued');
    });

    it('drops what a released run records afterwards: the next attempt holds only its own steps', async () => {
      const agent = agentId();
      let first: RunContext | undefined;
      let late: Promise<unknown> | undefined;
      const worker = runlog.worker({
        ...fast,
        drainTimeoutMs: 20,
        agents: {
          [agent]: async (run) => {
            first = run;
            await new Promise((resolve) => run.signal.addEventListener('abort', resolve));
            // a handler deaf to the release goes on working, and recording
            late = run.tool('after-release', {}, () => 'late');
            await late;
            return 'late output';
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => first !== undefined, 'the handler to start');
      await worker.stop();
      await late;
      await runlog.flush();
      const run = await runlog.runs.get(q.id, { include: 'steps' });
      expect(run.status).toBe('queued');
      expect(run.steps).toEqual([]);
    });

    it('stops a handler whose run was given back to the queue under it, so it never runs twice', async () => {
      const agent = agentId();
      const started: RunContext[] = [];
      const worker = runlog.worker({
        ...fast,
        concurrency: 2,
        agents: {
          [agent]: async (run) => {
            started.push(run);
            await new Promise((resolve) => run.signal.addEventListener('abort', resolve));
            return `ended by handler ${started.indexOf(run) + 1}`;
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => started.length === 1, 'the handler to start');
      // given back under its worker (by hand, or by the stop of another process of its id)
      const res = await fetch(`${server.url}/api/v1/runs/${q.id}/release`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(200);
      await waitFor(() => started.length === 2, 'the run to be claimed again');
      // before, the first handler ran on beside the second, and its end was taken as the run's
      expect(String(started[0]!.signal.reason)).toMatch(/released back to the queue/);
      expect(worker.active).toBe(1);
      await runlog.runs.cancel(q.id);
      const run = await waitForStatus(q.id, 'cancelled');
      expect(run.output).toBe('ended by handler 2');
      await worker.stop();
    });

    it('stops a handler whose run another worker claimed after it was given back', async () => {
      const agent = agentId();
      let ctx: RunContext | undefined;
      const worker = runlog.worker({
        ...fast,
        // no beat of its own before the other worker's claim: one is sent by hand below
        leaseMs: 60_000,
        heartbeatIntervalMs: 30_000,
        agents: {
          [agent]: async (run) => {
            ctx = run;
            await new Promise((resolve) => run.signal.addEventListener('abort', resolve));
            return 'the first worker went on';
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => ctx !== undefined, 'the handler to start');
      const post = (path: string, body: unknown) =>
        fetch(`${server.url}/api/v1${path}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${server.adminKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify(body),
        });
      expect((await post(`/runs/${q.id}/release`, {})).status).toBe(200);
      const claimed = await post('/workers/claim', { agents: [agent], worker_id: 'w-next' });
      expect(((await claimed.json()) as Run).id).toBe(q.id);
      // its next beat hears of the other worker: before, only through onError, beat after beat
      await ctx!.heartbeat();
      await waitFor(() => ctx!.signal.aborted, 'the first handler to be stopped');
      await worker.stop();
      await runlog.flush();
      const run = await runlog.runs.get(q.id);
      expect(run).toMatchObject({ status: 'running', output: null });
    });

    it('records nothing more of a run deleted while it runs, and never brings it back', async () => {
      const agent = agentId();
      let ctx: RunContext | undefined;
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: async (run) => {
            ctx = run;
            await new Promise((resolve) => run.signal.addEventListener('abort', resolve));
            await run.tool('after-delete', {}, () => 'late');
            return 'ended anyway';
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => ctx !== undefined, 'the handler to start');
      await deleteWhileRunning(q.id, worker, ctx!);
    });

    it('refuses options the server would refuse every claim of, naming them', () => {
      const make = (options: Record<string, unknown>) => () =>
        runlog.worker({ agents: { [agentId()]: () => 'ok' }, ...options });
      expect(make({ pollWaitMs: 120_000 })).toThrow(/^invalid worker options: pollWaitMs: /);
      expect(make({ leaseMs: 500 })).toThrow(/leaseMs: /);
      expect(make({ leaseMs: 2 * 3_600_000 })).toThrow(/leaseMs: /);
      expect(make({ concurrency: 2.5 })).toThrow(/concurrency: must be a whole number >= 1/);
      expect(make({ concurrency: Number.NaN })).toThrow(/concurrency: /);
      expect(make({ drainTimeoutMs: -1 })).toThrow(/drainTimeoutMs: /);
      expect(make({ abandonAfterMs: -5 })).toThrow(/abandonAfterMs: /);
      expect(() => runlog.worker({ agents: { 'bad agent!': () => 'ok' } })).toThrow(
        /agents: "bad agent!" must be 1-128 characters/,
      );
    });

    it('tells onError at once of a heartbeat interval no shorter than the lease', async () => {
      const worker = runlog.worker({
        agents: { [agentId()]: () => 'ok' },
        leaseMs: 4000,
        heartbeatIntervalMs: 20_000,
      });
      try {
        expect(errors.map((e) => e.message)).toContainEqual(
          expect.stringMatching(
            /: heartbeatIntervalMs \(20000\) is not less than leaseMs \(4000\): each run's lease lapses before its next heartbeat/,
          ),
        );
      } finally {
        await worker.stop();
      }
    });

    it('stops, saying why, when the server refuses its claims as invalid', async () => {
      // a server whose bounds differ from this SDK's: every claim is a 400
      const strict = createServer((_req, res) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        const error = { code: 'invalid_input', message: 'body.max: too big', details: [] };
        res.end(JSON.stringify({ error }));
      });
      await new Promise<void>((resolve) => strict.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = strict.address() as AddressInfo;
        const other = clients.make({ url: `http://127.0.0.1:${port}` });
        const worker = other.worker({ ...fast, agents: { [agentId()]: () => 'ok' } });
        await worker.done;
        expect(errors.map((e) => e.message)).toEqual([
          expect.stringMatching(/^worker .* stopped: .*body\.max: too big/),
        ]);
      } finally {
        strict.closeAllConnections();
        await new Promise((resolve) => strict.close(resolve));
      }
    });

    it('executes the runs of a server from before claims took max, which answers one run', async () => {
      // such a server ignores `max` and answers the run itself, not `{runs: [...]}`
      const older = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          let body = Buffer.concat(chunks).toString();
          if (req.url === '/api/v1/workers/claim') {
            const { max: _max, ...claim } = JSON.parse(body) as Record<string, unknown>;
            body = JSON.stringify(claim);
          }
          // no kept-alive connection to the test server: its close would wait for them
          const forward = request(`${server.url}${req.url}`, {
            method: req.method,
            headers: { ...req.headers, 'content-length': Buffer.byteLength(body) },
            agent: false,
          });
          forward.on('response', (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
          forward.end(body);
        });
      });
      await new Promise<void>((resolve) => older.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = older.address() as AddressInfo;
        const other = clients.make({ url: `http://127.0.0.1:${port}` });
        const agent = agentId();
        const q = await runlog.runs.enqueue(agent, { input: { n: 1 } });
        const worker = other.worker({ ...fast, agents: { [agent]: () => 'done' } });
        // before: "claimed is not iterable" ended the process, the run held until its lease lapsed
        expect((await waitForStatus(q.id, 'succeeded')).output).toBe('done');
        await worker.stop();
        await other.shutdown(5_000);
        expect(errors).toEqual([]);
      } finally {
        older.closeAllConnections();
        await new Promise((resolve) => older.close(resolve));
      }
    });

    it('cannot be started once runlog is shut down', async () => {
      const other = clients.make();
      await other.shutdown(1_000);
      expect(() => other.worker({ agents: { [agentId()]: () => 'ok' } })).toThrow(
        'runlog was shut down: start workers before shutdown()',
      );
    });

    it('does not bring back a deleted run whose handler goes on recording steps', async () => {
      const agent = agentId();
      let ctx: RunContext | undefined;
      let steps = 0;
      const worker = runlog.worker({
        ...fast,
        agents: {
          [agent]: async (run) => {
            ctx = run;
            // steps go out every few ms, far more often than heartbeats
            for (let i = 0; i < 400 && !run.signal.aborted; i++) {
              await run.tool(`t${i}`, {}, () => new Promise((r) => setTimeout(r, 5)));
              steps++;
            }
            return 'ended anyway';
          },
        },
      });
      const q = await runlog.runs.enqueue(agent);
      await waitFor(() => steps > 5, 'the handler to record steps');
      await deleteWhileRunning(q.id, worker, ctx!);
    });

    it('stop() while a claim waits leaves a run queued meanwhile to the queue, not to a lapse', async () => {
      for (let i = 0; i < 3; i++) {
        const agent = agentId();
        const worker = runlog.worker({
          ...fast,
          pollWaitMs: 5_000,
          agents: { [agent]: () => 'ok' },
        });
        await new Promise((r) => setTimeout(r, 50)); // the claim is waiting on the server
        const q = await runlog.runs.enqueue(agent);
        await worker.stop();
        // the claim that woke for it was hung up on: the run is queued again, or it ran
        const run = await waitFor(async () => {
          const r = await runlog.runs.get(q.id);
          return r.status !== 'running' && r;
        }, 'the run to leave running');
        expect(['queued', 'succeeded']).toContain(run.status);
      }
    });

    it('stop() gives back a run claimed for it whose answer it never read', async () => {
      const agent = agentId();
      const worker = runlog.worker({ ...fast, pollWaitMs: 5_000, agents: { [agent]: () => 'ok' } });
      const q = await runlog.runs.enqueue(agent);
      await waitForStatus(q.id, 'succeeded');
      // a claim the server answered as the worker hung up on its long poll (a busy event loop
      // past the poll's grace): the run is held under the worker's id, the worker knows nothing
      const lost = await runlog.runs.enqueue(`${agent}-lost`);
      const res = await fetch(`${server.url}/api/v1/workers/claim`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agents: [`${agent}-lost`], worker_id: worker.id }),
      });
      expect(res.status).toBe(200);
      await worker.stop();
      // before: running under a worker that had stopped, to lapse to timed_out unexecuted
      expect((await runlog.runs.get(lost.id)).status).toBe('queued');
    });

    it("keeps a run's lease while its end waits to reach the server, so it never lapses", async () => {
      const proxy = await FaultProxy.start(server.url);
      try {
        const own = clients.make({ url: proxy.url });
        const agent = agentId();
        let finished = false;
        const worker = own.worker({
          leaseMs: 1_000,
          heartbeatIntervalMs: 100,
          pollWaitMs: 300,
          agents: {
            [agent]: async () => {
              // the server refuses recording for 3 s (three lease lengths) right as it ends
              proxy.failNext({ status: 503, retryAfter: '3' });
              finished = true;
              return 'done';
            },
          },
        });
        const q = await runlog.runs.enqueue(agent);
        await waitFor(() => finished, 'the handler to finish');
        const run = await waitForStatus(q.id, 'succeeded');
        expect(run.output).toBe('done');
        await worker.stop();
      } finally {
        await proxy.close();
      }
    });

    it('gives back a run whose claim answer was lost on the way, so it runs, not lapses', async () => {
      const proxy = await FaultProxy.start(server.url);
      try {
        const own = clients.make({ url: proxy.url });
        const agent = agentId();
        const q = await runlog.runs.enqueue(agent);
        // the server claims the run for the worker, and the connection drops before its answer
        proxy.failNextOn('/api/v1/workers/claim', { loseAnswer: true });
        let executions = 0;
        const worker = own.worker({
          ...fast,
          leaseMs: 2_000,
          agents: {
            [agent]: () => {
              executions++;
              return 'ran';
            },
          },
        });
        const run = await waitFor(async () => {
          const r = await runlog.runs.get(q.id);
          return r.status !== 'queued' && r.status !== 'running' && r;
        }, 'the run to end');
        // before: held under the worker's id, unknown to it, to lapse to timed_out unexecuted
        expect(run.status).toBe('succeeded');
        expect(run.output).toBe('ran');
        expect(executions).toBe(1);
        expect(proxy.requests.some((r) => r.outcome === 'lost')).toBe(true);
        await worker.stop();
      } finally {
        await proxy.close();
      }
    });

    it('runlog.shutdown() stops its workers', async () => {
      const own = clients.make();
      const agent = agentId();
      const worker = own.worker({ ...fast, agents: { [agent]: () => 'ok' } });
      await own.shutdown();
      await worker.done;
      const q = await runlog.runs.enqueue(agent);
      await new Promise((r) => setTimeout(r, 100));
      expect((await runlog.runs.get(q.id)).status).toBe('queued');
    });

    it('needs at least one agent handler', () => {
      expect(() => runlog.worker({ agents: {} })).toThrow(RunlogError);
    });
  });

  describe('worker() without a server', () => {
    it('reports claim failures to onError, keeps polling and still stops', async () => {
      const errs: Error[] = [];
      const down = clients.make({ url: await deadUrl(), onError: (e) => errs.push(e) });
      const worker = down.worker({ ...fast, agents: { [agentId()]: () => 'never' } });
      await waitFor(() => errs.length > 0, 'a claim failure to be reported');
      expect(errs[0]!.name).toBe('RunlogConnectionError');
      await worker.stop();
      await worker.done;
    });
  });
});
