import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import {
  STEPS_PAGE,
  TIMELINE_MAX_STEPS,
  TRUNCATED_MARKER,
  type ApiErrorBody,
  type IngestResponse,
  type Run,
  type RunList,
  type RunWithSteps,
  type Step,
  type StatsResponse,
  type StepList,
  type Timeline,
} from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';
import {
  decodeCursor,
  decodeStepCursor,
  encodeCursor,
  encodeStepCursor,
  listRunsPage,
} from './runs.service.js';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const PAGER_RUNS = 25;

function fullRun(runId: string, agentId: string) {
  return [
    {
      type: 'run.start',
      run: {
        id: runId,
        agent_id: agentId,
        trigger: 'api',
        source: 'n8n',
        user_id: 'u-full',
        thread_id: 'th-full',
        input: { pr: 42, text: 'please triage the haystack' },
        started_at: T0,
        tags: ['ci', 'full'],
      },
    },
    {
      type: 'step.start',
      step: {
        id: `${runId}-s1`,
        run_id: runId,
        type: 'llm',
        name: 'plan',
        model: 'gpt-4o-mini',
        started_at: T0 + 10,
      },
    },
    {
      type: 'step.start',
      step: {
        id: `${runId}-s2`,
        run_id: runId,
        parent_step_id: `${runId}-s1`,
        type: 'tool',
        name: 'search',
        started_at: T0 + 100,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${runId}-s2`,
        run_id: runId,
        status: 'error',
        error: 'timeout talking to GitHub',
        ended_at: T0 + 400,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${runId}-s1`,
        run_id: runId,
        status: 'succeeded',
        input_tokens: 1200,
        output_tokens: 300,
        ended_at: T0 + 510,
      },
    },
    {
      type: 'run.end',
      run: {
        id: runId,
        status: 'success',
        output: { verdict: 'lgtm-output' },
        ended_at: T0 + 1000,
      },
    },
  ];
}

/** 25 runs of one agent: distinct times except three that share one (ties break by id). */
function pagerRuns() {
  return Array.from({ length: PAGER_RUNS }, (_, i) => {
    const at = i >= 22 ? T0 + 3_600_000 + 22_000 : T0 + 3_600_000 + i * 1000;
    return {
      type: 'run.end',
      run: {
        id: `pager-${String(i).padStart(2, '0')}`,
        agent_id: 'pager',
        status: i % 5 === 0 ? 'failed' : 'succeeded',
        trigger: i % 2 === 0 ? 'schedule' : 'manual',
        source: i % 3 === 0 ? 'cli' : 'dashboard',
        user_id: `user-${i % 4}`,
        thread_id: `thread-${i % 2}`,
        tags: i % 5 === 0 ? ['nightly'] : [],
        input: { n: i },
        error: i % 5 === 0 ? `boom number ${i}` : undefined,
        started_at: at,
        ended_at: at + 500,
      },
    };
  });
}

function ids(list: RunList): string[] {
  return list.runs.map((r) => r.id);
}

