// Defects a walk through the dashboard found, each kept fixed: the runs list's width on a
// desktop screen with everyday cells, Compare's trigger names and status badges on a phone,
// and a runs link written with the API's parameter name.

import { expect, it } from 'vitest';
import { call, ingest, seedRuns } from './seed.js';
import { browserSuite, overflowOf, screenshot, signedIn } from './browser.js';

browserSuite('what a walk through the dashboard found', () => {
  const web = signedIn();

  it('keeps the runs list and its row menus inside the page at desktop widths', async () => {
    const agent = 'research-agent-with-a-really-long-name-for-the-layout';
    await seedRuns(web.api, [
      {
        id: 'walk-wide-failed',
        agent,
        status: 'failed',
        ago: 60_000,
        durationMs: 9_400,
        trigger: 'schedule',
        error: 'OpenAI rate limit exceeded (429): Please retry after 20s',
      },
      { id: 'walk-wide-ok', agent, status: 'succeeded', ago: 120_000, durationMs: 1_500, steps: 0 },
      { id: 'walk-wide-slow', agent, status: 'cancelled', ago: 300_000, durationMs: 65_000 },
    ]);
    // the widest everyday cells: a tiny cost, a run waiting to start, scores
    await ingest(web.api, [
      {
        type: 'step.end',
        step: {
          id: 'walk-wide-ok-cheap',
          run_id: 'walk-wide-ok',
          type: 'llm',
          name: 'classify',
          model: 'gpt-4o-mini',
          input_tokens: 120,
          output_tokens: 16,
          cost_usd: 0.0000276,
        },
      },
    ]);
    expect(
      (await call(web.api, 'POST', `/agents/${agent}/runs`, { delay_ms: 50 * 60_000 })).status,
    ).toBe(202);
    expect((await call(web.api, 'POST', `/agents/${agent}/runs`, {})).status).toBe(202);
    for (const [name, value] of [
      ['helpfulness', 0.9],
      ['user_feedback', 1],
      ['label', 'hallucination'],
    ] as const) {
      const res = await call(web.api, 'POST', '/runs/walk-wide-failed/scores', { name, value });
      expect(res.status).toBe(201);
    }
    for (const width of [1280, 1440]) {
      await web.page.setViewportSize({ width, height: 860 });
      await web.page.goto(`${web.api.url}/runs?agent=${agent}`);
      await expect
        .poll(() => web.page.getByRole('button', { name: /Actions for run/ }).count())
        .toBe(5);
      await web.page.locator('.score-chip').first().waitFor();
      const overflow = await web.page
        .locator('.table-wrap')
        .first()
        .evaluate((el) => el.scrollWidth - el.clientWidth);
      await screenshot(web.page, `walkthrough-runs-${width}`);
      expect(overflow, `the runs table at ${width} px`).toBeLessThanOrEqual(0);
    }
    await web.page.setViewportSize({ width: 1280, height: 860 });
  });

  it("names each run's trigger in Compare as the lists do", async () => {
    await seedRuns(web.api, [
      { id: 'walk-cmp-a', agent: 'comparer', status: 'failed', ago: 90_000, durationMs: 900 },
      {
        id: 'walk-cmp-b',
        agent: 'comparer',
        status: 'succeeded',
        ago: 30_000,
        durationMs: 700,
        trigger: 'schedule',
      },
    ]);
    await web.page.goto(`${web.api.url}/compare/walk-cmp-a/walk-cmp-b`);
    const row = web.page.locator('.compare-table tr', { hasText: 'Trigger' });
    await expect.poll(() => row.locator('td').allTextContents()).toEqual(['API', 'Schedule']);
  });

  it("keeps Compare's status badges on one line on a phone", async () => {
    await seedRuns(web.api, [
      { id: 'walk-phone-a', agent: 'phone', status: 'succeeded', ago: 90_000, durationMs: 900 },
      { id: 'walk-phone-b', agent: 'phone', status: 'timed_out', ago: 30_000, durationMs: 700 },
    ]);
    await web.page.setViewportSize({ width: 375, height: 812 });
    try {
      await web.page.goto(`${web.api.url}/compare/walk-phone-a/walk-phone-b`);
      const badges = web.page.locator('.compare-table .status-badge');
      await expect.poll(() => badges.count()).toBe(2);
      await screenshot(web.page, 'walkthrough-compare-375');
      // one line of 12.5 px text with its padding is about 22 px high; two lines are 40
      for (const box of await badges.evaluateAll((els) =>
        els.map((el) => el.getBoundingClientRect().height),
      ))
        expect(box).toBeLessThan(30);
      expect(await overflowOf(web.page)).toBe(0);
    } finally {
      await web.page.setViewportSize({ width: 1280, height: 860 });
    }
  });

  it('filters the runs list by agent_id, the name the API gives that filter', async () => {
    await seedRuns(web.api, [
      { id: 'walk-alias-1', agent: 'alias-one', status: 'succeeded', ago: 5_000, durationMs: 300 },
      { id: 'walk-alias-2', agent: 'alias-two', status: 'succeeded', ago: 4_000, durationMs: 300 },
    ]);
    await web.page.goto(`${web.api.url}/runs?agent_id=alias-one`);
    const menus = web.page.getByRole('button', { name: /Actions for run/ });
    await web.page.getByRole('button', { name: /Actions for run walk-alias-1/ }).waitFor();
    await expect.poll(() => menus.count()).toBe(1);
    const picker = web.page.locator('select.agent-select');
    await expect.poll(() => picker.inputValue()).toBe('alias-one');
    // the address keeps the page's own name, so that All agents clears the filter
    expect(new URL(web.page.url()).searchParams.get('agent_id')).toBeNull();
    await picker.selectOption('');
    await web.page.getByRole('button', { name: /Actions for run walk-alias-2/ }).waitFor();
    await expect.poll(() => menus.count()).toBeGreaterThan(1);
  });
});
