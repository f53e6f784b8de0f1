import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent } from '@runlog/core';
import { createTestApp, describeEachDb, ingestOk, json, type TestApp } from '../../test/harness.js';

/** Each series of a Prometheus text answer by `name{labels}`, its HELP and TYPE lines checked. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.trimEnd().split('\n')) {
    const type = /^# TYPE (\w+) (gauge|counter)$/.exec(line);
    if (type) {
      typed.add(type[1]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^(\w+)(\{[^}]*\})? (-?[\d.e+-]+)$/.exec(line);
    expect(m, line).not.toBeNull();
    expect(typed.has(m![1]!), `${m![1]} has no TYPE line before it`).toBe(true);
    series.set(`${m![1]}${m![2] ?? ''}`, Number(m![3]));
  }
  return series;
}

describeEachDb('GET /api/v1/metrics', (dialect) => {
  let t: TestApp;
  let readKey: string;
  let otherKey: string;
  const now = Date.now();
  const ended = (id: string, agent: string, status: string): IngestEvent =>
    ({
      type: 'run.end',
      run: { id, agent_id: agent, status, started_at: now - 60_000, ended_at: now - 50_000 },
    }) as IngestEvent;
  /** An llm step of 120 tokens costing `cost`. */
  const call = (runId: string, cost: number): IngestEvent => ({
    type: 'step.end',
    step: {
      id: `${runId}-llm`,
      run_id: runId,
      type: 'llm',
      name: 'answer',
      input_tokens: 100,
      output_tokens: 20,
      cost_usd: cost,
      started_at: now - 58_000,
      ended_at: now - 55_000,
    },
  });

  beforeAll(async () => {
    t = await createTestApp(dialect);
    readKey = json<{ key: string }>(await t.request('POST', '/api/v1/keys', { scope: 'read' })).key;
    const other = await t.request('POST', '/api/v1/projects', { id: 'other', name: 'Other' });
    otherKey = json<{ admin_key: { key: string } }>(other).admin_key.key;
    await ingestOk(t, [
      ended('m-1', 'triager', 'succeeded'),
      call('m-1', 0.5),
      ended('m-2', 'triager', 'succeeded'),
      call('m-2', 0.25),
      ended('m-3', 'triager', 'failed'),
      ended('m-4', 'triager', 'timed_out'),
      ended('m-5', 'support.bot:2', 'cancelled'),
      { type: 'run.start', run: { id: 'm-6', agent_id: 'triager', started_at: now - 1000 } },
      // two days ago: outside the last 24 hours
      {
        type: 'run.end',
        run: {
          id: 'm-old',
          agent_id: 'triager',
          status: 'failed',
          started_at: now - 2 * 86_400_000,
          ended_at: now - 2 * 86_400_000 + 1000,
        },
      },
    ]);
    // an agent nothing ran yet, and two queued runs of the triager
    expect((await t.request('PUT', '/api/v1/agents/idle', { name: 'Idle' })).statusCode).toBe(200);
    const capped = await t.request('PUT', '/api/v1/agents/triager', { max_concurrency: 3 });
    expect(capped.statusCode).toBe(200);
    for (let i = 0; i < 2; i++)
      expect((await t.request('POST', '/api/v1/agents/triager/runs', {})).statusCode).toBe(202);
    await ingestOk(t, [ended('o-1', 'theirs', 'failed')], otherKey);
  });
  afterAll(() => t.close());

  it("answers the project's agents in Prometheus text format with a read key", async () => {
    const res = await t.request('GET', '/api/v1/metrics', undefined, readKey);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parse(res.body);
    const at = (name: string, agent: string, more = '') =>
      s.get(`${name}{project="default",agent="${agent}"${more}}`);
    expect(at('runlog_agent_queued_runs', 'triager')).toBe(2);
    expect(at('runlog_agent_queue_oldest_age_seconds', 'triager')).toBeGreaterThanOrEqual(0);
    expect(at('runlog_agent_queue_oldest_age_seconds', 'triager')).toBeLessThan(60);
    expect(at('runlog_agent_delayed_runs', 'triager')).toBe(0);
    expect(at('runlog_agent_running_runs', 'triager')).toBe(1);
    // the cap, for the agents that have one only: no number says "no limit"
    expect(at('runlog_agent_max_concurrency', 'triager')).toBe(3);
    expect(at('runlog_agent_max_concurrency', 'idle')).toBeUndefined();
    expect(at('runlog_agent_runs_24h', 'triager', ',status="succeeded"')).toBe(2);
    expect(at('runlog_agent_runs_24h', 'triager', ',status="failed"')).toBe(1);
    expect(at('runlog_agent_runs_24h', 'triager', ',status="timed_out"')).toBe(1);
    expect(at('runlog_agent_runs_24h', 'triager', ',status="running"')).toBe(1);
    expect(at('runlog_agent_runs_24h', 'triager', ',status="queued"')).toBe(2);
    // failed and timed out over the four that ended (the run of two days ago is not counted)
    expect(at('runlog_agent_fail_rate_24h', 'triager')).toBe(0.5);
    expect(at('runlog_agent_unretried_failures_24h', 'triager')).toBe(2);
    expect(at('runlog_agent_tokens_24h', 'triager')).toBe(240);
    expect(at('runlog_agent_cost_usd_24h', 'triager')).toBe(0.75);
    // an agent whose runs were all cancelled fails none; an idle agent has every series, at 0
    expect(at('runlog_agent_runs_24h', 'support.bot:2', ',status="cancelled"')).toBe(1);
    expect(at('runlog_agent_fail_rate_24h', 'support.bot:2')).toBe(0);
    expect(at('runlog_agent_queued_runs', 'idle')).toBe(0);
    expect(at('runlog_agent_runs_24h', 'idle', ',status="succeeded"')).toBe(0);
    // another project's agents are not there
    expect([...s.keys()].some((k) => k.includes('theirs'))).toBe(false);
  });

  it('counts out a failure once a run retries it', async () => {
    const retry = await t.request('POST', '/api/v1/runs/m-3/retry');
    expect(retry.statusCode, retry.body).toBe(201);
    const s = parse((await t.request('GET', '/api/v1/metrics')).body);
    expect(s.get('runlog_agent_unretried_failures_24h{project="default",agent="triager"}')).toBe(1);
    // still a failure of the last 24 hours
    expect(s.get('runlog_agent_runs_24h{project="default",agent="triager",status="failed"}')).toBe(
      1,
    );
  });

  it("gives another project's key its own agents only", async () => {
    const res = await t.request('GET', '/api/v1/metrics', undefined, otherKey);
    expect(res.statusCode, res.body).toBe(200);
    const s = parse(res.body);
    expect(s.get('runlog_agent_runs_24h{project="other",agent="theirs",status="failed"}')).toBe(1);
    expect([...s.keys()].some((k) => k.includes('triager'))).toBe(false);
  });

  it('counts a retry waiting its delay as delayed, not queued', async () => {
    const put = await t.request('PUT', '/api/v1/agents/flaky', {
      retry: { max_attempts: 3, delay_ms: 3_600_000 },
    });
    expect(put.statusCode, put.body).toBe(200);
    const run = json<{ id: string }>(await t.request('POST', '/api/v1/agents/flaky/runs', {}));
    const claim = await t.request('POST', '/api/v1/workers/claim', {
      agents: ['flaky'],
      worker_id: 'w-metrics',
      wait_ms: 0,
    });
    expect(claim.statusCode, claim.body).toBe(200);
    await ingestOk(t, [
      { type: 'run.end', run: { id: run.id, status: 'failed', ended_at: Date.now() } },
    ]);
    const s = parse((await t.request('GET', '/api/v1/metrics')).body);
    expect(s.get('runlog_agent_delayed_runs{project="default",agent="flaky"}')).toBe(1);
    expect(s.get('runlog_agent_queued_runs{project="default",agent="flaky"}')).toBe(0);
    // its policy retries it: not a failure left standing
    expect(s.get('runlog_agent_unretried_failures_24h{project="default",agent="flaky"}')).toBe(0);
    expect(s.get('runlog_agent_runs_24h{project="default",agent="flaky",status="failed"}')).toBe(1);
  });

  it('needs a key', async () => {
    const res = await t.request('GET', '/api/v1/metrics', undefined, null);
    expect(res.statusCode).toBe(401);
  });
});
