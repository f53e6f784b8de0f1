import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newId, readableError } from '@runlog/core';
import { Runlog, RunlogApiError } from '@runlog/sdk';
import { startServer, type RunningServer } from '../src/server.js';
import type { ServerConfigInput } from '../src/config.js';
import {
  describeEachDb,
  freshDatabase,
  TEST_ADMIN_KEY,
  waitFor,
  type TestDatabase,
} from './harness.js';
import { spawnFixture } from './control-helpers.js';

describeEachDb('SDK recording against a real server', (dialect) => {
  let db: TestDatabase;
  let server: RunningServer;
  let config: ServerConfigInput;
  const errors: Error[] = [];
  const clients: Runlog[] = [];
  const client = (extra: Partial<ConstructorParameters<typeof Runlog>[0]> = {}) => {
    const r = new Runlog({
      url: server.url,
      apiKey: TEST_ADMIN_KEY,
      handleSignals: false,
      flushIntervalMs: 50,
      heartbeatIntervalMs: 200,
      onError: (e) => errors.push(e),
      ...extra,
    });
    clients.push(r);
    return r;
  };

  beforeAll(async () => {
    db = freshDatabase(dialect);
    config = {
      db: db.url,
      port: 0,
      host: '127.0.0.1',
      retentionDays: 30,
      adminKey: TEST_ADMIN_KEY,
      logLevel: 'silent',
    };
    server = await startServer(config);
  });
  afterAll(async () => {
    for (const c of clients) await c.shutdown(1000);
    await server.close();
    await db.drop();
  });

  it('records a run with nested llm and tool steps that reads back with its tree, tokens and cost', async () => {
    const runlog = client();
    let runId = '';
    const out = await runlog.run(
      'sdk-tree',
      async (run) => {
        runId = run.id;
        const plan = await run.llm(
          { model: 'gpt-4o-mini', provider: 'openai', messages: [{ role: 'user', content: 'hi' }] },
          async (step) => {
            await run.tool('get_issue', { n: 42 }, (a) => ({ title: 'bug', n: a.n }));
            step.set({ input_tokens: 1000, output_tokens: 200 });
            return 'the plan';
          },
        );
        await run.step('think', 'reflect', async () => {
          await run.tool('search', { q: 'x' }, () => ['a', 'b']);
        });
        await run.llm({
          model: 'house-model',
          input_tokens: 10,
          output_tokens: 5,
          cost_usd: 0.5,
          output: 'done',
        });
        return { verdict: plan };
      },
      { input: { n: 42 }, source: 'test', threadId: 'th-1', userId: 'u-1', tags: ['sdk'] },
    );
    expect(out).toEqual({ verdict: 'the plan' });
    expect(await runlog.flush()).toBe(true);
    const got = await runlog.runs.get(runId, { include: 'steps' });
    expect(got).toMatchObject({
      agent_id: 'sdk-tree',
      status: 'succeeded',
      output: { verdict: 'the plan' },
      input: { n: 42 },
      source: 'test',
      thread_id: 'th-1',
      user_id: 'u-1',
      tags: ['sdk'],
      step_count: 5,
      llm_calls: 2,
      tool_calls: 2,
      input_tokens: 1010,
      output_tokens: 205,
    });
    expect(got.duration_ms).not.toBeNull();
    const byName = new Map(got.steps.map((s) => [s.name, s]));
    const llm = byName.get('gpt-4o-mini')!;
    expect(llm.parent_step_id).toBeNull();
    expect(llm.input).toEqual([{ role: 'user', content: 'hi' }]);
    expect(llm.output).toBe('the plan');
    expect(llm.cost_usd).toBeGreaterThan(0);
    expect(byName.get('get_issue')!.parent_step_id).toBe(llm.id);
    expect(byName.get('get_issue')!.output).toEqual({ title: 'bug', n: 42 });
    expect(byName.get('search')!.parent_step_id).toBe(byName.get('reflect')!.id);
    expect(byName.get('house-model')!.cost_usd).toBe(0.5);
    expect(got.cost_usd).toBeCloseTo(0.5 + llm.cost_usd!, 9);
    expect(got.steps.map((s) => s.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  it('records a thrown error with its stack and rethrows it to the caller', async () => {
    const runlog = client();
    let runId = '';
    await expect(
      runlog.run('sdk-fail', async (run) => {
        runId = run.id;
        await run.tool('explode', {}, () => {
          throw new TypeError('kaboom');
        });
      }),
    ).rejects.toThrow('kaboom');
    await runlog.flush();
    const got = await runlog.runs.get(runId, { include: 'steps' });
    expect(got.status).toBe('failed');
    expect(got.error).toMatchObject({ message: 'kaboom', type: 'TypeError' });
    expect(readableError(got.error!).stack).toContain('kaboom');
    expect(got.steps[0]).toMatchObject({ name: 'explode', status: 'failed' });
  });

  it('answers API errors as RunlogApiError with status and code', async () => {
    const runlog = client();
    const err = await runlog.runs.get('no-such-run').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunlogApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('delivers every event exactly once across a server outage in the middle of a run', async () => {
    const runlog = client();
    const runId = newId();
    const port = Number(new URL(server.url).port);
    const recording = runlog.run(
      'sdk-outage',
      async (run) => {
        for (let i = 0; i < 30; i++) {
          await run.tool(`t-${i}`, { i }, (a) => a.i);
          await new Promise((r) => setTimeout(r, 40));
        }
        return 'survived';
      },
      { id: runId },
    );
    await new Promise((r) => setTimeout(r, 300));
    await server.close();
    await new Promise((r) => setTimeout(r, 2500));
    server = await startServer({ ...config, port });
    expect(await recording).toBe('survived');
    expect(await runlog.flush(30_000)).toBe(true);
    const got = await runlog.runs.get(runId, { include: 'steps' });
    expect(got.status).toBe('succeeded');
    expect(got.step_count).toBe(30);
    expect(got.steps).toHaveLength(30);
    expect(new Set(got.steps.map((s) => s.name)).size).toBe(30);
    expect(got.tool_calls).toBe(30);
    // the outage is heard of once: as the server's 503 while it shuts down, or as the refused
    // connection after, whichever the SDK met first
    expect(errors.map((e) => e.message)).toContainEqual(
      expect.stringMatching(/cannot reach Runlog|the server is shutting down/),
    );
  });

  it('sends what a killed agent process left in its spool when the next process starts', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'runlog-spool-'));
    try {
      const port = Number(new URL(server.url).port);
      const url = server.url;
      const runId = newId();
      await server.close();
      const first = spawnFixture('spool-agent.ts', [
        url,
        TEST_ADMIN_KEY,
        spoolDir,
        runId,
        'record',
      ]);
      expect(await first.line(/^(sent|spooled)$/)).toBe('spooled');
      first.proc.kill('SIGKILL');
      await first.exited;
      expect(readdirSync(spoolDir).length).toBeGreaterThan(0);
      server = await startServer({ ...config, port });
      const second = spawnFixture('spool-agent.ts', [
        url,
        TEST_ADMIN_KEY,
        spoolDir,
        runId,
        'replay',
      ]);
      expect(await second.line(/^(sent|failed)$/)).toBe('sent');
      await second.exited;
      const got = await client().runs.get(runId, { include: 'steps' });
      expect(got).toMatchObject({ status: 'succeeded', output: { steps: 20 }, step_count: 20 });
      expect(got.steps).toHaveLength(20);
      expect(readdirSync(spoolDir)).toEqual([]);
    } finally {
      rmSync(spoolDir, { recursive: true, force: true });
    }
  });

  it('fires run.signal when a recorded run is stopped from the API and ends it cancelled', async () => {
    const runlog = client();
    let runId = '';
    let fired = false;
    const recording = runlog.run('sdk-stop', async (run) => {
      runId = run.id;
      await new Promise<void>((resolve) =>
        run.signal.addEventListener('abort', () => {
          fired = true;
          resolve();
        }),
      );
      throw run.signal.reason;
    });
    await waitFor(
      async () => runId && (await runlog.runs.get(runId)).status === 'running',
      'run recorded',
    );
    await runlog.runs.cancel(runId);
    await expect(recording).rejects.toThrow(/stopped/);
    expect(fired).toBe(true);
    await runlog.flush();
    expect((await runlog.runs.get(runId)).status).toBe('cancelled');
  });
});
