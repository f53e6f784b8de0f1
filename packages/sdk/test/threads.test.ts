import { describe, expect, it } from 'vitest';
import { newId } from '@runlog/core';
import { describeEachDb } from '../../server/test/harness.js';
import { RunlogApiError } from '../src/index.js';
import { sdkOnServer } from './helpers.js';

/** Long enough that the runs recorded either side of it start in different milliseconds. */
const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

// against a real server on each database: threads are its queries over what the SDK records
describeEachDb('SDK threads', (dialect) => {
  const t = sdkOnServer(dialect);

  describe('t.runlog.threads', () => {
    it('lists threads the latest active first, each summed up, filtered and paged', async () => {
      t.errors.length = 0;
      const tag = newId().slice(-8);
      const [chat, support] = [`thread-chat-${tag}`, `thread-support-${tag}`];
      const [a, b] = [`conv-a-${tag}`, `conv b / ünïcode ${tag}`];
      await t.runlog.run(
        chat,
        (run) => {
          run.llm({ model: 'gpt-4o-mini', input_tokens: 100, output_tokens: 20 });
          return 'Sorry to hear that.';
        },
        {
          threadId: a,
          userId: 'u-1',
          input: { messages: [{ role: 'user', content: 'My order is late' }] },
        },
      );
      await pause();
      const between = new Date();
      await pause();
      const failed = await t.runlog
        .run(
          support,
          () => {
            throw new Error('tool timeout');
          },
          { threadId: a, userId: 'u-1', input: 'Where is it now?' },
        )
        .catch((e: unknown) => e);
      expect(failed).toMatchObject({ message: 'tool timeout' });
      await pause();
      await t.runlog.run(chat, () => ({ answer: 'Hi!' }), {
        threadId: b,
        userId: 'u-2',
        input: 'Hello',
      });
      // a run outside any thread is no thread
      await t.runlog.run(chat, () => 'alone');
      expect(await t.runlog.flush()).toBe(true);

      const both = [chat, support];
      const all = await t.runlog.threads.list({ agent_id: both });
      expect(all.threads.map((t) => t.thread_id)).toEqual([b, a]);
      expect(all).toMatchObject({ has_more: false, next_cursor: null });
      expect(all.threads[1]).toMatchObject({
        runs: 2,
        failed: 1,
        active: 0,
        agent_ids: [chat, support],
        user_id: 'u-1',
        total_tokens: 120,
        first_run: { input: 'My order is late' },
        last_run: { status: 'failed', agent_id: support, output: null, error: 'tool timeout' },
      });
      expect(all.threads[1]!.cost_usd).toBeGreaterThan(0);
      expect(all.threads[0]).toMatchObject({
        runs: 1,
        user_id: 'u-2',
        first_run: { input: 'Hello' },
        last_run: { status: 'succeeded', output: 'Hi!', error: null },
      });

      // each filter keeps runs: a thread is summed over the runs it keeps
      const ofSupport = await t.runlog.threads.list({ agent_id: support });
      expect(ofSupport.threads.map((t) => [t.thread_id, t.runs, t.agent_ids])).toEqual([
        [a, 1, [support]],
      ]);
      const ofUser = await t.runlog.threads.list({ agent_id: both, user_id: 'u-2' });
      expect(ofUser.threads.map((t) => t.thread_id)).toEqual([b]);
      const byId = await t.runlog.threads.list({ agent_id: both, q: `A-${tag}`.toUpperCase() });
      expect(byId.threads.map((t) => t.thread_id)).toEqual([a]);
      const since = await t.runlog.threads.list({ agent_id: both, from: between });
      expect(since.threads.map((t) => [t.thread_id, t.runs])).toEqual([
        [b, 1],
        [a, 1],
      ]);
      const until = await t.runlog.threads.list({ agent_id: both, to: between.getTime() });
      expect(until.threads.map((t) => [t.thread_id, t.runs, t.failed])).toEqual([[a, 1, 0]]);

      // a page at a time, the cursor naming where the last one stopped
      const first = await t.runlog.threads.list({ agent_id: both, limit: 1 });
      expect(first.threads.map((t) => t.thread_id)).toEqual([b]);
      expect(first.has_more).toBe(true);
      expect(first.next_cursor).toEqual(expect.any(String));
      const second = await t.runlog.threads.list({
        agent_id: both,
        limit: 1,
        cursor: first.next_cursor!,
      });
      expect(second.threads.map((t) => t.thread_id)).toEqual([a]);
      expect(second).toMatchObject({ has_more: false, next_cursor: null });
      expect(t.errors).toEqual([]);
    });

    it('gets a thread by any text as its id, summed over all its runs; its runs by runs.list', async () => {
      t.errors.length = 0;
      const tag = newId().slice(-8);
      const agent = `thread-get-${tag}`;
      // what a URL path would read as more path, a query, a fragment or a step up
      const ids = [`conv/7 ?#&%2F ${tag}`, '..', '.', `${tag}${'x'.repeat(192)}`];
      for (const threadId of ids) {
        await t.runlog.run(agent, () => 'first', { threadId, input: 'one' });
        await pause();
        await t.runlog.run(agent, () => 'second', { threadId, input: 'two' });
      }
      expect(await t.runlog.flush()).toBe(true);
      for (const threadId of ids) {
        const thread = await t.runlog.threads.get(threadId);
        expect(thread).toMatchObject({
          thread_id: threadId,
          runs: 2,
          agent_ids: [agent],
          first_run: { input: 'one' },
          last_run: { output: 'second' },
        });
        const { runs } = await t.runlog.runs.list({ thread_id: threadId });
        expect(runs.map((r) => r.id)).toEqual([thread.last_run.id, thread.first_run.id]);
      }
      expect(t.errors).toEqual([]);
    });

    it('throws RunlogApiError: 404 for a thread no run names, 400 naming a bad field', async () => {
      const missing = await t.runlog.threads
        .get(`no-such-thread-${newId()}`)
        .catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(RunlogApiError);
      expect(missing).toMatchObject({ status: 404, code: 'not_found' });
      const limit = (await t.runlog.threads
        .list({ limit: 0 })
        .catch((e: unknown) => e)) as RunlogApiError;
      expect(limit).toMatchObject({ status: 400, code: 'invalid_input' });
      expect(JSON.stringify(limit.details)).toContain('limit');
      const cursor = (await t.runlog.threads
        .list({ cursor: 'not-a-cursor' })
        .catch((e: unknown) => e)) as RunlogApiError;
      expect(cursor).toMatchObject({ status: 400, code: 'invalid_input' });
      expect(JSON.stringify(cursor.details)).toContain('cursor');
    });
  });
});
