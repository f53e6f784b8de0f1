// Retry of one run in a real browser when no worker serves its agent: asked first (the retry
// would wait queued), as the bulk Retry's question says; at once while a worker is there.

import { expect, it } from 'vitest';
import type { Run } from '@runlog/core';
import { call, seedRuns } from './seed.js';
import { browserSuite, screenshot, signedIn } from './browser.js';

browserSuite('Retry of a run no worker would take, in a real browser', () => {
  const web = signedIn();

  const retriesOf = async (runId: string) =>
    (await call<{ runs: Run[] }>(web.api, 'GET', `/runs?retry_of=${runId}`)).body.runs;
  const NO_WORKER =
    'No worker of lonely-bot is running now: the retry waits queued until one asks for runs (Workers).';

  it("asks before retrying a run whose agent no worker serves, from its page and a row's menu", async () => {
    await seedRuns(web.api, [
      { id: 'lonely-1', agent: 'lonely-bot', status: 'failed', ago: 90_000, durationMs: 900 },
      { id: 'lonely-2', agent: 'lonely-bot', status: 'failed', ago: 60_000, durationMs: 900 },
    ]);
    const { page } = web;
    await page.goto(`${web.api.url}/agents/lonely-bot/runs/lonely-1`);
    const retry = page.getByRole('button', { name: 'Retry', exact: true });
    await retry.click();
    const ask = page.getByRole('dialog', { name: 'Retry run lonely-1?' });
    await ask.waitFor();
    expect(await ask.getByTestId('retry-no-worker').textContent()).toBe(NO_WORKER);
    await screenshot(page, 'retry-no-worker', false);
    // Cancel: nothing queued, still on the run, the keyboard back on Retry
    await ask.getByRole('button', { name: 'Cancel' }).click();
    await ask.waitFor({ state: 'hidden' });
    expect(await retriesOf('lonely-1')).toEqual([]);
    expect(new URL(page.url()).pathname).toBe('/agents/lonely-bot/runs/lonely-1');
    expect(await retry.evaluate((el) => el === document.activeElement)).toBe(true);
    // Escape says no too
    await retry.click();
    await ask.waitFor();
    await page.keyboard.press('Escape');
    await ask.waitFor({ state: 'hidden' });
    expect(await retriesOf('lonely-1')).toEqual([]);
    // retried all the same: queued, and its page opens
    await retry.click();
    await ask.getByRole('button', { name: 'Queue retry' }).click();
    await page.waitForURL(/\/agents\/lonely-bot\/runs\/(?!lonely-1$)/);
    const [made] = await retriesOf('lonely-1');
    expect(made?.status).toBe('queued');
    expect(new URL(page.url()).pathname).toBe(`/agents/lonely-bot/runs/${made!.id}`);

    // a row's menu asks the same
    await page.goto(`${web.api.url}/runs?agent=lonely-bot&status=failed`);
    await page
      .locator('tr[data-run-id="lonely-2"]')
      .getByRole('button', { name: /Actions for run/ })
      .click();
    await page.getByRole('menuitem', { name: 'Retry' }).click();
    const again = page.getByRole('dialog', { name: 'Retry run lonely-2?' });
    await again.waitFor();
    expect(await again.getByTestId('retry-no-worker').textContent()).toBe(NO_WORKER);
    await again.getByRole('button', { name: 'Queue retry' }).click();
    await page.locator('.toast', { hasText: 'Retry queued (attempt 2)' }).waitFor();
    expect((await retriesOf('lonely-2')).map((r) => r.status)).toEqual(['queued']);

    // one run selected for the bulk Retry: its question says so too, where one run was
    // retried without a question
    await seedRuns(web.api, [
      { id: 'lonely-3', agent: 'lonely-bot', status: 'failed', ago: 30_000, durationMs: 900 },
    ]);
    await page.goto(`${web.api.url}/runs?agent=lonely-bot&status=failed`);
    await page.getByRole('checkbox', { name: 'Select run lonely-3' }).check();
    await page.getByRole('button', { name: 'Retry 1 failed run' }).click();
    const bulk = page.getByRole('dialog', { name: 'Retry 1 failed run?' });
    await bulk.waitFor();
    expect(await bulk.getByTestId('bulk-no-worker').textContent()).toBe(
      'No worker of lonely-bot is running now: its retries wait queued until one asks for runs (Workers).',
    );
    await bulk.getByRole('button', { name: 'Cancel' }).click();
    expect(await retriesOf('lonely-3')).toEqual([]);

    // Edit & retry says it in its dialog
    await page.goto(`${web.api.url}/agents/lonely-bot/runs/lonely-3`);
    await page.getByRole('button', { name: 'Edit & retry' }).click();
    const edit = page.getByRole('dialog', { name: 'Retry with another input' });
    await edit.waitFor();
    await expect
      .poll(() => edit.getByTestId('retry-no-worker').textContent())
      .toBe(
        'No worker of lonely-bot is running now: the retry waits queued until one asks for runs.',
      );
    await edit.getByRole('button', { name: 'Cancel' }).click();
  });

  it('retries at once, without a question, while a worker serves the agent', async () => {
    await seedRuns(web.api, [
      { id: 'served-1', agent: 'served-bot', status: 'failed', ago: 90_000, durationMs: 900 },
      { id: 'served-2', agent: 'served-bot', status: 'failed', ago: 60_000, durationMs: 900 },
    ]);
    // a worker asks for the agent's runs (nothing queued yet: it takes none)
    const claim = { agents: ['served-bot'], worker_id: 'served-worker' };
    expect((await call(web.api, 'POST', '/workers/claim', claim)).status).toBe(204);
    const { page } = web;
    await page.goto(`${web.api.url}/agents/served-bot/runs/served-1`);
    await page.getByRole('button', { name: 'Retry', exact: true }).click();
    await page.waitForURL(/\/agents\/served-bot\/runs\/(?!served-1$)/);
    expect((await retriesOf('served-1')).map((r) => r.status)).toEqual(['queued']);

    await page.goto(`${web.api.url}/runs?agent=served-bot&status=failed`);
    await page
      .locator('tr[data-run-id="served-2"]')
      .getByRole('button', { name: /Actions for run/ })
      .click();
    await page.getByRole('menuitem', { name: 'Retry' }).click();
    await page.locator('.toast', { hasText: 'Retry queued (attempt 2)' }).waitFor();
    expect((await retriesOf('served-2')).map((r) => r.status)).toEqual(['queued']);
    expect(await page.getByRole('dialog').count()).toBe(0);

    await page.goto(`${web.api.url}/agents/served-bot/runs/served-2`);
    // the workers are read as the dialog opens: once they are, nothing to say
    const workersRead = page.waitForResponse(
      (r) => new URL(r.url()).pathname === '/api/v1/workers',
    );
    await page.getByRole('button', { name: 'Edit & retry' }).click();
    const edit = page.getByRole('dialog', { name: 'Retry with another input' });
    await edit.waitFor();
    await workersRead;
    expect(await edit.getByTestId('retry-no-worker').count()).toBe(0);
    await edit.getByRole('button', { name: 'Cancel' }).click();
  });
});
