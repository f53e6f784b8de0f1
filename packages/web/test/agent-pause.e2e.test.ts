// Pausing and resuming an agent from the dashboard in a real browser: the question Pause asks
// (what happens, how many runs wait), the row's Paused badge and schedule text, a queued run's
// page saying it waits for its agent to be resumed (with Resume there), Retry saying a paused
// agent's retry waits, a pause made elsewhere shown live, and a phone.

import { beforeAll, expect, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import type { Agent, Run } from '@runlog/core';
import { call, seedRuns, type Api } from './seed.js';
import { browserSuite, overflowOf, screenshot, signedIn, type SignedIn } from './browser.js';

const MIN = 60_000;

browserSuite('pausing an agent in a real browser', () => {
  const web = signedIn();
  let server: SignedIn['server'];
  let api: Api;
  let page: Page;
  // the runs Run now queued for hold-bot: they wait, queued, while it is paused
  const queued: Run[] = [];

  const row = (agentId: string, p: Page = page) =>
    p.locator(`button.agent-row[data-agent-id="${agentId}"]`);
  const getAgent = async (agentId: string) => {
    const res = await call<Agent>(api, 'GET', `/agents/${agentId}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const openAgent = async (agentId: string, p: Page = page) => {
    await p.goto(`${server.url}/`);
    await row(agentId, p).click();
    await p.getByRole('region', { name: `Recent runs of ${agentId}` }).waitFor();
  };
  const isPut = (agentId: string) => (r: Request) =>
    r.method() === 'PUT' && new URL(r.url()).pathname === `/api/v1/agents/${agentId}`;
  const setPaused = async (agentId: string, paused: boolean) => {
    expect((await call(api, 'PUT', `/agents/${agentId}`, { paused })).status).toBe(200);
  };

  beforeAll(async () => {
    ({ server, api, page } = web);
    await seedRuns(api, [
      { id: 'hold-1', agent: 'hold-bot', status: 'failed', ago: 30 * MIN, durationMs: 4000 },
      { id: 'live-1', agent: 'live-bot', status: 'succeeded', ago: 20 * MIN, durationMs: 2000 },
    ]);
    const scheduled = await call(api, 'PUT', '/agents/hold-bot', {
      schedule: { cron: '0 9 * * *', timezone: 'UTC' },
    });
    expect(scheduled.status).toBe(200);
    for (const n of [1, 2]) {
      const res = await call<Run>(api, 'POST', '/agents/hold-bot/runs', { input: { n } });
      expect(res.status).toBe(202);
      queued.push(res.body);
    }
  }, 120_000);

  it('pauses an agent after saying what happens, badges it, and its queued run says so until resumed', async () => {
    await openAgent('hold-bot');
    const schedule = row('hold-bot').locator('.agent-schedule');
    expect(await schedule.textContent()).toMatch(/^next run in \d+/);
    expect(await row('hold-bot').locator('.agent-paused').count()).toBe(0);

    // the question first: nothing is sent until it is answered
    const puts: unknown[] = [];
    const onRequest = (r: Request) => {
      if (isPut('hold-bot')(r)) puts.push(r.postDataJSON());
    };
    page.on('request', onRequest);
    await page.getByRole('button', { name: 'Pause agent' }).click();
    const ask = page.getByRole('dialog', { name: 'Pause hold-bot?' });
    await ask.waitFor();
    const what = await ask.locator('[id$="-what"]').textContent();
    expect(what).toContain(
      'Workers are handed none of its queued runs until you resume it: they wait, queued, and so do runs queued meanwhile',
    );
    expect(what).toContain(
      'Its schedule (0 9 * * *) queues no run while it is paused; resumed, it goes on from its next slot.',
    );
    expect(what).toContain('Runs under way go on.');
    await expect
      .poll(() => ask.getByTestId('pause-agent-queued').textContent())
      .toBe('2 queued runs of it wait until it is resumed.');
    await screenshot(page, 'agent-pause-confirm', false);
    await ask.getByRole('button', { name: 'Cancel' }).click();
    await ask.waitFor({ state: 'hidden' });
    expect(puts).toEqual([]);
    expect((await getAgent('hold-bot')).paused_at).toBeNull();

    // paused: the flag alone is sent, the row badged, and no next run claimed
    const sent = page.waitForRequest(isPut('hold-bot'));
    await page.getByRole('button', { name: 'Pause agent' }).click();
    await ask.getByRole('button', { name: 'Pause agent' }).click();
    expect((await sent).postDataJSON()).toEqual({ paused: true });
    page.off('request', onRequest);
    const badge = row('hold-bot').locator('.agent-paused');
    await expect.poll(() => badge.textContent()).toBe('Paused');
    expect(await schedule.textContent()).toBe('no run while paused');
    await page.getByRole('button', { name: 'Resume agent' }).waitFor();
    await expect
      .poll(() => page.locator('.toast').last().textContent())
      .toContain('hold-bot paused: workers take none of its queued runs until it is resumed');
    const paused = await getAgent('hold-bot');
    expect(paused.paused_at).not.toBeNull();
    expect(paused.next_run_at).toBeNull();
    // its schedule's own pause is another thing, left as it was
    expect(paused.schedule?.paused).toBe(false);
    await screenshot(page, 'agent-paused-row', false);

    // what the server holds: a reload still badges it, and Run now says its run would wait
    await openAgent('hold-bot');
    await expect.poll(() => row('hold-bot').locator('.agent-paused').textContent()).toBe('Paused');
    await page.getByRole('button', { name: 'Run now' }).click();
    const runNow = page.getByRole('dialog', { name: 'Run hold-bot now' });
    expect(await runNow.getByTestId('run-now-paused').textContent()).toMatch(
      /^hold-bot is paused \(since .+\): the run waits queued until it is resumed\.$/,
    );
    await runNow.getByRole('button', { name: 'Cancel' }).click();

    // a queued run's page: it waits for the agent, not for a worker, and Resume is there
    const [first] = queued;
    await page.goto(`${server.url}/agents/hold-bot/runs/${first!.id}`);
    const notice = page.getByTestId('run-agent-paused');
    await expect
      .poll(() => notice.textContent())
      .toMatch(
        /^Waiting: its agent is paused\. hold-bot was paused .+: no worker is handed its runs until it is resumed\. Resume it to start this run\.$/,
      );
    expect(await notice.getByRole('link', { name: 'hold-bot' }).getAttribute('href')).toBe(
      '/?agent=hold-bot',
    );
    expect(await page.getByText('Waiting for a worker.').count()).toBe(0);
    await screenshot(page, 'agent-paused-run', false);

    // resumed from there, at once: the run waits for a worker again
    const resumed = page.waitForRequest(isPut('hold-bot'));
    await page.getByRole('button', { name: 'Resume agent' }).click();
    expect((await resumed).postDataJSON()).toEqual({ paused: false });
    await page.getByText('Waiting for a worker.').waitFor();
    expect(await notice.count()).toBe(0);
    const running = await getAgent('hold-bot');
    expect(running.paused_at).toBeNull();
    expect(Date.parse(running.next_run_at!)).toBeGreaterThan(Date.now());

    await openAgent('hold-bot');
    await expect.poll(() => schedule.textContent()).toMatch(/^next run in \d+/);
    expect(await row('hold-bot').locator('.agent-paused').count()).toBe(0);
    await page.getByRole('button', { name: 'Pause agent' }).waitFor();
  });

  it("says a paused agent's retry waits, in Retry's question and the bulk Retry's", async () => {
    await setPaused('hold-bot', true);
    try {
      await page.goto(`${server.url}/agents/hold-bot/runs/hold-1`);
      await page.getByRole('button', { name: 'Retry', exact: true }).click();
      const ask = page.getByRole('dialog', { name: 'Retry run hold-1?' });
      await ask.waitFor();
      expect(await ask.getByTestId('retry-agent-paused').textContent()).toBe(
        'hold-bot is paused: the retry waits queued until it is resumed (Agents).',
      );
      await ask.getByRole('button', { name: 'Cancel' }).click();
      await ask.waitFor({ state: 'hidden' });

      await page.goto(`${server.url}/runs?agent=hold-bot&status=failed`);
      await page.getByRole('checkbox', { name: 'Select run hold-1' }).check();
      await page.getByRole('button', { name: 'Retry 1 failed run' }).click();
      const bulk = page.getByRole('dialog', { name: 'Retry 1 failed run?' });
      await bulk.waitFor();
      await expect
        .poll(() => bulk.getByTestId('bulk-agent-paused').textContent())
        .toBe('hold-bot is paused: its retries wait queued until it is resumed (Agents).');
      await bulk.getByRole('button', { name: 'Cancel' }).click();

      await page.goto(`${server.url}/agents/hold-bot/runs/hold-1`);
      await page.getByRole('button', { name: 'Edit & retry' }).click();
      const edit = page.getByRole('dialog', { name: 'Retry with another input' });
      await expect
        .poll(() => edit.getByTestId('retry-agent-paused').textContent())
        .toBe('hold-bot is paused: the retry waits queued until it is resumed (Agents).');
      await edit.getByRole('button', { name: 'Cancel' }).click();
      const retries = await call<{ runs: Run[] }>(api, 'GET', '/runs?retry_of=hold-1');
      expect(retries.body.runs).toEqual([]);
    } finally {
      await setPaused('hold-bot', false);
    }
  });

  it('shows a pause made elsewhere (the CLI, another tab) live, and its resume', async () => {
    await page.goto(`${server.url}/`);
    const badge = row('live-bot').locator('.agent-paused');
    await row('live-bot').waitFor();
    expect(await badge.count()).toBe(0);
    await setPaused('live-bot', true);
    await expect.poll(() => badge.textContent()).toBe('Paused');
    expect((await getAgent('live-bot')).paused_at).not.toBeNull();
    await setPaused('live-bot', false);
    await expect.poll(() => badge.count()).toBe(0);
  });

  it('fits a phone with Pause beside the schedule, Settings and Run now, and its badge', async () => {
    await setPaused('live-bot', true);
    const phone = await page.context().newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await openAgent('hold-bot', phone);
      await phone.getByRole('button', { name: 'Pause agent' }).waitFor();
      await phone.getByRole('button', { name: 'Pause schedule' }).waitFor();
      await row('live-bot', phone).locator('.agent-paused').waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'agent-pause-phone', false);

      await phone.getByRole('button', { name: 'Pause agent' }).click();
      const ask = phone.getByRole('dialog', { name: 'Pause hold-bot?' });
      await ask.getByTestId('pause-agent-queued').waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'agent-pause-confirm-phone', false);
      await ask.getByRole('button', { name: 'Cancel' }).click();
    } finally {
      await phone.close();
      await setPaused('live-bot', false);
    }
  });
});
