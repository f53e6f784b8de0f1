import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId, type IngestEvent } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import { type Runlog, RunlogApiError, RunlogConnectionError, RunlogError } from '../src/index.js';
import { FAILED_RUN_FLUSH_MS } from '../src/runlog.js';
import {
  FaultProxy,
  clientFactory,
  committedEvents,
  deadUrl,
  waitFor,
  type TestServer,
} from './helpers.js';

let server: TestServer;
let proxy: FaultProxy;
let errors: Error[] = [];
const clients = clientFactory(() => ({
  url: proxy.url,
  apiKey: server.adminKey,
  heartbeatIntervalMs: 60_000,
  onError: (e) => errors.push(e),
}));

beforeAll(async () => {
  server = await startTestServer('sqlite');
  proxy = await FaultProxy.start(server.url);
});
afterEach(async () => {
  await clients.shutdownAll();
  proxy.up();
  proxy.clearFaults();
  proxy.failing.clear();
  proxy.requests.length = 0;
  errors = [];
});
afterAll(async () => {
  await proxy.close();
  await server.close();
});

/**
 * Runs code that throws, as run `id`; checks that run() rethrows its error, and answers how
 * long run() took to do so (the wait for its end to be sent).
 */
async function failedRunMs(runlog: Runlog, id = newId()): Promise<number> {
  const started = Date.now();
  await expect(
    runlog.run(
      'transport-agent',
      () => {
        throw new Error('agent failed');
      },
      { id },
    ),
  ).rejects.toThrow('agent failed');
  return Date.now() - started;
}

/** Records one run with `steps` tool steps; returns its id. */
async function recordRun(runlog: Runlog, steps: number, agent = 'transport-agent') {
  const id = newId();
  await runlog.run(
    agent,
    async (run) => {
      for (let i = 0; i < steps; i++) await run.tool(`tool-${i}`, { i }, (a) => a.i);
      return { steps };
    },
    { id },
  );
  return id;
}

