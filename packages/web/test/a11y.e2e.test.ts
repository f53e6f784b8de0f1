// Accessibility in a real browser: what a screen reader user is told that the eye sees.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { seedRuns, type Api } from './seed.js';
import { browserSuite, openSignedIn } from './browser.js';

browserSuite('accessibility in a real browser', () => {
  let api: Api;
  let page: Page;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ api, page, close } = await openSignedIn());
  }, 120_000);

  afterAll(async () => {
    await close?.();
  });

  it('gives each Stats chart its figures as a table a screen reader reads', async () => {
    await seedRuns(api, [
      { id: 'a11y-ok', agent: 'charted', status: 'succeeded', ago: 60_000, durationMs: 2000 },
      { id: 'a11y-f1', agent: 'charted', status: 'failed', ago: 50_000, durationMs: 2000 },
      { id: 'a11y-f2', agent: 'charted', status: 'failed', ago: 40_000, durationMs: 2000 },
    ]);
    await page.goto(`${api.url}/stats?range=7d`);
    const byStatus = page
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
    expect(await rows.first().getByRole('rowheader').textContent()).toMatch(/\(UTC\)$/);
    const failed = await rows.evaluateAll((trs) =>
      trs.reduce((sum, tr) => sum + Number(tr.querySelectorAll('td')[3]?.textContent), 0),
    );
    expect(failed).toBe(2);
    // a line chart too, a day without finished runs said as such
    const failRate = page
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
});
