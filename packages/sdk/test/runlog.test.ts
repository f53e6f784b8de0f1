import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import { RunlogConnectionError, type RunContext } from '../src/index.js';
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

/** Runs a fixture under tsx; resolves with its exit code and stdout. */
function runFixture(name: string, args: string[], timeoutMs = 10_000) {
  const file = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

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
    const runlog = clients.make({ url: await deadUrl() });
    await runlog.run('exit-down-agent', () => 'ok');
    runlog.beforeExit();
    await waitFor(() => errors.length === 1, 'the final try to fail');
    expect(errors[0]).toBeInstanceOf(RunlogConnectionError);
    // the failed try empties the event loop again, so the process hook fires again
    runlog.beforeExit();
    runlog.beforeExit();
    await new Promise((r) => setTimeout(r, 100));
    expect(errors).toHaveLength(1);
    expect(runlog.pending).toBe(1);
  });

  it('a script that records a run and ends exits on its own while the server is down', async () => {
    const { code, stdout } = await runFixture('exit-agent.ts', [await deadUrl()]);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('exit errors=1 pending=1');
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

describe('heartbeat', () => {
  it('a recording run the server does not know yet keeps running when its heartbeat gets 404', async () => {
    const proxy = await FaultProxy.start(server.url);
    try {
      const runlog = clients.make({ url: proxy.url, heartbeatIntervalMs: 20 });
      const id = newId();
      let ctx: RunContext | undefined;
      const beats = () =>
        proxy.requests.filter((r) => r.path === `/api/v1/runs/${id}/heartbeat` && r.status === 404);
      const out = await runlog.run(
        'unsent-agent',
        async (run) => {
          ctx = run;
          await waitFor(() => beats().length >= 2, 'heartbeats answered 404');
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
