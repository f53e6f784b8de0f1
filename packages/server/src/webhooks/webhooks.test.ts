import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  CreatedWebhook,
  IngestEvent,
  Run,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookTestResult,
} from '@runlog/core';
import { createTestApp, describeEachDb, ingestOk, json, type TestApp } from '../../test/harness.js';
import { Receiver, validSignature } from '../../test/webhook-receiver.js';
import { closeContext, createContext } from '../server.js';
import { signWebhook } from './webhook-deliverer.js';
import { Retention } from '../retention/retention.js';
import { sweepOnce } from '../control/sweeper.js';

const end = (id: string, agent: string, status: string): IngestEvent =>
  ({ type: 'run.end', run: { id, agent_id: agent, status } }) as IngestEvent;

const RETRY_MS = 5_000;

describeEachDb('outgoing webhooks', (dialect) => {
  let t: TestApp;
  const receiver = new Receiver();
  let seq = 0;
  /** A fresh agent id per test: deliveries of other tests' endpoints stay apart. */
  const agent = () => `wh-agent-${++seq}`;
  const created: string[] = [];

  beforeAll(async () => {
    await receiver.start();
    t = await createTestApp(dialect, { webhookRetryDelaysMs: [RETRY_MS, RETRY_MS] });
  });
  afterAll(async () => {
    await t?.close();
    await receiver.stop();
  });
  afterEach(async () => {
    // each test's endpoints go: the next one's runs reach only its own
    for (const id of created.splice(0)) await t.request('DELETE', `/api/v1/webhooks/${id}`);
    receiver.reset();
  });

  async function createHook(body: Record<string, unknown>): Promise<CreatedWebhook> {
    const res = await t.request('POST', '/api/v1/webhooks', { url: receiver.url, ...body });
    expect(res.statusCode, res.body).toBe(201);
    const hook = json<CreatedWebhook>(res);
    created.push(hook.id);
    return hook;
  }

  async function deliveries(id: string): Promise<WebhookDelivery[]> {
    const res = await t.request('GET', `/api/v1/webhooks/${id}/deliveries`);
    expect(res.statusCode, res.body).toBe(200);
    return json<{ deliveries: WebhookDelivery[] }>(res).deliveries;
  }

  async function countDeliveryRows(): Promise<number> {
    const row = await t.ctx.db.kysely
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  it('delivers a failed run once, signed, with the run as GET /runs/:id answers it', async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a], description: 'on-call' });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{40,}$/);
    expect(hook.events).toEqual(['run.failed', 'run.timed_out']);
    await ingestOk(t, [
      { type: 'run.start', run: { id: `${a}-r1`, agent_id: a, input: { pr: 42 } } },
      { type: 'step.end', step: { id: 's1', run_id: `${a}-r1`, type: 'tool', name: 'grep' } },
      {
        type: 'run.end',
        run: { id: `${a}-r1`, status: 'failed', error: { message: 'tool crashed' } },
      },
    ]);
    // written with the run's end, before anything is sent
    const [pending] = await deliveries(hook.id);
    expect(pending).toMatchObject({ event: 'run.failed', run_id: `${a}-r1`, status: 'pending' });
    expect(pending!.attempts).toBe(0);

    expect(await t.ctx.deliverer.deliverDue()).toBe(1);
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['runlog-webhook-id']).toBe(pending!.id);
    expect(validSignature(hook.secret, got.headers['runlog-signature'] as string, got.body)).toBe(
      true,
    );
    expect(validSignature('whsec_other', got.headers['runlog-signature'] as string, got.body)).toBe(
      false,
    );
    const t0 = Number(/t=(\d+)/.exec(got.headers['runlog-signature'] as string)![1]);
    expect(Math.abs(t0 - Date.now() / 1000)).toBeLessThan(60);
    expect(got.json.id).toBe(pending!.id);
    expect(got.json.type).toBe('run.failed');
    const run = await t.request('GET', `/api/v1/runs/${a}-r1`);
    expect(got.json.data.run).toEqual(json(run));
    expect(got.json.data.run).not.toHaveProperty('steps');

    const [done] = await deliveries(hook.id);
    expect(done).toMatchObject({ status: 'delivered', attempts: 1, last_status_code: 200 });
    expect(done!.delivered_at).not.toBeNull();
    expect(done!.next_attempt_at).toBeNull();
    // nothing more is due
    expect(await t.ctx.deliverer.deliverDue(Date.now() + 86_400_000)).toBe(0);
    expect(receiver.received).toHaveLength(1);
    const listed = json<{ webhooks: WebhookEndpoint[] }>(
      await t.request('GET', '/api/v1/webhooks'),
    );
    const mine = listed.webhooks.find((w) => w.id === hook.id)!;
    expect(mine).not.toHaveProperty('secret');
    expect(mine.secret_prefix).toBe(hook.secret.slice(0, 12));
    expect(mine.last_delivery).toMatchObject({ status: 'delivered', event: 'run.failed' });
    const metrics = await t.request('GET', '/metrics', undefined, null);
    expect(metrics.body).toMatch(/runlog_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
  });

  it("says whether the agent's retry policy retries the failed run, so only the last failure need alert", async () => {
    const a = agent();
    await createHook({ agent_ids: [a] });
    expect(
      (await t.request('PUT', `/api/v1/agents/${a}`, { retry: { max_attempts: 2, delay_ms: 0 } }))
        .statusCode,
    ).toBe(200);
    const claimAndFail = async (): Promise<string> => {
      const res = await t.request('POST', '/api/v1/workers/claim', { agents: [a] });
      expect(res.statusCode).toBe(200);
      const id = json<Run>(res).id;
      await ingestOk(t, [end(id, a, 'failed')]);
      return id;
    };
    const first = json<Run>(await t.request('POST', `/api/v1/agents/${a}/runs`, {}));
    expect(await claimAndFail()).toBe(first.id);
    const second = await claimAndFail();
    await t.ctx.deliverer.deliverDue();
    const byRun = new Map(receiver.received.map((r) => [r.json.data.run?.id, r.json.data]));
    // the first failure was retried: its retry is the second run; the second is the last
    expect(byRun.get(first.id)?.retry).toEqual({
      id: second,
      attempt: 2,
      queued_at: expect.any(String),
    });
    expect(byRun.get(second)?.retry).toBeNull();
  });

  it('tells of a run ending once: a replayed run.end delivers nothing more', async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a] });
    await ingestOk(t, [end(`${a}-r`, a, 'failed')]);
    await ingestOk(t, [end(`${a}-r`, a, 'timed_out')]);
    // a late step and metadata change the ended run, which stays failed: no new outcome
    await ingestOk(t, [
      { type: 'step.end', step: { id: 'late', run_id: `${a}-r`, type: 'llm', input_tokens: 5 } },
      { type: 'run.update', run: { id: `${a}-r`, metadata: { late: true } } },
    ]);
    const run = json<Run>(await t.request('GET', `/api/v1/runs/${a}-r`));
    expect(run).toMatchObject({ status: 'failed', step_count: 1 });
    await t.ctx.deliverer.deliverDue();
    expect(receiver.received.map((r) => r.json.data.run?.id)).toEqual([`${a}-r`]);
    expect(await deliveries(hook.id)).toHaveLength(1);
  });

  it('tries again after the backoff when the endpoint fails, and gives up after the last', async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a] });
    receiver.statuses = [500, 200];
    await ingestOk(t, [end(`${a}-r`, a, 'failed')]);
    const before = Date.now();
    await t.ctx.deliverer.deliverDue();
    let [d] = await deliveries(hook.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 500 });
    expect(d!.last_error).toBe('HTTP 500: answered 500');
    const next = Date.parse(d!.next_attempt_at!);
    expect(next).toBeGreaterThanOrEqual(before + RETRY_MS);
    // not before its time
    expect(await t.ctx.deliverer.deliverDue(next - 1)).toBe(0);
    expect(await t.ctx.deliverer.deliverDue(next)).toBe(1);
    [d] = await deliveries(hook.id);
    expect(d).toMatchObject({ status: 'delivered', attempts: 2, last_status_code: 200 });
    expect(receiver.received).toHaveLength(2);
    // the same delivery both times: a receiver dedupes by its id
    expect(new Set(receiver.received.map((r) => r.headers['runlog-webhook-id'])).size).toBe(1);

    // one that never takes it: three attempts (two retries), then failed for good
    receiver.reset();
    receiver.statuses = [503];
    await ingestOk(t, [end(`${a}-r2`, a, 'failed')]);
    let now = Date.now();
    for (let i = 0; i < 3; i++) {
      expect(await t.ctx.deliverer.deliverDue(now)).toBe(1);
      now += RETRY_MS * 2;
    }
    expect(await t.ctx.deliverer.deliverDue(now)).toBe(0);
    [d] = await deliveries(hook.id);
    expect(d).toMatchObject({ status: 'failed', attempts: 3, last_status_code: 503 });
    expect(d!.next_attempt_at).toBeNull();
    expect(receiver.received).toHaveLength(3);
    const metrics = await t.request('GET', '/metrics', undefined, null);
    expect(metrics.body).toMatch(/runlog_webhook_deliveries_total\{outcome="failed"\} [1-9]/);

    // sent again by hand once the endpoint is mended: the same id and body, due now
    receiver.statuses = [200];
    const again = await t.request('POST', `/api/v1/webhooks/${hook.id}/deliveries/${d!.id}/retry`);
    expect(again.statusCode, again.body).toBe(200);
    expect(json<WebhookDelivery>(again)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await t.ctx.deliverer.deliverDue()).toBe(1);
    expect(receiver.received.at(-1)!.body).toBe(receiver.received[0]!.body);
    [d] = await deliveries(hook.id);
    expect(d).toMatchObject({ status: 'delivered', attempts: 1, last_status_code: 200 });
    const missing = await t.request(
      'POST',
      `/api/v1/webhooks/${hook.id}/deliveries/no-such-delivery/retry`,
    );
    expect(missing.statusCode).toBe(404);
    expect(metrics.body).toMatch(/runlog_webhook_deliveries_total\{outcome="retrying"\} [1-9]/);
  });

  it('says why an endpoint that cannot be reached failed, and a slow one holds up no other', async () => {
    const a = agent();
    const b = agent();
    // a port nothing listens on: one a server just let go
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    const dead = await createHook({ agent_ids: [a], url: `http://127.0.0.1:${port}/x` });
    const live = await createHook({ agent_ids: [b] });
    await ingestOk(t, [end(`${a}-r`, a, 'failed'), end(`${b}-r`, b, 'failed')]);
    await t.ctx.deliverer.deliverDue();
    const [d] = await deliveries(dead.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status_code: null });
    expect(d!.last_error).toMatch(/ECONNREFUSED/);
    expect((await deliveries(live.id))[0]).toMatchObject({ status: 'delivered' });
  });

  it('sends only the events and agents an endpoint asked for', async () => {
    const a = agent();
    const b = agent();
    const hook = await createHook({ agent_ids: [a], events: ['run.succeeded', 'run.cancelled'] });
    await ingestOk(t, [
      end(`${a}-failed`, a, 'failed'),
      end(`${b}-ok`, b, 'succeeded'),
      end(`${a}-ok`, a, 'succeeded'),
    ]);
    // a queued run stopped by the control plane: cancelled in a change of its own
    const queued = await t.request('POST', `/api/v1/agents/${a}/runs`, { input: {} });
    expect(queued.statusCode, queued.body).toBe(202);
    const queuedId = json<Run>(queued).id;
    const cancel = await t.request('POST', `/api/v1/runs/${queuedId}/cancel`);
    expect(cancel.statusCode, cancel.body).toBe(200);
    await t.ctx.deliverer.deliverDue();
    expect(receiver.received.map((r) => [r.json.type, r.json.data.run?.id]).sort()).toEqual(
      [
        ['run.cancelled', queuedId],
        ['run.succeeded', `${a}-ok`],
      ].sort(),
    );
    expect(await deliveries(hook.id)).toHaveLength(2);
  });

  it('tells of runs the sweeper ends: a lapsed lease, a budget limit', async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a] });
    const limited = await t.request('PUT', `/api/v1/agents/${a}`, { max_steps: 1 });
    expect(limited.statusCode, limited.body).toBe(200);
    await ingestOk(t, [
      { type: 'run.start', run: { id: `${a}-silent`, agent_id: a } },
      { type: 'run.start', run: { id: `${a}-greedy`, agent_id: a } },
      { type: 'step.end', step: { id: 's1', run_id: `${a}-greedy`, type: 'tool' } },
      { type: 'step.end', step: { id: 's2', run_id: `${a}-greedy`, type: 'tool' } },
    ]);
    // the greedy run passed max_steps at once; the silent one's lease lapses later
    await sweepOnce(t.ctx);
    await sweepOnce(t.ctx, Date.now() + 60 * 60_000);
    await t.ctx.deliverer.deliverDue();
    const got = receiver.received.map((r) => [r.json.type, r.json.data.run?.id]);
    expect(got.sort()).toEqual(
      [
        ['run.failed', `${a}-greedy`],
        ['run.timed_out', `${a}-silent`],
      ].sort(),
    );
    expect(await deliveries(hook.id)).toHaveLength(2);
  });

  it('sends nothing to a paused endpoint, and holds nothing for it', async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a], enabled: false });
    expect(hook.enabled).toBe(false);
    await ingestOk(t, [end(`${a}-r1`, a, 'failed')]);
    const patched = await t.request('PATCH', `/api/v1/webhooks/${hook.id}`, { enabled: true });
    expect(json<WebhookEndpoint>(patched).enabled).toBe(true);
    await ingestOk(t, [end(`${a}-r2`, a, 'failed')]);
    await t.request('PATCH', `/api/v1/webhooks/${hook.id}`, { enabled: false });
    await ingestOk(t, [end(`${a}-r3`, a, 'failed')]);
    await t.ctx.deliverer.deliverDue();
    // r2's delivery waits while the endpoint is paused
    expect(receiver.received).toHaveLength(0);
    expect((await deliveries(hook.id)).map((d) => [d.run_id, d.status])).toEqual([
      [`${a}-r2`, 'pending'],
    ]);
    await t.request('PATCH', `/api/v1/webhooks/${hook.id}`, { enabled: true });
    await t.ctx.deliverer.deliverDue();
    expect(receiver.received.map((r) => r.json.data.run?.id)).toEqual([`${a}-r2`]);
  });

  it('writes no delivery for a project without webhooks', async () => {
    const a = agent();
    const rows = await countDeliveryRows();
    await ingestOk(t, [end(`${a}-r1`, a, 'failed'), end(`${a}-r2`, a, 'timed_out')]);
    expect(await countDeliveryRows()).toBe(rows);
    expect(await t.ctx.deliverer.deliverDue()).toBe(0);
    expect(receiver.received).toHaveLength(0);
  });

  it('starts delivering to an endpoint as soon as it is created, its runs keep their outcome after deletion', async () => {
    const a = agent();
    // the write path caches the project's endpoints: a creation must reach it at once
    await ingestOk(t, [end(`${a}-before`, a, 'failed')]);
    const hook = await createHook({ agent_ids: [a] });
    await ingestOk(t, [end(`${a}-after`, a, 'failed')]);
    expect((await deliveries(hook.id)).map((d) => d.run_id)).toEqual([`${a}-after`]);
    // deleted: its pending deliveries go with it, and no new ones are written
    const del = await t.request('DELETE', `/api/v1/webhooks/${hook.id}`);
    expect(del.statusCode).toBe(204);
    created.splice(created.indexOf(hook.id), 1);
    const rows = await countDeliveryRows();
    await ingestOk(t, [end(`${a}-gone`, a, 'failed')]);
    expect(await countDeliveryRows()).toBe(rows);
    await t.ctx.deliverer.deliverDue();
    expect(receiver.received).toHaveLength(0);
    expect((await t.request('GET', `/api/v1/webhooks/${hook.id}`)).statusCode).toBe(404);
    expect((await t.request('DELETE', `/api/v1/webhooks/${hook.id}`)).statusCode).toBe(404);
  });

  it("deletes deliveries older than the project's retention", async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a] });
    await ingestOk(t, [end(`${a}-old`, a, 'failed'), end(`${a}-new`, a, 'failed')]);
    await t.ctx.db.kysely
      .updateTable('webhook_deliveries')
      .set({ created_at: Date.now() - 31 * 86_400_000 })
      .where('run_id', '=', `${a}-old`)
      .execute();
    await new Retention(t.ctx).runOnce();
    expect((await deliveries(hook.id)).map((d) => d.run_id)).toEqual([`${a}-new`]);
  });

  it('sends a signed ping on test and answers what the endpoint answered', async () => {
    const hook = await createHook({});
    receiver.statuses = [418];
    let res = await t.request('POST', `/api/v1/webhooks/${hook.id}/test`);
    expect(res.statusCode, res.body).toBe(200);
    let result = json<WebhookTestResult>(res);
    expect(result).toMatchObject({
      ok: false,
      status_code: 418,
      response_body: 'answered 418',
      error: 'HTTP 418: answered 418',
    });
    expect(result.delivery).toMatchObject({ event: 'ping', status: 'failed', attempts: 1 });
    receiver.statuses = [204];
    res = await t.request('POST', `/api/v1/webhooks/${hook.id}/test`);
    result = json<WebhookTestResult>(res);
    expect(result).toMatchObject({ ok: true, status_code: 204, error: null });
    const ping = receiver.received[1]!;
    expect(ping.json.type).toBe('ping');
    expect(ping.json.data.webhook).toMatchObject({ id: hook.id, url: receiver.url });
    expect(validSignature(hook.secret, ping.headers['runlog-signature'] as string, ping.body)).toBe(
      true,
    );
    // recorded, never retried
    expect((await deliveries(hook.id)).map((d) => d.status)).toEqual(['delivered', 'failed']);
    expect(await t.ctx.deliverer.deliverDue(Date.now() + 86_400_000)).toBe(0);
  });

  it('refuses bad input naming the field, and writes nothing', async () => {
    const before = json<{ webhooks: unknown[] }>(await t.request('GET', '/api/v1/webhooks'));
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'ftp://example.com/x' }, 'body.url'],
      [{ url: 'not a url' }, 'body.url'],
      [{ url: 'https://me:secret@hooks.example.com/x' }, 'body.url'],
      [{}, 'body.url'],
      [{ url: receiver.url, events: ['run.exploded'] }, 'body.events.0'],
      [{ url: receiver.url, events: [] }, 'body.events'],
      [{ url: receiver.url, agent_ids: [] }, 'body.agent_ids'],
      [{ url: receiver.url, agent_ids: ['has space'] }, 'body.agent_ids.0'],
      [{ url: receiver.url, enabled: 'yes' }, 'body.enabled'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request('POST', '/api/v1/webhooks', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      const details = json<{ error: { details: { field: string }[] } }>(res).error.details;
      expect(
        details.map((d) => d.field),
        JSON.stringify(body),
      ).toContain(field);
    }
    const after = json<{ webhooks: unknown[] }>(await t.request('GET', '/api/v1/webhooks'));
    expect(after.webhooks).toHaveLength(before.webhooks.length);
    const hook = await createHook({});
    const res = await t.request('PATCH', `/api/v1/webhooks/${hook.id}`, { url: 'javascript:x' });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('"field":"body.url"');
    const same = json<WebhookEndpoint>(await t.request('GET', `/api/v1/webhooks/${hook.id}`));
    expect(same.url).toBe(receiver.url);
  });

  it('is for admins only', async () => {
    const hook = await createHook({});
    for (const scope of ['read', 'write']) {
      const key = json<{ key: string }>(await t.request('POST', '/api/v1/keys', { scope })).key;
      for (const [method, url, body] of [
        ['GET', '/api/v1/webhooks', undefined],
        ['POST', '/api/v1/webhooks', { url: receiver.url }],
        ['GET', `/api/v1/webhooks/${hook.id}`, undefined],
        ['PATCH', `/api/v1/webhooks/${hook.id}`, { enabled: false }],
        ['DELETE', `/api/v1/webhooks/${hook.id}`, undefined],
        ['POST', `/api/v1/webhooks/${hook.id}/test`, undefined],
        ['GET', `/api/v1/webhooks/${hook.id}/deliveries`, undefined],
        ['POST', `/api/v1/webhooks/${hook.id}/deliveries/x/retry`, undefined],
      ] as const) {
        const res = await t.request(method, url, body, key);
        expect(res.statusCode, `${scope} ${method} ${url}`).toBe(403);
      }
    }
    expect(receiver.received).toHaveLength(0);
    expect(
      json<WebhookEndpoint>(await t.request('GET', `/api/v1/webhooks/${hook.id}`)).enabled,
    ).toBe(true);
  });

  it("keeps projects apart: another project's endpoint is not found, its runs do not reach ours", async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a] });
    const res = await t.request('POST', '/api/v1/projects', { id: `p-${a}`, name: 'Other' });
    expect(res.statusCode, res.body).toBe(201);
    const key = json<{ admin_key: { key: string } }>(res).admin_key.key;
    for (const [method, url] of [
      ['GET', `/api/v1/webhooks/${hook.id}`],
      ['PATCH', `/api/v1/webhooks/${hook.id}`],
      ['DELETE', `/api/v1/webhooks/${hook.id}`],
      ['POST', `/api/v1/webhooks/${hook.id}/test`],
      ['GET', `/api/v1/webhooks/${hook.id}/deliveries`],
    ] as const) {
      const other = await t.request(
        method,
        url,
        method === 'PATCH' ? { enabled: false } : undefined,
        key,
      );
      expect(other.statusCode, `${method} ${url}`).toBe(404);
    }
    expect(
      json<{ webhooks: unknown[] }>(await t.request('GET', '/api/v1/webhooks', undefined, key))
        .webhooks,
    ).toEqual([]);
    // the same agent id in the other project: its failure is not ours to hear of
    await ingestOk(t, [end(`${a}-theirs`, a, 'failed')], key);
    await t.ctx.deliverer.deliverDue();
    expect(receiver.received).toHaveLength(0);
    expect(
      json<WebhookEndpoint>(await t.request('GET', `/api/v1/webhooks/${hook.id}`)).enabled,
    ).toBe(true);
  });

  it('leaves an attempt cut short by a shutdown pending, not counted, for the next start', async () => {
    const a = agent();
    const hook = await createHook({ agent_ids: [a] });
    receiver.hang = true;
    await ingestOk(t, [end(`${a}-r`, a, 'failed')]);
    const stop = t.ctx.deliverer.start(10);
    t.ctx.deliverer.kick();
    await expect.poll(() => receiver.received.length).toBe(1);
    await stop();
    const [d] = await deliveries(hook.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 0 });
    expect(Date.parse(d!.next_attempt_at!)).toBeLessThanOrEqual(Date.now());
  });

  (dialect === 'postgres' ? it : it.skip)(
    'sends each delivery once with two instances picking at once',
    async () => {
      const a = agent();
      const hook = await createHook({ agent_ids: [a] });
      const events = Array.from({ length: 40 }, (_, i) => end(`${a}-r${i}`, a, 'failed'));
      await ingestOk(t, events);
      // a second instance on the same database
      const { ctx: other } = await createContext({
        db: (t.ctx.config as { db: string }).db,
        port: 0,
        host: '127.0.0.1',
        retentionDays: 30,
        logLevel: 'silent',
        background: false,
      });
      try {
        const counts = await Promise.all([
          t.ctx.deliverer.deliverDue(),
          other.deliverer.deliverDue(),
          t.ctx.deliverer.deliverDue(),
          other.deliverer.deliverDue(),
        ]);
        expect(counts.reduce((x, y) => x + y, 0)).toBe(40);
      } finally {
        await closeContext(other);
      }
      const ids = receiver.received.map((r) => r.headers['runlog-webhook-id']);
      expect(ids).toHaveLength(40);
      expect(new Set(ids).size).toBe(40);
      const list = await deliveries(hook.id);
      expect(list.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    },
  );
});

describe('webhook signatures', () => {
  it('sign t.body with HMAC-SHA256 of the secret', () => {
    const body = '{"id":"x"}';
    const mac = createHmac('sha256', 'whsec_k').update(`1700000000.${body}`).digest('hex');
    expect(signWebhook('whsec_k', body, 1_700_000_000)).toBe(`t=1700000000,v1=${mac}`);
  });
});
