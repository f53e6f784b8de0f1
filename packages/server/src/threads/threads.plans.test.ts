import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, ThreadList, ThreadSummary } from '@runlog/core';
import {
  describeEachDb,
  createTestApp,
  getOk,
  ingestOk,
  queryPlan,
  readsDuring,
  type TestApp,
} from '../../test/harness.js';

describeEachDb('a thread read by its own runs', (dialect) => {
  let t: TestApp;
  const now = Date.now();
  const turn = (id: string, thread: string, agent: string, msAgo: number): IngestEvent => ({
    type: 'run.end',
    run: {
      id,
      agent_id: agent,
      thread_id: thread,
      status: 'succeeded',
      started_at: now - msAgo,
      ended_at: now - msAgo + 1,
    },
  });

  beforeAll(async () => {
    t = await createTestApp(dialect);
    await ingestOk(t, [
      turn('plan-1', 'plan-a', 'chat', 3000),
      turn('plan-2', 'plan-a', 'tools', 2000),
      turn('plan-3', 'plan-a', 'chat', 1000),
      turn('plan-4', 'plan-b', 'chat', 500),
    ]);
  });
  afterAll(() => t.close());

  it('sums up one thread, first and latest run and agents', async () => {
    const thread = await getOk<ThreadSummary>(t, '/api/v1/threads/plan-a');
    expect(thread.runs).toBe(3);
    expect(thread.first_run.id).toBe('plan-1');
    expect(thread.last_run.id).toBe('plan-3');
    expect(thread.agent_ids).toEqual(['chat', 'tools']);
    const list = await getOk<ThreadList>(t, '/api/v1/threads');
    expect(list.threads.map((x) => [x.thread_id, x.agent_ids])).toEqual([
      ['plan-b', ['chat']],
      ['plan-a', ['chat', 'tools']],
    ]);
  });

  if (dialect === 'sqlite')
    it("reads a thread's runs off runs_thread, never every run of the project", async () => {
      // SQLite keeps no statistics here: a plan that walks the project's runs in another
      // index's order (7 s for a thread of 5 among 500,000 runs) shows as a search on
      // project_id alone
      const db = t.ctx.db;
      const calls = await readsDuring(db, async () => {
        await getOk<ThreadSummary>(t, '/api/v1/threads/plan-a');
        await getOk<ThreadList>(t, '/api/v1/threads');
      });
      // the reads of the threads asked for (the list's walk for the newest threads aside)
      const reads = calls.filter((c) => /"thread_id" in \(/.test(c.sql));
      expect(reads).toHaveLength(6);
      for (const { sql, parameters } of reads) {
        for (const detail of queryPlan(db.sqlite!, sql, parameters))
          expect(detail, sql).not.toMatch(/^(SCAN runs|SEARCH runs USING .*\(project_id=\?\)$)/);
      }
    });
});
