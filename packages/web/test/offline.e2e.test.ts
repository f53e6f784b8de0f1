// A dashboard left open while the server is away a moment: what it showed stays on screen,
// with a note that it could not be refreshed, and catches up once the server answers again.

import { expect, it } from 'vitest';
import type { Route } from 'playwright-core';
import { ingest } from './seed.js';
import { browserSuite, signedIn, screenshot } from './browser.js';

browserSuite('a refresh that fails while the page shows data', () => {
  const web = signedIn();

  it('keeps the agents on screen when a refresh fails, and catches up on Try again', async () => {
    const now = Date.now();
    await ingest(web.api, [
      {
        type: 'run.end',
        run: { id: 'steady-1', agent_id: 'steady-agent', status: 'succeeded', started_at: now },
      },
    ]);
    const { page } = web;
    await page.goto(`${web.api.url}/`);
    const steady = page.locator('button.agent-row[data-agent-id="steady-agent"]');
    await steady.waitFor();

    // the server cannot be reached; the WebSocket, opened before, still brings news
    const refuse = (route: Route) => route.abort('connectionrefused');
    await page.route('**/api/v1/agents*', refuse);
    // a run of an agent not listed yet: the page asks the server for the agents again
    await ingest(web.api, [
      {
        type: 'run.end',
        run: { id: 'newcomer-1', agent_id: 'newcomer-agent', status: 'succeeded' },
      },
    ]);
    const note = page.getByRole('alert').filter({ hasText: 'Could not refresh' });
    await note.waitFor({ timeout: 20_000 });
    expect(await steady.isVisible()).toBe(true);
    await screenshot(page, 'agents-refresh-failed');

    await page.unroute('**/api/v1/agents*', refuse);
    await note.getByRole('button', { name: 'Try again' }).click();
    await page.locator('button.agent-row[data-agent-id="newcomer-agent"]').waitFor();
    await expect.poll(() => note.count()).toBe(0);
  });
});
