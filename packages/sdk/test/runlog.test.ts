import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import { RunlogConnectionError } from '../src/index.js';
import { clientFactory, deadUrl, waitFor, type TestServer } from './helpers.js';

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
