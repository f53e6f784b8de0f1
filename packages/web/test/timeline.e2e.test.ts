// A run's timeline in a real browser, as a screen reader reads it.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { seedRuns, type Api } from './seed.js';
import { browserSuite, openSignedIn } from './browser.js';

browserSuite('timeline in a real browser', () => {
  let api: Api;
  let page: Page;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ api, page, close } = await openSignedIn());
  }, 120_000);

  afterAll(async () => {
    await close?.();
  });

  it('names a running step running, as it names a failed one failed', async () => {
    await seedRuns(api, [
      { id: 'tl-live', agent: 'stepper', status: 'running', ago: 5000, durationMs: 60_000 },
      { id: 'tl-fail', agent: 'stepper', status: 'failed', ago: 9000, durationMs: 2000 },
    ]);
    await page.goto(`${api.url}/agents/stepper/runs/tl-live`);
    const steps = page.getByRole('list', { name: 'Steps' }).getByRole('button');
    await expect.poll(() => steps.count()).toBe(3);
    // the last step has a start and no end
    await page
      .getByRole('button', { name: /^LLM draft reply running \d/ })
      .waitFor({ timeout: 10_000 });
    expect(await page.getByRole('button', { name: /running/ }).count()).toBe(1);
    await page.goto(`${api.url}/agents/stepper/runs/tl-fail`);
    await page
      .getByRole('button', { name: /^LLM draft reply failed \d/ })
      .waitFor({ timeout: 10_000 });
    expect(
      await page
        .getByRole('list', { name: 'Steps' })
        .getByRole('button', { name: /running/ })
        .count(),
    ).toBe(0);
  });
});
