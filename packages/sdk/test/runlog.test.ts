import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId, type IngestEvent } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import {
  Runlog,
  RunInterruptedError,
  RunlogConnectionError,
  type RunContext,
} from '../src/index.js';
import { FaultProxy, clientFactory, deadUrl, waitFor, type TestServer } from './helpers.js';

let server: TestServer;
let errors: Error[] = [];
const clients = clientFactory(() => ({
  url: server.url,
  apiKey: server.adminKey,
  flushIntervalMs: 60_000,
  heartbeatIntervalMs: 60_000,
  onError: (e) => errors.push(e),
}));

beforeAll(async () => {
  server = await startTestServer('sqlite');
});
afterEach(async () => {
  await clients.shutdownAll();
  errors = [];
});
afterAll(async () => {
  await server.close();
});

/**
 * Runs a fixture under tsx; `exited` resolves with its exit code or signal and stdout. One
 * that has not exited after `timeoutMs` is killed (SIGKILL).
 */
function startFixture(
  name: string,
  args: string[],
  timeoutMs = 10_000,
  env: Record<string, string> = {},
) {
  const file = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; stdout: string }>(
    (resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout });
      });
    },
  );
  return { proc, exited, stdout: () => stdout };
}

function runFixture(name: string, args: string[], timeoutMs = 10_000) {
  return startFixture(name, args, timeoutMs).exited;
}

it('records a run whose values are cyclic, nested very deep or hold a getter that throws', async () => {
  const runlog = clients.make();
  const id = newId();
  const request: Record<string, unknown> = { path: '/triage' };
  request.self = request;
  let deep: unknown = 'leaf';
  for (let i = 0; i < 300; i++) deep = [deep];
  await runlog.run('odd-values', () => deep, { id, input: { request } });
  // a value that cannot be read at all still leaves the run to run, and recorded
  let ran = false;
  const broken = newId();
  const input = {
    get broken(): never {
      throw new Error('getter threw');
    },
  };
  await runlog.run('odd-values', () => (ran = true), { id: broken, input });
  expect(ran).toBe(true);
  await runlog.flush(5_000);
  expect((await runlog.runs.get(broken)).status).toBe('succeeded');
  const stored = await runlog.runs.get(id);
  expect(stored.status).toBe('succeeded');
  expect(stored.input).toMatchObject({ request: { path: '/triage', self: '[Circular]' } });
  // cut where the server stops keeping levels, the rest kept
  let level: unknown = stored.output;
  let levels = 0;
  while (Array.isArray(level)) {
    level = level[0];
    levels++;
  }
  expect(levels).toBe(128);
  expect(level).toBe('[nested deeper than 128 levels]');
});

it('says at once when it has no API key to send with', () => {
  const saved = process.env.RUNLOG_API_KEY;
  delete process.env.RUNLOG_API_KEY;
  try {
    const errors: string[] = [];
    clients.make({ apiKey: undefined, onError: (e) => errors.push(e.message) });
    expect(errors).toEqual(['no API key: set RUNLOG_API_KEY or pass apiKey']);
  } finally {
    if (saved !== undefined) process.env.RUNLOG_API_KEY = saved;
  }
});

it('refuses bad options up front, naming each and where it came from', () => {
  const saved = process.env.RUNLOG_URL;
  try {
    process.env.RUNLOG_URL = 'not a url';
    // before, a raw TypeError from new URL(), naming neither the option nor the variable
    expect(() => new Runlog({ apiKey: 'k' })).toThrow(
      'invalid Runlog options: url (RUNLOG_URL): "not a url" is not a URL',
    );
    delete process.env.RUNLOG_URL;
    // accepted before, then every request failed and recording retried for ever
    expect(() => new Runlog({ apiKey: 'k', url: 'ftp://example.com' })).toThrow(
      /url: must be an http:\/\/ or https:\/\/ URL/,
    );
    expect(() => new Runlog({ apiKey: 'k', url: 'localhost:4680' })).toThrow(
      /url: must be an http/,
    );
    expect(
      () => new Runlog({ apiKey: 'k', requestTimeoutMs: -1, maxQueue: -5, batchSize: 1.5 }),
    ).toThrow(
      'invalid Runlog options: batchSize: must be a whole number >= 1, not 1.5; maxQueue: ' +
        'must be a whole number >= 1, not -5; requestTimeoutMs: must be a whole number >= 1, not -1',
    );
  } finally {
    if (saved !== undefined) process.env.RUNLOG_URL = saved;
    else delete process.env.RUNLOG_URL;
  }
});

