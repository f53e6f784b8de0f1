import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  readableError,
  type Agent,
  type CreatedWebhook,
  type Run,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '@runlog/core';
import { findAgent, saveAgent } from '../src/agents/agents.repository.js';
import { agentRequests, instancesOnOneDatabase } from './control-helpers.js';
import { describeEachDb, startTestServer, waitFor } from './harness.js';
import { watchBudgetsOnce } from '../src/control/budget-watch.js';
import { sweepOnce } from '../src/control/sweeper.js';
import { Receiver, validSignature, type Received } from './webhook-receiver.js';

interface BudgetData {
  agent: { id: string; name: string; max_cost_usd_24h: number | null };
  cost_usd_24h: number;
  queued_runs: number;
  over_budget_since: string;
}

/** Long enough for several budget watch passes (every 50 ms here) on each instance. */
const SEVERAL_PASSES_MS = 400;

describeEachDb("webhooks on an agent's 24 h budget", (dialect) => {
  let seq = 0;
  const agentName = (base: string) => `${base}-${Date.now().toString(36)}-${seq++}`;
  // on PostgreSQL two instances watch the same agents: each change is told once
  const { server, call } = instancesOnOneDatabase(dialect, {
    schedulerIntervalMs: 50,
    webhookPollMs: 50,
  });
  const { put, enqueue, spend } = agentRequests(call);
  const receiver = new Receiver();
  beforeAll(() => receiver.start());
  afterAll(() => receiver.stop());

  const createHook = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/api/v1/webhooks', { url: receiver.url, ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as CreatedWebhook;
  };
  /** What the receiver took about `agent`, in order. */
  const heard = (agent: string): Received[] =>
    receiver.received.filter(
      (r) =>
        (r.json.data as Partial<BudgetData>).agent?.id === agent ||
        r.json.data.run?.agent_id === agent,
    );
  const settle = () => new Promise((r) => setTimeout(r, SEVERAL_PASSES_MS));

  it('tells an endpoint once when the spend reaches the budget, and once when it is back under', async () => {
    const agent = agentName('watched');
    const hook = await createHook({
      events: ['agent.over_budget', 'agent.under_budget'],
      agent_ids: [agent],
    });
    // an endpoint of the default events (run outcomes) hears nothing of budgets
    const runsOnly = await createHook({ agent_ids: [agent] });
    await put(agent, { name: 'Watched', max_cost_usd_24h: 0.01 });
    const held = await enqueue(agent);
    await spend(agent, 0.004);
    await settle();
    expect(heard(agent)).toEqual([]);

    // reaching it: one agent.over_budget, however many passes and instances see it
    const overAt = Date.now();
    await spend(agent, 0.006);
    const [over] = await waitFor(
      () => heard(agent).length > 0 && heard(agent),
      'agent.over_budget',
    );
    await settle();
    expect(heard(agent)).toHaveLength(1);
    expect(over!.json.type).toBe('agent.over_budget');
    expect(
      validSignature(hook.secret, over!.headers['runlog-signature'] as string, over!.body),
    ).toBe(true);
    expect(over!.headers['runlog-webhook-id']).toBe(over!.json.id);
    const data = over!.json.data as unknown as BudgetData;
    expect(data.agent).toEqual({ id: agent, name: 'Watched', max_cost_usd_24h: 0.01 });
    expect(data.cost_usd_24h).toBeCloseTo(0.01, 9);
    expect(data.queued_runs).toBe(1);
    expect(Date.parse(data.over_budget_since)).toBeGreaterThanOrEqual(overAt - 1000);

    // a save that read the agent before the watch told it (a PUT, an import) keeps what the
    // watch wrote: it is not told again
    const stored = await findAgent(server().ctx.db, 'default', agent);
    await saveAgent(server().ctx.db, { ...stored!, over_budget_at: null, name: 'Watched' });
    await settle();
    expect(heard(agent)).toHaveLength(1);

    // listed with the agent it is about, and no run
    const listed = await call('GET', `/api/v1/webhooks/${hook.id}/deliveries`);
    const deliveries = (listed.body as { deliveries: WebhookDelivery[] }).deliveries;
    expect(deliveries.map((d) => [d.event, d.agent_id, d.run_id, d.status])).toEqual([
      ['agent.over_budget', agent, null, 'delivered'],
    ]);
    // the agent says since when, as the event did
    const watched = (await call('GET', `/api/v1/agents/${agent}`)).body as Agent;
    expect(watched.over_budget_since).toBe(data.over_budget_since);
    const endpoint = (await call('GET', `/api/v1/webhooks/${hook.id}`)).body as WebhookEndpoint;
    expect(endpoint.last_delivery?.event).toBe('agent.over_budget');
    const quiet = await call('GET', `/api/v1/webhooks/${runsOnly.id}/deliveries`);
    expect((quiet.body as { deliveries: WebhookDelivery[] }).deliveries).toEqual([]);

    // a higher budget: back under, since the time it went over; the held run can go
    await put(agent, { max_cost_usd_24h: 1 });
    await waitFor(() => heard(agent).length === 2, 'agent.under_budget');
    const under = heard(agent)[1]!.json;
    expect(under.type).toBe('agent.under_budget');
    expect(under.data).toMatchObject({
      agent: { id: agent, max_cost_usd_24h: 1 },
      queued_runs: 1,
      over_budget_since: data.over_budget_since,
    });

    // lowered under the spend: over again; cleared: under again, without a budget
    await put(agent, { max_cost_usd_24h: 0.005 });
    await waitFor(() => heard(agent).length === 3, 'the second agent.over_budget');
    expect(heard(agent)[2]!.json.type).toBe('agent.over_budget');
    await call('POST', `/api/v1/runs/${held}/cancel`);
    await put(agent, { max_cost_usd_24h: null });
    await waitFor(() => heard(agent).length === 4, 'the second agent.under_budget');
    await settle();
    expect(heard(agent).map((r) => r.json.type)).toEqual([
      'agent.over_budget',
      'agent.under_budget',
      'agent.over_budget',
      'agent.under_budget',
    ]);
    expect(((await call('GET', `/api/v1/agents/${agent}`)).body as Agent).over_budget_since).toBe(
      null,
    );
    const cleared = heard(agent)[3]!.json.data as unknown as BudgetData;
    expect(cleared).toMatchObject({ agent: { id: agent, max_cost_usd_24h: null }, queued_runs: 0 });
    // what it spent still, though it has no budget to hold it to
    expect(cleared.cost_usd_24h).toBeCloseTo(0.01, 9);
  });

  it("keeps to an endpoint's agents, and run deliveries name their agent too", async () => {
    const spender = agentName('spender');
    const other = agentName('other');
    const hook = await createHook({
      events: ['run.failed', 'agent.over_budget'],
      agent_ids: [other],
    });
    await put(spender, { max_cost_usd_24h: 0.01 });
    await put(other, { max_cost_usd_24h: 0.01 });
    await spend(spender, 0.02);
    const failed = `failed-${seq++}`;
    const res = await call('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: failed, agent_id: other } },
        { type: 'run.end', run: { id: failed, status: 'failed', error: { message: 'boom' } } },
      ],
    });
    expect(res.status).toBe(200);
    await waitFor(() => heard(other).length > 0, "the other agent's failed run");
    await settle();
    expect(heard(spender)).toEqual([]);
    const listed = await call('GET', `/api/v1/webhooks/${hook.id}/deliveries`);
    expect(
      (listed.body as { deliveries: WebhookDelivery[] }).deliveries.map((d) => [
        d.event,
        d.agent_id,
        d.run_id,
      ]),
    ).toEqual([['run.failed', other, failed]]);
  });

  it('stores the events an endpoint takes in one order, agent events after run events', async () => {
    const hook = await createHook({
      events: ['agent.under_budget', 'run.failed', 'agent.over_budget'],
    });
    expect(hook.events).toEqual(['run.failed', 'agent.over_budget', 'agent.under_budget']);
    const refused = await call('POST', '/api/v1/webhooks', {
      url: receiver.url,
      events: ['agent.over_limit'],
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('body.events');
    await call('DELETE', `/api/v1/webhooks/${hook.id}`);
  });
});

