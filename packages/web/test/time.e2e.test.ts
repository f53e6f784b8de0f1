// Time as the dashboard shows it in a real browser: the axes of the Stats charts for long
// runs, and the Stats page's days, the viewer's own, read in another time zone.

import { expect, it } from 'vitest';
import { localDayOf, localDayStart } from '@runlog/core';
import { seedRuns } from './seed.js';
import { browserSuite, logIn, openBrowser, signedIn, screenshot } from './browser.js';

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

  it("buckets the Stats page's days at the viewer's midnight, in Los Angeles", async () => {
    const zone = 'America/Los_Angeles';
    // a Los Angeles midnight at least an hour ago: one run half an hour before it, one after
    // (the same UTC day: UTC days would put both in one bar)
    const now = Date.now();
    let day = localDayOf(zone, now);
    if (now - localDayStart(zone, day) < HOUR) day -= 1;
    const midnight = localDayStart(zone, day);
    await seedRuns(web.api, [
      {
        id: 'la-day-1',
        agent: 'la-day',
        status: 'succeeded',
        ago: now - (midnight - 30 * MINUTE),
        durationMs: 1000,
        steps: 0,
      },
      {
        id: 'la-day-2',
        agent: 'la-day',
        status: 'succeeded',
        ago: now - (midnight + 30 * MINUTE),
        durationMs: 1000,
        steps: 0,
      },
    ]);
    const cdp = await web.page.context().newCDPSession(web.page);
    await cdp.send('Emulation.setTimezoneOverride', { timezoneId: zone });
    try {
      await web.page.goto(`${web.api.url}/stats?range=7d&agent=la-day`);
      const hint = web.page.locator('.stat-card .stat-hint').first();
      await hint.waitFor({ timeout: 10_000 });
      // the range starts at the viewer's midnight six days back, named by its local date
      const first = new Date((localDayOf(zone, Date.now()) - 6) * 86_400_000);
      await expect
        .poll(() => hint.textContent())
        .toBe(`Last 7 days, since ${first.toISOString().slice(0, 10)}`);
      // the runs chart's figures, one row per day: the two runs in the two days beside the
      // midnight, the last row today as the viewer's calendar names it
      const rows = await web.page
        .locator('table', { has: web.page.locator('caption', { hasText: 'Runs per day' }) })
        .locator('tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) => ({
            day: tr.querySelector('th')!.textContent,
            runs: [...tr.querySelectorAll('td')].reduce(
              (n, td) => n + (Number(td.textContent) || 0),
              0,
            ),
          })),
        );
      await screenshot(web.page, 'stats-los-angeles-days');
      expect(rows).toHaveLength(7);
      const today = localDayOf(zone, Date.now());
      const runs = rows.map((r) => r.runs);
      expect(runs[6 - (today - day)]).toBe(1);
      expect(runs[6 - (today - day) - 1]).toBe(1);
      expect(runs.reduce((a, b) => a + b, 0)).toBe(2);
      const todayText = await web.page.evaluate(() =>
        new Date().toLocaleDateString(undefined, { dateStyle: 'medium' }),
      );
      expect(rows[6]!.day).toBe(todayText);
    } finally {
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' });
      await cdp.detach();
    }
  });

  it('says the last 24 hours began yesterday when their first hour is on the day before', async () => {
    // a zone without daylight saving time, so 7:25 is 7:25 on any day, and a whole hour from UTC
    const zone = 'America/Phoenix';
    const now = Date.now();
    let at = localDayStart(zone, localDayOf(zone, now)) + 7 * HOUR + 25 * MINUTE;
    if (at > now) at -= 24 * HOUR;
    await seedRuns(web.api, [
      {
        id: 'yesterday-1',
        agent: 'since-yesterday',
        status: 'succeeded',
        ago: now - (at - 30 * MINUTE),
        durationMs: 1000,
        steps: 0,
      },
    ]);
    // a browser of its own: a fake clock is its whole context's
    const other = await openBrowser();
    try {
      const page = other.page;
      await logIn(page, web.api.url, web.api.key);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: zone });
      // 7:25 AM: the 24 whole hours start at 8:00 AM the day before, not an hour to come
      await page.clock.setFixedTime(at);
      await page.goto(`${web.api.url}/stats?range=24h&agent=since-yesterday`);
      const hint = page.locator('.stat-card .stat-hint').first();
      await hint.waitFor({ timeout: 10_000 });
      // (the locale puts a narrow no-break space before AM)
      await expect
        .poll(async () => (await hint.textContent())?.replace(/\s/g, ' '))
        .toBe('Last 24 hours, since yesterday 8:00 AM');
      await screenshot(page, 'stats-24h-since-yesterday', false);
    } finally {
      await other.close();
    }
  });

  it("shows UTC days, and says so, when the server does not know the browser's zone", async () => {
    await seedRuns(web.api, [
      {
        id: 'zone-1',
        agent: 'zone-kept',
        status: 'succeeded',
        ago: HOUR,
        durationMs: 1000,
        steps: 0,
      },
    ]);
    const zone = 'Asia/Tokyo';
    const asked: string[] = [];
    // a server whose time zone database lacks the browser's zone (an older ICU)
    await web.page.route('**/api/v1/runs/stats?*', (route) => {
      const tz = new URL(route.request().url()).searchParams.get('tz') ?? '';
      asked.push(tz);
      if (tz !== zone) return route.continue();
      return route.fulfill({
        status: 400,
        contentType: 'application/json',
        body: JSON.stringify({
          error: {
            code: 'invalid_request',
            message: 'query.tz: must be an IANA time zone such as America/Los_Angeles, or UTC',
            details: [{ field: 'query.tz', message: 'must be an IANA time zone' }],
          },
        }),
      });
    });
    const cdp = await web.page.context().newCDPSession(web.page);
    await cdp.send('Emulation.setTimezoneOverride', { timezoneId: zone });
    try {
      await web.page.goto(`${web.api.url}/stats?range=7d&agent=zone-kept`);
      const note = web.page.getByRole('note');
      await note.waitFor({ timeout: 10_000 });
      expect(await note.textContent()).toBe(
        'Days are UTC days: this server does not know your time zone (Asia/Tokyo).',
      );
      // the figures are there, from UTC days
      const runs = web.page.locator('.stat-card', { hasText: 'Runs' }).first();
      await expect.poll(() => runs.locator('.stat-value').textContent()).toBe('1');
      await screenshot(web.page, 'stats-zone-refused');
      expect(asked.slice(0, 2)).toEqual([zone, 'UTC']);
      expect(await web.page.getByRole('alert').count()).toBe(0);
    } finally {
      await web.page.unroute('**/api/v1/runs/stats?*');
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' });
      await cdp.detach();
    }
  });
});
