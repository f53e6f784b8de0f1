import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, ThreadList } from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';
import { latestThreads, type ThreadCursor, type ThreadFilter } from './threads.js';

describeEachDb('thread pages against a reference', (dialect) => {
  let t: TestApp;
  const base = Date.now() - 3_600_000;
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const runs: { id: string; thread: string; at: number; agent: string; user: string | null }[] = [];
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const events: IngestEvent[] = [];
    const idChars = ['a', 'B', 'z', '_', '-', '.', '0', 'Z'];
    for (let i = 0; i < 600; i++) {
      // few distinct times: many ties; ids in mixed case and punctuation
      const id = `${idChars[rand(8)]}${idChars[rand(8)]}${i}`;
      const thread = `th ${['A', 'b', 'é', '_', 'a'][rand(5)]}${rand(40)}`;
      const at = base + rand(30) * 1000;
      const agent = ['x', 'y', 'z'][rand(3)]!;
      const user = rand(3) === 0 ? null : `u${rand(3)}`;
      runs.push({ id, thread, at, agent, user });
      events.push({
        type: 'run.end',
        run: {
          id,
          agent_id: agent,
          thread_id: thread,
          status: 'succeeded',
          started_at: at,
          ended_at: at + 1,
          ...(user ? { user_id: user } : {}),
        },
      });
    }
    const res = await t.request('POST', '/api/v1/ingest', { events });
    expect(res.statusCode, res.body).toBe(200);
  });
  afterAll(() => t.close());

  const cmpId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0); // bytes, as "C"
  function reference(f: ThreadFilter): string[] {
    const latest = new Map<string, { at: number; id: string }>();
    for (const r of runs) {
      if (f.agentIds && !f.agentIds.includes(r.agent)) continue;
      if (f.userId !== undefined && r.user !== f.userId) continue;
      if (f.from !== undefined && r.at < f.from) continue;
      if (f.to !== undefined && r.at > f.to) continue;
      const l = latest.get(r.thread);
      if (!l || r.at > l.at || (r.at === l.at && cmpId(r.id, l.id) > 0))
        latest.set(r.thread, { at: r.at, id: r.id });
    }
    return [...latest].sort(([, a], [, b]) => b.at - a.at || cmpId(b.id, a.id)).map(([th]) => th);
  }
  const filters: ThreadFilter[] = [
    {},
    { agentIds: ['x'] },
    { agentIds: ['x', 'z'] },
    { userId: 'u1' },
    { from: base + 5000, to: base + 20_000 },
  ];
  it('pages like the reference, for each filter and page size', async () => {
    for (const f of filters)
      for (const limit of [1, 2, 7, 50]) {
        const seen: string[] = [];
        let cursor: ThreadCursor | undefined;
        for (;;) {
          const found = await latestThreads(t.ctx.db, 'default', f, limit + 1, cursor);
          const shown = found.slice(0, limit);
          seen.push(...shown.map((x) => x.threadId));
          const last = shown[shown.length - 1];
          if (found.length <= limit || !last) break;
          cursor = { lastAt: last.lastAt, lastRunId: last.lastRunId };
        }
        expect(seen, `${JSON.stringify(f)} limit ${limit}`).toEqual(reference(f));
      }
  });

  it('skips a long thread met already on the index, and pages past it like the reference', async () => {
    // one conversation of 3,000 recent turns above the others: every page walks past it
    const events: IngestEvent[] = [];
    for (let i = 0; i < 3000; i++) {
      const id = `long-${String(i).padStart(4, '0')}`;
      const at = base + 40_000 + i;
      runs.push({ id, thread: 'th long', at, agent: 'x', user: null });
      events.push({
        type: 'run.end',
        run: {
          id,
          agent_id: 'x',
          thread_id: 'th long',
          status: 'succeeded',
          started_at: at,
          ended_at: at + 1,
        },
      });
    }
    for (let i = 0; i < events.length; i += 1000) {
      const res = await t.request('POST', '/api/v1/ingest', { events: events.slice(i, i + 1000) });
      expect(res.statusCode, res.body).toBe(200);
    }
    for (const limit of [1, 5]) {
      const seen: string[] = [];
      let cursor: ThreadCursor | undefined;
      for (;;) {
        const found = await latestThreads(t.ctx.db, 'default', {}, limit + 1, cursor);
        const shown = found.slice(0, limit);
        seen.push(...shown.map((x) => x.threadId));
        const last = shown[shown.length - 1];
        if (found.length <= limit || !last) break;
        cursor = { lastAt: last.lastAt, lastRunId: last.lastRunId };
      }
      expect(seen[0]).toBe('th long');
      expect(seen, `limit ${limit}`).toEqual(reference({}));
    }
  });

  it('lists the API pages like the reference', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ThreadList = json(
        await t.request('GET', `/api/v1/threads?limit=3${cursor ? `&cursor=${cursor}` : ''}`),
      );
      seen.push(...page.threads.map((x) => x.thread_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(reference({}));
  });
  it('moves a run to another thread on run.update', async () => {
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'mv1', agent_id: 'x', thread_id: 'from-A' } }],
    });
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.update', run: { id: 'mv1', thread_id: 'to-B' } }],
    });
    expect((await t.request('GET', '/api/v1/threads/from-A')).statusCode).toBe(404);
    expect((await t.request('GET', '/api/v1/threads/to-B')).statusCode).toBe(200);
  });
});