it('takes a key read from a file, newline and all, and refuses one no header can carry', async () => {
  const errors: Error[] = [];
  // before, the newline made every request fail as a network error, retried for ever
  const runlog = clients.make({ apiKey: `${server.adminKey}\n`, onError: (e) => errors.push(e) });
  const out = await runlog.run('key-file-agent', () => 'ok');
  expect(out).toBe('ok');
  expect(await runlog.flush()).toBe(true);
  expect(errors).toEqual([]);
  expect(() => new Runlog({ url: server.url, apiKey: 'ключ' })).toThrow(
    'invalid Runlog options: apiKey: must be printable ASCII without spaces, the key as Runlog printed it',
  );
});

it('an onError that rejects never becomes an unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const runlog = clients.make({
      url: await deadUrl(),
      // an async reporter (Sentry, a logger over HTTP) that fails
      onError: async () => {
        await new Promise((r) => setImmediate(r));
        throw new Error('reporter failed');
      },
    });
    expect(await runlog.run('rejecting-reporter', () => 42)).toBe(42);
    expect(await runlog.flush(300)).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

describe('process exit', () => {
  it('sends what is still buffered when the process runs out of work', async () => {
    const id = newId();
    const runlog = clients.make();
    await runlog.run('exit-send-agent', () => 'ok', { id });
    expect(runlog.pending).toBe(1);
    runlog.beforeExit(); // what the process hook does when the event loop empties
    await waitFor(() => runlog.pending === 0, 'the final send');
    expect((await runlog.runs.get(id)).output).toBe('ok');
  });

  it('tries once more at exit when the server is down, not again and again', async () => {
    // exitTimeoutMs 0: no waiting for the server at exit, one try at once
    const runlog = clients.make({ url: await deadUrl(), exitTimeoutMs: 0 });
    await runlog.run('exit-down-agent', () => 'ok');
    runlog.beforeExit();
    await waitFor(() => errors.length === 2, 'the final try to fail');
    expect(errors[0]).toBeInstanceOf(RunlogConnectionError);
    expect(errors[1]!.message).toMatch(/exiting with 1 event unsent \(no spoolDir set\)/);
    // the failed try empties the event loop again, so the process hook fires again
    runlog.beforeExit();
    runlog.beforeExit();
    await new Promise((r) => setTimeout(r, 100));
    expect(errors).toHaveLength(2);
    expect(runlog.pending).toBe(1);
  });

  it('at exit, tries a restarting server until exitTimeoutMs, cutting the last pause short', async () => {
    const proxy = await FaultProxy.start(server.url);
    // the longest backoffs (250 ms, 500 ms, 1 s, 2 s): the fourth pause ends past the deadline
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      proxy.down();
      const id = newId();
      const runlog = clients.make({ url: proxy.url, exitTimeoutMs: 3_000 });
      await runlog.run('exit-restart-agent', () => 'back', { id });
      runlog.beforeExit();
      // the server is back 2 s into the exit: before, the exit gave up at 1.75 s, when the
      // next pause no longer fitted, and lost the run
      setTimeout(() => proxy.up(), 2_000);
      await waitFor(
        () => runlog.pending === 0 || errors.some((e) => /events? unsent/.test(e.message)),
        'the exit to send or give up',
      );
      expect(errors.map((e) => e.message)).not.toContainEqual(
        expect.stringMatching(/events? unsent/),
      );
      expect((await clients.make().runs.get(id)).output).toBe('back');
    } finally {
      random.mockRestore();
      await proxy.close();
    }
  });

  it('a script that records a run and ends exits on its own while the server is down', async () => {
    const { code, stdout } = await runFixture('exit-agent.ts', [await deadUrl(), newId()]);
    expect(code).toBe(0);
    // the run's end is sent at once (error 1); the last try at exit fails too (2) and says
    // what is lost (3)
    expect(stdout.trim()).toBe('exit errors=3 pending=1 lost=true');
  });

  it('a script that ends during a backoff pause still makes its last attempt', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      // the send during the run meets a 503 asking for an hour's pause
      proxy.failNext({ status: 503, retryAfter: '3600' });
      const id = newId();
      const { code, stdout } = await startFixture(
        'exit-agent.ts',
        [proxy.url, id, 'pause'],
        10_000,
        {
          RUNLOG_API_KEY: server.adminKey,
        },
      ).exited;
      expect(code).toBe(0);
      expect(stdout.trim()).toBe('exit errors=1 pending=0 lost=false');
      expect((await clients.make().runs.get(id)).output).toBe('done');
    } finally {
      await proxy.close();
    }
  });

  it('a script that ends while the server is busy for a second waits for it at exit', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      // before, the exit tried once at once, met the second 429 and lost the run
      proxy.failNext({ status: 429, retryAfter: '1' }, { status: 429, retryAfter: '1' });
      const id = newId();
      const { code, stdout } = await startFixture(
        'exit-agent.ts',
        [proxy.url, id, 'pause'],
        15_000,
        { RUNLOG_API_KEY: server.adminKey },
      ).exited;
      expect(code).toBe(0);
      expect(stdout.trim()).toMatch(/^exit errors=\d+ pending=0 lost=false$/);
      expect((await clients.make().runs.get(id)).output).toBe('done');
    } finally {
      await proxy.close();
    }
  });

  it('a script whose last attempt at exit fails reports the events it loses', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      proxy.failNext({ status: 503, retryAfter: '3600' }, { status: 503 });
      const { code, stdout } = await runFixture('exit-agent.ts', [proxy.url, newId(), 'pause']);
      expect(code).toBe(0);
      expect(stdout.trim()).toBe('exit errors=3 pending=2 lost=true');
    } finally {
      await proxy.close();
    }
  });

  it('a script does not wait for a hanging request once shutdown() returned', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      proxy.failNext({ hang: true });
      const { code, stdout } = await runFixture('exit-agent.ts', [proxy.url, newId(), 'shutdown']);
      expect(code).toBe(0);
      expect(stdout.trim()).toBe('exit errors=1 pending=1 lost=true');
    } finally {
      await proxy.close();
    }
  });

  it('a script whose server does not answer exits within a request and its exitTimeoutMs', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      proxy.failNext({ hang: true }, { hang: true });
      const { code, stdout } = await runFixture(
        'exit-agent.ts',
        [proxy.url, newId(), 'hang'],
        15_000,
      );
      expect(code).toBe(0);
      const [waited, last] = stdout.trim().split('\n');
      // the request under way times out (4 s), then the last try gets the 500 ms of the
      // exit (at least 1 s): before, it got a whole requestTimeoutMs again (8 s in all)
      expect(Number(/exited after (\d+) ms/.exec(waited!)?.[1])).toBeLessThan(7_000);
      expect(last).toBe('exit errors=3 pending=1 lost=true');
    } finally {
      await proxy.close();
    }
  });

  it('a script that dies of the error its run threw still records the run', async () => {
    const id = newId();
    const { code } = await startFixture('exit-agent.ts', [server.url, id, 'throw'], 10_000, {
      RUNLOG_API_KEY: server.adminKey,
    }).exited;
    expect(code).toBe(1);
    expect(await clients.make().runs.get(id)).toMatchObject({
      status: 'failed',
      error: { message: 'boom from the agent', type: 'Error' },
    });
  });

  it('process.exit() with events unsent reports them lost', async () => {
    const { code, stdout } = await runFixture('exit-agent.ts', [server.url, newId(), 'exit']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('exit errors=1 pending=1 lost=true');
  });
});

