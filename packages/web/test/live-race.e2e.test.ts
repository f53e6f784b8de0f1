// A page's fetch and the live updates that come while it is on its way: the answer, read
// before them, must not be the state the page ends on.

import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { call, ingest } from './seed.js';
import { browserSuite, signedIn } from './browser.js';

/**
 * Answers the requests `match` takes as the server answered them, but only after `meanwhile`
 * ran and a second passed: the answer is read before what `meanwhile` changed.
 */
function holdAnswers(page: Page, match: (url: URL) => boolean, meanwhile: () => Promise<void>) {
  return page.route(match, async (route) => {
    const answer = await route.fetch();
    await meanwhile();
    await page.waitForTimeout(1000);
    await route.fulfill({ response: answer });
  });
}

/** Goes to `path` in the app, as a click on a link does: the socket stays open and subscribed. */
function openInApp(page: Page, path: string) {
  return page.evaluate((to) => {
    history.pushState({}, '', to);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
}

browserSuite('live updates during a fetch in a real browser', () => {
  const web = signedIn();

  it("keeps a run's end and step heard while its page's first answer was on its way", async () => {
    const { page, api } = web;
    const id = 'race-run';
    await ingest(api, [{ type: 'run.start', run: { id, agent_id: 'racer', input: { q: 1 } } }]);
    await page.goto(`${api.url}/runs`);
    await page.locator('tr', { hasText: id }).first().waitFor();
    // the server reads the running run; it ends, with a step, before the answer arrives
    await holdAnswers(
      page,
      (url) => url.pathname === `/api/v1/runs/${id}` && url.search.includes('include=steps'),
      () =>
        ingest(api, [
          { type: 'step.start', step: { id: 'race-step', run_id: id, type: 'tool', name: 'late' } },
          { type: 'step.end', step: { id: 'race-step', run_id: id, status: 'succeeded' } },
          { type: 'run.end', run: { id, status: 'succeeded', output: { ok: true } } },
        ]),
    );
    await openInApp(page, `/agents/racer/runs/${id}`);
    const badge = page.locator('.page-head .status-badge');
    await badge.waitFor();
    // before, the page showed the answer's Running (and no step) until it was loaded again
    await expect.poll(() => badge.getAttribute('data-status')).toBe('succeeded');
    await page.locator('.tl-row', { hasText: 'late' }).waitFor({ timeout: 5000 });
    await page.unroute(() => true);
  });

  it('keeps the end of a run heard while the Runs page was on its way', async () => {
    const { page, api } = web;
    const id = 'race-listed';
    await ingest(api, [{ type: 'run.start', run: { id, agent_id: 'racer', input: { q: 2 } } }]);
    await page.goto(`${api.url}/stats`);
    await page.getByRole('heading', { name: 'Stats' }).first().waitFor();
    await holdAnswers(
      page,
      (url) => url.pathname === '/api/v1/runs',
      () =>
        ingest(api, [
          { type: 'run.end', run: { id, status: 'failed', error: { message: 'late' } } },
        ]),
    );
    await openInApp(page, '/runs');
    const status = page.locator('tr', { hasText: id }).getByRole('img').first();
    await status.waitFor();
    // before, the row said Running (its duration ticking) until the page was loaded again
    await expect.poll(() => status.getAttribute('aria-label')).toBe('Failed');
    await page.unroute(() => true);
  });

  it('keeps out a run deleted while the Runs page was on its way', async () => {
    const { page, api } = web;
    const id = 'race-deleted';
    await ingest(api, [{ type: 'run.start', run: { id, agent_id: 'racer', input: { q: 3 } } }]);
    await page.goto(`${api.url}/stats`);
    await page.getByRole('heading', { name: 'Stats' }).first().waitFor();
    await holdAnswers(
      page,
      (url) => url.pathname === '/api/v1/runs',
      async () => expect((await call(api, 'DELETE', `/runs/${id}`)).status).toBe(204),
    );
    await openInApp(page, '/runs');
    await page.locator('tr', { hasText: 'race-listed' }).first().waitFor();
    // before, the deleted run stayed listed until the page was loaded again
    await expect.poll(() => page.locator('tr', { hasText: id }).count()).toBe(0);
    await page.unroute(() => true);
  });
});
