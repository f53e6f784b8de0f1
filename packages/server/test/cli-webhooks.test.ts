import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreatedWebhook, WebhookDelivery, WebhookEndpoint } from '@runlog/core';
import { runCli } from './cli-fixtures.js';
import { describeEachDb, startTestServer } from './harness.js';
import { watchBudgetsOnce } from '../src/control/budget-watch.js';

/** `runlog` in process, its output captured. */
const cli = (env: NodeJS.ProcessEnv, args: string[]) => runCli(args, { env });

describeEachDb('runlog webhooks', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let env: NodeJS.ProcessEnv;
  const statuses: number[] = [];
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(statuses.shift() ?? 200).end('taken'));
  });
  let url = '';

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    server = await startTestServer(dialect, { background: false });
    env = { RUNLOG_URL: server.url, RUNLOG_API_KEY: server.adminKey };
  });
  afterAll(async () => {
    await server?.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('creates, lists, tests, pauses and deletes an endpoint', async () => {
    expect(await cli(env, ['webhooks', 'list'])).toMatchObject({
      code: 0,
      stdout: 'no webhooks; create one with: runlog webhooks create <url>\n',
    });
    const created = await cli(env, [
      'webhooks',
      'create',
      url,
      '--events',
      'run.failed,run.succeeded',
      '--agent',
      'cli-agent,other-agent',
      '--description',
      'pager',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const hook = JSON.parse(created.stdout) as CreatedWebhook;
    expect(hook).toMatchObject({
      url,
      events: ['run.failed', 'run.succeeded'],
      agent_ids: ['cli-agent', 'other-agent'],
      description: 'pager',
      enabled: true,
    });
    expect(hook.secret).toMatch(/^whsec_/);

    const text = await cli(env, ['webhooks', 'create', url]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /^created webhook \S+ → http:\/\/127\.0\.0\.1:\d+\/hook\n {2}events: run\.failed, run\.timed_out; agents: all\n {2}signing secret \(shown this once\): whsec_\S+\n$/,
    );
    const second = /created webhook (\S+)/.exec(text.stdout)![1]!;

    const listed = await cli(env, ['webhooks', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(hook.id);
    expect(listed.stdout).toContain('run.failed,run.succeeded');
    expect(listed.stdout).toContain('none yet');
    expect(listed.stdout).not.toContain(hook.secret);

    statuses.push(200);
    const ok = await cli(env, ['webhooks', 'test', hook.id]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ping \S+: answered 200 in \d+ ms\ntaken\n$/);
    statuses.push(500);
    const failed = await cli(env, ['webhooks', 'test', hook.id, '--json']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout.split('\n}\n')[0]! + '\n}')).toMatchObject({
      ok: false,
      status_code: 500,
    });

    const deliveries = await cli(env, ['webhooks', 'deliveries', hook.id, '--json']);
    expect(
      (JSON.parse(deliveries.stdout) as { deliveries: WebhookDelivery[] }).deliveries.map((d) => [
        d.event,
        d.status,
        d.last_status_code,
      ]),
    ).toEqual([
      ['ping', 'failed', 500],
      ['ping', 'delivered', 200],
    ]);
    const failedPing = (JSON.parse(deliveries.stdout) as { deliveries: WebhookDelivery[] })
      .deliveries[0]!;
    const redelivered = await cli(env, ['webhooks', 'redeliver', hook.id, failedPing.id]);
    expect(redelivered).toMatchObject({
      code: 0,
      stdout: `delivery ${failedPing.id} (ping) is due again now\n`,
    });
    // the server's deliverer is off here: sent by hand, the endpoint now taking it
    statuses.push(200);
    expect(await server.ctx.deliverer.deliverDue()).toBe(1);
    const table = await cli(env, ['webhooks', 'deliveries', hook.id, '--status', 'delivered']);
    expect(table.stdout).toMatch(/ping +- +delivered +1 +200/);

    const paused = await cli(env, ['webhooks', 'disable', hook.id]);
    expect(paused.stdout).toBe(`webhook ${hook.id} paused\n`);
    const list = await cli(env, ['webhooks', 'list', '--json']);
    const mine = (JSON.parse(list.stdout) as { webhooks: WebhookEndpoint[] }).webhooks;
    expect(mine.map((w) => [w.id, w.enabled])).toEqual([
      [hook.id, false],
      [second, true],
    ]);
    expect(mine[0]!.last_delivery).toMatchObject({ status: 'delivered', status_code: 200 });
    expect((await cli(env, ['webhooks', 'enable', hook.id])).stdout).toBe(
      `webhook ${hook.id} enabled\n`,
    );

    expect(await cli(env, ['webhooks', 'delete', hook.id])).toMatchObject({
      code: 0,
      stdout: `deleted webhook ${hook.id}\n`,
    });
    const again = await cli(env, ['webhooks', 'delete', hook.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not found|no webhook/i);
    await cli(env, ['webhooks', 'delete', second]);
  });

  it("lists an agent budget event's delivery with its agent", async () => {
    const created = await cli(env, [
      'webhooks',
      'create',
      url,
      '--events',
      'agent.over_budget,agent.under_budget',
      '--agent',
      'budget-cli',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const hook = JSON.parse(created.stdout) as CreatedWebhook;
    expect(hook.events).toEqual(['agent.over_budget', 'agent.under_budget']);
    const send = (method: string, path: string, body: unknown) =>
      fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await send('PUT', '/agents/budget-cli', { max_cost_usd_24h: 0.5 })).status).toBe(200);
    const ingested = await send('POST', '/ingest', {
      events: [
        { type: 'run.start', run: { id: 'budget-cli-run', agent_id: 'budget-cli' } },
        { type: 'step.end', step: { id: 's', run_id: 'budget-cli-run', type: 'llm', cost_usd: 1 } },
        { type: 'run.end', run: { id: 'budget-cli-run', status: 'succeeded' } },
      ],
    });
    expect(ingested.status).toBe(200);
    // the server's background jobs are off here: one pass of the budget watch by hand
    expect(await watchBudgetsOnce(server.ctx)).toBe(1);
    const table = await cli(env, ['webhooks', 'deliveries', hook.id]);
    expect(table.stdout).toMatch(/agent\.over_budget +agent budget-cli +pending +0/);
    await cli(env, ['webhooks', 'delete', hook.id]);
  });

  it('refuses bad input before asking the server, and a key that is not admin', async () => {
    const bad = await cli(env, ['webhooks', 'create', url, '--events', 'run.exploded']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--events must be one of run.failed, run.timed_out');
    for (const wrong of ['ftp://example.com', 'hooks.example.com/runlog']) {
      const refused = await cli(env, ['webhooks', 'create', wrong]);
      expect(refused.code, wrong).toBe(2);
      expect(refused.stderr).toContain(
        `<url> must be an http:// or https:// URL, not ${JSON.stringify(wrong)}`,
      );
    }
    const res = await fetch(`${server.url}/api/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'write' }),
    });
    const { key } = (await res.json()) as { key: string };
    const refused = await cli({ ...env, RUNLOG_API_KEY: key }, ['webhooks', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('admin');
  });
});
