// Stop and Retry of many runs at once in a real browser: after an outage, the on-call engineer
// selects the failed runs (a page, or all that match) and retries them in one go.

import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Run, RunList } from '@runlog/core';
import { call, ingest, seedRuns, type SeedRun } from './seed.js';
import { browserSuite, logIn, overflowOf, screenshot, signedIn } from './browser.js';

const MINUTE = 60_000;

/** `n` runs of `agent` that failed in the outage, a minute apart, newest first by index. */
function outage(agent: string, n: number): SeedRun[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${agent}-${String(i).padStart(3, '0')}`,
    agent,
    status: 'failed' as const,
    ago: 5 * MINUTE + i * 1000,
    durationMs: 400,
    steps: 1,
    error: 'upstream 503: Service Unavailable',
  }));
}

const list = (web: { api: { url: string; key: string } }, query: string) =>
  call<RunList>(web.api, 'GET', `/runs?${query}`).then((r) => r.body);

browserSuite('Stop and Retry of many runs in a real browser', () => {
  const web = signedIn();
  const bar = (page: Page) => page.getByRole('region', { name: 'Selected runs' });
  const row = (page: Page, id: string) => page.locator(`tr[data-run-id="${id}"]`);
  const box = (page: Page, id: string) => page.getByRole('checkbox', { name: `Select run ${id}` });

  it('retries every failed run a filter matches, past the page, and says what they came to', async () => {
    const { api, page } = web;
    const runs = outage('outage-bot', 61);
    await seedRuns(api, runs);
    // one was retried by hand already: it is not queued again
    const earlier = await call<Run>(api, 'POST', '/runs/outage-bot-007/retry');
    expect(earlier.status).toBe(201);
    // and one is still running, one succeeded: Retry leaves them alone
    await seedRuns(api, [
      {
        id: 'outage-bot-live',
        agent: 'outage-bot',
        status: 'running',
        ago: 1000,
        durationMs: 5000,
        steps: 1,
      },
      {
        id: 'outage-bot-done',
        agent: 'outage-bot',
        status: 'succeeded',
        ago: 900_000,
        durationMs: 5000,
        steps: 1,
      },
    ]);

    await page.goto(`${api.url}/runs?agent=outage-bot&status=failed,running,succeeded`);
    await row(page, 'outage-bot-000').waitFor();
    const head = page.getByRole('checkbox', { name: 'Select the 50 runs on this page' });
    await head.check();
    await expect
      .poll(() => bar(page).locator('.bulk-count').textContent())
      .toBe('50 runs selected');
    await bar(page).getByRole('button', { name: 'Select all 63 matching runs' }).click();
    await expect
      .poll(() => bar(page).locator('.bulk-count').textContent())
      .toBe('63 runs selected');
    expect(await bar(page).locator('.bulk-note').textContent()).toBe(
      'All 63 matching runs are selected.',
    );
    // the buttons say what they act on: the running run is not retried, and is the one to
    // stop; the one that succeeded is not run again
    const retry = bar(page).getByRole('button', { name: 'Retry 61 failed runs' });
    await retry.waitFor();
    await bar(page).getByRole('button', { name: 'Stop 1 running run' }).waitFor();
    await screenshot(page, 'bulk-selected-all', false);

    // a run deleted meanwhile (by a teammate's script): its retry fails, and says why
    expect((await call(api, 'DELETE', '/runs/outage-bot-060')).status).toBe(204);
    await retry.click();
    const confirm = page.getByRole('dialog', { name: 'Retry 61 failed runs?' });
    await confirm.waitFor();
    expect(await confirm.textContent()).toContain(
      '1 selected run that succeeded and 1 selected run still queued or running are left alone',
    );
    // no worker ever asked for outage-bot's runs: its retries would wait queued
    expect(await confirm.getByTestId('bulk-no-worker').textContent()).toBe(
      'No worker of outage-bot is running now: its retries wait queued until one asks for runs (Workers).',
    );
    await screenshot(page, 'bulk-confirm-retry', false);
    await confirm.getByRole('button', { name: 'Retry 61 runs' }).click();

    const summary = page.locator('.toast', { hasText: 'Retry of 61 runs' });
    await summary.waitFor({ timeout: 30_000 });
    expect(await summary.locator('span').first().textContent()).toBe(
      'Retry of 61 runs: queued 59 · already retried 1 · failed 1',
    );
    // the one that failed stays selected, to try again
    await expect
      .poll(() => bar(page).locator('.bulk-count').textContent())
      .toBe('1 run selected · 1 on other pages');
    expect(await box(page, 'outage-bot-000').isChecked()).toBe(false);
    await screenshot(page, 'bulk-retried', false);

    // the server holds one new queued retry per failed run, none for the one retried before
    const retries = await list(web, 'agent_id=outage-bot&trigger=retry&limit=500');
    expect(retries.total).toBe(60);
    const retried = new Map(retries.runs.map((r) => [r.retry_of, r]));
    expect(retries.runs.filter((r) => r.retry_of === 'outage-bot-007')).toHaveLength(1);
    for (const r of runs.slice(0, 60)) expect(retried.get(r.id)?.status).toBe('queued');
    expect(retried.has('outage-bot-live')).toBe(false);

    // which failed, and why
    await summary.getByRole('button', { name: 'Details' }).click();
    const report = page.getByRole('dialog', { name: 'Retry of 61 runs' });
    await report.waitFor();
    const failed = report.locator('details', { hasText: 'Failed: 1' });
    expect(await failed.getAttribute('open')).not.toBeNull();
    expect(await failed.locator('li').textContent()).toMatch(/outage-bot-060.*not found/);
    await screenshot(page, 'bulk-report', false);
    await report.getByRole('button', { name: 'Close' }).click();
    await report.waitFor({ state: 'hidden' });
    // the keyboard is back on the button that opened it
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Details');

    // and the new queued runs are on the Runs page
    await summary.getByRole('link', { name: 'View retries' }).click();
    await page.waitForURL(/\/runs\?trigger=retry$/);
    await expect
      .poll(() => page.locator('tr.run-row[data-status="queued"]').count())
      .toBeGreaterThanOrEqual(50);
  }, 90_000);

  it('stops a selection of queued runs, picked with Shift for a range', async () => {
    const { api, page } = web;
    for (const id of ['q-1', 'q-2', 'q-3', 'q-4'])
      expect((await call(api, 'POST', '/agents/queue-bot/runs', { id })).status).toBe(202);
    await page.goto(`${api.url}/runs?agent=queue-bot`);
    await row(page, 'q-4').waitFor();
    // newest first: q-4, q-3, q-2, q-1; a click on q-3 then Shift+click on q-1 picks three
    await box(page, 'q-3').check();
    await box(page, 'q-1').click({ modifiers: ['Shift'] });
    await expect.poll(() => bar(page).locator('.bulk-count').textContent()).toBe('3 runs selected');
    expect(await box(page, 'q-4').isChecked()).toBe(false);
    expect(await box(page, 'q-2').isChecked()).toBe(true);
    // nothing of it has ended: there is nothing to retry, and the button says why
    const retry = bar(page).getByRole('button', { name: 'Retry', exact: true });
    expect(await retry.isDisabled()).toBe(true);
    expect(await retry.getAttribute('title')).toMatch(
      /None of the selected runs failed, timed out or was cancelled/,
    );

    await bar(page).getByRole('button', { name: 'Stop 3 queued runs' }).click();
    const confirm = page.getByRole('dialog', { name: 'Stop 3 queued runs?' });
    await confirm.waitFor();
    // a stray Enter does not stop them: the dialog starts on Cancel
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel');
    expect(await confirm.textContent()).toContain('3 queued runs are cancelled at once');
    await screenshot(page, 'bulk-confirm-stop', false);
    await confirm.getByRole('button', { name: 'Stop 3 runs' }).click();
    const summary = page.locator('.toast', { hasText: 'Stop of 3 runs' });
    await summary.waitFor({ timeout: 15_000 });
    expect(await summary.locator('span').first().textContent()).toBe('Stop of 3 runs: cancelled 3');
    for (const id of ['q-1', 'q-2', 'q-3'])
      await expect.poll(() => row(page, id).getAttribute('data-status')).toBe('cancelled');
    expect(await row(page, 'q-4').getAttribute('data-status')).toBe('queued');
    // all done: the bar goes, and the keyboard goes on from the list's header checkbox
    await bar(page).waitFor({ state: 'detached' });
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label')))
      .toBe('Select the 4 runs on this page');
    const held = await list(web, 'agent_id=queue-bot&status=cancelled');
    expect(held.runs.map((r) => r.id).sort()).toEqual(['q-1', 'q-2', 'q-3']);
  });

  it('keeps what is selected as runs arrive live, and clears it on another filter', async () => {
    const { api, page } = web;
    await seedRuns(api, outage('steady-bot', 3));
    await page.goto(`${api.url}/runs?agent=steady-bot`);
    await row(page, 'steady-bot-001').waitFor();
    await box(page, 'steady-bot-001').check();
    // a new run arrives at the top: the selection stays on the run picked, not on its place
    await ingest(api, [
      { type: 'run.start', run: { id: 'steady-bot-new', agent_id: 'steady-bot' } },
    ]);
    await row(page, 'steady-bot-new').waitFor();
    expect(await page.locator('tbody tr').first().getAttribute('data-run-id')).toBe(
      'steady-bot-new',
    );
    expect(await box(page, 'steady-bot-new').isChecked()).toBe(false);
    expect(await box(page, 'steady-bot-001').isChecked()).toBe(true);
    expect(await bar(page).locator('.bulk-count').textContent()).toBe('1 run selected');
    // the header checkbox says some of the page are selected
    const head = page.getByRole('checkbox', { name: 'Select the 4 runs on this page' });
    expect(await head.evaluate((el) => (el as HTMLInputElement).indeterminate)).toBe(true);
    // from the keyboard: Space on the header checkbox selects the page
    await head.focus();
    await page.keyboard.press('Space');
    await expect.poll(() => bar(page).locator('.bulk-count').textContent()).toBe('4 runs selected');
    // another filter: another list, nothing selected in it
    await page.getByRole('button', { name: 'Failed', exact: true }).click();
    await bar(page).waitFor({ state: 'detached' });
    expect(await page.getByRole('checkbox', { checked: true }).count()).toBe(0);
  });

  it("retries from an agent's recent runs", async () => {
    const { api, page } = web;
    await seedRuns(api, outage('panel-bot', 2));
    await page.goto(`${api.url}/`);
    await page.locator('button.agent-row[data-agent-id="panel-bot"]').click();
    const panel = page.getByRole('region', { name: 'Recent runs of panel-bot' });
    await panel.getByRole('checkbox', { name: 'Select the 2 runs shown of panel-bot' }).check();
    await panel.getByRole('button', { name: 'Retry 2 failed runs' }).click();
    await page
      .getByRole('dialog', { name: 'Retry 2 failed runs?' })
      .getByRole('button', { name: 'Retry 2 runs' })
      .click();
    const summary = page.locator('.toast', { hasText: 'Retry of 2 runs' });
    await summary.waitFor({ timeout: 15_000 });
    expect(await summary.locator('span').first().textContent()).toBe('Retry of 2 runs: queued 2');
    // the retries are the panel's newest runs now
    await expect.poll(() => panel.locator('tbody tr[data-status="queued"]').count()).toBe(2);
    await summary.getByRole('button', { name: 'Dismiss' }).click();
  });

  it("follows a selected run of an agent's panel that newer runs pushed out of view", async () => {
    const { api, page } = web;
    const queued = (id: string) => ({
      type: 'run.start',
      run: { id, agent_id: 'drift-bot', status: 'queued' },
    });
    await ingest(
      api,
      [0, 1, 2, 3, 4].map((i) => queued(`drift-bot-${i}`)),
    );
    await page.goto(`${api.url}/`);
    await page.locator('button.agent-row[data-agent-id="drift-bot"]').click();
    const panel = page.getByRole('region', { name: 'Recent runs of drift-bot' });
    await panel.getByRole('checkbox', { name: 'Select the 5 runs shown of drift-bot' }).check();
    const selected = page.getByRole('region', { name: 'Selected runs of drift-bot' });
    await selected.getByRole('button', { name: 'Stop 5 queued runs' }).waitFor();
    // three newer runs take the top of the panel: three of the selected ones are not shown
    await ingest(
      api,
      [5, 6, 7].map((i) => queued(`drift-bot-${i}`)),
    );
    await expect
      .poll(() => selected.locator('.bulk-count').textContent())
      .toBe('5 runs selected · 3 not shown');
    // which then fail: the panel's list knows, and so do the bar's buttons
    expect(
      await panel.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.runId)),
    ).toEqual(['drift-bot-7', 'drift-bot-6', 'drift-bot-5', 'drift-bot-4', 'drift-bot-3']);
    await ingest(
      api,
      [0, 1, 2].map((i) => ({
        type: 'run.end',
        run: { id: `drift-bot-${i}`, status: 'failed', error: { message: 'worker lost' } },
      })),
    );
    await selected
      .getByRole('button', { name: 'Retry 3 failed runs' })
      .waitFor({ timeout: 10_000 });
    expect(await selected.getByRole('button', { name: 'Stop 2 queued runs' }).count()).toBe(1);
  });

  it('stays with its progress while the runs it stops leave the list, then keeps the focus', async () => {
    const { api, page } = web;
    await ingest(
      api,
      [0, 1, 2].map((i) => ({
        type: 'run.start',
        run: { id: `jam-bot-${i}`, agent_id: 'jam-bot', status: 'queued' },
      })),
    );
    await page.goto(`${api.url}/runs?agent=jam-bot&status=queued`);
    await row(page, 'jam-bot-0').waitFor();
    // the server stops each run at once (and says so live), its answer comes late
    const cancels = (url: URL) => /^\/api\/v1\/runs\/jam-bot-\d\/cancel$/.test(url.pathname);
    await page.route(cancels, async (route) => {
      const response = await route.fetch();
      await new Promise((done) => setTimeout(done, 1500));
      await route.fulfill({ response });
    });
    try {
      const head = page.getByRole('checkbox', { name: 'Select the 3 runs on this page' });
      await head.focus();
      await page.keyboard.press('Space');
      await bar(page).getByRole('button', { name: 'Stop 3 queued runs' }).click();
      await page
        .getByRole('dialog', { name: 'Stop 3 queued runs?' })
        .getByRole('button', { name: 'Stop 3 runs' })
        .click();
      // the list is empty now, the pass is not over: its progress and Cancel are still there
      await page.getByText('No runs match these filters').waitFor();
      expect(await bar(page).getByRole('progressbar', { name: 'Stopping runs' }).count()).toBe(1);
      expect(await bar(page).getByRole('button', { name: 'Cancel the rest' }).count()).toBe(1);
      const summary = page.locator('.toast', { hasText: 'Stop of 3 runs' });
      await summary.waitFor({ timeout: 15_000 });
      expect(await summary.locator('span').first().textContent()).toBe(
        'Stop of 3 runs: cancelled 3',
      );
      // nothing is left to select: the keyboard goes on from the page, not from its top
      await expect.poll(() => page.evaluate(() => document.activeElement?.id ?? '')).toBe('main');
      await summary.getByRole('button', { name: 'Dismiss' }).click();
    } finally {
      await page.unroute(cancels);
    }
  });

  it('offers the first 1,000 when more match, and says that is the cap', async () => {
    const { api, page } = web;
    await seedRuns(
      api,
      outage('flood-bot', 1030).map((r) => ({ ...r, steps: 0 })),
    );
    await page.goto(`${api.url}/runs?agent=flood-bot&status=failed`);
    await page.locator('tbody tr').first().waitFor();
    await page.getByRole('checkbox', { name: 'Select the 50 runs on this page' }).check();
    const pick = bar(page).getByRole('button', { name: /^Select the first 1,000 of 1,030/ });
    await pick.waitFor();
    expect(await bar(page).locator('.bulk-note').textContent()).toContain(
      'at most 1,000 at a time',
    );
    await pick.click();
    await expect
      .poll(() => bar(page).locator('.bulk-count').textContent(), { timeout: 20_000 })
      .toBe('1,000 runs selected');
    expect(await bar(page).locator('.bulk-note').textContent()).toBe(
      'The first 1,000 matching runs of 1,030 are selected (at most 1,000 at a time): act on these, then select the rest.',
    );
    await bar(page).getByRole('button', { name: 'Retry 1,000 failed runs' }).waitFor();
    await bar(page).getByRole('button', { name: 'Clear' }).click();
    await bar(page).waitFor({ state: 'detached' });
  });

  it('fits a phone and the dark theme', async () => {
    const { api, page } = web;
    await seedRuns(api, outage('phone-bot', 3));
    await page.setViewportSize({ width: 320, height: 700 });
    try {
      await page.goto(`${api.url}/runs?agent=phone-bot`);
      await row(page, 'phone-bot-000').waitFor();
      await page.getByRole('checkbox', { name: 'Select the 3 runs on this page' }).check();
      await bar(page).getByRole('button', { name: 'Retry 3 failed runs' }).waitFor();
      await bar(page).scrollIntoViewIfNeeded();
      await screenshot(page, 'bulk-320', false);
      expect(await overflowOf(page)).toBeLessThanOrEqual(0);
      for (const name of ['Retry 3 failed runs', 'Stop', 'Clear']) {
        const b = await bar(page).getByRole('button', { name, exact: true }).boundingBox();
        expect(b!.x + b!.width).toBeLessThanOrEqual(320);
      }
      // the ⋮ menu of each row stays on screen beside its checkbox
      const menu = await row(page, 'phone-bot-000').locator('.kebab').boundingBox();
      expect(menu!.x + menu!.width).toBeLessThanOrEqual(320);
      await page.emulateMedia({ colorScheme: 'dark' });
      await screenshot(page, 'bulk-320-dark', false);
      await bar(page).getByRole('button', { name: 'Retry 3 failed runs' }).click();
      const confirm = page.getByRole('dialog', { name: 'Retry 3 failed runs?' });
      await confirm.waitFor();
      const d = await confirm.boundingBox();
      expect(d!.x).toBeGreaterThanOrEqual(0);
      expect(d!.x + d!.width).toBeLessThanOrEqual(320);
      await screenshot(page, 'bulk-320-dark-confirm', false);
      await confirm.getByRole('button', { name: 'Cancel' }).click();
      await page.setViewportSize({ width: 1280, height: 860 });
      await screenshot(page, 'bulk-dark', false);
    } finally {
      await page.emulateMedia({ colorScheme: 'light' });
      await page.setViewportSize({ width: 1280, height: 860 });
    }
  });

  it('pages through what is left to retry with the Retried filter', async () => {
    const { api, page } = web;
    await seedRuns(api, outage('left-bot', 3));
    // a teammate retried one already
    expect((await call(api, 'POST', '/runs/left-bot-001/retry')).status).toBe(201);
    await page.goto(`${api.url}/runs?agent=left-bot&status=failed`);
    await row(page, 'left-bot-001').waitFor();
    await page.getByLabel('Retried').selectOption('Not retried yet');
    await page.waitForURL(/retried=false/);
    await row(page, 'left-bot-001').waitFor({ state: 'detached' });
    expect(await page.locator('tr[data-run-id]').count()).toBe(2);
    await page.getByRole('checkbox', { name: 'Select the 2 runs on this page' }).check();
    await bar(page).getByRole('button', { name: 'Retry 2 failed runs' }).click();
    await page
      .getByRole('dialog', { name: 'Retry 2 failed runs?' })
      .getByRole('button', { name: 'Retry 2 runs' })
      .click();
    await page.locator('.toast', { hasText: 'Retry of 2 runs' }).waitFor();
    // the runs retried leave the list: what is left to retry is none
    await page.getByText('No runs match these filters').waitFor();
    await page.getByLabel('Retried').selectOption('Retried already');
    await expect.poll(() => page.locator('tr[data-run-id]').count()).toBe(3);
  });

  it('lets a read key select, and says why it cannot retry or stop', async () => {
    const { api, page } = web;
    await seedRuns(api, outage('read-bot', 2));
    const key = await call<{ key: string }>(api, 'POST', '/keys', {
      name: 'viewer',
      scope: 'read',
    });
    await page.getByRole('button', { name: 'Log out' }).click();
    await logIn(page, api.url, key.body.key);
    try {
      await page.goto(`${api.url}/runs?agent=read-bot`);
      await page.getByRole('checkbox', { name: 'Select the 2 runs on this page' }).check();
      const retry = bar(page).getByRole('button', { name: 'Retry 2 failed runs' });
      expect(await retry.isDisabled()).toBe(true);
      expect(await retry.getAttribute('title')).toBe('Needs a write or admin key');
      expect(await bar(page).locator('.scope-note').textContent()).toMatch(
        /^Needs a write or admin key to retry or stop runs/,
      );
      await screenshot(page, 'bulk-read-key', false);
    } finally {
      await page.getByRole('button', { name: 'Log out' }).click();
      await logIn(page, api.url, api.key);
    }
  });
});
