// Time as the dashboard shows it in a real browser: the axes of the Stats charts for long
// runs, and the UTC days of the Stats page read in another time zone.

import { expect, it } from 'vitest';
import { seedRuns } from './seed.js';
import { browserSuite, signedIn, screenshot } from './browser.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

browserSuite('time in a real browser', () => {
  const web = signedIn();

  it('keeps the Duration axis labels of runs of minutes, hours and days inside the chart', async () => {
    const runs = [
      // ticks every 10 minutes, every 6 hours, every day
      { agent: 'minutes-long', durationMs: 38 * MINUTE },
      { agent: 'hours-long', durationMs: 20 * HOUR },
      { agent: 'days-long', durationMs: 80 * HOUR },
    ];
    await seedRuns(
      web.api,
      runs.map((r) => ({
        id: `${r.agent}-1`,
        agent: r.agent,
        status: 'succeeded' as const,
        ago: r.durationMs + MINUTE,
        durationMs: r.durationMs,
        steps: 0,
      })),
    );
    for (const { agent } of runs) {
      await web.page.goto(`${web.api.url}/stats?range=7d&agent=${agent}`);
      const chart = web.page.getByRole('img', { name: 'p50 and p95 duration per day' });
      await chart.waitFor({ timeout: 10_000 });
      const labels = await chart.locator('text.axis').evaluateAll((texts) => {
        const svg = texts[0]!.closest('svg')!.getBoundingClientRect();
        return texts.map((t) => ({
          text: t.textContent,
          cut: t.getBoundingClientRect().left < svg.left,
        }));
      });
      await screenshot(web.page, `duration-axis-${agent}`);
      expect(labels.length, agent).toBeGreaterThan(2);
      expect(
        labels.filter((l) => l.cut).map((l) => l.text),
        agent,
      ).toEqual([]);
    }
  });

  it('says the Stats day series are UTC days, to a viewer in another time zone', async () => {
    await seedRuns(web.api, [
      { id: 'utc-day-1', agent: 'utc-day', status: 'succeeded', ago: MINUTE, durationMs: 1000 },
    ]);
    const cdp = await web.page.context().newCDPSession(web.page);
    await cdp.send('Emulation.setTimezoneOverride', { timezoneId: 'America/Los_Angeles' });
    try {
      await web.page.goto(`${web.api.url}/stats?range=7d&agent=utc-day`);
      const hint = web.page.locator('.stat-card .stat-hint').first();
      await hint.waitFor({ timeout: 10_000 });
      // west of UTC an evening's last bar bears tomorrow's date: the page says whose days
      await expect
        .poll(() => hint.textContent())
        .toMatch(/^Last 7 days, since \d{4}-\d{2}-\d{2} \(UTC\)$/);
    } finally {
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' });
      await cdp.detach();
    }
  });
});
