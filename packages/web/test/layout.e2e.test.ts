// Layout in a real browser: a run's sub-runs told apart by their ids, and an agent's recent
// runs keeping their actions on a phone's screen.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ingest, type Api } from './seed.js';
import { browserSuite, openSignedIn, screenshot } from './browser.js';

browserSuite('layout in a real browser', () => {
  let api: Api;
  let page: Page;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ api, page, close } = await openSignedIn());
  }, 120_000);

  afterAll(async () => {
    await close?.();
  });

  it('shows each sub-run id whole, the ids that differ only at their end', async () => {
    const now = Date.now();
    await ingest(api, [
      { type: 'run.end', run: { id: 'research-7', agent_id: 'researcher', status: 'succeeded' } },
      ...[0, 1, 2].map((i) => ({
        type: 'run.end',
        run: {
          id: `research-7-child-${i}`,
          agent_id: 'web-searcher',
          parent_run_id: 'research-7',
          status: 'succeeded',
          started_at: now - 5000 + i * 1000,
        },
      })),
    ]);
    const cut = () =>
      page
        .locator('.sub-runs li a')
        .evaluateAll((links) =>
          links.filter((a) => a.scrollWidth > a.clientWidth).map((a) => a.textContent),
        );
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 860 });
      await page.goto(`${api.url}/agents/researcher/runs/research-7`);
      await expect.poll(() => page.locator('.sub-runs li').count()).toBe(3);
      expect(await cut()).toEqual([]);
      // the agent keeps a place beside the id
      const agent = page.locator('.sub-runs li .truncate').first();
      expect((await agent.boundingBox())!.width).toBeGreaterThan(30);
      await screenshot(page, `sub-runs-${width}`);
    }
  });

  it("keeps the actions of an agent's recent runs on a phone's screen", async () => {
    const now = Date.now();
    await ingest(
      api,
      Array.from({ length: 3 }, (_, i) => ({
        type: 'run.end',
        run: {
          id: crypto.randomUUID(),
          agent_id: 'phone-panel',
          status: 'succeeded',
          started_at: now - 60_000 * (i + 1),
          ended_at: now - 60_000 * (i + 1) + 1800,
        },
      })),
    );
    await page.setViewportSize({ width: 375, height: 812 });
    await page.goto(`${api.url}/?agent=phone-panel`);
    const panel = page.getByRole('region', { name: 'Recent runs of phone-panel' });
    const menu = panel.getByRole('button', { name: /Actions for run/ }).first();
    await menu.waitFor();
    const wrap = panel.locator('.table-wrap');
    expect(await wrap.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
    const [box, within] = [await menu.boundingBox(), await wrap.boundingBox()];
    expect(box!.x + box!.width).toBeLessThanOrEqual(within!.x + within!.width);
    await screenshot(page, 'agent-panel-375');
  });
});
