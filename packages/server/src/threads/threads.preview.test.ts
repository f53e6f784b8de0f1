import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, ThreadList, ThreadSummary } from '@runlog/core';
import {
  describeEachDb,
  createTestApp,
  getOk,
  ingestOk,
  json,
  type TestApp,
} from '../../test/harness.js';

describeEachDb('thread previews and isolation', (dialect) => {
  let t: TestApp;
  const now = Date.now();
  const ingest = (events: IngestEvent[], key?: string) => ingestOk(t, events, key);
  const get = <T>(url: string, key?: string) => getOk<T>(t, url, key);
  const turn = (
    id: string,
    thread: string,
    msAgo: number,
    extra: Record<string, unknown> = {},
  ): IngestEvent => ({
    type: 'run.end',
    run: {
      id,
      agent_id: 'chat',
      thread_id: thread,
      status: 'succeeded',
      started_at: now - msAgo,
      ended_at: now - msAgo + 1,
      ...extra,
    },
  });

  beforeAll(async () => {
    t = await createTestApp(dialect, { maxFieldBytes: 4096 });
  });
  afterAll(() => t.close());

  it('previews a long chat payload by its last message, as a short one', async () => {
    const messages = [
      { role: 'system', content: 'You are a helpful agent. '.repeat(60) },
      { role: 'user', content: 'Where is my order?' },
    ];
    await ingest([turn('chat-1', 'long-chat', 1000, { input: { messages }, output: 'ok' })]);
    const thread = await get<ThreadSummary>('/api/v1/threads/long-chat');
    expect(thread.first_run.input).toBe('Where is my order?');
  });

  it('previews a long string payload as its text, without JSON escapes', async () => {
    const text = `Line one\nsaid "hi" ${'x'.repeat(1500)}`;
    await ingest([turn('str-1', 'long-str', 1000, { input: text })]);
    const thread = await get<ThreadSummary>('/api/v1/threads/long-str');
    expect(thread.first_run.input).toBe(
      `Line one said "hi" ${'x'.repeat(300)}`.slice(0, 299) + '…',
    );
  });

  it('previews a payload the server stored truncated by its text, not the marker', async () => {
    await ingest([
      turn('big-1', 'big', 1000, { input: { query: 'Hello there ' + 'y'.repeat(9000) } }),
    ]);
    const thread = await get<ThreadSummary>('/api/v1/threads/big');
    expect(thread.first_run.input).not.toContain('__runlog_truncated__');
    expect(thread.first_run.input?.startsWith('Hello there')).toBe(true);
  });

  it('refuses a NUL in a query or path with a 400', async () => {
    for (const url of ['/api/v1/threads?user_id=%00', '/api/v1/threads/a%00b']) {
      const res = await t.request('GET', url);
      expect(res.statusCode, `${url} ${res.body}`).toBe(400);
    }
  });

  it('keeps two projects with the same thread and run ids apart', async () => {
    const created = await t.request('POST', '/api/v1/projects', { name: 'other' });
    expect(created.statusCode, created.body).toBe(201);
    const key = json<{ admin_key: { key: string } }>(created).admin_key.key;
    await ingest([turn('same-1', 'shared', 10, { input: 'mine', agent_id: 'a-mine' })]);
    await ingest(
      [
        turn('same-1', 'shared', 5, { input: 'theirs', agent_id: 'a-theirs' }),
        turn('same-2', 'shared', 4, { input: 'theirs2', agent_id: 'a-theirs' }),
      ],
      key,
    );
    const mine = await get<ThreadSummary>('/api/v1/threads/shared');
    expect(mine).toMatchObject({ runs: 1, agent_ids: ['a-mine'], first_run: { input: 'mine' } });
    const theirs = await get<ThreadList>('/api/v1/threads', key);
    expect(theirs.threads.map((x) => [x.thread_id, x.runs, x.agent_ids])).toEqual([
      ['shared', 2, ['a-theirs']],
    ]);
    const list = await get<ThreadList>('/api/v1/threads?agent_id=a-theirs');
    expect(list.threads).toEqual([]);
  });
});
