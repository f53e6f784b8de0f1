import { describe, expect, it } from 'vitest';
import { newId } from '@runlog/core';
import { describeEachDb } from '../../server/test/harness.js';
import { RunlogApiError } from '../src/index.js';
import { sdkOnServer } from './helpers.js';

/** Long enough that the runs recorded either side of it start in different milliseconds. */
const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

// against a real server on each database: users are its queries over what the SDK records
describeEachDb('SDK users', (dialect) => {
  const t = sdkOnServer(dialect);

  describe('t.runlog.users', () => {
    it('lists users the latest active first, each summed up, filtered and paged; gets one', async () => {
      t.errors.length = 0;
      const tag = newId().slice(-8);
      const agent = `users-chat-${tag}`;
      const [ann, ben] = [`ann-${tag}`, `ben / ünïcode ${tag}`];
      await t.runlog.run(
        agent,
        (run) => {
          run.llm({ model: 'house-model', input_tokens: 100, output_tokens: 20, cost_usd: 0.5 });
          return 'ok';
        },
        { userId: ann, threadId: `conv-${tag}` },
      );
      await pause();
      await t.runlog
        .run(
          agent,
          () => {
            throw new Error('tool timeout');
          },
          { userId: ann },
        )
        .catch(() => {});
      await pause();
      await t.runlog.run(agent, () => 'hi', { userId: ben });
      expect(await t.runlog.flush()).toBe(true);

      const all = await t.runlog.users.list({ agent_id: agent });
      expect(all.users.map((u) => u.user_id)).toEqual([ben, ann]);
      expect(all.users[1]).toMatchObject({
        runs: 2,
        failed: 1,
        threads: 1,
        total_tokens: 120,
        cost_usd: 0.5,
        agent_ids: [agent],
        last_run: { status: 'failed', error: 'tool timeout' },
      });
      const first = await t.runlog.users.list({ agent_id: agent, limit: 1 });
      expect(first.users.map((u) => u.user_id)).toEqual([ben]);
      const rest = await t.runlog.users.list({ agent_id: agent, cursor: first.next_cursor! });
      expect(rest.users.map((u) => u.user_id)).toEqual([ann]);
      // a search by part of the id, any case, beyond ASCII too
      const found = await t.runlog.users.list({ agent_id: agent, q: 'ÜNÏCODE' });
      expect(found.users.map((u) => u.user_id)).toEqual([ben]);
      expect(await t.runlog.users.get(ben)).toMatchObject({ user_id: ben, runs: 1 });
      const missing = await t.runlog.users.get(`nobody-${tag}`).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(RunlogApiError);
      expect(missing).toMatchObject({ status: 404 });
      expect(t.errors).toEqual([]);
    });
  });
});
