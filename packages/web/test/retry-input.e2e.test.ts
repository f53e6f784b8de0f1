// Edit & retry on a run's page in a real browser: the run's input in a box, changed, and a
// retry linked to the run that runs on it.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Run } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import { call, seedRuns, type Api } from './seed.js';
import { DIST, browserSuite, ensureBuilt, logIn, openBrowser, screenshot } from './browser.js';

browserSuite('Edit & retry in a real browser', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let api: Api;
  let page: Page;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer('sqlite', { webRoot: DIST });
    api = { url: server.url, key: server.adminKey };
    await seedRuns(api, [
      {
        id: 'translate-1',
        agent: 'translator',
        status: 'failed',
        ago: 60_000,
        durationMs: 2000,
        error: 'unknown language: fr-XX',
        input: { text: 'bonjour', to: 'fr-XX' },
      },
    ]);
    browser = await openBrowser();
    page = browser.page;
    await logIn(page, server.url, server.adminKey);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('retries a failed run on its input changed, and opens the retry', async () => {
    await page.goto(`${server.url}/runs/translate-1`);
    await page.getByRole('button', { name: 'Edit & retry' }).click();
    const dialog = page.getByRole('dialog', { name: 'Retry with another input' });
    await dialog.waitFor();
    const box = dialog.getByLabel('Input (JSON; empty for none)');
    expect(JSON.parse(await box.inputValue())).toEqual({ text: 'bonjour', to: 'fr-XX' });
    await screenshot(page, 'retry-with-input');
    // not JSON: said in the dialog, nothing queued
    await box.fill('{ "text": "bonjour", ');
    await dialog.getByRole('button', { name: 'Queue retry' }).click();
    expect(await dialog.getByRole('alert').textContent()).toMatch(/^Input is not valid JSON/);
    await box.fill('{ "text": "bonjour", "to": "en" }');
    await dialog.getByRole('button', { name: 'Queue retry' }).click();
    await page.waitForURL(/\/agents\/translator\/runs\/(?!translate-1)/);
    await page.getByText('Retry queued with the input given (attempt 2)').waitFor();
    const retries = await call<{ runs: Run[] }>(api, 'GET', '/runs?retry_of=translate-1');
    expect(retries.body.runs).toHaveLength(1);
    expect(retries.body.runs[0]).toMatchObject({
      attempt: 2,
      status: 'queued',
      input: { text: 'bonjour', to: 'en' },
    });
    expect(page.url()).toContain(`/runs/${retries.body.runs[0]!.id}`);
    // a queued run cannot be retried yet: the button waits for its end
    expect(await page.getByRole('button', { name: 'Edit & retry' }).isDisabled()).toBe(true);
  });
});
