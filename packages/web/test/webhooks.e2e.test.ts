// Webhooks in Settings in a real browser: an endpoint created (its secret shown once), a test
// ping, a run's failure delivered to a real local receiver and listed, paused, deleted; an
// agent's budget reached, delivered and listed with the agent.

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Dialog, Page } from 'playwright-core';
import type { WebhookEndpoint } from '@runlog/core';
import { call, ingest, type Api } from './seed.js';
import { browserSuite, overflowOf, screenshot, signedIn, type SignedIn } from './browser.js';

browserSuite('webhooks in Settings in a real browser', () => {
  const web = signedIn();
  let server: SignedIn['server'];
  let api: Api;
  let page: Page;
  const received: { headers: IncomingHttpHeaders; body: { type: string; data: unknown } }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) as never });
      res.writeHead(200).end('ok');
    });
  });
  let url = '';

  beforeAll(async () => {
    ({ server, api, page } = web);
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/runlog-hook`;
  }, 120_000);
  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const list = async () =>
    (await call<{ webhooks: WebhookEndpoint[] }>(api, 'GET', '/webhooks')).body.webhooks;

  it('creates an endpoint, sends a test, lists a delivery, pauses and deletes it', async () => {
    await page.goto(`${server.url}/settings`);
    const section = page.getByRole('region', { name: 'Webhooks' });
    await section.getByText('No webhooks').waitFor();

    // a URL that is not one says so, and cannot be sent
    await page.getByLabel('Endpoint URL').fill('ftp://example.com/hook');
    await section.getByText('Use an http:// or https:// URL.').waitFor();
    expect(await page.getByRole('button', { name: 'Add webhook' }).isDisabled()).toBe(true);

    await page.getByLabel('Endpoint URL').fill(url);
    await page.getByLabel('Agents').fill('hooked-bot');
    await page.getByLabel('Description').fill('on-call relay');
    // failed and timed out by default; succeeded added
    expect(await page.getByLabel('Failed').isChecked()).toBe(true);
    expect(await page.getByLabel('Timed out').isChecked()).toBe(true);
    await page.getByLabel('Succeeded').check();
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const secret = await page.getByTestId('new-webhook-secret').textContent();
    expect(secret).toMatch(/^whsec_/);
    const [hook] = await list();
    expect(hook).toMatchObject({
      url,
      events: ['run.failed', 'run.timed_out', 'run.succeeded'],
      agent_ids: ['hooked-bot'],
      description: 'on-call relay',
      enabled: true,
    });
    expect(hook!.secret_prefix).toBe(secret!.slice(0, 12));
    // the form is empty again, for the next one
    expect(await page.getByLabel('Endpoint URL').inputValue()).toBe('');
    const row = section.locator(`tr[data-webhook="${hook!.id}"]`);
    expect(await row.locator('td').nth(1).textContent()).toBe('FailedTimed outSucceeded');
    expect(await row.locator('td').nth(2).textContent()).toBe('hooked-bot');
    expect(await row.getByText('none yet').count()).toBe(1);
    await screenshot(page, 'webhooks-created');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('new-webhook-secret').waitFor({ state: 'detached' });

    // Send test: the receiver gets a ping, the row says how it answered
    await page.getByRole('button', { name: `Send a test to ${url}` }).click();
    await row.getByText(/^Test: Answered 200 in \d+ ms$/).waitFor();
    expect(received.map((r) => r.body.type)).toEqual(['ping']);
    expect(received[0]!.headers['runlog-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    await row.locator('.status-badge[data-status="delivered"]').waitFor();

    // a run of the agent fails: the server's deliverer posts it
    await ingest(api, [
      {
        type: 'run.end',
        run: {
          id: 'hooked-run-1',
          agent_id: 'hooked-bot',
          status: 'failed',
          error: { message: 'boom' },
        },
      },
    ]);
    await expect.poll(() => received.length, { timeout: 15_000 }).toBe(2);
    expect(received[1]!.body).toMatchObject({
      type: 'run.failed',
      data: { run: { id: 'hooked-run-1', status: 'failed' } },
    });
    await page.getByRole('button', { name: `Deliveries to ${url}` }).click();
    const deliveries = page.getByRole('table', { name: `Deliveries to ${url}` });
    const first = deliveries.locator('tbody tr').first();
    await first.getByText('run.failed').waitFor();
    expect(await first.getByRole('link', { name: 'hooked-run-1' }).getAttribute('href')).toBe(
      '/runs/hooked-run-1',
    );
    expect(await first.locator('.status-badge').textContent()).toBe('delivered');
    expect(await deliveries.locator('tbody tr').count()).toBe(2);
    await screenshot(page, 'webhooks-deliveries');
    // Resend: the same delivery (id and body) posted again
    const deliveryId = received[1]!.headers['runlog-webhook-id'] as string;
    await first.getByRole('button', { name: `Resend run.failed delivery ${deliveryId}` }).click();
    await expect.poll(() => received.length, { timeout: 15_000 }).toBe(3);
    expect(received[2]!.headers['runlog-webhook-id']).toBe(deliveryId);
    expect(received[2]!.body).toEqual(received[1]!.body);

    // on a small phone nothing runs off the side: the table becomes cards, URLs cut
    const wide = page.viewportSize()!;
    await page.setViewportSize({ width: 360, height: 740 });
    try {
      await expect.poll(() => overflowOf(page)).toBe(0);
      await screenshot(page, 'webhooks-phone');
    } finally {
      await page.setViewportSize(wide);
    }

    // paused: the row says so, and so does the server
    await page.getByRole('button', { name: `Pause ${url}` }).click();
    await row.getByText('Paused', { exact: true }).waitFor();
    expect((await list())[0]!.enabled).toBe(false);
    await page.getByRole('button', { name: `Resume ${url}` }).click();
    await row.getByText('Yes', { exact: true }).waitFor();

    // deleted after a confirmation that says what goes
    const questions: string[] = [];
    const answer = (d: Dialog) => {
      questions.push(d.message());
      void d.accept();
    };
    page.on('dialog', answer);
    await page.getByRole('button', { name: `Delete webhook ${url}` }).click();
    await section.getByText('No webhooks').waitFor();
    page.off('dialog', answer);
    expect(questions).toEqual([
      `Delete the webhook to ${url}? It stops getting events at once, and its pending deliveries are dropped.`,
    ]);
    expect(await list()).toEqual([]);
  });

  it("tells of an agent's 24 h budget reached, and lists the delivery with the agent", async () => {
    await page.goto(`${server.url}/settings`);
    const section = page.getByRole('region', { name: 'Webhooks' });
    await section.getByText('No webhooks').waitFor();
    await page.getByLabel('Endpoint URL').fill(url);
    await page.getByLabel('Failed').uncheck();
    await page.getByLabel('Timed out').uncheck();
    await page.getByLabel('Agent over budget').check();
    await page.getByLabel('Agent back under budget').check();
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page.getByRole('button', { name: 'Done' }).click();
    const [hook] = await list();
    expect(hook!.events).toEqual(['agent.over_budget', 'agent.under_budget']);
    const row = section.locator(`tr[data-webhook="${hook!.id}"]`);
    expect(await row.locator('td').nth(1).textContent()).toBe(
      'Agent over budgetAgent back under budget',
    );

    // the agent's runs cost its budget: the server's budget watch tells the endpoint
    expect((await call(api, 'PUT', '/agents/budget-bot', { max_cost_usd_24h: 0.5 })).status).toBe(
      200,
    );
    await ingest(api, [
      { type: 'run.start', run: { id: 'budget-run-1', agent_id: 'budget-bot' } },
      { type: 'step.end', step: { id: 's', run_id: 'budget-run-1', type: 'llm', cost_usd: 0.75 } },
      { type: 'run.end', run: { id: 'budget-run-1', status: 'succeeded' } },
    ]);
    const told = () => received.filter((r) => r.body.type === 'agent.over_budget');
    await expect.poll(() => told().length, { timeout: 15_000 }).toBe(1);
    expect(told()[0]!.body.data).toMatchObject({
      agent: { id: 'budget-bot', max_cost_usd_24h: 0.5 },
      cost_usd_24h: 0.75,
    });
    await page.getByRole('button', { name: `Deliveries to ${url}` }).click();
    const deliveries = page.getByRole('table', { name: `Deliveries to ${url}` });
    const first = deliveries.locator('tbody tr').first();
    await first.getByText('agent.over_budget').waitFor();
    expect(await first.getByRole('link', { name: 'budget-bot' }).getAttribute('href')).toBe(
      '/agents/budget-bot',
    );
    await screenshot(page, 'webhooks-agent-budget');
  });
});
