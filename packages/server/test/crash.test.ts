import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { IngestEvent, Run, RunList, StatsResponse } from '@runlog/core';
import { Runlog } from '@runlog/sdk';
import { FaultProxy } from '../../sdk/test/helpers.js';
import { describeEachDb, freshDatabase, TEST_ADMIN_KEY, waitFor } from './harness.js';

const BIN = fileURLToPath(new URL('../bin/runlog.js', import.meta.url));
const STEPS = 20;
const CLIENTS = 8;
/** Batches acknowledged before the kill: enough that groups of them were committed together. */
const ACKED_BEFORE_KILL = 120;
const T0 = Date.parse('2026-12-01T10:00:00Z');

interface Served {
  url: string;
  child: ChildProcessWithoutNullStreams;
}

/** `runlog serve` in its own process, as users run it, on `db`. */
async function serve(db: string): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--db', db], {
    env: {
      PATH: process.env.PATH ?? '',
      RUNLOG_ADMIN_KEY: TEST_ADMIN_KEY,
      RUNLOG_LOG_LEVEL: 'warn',
    },
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const url = await waitFor(
    () => /Runlog listening on (http:\/\/\S+)/.exec(out)?.[1],
    'the server to start',
    30_000,
  );
  return { url, child };
}

/** Ends `child` with `signal` and waits until it is gone. */
async function kill(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** A whole run in one batch: its start, its steps and its end. */
function batch(id: string, n: number): IngestEvent[] {
  return [
    {
      type: 'run.start',
      run: { id, agent_id: `agent-${n % 3}`, input: { n }, started_at: T0 + n },
    },
    ...Array.from({ length: STEPS }, (_, i): IngestEvent => ({
      type: 'step.end',
      step: {
        id: `s${i}`,
        run_id: id,
        type: 'llm',
        model: 'gpt-4o-mini',
        input_tokens: 100,
        output_tokens: 10,
        output: `answer ${i}`,
        started_at: T0 + n + i,
        ended_at: T0 + n + i + 1,
      },
    })),
    {
      type: 'run.end',
      run: { id, status: 'succeeded', output: { n }, ended_at: T0 + n + STEPS + 1 },
    },
  ];
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

describeEachDb('a server killed while it records', (dialect) => {
  const db = freshDatabase(dialect);
  const children: ChildProcessWithoutNullStreams[] = [];
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await db.drop();
  });

  it('keeps every batch it acknowledged, each batch whole or not at all, and starts again on the same database', async () => {
    const first = await serve(db.url);
    children.push(first.child);
    const sent: string[] = [];
    const acked = new Set<string>();
    let killed = false;
    // clients sending whole runs one batch after another, until the server is gone
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let k = 0; !killed; k++) {
        const id = `run-${c}-${k}`;
        const n = c * 100_000 + k;
        sent.push(id);
        try {
          const res = await fetch(`${first.url}/api/v1/ingest`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${TEST_ADMIN_KEY}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ events: batch(id, n) }),
          });
          const body = (await res.json()) as { accepted: number; rejected: number };
          expect(res.status).toBe(200);
          expect(body).toEqual({ accepted: STEPS + 2, rejected: 0 });
          acked.add(id);
        } catch (err) {
          // the connection the kill cut: this batch was sent, not acknowledged
          if (killed) return;
          throw err;
        }
      }
    });
    await waitFor(
      () => acked.size >= ACKED_BEFORE_KILL || undefined,
      'batches acknowledged',
      60_000,
    );
    // mid-stream: requests in flight, a group commit under way or about to be
    killed = true;
    await Promise.all([kill(first.child, 'SIGKILL'), ...clients]);

    const second = await serve(db.url);
    children.push(second.child);
    const stored = new Map<string, Run>();
    let cursor: string | null = null;
    do {
      const page: RunList = await api<RunList>(
        `${second.url}/api/v1/runs?limit=500${cursor ? `&cursor=${cursor}` : ''}`,
      );
      for (const run of page.runs) stored.set(run.id, run);
      cursor = page.next_cursor;
    } while (cursor);

    // every acknowledged run is there, whole
    const missing = [...acked].filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    // a batch in flight at the kill is all there or not there at all: no run without its
    // steps, no run left running for want of its end
    for (const run of stored.values()) {
      expect(sent).toContain(run.id);
      expect(run).toMatchObject({
        status: 'succeeded',
        step_count: STEPS,
        llm_calls: STEPS,
        input_tokens: STEPS * 100,
        output_tokens: STEPS * 10,
      });
    }
    // the stats rollups were written with the runs, so they count the same runs
    const stats = await api<StatsResponse>(
      `${second.url}/api/v1/runs/stats?from=2026-11-30T00:00:00Z&to=2026-12-03T00:00:00Z`,
    );
    expect(stats.totals.runs).toBe(stored.size);
    expect(stats.totals.by_status.succeeded).toBe(stored.size);
    expect(stats.totals.total_tokens).toBe(stored.size * STEPS * 110);
    // and a step of one run reads back as sent
    const [one] = [...acked];
    const steps = await api<{ steps: { id: string; output: unknown }[] }>(
      `${second.url}/api/v1/runs/${one}/steps`,
    );
    expect(steps.steps.map((s) => s.id)).toEqual(Array.from({ length: STEPS }, (_, i) => `s${i}`));
    expect(steps.steps[3]!.output).toBe('answer 3');

    // the server records again after its restart
    const res = await fetch(`${second.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: batch('after-restart', 1) }),
    });
    expect(await res.json()).toEqual({ accepted: STEPS + 2, rejected: 0 });
    await kill(second.child, 'SIGTERM');
  }, 180_000);

  it("a worker's runs outlive a server crash longer than their lease: they end as their handlers did, each executed once", async () => {
    const workerDb = freshDatabase(dialect);
    let server = await serve(workerDb.url);
    children.push(server.child);
    // in front of the server, as a load balancer would be
    const gate = await FaultProxy.start(server.url);
    const runlog = new Runlog({
      url: gate.url,
      apiKey: TEST_ADMIN_KEY,
      handleSignals: false,
      flushIntervalMs: 50,
      // the outage: the SDK says so, and goes on trying
      onError: () => undefined,
    });
    const executed: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    runlog.worker({
      agents: {
        'crash-survivor': async (run) => {
          executed.push(run.id);
          await run.tool('fetch', { id: run.id }, () => 'page');
          await released;
          if (run.signal.aborted) throw new Error('the run was stopped during the outage');
          return { done: run.id };
        },
      },
      concurrency: 2,
      leaseMs: 1000,
      heartbeatIntervalMs: 300,
      pollWaitMs: 500,
    });
    try {
      const queued: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${server.url}/api/v1/agents/crash-survivor/runs`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${TEST_ADMIN_KEY}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ input: { i } }),
        });
        expect(res.status).toBe(202);
        queued.push(((await res.json()) as Run).id);
      }
      await waitFor(() => executed.length === 2 || undefined, 'two runs to start', 30_000);
      // down for longer than the runs' one-second lease, with two runs held and two queued
      gate.down();
      await kill(server.child, 'SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 2000));
      server = await serve(workerDb.url);
      children.push(server.child);
      gate.retarget(server.url);
      // the server is back, the worker not yet through to it: sweeps pass meanwhile (a
      // second apart), and must not end the runs whose leases lapsed while it was down
      await new Promise((resolve) => setTimeout(resolve, 2500));
      gate.up();
      release();
      const ended = await waitFor(
        async () => {
          const runs = await Promise.all(
            queued.map((id) => api<Run>(`${server.url}/api/v1/runs/${id}`)),
          );
          return runs.every((r) => r.status !== 'queued' && r.status !== 'running') && runs;
        },
        'the runs to end',
        60_000,
      );
      expect(ended.map((r) => [r.status, r.output, r.error])).toEqual(
        queued.map((id) => ['succeeded', { done: id }, null]),
      );
      expect(executed.sort()).toEqual([...queued].sort());
    } finally {
      release();
      await runlog.shutdown(5000);
      await gate.close();
      await kill(server.child, 'SIGTERM');
      await workerDb.drop();
    }
  }, 180_000);
});
