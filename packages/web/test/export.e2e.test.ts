// Export in a real browser: the runs a filtered Runs page shows, downloaded as CSV and as JSON
// Lines, hold exactly those runs, and the Export menu fits a phone's screen.

import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import type { Download, Page } from 'playwright-core';
import type { Run, RunList } from '@runlog/core';
import { call, seedRuns, type SeedRun } from './seed.js';
import { readCsv } from '../../server/test/csv.js';
import { browserSuite, overflowOf, screenshot, signedIn } from './browser.js';

const SECOND = 1000;

/** Chooses an Export menu item and waits for the file it downloads. */
async function download(page: Page, choose: () => Promise<void>): Promise<Download> {
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), choose()]);
  return file;
}

async function contents(file: Download): Promise<string> {
  return readFile((await file.path())!, 'utf8');
}

browserSuite('exporting runs in a real browser', () => {
  const web = signedIn();
  const exportButton = (page: Page) => page.getByRole('button', { name: 'Export runs' });
  const exportMenu = (page: Page) => page.getByRole('menu', { name: 'Export runs' });

  // the filtered agent's runs say what a CSV must quote: commas, quotes, line breaks
  const kept: SeedRun[] = [
    {
      id: 'exp-kept-1',
      agent: 'export-kept',
      status: 'succeeded',
      ago: 50 * SECOND,
      durationMs: 900,
    },
    {
      id: 'exp-kept-2',
      agent: 'export-kept',
      status: 'failed',
      ago: 40 * SECOND,
      durationMs: 1200,
      error: 'upstream said "no", then\nhung up, twice',
    },
    {
      id: 'exp-kept-3',
      agent: 'export-kept',
      status: 'succeeded',
      ago: 30 * SECOND,
      durationMs: 700,
      input: { message: 'Refund, please: "order 42"\nthanks' },
    },
  ];
  const others: SeedRun[] = [
    {
      id: 'exp-other-1',
      agent: 'export-other',
      status: 'succeeded',
      ago: 45 * SECOND,
      durationMs: 800,
    },
    {
      id: 'exp-other-2',
      agent: 'export-other',
      status: 'failed',
      ago: 35 * SECOND,
      durationMs: 600,
      error: 'x',
    },
  ];
  // newest first, as the list shows them
  const keptIds = ['exp-kept-3', 'exp-kept-2', 'exp-kept-1'];

  it('downloads the runs the filtered list shows, as CSV and as JSON Lines', async () => {
    const { api, page } = web;
    await seedRuns(api, [...kept, ...others]);
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${api.url}/runs`);
    await page.locator('tr[data-run-id="exp-other-1"]').waitFor();
    await page.getByLabel('Agent').selectOption('export-kept');
    await page.waitForURL(/[?&]agent=export-kept(&|$)/);
    const rows = page.locator('tr[data-run-id]');
    await expect.poll(() => rows.count()).toBe(3);

    // the menu says what the file holds
    await exportButton(page).click();
    const menu = exportMenu(page);
    await menu.waitFor();
    const note = page.locator('.menu-note');
    await expect.poll(() => note.textContent()).toBe('All 3 matching runs, newest first.');
    expect(await menu.getByRole('menuitem').allTextContents()).toEqual(['CSV', 'JSON Lines']);
    await screenshot(page, 'runs-export-menu', false);

    const csv = await download(page, () => menu.getByRole('menuitem', { name: 'CSV' }).click());
    // named by the one agent it holds, and the day
    expect(csv.suggestedFilename()).toMatch(/^runs-export-kept-\d{4}-\d{2}-\d{2}\.csv$/);
    // the menu closes, the keyboard back on its button
    await menu.waitFor({ state: 'hidden' });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
      'Export runs',
    );
    const [header, ...records] = readCsv(await contents(csv));
    expect(header).toContain('id');
    expect(header).toContain('agent_id');
    const column = (name: string) => records.map((r) => r[header!.indexOf(name)]);
    expect(records.every((r) => r.length === header!.length)).toBe(true);
    expect(column('id')).toEqual(keptIds);
    expect(new Set(column('agent_id'))).toEqual(new Set(['export-kept']));

    // JSON Lines, chosen by keyboard: one run a line, as GET /runs lists it
    await exportButton(page).focus();
    await page.keyboard.press('Enter');
    await menu.waitFor();
    await page.keyboard.press('ArrowDown');
    const jsonl = await download(page, () => page.keyboard.press('Enter'));
    expect(jsonl.suggestedFilename()).toMatch(/^runs-export-kept-\d{4}-\d{2}-\d{2}\.jsonl$/);
    const lines = (await contents(jsonl)).split('\n').filter((l) => l !== '');
    const exported = lines.map((l) => JSON.parse(l) as Run);
    expect(exported.map((r) => r.id)).toEqual(keptIds);
    const listed = await call<RunList>(api, 'GET', '/runs?agent_id=export-kept');
    expect(exported).toEqual(listed.body.runs);
  });

  it('carries the status filter and the order the list shows', async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 1280, height: 860 });
    // the runs seeded above: the failed runs of both agents, the longest first
    await page.goto(`${api.url}/runs?status=failed&sort=duration`);
    const rows = page.locator('tr[data-run-id]');
    await expect.poll(() => rows.count()).toBe(2);
    await exportButton(page).click();
    await expect
      .poll(() => page.locator('.menu-note').textContent())
      .toBe('All 2 matching runs, longest first.');
    const jsonl = await download(page, () =>
      exportMenu(page).getByRole('menuitem', { name: 'JSON Lines' }).click(),
    );
    const ids = (await contents(jsonl))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as Run).id);
    expect(ids).toEqual(['exp-kept-2', 'exp-other-2']);
  });

  it('keeps the Export control and its menu on a phone screen', async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await page.goto(`${api.url}/runs?agent=export-kept`);
      await expect.poll(() => page.locator('tr[data-run-id]').count()).toBe(3);
      const button = exportButton(page);
      const b = (await button.boundingBox())!;
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width).toBeLessThanOrEqual(375);
      await button.click();
      const menu = page.locator('.menu');
      await exportMenu(page).waitFor();
      const m = (await menu.boundingBox())!;
      expect(m.x).toBeGreaterThanOrEqual(0);
      expect(m.x + m.width).toBeLessThanOrEqual(375);
      expect(await overflowOf(page)).toBe(0);
      await screenshot(page, 'runs-export-menu-375', false);
      // and it downloads there too
      const csv = await download(page, () =>
        exportMenu(page).getByRole('menuitem', { name: 'CSV' }).click(),
      );
      expect(readCsv(await contents(csv))).toHaveLength(1 + 3);
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
  });
});