describe('signals', () => {
  it('SIGTERM flushes what was recorded, then leaves the signal to the other handlers', async () => {
    const other = () => {};
    process.on('SIGTERM', other); // keeps the re-raised signal from ending the test process
    try {
      const runlog = clients.make({ handleSignals: true });
      const id = newId();
      await runlog.run('sigterm-agent', () => 'kept', { id });
      expect(runlog.pending).toBe(1);
      process.emit('SIGTERM', 'SIGTERM');
      await waitFor(() => runlog.pending === 0, 'the flush on SIGTERM');
      expect((await runlog.runs.get(id)).output).toBe('kept');
      await waitFor(() => process.listenerCount('SIGTERM') === 1, 'the SDK handler to go');
      // shut down by the signal: nothing more is recorded
      await runlog.run('sigterm-agent', () => 'late');
      expect(errors.some((e) => /shut down/.test(e.message))).toBe(true);
    } finally {
      process.removeListener('SIGTERM', other);
    }
  });
});

describe('a signal while run() runs', () => {
  it.each(['sigterm', 'sigterm-listen'])(
    'ends the run cancelled as interrupted, not running until its lease lapses (%s)',
    async (mode) => {
      const id = newId();
      const child = startFixture('exit-agent.ts', [server.url, id, mode], 20_000, {
        RUNLOG_API_KEY: server.adminKey,
      });
      await waitFor(() => child.stdout().includes('started'), 'the run to start');
      child.proc.kill('SIGTERM');
      const { signal } = await child.exited;
      expect(signal).toBe('SIGTERM');
      const run = await clients.make().runs.get(id, { include: 'steps' });
      expect(run).toMatchObject({
        status: 'cancelled',
        error: {
          type: 'Interrupted',
          message: 'the process received SIGTERM before the run ended',
        },
      });
      expect(run.steps?.[0]?.status).not.toBe('running');
    },
  );

  it("stops a worker's claims at once while the process's own run() gets its grace", async () => {
    const agent = `grace-agent-${newId().slice(-8)}`;
    const child = startFixture(
      'worker.ts',
      [server.url, server.adminKey, agent, 'with-run'],
      20_000,
    );
    await waitFor(() => /recording (\S+)/.test(child.stdout()), 'the run() to start');
    const recorded = /recording (\S+)/.exec(child.stdout())![1]!;
    child.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // queued during the grace: nobody takes it any more
    const queued = await clients.make().runs.enqueue(agent);
    expect((await child.exited).signal).toBe('SIGTERM');
    expect((await clients.make().runs.get(queued.id)).status).toBe('queued');
    expect(await clients.make().runs.get(recorded)).toMatchObject({
      status: 'cancelled',
      error: { type: 'Interrupted' },
    });
  });

  it('tells a run() started during the grace at once, and records it interrupted too', async () => {
    const runlog = clients.make();
    const first = newId();
    const second = newId();
    let heard: unknown;
    void runlog.run('grace-agent', () => new Promise(() => {}), { id: first });
    const interrupted = runlog.interrupt('SIGTERM');
    void runlog.run(
      'grace-agent',
      async (run) => {
        heard = run.signal.reason;
        await new Promise(() => {});
      },
      { id: second },
    );
    await interrupted;
    expect(String(heard)).toMatch(/received SIGTERM/);
    await runlog.flush();
    for (const id of [first, second])
      expect(await runlog.runs.get(id)).toMatchObject({
        status: 'cancelled',
        error: {
          type: 'Interrupted',
          message: 'the process received SIGTERM before the run ended',
        },
      });
  });

  it('shutdown() with a run() still running records it interrupted, not running', async () => {
    const runlog = clients.make();
    const id = newId();
    let heard: unknown;
    const running = runlog.run(
      'shutdown-open-agent',
      async (run) => {
        await run.step('tool', 'first', () => 1);
        // ends when told to, else on its own later (its end then too late to be recorded)
        await new Promise<void>((resolve) => {
          run.signal.addEventListener('abort', () => resolve(), { once: true });
          setTimeout(resolve, 1_500);
        });
        heard = run.signal.reason;
        return 'partial';
      },
      { id },
    );
    await new Promise((r) => setTimeout(r, 50));
    await runlog.shutdown(5_000);
    expect(await running).toBe('partial');
    expect(heard).toBeInstanceOf(RunInterruptedError);
    expect(errors.filter((e) => /shut down/.test(e.message))).toEqual([]);
    expect(await clients.make().runs.get(id)).toMatchObject({
      status: 'cancelled',
      output: 'partial',
      error: {
        type: 'Interrupted',
        message: 'runlog.shutdown() was called before the run ended',
      },
    });
  });

  it('ends the run at once on a second signal within the grace, still recorded', async () => {
    const id = newId();
    const child = startFixture('exit-agent.ts', [server.url, id, 'sigterm'], 20_000, {
      RUNLOG_API_KEY: server.adminKey,
    });
    await waitFor(() => child.stdout().includes('started'), 'the run to start');
    child.proc.kill('SIGTERM');
    // a second press, not the first one relayed
    await new Promise((r) => setTimeout(r, 400));
    child.proc.kill('SIGTERM');
    expect((await child.exited).signal).toBe('SIGTERM');
    expect(await clients.make().runs.get(id)).toMatchObject({
      status: 'cancelled',
      error: { type: 'Interrupted' },
    });
  });
});

