// Pausing and resuming an agent's schedule from the Agents page in a real browser: the
// button beside Settings, the row saying paused instead of the next run, a read key, a phone.

import { beforeAll, expect, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import type { Agent } from '@runlog/core';
import { call, seedRuns, type Api } from './seed.js';
import {
  browserSuite,
  openBrowser,
  overflowOf,
  screenshot,
  logIn,
  signedIn,
  type SignedIn,
} from './browser.js';

const MIN = 60_000;

browserSuite('pausing a schedule in a real browser', () => {
  const web = signedIn();
  let server: SignedIn['server'];
  let api: Api;
  let page: Page;

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

  beforeAll(async () => {
    ({ server, api, page } = web);
    await seedRuns(api, [
      { id: 'cron-1', agent: 'cron-bot', status: 'succeeded', ago: 30 * MIN, durationMs: 4000 },
      { id: 'plain-1', agent: 'plain-bot', status: 'succeeded', ago: 20 * MIN, durationMs: 2000 },
    ]);
    const scheduled = await call(api, 'PUT', '/agents/cron-bot', {
      schedule: { cron: '0 9 * * *', timezone: 'UTC' },
    });
    expect(scheduled.status).toBe(200);
  }, 120_000);

  it('pauses the schedule beside Settings, the row saying paused, and resumes it', async () => {
    await openAgent('cron-bot');
    const schedule = row('cron-bot').locator('.agent-schedule');
    expect(await schedule.textContent()).toMatch(/^next run in \d+/);
    const pause = page.getByRole('button', { name: 'Pause schedule' });
    expect(await pause.getAttribute('title')).toBe('Queue no run on 0 9 * * * (UTC) until resumed');

    const sent = page.waitForRequest(isPut('cron-bot'));
    await pause.click();
    // only the flag is sent: a cron changed meanwhile elsewhere is kept
    expect((await sent).postDataJSON()).toEqual({ schedule: { paused: true } });
    await expect.poll(() => schedule.textContent()).toBe('schedule paused');
    expect(await schedule.getAttribute('title')).toBe(
      'Schedule: 0 9 * * * (UTC), paused: it queues no run until resumed',
    );
    await expect
      .poll(() => page.locator('.toast').last().textContent())
      .toContain('Schedule of cron-bot paused: it queues no run until resumed');
    const resume = page.getByRole('button', { name: 'Resume schedule' });
    await resume.waitFor();
    const paused = await getAgent('cron-bot');
    expect(paused.schedule).toEqual({ cron: '0 9 * * *', timezone: 'UTC', paused: true });
    expect(paused.next_run_at).toBeNull();
    await screenshot(page, 'schedule-paused', false);

    // what the server holds, not what the page remembers: a reload still says paused, and
    // the settings dialog too
    await openAgent('cron-bot');
    expect(await row('cron-bot').locator('.agent-schedule').textContent()).toBe('schedule paused');
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: /^Settings of / });
    expect(await dialog.getByTestId('settings-next-run').textContent()).toBe(
      'This schedule is paused: it queues no run until resumed.',
    );
    await dialog.getByRole('button', { name: 'Cancel' }).click();

    const resumed = page.waitForRequest(isPut('cron-bot'));
    await page.getByRole('button', { name: 'Resume schedule' }).click();
    expect((await resumed).postDataJSON()).toEqual({ schedule: { paused: false } });
    await expect
      .poll(() => row('cron-bot').locator('.agent-schedule').textContent())
      .toMatch(/^next run in \d+/);
    await page.getByRole('button', { name: 'Pause schedule' }).waitFor();
    const running = await getAgent('cron-bot');
    expect(running.schedule?.paused).toBe(false);
    expect(Date.parse(running.next_run_at!)).toBeGreaterThan(Date.now());
  });

  it('keeps the keyboard on the button while the change is sent, to undo it with Enter', async () => {
    await openAgent('cron-bot');
    const slow = (url: URL) => url.pathname === '/api/v1/agents/cron-bot';
    // the answer takes a moment, as on a slow network: the button is busy meanwhile
    await page.route(slow, async (route) => {
      await new Promise((done) => setTimeout(done, 400));
      await route.continue();
    });
    try {
      const focused = () => page.evaluate(() => document.activeElement?.textContent ?? null);
      await page.getByRole('button', { name: 'Pause schedule' }).focus();
      await page.keyboard.press('Enter');
      await page.getByRole('button', { name: 'Resume schedule' }).waitFor();
      expect(await focused()).toBe('Resume schedule');
      await page.keyboard.press('Enter');
      await page.getByRole('button', { name: 'Pause schedule' }).waitFor();
      expect(await focused()).toBe('Pause schedule');
      expect((await getAgent('cron-bot')).schedule?.paused).toBe(false);
    } finally {
      await page.unroute(slow);
      // running, as the tests after this one expect, whatever this one came to
      await call(api, 'PUT', '/agents/cron-bot', { schedule: { paused: false } });
    }
  });

  it('offers no Pause to an agent without a schedule', async () => {
    await openAgent('plain-bot');
    await page.getByRole('button', { name: 'Settings', exact: true }).waitFor();
    expect(await page.getByRole('button', { name: /schedule$/ }).count()).toBe(0);
  });

  it('offers a read key the button disabled, saying why', async () => {
    const reader = await call<{ key: string }>(api, 'POST', '/keys', {
      name: 'pause looker',
      scope: 'read',
    });
    expect(reader.status).toBe(201);
    const other = await openBrowser();
    try {
      const p = other.page;
      await logIn(p, server.url, reader.body.key);
      await openAgent('cron-bot', p);
      const pause = p.getByRole('button', { name: 'Pause schedule' });
      await expect
        .poll(() => pause.getAttribute('title'))
        .toBe('Needs a write or admin key to pause the schedule');
      expect(await pause.isDisabled()).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('fits a phone with the button beside Settings and Run now', async () => {
    const phone = await page.context().newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await openAgent('cron-bot', phone);
      await phone.getByRole('button', { name: 'Pause schedule' }).waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'schedule-pause-phone', false);
    } finally {
      await phone.close();
    }
  });
});