describe('batching', () => {
  it('sends as soon as batchSize events wait, without waiting for the interval', async () => {
    const runlog = clients.make({ batchSize: 5, flushIntervalMs: 60_000 });
    const id = newId();
    let sentWhileRunning = 0;
    await runlog.run(
      'batch-agent',
      async (run) => {
        for (let i = 0; i < 4; i++) run.update({ metadata: { [`k${i}`]: i } });
        // run.start + 4 updates = one full batch, sent while the run is still open
        await waitFor(() => runlog.pending === 0, 'the full batch to be acknowledged');
        sentWhileRunning = proxy.forwardedIngests().length;
      },
      { id },
    );
    expect(sentWhileRunning).toBe(1);
    expect(proxy.forwardedIngests()[0]!.events).toBe(5);
    expect(runlog.pending).toBe(1); // the run.end waits for the next batch
    expect(await runlog.flush()).toBe(true);
    expect(proxy.forwardedIngests().map((r) => r.events)).toEqual([5, 1]);
    const run = await runlog.runs.get(id);
    expect(run.status).toBe('succeeded');
    expect(run.metadata).toMatchObject({ k0: 0, k1: 1, k2: 2, k3: 3 });
  });

  it('sends fewer than batchSize events on the flush interval without a flush()', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 20 });
    const id = await recordRun(runlog, 3);
    await waitFor(() => runlog.pending === 0, 'the interval to send the run');
    expect(proxy.forwardedIngests().length).toBeGreaterThanOrEqual(1);
    const steps = await runlog.runs.steps(id);
    expect(steps.map((s) => s.name)).toEqual(['tool-0', 'tool-1', 'tool-2']);
  });

  it('merges a start still waiting in the buffer with its end into one event', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    const id = await recordRun(runlog, 2);
    // run.start+end and two step start+end pairs: 3 events, not 6
    expect(runlog.pending).toBe(3);
    expect(await runlog.flush()).toBe(true);
    expect(proxy.forwardedEvents()).toBe(3);
    const run = await runlog.runs.get(id, { include: 'steps' });
    expect(run.status).toBe('succeeded');
    expect(run.steps.every((s) => s.status === 'succeeded' && s.ended_at !== null)).toBe(true);
  });

  it('splits a large backlog into requests of at most 1000 events, in order', async () => {
    const runlog = clients.make({ batchSize: 5000, maxQueue: 5000, flushIntervalMs: 60_000 });
    const id = newId();
    await runlog.run(
      'backlog-agent',
      async (run) => {
        for (let i = 0; i < 1200; i++) await run.llm({ model: 'gpt-4o-mini', output: i });
      },
      { id },
    );
    expect(await runlog.flush()).toBe(true);
    expect(proxy.forwardedIngests().map((r) => r.events)).toEqual([1000, 201]);
    expect(proxy.forwardedIngests()[0]!.ids[0]).toBe(id);
    const run = await runlog.runs.get(id);
    expect(run.step_count).toBe(1200);
    expect(run.llm_calls).toBe(1200);
  });

  it('flush() resolves true once the server committed everything, and at once when idle', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    expect(await runlog.flush()).toBe(true);
    expect(proxy.requests).toHaveLength(0);
    const before = committedEvents(server);
    const id = await recordRun(runlog, 4);
    expect(runlog.pending).toBe(5);
    expect(await runlog.flush()).toBe(true);
    expect(runlog.pending).toBe(0);
    expect(committedEvents(server) - before).toBe(5);
    // acknowledged means committed: readable right away
    expect((await runlog.runs.get(id)).step_count).toBe(4);
  });

  it('flush() answers false when its timeout passes first and keeps the events queued', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    proxy.down();
    const id = await recordRun(runlog, 1);
    expect(await runlog.flush(150)).toBe(false);
    expect(runlog.pending).toBe(2);
    proxy.up();
    expect(await runlog.flush()).toBe(true);
    expect((await runlog.runs.get(id)).status).toBe('succeeded');
  });

  it('shutdown() flushes what is queued and then stops recording', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    const id = await recordRun(runlog, 2);
    await runlog.shutdown();
    expect(runlog.pending).toBe(0);
    expect((await runlog.runs.get(id)).step_count).toBe(2);
    const sent = proxy.forwardedIngests().length;
    // after shutdown the agent's code still runs, but nothing is recorded
    const out = await runlog.run('after-shutdown', () => 'still works');
    expect(out).toBe('still works');
    expect(errors.some((e) => /shut down; event not recorded/.test(e.message))).toBe(true);
    expect(await runlog.flush()).toBe(true);
    expect(proxy.forwardedIngests()).toHaveLength(sent);
    // a second shutdown is the same promise, not a second flush
    await runlog.shutdown();
  });

  it('shutdown() with the server down and no spoolDir reports the events it loses', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    proxy.down();
    await recordRun(runlog, 1);
    await runlog.shutdown(100);
    expect(
      errors.some((e) => /shut down with 2 events unsent \(no spoolDir set\)/.test(e.message)),
    ).toBe(true);
  });
});