describe('a worker process', () => {
  it('stays alive while its handler waits for Stop, then ends the run cancelled', async () => {
    const agent = `on-stop-agent-${newId().slice(-8)}`;
    const child = startFixture(
      'worker.ts',
      [server.url, server.adminKey, agent, 'on-stop'],
      20_000,
    );
    const queued = await clients.make().runs.enqueue(agent);
    await waitFor(() => child.stdout().includes(`started ${queued.id}`), 'the handler to start');
    // past the 1 s lease: before, the process ended at once (exit 0) and the run lapsed
    await new Promise((r) => setTimeout(r, 1_500));
    expect(child.proc.exitCode).toBeNull();
    await clients.make().runs.cancel(queued.id);
    const run = await waitFor(async () => {
      const r = await clients.make().runs.get(queued.id);
      return r.status !== 'running' && r;
    }, 'the run to end');
    expect(run).toMatchObject({ status: 'cancelled', output: { stopped: true } });
    // and it ends when told to, not held for ever by the worker
    child.proc.kill('SIGTERM');
    const ended = await child.exited;
    expect(ended.code === 0 || ended.signal === 'SIGTERM').toBe(true);
  });
});

describe('a second SIGINT', () => {
  it('while a worker drains gives its run back to the queue and lets the process end', async () => {
    const agent = `sigint-agent-${newId().slice(-8)}`;
    const child = startFixture('worker.ts', [server.url, server.adminKey, agent, 'sigint'], 20_000);
    const queued = await clients.make().runs.enqueue(agent);
    await waitFor(() => child.stdout().includes(`started ${queued.id}`), 'the handler to start');
    child.proc.kill('SIGINT');
    await waitFor(() => child.stdout().includes('draining'), 'the first SIGINT to start the drain');
    // a second press, not the first one relayed (see the next test)
    await new Promise((r) => setTimeout(r, 400));
    child.proc.kill('SIGINT');
    const { signal } = await child.exited;
    // ended by the signal itself, not by the test's SIGKILL after the 30 s drain
    expect(signal).toBe('SIGINT');
    expect((await clients.make().runs.get(queued.id)).status).toBe('queued');
  });

  it('is not what a runner relaying one Ctrl-C sends: the worker drains its run to the end', async () => {
    const agent = `relay-agent-${newId().slice(-8)}`;
    const child = startFixture('worker.ts', [server.url, server.adminKey, agent, 'finish'], 20_000);
    const queued = await clients.make().runs.enqueue(agent);
    await waitFor(() => child.stdout().includes(`started ${queued.id}`), 'the handler to start');
    // tsx or npm pass the terminal's Ctrl-C on to the child, which gets it twice at once
    child.proc.kill('SIGINT');
    child.proc.kill('SIGINT');
    const { signal } = await child.exited;
    expect(signal).toBe('SIGINT');
    const run = await clients.make().runs.get(queued.id);
    expect(run.status).toBe('succeeded');
    expect(run.output).toEqual({ finished: true });
  });
});

