// Settings in a real browser: the API keys table between a phone and a desktop, and the
// built-in prices' count under a filter.

import { expect, it } from 'vitest';
import { call } from './seed.js';
import { browserSuite, overflowOf, screenshot, signedIn } from './browser.js';

browserSuite('Settings in a real browser', () => {
  const web = signedIn();

  it('fits the API keys table in its card from 640 to 740 px, every Revoke on screen', async () => {
    const { page, api } = web;
    const key = await call<{ id: string }>(api, 'POST', '/keys', {
      name: 'nightly-eval-worker',
      scope: 'write',
    });
    expect(key.status).toBe(201);
    try {
      for (const width of [640, 680, 720, 740]) {
        await page.setViewportSize({ width, height: 860 });
        await page.goto(`${api.url}/settings`);
        const revoke = page.getByRole('button', { name: 'Revoke key nightly-eval-worker' });
        await revoke.waitFor();
        const table = page.locator('.keys-table');
        // the table neither scrolls sideways in its card nor widens the page
        expect(
          await table.locator('..').evaluate((wrap) => wrap.scrollWidth - wrap.clientWidth),
          `the keys' box at ${width} px`,
        ).toBeLessThanOrEqual(0);
        expect(
          await table.evaluate((el) => el.scrollWidth - el.clientWidth),
          `the keys table at ${width} px`,
        ).toBeLessThanOrEqual(0);
        expect(await overflowOf(page), `the page at ${width} px`).toBeLessThanOrEqual(0);
        const box = (await revoke.boundingBox())!;
        expect(box.x, `Revoke at ${width} px`).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width, `Revoke at ${width} px`).toBeLessThanOrEqual(width);
        const wrap = (await table.locator('..').boundingBox())!;
        expect(box.x + box.width, `Revoke in its box at ${width} px`).toBeLessThanOrEqual(
          wrap.x + wrap.width,
        );
        if (width === 640 || width === 720) {
          await table.scrollIntoViewIfNeeded();
          await screenshot(page, `settings-keys-${width}`, false);
        }
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
      await call(api, 'DELETE', `/keys/${key.body.id}`);
    }
  });

  it('counts the built-in prices shown of all of them while filtered', async () => {
    const { page, api } = web;
    await page.goto(`${api.url}/settings`);
    const summary = page.locator('.builtin summary');
    await summary.waitFor();
    const all = Number(/^Built-in prices \((\d+)\)$/.exec((await summary.textContent())!)?.[1]);
    expect(all).toBeGreaterThan(3);
    await summary.click();
    const rows = page.locator('.builtin tbody tr');
    await expect.poll(() => rows.count()).toBe(all);
    await page.getByLabel('Filter built-in prices').fill('gpt-4o');
    const shown = await rows.count();
    expect(shown).toBeGreaterThan(0);
    expect(shown).toBeLessThan(all);
    expect(await summary.textContent()).toBe(`Built-in prices (${shown} of ${all})`);
    await screenshot(page, 'settings-builtin-prices-filtered', false);
    // a filter nothing matches
    await page.getByLabel('Filter built-in prices').fill('no-such-model');
    await expect.poll(() => rows.count()).toBe(0);
    expect(await summary.textContent()).toBe(`Built-in prices (0 of ${all})`);
    // cleared: all of them again
    await page.getByLabel('Filter built-in prices').fill('');
    await expect.poll(() => rows.count()).toBe(all);
    expect(await summary.textContent()).toBe(`Built-in prices (${all})`);
  });
});
