import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, RunList, ThreadList, ThreadSummary } from '@runlog/core';
import {
  describeEachDb,
  createTestApp,
  getOk,
  ingestOk,
  json,
  type TestApp,
} from '../../test/harness.js';
import { decodeThreadCursor, encodeThreadCursor } from './threads.js';

const MIN = 60_000;

it('reads back the cursors it writes and refuses others', () => {
  for (const lastRunId of ['r1', 'a:b:c', 'run.2026-12-05_x', 'x'.repeat(128)]) {
    const cursor = { lastAt: 1_764_000_000_123, lastRunId };
    expect(decodeThreadCursor(encodeThreadCursor(cursor))).toEqual(cursor);
  }
  const text = (s: string) => Buffer.from(s).toString('base64url');
  for (const bad of ['', 'not base64!', text('t12'), text('t12:bad id'), text('x12:r1'), 'eA']) {
    expect(() => decodeThreadCursor(bad)).toThrow(/query\.cursor/);
  }
});

describeEachDb('threads API', (dialect) => {
  let t: TestApp;
  const now = Date.now();
  const ms = (minutesAgo: number) => now - minutesAgo * MIN;
  const at = (minutesAgo: number) => new Date(ms(minutesAgo)).toISOString();
  const ingest = (events: IngestEvent[], key?: string) => ingestOk(t, events, key);
  const get = <T>(url: string, key?: string) => getOk<T>(t, url, key);
  const turn = (
    id: string,
    thread: string,
    minutesAgo: number,
    extra: Record<string, unknown> = {},
  ): IngestEvent => ({
    type: 'run.end',
    run: {
      id,
      agent_id: 'chat',
      thread_id: thread,
      status: 'succeeded',
      started_at: ms(minutesAgo),
      ended_at: ms(minutesAgo - 0.5),
      ...extra,
    },
  });

  beforeAll(async () => {
    t = await createTestApp(dialect);
    await ingest([
      // conversation a: three turns, one failed, the last by the support agent
      turn('a1', 'conv-a', 50, {
        input: { messages: [{ role: 'user', content: 'My order is late' }] },
        output: 'Sorry to hear that.',
        user_id: 'u-old',
      }),
      turn('a2', 'conv-a', 40, { status: 'failed', error: { message: 'tool timeout' } }),
      {
        type: 'step.end',
        step: {
          id: 's1',
          run_id: 'a2',
          type: 'llm',
          model: 'gpt-4o',
          input_tokens: 100,
          output_tokens: 20,
          started_at: ms(40),
          ended_at: ms(39.9),
        },
      },
      turn('a3', 'conv-a', 10, {
        agent_id: 'support',
        input: 'Where is it now?',
        output: { answer: 'It ships\ntomorrow.' },
        user_id: 'u-1',
      }),
      // conversation b: one turn still running, longer ago than a's last
      {
        type: 'run.start',
        run: { id: 'b1', agent_id: 'chat', thread_id: 'conv-b', started_at: ms(20) },
      },
      // conversation c: old, another user
      turn('c1', 'conv-c', 300, { user_id: 'u-2', input: 'x'.repeat(5000) }),
      // no thread: never listed
      turn('n1', '', 5, { thread_id: null }),
    ]);
  });
  afterAll(() => t.close());

  it('lists threads the latest active first, each summed up with its first input and last output', async () => {
    const { threads, has_more, next_cursor } = await get<ThreadList>('/api/v1/threads');
    expect(threads.map((x) => x.thread_id)).toEqual(['conv-a', 'conv-b', 'conv-c']);
    expect(has_more).toBe(false);
    expect(next_cursor).toBeNull();
    const a = threads[0]!;
    expect(a).toMatchObject({
      runs: 3,
      failed: 1,
      active: 0,
      agent_ids: ['chat', 'support'],
      user_id: 'u-1',
      first_at: at(50),
      last_at: at(10),
      total_tokens: 120,
      first_run: { id: 'a1', input: 'My order is late' },
      last_run: {
        id: 'a3',
        status: 'succeeded',
        agent_id: 'support',
        output: 'It ships tomorrow.',
        error: null,
      },
    });
    expect(a.cost_usd).toBeGreaterThan(0);
    expect(threads[1]).toMatchObject({
      thread_id: 'conv-b',
      runs: 1,
      active: 1,
      last_run: { id: 'b1', status: 'running', output: null },
    });
    // a long input is previewed from its first characters, cut with an ellipsis
    expect(threads[2]!.first_run.input).toBe(`${'x'.repeat(299)}…`);
  });

  it("says a failed latest run's error", async () => {
    await ingest([turn('d1', 'conv-d', 400, { status: 'failed', error: { message: 'boom' } })]);
    const d = await get<ThreadSummary>('/api/v1/threads/conv-d');
    expect(d.last_run).toMatchObject({ id: 'd1', status: 'failed', error: 'boom' });
    expect(d.failed).toBe(1);
  });

  it('pages with a cursor through threads whose latest runs share a time', async () => {
    const same = 500;
    await ingest(['p3', 'p1', 'p2'].map((id) => turn(`${id}-r`, `page-${id}`, same)));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url = `/api/v1/threads?limit=2&to=${encodeURIComponent(at(same))}${cursor ? `&cursor=${cursor}` : ''}`;
      const page: ThreadList = await get<ThreadList>(url);
      expect(page.threads.length).toBeLessThanOrEqual(2);
      seen.push(...page.threads.map((x) => x.thread_id));
      cursor = page.next_cursor;
      expect(page.has_more).toBe(cursor !== null);
    } while (cursor);
    expect(seen).toEqual(['page-p3', 'page-p2', 'page-p1']);
  });

  it('pages through interleaved threads, each listed once, where its latest turn falls', async () => {
    // five conversations taking turns over the same hour: older turns of a thread listed
    // on one page come after that page's cursor
    const events: IngestEvent[] = [];
    for (let turnNo = 0; turnNo < 4; turnNo++)
      for (let c = 0; c < 5; c++)
        events.push(
          turn(`il-${c}-${turnNo}`, `il-${c}`, 700 - turnNo * 10 - c, { agent_id: 'weave' }),
        );
    await ingest(events);
    for (const limit of [1, 2, 3, 200]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url = `/api/v1/threads?agent_id=weave&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
        const page: ThreadList = await get<ThreadList>(url);
        seen.push(...page.threads.map((x) => x.thread_id));
        cursor = page.next_cursor;
      } while (cursor);
      // the latest turns: il-4's 666 minutes ago, then il-3's 667...
      expect(seen, `limit ${limit}`).toEqual(['il-4', 'il-3', 'il-2', 'il-1', 'il-0']);
    }
    const first = await get<ThreadList>('/api/v1/threads?agent_id=weave&limit=2');
    expect(first.threads.map((x) => [x.runs, x.first_run.id, x.last_run.id])).toEqual([
      [4, 'il-4-0', 'il-4-3'],
      [4, 'il-3-0', 'il-3-3'],
    ]);
  });

  it('sums each thread over the runs the filters keep', async () => {
    const byAgent = await get<ThreadList>('/api/v1/threads?agent_id=support');
    expect(byAgent.threads.map((x) => x.thread_id)).toEqual(['conv-a']);
    expect(byAgent.threads[0]).toMatchObject({
      runs: 1,
      agent_ids: ['support'],
      first_run: { id: 'a3', input: 'Where is it now?' },
    });
    const byUser = await get<ThreadList>('/api/v1/threads?user_id=u-2');
    expect(byUser.threads.map((x) => x.thread_id)).toEqual(['conv-c']);
    const recent = await get<ThreadList>(
      `/api/v1/threads?from=${encodeURIComponent(at(45))}&to=${encodeURIComponent(at(15))}`,
    );
    expect(recent.threads.map((x) => [x.thread_id, x.runs])).toEqual([
      ['conv-b', 1],
      ['conv-a', 1],
    ]);
  });

  it('gives one thread over all its runs, and its runs through GET /runs?thread_id', async () => {
    const a = await get<ThreadSummary>('/api/v1/threads/conv-a');
    expect(a).toMatchObject({ thread_id: 'conv-a', runs: 3, failed: 1 });
    const { runs } = await get<RunList>('/api/v1/runs?thread_id=conv-a');
    expect(runs.map((r) => r.id)).toEqual(['a3', 'a2', 'a1']);
    // a thread id is any text: it travels percent-encoded
    await ingest([turn('s1', 'support/ticket 42?', 1)]);
    const odd = await get<ThreadSummary>(
      `/api/v1/threads/${encodeURIComponent('support/ticket 42?')}`,
    );
    expect(odd).toMatchObject({ thread_id: 'support/ticket 42?', runs: 1 });
  });

  it('follows a thread as its runs change and go', async () => {
    await ingest([{ type: 'run.end', run: { id: 'b1', status: 'succeeded', output: 'done' } }]);
    const b = await get<ThreadSummary>('/api/v1/threads/conv-b');
    expect(b).toMatchObject({ active: 0, last_run: { status: 'succeeded', output: 'done' } });
    expect((await t.request('DELETE', '/api/v1/runs/b1')).statusCode).toBe(204);
    expect((await t.request('GET', '/api/v1/threads/conv-b')).statusCode).toBe(404);
    const { threads } = await get<ThreadList>('/api/v1/threads');
    expect(threads.map((x) => x.thread_id)).not.toContain('conv-b');
  });

  it('finds threads by text in their id, any case', async () => {
    const ids = async (query: string) =>
      (await getOk<ThreadList>(t, `/api/v1/threads?${query}`)).threads.map((x) => x.thread_id);
    const all = await ids('limit=200');
    expect(await ids('q=CONV')).toEqual(all.filter((id) => id.includes('conv')));
    expect(await ids('q=v-c')).toEqual(['conv-c']);
    expect(await ids('q=conv&user_id=u-1')).toEqual(['conv-a']);
    expect(await ids('q=conv_')).toEqual([]);
  });

  it('refuses a bad query, naming the field', async () => {
    for (const [query, field] of [
      ['limit=0', 'query.limit'],
      ['limit=201', 'query.limit'],
      ['cursor=%21%21', 'query.cursor'],
      ['from=yesterday', 'query.from'],
      [`from=${encodeURIComponent(at(1))}&to=${encodeURIComponent(at(2))}`, 'query.to'],
      ['agent_id=bad%20id', 'query.agent_id'],
      [`q=${'x'.repeat(201)}`, 'query.q'],
    ] as const) {
      const res = await t.request('GET', `/api/v1/threads?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.body, query).toContain(field);
    }
    expect((await t.request('GET', `/api/v1/threads/${'x'.repeat(201)}`)).statusCode).toBe(400);
  });

  it('keeps projects apart and needs a key', async () => {
    expect((await t.request('GET', '/api/v1/threads', undefined, null)).statusCode).toBe(401);
    const created = await t.request('POST', '/api/v1/projects', { name: 'other' });
    expect(created.statusCode, created.body).toBe(201);
    const { key: api_key } = json<{ admin_key: { key: string } }>(created).admin_key;
    const other = await t.request('GET', '/api/v1/threads', undefined, api_key);
    expect(json<ThreadList>(other).threads).toEqual([]);
    expect((await t.request('GET', '/api/v1/threads/conv-a', undefined, api_key)).statusCode).toBe(
      404,
    );
  });
});
