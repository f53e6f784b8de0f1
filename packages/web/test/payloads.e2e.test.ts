// A step's payloads in a real browser: an LLM call's messages read without a click each, a
// large nested value stays folded.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestServer } from '../../server/test/harness.js';
import { ingest, type Api } from './seed.js';
import { DIST, browserSuite, ensureBuilt, logIn, openBrowser, screenshot } from './browser.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

browserSuite('payloads in a real browser', () => {
  let server: Server;
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

  it("shows an LLM step's messages open, and a large nested value folded", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i, title: `issue ${i}` }));
    await ingest(api, [
      { type: 'run.start', run: { id: 'chat-1', agent_id: 'chatter' } },
      {
        type: 'step.end',
        step: {
          id: 'chat-1-llm',
          run_id: 'chat-1',
          type: 'llm',
          name: 'answer',
          model: 'gpt-4o-mini',
          input: {
            messages: [
              { role: 'system', content: 'Answer in one line.' },
              { role: 'user', content: 'Why is the build red?' },
            ],
            context: { search: { rows } },
          },
          output: 'A flaky test.',
        },
      },
      { type: 'run.end', run: { id: 'chat-1', status: 'succeeded' } },
    ]);
    await page.goto(`${server.url}/agents/chatter/runs/chat-1`);
    await page.locator('.tl-row[data-step-id="chat-1-llm"]').click();
    const input = page.locator('.step-details').getByRole('region', { name: 'Input' });
    await input.waitFor();
    expect(await input.getByText('“Why is the build red?”').isVisible()).toBe(true);
    expect(await input.getByText('“Answer in one line.”').isVisible()).toBe(true);
    // forty rows are not read at a glance: they wait for a click
    const list = input.locator('.j-toggle', { hasText: 'rows:' });
    expect(await list.getAttribute('aria-expanded')).toBe('false');
    expect(await input.getByText('“issue 0”').count()).toBe(0);
    await screenshot(page, 'step-messages');
  });
});
