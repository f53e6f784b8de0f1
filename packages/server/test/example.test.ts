// The README's runnable example (examples/bug-triager/agent.ts) run as a user runs it, against
// a real server: it records a run, executes queued runs as a worker, and its demo queues,
// stops and retries runs (by hand and by the agent's retry policy). An example that no test
// runs stops working unnoticed.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunList, RunWithSteps } from '@runlog/core';
import { describeEachDb, startTestServer, waitFor } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = 'examples/bug-triager/agent.ts';

describeEachDb('the bug-triager example', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let worker: ChildProcess | undefined;
  let workerOut = '';

  /** The example in its own process (through tsx, as the README runs it). */
  const example = (mode: string) =>
    spawn(process.execPath, ['--import', 'tsx', EXAMPLE, mode], {
      cwd: ROOT,
      env: { ...process.env, RUNLOG_URL: server.url, RUNLOG_API_KEY: server.adminKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  /** Runs `mode` to its end: its exit code and output. */
  const finished = (mode: string) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = example(mode);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => resolve({ code, out }));
    });
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(res.status, path).toBe(200);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    server = await startTestServer(dialect);
  });
  afterAll(async () => {
    worker?.kill('SIGKILL');
    await server?.close();
  });

  it('records a run with its tool and LLM steps', async () => {
    const { code, out } = await finished('record');
    expect(code, out).toBe(0);
    expect(out).toMatch(/^recorded: \{ verdict: 'bug'/m);
    const [run] = (await get<RunList>('/runs?agent_id=bug-triager')).runs;
    const detail = await get<RunWithSteps>(`/runs/${run!.id}?include=steps`);
    expect(detail).toMatchObject({ status: 'succeeded', trigger: 'manual', source: 'example' });
    expect(detail.steps.map((s) => `${s.type}:${s.name}`)).toEqual([
      'tool:list_files',
      'tool:read_file',
      'llm:gpt-4o-mini',
    ]);
    expect(detail.total_tokens).toBeGreaterThan(0);
  }, 60_000);

  it('executes the demo as a worker: queued, queued for later and started now, with a sub-agent, stopped, retried by hand and on its own', async () => {
    worker = example('worker');
    worker.stdout!.on('data', (d: Buffer) => (workerOut += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (workerOut += d.toString()));
    await waitFor(() => workerOut.includes('waiting for bug-triager runs'), 'the worker to start');
    const { code, out } = await finished('demo');
    expect(code, out + workerOut).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^queued \S+ -> succeeded$/),
      expect.stringMatching(/^queued for later \S+ -> started now -> succeeded$/),
      expect.stringMatching(
        /^with a sub-agent \S+ -> succeeded \(sub-run \S+ of duplicate-finder -> succeeded\)$/,
      ),
      expect.stringMatching(/^stopped \S+ -> cancelled$/),
      expect.stringMatching(/^flaky \S+ -> failed GitHub API answered 502$/),
      expect.stringMatching(/^retry \S+ \(retry_of \S+, attempt 2\) -> succeeded$/),
      expect.stringMatching(/^flaky \S+ -> failed$/),
      expect.stringMatching(/^retried on its own \S+ \(retry policy, attempt 2\) -> succeeded$/),
    ]);
    // the demo leaves the agent's settings as it found them
    expect((await get<{ retry: unknown }>('/agents/bug-triager')).retry).toBeNull();
    // Ctrl-C: the worker drains, then ends as the signal ends a process, holding no run
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      worker!.on('exit', (_code, signal) => resolve(signal)),
    );
    worker.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    worker = undefined;
    // and says so at once: a drain of up to 30 s is not a silent wait
    await waitFor(
      () => /^stopping: no run in hand$/m.test(workerOut),
      'the worker to say it stops',
    );
    expect((await get<RunList>('/runs?agent_id=bug-triager&status=queued,running')).runs).toEqual(
      [],
    );
  }, 90_000);
});
