// Stop on an orchestrator's page in a real browser: its sub-runs queued for workers (two
// agents) are listed under it and read cancelled as soon as it is stopped, live.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Run } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import { call, type Api } from './seed.js';
import { DIST, browserSuite, ensureBuilt, logIn, openBrowser, screenshot } from './browser.js';

browserSuite("an orchestrator's sub-runs in a real browser", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let api: Api;
  let page: Page;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer('sqlite', { webRoot: DIST });
    api = { url: server.url, key: server.adminKey };
    browser = await openBrowser();
    page = browser.page;
    await logIn(page, server.url, server.adminKey);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("lists a run's sub-runs and stops them with it", async () => {
    const ingest = await call(api, 'POST', '/ingest', {
      events: [
        {
          type: 'run.start',
          run: { id: 'plan-trip', agent_id: 'trip-planner', input: { city: 'Lisbon' } },
        },
      ],
    });
    expect(ingest.status).toBe(200);
    const queued = await call<{ runs: Run[] }>(api, 'POST', '/runs/enqueue', {
      runs: [
        { agent_id: 'flight-finder', parent_run_id: 'plan-trip', input: { to: 'LIS' } },
        { agent_id: 'hotel-finder', parent_run_id: 'plan-trip', input: { city: 'Lisbon' } },
        { agent_id: 'hotel-finder', parent_run_id: 'plan-trip', input: { city: 'Porto' } },
      ],
    });
    expect(queued.status).toBe(202);

    await page.goto(`${server.url}/runs/plan-trip`);
    const subRuns = page.locator('.sub-runs li');
    await expect.poll(() => subRuns.count()).toBe(3);
    expect(await subRuns.getByRole('img', { name: 'Queued' }).count()).toBe(3);
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByText('stop requested…').waitFor();
    // the sub-runs were cancelled in the same change; their updates come on their agents' topics
    await expect.poll(() => subRuns.getByRole('img', { name: 'Cancelled' }).count()).toBe(3);
    await screenshot(page, 'sub-runs-stopped');

    // a sub-run's page says why it was cancelled, and links its parent
    await subRuns.getByRole('link').first().click();
    await page.getByText('its parent run plan-trip was stopped').first().waitFor();
    expect(await page.getByText('Parent run').count()).toBeGreaterThan(0);
  });
});
