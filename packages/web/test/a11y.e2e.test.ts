// Accessibility in a real browser: what a screen reader user is told that the eye sees.

import { expect, it } from 'vitest';
import { call, seedRuns } from './seed.js';
import { browserSuite, signedIn } from './browser.js';

browserSuite('accessibility in a real browser', () => {
  const web = signedIn();

  it('tells apart two agents of the same name in the Agent filters', async () => {
    for (const id of ['twin-bot', 'twin-bot-staging'])
      expect((await call(web.api, 'PUT', `/agents/${id}`, { name: 'Twin Bot' })).status).toBe(200);
    for (const [path, select] of [
      ['/runs', '#runs-agent'],
      ['/stats', '#stats-agent'],
    ] as const) {
      await web.page.goto(`${web.api.url}${path}`);
      const twins = web.page.locator(`${select} option`, { hasText: 'Twin Bot' });
      await expect.poll(() => twins.count()).toBe(2);
      expect(await twins.allTextContents()).toEqual([
        'Twin Bot (twin-bot)',
        'Twin Bot (twin-bot-staging)',
      ]);
    }
  });

  it('gives each Stats chart its figures as a table a screen reader reads', async () => {
    await seedRuns(web.api, [
      { id: 'a11y-ok', agent: 'charted', status: 'succeeded', ago: 60_000, durationMs: 2000 },
      { id: 'a11y-f1', agent: 'charted', status: 'failed', ago: 50_000, durationMs: 2000 },
      { id: 'a11y-f2', agent: 'charted', status: 'failed', ago: 40_000, durationMs: 2000 },
    ]);
    await web.page.goto(`${web.api.url}/stats?range=7d`);
    const byStatus = web.page
      .getByRole('region', { name: 'Runs by status' })
      .getByRole('table', { name: 'Runs per day stacked by status' });
    await byStatus.waitFor({ state: 'attached', timeout: 10_000 });
    const headers = await byStatus.getByRole('columnheader').allTextContents();
    expect(headers).toEqual([
      'Day',
      'Queued',
      'Running',
      'Succeeded',
      'Failed',
      'Cancelled',
      'Timed out',
    ]);
    // one row per day of the range, each named by its day; the failed runs counted in theirs
    const rows = byStatus.locator('tbody tr');
    expect(await rows.count()).toBeGreaterThanOrEqual(7);
    // (the viewer's own days: the first, six days before today on the browser's calendar)
    const firstDay = await web.page.evaluate(() => {
      const d = new Date();
      d.setDate(d.getDate() - 6);
      return d.toLocaleDateString(undefined, { dateStyle: 'medium' });
    });
    expect(await rows.first().getByRole('rowheader').textContent()).toBe(firstDay);
    const failed = await rows.evaluateAll((trs) =>
      trs.reduce((sum, tr) => sum + Number(tr.querySelectorAll('td')[3]?.textContent), 0),
    );
    expect(failed).toBe(2);
    // a line chart too, a day without finished runs said as such
    const failRate = web.page
      .getByRole('region', { name: 'Fail rate' })
      .getByRole('table', { name: 'Fail rate per day' });
    const cells = await failRate.locator('tbody td').allTextContents();
    expect(cells).toContain('67%');
    expect(cells).toContain('no data');
    // the tables are for screen readers: the page looks as before
    const box = await byStatus.locator('..').boundingBox();
    expect(box!.height).toBeLessThanOrEqual(1);
    expect(box!.width).toBeLessThanOrEqual(1);
  });

  it('says beside a model price why it cannot be saved, not only by a disabled Save', async () => {
    const { page } = web;
    await page.goto(`${web.api.url}/settings`);
    await page.getByLabel('Model', { exact: true }).fill('my-model');
    const input = page.getByLabel('Input $/Mtok', { exact: true });
    await input.fill('0,15');
    await page.getByLabel('Output $/Mtok', { exact: true }).fill('0.60');
    expect(await page.getByRole('button', { name: 'Save price' }).isDisabled()).toBe(true);
    const why = page.locator('#price-input-error');
    await why.waitFor({ timeout: 5000 });
    expect(await why.textContent()).toBe('Use a dot for decimals: 0.15');
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect(await input.getAttribute('aria-describedby')).toBe('price-input-error');
    await input.fill('0.15');
    await why.waitFor({ state: 'detached' });
    expect(await page.getByRole('button', { name: 'Save price' }).isDisabled()).toBe(false);
  });

  it('names a running step running, as it names a failed one failed', async () => {
    await seedRuns(web.api, [
      { id: 'tl-live', agent: 'stepper', status: 'running', ago: 5000, durationMs: 60_000 },
      { id: 'tl-fail', agent: 'stepper', status: 'failed', ago: 9000, durationMs: 2000 },
    ]);
    await web.page.goto(`${web.api.url}/agents/stepper/runs/tl-live`);
    const steps = web.page.getByRole('list', { name: 'Steps' }).getByRole('button');
    await expect.poll(() => steps.count()).toBe(3);
    // the last step has a start and no end
    await web.page
      .getByRole('button', { name: /^LLM draft reply running \d/ })
      .waitFor({ timeout: 10_000 });
    expect(await web.page.getByRole('button', { name: /running/ }).count()).toBe(1);
    await web.page.goto(`${web.api.url}/agents/stepper/runs/tl-fail`);
    await web.page
      .getByRole('button', { name: /^LLM draft reply failed \d/ })
      .waitFor({ timeout: 10_000 });
    expect(
      await web.page
        .getByRole('list', { name: 'Steps' })
        .getByRole('button', { name: /running/ })
        .count(),
    ).toBe(0);
  });

  it('says when Copy could not copy a new key, shown once, instead of doing nothing', async () => {
    const { page } = web;
    await page.goto(`${web.api.url}/settings`);
    await page.getByLabel('Name').fill('lan-worker');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByTestId('new-key').waitFor();
    // over plain http to another host (RUNLOG_HOST=0.0.0.0) a browser has no clipboard API
    await page.evaluate(() =>
      Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true }),
    );
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page
      .locator('.toast-error', { hasText: 'Copying needs https' })
      .waitFor({ timeout: 5000 });
    await page.getByTestId('new-key').waitFor();
  });
});
