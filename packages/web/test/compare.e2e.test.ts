// The Compare page of a long run and its retry in a real browser: it reads the steps it
// compares, not all of a run's steps, and stays live.

import { expect, it } from 'vitest';
import { call, ingest, seedRuns } from './seed.js';
import { browserSuite, screenshot, signedIn } from './browser.js';

browserSuite('comparing a long run in a real browser', () => {
  const web = signedIn();

  it("reads only a long run's first page of steps to compare them, and hears the retry's steps", async () => {
    const { page, api } = web;
    const id = 'cmp-long';
    const t0 = Date.now() - 3_600_000;
    // more steps than the server answers inline (1,000): the others come page by page
    const steps = Array.from({ length: 1500 }, (_, i) => ({
      type: 'step.end',
      step: {
        id: `${id}-s${i}`,
        run_id: id,
        seq: i,
        type: 'tool',
        name: `call ${i}`,
        started_at: t0 + i * 1000,
        ended_at: t0 + i * 1000 + 500,
        status: 'succeeded',
      },
    }));
    await ingest(api, [
      { type: 'run.start', run: { id, agent_id: 'cmp-long-agent', started_at: t0 } },
    ]);
    for (let i = 0; i < steps.length; i += 1000) await ingest(api, steps.slice(i, i + 1000));
    await ingest(api, [
      { type: 'run.end', run: { id, status: 'failed', error: { message: 'too long' } } },
    ]);
    const retry = await call<{ id: string }>(api, 'POST', `/runs/${id}/retry`);
    expect(retry.status).toBe(201);

    const asked: string[] = [];
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname.startsWith('/api/v1/runs/')) asked.push(url.pathname + url.search);
    });
    await page.goto(`${api.url}/compare/${id}/${retry.body.id}`);
    const split = page.getByTestId('compare-split');
    await split.waitFor();
    expect(await split.textContent()).toBe(
      'They went apart at step 1. The first 300 steps are compared.',
    );
    expect(await page.locator('.compare-steps tbody tr').count()).toBe(300);
    // before, the page read all 1,500 steps, a page at a time, to show 300 of them
    expect(asked.filter((path) => path.startsWith(`/api/v1/runs/${id}/steps`))).toEqual([]);

    // the retry records its first step while the page is open: it shows without a reload
    const claimed = await call(api, 'POST', '/workers/claim', { agents: ['cmp-long-agent'] });
    expect(claimed.status).toBe(200);
    await ingest(api, [
      {
        type: 'step.end',
        step: {
          id: 'cmp-retry-s0',
          run_id: retry.body.id,
          type: 'tool',
          name: 'call 0',
          status: 'succeeded',
        },
      },
    ]);
    const first = page.locator('.compare-steps tbody tr').first().locator('td').nth(2);
    await expect.poll(() => first.textContent()).toMatch(/^tool · call 0 succeeded/);
    await screenshot(page, 'compare-long');
  });

  it('compares any two runs selected in a list, the earlier first, with what differs marked', async () => {
    const { page, api } = web;
    await seedRuns(api, [
      {
        id: 'pick-later',
        agent: 'pick-writer',
        status: 'failed',
        ago: 60_000,
        durationMs: 900,
        steps: 2,
        error: 'quota exceeded',
        input: { topic: 'b' },
      },
      {
        id: 'pick-earlier',
        agent: 'pick-reviewer',
        status: 'succeeded',
        ago: 120_000,
        durationMs: 400,
        steps: 2,
        input: { topic: 'a' },
      },
    ]);
    await page.goto(`${api.url}/runs`);
    const bar = page.getByRole('region', { name: 'Selected runs' });
    await page.getByRole('checkbox', { name: 'Select run pick-later' }).check();
    // one run has nothing to compare with
    expect(await bar.getByRole('link', { name: 'Compare' }).count()).toBe(0);
    await page.getByRole('checkbox', { name: 'Select run pick-earlier' }).check();
    await bar.getByRole('link', { name: 'Compare' }).click();
    await page.waitForURL(`${api.url}/compare/pick-earlier/pick-later`);
    const head = page.locator('.compare-table').first().locator('thead th');
    await expect.poll(() => head.allTextContents()).toEqual(['', 'Earlier', 'Later']);
    const fact = (label: string) =>
      page
        .locator('.compare-table tbody tr')
        .filter({ has: page.locator('th', { hasText: new RegExp(`^${label}`) }) });
    const agent = fact('Agent');
    expect(await agent.getAttribute('class')).toBe('differs');
    expect(await agent.locator('td').allTextContents()).toEqual(['pick-reviewer', 'pick-writer']);
    expect(await fact('Trigger').getAttribute('class')).toBeNull();
    expect(await page.getByText('Earlier input').count()).toBe(1);
    await screenshot(page, 'compare-two-picked');
  });
});
