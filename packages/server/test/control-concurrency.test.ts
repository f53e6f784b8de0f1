import { describe, expect, it } from 'vitest';
import type { Agent, Run } from '@runlog/core';
import { instancesOnOneDatabase } from './control-helpers.js';
import { describeEachDb, waitFor } from './harness.js';

interface ErrorBody {
  error: { code: string; details: { field: string; message: string }[] };
}

describeEachDb("an agent's concurrency cap (max_concurrency)", (dialect) => {
  let seq = 0;
  const agentName = (base: string) => `${base}-${Date.now().toString(36)}-${seq++}`;
  // on PostgreSQL a second instance on the same database: a cap holds over both
  const { call } = instancesOnOneDatabase(dialect, { sweepIntervalMs: 50 });
  const setCap = (agent: string, cap: number | null) =>
    call('PUT', `/api/v1/agents/${agent}`, { max_concurrency: cap });
  const enqueue = async (agent: string, n: number, extra: object = {}) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await call('POST', `/api/v1/agents/${agent}/runs`, { input: { i }, ...extra });
      expect(res.status).toBe(202);
      ids.push((res.body as Run).id);
    }
    return ids;
  };
  const claim = async (agents: string[], max: number, i = 0, extra: object = {}) => {
    const res = await call(
      'POST',
      '/api/v1/workers/claim',
      { agents, max, worker_id: `w-${i}`, ...extra },
      i,
    );
    expect([200, 204], JSON.stringify(res.body)).toContain(res.status);
    return res.status === 204 ? [] : (res.body as { runs: Run[] }).runs;
  };
  const end = (id: string) =>
    call('POST', '/api/v1/ingest', {
      events: [{ type: 'run.end', run: { id, status: 'succeeded' } }],
    });
  const running = async (agent: string) =>
    (
      (await call('GET', `/api/v1/runs?agent_id=${agent}&status=running&limit=500`)).body as {
        runs: Run[];
      }
    ).runs;

  it('is set, read back and cleared by PUT /agents/:id, and refused out of range naming the field', async () => {
    const agent = agentName('capped');
    const set = await setCap(agent, 3);
    expect(set.status).toBe(200);
    expect((set.body as Agent).max_concurrency).toBe(3);
    // a body without it keeps it
    const renamed = await call('PUT', `/api/v1/agents/${agent}`, { name: 'Capped' });
    expect((renamed.body as Agent).max_concurrency).toBe(3);
    const got = await call('GET', `/api/v1/agents/${agent}`);
    expect((got.body as Agent).max_concurrency).toBe(3);
    for (const bad of [0, -1, 1.5, '2', 10_001]) {
      const res = await setCap(agent, bad as number);
      expect(res.status, String(bad)).toBe(400);
      expect((res.body as ErrorBody).error.details[0]?.field).toBe('body.max_concurrency');
    }
    expect(((await call('GET', `/api/v1/agents/${agent}`)).body as Agent).max_concurrency).toBe(3);
    const cleared = await setCap(agent, null);
    expect((cleared.body as Agent).max_concurrency).toBeNull();
    // an agent nobody configured has none
    const fresh = agentName('uncapped');
    await enqueue(fresh, 1);
    expect(
      ((await call('GET', `/api/v1/agents/${fresh}`)).body as Agent).max_concurrency,
    ).toBeNull();
  });

  it('hands out no more runs than the cap, and the next one once a running run ends', async () => {
    const agent = agentName('two-at-once');
    await setCap(agent, 2);
    const ids = await enqueue(agent, 5);
    const first = await claim([agent], 10);
    // the oldest two, in queue order
    expect(first.map((r) => r.id)).toEqual(ids.slice(0, 2));
    expect(await claim([agent], 10, 1)).toEqual([]);
    await end(first[0]!.id);
    const next = await claim([agent], 10, 1);
    expect(next.map((r) => r.id)).toEqual([ids[2]]);
    expect(await claim([agent], 10)).toEqual([]);
    // raising the cap lets more start at once
    await setCap(agent, 4);
    expect((await claim([agent], 10)).map((r) => r.id)).toEqual(ids.slice(3, 5));
    expect((await running(agent)).length).toBe(4);
  });

  it('leaves the places of a full agent to the other agents of the same claim', async () => {
    const capped = agentName('capped-old');
    const free = agentName('free-new');
    await setCap(capped, 1);
    // the capped agent's runs are the oldest in the queue
    const old = await enqueue(capped, 3);
    const fresh = await enqueue(free, 3);
    const got = await claim([capped, free], 5);
    expect(got.map((r) => r.id).sort()).toEqual([old[0]!, ...fresh].sort());
  });

  it('holds under many claims at once, on every instance, and a lapsed lease frees its place', async () => {
    const agent = agentName('crowded');
    await setCap(agent, 3);
    await enqueue(agent, 30);
    // twenty workers asking at the same moment, half of them through the second instance
    const rounds = await Promise.all(
      Array.from({ length: 20 }, (_, i) => claim([agent], 2, i, { lease_ms: 1000 })),
    );
    const claimed = rounds.flat();
    expect(claimed.length).toBe(3);
    expect(new Set(claimed.map((r) => r.id)).size).toBe(3);
    // nobody heartbeats: the leases lapse, the sweeper ends the runs timed_out, three more go
    await waitFor(async () => (await running(agent)).length === 0, 'leases lapsed', 10_000);
    const again = (
      await Promise.all(Array.from({ length: 10 }, (_, i) => claim([agent], 5, i)))
    ).flat();
    expect(again.length).toBe(3);
    expect(again.some((r) => claimed.some((c) => c.id === r.id))).toBe(false);
  });

  it('answers a waiting claim with the next run when a running one ends', async () => {
    const agent = agentName('waiting');
    await setCap(agent, 1);
    const ids = await enqueue(agent, 2);
    expect((await claim([agent], 1)).map((r) => r.id)).toEqual([ids[0]]);
    // a long poll on the instance that did not claim: nothing may start while the first runs
    const waiting = claim([agent], 1, 1, { wait_ms: 20_000 });
    // past the server's one-second look-again interval, the cap still holds it back
    const early = await Promise.race([
      waiting.then(() => 'answered'),
      new Promise<string>((resolve) => setTimeout(() => resolve('waiting'), 1_500)),
    ]);
    expect(early).toBe('waiting');
    await end(ids[0]!);
    expect((await waiting).map((r) => r.id)).toEqual([ids[1]]);
  });

  it('does not count runs recorded without a worker, nor queued and ended ones', async () => {
    const agent = agentName('recorded');
    await setCap(agent, 1);
    // a run the SDK records in the agent's own process holds no worker's place
    await call('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: `${agent}-rec`, agent_id: agent } }],
    });
    const [queued] = await enqueue(agent, 1);
    expect((await claim([agent], 5)).map((r) => r.id)).toEqual([queued]);
  });

  describe('per thread (max_concurrency_per_thread)', () => {
    /** Queues one run of `agent` in each thread named (null: none), in that order. */
    const inThreads = async (agent: string, threads: (string | null)[]) => {
      const ids: string[] = [];
      for (const thread of threads)
        ids.push(...(await enqueue(agent, 1, thread === null ? {} : { thread_id: thread })));
      return ids;
    };

    it('is set and refused out of range naming the field', async () => {
      const agent = agentName('threads-set');
      const set = await call('PUT', `/api/v1/agents/${agent}`, { max_concurrency_per_thread: 1 });
      expect((set.body as Agent).max_concurrency_per_thread).toBe(1);
      for (const bad of [0, 2.5, 10_001]) {
        const res = await call('PUT', `/api/v1/agents/${agent}`, {
          max_concurrency_per_thread: bad,
        });
        expect(res.status, String(bad)).toBe(400);
        expect((res.body as ErrorBody).error.details[0]?.field).toBe(
          'body.max_concurrency_per_thread',
        );
      }
      const cleared = await call('PUT', `/api/v1/agents/${agent}`, {
        max_concurrency_per_thread: null,
      });
      expect((cleared.body as Agent).max_concurrency_per_thread).toBeNull();
    });

    it("takes a thread's runs one after another, in order, and the other threads' meanwhile", async () => {
      const agent = agentName('chat');
      await call('PUT', `/api/v1/agents/${agent}`, { max_concurrency_per_thread: 1 });
      const t = (n: number) => `${agent}-t${n}`;
      const [a1, a2, b1, lone, a3] = await inThreads(agent, [t(1), t(1), t(2), null, t(1)]);
      // one of each thread (the oldest), and the run without a thread
      expect((await claim([agent], 10)).map((r) => r.id)).toEqual([a1, b1, lone]);
      expect(await claim([agent], 10, 1)).toEqual([]);
      await end(a1!);
      expect((await claim([agent], 10, 1)).map((r) => r.id)).toEqual([a2]);
      expect(await claim([agent], 10)).toEqual([]);
      await end(a2!);
      expect((await claim([agent], 10)).map((r) => r.id)).toEqual([a3]);
    });

    it('counts each agent on its own, and keeps to the agent-wide cap too', async () => {
      const agent = agentName('chat-capped');
      const other = agentName('chat-other');
      await call('PUT', `/api/v1/agents/${agent}`, {
        max_concurrency_per_thread: 1,
        max_concurrency: 2,
      });
      const thread = `${agent}-shared`;
      // another agent's run of the thread (a sub-agent, say) holds no place of this one's
      const [theirs] = await inThreads(other, [thread]);
      expect((await claim([other], 1)).map((r) => r.id)).toEqual([theirs]);
      const [mine, x, y] = await inThreads(agent, [thread, `${agent}-x`, `${agent}-y`]);
      expect((await claim([agent], 10)).map((r) => r.id)).toEqual([mine, x]);
      await end(mine!);
      expect((await claim([agent], 10)).map((r) => r.id)).toEqual([y]);
    });

    it("finds a free thread's run behind pages of turns waiting for theirs", async () => {
      const agent = agentName('chat-deep');
      await call('PUT', `/api/v1/agents/${agent}`, { max_concurrency_per_thread: 1 });
      const busy = `${agent}-busy`;
      const [first] = await inThreads(agent, [busy]);
      expect((await claim([agent], 1)).map((r) => r.id)).toEqual([first]);
      // more of the busy thread's turns than one page of the scan (256), then another thread
      const waiting = await call('POST', '/api/v1/runs/enqueue', {
        runs: Array.from({ length: 300 }, () => ({ agent_id: agent, thread_id: busy })),
      });
      expect(waiting.status).toBe(202);
      const [free] = await inThreads(agent, [`${agent}-free`]);
      expect((await claim([agent], 5, 1)).map((r) => r.id)).toEqual([free]);
    });

    it('holds under many claims at once, on every instance: one run per thread', async () => {
      const agent = agentName('chat-crowd');
      await call('PUT', `/api/v1/agents/${agent}`, { max_concurrency_per_thread: 1 });
      const threads = Array.from({ length: 8 }, (_, i) => `${agent}-c${i}`);
      // three turns of each thread, queued turn by turn
      const queued: string[][] = [];
      for (let turn = 0; turn < 3; turn++) queued.push(await inThreads(agent, threads));
      const claimed = (
        await Promise.all(Array.from({ length: 16 }, (_, i) => claim([agent], 3, i)))
      ).flat();
      // every thread's first turn, and nothing more
      expect(claimed.map((r) => r.id).sort()).toEqual([...queued[0]!].sort());
      expect(new Set(claimed.map((r) => r.thread_id)).size).toBe(threads.length);
    });
  });
});