describeEachDb('runs API', (dialect) => {
  let t: TestApp;
  let otherKey: string;
  let readKey: string;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const ingest = await t.request('POST', '/api/v1/ingest', {
      events: [...fullRun('full-1', 'triager'), ...pagerRuns()],
    });
    expect(ingest.statusCode).toBe(200);
    const project = await t.request('POST', '/api/v1/projects', { name: 'Other team' });
    expect(project.statusCode).toBe(201);
    otherKey = json<{ admin_key: { key: string } }>(project).admin_key.key;
    const key = await t.request('POST', '/api/v1/keys', { scope: 'read', name: 'viewer' });
    readKey = json<{ key: string }>(key).key;
  });
  afterAll(async () => {
    await t.close();
  });

  const get = async <T = RunList>(url: string, key?: string) => {
    const res = await t.request('GET', url, undefined, key);
    expect(res.statusCode, res.body).toBe(200);
    return json<T>(res);
  };

  describe('reading one run', () => {
    it('answers a recorded run and, with include=steps, its steps in time order', async () => {
      const plain = await get<Run & { steps?: Step[] }>('/api/v1/runs/full-1');
      expect(plain).toMatchObject({
        id: 'full-1',
        agent_id: 'triager',
        status: 'succeeded',
        duration_ms: 1000,
        step_count: 2,
        error_count: 1,
        total_tokens: 1500,
        output: { verdict: 'lgtm-output' },
      });
      expect(plain.steps).toBeUndefined();
      const withSteps = await get<Run & { steps: Step[] }>('/api/v1/runs/full-1?include=steps');
      expect(withSteps.steps.map((s) => [s.id, s.status])).toEqual([
        ['full-1-s1', 'succeeded'],
        ['full-1-s2', 'failed'],
      ]);
    });

    it('lists the steps of a run', async () => {
      const { steps } = await get<{ steps: Step[] }>('/api/v1/runs/full-1/steps');
      expect(steps.map((s) => s.id)).toEqual(['full-1-s1', 'full-1-s2']);
      expect(steps[1]).toMatchObject({
        parent_step_id: 'full-1-s1',
        error: { message: 'timeout talking to GitHub' },
      });
    });

    it('shapes the timeline in time order with nested steps linked to their parent', async () => {
      const tl = await get<Timeline>('/api/v1/runs/full-1/timeline');
      expect(tl.events.map((e) => `${e.type}:${String(e.data.step_id ?? '')}`)).toEqual([
        'RUN_STARTED:',
        'STEP_STARTED:full-1-s1',
        'STEP_STARTED:full-1-s2',
        'STEP_ENDED:full-1-s2',
        'STEP_ENDED:full-1-s1',
        'RUN_ENDED:',
      ]);
      const child = tl.events.find(
        (e) => e.type === 'STEP_ENDED' && e.data.step_id === 'full-1-s2',
      );
      expect(child?.data).toMatchObject({
        parent_step_id: 'full-1-s1',
        depth: 1,
        duration_ms: 300,
      });
      expect(tl.summary).toMatchObject({ run_id: 'full-1', max_depth: 1, in_progress: false });
    });

    it('answers 404 for an unknown run on every read endpoint', async () => {
      for (const url of ['/nope', '/nope/steps', '/nope/timeline']) {
        const res = await t.request('GET', `/api/v1/runs${url}`);
        expect(res.statusCode).toBe(404);
      }
    });

    it('routes /runs/stats to the stats endpoint, not to a run called "stats"', async () => {
      const stats = await get<StatsResponse>(
        '/api/v1/runs/stats?from=2026-03-01T00:00:00.000Z&to=2026-03-02T00:00:00.000Z',
      );
      expect(stats.totals.runs).toBe(PAGER_RUNS + 1);
      // so no run may be called "stats": it could be recorded but never read
      const named = await t.request('POST', '/api/v1/ingest', {
        events: [
          { type: 'run.start', run: { id: 'stats', agent_id: 'a' } },
          { type: 'step.end', step: { id: 's', run_id: 'stats' } },
          { type: 'run.start', run: { id: 'child-of-stats', parent_run_id: 'stats' } },
          { type: 'run.start', run: { id: 'retry-of-stats', retry_of: 'stats' } },
          { type: 'run.heartbeat', run: { id: 'stats' } },
        ],
      });
      expect(named.statusCode).toBe(207);
      const fields = json<IngestResponse>(named).results!.map(
        (r) => (r.error?.details?.[0] as { field?: string } | undefined)?.field,
      );
      expect(fields).toEqual([
        'events.0.run.id',
        'events.1.step.run_id',
        'events.2.run.parent_run_id',
        'events.3.run.retry_of',
        'events.4.run.id',
      ]);
      expect((await t.request('GET', '/api/v1/runs/child-of-stats')).statusCode).toBe(404);
      for (const [url, field] of [
        ['/api/v1/runs', 'body.id'],
        ['/api/v1/agents/a/runs', 'body.id'],
      ] as const) {
        const res = await t.request('POST', url, { id: 'stats', agent_id: 'a' });
        expect(res.statusCode).toBe(400);
        const [detail] = json<ApiErrorBody>(res).error.details as { field: string }[];
        expect(detail?.field).toBe(field);
      }
    });
  });

  describe('listing runs', () => {
    it('lists newest first by sort_at then id', async () => {
      const list = await get('/api/v1/runs?limit=500');
      expect(list.runs.length).toBe(PAGER_RUNS + 1);
      expect(list.runs[0]?.id).toBe('pager-24');
      expect(ids(list).slice(0, 4)).toEqual(['pager-24', 'pager-23', 'pager-22', 'pager-21']);
      expect(list.runs[list.runs.length - 1]?.id).toBe('full-1');
      expect(list).toMatchObject({ has_more: false, next_cursor: null, total: PAGER_RUNS + 1 });
    });

    it('filters by each field and combines filters', async () => {
      const cases: [string, (r: Run) => boolean][] = [
        ['agent_id=triager', (r) => r.agent_id === 'triager'],
        ['agent_id=triager,pager', () => true],
        ['status=failed', (r) => r.status === 'failed'],
        ['status=failed,succeeded&agent_id=pager', (r) => r.agent_id === 'pager'],
        ['trigger=schedule', (r) => r.trigger === 'schedule'],
        ['trigger=manual,api', (r) => r.trigger !== 'schedule'],
        ['source=cli', (r) => r.source === 'cli'],
        ['user_id=user-1', (r) => r.user_id === 'user-1'],
        ['thread_id=thread-0', (r) => r.thread_id === 'thread-0'],
        ['tag=nightly', (r) => r.tags.includes('nightly')],
        ['tag=full', (r) => r.id === 'full-1'],
        [`from=${T0 + 3_600_000 + 20_000}`, (r) => Date.parse(r.started_at!) >= T0 + 3_620_000],
        [
          `from=${new Date(T0 + 3_600_000 + 5_000).toISOString()}&to=${T0 + 3_600_000 + 7_000}`,
          (r) => ['pager-05', 'pager-06', 'pager-07'].includes(r.id),
        ],
        [
          'status=failed&trigger=schedule&source=cli',
          (r) => r.status === 'failed' && r.trigger === 'schedule' && r.source === 'cli',
        ],
      ];
      const all = (await get('/api/v1/runs?limit=500')).runs;
      for (const [qs, want] of cases) {
        const list = await get(`/api/v1/runs?limit=500&${qs}`);
        const expected = all.filter(want).map((r) => r.id);
        expect(expected.length, qs).toBeGreaterThan(0);
        expect(ids(list), qs).toEqual(expected);
        expect(list.total, qs).toBe(expected.length);
      }
    });

    it('lists the runs nested in a run with parent_run_id', async () => {
      const ingested = await t.request('POST', '/api/v1/ingest', {
        events: [
          { type: 'run.start', run: { id: 'tree-root', agent_id: 'support' } },
          ...['tree-a', 'tree-b'].map((id) => ({
            type: 'run.start',
            run: { id, agent_id: 'researcher', parent_run_id: 'tree-root' },
          })),
          {
            type: 'run.start',
            run: { id: 'tree-c', agent_id: 'researcher', parent_run_id: 'tree-a' },
          },
        ],
      });
      expect(ingested.statusCode).toBe(200);
      const children = await get('/api/v1/runs?parent_run_id=tree-root');
      expect(ids(children).sort()).toEqual(['tree-a', 'tree-b']);
      expect(children.total).toBe(2);
      expect(ids(await get('/api/v1/runs?parent_run_id=tree-a&agent_id=researcher'))).toEqual([
        'tree-c',
      ]);
      expect(ids(await get('/api/v1/runs?parent_run_id=tree-b'))).toEqual([]);
      await Promise.all(
        ['tree-root', 'tree-a', 'tree-b', 'tree-c'].map((id) =>
          t.request('DELETE', `/api/v1/runs/${id}`),
        ),
      );
    });

    it('searches input, output and error text with q, case-insensitively', async () => {
      expect(ids(await get('/api/v1/runs?q=HAYSTACK'))).toEqual(['full-1']);
      expect(ids(await get('/api/v1/runs?q=lgtm-out'))).toEqual(['full-1']);
      expect(ids(await get('/api/v1/runs?q=boom%20number%2015'))).toEqual(['pager-15']);
      expect(ids(await get('/api/v1/runs?q=no-such-text-anywhere'))).toEqual([]);
      // an error's field names are not its text
      expect(ids(await get('/api/v1/runs?q=message')), 'message').toEqual([]);
      // case folds beyond ASCII too, on SQLite as on PostgreSQL
      await t.request('POST', '/api/v1/ingest', {
        events: [
          {
            type: 'run.end',
            run: { id: 'umlaut-1', agent_id: 'umlaut', status: 'succeeded', output: 'Grüße ÄÖ' },
          },
        ],
      });
      for (const q of ['äö', 'ÄÖ', 'GRÜSSE'.slice(0, 3), 'grü'])
        expect(ids(await get(`/api/v1/runs?q=${encodeURIComponent(q)}`)), q).toEqual(['umlaut-1']);
      // text that JSON writes escaped (a quote, a tab, a backslash) is found as typed
      await t.request('POST', '/api/v1/ingest', {
        events: [
          {
            type: 'run.end',
            run: {
              id: 'quoted-1',
              agent_id: 'quoted',
              status: 'succeeded',
              input: 'say "hi" now',
              output: { x: 'tab\there C:\\dir' },
            },
          },
        ],
      });
      for (const q of ['say "hi"', 'tab\there', 'C:\\dir'])
        expect(ids(await get(`/api/v1/runs?q=${encodeURIComponent(q)}`)), q).toEqual(['quoted-1']);
    });

    it('pages through three pages with the cursor without duplicates or gaps', async () => {
      const seen: string[] = [];
      let url = '/api/v1/runs?agent_id=pager&limit=10';
      const sizes: number[] = [];
      for (let page = 0; page < 5; page++) {
        const list = await get(url);
        sizes.push(list.runs.length);
        seen.push(...ids(list));
        expect(list.total).toBe(PAGER_RUNS);
        if (!list.has_more) {
          expect(list.next_cursor).toBeNull();
          break;
        }
        expect(list.next_cursor).toEqual(expect.any(String));
        url = `/api/v1/runs?agent_id=pager&limit=10&cursor=${list.next_cursor}`;
      }
      expect(sizes).toEqual([10, 10, 5]);
      const expected = Array.from(
        { length: PAGER_RUNS },
        (_, i) => `pager-${String(PAGER_RUNS - 1 - i).padStart(2, '0')}`,
      );
      expect(seen).toEqual(expected);
    });

    it('pages with offset the same way as with the cursor', async () => {
      const first = await get('/api/v1/runs?agent_id=pager&limit=10');
      const second = await get(`/api/v1/runs?agent_id=pager&limit=10&cursor=${first.next_cursor}`);
      const byOffset = await get('/api/v1/runs?agent_id=pager&limit=10&offset=10');
      expect(ids(byOffset)).toEqual(ids(second));
      expect(byOffset.has_more).toBe(true);
      const last = await get('/api/v1/runs?agent_id=pager&limit=10&offset=20');
      expect(last.runs).toHaveLength(5);
      expect(last.has_more).toBe(false);
    });

    it('counts totals from the rollups or with a capped count that says when it is capped', async () => {
      const byRollup = await get('/api/v1/runs?status=failed&limit=1');
      expect(byRollup.total).toBe(5);
      const filtered = await get('/api/v1/runs?user_id=user-1&limit=1');
      expect(filtered.total).toBe(6);
      expect(filtered).not.toHaveProperty('total_capped');
      const bySource = (source: string, totalCap: number) =>
        listRunsPage(t.ctx.db, 'default', { source }, { limit: 2, totalCap });
      const capped = await bySource('dashboard', 5);
      expect(capped.total).toBe(5);
      expect(capped.total_capped).toBe(true);
      const uncapped = await bySource('cli', 50);
      expect(uncapped.total).toBe(9);
      expect(uncapped.total_capped).toBeUndefined();
      // a page past the cap: the lower bound counts what it skipped and shows (and one more)
      const past = await listRunsPage(
        t.ctx.db,
        'default',
        { source: 'cli' },
        { limit: 2, offset: 5, totalCap: 3 },
      );
      expect(past.runs).toHaveLength(2);
      expect(past).toMatchObject({ total: 8, total_capped: true, has_more: true });
      // exactly as many as the cap is an exact count
      const exact = await bySource('cli', 9);
      expect(exact.total).toBe(9);
      expect(exact.total_capped).toBeUndefined();
    });

    it('rejects bad input with a 400 naming the field', async () => {
      const cases: [string, string][] = [
        ['/api/v1/runs?status=running,bogus', 'query.status'],
        ['/api/v1/runs?trigger=cron', 'query.trigger'],
        ['/api/v1/runs?limit=0', 'query.limit'],
        ['/api/v1/runs?limit=abc', 'query.limit'],
        ['/api/v1/runs?limit=501', 'query.limit'],
        ['/api/v1/runs?offset=-1', 'query.offset'],
        ['/api/v1/runs?cursor=not-a-cursor', 'query.cursor'],
        [`/api/v1/runs?cursor=${Buffer.from('x:y').toString('base64url')}`, 'query.cursor'],
        ['/api/v1/runs?from=yesterday', 'query.from'],
        ['/api/v1/runs?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z', 'query.to'],
        ['/api/v1/runs/full-1?include=everything', 'query.include'],
        // a NUL matches nothing stored, and PostgreSQL cannot take it in a query (was a 500)
        ['/api/v1/runs?source=a%00b', 'query.source'],
        ['/api/v1/runs?thread_id=%00', 'query.thread_id'],
        ['/api/v1/runs?tag=x%00', 'query.tag'],
        ['/api/v1/runs?q=needle%00', 'query.q'],
      ];
      for (const [url, field] of cases) {
        const res = await t.request('GET', url);
        expect(res.statusCode, url).toBe(400);
        const body = json<{ error: { code: string; details: { field: string }[] } }>(res);
        expect(body.error.code).toBe('invalid_input');
        // a bad list item is named by its index (query.status.1)
        const fields = body.error.details.map((d) => d.field.replace(/\.\d+$/, ''));
        expect(fields, url).toContain(field);
      }
    });
  });

  describe('isolation and scopes', () => {
    it("answers 404 for another project's runs and lists nothing of ours", async () => {
      for (const url of [
        '/api/v1/runs/full-1',
        '/api/v1/runs/full-1/steps',
        '/api/v1/runs/full-1/timeline',
      ]) {
        expect((await t.request('GET', url, undefined, otherKey)).statusCode, url).toBe(404);
      }
      for (const action of ['cancel', 'retry']) {
        const res = await t.request('POST', `/api/v1/runs/full-1/${action}`, undefined, otherKey);
        expect(res.statusCode, action).toBe(404);
      }
      expect(
        (await t.request('DELETE', '/api/v1/runs/full-1', undefined, otherKey)).statusCode,
      ).toBe(404);
      const list = await get('/api/v1/runs', otherKey);
      expect(list).toEqual({ runs: [], next_cursor: null, has_more: false, total: 0 });
      const agents = await get<{ agents: unknown[] }>('/api/v1/agents', otherKey);
      expect(agents.agents).toEqual([]);
      expect((await get<Run>('/api/v1/runs/full-1')).id).toBe('full-1');
    });

    it('lets a read key read but not cancel, retry, delete or change agents', async () => {
      expect((await get<Run>('/api/v1/runs/full-1', readKey)).id).toBe('full-1');
      expect((await get('/api/v1/runs?limit=1', readKey)).runs).toHaveLength(1);
      const denied = [
        await t.request('POST', '/api/v1/runs/full-1/cancel', undefined, readKey),
        await t.request('POST', '/api/v1/runs/full-1/retry', undefined, readKey),
        await t.request('DELETE', '/api/v1/runs/full-1', undefined, readKey),
        await t.request('PUT', '/api/v1/agents/triager', { name: 'x' }, readKey),
        await t.request('DELETE', '/api/v1/agents/triager', undefined, readKey),
        await t.request('POST', '/api/v1/agents/triager/runs', {}, readKey),
      ];
      expect(denied.map((r) => r.statusCode)).toEqual([403, 403, 403, 403, 403, 403]);
      expect((await get<Run>('/api/v1/runs/full-1')).status).toBe('succeeded');
    });
  });

  describe('control', () => {
    it('cancels a queued run at once', async () => {
      const queued = await t.request('POST', '/api/v1/agents/ctl/runs', { id: 'ctl-q1' });
      expect(queued.statusCode).toBe(202);
      const res = await t.request('POST', '/api/v1/runs/ctl-q1/cancel');
      expect(res.statusCode).toBe(200);
      expect(json<Run>(res)).toMatchObject({ id: 'ctl-q1', status: 'cancelled' });
      expect((await get<Run>('/api/v1/runs/ctl-q1')).status).toBe('cancelled');
      expect((await t.request('POST', '/api/v1/runs/ctl-q1/cancel')).statusCode).toBe(409);
    });

    it('asks a running run to stop and leaves it running', async () => {
      await t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'run.start', run: { id: 'ctl-r1', agent_id: 'ctl' } }],
      });
      const res = await t.request('POST', '/api/v1/runs/ctl-r1/cancel');
      expect(res.statusCode).toBe(200);
      const run = await get<Run>('/api/v1/runs/ctl-r1');
      expect(run.status).toBe('running');
      expect(run.cancel_requested_at).toEqual(expect.any(String));
    });

    it('answers 409 when cancelling a finished run', async () => {
      expect((await t.request('POST', '/api/v1/runs/full-1/cancel')).statusCode).toBe(409);
    });

    it('retries a finished run as a new queued run linked to it', async () => {
      const res = await t.request('POST', '/api/v1/runs/full-1/retry');
      expect(res.statusCode).toBe(201);
      const retry = json<Run>(res);
      expect(retry).toMatchObject({
        retry_of: 'full-1',
        attempt: 2,
        agent_id: 'triager',
        input: { pr: 42, text: 'please triage the haystack' },
        thread_id: 'th-full',
        trigger: 'retry',
        status: 'queued',
      });
      expect(retry.id).not.toBe('full-1');
      expect((await get<Run>(`/api/v1/runs/${retry.id}`)).retry_of).toBe('full-1');
      // the retries of a run, found by retry_of
      const retries = await get(`/api/v1/runs?retry_of=full-1`);
      expect(retries.runs.map((r) => r.id)).toEqual([retry.id]);
      expect(retries.total).toBe(1);
      expect((await get(`/api/v1/runs?retry_of=${retry.id}`)).runs).toEqual([]);
    });

    it('finds the runs retried already, or not yet (retried=)', async () => {
      const at = Date.parse('2026-02-01T10:00:00Z');
      await t.request('POST', '/api/v1/ingest', {
        events: ['rt-a', 'rt-b', 'rt-c'].map((id, i) => ({
          type: 'run.end',
          run: { id, agent_id: 'rt', status: 'failed', started_at: at + i, ended_at: at + i + 1 },
        })),
      });
      expect((await t.request('POST', '/api/v1/runs/rt-b/retry')).statusCode).toBe(201);
      const ids = async (query: string) => {
        const list = await get(`/api/v1/runs?agent_id=rt&status=failed&${query}`);
        return { ids: list.runs.map((r) => r.id), total: list.total };
      };
      expect(await ids('retried=false')).toEqual({ ids: ['rt-c', 'rt-a'], total: 2 });
      expect(await ids('retried=true')).toEqual({ ids: ['rt-b'], total: 1 });
      expect(await ids('retried=false&limit=1')).toMatchObject({ ids: ['rt-c'] });
      // the retry itself is queued and retried by no run
      const retries = await get('/api/v1/runs?agent_id=rt&retried=false&status=queued');
      expect(retries.runs.map((r) => r.retry_of)).toEqual(['rt-b']);
      const bad = await t.request('GET', '/api/v1/runs?retried=yes');
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('query.retried');
    });

    it('refuses to retry a run that is still running', async () => {
      await t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'run.start', run: { id: 'ctl-r2', agent_id: 'ctl' } }],
      });
      expect((await t.request('POST', '/api/v1/runs/ctl-r2/retry')).statusCode).toBe(409);
    });

    it('answers the same retry when the call is sent again with its id', async () => {
      await t.request('POST', '/api/v1/ingest', {
        events: [
          { type: 'run.start', run: { id: 'idem-1', agent_id: 'ctl' } },
          { type: 'run.end', run: { id: 'idem-1', status: 'failed' } },
          { type: 'run.start', run: { id: 'idem-2', agent_id: 'ctl' } },
          { type: 'run.end', run: { id: 'idem-2', status: 'failed' } },
          { type: 'run.start', run: { id: 'idem-other', agent_id: 'elsewhere' } },
        ],
      });
      const [a, b] = await Promise.all(
        [1, 2].map(() => t.request('POST', '/api/v1/runs/idem-1/retry', { id: 'idem-1-r' })),
      );
      expect([a!.statusCode, b!.statusCode]).toEqual([201, 201]);
      expect(json<Run>(a!)).toEqual(json<Run>(b!));
      expect(json<Run>(a!)).toMatchObject({ id: 'idem-1-r', retry_of: 'idem-1', attempt: 2 });
      // once the retry ran and ended, the call still answers it instead of queuing another
      await t.request('POST', '/api/v1/ingest', {
        events: [{ type: 'run.end', run: { id: 'idem-1-r', status: 'failed' } }],
      });
      const again = await t.request('POST', '/api/v1/runs/idem-1/retry', { id: 'idem-1-r' });
      expect(json<Run>(again)).toMatchObject({ id: 'idem-1-r', status: 'failed' });
      expect((await get(`/api/v1/runs?retry_of=idem-1`)).total).toBe(1);
      // an id taken by a run that is not this run's retry: 409 naming the field
      // (of this agent, or of another one)
      for (const id of ['idem-2', 'idem-1-r', 'idem-other']) {
        const res = await t.request('POST', '/api/v1/runs/idem-2/retry', { id });
        expect(res.statusCode).toBe(409);
        expect(json<{ error: { details: { field: string }[] } }>(res).error.details).toEqual([
          expect.objectContaining({ field: 'body.id' }),
        ]);
      }
      const bad = await t.request('POST', '/api/v1/runs/idem-2/retry', { id: 'no spaces' });
      expect(bad.statusCode).toBe(400);
      expect((await get(`/api/v1/runs?retry_of=idem-2`)).total).toBe(0);
    });

    it('deletes a run: 404 afterwards and the stats drop it', async () => {
      const range = 'from=2026-03-01T00:00:00.000Z&to=2026-03-02T00:00:00.000Z&agent_id=pager';
      const before = await get<StatsResponse>(`/api/v1/runs/stats?${range}`);
      const res = await t.request('DELETE', '/api/v1/runs/pager-00');
      expect(res.statusCode).toBe(204);
      expect((await t.request('GET', '/api/v1/runs/pager-00')).statusCode).toBe(404);
      expect((await t.request('GET', '/api/v1/runs/pager-00/steps')).statusCode).toBe(404);
      expect((await t.request('DELETE', '/api/v1/runs/pager-00')).statusCode).toBe(404);
      const after = await get<StatsResponse>(`/api/v1/runs/stats?${range}`);
      expect(after.totals.runs).toBe(before.totals.runs - 1);
      expect(after.totals.by_status.failed).toBe(before.totals.by_status.failed - 1);
      expect((await get('/api/v1/runs?agent_id=pager&limit=1')).total).toBe(PAGER_RUNS - 1);
    });
  });
});