describe('retry', () => {
  it('waits the Retry-After the server asked for, even when flush() is called meanwhile', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    proxy.failNext({ status: 429, retryAfter: '1' });
    await recordRun(runlog, 1);
    // the first flush (or the run's own end) sends and meets the 429; the second flush
    // arrives during the wait
    expect(await runlog.flush(200)).toBe(false);
    expect(await runlog.flush()).toBe(true);
    const ingests = proxy.requests.filter((r) => r.path === '/api/v1/ingest');
    expect(ingests.map((r) => r.outcome)).toEqual(['faulted', 'forwarded']);
    // the retry came at least the second asked for after the refused request, less the
    // slack of timers measured from the event loop's cached clock; ignoring Retry-After would
    // retry within the first backoff, under 250 ms. (Measured from before the flushes, a busy
    // machine failed this: the run's end may send, and meet the 429, before they are called.)
    expect(ingests[1]!.at - ingests[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('answers false from flush() when shutdown() gave up with events unsent', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    proxy.down();
    await recordRun(runlog, 1);
    await runlog.shutdown(100);
    expect(runlog.pending).toBeGreaterThan(0);
    expect(await runlog.flush(100)).toBe(false);
  });

  it('retries 503 and 429 with Retry-After; events arrive exactly once and onError hears of it', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    proxy.failNext(
      { status: 503, retryAfter: '0', body: '{"error":{"code":"unavailable","message":"busy"}}' },
      { status: 429, retryAfter: '0' },
    );
    const before = committedEvents(server);
    let id = '';
    const out = await runlog.run('retry-agent', async (run) => {
      id = run.id;
      await run.tool('t', { a: 1 }, () => 'ok');
      return 'done';
    });
    expect(out).toBe('done');
    expect(await runlog.flush()).toBe(true);
    const ingests = proxy.requests.filter((r) => r.path === '/api/v1/ingest');
    expect(ingests.map((r) => [r.outcome, r.status])).toEqual([
      ['faulted', 503],
      ['faulted', 429],
      ['forwarded', 200],
    ]);
    expect(ingests[2]!.ids).toEqual(ingests[0]!.ids);
    expect(committedEvents(server) - before).toBe(2);
    const first = errors[0];
    expect(first).toBeInstanceOf(RunlogApiError);
    expect((first as RunlogApiError).status).toBe(503);
    expect((first as RunlogApiError).code).toBe('unavailable');
    expect((first as RunlogApiError).retryAfterMs).toBe(0);
    const run = await runlog.runs.get(id);
    expect(run.output).toBe('done');
    expect(run.step_count).toBe(1);
  });

  it('keeps retrying through a network outage and sends everything once it is over', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 20 });
    proxy.down();
    const ids = [await recordRun(runlog, 2), await recordRun(runlog, 3)];
    await waitFor(() => errors.length > 0, 'the outage to be reported');
    expect(errors[0]).toBeInstanceOf(RunlogConnectionError);
    expect(runlog.pending).toBeGreaterThan(0);
    const before = committedEvents(server);
    proxy.up();
    expect(await runlog.flush()).toBe(true);
    expect(committedEvents(server) - before).toBe(proxy.forwardedEvents());
    const forwardedIds = proxy.forwardedIngests().flatMap((r) => r.ids);
    expect(new Set(forwardedIds).size).toBe(forwardedIds.length);
    expect((await runlog.runs.get(ids[0]!)).step_count).toBe(2);
    expect((await runlog.runs.get(ids[1]!)).step_count).toBe(3);
  });

  it('a failing run() rethrows as soon as sending its end fails, not after its wait', async () => {
    const runlog = clients.make({ url: await deadUrl() });
    // the connection was refused within milliseconds: waiting out the 2 s would be for nothing
    expect(await failedRunMs(runlog)).toBeLessThan(FAILED_RUN_FLUSH_MS);
    expect(errors[0]).toBeInstanceOf(RunlogConnectionError);
  });

  it('a failing run() still waits for its end while a busy server asks it to come back soon', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    proxy.failNext({ status: 429, retryAfter: '1' });
    const id = newId();
    await failedRunMs(runlog, id);
    // sent before run() rethrew: a script dying of the error loses nothing
    expect(runlog.pending).toBe(0);
    expect((await runlog.runs.get(id)).status).toBe('failed');

    // also when the busy answer came before the code failed
    const early = clients.make({ flushIntervalMs: 50 });
    proxy.failNext({ status: 429, retryAfter: '1' });
    const id2 = newId();
    await expect(
      early.run(
        'transport-agent',
        async () => {
          await new Promise((r) => setTimeout(r, 300));
          throw new Error('agent failed later');
        },
        { id: id2 },
      ),
    ).rejects.toThrow('agent failed later');
    expect(early.pending).toBe(0);
    expect((await early.runs.get(id2)).status).toBe('failed');
  });

  it('a failing run() waits once while the server keeps failing, not once per run', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    const busy = Array.from({ length: 40 }, () => ({ status: 503, retryAfter: '1' }));
    proxy.failNext(...busy);
    // the first waits its time for the end to go; before, each of them did
    expect(await failedRunMs(runlog)).toBeGreaterThanOrEqual(FAILED_RUN_FLUSH_MS - 50);
    expect(await failedRunMs(runlog)).toBeLessThan(FAILED_RUN_FLUSH_MS / 2);
    expect(await failedRunMs(runlog)).toBeLessThan(FAILED_RUN_FLUSH_MS / 2);
    // once the server takes events again, a failing run waits for its end again
    proxy.clearFaults();
    expect(await runlog.flush(5_000)).toBe(true);
    await failedRunMs(runlog);
    expect(runlog.pending).toBe(0);
  });

  it('a failing run() does not wait while a proxy answers 502 for the server', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    proxy.failNext(...Array.from({ length: 10 }, () => ({ status: 502 })));
    expect(await failedRunMs(runlog)).toBeLessThan(FAILED_RUN_FLUSH_MS / 2);
  });

  it('drops a batch the server rejects as a client error and reports it, then goes on', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    proxy.failNext({ status: 400, body: '{"error":{"code":"invalid_input","message":"bad"}}' });
    const lost = await recordRun(runlog, 1);
    expect(await runlog.flush()).toBe(true);
    expect(runlog.pending).toBe(0);
    expect(errors).toHaveLength(1);
    expect((errors[0] as RunlogApiError).status).toBe(400);
    await expect(runlog.runs.get(lost)).rejects.toMatchObject({ status: 404 });
    const kept = await recordRun(runlog, 1);
    expect(await runlog.flush()).toBe(true);
    expect((await runlog.runs.get(kept)).status).toBe('succeeded');
  });

  it('keeps the events of a key the server refuses (401) and sends them once it takes it', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    const refused = '{"error":{"code":"unauthorized","message":"invalid API key"}}';
    proxy.failNext({ status: 401, body: refused }, { status: 403, body: refused });
    const id = await recordRun(runlog, 2);
    expect(await runlog.flush(15_000)).toBe(true);
    expect((await runlog.runs.get(id)).step_count).toBe(2);
    expect(errors.map((e) => (e as RunlogApiError).status)).toContain(401);
  });

  it('sends a batch over the body limit in smaller requests, losing no event', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    const big = 'x'.repeat(300_000);
    // the server's answer to a body over its limit, once: the SDK halves its requests
    proxy.failNext({ status: 413, body: '{"error":{"code":"payload_too_large","message":"big"}}' });
    const id = newId();
    await runlog.run(
      'big-batch-agent',
      async (run) => {
        for (let i = 0; i < 20; i++) await run.tool(`t${i}`, { i }, () => big);
      },
      { id },
    );
    expect(await runlog.flush(15_000)).toBe(true);
    const run = await runlog.runs.get(id);
    expect(run).toMatchObject({ status: 'succeeded', step_count: 20 });
    // 6 MB of events went in requests of at most 4 MiB, and after the 413 at most half as big
    const sent = proxy.forwardedIngests();
    expect(sent.length).toBeGreaterThanOrEqual(3);
    for (const r of sent) expect(r.bytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(errors).toHaveLength(0);
  });

  it('drops an event over the body limit on its own, not the run sent beside it', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    const tooLarge = {
      status: 413,
      body: '{"error":{"code":"payload_too_large","message":"big"}}',
    };
    // the batch of two runs, then the first run alone, are over the limit
    proxy.failNext(tooLarge, tooLarge);
    const dropped = await recordRun(runlog, 0, 'beside-agent');
    const kept = await recordRun(runlog, 0, 'beside-agent');
    expect(await runlog.flush(15_000)).toBe(true);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining(`over the server's body limit (run ${dropped})`),
    ]);
    await expect(runlog.runs.get(dropped)).rejects.toMatchObject({ status: 404 });
    expect((await runlog.runs.get(kept)).status).toBe('succeeded');
  });

  it('sends an event over the body limit on its own with its large payloads truncated', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    const tooLarge = {
      status: 413,
      body: '{"error":{"code":"payload_too_large","message":"big"}}',
    };
    // the run's start and end (one event) with a 2 MiB output, over the limit on its own
    proxy.failNext(tooLarge);
    const id = newId();
    const output = 'x'.repeat(2 * 1024 * 1024);
    await runlog.run('huge-output-agent', () => output, { id, input: { small: true } });
    expect(await runlog.flush(15_000)).toBe(true);
    expect(errors).toEqual([]);
    const run = await runlog.runs.get(id);
    // recorded and ended, its output stored as the server stores one over its field limit
    expect(run).toMatchObject({
      status: 'succeeded',
      input: { small: true },
      output: { __runlog_truncated__: true, original_size: output.length + 2 },
    });
  });

  it('tells onError of failing heartbeats now and then, not at every beat', async () => {
    const runlog = clients.make({ heartbeatIntervalMs: 10 });
    // a proxy in front of a server away: every beat answered 503
    proxy.failing.set('/api/v1/runs/heartbeat', 503);
    const beats = () => proxy.requests.filter((r) => r.path === '/api/v1/runs/heartbeat');
    let ran = 0;
    await runlog.run('beats-503-agent', async () => {
      await waitFor(() => beats().length >= 25, 'failed beats');
      // the server back: beats answered, and a later failure is told again at once
      proxy.failing.clear();
      ran = beats().length;
      await waitFor(() => beats().length >= ran + 3, 'answered beats');
      proxy.failing.set('/api/v1/runs/heartbeat', 503);
      ran = beats().length;
      await waitFor(() => beats().length >= ran + 2, 'failing again');
      proxy.failing.clear();
    });
    const told = errors.filter((e) => e instanceof RunlogApiError && e.status === 503);
    // the 1st and the 10th, 20th of the first outage, and the 1st of the second: not 25+
    expect(told.length).toBeGreaterThanOrEqual(3);
    expect(told.length).toBeLessThanOrEqual(6);
  });

  it('reports events the server rejected one by one (207) and keeps the rest', async () => {
    const runlog = clients.make({ batchSize: 1000, flushIntervalMs: 60_000 });
    // the id of a run deleted on the server takes no events for a while
    const gone = await recordRun(runlog, 0);
    await runlog.flush();
    const deleted = await fetch(`${server.url}/api/v1/runs/${gone}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(deleted.status).toBe(204);
    await runlog.run('partial-agent', () => 'refused', { id: gone });
    const kept = await recordRun(runlog, 1, 'partial-agent');
    expect(await runlog.flush()).toBe(true);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^Runlog rejected 1 events: .*was deleted/),
    ]);
    expect((await runlog.runs.get(kept)).status).toBe('succeeded');
    await expect(runlog.runs.get(gone)).rejects.toMatchObject({ status: 404 });
  });

  it('gives up waiting on a request that hangs past requestTimeoutMs and sends it again', async () => {
    const runlog = clients.make({
      batchSize: 1000,
      flushIntervalMs: 60_000,
      requestTimeoutMs: 200,
    });
    proxy.failNext({ hang: true });
    const id = await recordRun(runlog, 1);
    expect(await runlog.flush()).toBe(true);
    expect(errors[0]).toBeInstanceOf(RunlogConnectionError);
    expect(errors[0]!.message).toMatch(/timed out/);
    expect(proxy.forwardedIngests()).toHaveLength(1);
    expect((await runlog.runs.get(id)).status).toBe('succeeded');
  });

  it('after a slow request, sends everything that waited in one request, not one per tick', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000, requestTimeoutMs: 300 });
    proxy.failNext({ hang: true });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await recordRun(runlog, 0));
      // what each flush tick does: the first one's request hangs, the others wait behind it
      await runlog.flush(0);
    }
    expect(await runlog.flush()).toBe(true);
    const ingests = proxy.requests.filter((r) => r.path === '/api/v1/ingest');
    expect(ingests.map((r) => r.outcome)).toEqual(['hung', 'forwarded']);
    expect(ingests[1]!.ids).toEqual(ids);
  });

  it('drops only an event JSON cannot write from its batch, naming its run', async () => {
    const runlog = clients.make({ flushIntervalMs: 60_000 });
    const healthy = await recordRun(runlog, 1);
    const bad = newId();
    // what snapshots prevent, should a bug of ours let one through
    const transport = (runlog as unknown as { transport: { push(e: IngestEvent): void } })
      .transport;
    transport.push({ type: 'run.update', run: { id: bad, metadata: { n: 1n } } });
    const after = await recordRun(runlog, 1);
    expect(await runlog.flush()).toBe(true);
    expect(errors.map((e) => e.message)).toEqual([
      `dropped 1 events that cannot be sent as JSON (runs ${bad})`,
    ]);
    expect((await runlog.runs.get(healthy)).status).toBe('succeeded');
    expect((await runlog.runs.get(after)).status).toBe('succeeded');
  });

  it('never lets a throwing onError reach the agent', async () => {
    const runlog = clients.make({
      flushIntervalMs: 20,
      onError: () => {
        throw new Error('onError blew up');
      },
    });
    proxy.down();
    const out = await runlog.run('calm-agent', async (run) => {
      await run.tool('t', {}, () => 1);
      return 'fine';
    });
    expect(out).toBe('fine');
    expect(await runlog.flush(100)).toBe(false);
    proxy.up();
    expect(await runlog.flush()).toBe(true);
  });
});

describe('a throwing onError', () => {
  it('never escapes a heartbeat as an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let reported = 0;
      // a revoked key: every heartbeat answers 401, which reaches onError
      const runlog = clients.make({
        apiKey: 'rl_revoked_key_000000000000000000000000',
        heartbeatIntervalMs: 20,
        onError: () => {
          reported++;
          throw new Error('onError blew up');
        },
      });
      const out = await runlog.run('beating-agent', async () => {
        await new Promise((r) => setTimeout(r, 200));
        return 'fine';
      });
      expect(out).toBe('fine');
      await new Promise((r) => setTimeout(r, 50));
      expect(reported).toBeGreaterThan(0);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('bounded queue', () => {
  it('drops the oldest events past maxQueue while the server is down and reports them', async () => {
    const runlog = clients.make({ batchSize: 1, maxQueue: 4, flushIntervalMs: 60_000 });
    proxy.down();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = newId();
      ids.push(id);
      await runlog.run('bounded-agent', () => i, { id });
    }
    // 10 events (a start and an end per run, each its own batch); the one being sent stays
    expect(runlog.pending).toBe(4);
    const dropped = errors
      .map((e) => /dropped the (\d+) oldest events/.exec(e.message))
      .filter((m) => m !== null)
      .reduce((n, m) => n + Number(m[1]), 0);
    expect(dropped).toBe(6);
    expect(errors.some((e) => /event queue full \(4\)/.test(e.message))).toBe(true);
    proxy.up();
    expect(await runlog.flush()).toBe(true);
    expect(proxy.forwardedEvents()).toBe(4);
    // kept: the first run's start (being sent) and the newest events
    expect((await runlog.runs.get(ids[0]!)).status).toBe('running');
    expect((await runlog.runs.get(ids[4]!)).output).toBe(4);
    await expect(runlog.runs.get(ids[1]!)).rejects.toMatchObject({ status: 404 });
    await expect(runlog.runs.get(ids[2]!)).rejects.toMatchObject({ status: 404 });
  });
});

describe('spoolDir', () => {
  const dirs: string[] = [];
  const spoolDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'runlog-spool-'));
    dirs.push(d);
    return d;
  };
  const spooled = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a new Runlog on the same spoolDir sends what an earlier one could not, exactly once', async () => {
    const dir = spoolDir();
    // the first instance talks to a server that is gone (a process that then exits)
    const first = clients.make({ url: await deadUrl(), spoolDir: dir, flushIntervalMs: 20 });
    const id = await recordRun(first, 5, 'spool-agent');
    expect(await first.flush(100)).toBe(false);
    expect(spooled(dir).length).toBeGreaterThan(0);
    await first.shutdown(50);
    // with a spoolDir, unsent events are not reported as lost: the spool keeps them
    expect(errors.some((e) => /events? unsent/.test(e.message))).toBe(false);
    expect(spooled(dir).length).toBeGreaterThan(0);

    const before = committedEvents(server);
    const second = clients.make({ spoolDir: dir, flushIntervalMs: 20 });
    expect(second.pending).toBeGreaterThan(0);
    expect(await second.flush()).toBe(true);
    expect(spooled(dir)).toEqual([]);
    const ids = proxy.forwardedIngests().flatMap((r) => r.ids);
    expect(ids.filter((x) => x === id)).toHaveLength(1);
    expect(committedEvents(server) - before).toBe(proxy.forwardedEvents());
    const run = await second.runs.get(id, { include: 'steps' });
    expect(run.status).toBe('succeeded');
    expect(run.steps).toHaveLength(5);
    // the spool is not sent twice by yet another instance
    const third = clients.make({ spoolDir: dir });
    expect(third.pending).toBe(0);
  });

  it('removes each spool file once the server acknowledged it', async () => {
    const dir = spoolDir();
    const runlog = clients.make({ spoolDir: dir, batchSize: 1000, flushIntervalMs: 60_000 });
    proxy.down();
    await recordRun(runlog, 2);
    expect(await runlog.flush(50)).toBe(false);
    expect(spooled(dir)).toHaveLength(1);
    proxy.up();
    expect(await runlog.flush()).toBe(true);
    expect(spooled(dir)).toEqual([]);
  });

  it('keeps spooled events on disk only past maxQueue, dropping none', async () => {
    const dir = spoolDir();
    const runlog = clients.make({
      url: await deadUrl(),
      spoolDir: dir,
      batchSize: 1,
      maxQueue: 2,
      flushIntervalMs: 60_000,
    });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await recordRun(runlog, 1));
    expect(runlog.pending).toBe(16);
    expect(errors.some((e) => /dropped/.test(e.message))).toBe(false);
    // a new instance with a small maxQueue reads what does not fit from disk when sending
    const before = committedEvents(server);
    await runlog.shutdown(50);
    const next = clients.make({ spoolDir: dir, maxQueue: 2 });
    expect(await next.flush()).toBe(true);
    expect(committedEvents(server) - before).toBe(16);
    for (const id of ids) expect((await next.runs.get(id)).status).toBe('succeeded');
    expect(spooled(dir)).toEqual([]);
  });

  it('holds the spool to spoolMaxBytes: past it, events stay in memory, and it says so once', async () => {
    const dir = spoolDir();
    const runlog = clients.make({
      url: await deadUrl(),
      spoolDir: dir,
      spoolMaxBytes: 20_000,
      batchSize: 10,
      maxQueue: 100,
      flushIntervalMs: 60_000,
    });
    // a long outage: before, the spool grew without bound (6 GB an hour in a review)
    for (let i = 0; i < 20; i++) await recordRun(runlog, 20);
    const bytes = spooled(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThanOrEqual(20_000);
    expect(errors.filter((e) => /spool full \(spoolMaxBytes 20000\)/.test(e.message))).toHaveLength(
      1,
    );
    // what did not fit is bounded by maxQueue like any unspooled event
    expect(errors.some((e) => /event queue full \(100\): dropped/.test(e.message))).toBe(true);
  });

  it('spools a batch at a time past maxQueue, not a file per event', async () => {
    const dir = spoolDir();
    const runlog = clients.make({
      url: await deadUrl(),
      spoolDir: dir,
      batchSize: 100,
      maxQueue: 100,
      flushIntervalMs: 60_000,
    });
    await recordRun(runlog, 1500);
    expect(runlog.pending).toBeGreaterThanOrEqual(1500);
    // 1,500 steps recorded while the server is away: a file per batch of 100 or so
    expect(spooled(dir).length).toBeLessThanOrEqual(40);
    expect(errors.some((e) => /dropped/.test(e.message))).toBe(false);
    await runlog.shutdown(50);
  });

  it('skips a spool line cut short by a crash and removes empty spool files', async () => {
    const dir = spoolDir();
    const id = newId();
    const start = {
      type: 'run.start',
      run: { id, agent_id: 'crashed-agent', started_at: Date.now() },
    };
    writeFileSync(join(dir, '000000000000001-1-00000000.jsonl'), '');
    writeFileSync(
      join(dir, '000000000000002-1-00000001.jsonl'),
      `${JSON.stringify(start)}\n{"type":"run.end","run":{"id":"${id}","sta`,
    );
    const runlog = clients.make({ spoolDir: dir });
    expect(runlog.pending).toBe(1);
    expect(await runlog.flush()).toBe(true);
    expect(spooled(dir)).toEqual([]);
    expect((await runlog.runs.get(id)).status).toBe('running');
  });

  it('reports a spoolDir it cannot write and still sends from memory', async () => {
    const dir = spoolDir();
    const notADir = join(dir, 'file');
    writeFileSync(notADir, 'x');
    const runlog = clients.make({ spoolDir: notADir, batchSize: 1000, flushIntervalMs: 60_000 });
    const id = await recordRun(runlog, 1);
    expect(await runlog.flush()).toBe(true);
    expect(
      errors.some((e) => e instanceof RunlogError && /cannot write spool/.test(e.message)),
    ).toBe(true);
    expect((await runlog.runs.get(id)).status).toBe('succeeded');
  });
});

describe('runs.wait', () => {
  it('waits out a server away (network errors, 503) and answers the ended run', async () => {
    const runlog = clients.make({ flushIntervalMs: 20 });
    const id = newId();
    await runlog.run('transport-agent', () => 'done', { id });
    expect(await runlog.flush()).toBe(true);
    proxy.down();
    const waiting = runlog.runs.wait(id, { pollMs: 50, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    proxy.up();
    proxy.failNext({ status: 503, retryAfter: '0' });
    const run = await waiting;
    expect(run).toMatchObject({ id, status: 'succeeded', output: 'done' });
  });
});