describe('heartbeat', () => {
  it('a recording run the server does not know yet keeps running when its heartbeat answers not_found', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      const runlog = clients.make({ url: proxy.url, heartbeatIntervalMs: 20 });
      const id = newId();
      let ctx: RunContext | undefined;
      const beats = () =>
        proxy.requests.filter((r) => r.path === '/api/v1/runs/heartbeat' && r.status === 200);
      const out = await runlog.run(
        'unsent-agent',
        async (run) => {
          ctx = run;
          await waitFor(() => beats().length >= 2, 'heartbeats answered');
          // they were answered not_found: the run's start is still in the SDK's buffer
          await expect(clients.make().runs.get(id)).rejects.toMatchObject({ status: 404 });
          return 'finished';
        },
        { id },
      );
      expect(out).toBe('finished');
      expect(ctx!.signal.aborted).toBe(false);
      expect(errors).toEqual([]);
      expect(await runlog.flush()).toBe(true);
      expect((await runlog.runs.get(id)).status).toBe('succeeded');
    } finally {
      await clients.shutdownAll();
      await proxy.close();
    }
  });

  it('a run whose id the server refuses does not stop the heartbeats of the runs beside it', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      const runlog = clients.make({ url: proxy.url, heartbeatIntervalMs: 30 });
      const good = newId();
      const beats = () => proxy.requests.filter((r) => r.path === '/api/v1/runs/heartbeat');
      let release: () => void = () => {};
      const held = new Promise<void>((r) => (release = r));
      const bad = runlog.run('bad-id-agent', () => held, { id: 'bad id' });
      await runlog.run(
        'good-id-agent',
        async () => {
          await runlog.flush();
          await waitFor(
            () =>
              runlog.runs.get(good).then(
                () => true,
                () => false,
              ),
            'the run',
          );
          const n = beats().length;
          await waitFor(() => beats().length >= n + 2, 'two more beats');
        },
        { id: good },
      );
      release();
      await bad;
      // every beat answered (status 0: the last one may still be under way) was taken
      expect(beats().filter((r) => r.status !== 0 && r.status !== 200)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('two open runs with the same id each keep beating until each ends', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      const runlog = clients.make({ url: proxy.url, heartbeatIntervalMs: 30 });
      const id = newId();
      const beats = () => proxy.requests.filter((r) => r.path === '/api/v1/runs/heartbeat');
      // the same run on the server: the first to end ends it, the other still beats to learn so
      const first = runlog.run('twin-agent', () => new Promise((r) => setTimeout(r, 50)), { id });
      await runlog.run(
        'twin-agent',
        async () => {
          await first;
          const n = beats().length;
          await waitFor(() => beats().length >= n + 2, 'beats after the first twin ended');
        },
        { id },
      );
    } finally {
      await proxy.close();
    }
  });

  it('a claimed run deleted on the server aborts its signal', async () => {
    const runlog = clients.make({ flushIntervalMs: 20 });
    const agent = `deleted-agent-${newId().slice(-8)}`;
    let ctx: RunContext | undefined;
    const worker = runlog.worker({
      leaseMs: 3_000,
      heartbeatIntervalMs: 20,
      pollWaitMs: 300,
      agents: {
        [agent]: (run) => {
          ctx = run;
          return new Promise((resolve) => run.signal.addEventListener('abort', resolve));
        },
      },
    });
    const q = await runlog.runs.enqueue(agent);
    await waitFor(() => ctx !== undefined, 'the handler to start');
    const res = await fetch(`${server.url}/api/v1/runs/${q.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(res.ok).toBe(true);
    await waitFor(() => ctx!.signal.aborted, 'the signal to fire');
    expect(String(ctx!.signal.reason)).toMatch(/no longer exists on the server/);
    await worker.stop();
  });
});

describe('shutdown', () => {
  /** The run events written to a spool directory, by run id. */
  function spooledRuns(dir: string): Map<string, IngestEvent> {
    const runs = new Map<string, IngestEvent>();
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
      for (const line of readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean)) {
        const event = JSON.parse(line) as IngestEvent;
        if ('run' in event) runs.set(event.run.id, event);
      }
    }
    return runs;
  }

  it('with the server down, is over by its deadline and leaves every event in the spool', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'runlog-shutdown-'));
    try {
      const runlog = clients.make({ url: await deadUrl(), spoolDir });
      const worker = runlog.worker({ agents: { 'shutdown-idle-agent': () => 'never claimed' } });
      await waitFor(() => errors.length > 0, 'a claim to fail');
      const ids = [newId(), newId(), newId()];
      for (const id of ids) await runlog.run('shutdown-agent', () => 'done', { id });

      const timeoutMs = 1_000;
      const started = performance.now();
      await runlog.shutdown(timeoutMs);
      // a promised deadline, with room for a loaded machine: before, it took 10 s more
      expect(performance.now() - started).toBeLessThan(timeoutMs + 2_000);
      await worker.done;

      const spooled = spooledRuns(spoolDir);
      for (const id of ids) {
        expect(spooled.get(id)).toMatchObject({ type: 'run.end', run: { status: 'succeeded' } });
      }
      // and the next process on the same spool sends them
      const next = clients.make({ spoolDir });
      expect(await next.flush()).toBe(true);
      for (const id of ids) expect((await next.runs.get(id)).output).toBe('done');
    } finally {
      rmSync(spoolDir, { recursive: true, force: true });
    }
  });

  it('by default, with no handler running and the server down, flushes for 5 s, not 5 s past the drain allowance', async () => {
    const runlog = clients.make({ url: await deadUrl() });
    // a run recorded and not sent: the flush has something to try, and cannot
    const worker = runlog.worker({ agents: { 'idle-agent': () => 'never claimed' } });
    await waitFor(() => errors.length > 0, 'a claim to fail');
    await runlog.run('down-agent', () => 'done');
    const started = performance.now();
    await runlog.shutdown();
    // before: 35 s (the drain's unused 30 s, then 5 s), past docker stop's 10 s
    const took = performance.now() - started;
    expect(took).toBeGreaterThan(4_000);
    expect(took).toBeLessThan(9_000);
    await worker.done;
  });

  it('worker.stop() ends a backoff pause at once, even one the server asked to last an hour', async () => {
    let claims = 0;
    const busy = createServer((req, res) => {
      if (req.url === '/api/v1/workers/claim') claims++;
      res.writeHead(503, { 'retry-after': '3600' }).end();
    });
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address() as AddressInfo;
      const runlog = clients.make({ url: `http://127.0.0.1:${port}` });
      const worker = runlog.worker({ agents: { 'paused-agent': () => 'never claimed' } });
      await waitFor(() => errors.some((e) => /503/.test(e.message)), 'the 503 to be reported');
      // pausing for an hour now; without the wake-up, stop() would wait it out
      await worker.stop();
      await worker.done;
      expect(claims).toBe(1);
    } finally {
      busy.closeAllConnections();
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });
});