describeEachDb('runs sorted by cost, duration and tokens', (dialect) => {
  let t: TestApp;
  const T = Date.parse('2026-05-02T10:00:00.000Z');
  // cost, duration and tokens in other orders than time, with ties and runs not ended
  const RUNS = Array.from({ length: 23 }, (_, i) => ({
    id: `srt-${String(i).padStart(2, '0')}`,
    agent: i % 3 === 0 ? 'sorter-a' : 'sorter-b',
    cost: (i * 7) % 5 === 0 ? null : ((i * 7) % 5) * 0.01,
    tokens: ((i * 11) % 7) * 100,
    durationMs: i % 6 === 5 ? null : ((i * 13) % 9) * 1000,
  }));
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const events = RUNS.flatMap((r, i) => [
      { type: 'run.start', run: { id: r.id, agent_id: r.agent, started_at: T + i * 60_000 } },
      {
        type: 'step.end',
        step: {
          id: 'llm',
          run_id: r.id,
          type: 'llm',
          model: 'house-model',
          input_tokens: r.tokens,
          output_tokens: 0,
          ...(r.cost !== null ? { cost_usd: r.cost } : {}),
          started_at: T + i * 60_000,
          ended_at: T + i * 60_000 + 1,
        },
      },
      ...(r.durationMs === null
        ? []
        : [
            {
              type: 'run.end',
              run: { id: r.id, status: 'succeeded', ended_at: T + i * 60_000 + r.durationMs },
            },
          ]),
    ]);
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
  });
  afterAll(async () => {
    await t.close();
  });

  const walk = async (query: string, limit: number) => {
    const ids: string[] = [];
    let cursor: string | null = null;
    let total = -1;
    do {
      const res = await t.request(
        'GET',
        `/api/v1/runs?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.statusCode, res.body).toBe(200);
      const page = json<RunList>(res);
      ids.push(...page.runs.map((r) => r.id));
      total = page.total;
      cursor = page.next_cursor;
    } while (cursor);
    return { ids, total };
  };
  // the most first, ties by id from the last, as the list answers them
  const expected = (value: (r: (typeof RUNS)[number]) => number, agent?: string) =>
    RUNS.filter((r) => !agent || r.agent === agent)
      .sort((a, b) => value(b) - value(a) || (a.id < b.id ? 1 : -1))
      .map((r) => r.id);

  it('orders every page by the value, ties by id, runs not ended last, each run once', async () => {
    const byCost = expected((r) => Math.round((r.cost ?? 0) * 1e9));
    const byTokens = expected((r) => r.tokens);
    const byDuration = expected((r) => r.durationMs ?? -1);
    for (const limit of [4, 50]) {
      expect((await walk('agent_id=sorter-a,sorter-b&sort=cost', limit)).ids).toEqual(byCost);
      expect((await walk('agent_id=sorter-a,sorter-b&sort=tokens', limit)).ids).toEqual(byTokens);
      const duration = await walk('agent_id=sorter-a,sorter-b&sort=duration', limit);
      expect(duration.ids).toEqual(byDuration);
      expect(duration.total).toBe(RUNS.length);
    }
    expect((await walk('agent_id=sorter-a&sort=cost', 3)).ids).toEqual(
      expected((r) => Math.round((r.cost ?? 0) * 1e9), 'sorter-a'),
    );
    // newest, named or not, is the list as before
    const newest = (await walk('agent_id=sorter-a,sorter-b&sort=newest', 5)).ids;
    expect(newest).toEqual(RUNS.map((r) => r.id).reverse());
  });

  it("refuses another order's cursor and an unknown sort, naming the field", async () => {
    const first = json<RunList>(
      await t.request('GET', '/api/v1/runs?agent_id=sorter-a,sorter-b&sort=cost&limit=2'),
    );
    const other = await t.request(
      'GET',
      `/api/v1/runs?agent_id=sorter-a,sorter-b&sort=tokens&cursor=${first.next_cursor}`,
    );
    expect(other.statusCode).toBe(400);
    expect(other.json()).toMatchObject({ error: { details: [{ field: 'query.cursor' }] } });
    const newest = json<RunList>(await t.request('GET', '/api/v1/runs?limit=2'));
    const mixed = await t.request('GET', `/api/v1/runs?sort=cost&cursor=${newest.next_cursor}`);
    expect(mixed.statusCode).toBe(400);
    // the cursor is one this API returned: the answer says of which list, not that it is none
    expect(json<ApiErrorBody>(mixed).error.message).toBe(
      'query.cursor: a cursor of the newest-first list: ask without sort',
    );
    // and a sorted list's cursor is no newest-first cursor either (it would read as one)
    const back = await t.request('GET', `/api/v1/runs?cursor=${first.next_cursor}`);
    expect(back.statusCode).toBe(400);
    expect(back.json()).toMatchObject({ error: { details: [{ field: 'query.cursor' }] } });
    expect(json<ApiErrorBody>(back).error.message).toBe(
      'query.cursor: a cursor of a list in sort=cost: ask with the same sort',
    );
    const unknown = await t.request('GET', '/api/v1/runs?sort=slowest');
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ error: { details: [{ field: 'query.sort' }] } });
  });

  it('pages exactly through values past 2^53 and ties among them', async () => {
    // made-up totals no API write reaches, set in the table: the cursor keeps them exact
    const k = t.ctx.db.kysely;
    const ids = ['srt-00', 'srt-01', 'srt-02', 'srt-03', 'srt-04'];
    const big = ['9007199254740993', '9007199254740993', '9007199254740992', '20000000000000001'];
    for (const [i, v] of big.entries())
      await sql`UPDATE runs SET cost_nanos = ${sql.raw(v)} WHERE id = ${ids[i]}`.execute(k);
    const walked = await walk('agent_id=sorter-a,sorter-b&sort=cost', 1);
    expect(walked.ids.slice(0, 4)).toEqual(['srt-03', 'srt-01', 'srt-00', 'srt-02']);
    expect(new Set(walked.ids).size).toBe(RUNS.length);
    expect(walked.ids).toHaveLength(RUNS.length);
  });

  if (dialect === 'sqlite')
    it('reads each order off its index, without sorting the project', () => {
      const sqlite = t.ctx.db.sqlite!;
      for (const [sort, index] of [
        ['cost', 'runs_sort_cost'],
        ['duration', 'runs_sort_duration'],
        ['tokens', 'runs_sort_tokens'],
      ] as const) {
        const value = {
          cost: 'cost_nanos',
          duration: 'coalesce(duration_ms, -1)',
          tokens: '(input_tokens + output_tokens)',
        }[sort];
        const plan = sqlite
          .prepare(
            `EXPLAIN QUERY PLAN SELECT id FROM runs WHERE project_id = ? AND (${value}, id) < (?, ?) ORDER BY ${value} DESC, id DESC LIMIT 21`,
          )
          .all('default', 5, 'x') as { detail: string }[];
        const text = plan.map((p) => p.detail).join(' | ');
        expect(text, sort).toContain(index);
        expect(text, sort).not.toContain('TEMP B-TREE');
      }
    });
});

describeEachDb('runs an older version stored before 1970', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it('are paged to and past: the cursor a page hands out is taken back', async () => {
    const steps = ['s1', 's2', 's3'].map((id) => ({
      type: 'step.end',
      step: { id, run_id: 'old-0', type: 'tool', name: id, status: 'succeeded' },
    }));
    const ingested = await t.request('POST', '/api/v1/ingest', {
      events: [
        ...[0, 1, 2].map((i) => ({
          type: 'run.start',
          run: { id: `old-${i}`, agent_id: 'go', thread_id: `thread-${i}` },
        })),
        ...steps,
      ],
    });
    expect(ingested.statusCode).toBe(200);
    // Go's zero time, as servers before 1970 was refused stored it (8f7fbe5)
    const zero = Date.parse('0001-01-01T00:00:00Z');
    for (const i of [0, 1, 2])
      await sql`UPDATE runs SET started_at = ${zero + i}, sort_at = ${zero + i}
        WHERE id = ${`old-${i}`}`.execute(t.ctx.db.kysely);
    await sql`UPDATE steps SET started_at = ${zero}, ended_at = ${zero}`.execute(t.ctx.db.kysely);
    const pages = async (url: string, key: string) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.request('GET', cursor ? `${url}&cursor=${cursor}` : url);
        // before: 400 "query.cursor: not a cursor this API returned" on the second page
        expect(res.statusCode, res.body).toBe(200);
        const page = json<{ next_cursor: string | null } & Record<string, { id: string }[]>>(res);
        seen.push(...page[key]!.map((r) => r.id ?? (r as { thread_id?: string }).thread_id));
        cursor = page.next_cursor;
      } while (cursor);
      return seen;
    };
    expect(await pages('/api/v1/runs?limit=1', 'runs')).toEqual(['old-2', 'old-1', 'old-0']);
    expect(await pages('/api/v1/agents/go/runs?limit=1', 'runs')).toHaveLength(3);
    expect(await pages('/api/v1/runs/old-0/steps?limit=1', 'steps')).toEqual(['s1', 's2', 's3']);
    expect(await pages('/api/v1/threads?limit=1', 'threads')).toEqual([
      'thread-2',
      'thread-1',
      'thread-0',
    ]);
  });
});

describeEachDb('read API in openapi.json', (dialect) => {
  it('describes the runs, agents and stats routes', async () => {
    const t = await createTestApp(dialect);
    try {
      const res = await t.request('GET', '/api/v1/openapi.json');
      expect(res.statusCode).toBe(200);
      const paths = Object.keys(json<{ paths: Record<string, unknown> }>(res).paths);
      for (const p of ['/api/v1/runs/stats', '/api/v1/agents', '/api/v1/runs/{run_id}/timeline']) {
        expect(paths).toContain(p);
      }
    } finally {
      await t.close();
    }
  });
});

describeEachDb("a run's steps in pages", (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });
  const get = async <T>(url: string) => json<T>(await t.request('GET', url));

  it("pages through a run's steps in time order with limit and cursor", async () => {
    const t0 = Date.parse('2026-04-01T00:00:00.000Z');
    // 25 steps, several sharing a start, one known only by its end, sent out of order
    const events = Array.from({ length: 25 }, (_, i) => ({
      type: 'step.end',
      step: {
        id: `p-${String(24 - i).padStart(2, '0')}`,
        run_id: 'paged',
        type: 'tool',
        ...(i === 3 ? {} : { started_at: t0 + Math.floor((24 - i) / 3) }),
        ended_at: t0 + 100,
      },
    }));
    await t.request('POST', '/api/v1/ingest', { events });
    const all = await get<StepList>('/api/v1/runs/paged/steps');
    expect(all).toMatchObject({ has_more: false, next_cursor: null, total: 25 });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page: StepList = await get<StepList>(
        `/api/v1/runs/paged/steps?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.total).toBe(25);
      seen.push(...page.steps.map((s) => s.id));
      cursor = page.next_cursor;
      expect(page.has_more).toBe(cursor !== null);
      if (!cursor) break;
    }
    expect(seen).toEqual(all.steps.map((s) => s.id));
    expect((await t.request('GET', '/api/v1/runs/paged/steps?cursor=bm9wZQ')).statusCode).toBe(400);
  });

  it('answers a run of many steps in bounded pieces: 1,000 inline, the timeline from 5,000', async () => {
    const t0 = Date.parse('2026-04-02T00:00:00.000Z');
    const count = TIMELINE_MAX_STEPS + 7;
    for (let from = 0; from < count; from += 1000) {
      const events = Array.from({ length: Math.min(1000, count - from) }, (_, i) => ({
        type: 'step.end',
        step: { id: `m-${from + i}`, run_id: 'many', type: 'tool', started_at: t0 + from + i },
      }));
      expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    }
    // before, each of these answered every step at once, and a 50,000-step run stalled the
    // server for seconds
    const detail = await get<RunWithSteps>('/api/v1/runs/many?include=steps');
    expect(detail.steps).toHaveLength(STEPS_PAGE);
    expect(detail.steps_next_cursor).toEqual(expect.any(String));
    const first = await get<StepList>('/api/v1/runs/many/steps');
    expect(first).toMatchObject({ has_more: true, total: count });
    expect(first.steps.map((s) => s.id)).toEqual(detail.steps.map((s) => s.id));
    // the inline steps' cursor goes on where they stop
    const rest = await get<StepList>(`/api/v1/runs/many/steps?cursor=${detail.steps_next_cursor!}`);
    expect(rest.steps[0]?.id).toBe(`m-${STEPS_PAGE}`);
    const timeline = await get<Timeline>('/api/v1/runs/many/timeline');
    expect(timeline.summary).toMatchObject({ step_count: count, steps_omitted: 7 });
    expect(timeline.events.filter((e) => e.type === 'STEP_ENDED')).toHaveLength(TIMELINE_MAX_STEPS);
    // a run within the bounds says nothing of them
    const paged = await get<RunWithSteps>('/api/v1/runs/paged?include=steps');
    expect(paged).not.toHaveProperty('steps_next_cursor');
    const small = await get<Timeline>('/api/v1/runs/paged/timeline');
    expect(small.summary).not.toHaveProperty('steps_omitted');
  });

  it('cuts a page of large steps at its payload budget, previews runs past it, reads the rest whole', async () => {
    // 1.9 MB of payloads each: 18 of them pass the 32 MiB a page carries at most
    const big = (i: number) => `${i}:`.padEnd(950_000, 'x');
    const t0 = Date.parse('2026-04-03T00:00:00.000Z');
    const heavySteps = Array.from({ length: 18 }, (_, i) => ({
      type: 'step.end',
      step: {
        id: `h-${String(i).padStart(2, '0')}`,
        run_id: 'heavy',
        type: 'tool',
        input: big(i),
        output: big(i + 100),
        started_at: t0 + i,
      },
    }));
    // a field above the size read inline (64 KiB) and below the budget, and a large error
    const medium = 'm'.repeat(100_000);
    const events = [
      ...heavySteps,
      {
        type: 'step.end',
        step: {
          id: 'h-medium',
          run_id: 'heavy',
          type: 'tool',
          started_at: t0 + 100,
          output: medium,
        },
      },
      {
        type: 'step.end',
        step: {
          id: 'h-error',
          run_id: 'heavy',
          type: 'tool',
          started_at: t0 + 101,
          status: 'failed',
          error: { message: medium },
        },
      },
    ];
    for (let i = 0; i < events.length; i += 5) {
      const batch = { events: events.slice(i, i + 5) };
      expect((await t.request('POST', '/api/v1/ingest', batch)).statusCode).toBe(200);
    }
    const detail = await get<RunWithSteps>('/api/v1/runs/heavy?include=steps');
    expect(detail.steps.length).toBeGreaterThan(1);
    expect(detail.steps.length).toBeLessThan(18);
    expect(detail.steps_next_cursor).toEqual(expect.any(String));
    const steps = [...detail.steps];
    let cursor: string | null = detail.steps_next_cursor ?? null;
    while (cursor) {
      const page: StepList = await get<StepList>(`/api/v1/runs/heavy/steps?cursor=${cursor}`);
      expect(page.steps.length).toBeGreaterThan(0);
      steps.push(...page.steps);
      cursor = page.next_cursor;
    }
    expect(steps.map((s) => s.id)).toEqual([
      ...heavySteps.map((e) => e.step.id),
      'h-medium',
      'h-error',
    ]);
    steps.slice(0, 18).forEach((s, i) => {
      expect(s.input).toBe(big(i));
      expect(s.output).toBe(big(i + 100));
    });
    expect(steps[18]!.output).toBe(medium);
    expect(steps[19]!.error).toEqual({ message: medium });
    // the timeline carries no payloads, and names an error too large to carry by its size
    const timeline = await get<Timeline>('/api/v1/runs/heavy/timeline');
    const ended = timeline.events.filter((e) => e.type === 'STEP_ENDED');
    expect(ended).toHaveLength(20);
    expect(JSON.stringify(timeline).length).toBeLessThan(100_000);
    expect(ended.find((e) => e.data.step_id === 'h-error')!.data.error).toEqual({
      message: expect.stringMatching(/^an error of 1000\d\d bytes/),
    });

    // runs are listed within the same budget
    const runEvents = Array.from({ length: 18 }, (_, i) => ({
      type: 'run.end',
      run: {
        id: `heavy-run-${String(i).padStart(2, '0')}`,
        agent_id: 'heavy-agent',
        status: 'succeeded',
        input: big(i),
        output: big(i + 100),
        started_at: t0 + i,
        ended_at: t0 + i + 1,
      },
    }));
    for (let i = 0; i < runEvents.length; i += 5) {
      const batch = { events: runEvents.slice(i, i + 5) };
      expect((await t.request('POST', '/api/v1/ingest', batch)).statusCode).toBe(200);
    }
    const list = await get<RunList>('/api/v1/runs?agent_id=heavy-agent&limit=50');
    expect(list).toMatchObject({ total: 18, has_more: false });
    expect(list.runs.map((r) => r.id)).toEqual(runEvents.map((e) => e.run.id).reverse());
    // a page of runs keeps its rows (offset paging counts them): the fields past its budget
    // come truncated, with a preview, and the run itself has them whole
    // 8 MiB of them whole: four runs of 1.9 MB
    list.runs.slice(0, 4).forEach((r, i) => expect(r.output).toBe(big(117 - i)));
    expect(list.runs[4]!.output).toMatchObject({ [TRUNCATED_MARKER]: true });
    const oldest = list.runs[17]!;
    expect(oldest.input).toEqual({
      [TRUNCATED_MARKER]: true,
      original_size: 950_002,
      preview: expect.stringMatching(/^"0:x{1997}$/),
    });
    expect((await get<Run>(`/api/v1/runs/${oldest.id}`)).input).toBe(big(0));
  });
});

describe('cursors', () => {
  it('give back what they were made of, ids with colons included, and refuse the other kind', () => {
    const run = { sortAt: 1_772_359_200_000, id: 'otel:trace:1' };
    expect(decodeCursor(encodeCursor(run))).toEqual(run);
    const step = { at: 1_772_359_200_000, seq: 7, id: 'span:a1' };
    expect(decodeStepCursor(encodeStepCursor(step))).toEqual(step);
    expect(() => decodeStepCursor(encodeCursor({ sortAt: 5, id: 'plain' }))).toThrow(
      /query.cursor/,
    );
  });
});
