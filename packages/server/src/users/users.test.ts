import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, UserList, UserSummary } from '@runlog/core';
import {
  describeEachDb,
  createTestApp,
  getOk,
  ingestOk,
  json,
  queryPlan,
  readsDuring,
  type TestApp,
} from '../../test/harness.js';

const MIN = 60_000;

describeEachDb('users API', (dialect) => {
  let t: TestApp;
  const now = Date.now();
  const ms = (minutesAgo: number) => now - minutesAgo * MIN;
  const get = <T>(url: string) => getOk<T>(t, url);
  const run = (
    id: string,
    user: string | null,
    minutesAgo: number,
    extra: Record<string, unknown> = {},
  ): IngestEvent => ({
    type: 'run.end',
    run: {
      id,
      agent_id: 'chat',
      ...(user !== null ? { user_id: user } : {}),
      status: 'succeeded',
      started_at: ms(minutesAgo),
      ended_at: ms(minutesAgo - 0.5),
      ...extra,
    },
  });

  beforeAll(async () => {
    t = await createTestApp(dialect);
    await ingestOk(t, [
      // alice: four runs in two threads and one without, by two agents, one failed, a cost
      run('a1', 'alice', 50, { thread_id: 'conv-1' }),
      run('a2', 'alice', 40, {
        thread_id: 'conv-1',
        status: 'failed',
        error: { message: 'tool timeout' },
      }),
      run('a3', 'alice', 30, { thread_id: 'conv-2', agent_id: 'search' }),
      run('a4', 'alice', 5, { status: 'failed', error: { message: 'rate limited' } }),
      // bob: one run still going, the latest of all
      {
        type: 'run.start',
        run: { id: 'b1', agent_id: 'search', user_id: 'bob', started_at: ms(2) },
      },
      // carol: long ago
      run('c1', 'carol', 600),
      // runs for no user are in no user's sums
      run('n1', null, 1),
      run('n2', null, 45),
    ]);
    // tokens and cost of alice's first run
    await ingestOk(t, [
      {
        type: 'step.end',
        step: {
          id: 's1',
          run_id: 'a1',
          type: 'llm',
          model: 'house',
          input_tokens: 100,
          output_tokens: 20,
          cost_usd: 0.25,
        },
      },
    ]);
  });
  afterAll(() => t.close());

  it('lists users the latest active first, each summed up with its latest run', async () => {
    const list = await get<UserList>('/api/v1/users');
    expect(list.users.map((u) => u.user_id)).toEqual(['bob', 'alice', 'carol']);
    expect(list).toMatchObject({ has_more: false, next_cursor: null });
    const alice = list.users[1]!;
    expect(alice).toMatchObject({
      runs: 4,
      failed: 2,
      active: 0,
      threads: 2,
      agent_ids: ['chat', 'search'],
      total_tokens: 120,
      cost_usd: 0.25,
      first_at: new Date(ms(50)).toISOString(),
      last_at: new Date(ms(5)).toISOString(),
      last_run: { id: 'a4', status: 'failed', agent_id: 'chat', error: 'rate limited' },
    });
    expect(list.users[0]).toMatchObject({
      runs: 1,
      active: 1,
      threads: 0,
      last_run: { id: 'b1', status: 'running', error: null },
    });
  });

  it('sums up each user over the runs the filters keep', async () => {
    const bySearch = await get<UserList>('/api/v1/users?agent_id=search');
    expect(bySearch.users.map((u) => [u.user_id, u.runs, u.last_run.id])).toEqual([
      ['bob', 1, 'b1'],
      ['alice', 1, 'a3'],
    ]);
    const from = new Date(ms(45)).toISOString();
    const to = new Date(ms(20)).toISOString();
    const window = await get<UserList>(`/api/v1/users?from=${from}&to=${to}`);
    expect(window.users.map((u) => [u.user_id, u.runs, u.failed])).toEqual([['alice', 2, 1]]);
  });

  it('finds users by text in their id, any case, pages the matches, and takes % and _ as text', async () => {
    const ids = async (query: string) =>
      (await get<UserList>(`/api/v1/users?${query}`)).users.map((u) => u.user_id);
    expect(await ids('q=LIC')).toEqual(['alice']);
    expect(await ids('q=o')).toEqual(['bob', 'carol']);
    expect(await ids('q=o&agent_id=search')).toEqual(['bob']);
    expect(await ids('q=zzz')).toEqual([]);
    // wildcards are plain text: none of these ids holds a % or an _
    expect(await ids('q=%25')).toEqual([]);
    expect(await ids('q=_')).toEqual([]);
    const first = await get<UserList>('/api/v1/users?q=o&limit=1');
    expect(first.users.map((u) => u.user_id)).toEqual(['bob']);
    const second = await get<UserList>(`/api/v1/users?q=o&limit=1&cursor=${first.next_cursor}`);
    expect(second.users.map((u) => u.user_id)).toEqual(['carol']);
    expect(second.next_cursor).toBeNull();
    // a match's sums are its own, not cut down to what matched
    const [alice] = (await get<UserList>('/api/v1/users?q=alice')).users;
    expect(alice).toMatchObject({ runs: 4, failed: 2, threads: 2 });
  });

  it('takes a backslash in a search as text, as in a Windows account name', async () => {
    // LIKE's escape character here: in a project of its own, not to change the others' users
    const created = await t.request('POST', '/api/v1/projects', { name: 'windows' });
    const { key } = json<{ admin_key: { key: string } }>(created).admin_key;
    await ingestOk(t, [run('w1', 'CORP\\dana', 70), run('w2', 'corp-erin', 60)], key);
    const ids = async (q: string) =>
      (await getOk<UserList>(t, `/api/v1/users?q=${encodeURIComponent(q)}`, key)).users.map(
        (u) => u.user_id,
      );
    expect(await ids('p\\d')).toEqual(['CORP\\dana']);
    expect(await ids('corp')).toEqual(['corp-erin', 'CORP\\dana']);
    expect(await ids('\\\\')).toEqual([]);
  });

  it('pages with next_cursor, each user once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: UserList = await get<UserList>(
        `/api/v1/users?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.users.length).toBeLessThanOrEqual(1);
      seen.push(...page.users.map((u) => u.user_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(['bob', 'alice', 'carol']);
  });

  it('pages users of many runs each like a reference, whatever the page size', async () => {
    // 40 users of up to 120 runs each, interleaved in time, in a project of their own
    const created = await t.request('POST', '/api/v1/projects', { name: 'many-runs' });
    const { key } = json<{ admin_key: { key: string } }>(created).admin_key;
    const events: IngestEvent[] = [];
    const latest = new Map<string, number>();
    for (let i = 0; i < 2400; i++) {
      const user = `heavy-${(i * 7) % (1 + (i % 40))}`;
      const at = now - 3_600_000 + i * 100;
      latest.set(user, at);
      events.push({
        type: 'run.end',
        run: { id: `h${i}`, agent_id: 'bot', user_id: user, status: 'succeeded', started_at: at },
      });
    }
    for (let i = 0; i < events.length; i += 1000) await ingestOk(t, events.slice(i, i + 1000), key);
    const reference = [...latest].sort((a, b) => b[1] - a[1]).map(([user]) => user);
    for (const limit of [1, 7, 50]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: UserList = await getOk<UserList>(
          t,
          `/api/v1/users?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
          key,
        );
        seen.push(...page.users.map((u) => u.user_id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen, `limit ${limit}`).toEqual(reference);
    }
  });

  it('answers one user summed over all its runs, 404 for one no run names, 400s naming the field', async () => {
    const alice = await get<UserSummary>('/api/v1/users/alice');
    expect(alice).toMatchObject({ user_id: 'alice', runs: 4, threads: 2 });
    const missing = await t.request('GET', '/api/v1/users/nobody');
    expect(missing.statusCode).toBe(404);
    expect(json<{ error: { message: string } }>(missing).error.message).toBe(
      'user nobody not found',
    );
    for (const [query, field] of [
      ['cursor=nope!', 'query.cursor'],
      ['limit=0', 'query.limit'],
      ['from=yesterday', 'query.from'],
      ['user_id=alice', 'query.user_id'],
      [`q=${'x'.repeat(201)}`, 'query.q'],
    ] as const) {
      const res = await t.request('GET', `/api/v1/users?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(json<{ error: { details: { field: string }[] } }>(res).error.details[0]!.field).toBe(
        field,
      );
    }
  });

  if (dialect === 'sqlite')
    it("reads users off the runs' user indexes, never every run of the project", async () => {
      const db = t.ctx.db;
      const calls = await readsDuring(db, async () => {
        await get<UserList>('/api/v1/users');
        await get<UserList>('/api/v1/users?q=LIC');
        await get<UserSummary>('/api/v1/users/alice');
      });
      const reads = calls.filter((c) => /"user_id"/.test(c.sql));
      expect(reads.length).toBeGreaterThan(0);
      for (const { sql, parameters } of reads)
        for (const detail of queryPlan(db.sqlite!, sql, parameters))
          // the walk reads runs_users_latest newest first, a step's rows at a time: only
          // runs that name a user, never the project's others
          expect(detail, sql).not.toMatch(
            /^(SCAN runs|SEARCH runs USING (?!COVERING INDEX runs_users_latest ).*\(project_id=\?\)$)/,
          );
    });
});
