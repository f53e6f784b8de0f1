import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Run } from '@runlog/core';
import { Runlog } from '@runlog/sdk';
import { waitForEnd } from '../src/cli/agent-run.js';
import { ApiClient } from '../src/cli/client.js';
import { runCli } from './cli-fixtures.js';
import { describeEachDb, startTestServer, TEST_ADMIN_KEY, waitFor } from './harness.js';

let n = 0;
const uniq = (base: string) => `${base}-${Date.now().toString(36)}-${n++}`;

describeEachDb('runlog agents run', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let runlog: Runlog;
  let dir: string;
  const workers: { stop(): Promise<void> }[] = [];

  const cli = (args: string[], stdin?: string, signal?: AbortSignal) =>
    runCli(args, {
      env: { RUNLOG_URL: server.url, RUNLOG_API_KEY: TEST_ADMIN_KEY },
      ...(stdin !== undefined ? { stdin } : {}),
      ...(signal ? { signal } : {}),
    });
  /** A worker of `agent` in this process: echoes its input, fails when asked to. */
  const serve = (agent: string) => {
    const worker = runlog.worker({
      agents: {
        [agent]: async (r) => {
          const input = r.input as
            { fail?: boolean; failFirst?: boolean; text?: string; wait?: number } | undefined;
          if (input?.wait) await new Promise((resolve) => setTimeout(resolve, input.wait));
          if (input?.fail) throw new TypeError('asked to fail');
          if (input?.failFirst && r.info!.attempt === 1) throw new Error('first try fails');
          return input?.text ?? { echoed: input ?? null };
        },
      },
      pollWaitMs: 1000,
    });
    workers.push(worker);
    return worker;
  };
  /** Resolves once a worker has asked for `agent`'s runs. */
  const served = (agent: string) =>
    waitFor(async () => {
      const res = await fetch(`${server.url}/api/v1/workers`, {
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
      });
      const { workers } = (await res.json()) as { workers: { agents: string[] }[] };
      return workers.some((w) => w.agents.includes(agent));
    }, `a worker of ${agent}`);
  const runsOf = async (agent: string) => (await runlog.runs.list({ agent_id: agent })).runs;

  beforeAll(async () => {
    server = await startTestServer(dialect, { background: false });
    runlog = new Runlog({
      url: server.url,
      apiKey: TEST_ADMIN_KEY,
      handleSignals: false,
      flushIntervalMs: 50,
      onError: () => {},
    });
    dir = mkdtempSync(join(tmpdir(), 'runlog-agent-run-'));
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await runlog.shutdown(1000);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues a run with its input, thread, user and tags, and --wait prints its output', async () => {
    const agent = uniq('echo');
    serve(agent);
    await served(agent);
    const res = await cli([
      'agents',
      'run',
      agent,
      '--input',
      // long enough to be seen running between two reads
      '{"pr": 42, "wait": 1200}',
      '--thread',
      't-1',
      '--user',
      'alice',
      '--tag',
      'a',
      '--tag',
      'b',
      '--wait',
    ]);
    expect(res.stderr).toMatch(new RegExp(`^queued run \\S+ of ${agent}\\n`));
    expect(res.stderr).toMatch(/\nrunning since /);
    expect(res.stderr).toMatch(/succeeded in \d/);
    expect(res.code).toBe(0);
    // stdout is the output alone, for $(runlog agents run ... --wait)
    expect(JSON.parse(res.stdout)).toEqual({ echoed: { pr: 42, wait: 1200 } });
    const [stored] = await runsOf(agent);
    expect(stored).toMatchObject({
      status: 'succeeded',
      trigger: 'manual',
      source: 'cli',
      thread_id: 't-1',
      user_id: 'alice',
      tags: ['a', 'b'],
      input: { pr: 42, wait: 1200 },
    });
    // text output as it is; the input read from standard input or a file
    const text = await cli(
      ['agents', 'run', agent, '--input-file', '-', '--wait'],
      '{"text": "hi there"}',
    );
    expect(text).toMatchObject({ code: 0, stdout: 'hi there\n' });
    const file = join(dir, 'input.json');
    writeFileSync(file, '{"text": "from a file"}');
    expect(await cli(['agents', 'run', agent, '--input-file', file, '--wait'])).toMatchObject({
      code: 0,
      stdout: 'from a file\n',
    });
  });

  it('exits 1 with the error of a run that failed, and --json prints the ended run', async () => {
    const agent = uniq('failing');
    serve(agent);
    await served(agent);
    const res = await cli(['agents', 'run', agent, '--input', '{"fail": true}', '--wait']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/runlog: run \S+ failed in [\d.]+m?s: TypeError: asked to fail\n$/);
    expect(res.stdout).toBe('');
    const json = await cli([
      'agents',
      'run',
      agent,
      '--input',
      '{"fail": true}',
      '--wait',
      '--json',
    ]);
    expect(json.code).toBe(1);
    const ended = JSON.parse(json.stdout) as Run;
    expect(ended).toMatchObject({ agent_id: agent, status: 'failed' });
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { exit_code: 1 } });
    // runs retry with a fix to the input: the retry runs on it
    const retried = await cli(['runs', 'retry', ended.id, '--input', '{"text": "fixed"}']);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toMatch(
      new RegExp(
        `^queued run (\\S+) of project default \\(attempt 2, retry of ${ended.id}, with the input given\\)\n$`,
      ),
    );
    const retryId = /^queued run (\S+)/.exec(retried.stdout)![1]!;
    await waitFor(async () => (await runlog.runs.get(retryId)).status === 'succeeded', 'the retry');
    expect((await runlog.runs.get(retryId)).output).toBe('fixed');
    const many = await cli(['runs', 'retry', '--agent', agent, '--input', '{}']);
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(
      /--input, --input-file and --wait take one run id, without filters/,
    );
    // --wait: the retry followed to its end, its output on stdout
    const waited = await cli(['runs', 'retry', retryId, '--input', '{"text": "again"}', '--wait']);
    expect(waited).toMatchObject({ code: 0, stdout: 'again\n' });
    expect(waited.stderr).toMatch(
      new RegExp(
        `^queued run \\S+ of project default \\(attempt 3, retry of ${retryId}, with the input given\\)\n`,
      ),
    );
    expect(waited.stderr).toMatch(/succeeded in [\d.]+m?s\n$/);
    // without --wait, --json is the queued run
    const queued = await cli(['agents', 'run', agent, '--json']);
    expect(queued.code).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({ agent_id: agent, status: 'queued' });
  });

  it("follows a failed run through its agent's automatic retries to the outcome", async () => {
    const agent = uniq('flaky');
    serve(agent);
    await served(agent);
    await runlog.agents.update(agent, { retry: { max_attempts: 2, delay_ms: 0 } });
    const res = await cli(['agents', 'run', agent, '--input', '{"failFirst": true}', '--wait']);
    expect(res.stderr).toMatch(
      /\nrun (\S+) failed in [\d.]+m?s: Error: first try fails; its agent's retry policy retries it as (\S+) \(attempt 2\), starting /,
    );
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ echoed: { failFirst: true } });
    const runs = await runsOf(agent);
    expect(runs.map((r) => [r.attempt, r.status])).toEqual([
      [2, 'succeeded'],
      [1, 'failed'],
    ]);
    // attempts used up: the last failure is the outcome
    await runlog.agents.update(agent, { retry: { max_attempts: 2, delay_ms: 0 } });
    const failed = await cli(['agents', 'run', agent, '--input', '{"fail": true}', '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/retries it as \S+ \(attempt 2\)/);
    expect(failed.stderr).toMatch(
      /runlog: run \S+ failed in [\d.]+m?s: TypeError: asked to fail\n$/,
    );
  });

  it('queues a run for each line with --each, and --wait gives each outcome and a summary', async () => {
    const agent = uniq('each');
    serve(agent);
    await served(agent);
    await runlog.agents.update(agent, { retry: { max_attempts: 2, delay_ms: 0 } });
    const file = join(dir, 'cases.jsonl');
    writeFileSync(file, '{"text": "a"}\n\n{"text": "b", "failFirst": true}\n{"fail": true}\n');
    const res = await cli(['agents', 'run', agent, '--each', '--input-file', file, '--wait']);
    expect(res.code).toBe(1);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toBe(`queued 3 runs of ${agent}`);
    // each as it ends, by its line's place; the retried one by its last attempt
    expect(lines.slice(1).sort()).toEqual([
      expect.stringMatching(/^\[1\/3\] \S+ succeeded in [\d.]+m?s$/),
      expect.stringMatching(/^\[2\/3\] \S+ succeeded in [\d.]+m?s \(attempt 2\)$/),
      expect.stringMatching(
        /^\[3\/3\] \S+ failed in [\d.]+m?s \(attempt 2\): TypeError: asked to fail$/,
      ),
    ]);
    expect(res.stderr).toMatch(
      /^runlog: 3 runs: 2 succeeded, 1 failed; p50 [\d.]+m?s, p95 [\d.]+m?s; 0 tokens; \$0\n$/,
    );
    // all well: exit 0; --json gives the outcomes in the order of the lines
    writeFileSync(file, '{"text": "x"}\n{"text": "y"}\n');
    const ok = await cli([
      'agents',
      'run',
      agent,
      '--each',
      '--input-file',
      file,
      '--wait',
      '--json',
    ]);
    expect(ok.code).toBe(0);
    const { runs } = JSON.parse(ok.stdout) as { runs: Run[] };
    expect(runs.map((r) => [r.status, r.output])).toEqual([
      ['succeeded', 'x'],
      ['succeeded', 'y'],
    ]);
    // without --wait: queued, from standard input too
    const queued = await cli(['agents', 'run', agent, '--each', '--input-file', '-'], '1\n2\n3\n');
    expect(queued).toMatchObject({ code: 0, stdout: `queued 3 runs of ${agent}\n` });
  });

  it('refuses --each without a file of inputs, with --id, or with a line that is not JSON', async () => {
    const agent = uniq('each-bad');
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"ok": 1}\n{oops}\n');
    const bad: [string[], RegExp][] = [
      [['--each'], /--each reads its runs' inputs from --input-file/],
      [['--each', '--input', '1'], /--each reads its runs' inputs from --input-file/],
      [['--each', '--input-file', file, '--id', 'r-1'], /--id names one run: not with --each/],
      [['--each', '--input-file', file], new RegExp(`--input-file ${file} line 2 must be JSON`)],
    ];
    for (const [args, message] of bad) {
      const res = await cli(['agents', 'run', agent, ...args]);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(message);
    }
  });

  it('queues a run to start later with --delay or --at, and --id makes it idempotent', async () => {
    const agent = uniq('later');
    // an agent that exists without a worker: the run waits, and the command says why
    await runlog.runs.enqueue(agent, {}).then((r) => runlog.runs.cancel(r.id));
    const before = Date.now();
    const delayed = await cli(['agents', 'run', agent, '--delay', '10m']);
    expect(delayed.code).toBe(0);
    expect(delayed.stdout).toMatch(/, to start at \S+Z \(in (9|10)m\)\n$/);
    expect(delayed.stderr).toMatch(/no worker has asked for .*'s runs yet/);
    const [first] = await runsOf(agent);
    expect(Date.parse(first!.queued_at!) - before).toBeGreaterThanOrEqual(600_000);
    // runs start-now lets a worker take it at once; again, it says it was due already
    const now = await cli(['runs', 'start-now', first!.id]);
    expect(now).toMatchObject({ code: 0 });
    expect(now.stdout).toBe(
      `run ${first!.id} may start now: a worker of ${agent} takes it next (it was to start in 10m)\n`,
    );
    expect(Date.parse((await runlog.runs.get(first!.id)).queued_at!)).toBeLessThanOrEqual(
      Date.now(),
    );
    expect((await cli(['runs', 'start-now', first!.id])).stdout).toMatch(
      new RegExp(
        `^run ${first!.id} was due already \\(queued \\d+s ago\\): it waits for a worker of `,
      ),
    );
    await runlog.runs.cancel(first!.id);
    const ended = await cli(['runs', 'start-now', first!.id]);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toBe(
      `runlog: run ${first!.id} is cancelled: only a queued run waits to start\n`,
    );
    const id = uniq('run');
    const at = await cli(['agents', 'run', agent, '--at', '2099-01-01T10:00', '--id', id]);
    // more than a year ahead: the server's 400 names the field
    expect(at.code).toBe(1);
    expect(at.stderr).toMatch(/run_at: .*more than a year ahead/);
    const when = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 16);
    expect((await cli(['agents', 'run', agent, '--at', when, '--id', id])).code).toBe(0);
    expect((await cli(['agents', 'run', agent, '--at', when, '--id', id])).code).toBe(0);
    const stored = (await runsOf(agent)).filter((r) => r.id === id);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.queued_at).toBe(`${when}:00.000Z`);
    // listed as when it starts; shown as queued to start then
    const list = await cli(['runs', 'list', '--agent', agent]);
    expect(list.stdout).toMatch(/starts in (1|2)d/);
    const show = await cli(['runs', 'show', id]);
    expect(show.stdout).toMatch(/queued to start then; no worker takes it before/);
  });

  it('queues a sub-run of a run with --parent, stopped with it by runs cancel', async () => {
    const agent = uniq('sub');
    await runlog.runs.enqueue(agent, {}).then((r) => runlog.runs.cancel(r.id));
    const parent = await runlog.runs.enqueue(uniq('orchestrator'), { parent_run_id: null });
    const res = await cli(['agents', 'run', agent, '--parent', parent.id, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const sub = JSON.parse(res.stdout) as Run;
    expect(sub).toMatchObject({ parent_run_id: parent.id, status: 'queued' });
    const stop = await cli(['runs', 'cancel', parent.id]);
    expect(stop.code).toBe(0);
    expect(await runlog.runs.get(sub.id)).toMatchObject({ status: 'cancelled' });
    // a run stopped already takes no more sub-runs
    const late = await cli(['agents', 'run', agent, '--parent', parent.id]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(
      `run ${parent.id} was stopped (cancelled): no sub-run of it is queued`,
    );
    const bad = await cli(['agents', 'run', agent, '--parent', 'has space']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--parent/);
  });

  it('refuses bad usage (exit 2) and an agent nobody serves (exit 1), queueing nothing', async () => {
    const agent = uniq('nobody');
    const bad: [string[], RegExp][] = [
      [['--input', '{pr: 1}'], /--input must be JSON/],
      [['--input', '1', '--input-file', 'x.json'], /--input or --input-file, not both/],
      [['--delay', '5m', '--at', '2030-01-01T00:00'], /--delay or --at, not both/],
      [['--delay', 'soon'], /--delay must be a span/],
      [['--delay', '400d'], /--delay must be/],
      [['--at', 'tomorrow'], /--at must be a date and time/],
      [['--input-file', join(dir, 'missing.json')], /cannot read/],
    ];
    for (const [args, message] of bad) {
      const res = await cli(['agents', 'run', agent, ...args]);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(message);
    }
    const unknown = await cli(['agents', 'run', agent]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      new RegExp(`no agent ${agent} in this project, and no worker serves it`),
    );
    expect((await runlog.agents.list()).some((a) => a.id === agent)).toBe(false);
  });

  it('says so when the workers that served the agent have stopped: the run waits', async () => {
    const agent = uniq('deserted');
    const worker = serve(agent);
    await served(agent);
    const served1 = await cli(['agents', 'run', agent, '--input', '{"text": "done"}', '--wait']);
    expect(served1).toMatchObject({ code: 0, stdout: 'done\n' });
    expect(served1.stderr).not.toMatch(/no worker/);
    // the agent, made by that run, notes its worker at the worker's next ask
    await waitFor(
      async () => (await runlog.agents.get(agent)).worker_seen_at !== null,
      'the worker noted on the agent',
    );
    await worker.stop();
    const res = await cli(['agents', 'run', agent]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(
      new RegExp(
        `^no worker serves ${agent} now \\(one last asked for its runs \\d+s ago\\): the run waits until one does`,
      ),
    );
    const each = await cli(['agents', 'run', agent, '--each', '--input-file', '-'], '{}\n{}\n');
    expect(each.stderr).toMatch(new RegExp(`no worker serves ${agent} now .*: the runs wait`));
    for (const r of await runsOf(agent)) if (r.status === 'queued') await runlog.runs.cancel(r.id);
  });

  it('says so when the agent is paused, though a worker serves it: the run waits for the resume', async () => {
    const agent = uniq('paused');
    serve(agent);
    await served(agent);
    await runlog.agents.update(agent, { paused: true });
    const res = await cli(['agents', 'run', agent]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(
      new RegExp(
        `^agent ${agent} is paused \\(since \\d+s ago\\): the run waits until runlog agents resume ${agent}\n$`,
      ),
    );
    const [queued] = await runsOf(agent);
    expect(queued!.status).toBe('queued');
    // resumed, the worker that serves it takes the run
    await runlog.agents.update(agent, { paused: false });
    await waitFor(
      async () => (await runlog.runs.get(queued!.id)).status === 'succeeded',
      'the run to be taken once resumed',
    );
  });

  it('queues for an agent not recorded yet when a worker serves it', async () => {
    const agent = uniq('fresh');
    serve(agent);
    await served(agent);
    const res = await cli(['agents', 'run', agent, '--input', '{"text": "first"}', '--wait']);
    expect(res).toMatchObject({ code: 0, stdout: 'first\n' });
  });

  it('waits through many polls without piling up listeners (no leak warning)', async () => {
    const agent = uniq('unserved');
    await runlog.agents.update(agent, {});
    const queued = await runlog.runs.enqueue(agent, { input: {} });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const stop = new AbortController();
      const io = { stdout: process.stdout, stderr: process.stderr, env: {}, signal: stop.signal };
      // each poll reads the run: counted, to wait for three times Node's bound on listeners
      let polls = 0;
      const client = new (class extends ApiClient {
        override request<T>(...args: Parameters<ApiClient['request']>): Promise<T> {
          polls++;
          return super.request<T>(...args);
        }
      })({ url: server.url, apiKey: TEST_ADMIN_KEY });
      const waiting = waitForEnd(client, io, queued.id, () => {}, 1);
      await waitFor(() => polls >= 30, '30 polls');
      stop.abort();
      expect(await waiting).toBeUndefined();
      // Node emits its warning on the next tick
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('stops waiting on Ctrl-C and leaves the run going', async () => {
    const agent = uniq('slow');
    serve(agent);
    await served(agent);
    const stop = new AbortController();
    const pending = cli(
      ['agents', 'run', agent, '--input', '{"wait": 3000}', '--wait'],
      undefined,
      stop.signal,
    );
    await waitFor(async () => (await runsOf(agent))[0]?.status === 'running', 'the run to start');
    stop.abort();
    const res = await pending;
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /stopped waiting: run \S+ goes on \(runlog runs cancel \S+ stops it\)/,
    );
    const [going] = await runsOf(agent);
    expect(going!.status).toBe('running');
    await waitFor(async () => (await runsOf(agent))[0]?.status === 'succeeded', 'the run to end');
  });
});
