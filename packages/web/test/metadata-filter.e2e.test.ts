// The runs metadata filter in a real browser: a run page's metadata values link to the runs
// that share them, the Runs page keeps `metadata[key]=value` in its URL as the API writes it,
// shows each as a chip, adds one from its Metadata field, exports and updates live by it, and
// fits a phone.

import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ingest, type Api } from './seed.js';
import { SHOTS, browserSuite, overflowOf, screenshot, signedIn } from './browser.js';

const MIN = 60_000;
/** Waits that fail with what was awaited, well before the test's own timeout. */
const WAIT = { timeout: 10_000 };

/** An odd key and value: a slash, a bracket, an ampersand and an `=` go through a URL intact. */
const ODD_KEY = 'team/x]';
const ODD_VALUE = 'a & b=c';

/** A finished run of `meta-bot` with this metadata, started `ago` ms before now. */
async function record(api: Api, id: string, metadata: Record<string, unknown>, ago: number) {
  const start = Date.now() - ago;
  await ingest(api, [
    { type: 'run.start', run: { id, agent_id: 'meta-bot', started_at: start, metadata } },
    { type: 'run.end', run: { id, status: 'succeeded', ended_at: start + 800 } },
  ]);
}

browserSuite('the metadata filter in a real browser', () => {
  const web = signedIn();
  const rows = (page: Page) =>
    page.locator('.runs-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.runId));
  const chips = (page: Page) =>
    page
      .locator('.exact-filters .metadata-chip')
      .evaluateAll((els) =>
        els.map((el) => el.querySelector('.truncate')!.textContent!.replace('Metadata: ', '')),
      );
  /** The page's query as the address bar shows it, decoded: what a person copies and reads. */
  const search = (page: Page) => decodeURIComponent(new URL(page.url()).search);

  beforeAll(async () => {
    const { api } = web;
    await record(
      api,
      'md-prod-42',
      { env: 'prod', pr: 42, ok: true, nested: { env: 'prod' }, none: null, [ODD_KEY]: ODD_VALUE },
      10 * MIN,
    );
    await record(api, 'md-prod-7', { env: 'prod', pr: 7 }, 9 * MIN);
    await record(api, 'md-staging-42', { env: 'staging', pr: 42 }, 8 * MIN);
    await record(api, 'md-prod-42-text', { env: 'prod', pr: '42' }, 7 * MIN);
    await record(api, 'md-nothing', {}, 6 * MIN);
    await record(api, 'md-nested', { nested: 'x', env: { name: 'prod' } }, 5 * MIN);
    // what the live test starts from, on keys of its own
    await record(api, 'md-build-seen', { build: 'b-7', pr: 42 }, 5 * MIN);
  });

  it("links a run page's metadata values to the runs with them, by keyboard too", async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 1280, height: 860 });

    await page.goto(`${api.url}/agents/meta-bot/runs/md-prod-42`);
    const section = page.getByRole('region', { name: 'Run metadata' });
    // short metadata shows open: its links at a glance
    const env = section.getByRole('link', { name: 'Runs with env = prod' });
    await env.waitFor(WAIT);
    expect(await env.getAttribute('href')).toBe('/runs?metadata[env]=prod');
    expect(await env.getAttribute('title')).toBe('Runs with env = prod');
    expect(
      await section.getByRole('link', { name: 'Runs with pr = 42' }).getAttribute('href'),
    ).toBe('/runs?metadata[pr]=42');
    expect(
      await section.getByRole('link', { name: 'Runs with ok = true' }).getAttribute('href'),
    ).toBe('/runs?metadata[ok]=true');
    // an object or null is shown, not linked: no filter finds it
    expect(await section.getByRole('link').count()).toBe(4);
    const row = (key: string) =>
      section.locator('.j-children > .j-row', { has: page.locator('.j-key', { hasText: key }) });
    expect(await row('none: ').count()).toBe(1);
    expect(await row('none: ').getByRole('link').count()).toBe(0);
    expect(await row('nested: ').getByRole('link').count()).toBe(0);
    await screenshot(page, 'metadata-run-page', false);
    await section.scrollIntoViewIfNeeded();
    await section.screenshot({ path: join(SHOTS, 'metadata-run-section.png') });

    // from the section's Copy button, Tab goes by the tree's toggle to the first value's link,
    // and Enter follows it
    await section.getByRole('button', { name: 'Copy Run metadata' }).focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toContain('6 keys');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
      'Runs with env = prod',
    );
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.pathname === '/runs', WAIT);
    // the address bar has the API's own form, so the link is the API's query too
    expect(new URL(page.url()).search).toBe('?metadata[env]=prod');
    await expect.poll(() => rows(page)).toEqual(['md-prod-42-text', 'md-prod-7', 'md-prod-42']);
    expect(await chips(page)).toEqual(['env = prod']);
    expect(await page.locator('.page-head .count').textContent()).toBe('3');

    // an odd key and value go through the link and back as they are
    await page.goBack();
    await section.getByRole('link', { name: `Runs with ${ODD_KEY} = ${ODD_VALUE}` }).click();
    await page.waitForURL((url) => url.pathname === '/runs', WAIT);
    expect(search(page)).toBe(`?metadata[${ODD_KEY}]=${ODD_VALUE.replace(/ /g, '+')}`);
    await expect.poll(() => rows(page)).toEqual(['md-prod-42']);
    expect(await chips(page)).toEqual([`${ODD_KEY} = ${ODD_VALUE}`]);
  });

  it('adds filters from the Metadata field, says what it cannot add, and removes a chip', async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${api.url}/runs?metadata[env]=prod`);
    await expect.poll(() => rows(page)).toEqual(['md-prod-42-text', 'md-prod-7', 'md-prod-42']);
    const field = page.getByRole('textbox', { name: 'Metadata' });
    const error = page.locator('#runs-metadata-error');

    // what cannot be added is said under the field, the text kept to fix, the URL unchanged
    for (const [text, said] of [
      ['prod', 'Write it as key=value, e.g. env=prod'],
      ['pr=', 'Give pr a value after the =, e.g. pr=prod'],
      ['env=staging', 'env is a filter already (= prod): remove that chip first'],
    ] as const) {
      await field.fill(text);
      await field.press('Enter');
      await expect.poll(() => error.textContent()).toBe(said);
      expect(await error.getAttribute('role')).toBe('alert');
      expect(await field.getAttribute('aria-invalid')).toBe('true');
      expect(await field.getAttribute('aria-describedby')).toBe('runs-metadata-error');
      expect(await field.inputValue()).toBe(text);
      expect(new URL(page.url()).search).toBe('?metadata[env]=prod');
    }
    await screenshot(page, 'metadata-field-error', false);
    // typing again clears the complaint
    await field.fill('pr = 42');
    expect(await error.count()).toBe(0);
    expect(await field.getAttribute('aria-invalid')).toBeNull();
    await field.press('Enter');
    await page.waitForURL((url) => url.search === '?metadata[env]=prod&metadata[pr]=42', WAIT);
    await expect.poll(() => rows(page)).toEqual(['md-prod-42-text', 'md-prod-42']);
    expect(await chips(page)).toEqual(['env = prod', 'pr = 42']);
    expect(await field.inputValue()).toBe('');
    await screenshot(page, 'metadata-chips', false);

    // the Export download sends the filter as the list does, and the server keeps those runs
    await page.getByRole('button', { name: 'Export runs' }).click();
    const menu = page.getByRole('menu', { name: 'Export runs' });
    const jsonl = await menu.getByRole('menuitem', { name: 'JSON Lines' }).getAttribute('href');
    expect(jsonl).toBe('/api/v1/runs.jsonl?metadata[env]=prod&metadata[pr]=42&limit=100000');
    expect(await menu.getByRole('menuitem', { name: 'CSV' }).getAttribute('href')).toContain(
      '?metadata[env]=prod&metadata[pr]=42&',
    );
    const exported = await page.evaluate(async (href) => (await fetch(href)).text(), jsonl!);
    expect(
      exported
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { id: string }).id),
    ).toEqual(['md-prod-42-text', 'md-prod-42']);
    // the menu has the keyboard once it is placed: Escape then closes it, back on its button
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute('role')))
      .toBe('menuitem');
    await page.keyboard.press('Escape');
    await menu.waitFor({ state: 'hidden', ...WAIT });

    // a chip's ✕ takes its filter out; the keyboard goes on in the Metadata field
    await page.getByRole('button', { name: 'Remove filter Metadata: env = prod' }).click();
    await page.waitForURL((url) => url.search === '?metadata[pr]=42', WAIT);
    await expect
      .poll(() => rows(page))
      .toEqual(['md-build-seen', 'md-prod-42-text', 'md-staging-42', 'md-prod-42']);
    expect(await chips(page)).toEqual(['pr = 42']);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('runs-metadata');

    // ten keys at most, as the API takes
    const ten = Array.from({ length: 10 }, (_, i) => `metadata[k${i}]=v`).join('&');
    await page.goto(`${api.url}/runs?${ten}`);
    await page.getByText('No runs match these filters').waitFor(WAIT);
    expect((await chips(page)).length).toBe(10);
    await field.fill('k10=v');
    await field.press('Enter');
    await expect
      .poll(() => error.textContent())
      .toBe('At most 10 metadata filters: remove one first');
    // and Clear filters takes them all out
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.waitForURL((url) => url.search === '', WAIT);
    // the address changes before the page draws it: the chips go on the render after
    await expect.poll(() => chips(page)).toEqual([]);
  });

  it('adds a run recorded later with matching metadata live, and not one without', async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${api.url}/runs?metadata[build]=b-7&metadata[pr]=42`);
    await expect.poll(() => rows(page)).toEqual(['md-build-seen']);
    // the misses first: by the time the match shows, their updates were taken (one socket,
    // in order)
    await record(api, 'md-live-other-pr', { build: 'b-7', pr: 43 }, 0);
    await record(api, 'md-live-other-build', { build: 'b-8', pr: 42 }, 0);
    await record(api, 'md-live-no-metadata', {}, 0);
    await record(api, 'md-live-match', { build: 'b-7', pr: 42, extra: 'yes' }, 0);
    await expect.poll(() => rows(page)).toEqual(['md-live-match', 'md-build-seen']);
    expect(await page.locator('.page-head .count').textContent()).toBe('2');
  });

  it('selects all the runs matching the metadata filter, over every page', async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 1280, height: 860 });
    const now = Date.now();
    const batch = (n: number, value: string, offset: number) =>
      Array.from({ length: n }, (_, i) => ({
        type: 'run.start',
        run: {
          id: `md-batch-${value}-${i}`,
          agent_id: 'batch-bot',
          started_at: now - (offset + i) * 1000,
          metadata: { batch: value },
        },
      }));
    // more than a page of one batch, beside runs of another
    await ingest(api, [...batch(53, 'b-1', 0), ...batch(4, 'b-2', 100)]);
    await page.goto(`${api.url}/runs?metadata[batch]=b-1`);
    await page.getByRole('checkbox', { name: 'Select the 50 runs on this page' }).check(WAIT);
    const bar = page.getByRole('region', { name: 'Selected runs' });
    await bar.getByRole('button', { name: 'Select all 53 matching runs' }).click(WAIT);
    await expect.poll(() => bar.locator('.bulk-count').textContent()).toBe('53 runs selected');
    expect(await bar.locator('.bulk-note').textContent()).toBe(
      'All 53 matching runs are selected.',
    );
  });

  it('fits a phone screen with long chips and the run page section', async () => {
    const { api, page } = web;
    await page.setViewportSize({ width: 375, height: 812 });
    const longKey = 'customer_account_identifier_for_billing_reconciliation';
    const longValue = 'acct_0123456789abcdefghijklmnopqrstuvwxyz_0123456789abcdefghijklmnop';
    await record(api, 'md-phone', { env: 'phone', [longKey]: longValue }, 4 * MIN);
    await page.goto(
      `${api.url}/runs?metadata[env]=phone&metadata[${longKey}]=${encodeURIComponent(longValue)}`,
    );
    await expect.poll(() => rows(page)).toEqual(['md-phone']);
    expect(await overflowOf(page)).toBe(0);
    const chip = page.locator('.metadata-chip').nth(1);
    const box = await chip.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(375);
    await screenshot(page, 'metadata-runs-375', false);

    await page.goto(`${api.url}/agents/meta-bot/runs/md-phone`);
    const link = page.getByRole('link', { name: `Runs with ${longKey} = ${longValue}` });
    await link.waitFor(WAIT);
    await link.scrollIntoViewIfNeeded();
    expect(await overflowOf(page)).toBe(0);
    await screenshot(page, 'metadata-run-page-375', false);
  });
});