describeEachDb('the budget watch', (dialect) => {
  // background jobs off: each pass is made by hand
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer(dialect, { background: false });
  });
  afterAll(() => server?.close());
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it('goes through every agent with a budget, a page at a time, each change once', async () => {
    const { put, spend } = agentRequests(call);
    const agents = ['paged-a', 'paged-b', 'paged-c', 'paged-d', 'paged-e'];
    for (const agent of agents) {
      await put(agent, { max_cost_usd_24h: 0.001 });
      await spend(agent, 0.002);
    }
    const since = async () =>
      Promise.all(
        agents.map(
          async (a) => ((await call('GET', `/api/v1/agents/${a}`)).body as Agent).over_budget_since,
        ),
      );
    // two agents a page: three pages, every agent told
    expect(await watchBudgetsOnce(server.ctx, Date.now(), 2)).toBe(5);
    expect((await since()).every((s) => s !== null)).toBe(true);
    expect(await watchBudgetsOnce(server.ctx, Date.now(), 2)).toBe(0);
    for (const agent of agents) await put(agent, { max_cost_usd_24h: null });
    expect(await watchBudgetsOnce(server.ctx, Date.now(), 2)).toBe(5);
    expect(await since()).toEqual(agents.map(() => null));
    // no budget, and under it: no longer watched
    expect(await watchBudgetsOnce(server.ctx, Date.now(), 2)).toBe(0);
  });

  it("says of a queued run that timed out that its agent's budget held it", async () => {
    const { put, spend, enqueue } = agentRequests(call);
    await put('held-long', { max_cost_usd_24h: 0.001, timeout_ms: 1000 });
    await spend('held-long', 0.002);
    const queued = await enqueue('held-long');
    expect(await watchBudgetsOnce(server.ctx)).toBe(1);
    // a sweep two seconds on: past the run's timeout
    expect(await sweepOnce(server.ctx, Date.now() + 2000)).toBe(1);
    const run = (await call('GET', `/api/v1/runs/${queued}`)).body as Run;
    expect(run.status).toBe('timed_out');
    expect(readableError(run.error!).message).toBe(
      "timed out after timeout_ms (1000 ms) while still queued: no worker claimed it in time (its agent's runs of the last 24 hours cost its budget, max_cost_usd_24h, so none was handed it)",
    );
  });
});
