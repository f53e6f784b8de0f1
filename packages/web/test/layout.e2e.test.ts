// Layout in a real browser: a run's sub-runs told apart by their ids, an agent's recent runs
// keeping their actions on a phone's screen, and status badges readable on a tinted row.

import { expect, it } from 'vitest';
import { call, ingest, seedRuns } from './seed.js';
import { browserSuite, overflowOf, signedIn, screenshot } from './browser.js';

browserSuite('layout in a real browser', () => {
  const web = signedIn();

  it('shows each sub-run id whole, the ids that differ only at their end', async () => {
    const now = Date.now();
    await ingest(web.api, [
      { type: 'run.end', run: { id: 'research-7', agent_id: 'researcher', status: 'succeeded' } },
      ...[0, 1, 2].map((i) => ({
        type: 'run.end',
        run: {
          id: `research-7-child-${i}`,
          agent_id: 'web-searcher',
          parent_run_id: 'research-7',
          status: 'succeeded',
          started_at: now - 5000 + i * 1000,
        },
      })),
    ]);
    const cut = () =>
      web.page
        .locator('.sub-runs li a')
        .evaluateAll((links) =>
          links.filter((a) => a.scrollWidth > a.clientWidth).map((a) => a.textContent),
        );
    for (const width of [1280, 375]) {
      await web.page.setViewportSize({ width, height: 860 });
      await web.page.goto(`${web.api.url}/agents/researcher/runs/research-7`);
      await expect.poll(() => web.page.locator('.sub-runs li').count()).toBe(3);
      expect(await cut()).toEqual([]);
      // the agent keeps a place beside the id
      const agent = web.page.locator('.sub-runs li .truncate').first();
      expect((await agent.boundingBox())!.width).toBeGreaterThan(30);
      await screenshot(web.page, `sub-runs-${width}`);
    }
  });

  it('keeps the end of long run ids on screen, where sub-runs differ', async () => {
    const parent = 'weekly-market-research-acme-gmbh';
    const now = Date.now();
    await ingest(web.api, [
      { type: 'run.end', run: { id: parent, agent_id: 'market-researcher', status: 'succeeded' } },
      ...[0, 1, 2, 3, 4, 5].map((i) => ({
        type: 'run.end',
        run: {
          id: `${parent}-section-${i}`,
          agent_id: 'section-writer',
          parent_run_id: parent,
          status: 'succeeded',
          started_at: now - 9000 + i * 1000,
        },
      })),
    ]);
    // whether a link's last character is drawn inside the link, not cut off past its edge
    const endShown = (links: ReturnType<typeof web.page.locator>) =>
      links.evaluateAll((els) =>
        els.map((a) => {
          const box = a.getBoundingClientRect();
          const walker = document.createTreeWalker(a, NodeFilter.SHOW_TEXT);
          let last: Text | null = null;
          for (let n = walker.nextNode(); n; n = walker.nextNode())
            if ((n as Text).data) last = n as Text;
          const range = document.createRange();
          range.setStart(last!, last!.data.length - 1);
          range.setEnd(last!, last!.data.length);
          const c = range.getBoundingClientRect();
          return c.width > 0 && c.left >= box.left - 0.5 && c.right <= box.right + 0.5;
        }),
      );
    for (const width of [1280, 375]) {
      await web.page.setViewportSize({ width, height: 860 });
      await web.page.goto(`${web.api.url}/agents/market-researcher/runs/${parent}`);
      const subRuns = web.page.locator('.sub-runs li a');
      await expect.poll(() => subRuns.count()).toBe(6);
      expect(await endShown(subRuns)).toEqual(Array(6).fill(true));
      // the whole id is still the link's text, for a copy and a screen reader
      expect(await subRuns.first().textContent()).toBe(`${parent}-section-5`);
      await screenshot(web.page, `long-sub-run-ids-${width}`);
      await web.page.goto(`${web.api.url}/runs?parent_run_id=${parent}`);
      const ids = web.page.locator('tr[data-run-id] .col-id a');
      await expect.poll(() => ids.count()).toBe(6);
      expect(await endShown(ids)).toEqual(Array(6).fill(true));
      await screenshot(web.page, `long-run-ids-${width}`);
    }
  });

  it("keeps each run's menu and a thread's and a user's last activity on screen from 640 to 1280 px", async () => {
    const agent = `customer-success-escalation-agent-${'x'.repeat(40)}`;
    const user = 'someone.with.a.rather.long.address@example-enterprise.co.uk';
    const now = Date.now();
    await ingest(web.api, [
      ...[0, 1, 2].map((i) => ({
        type: 'run.end',
        run: {
          id: `escalation-2026-12-04T09:15:00.000Z-customer-000042-attempt-${i}`,
          agent_id: agent,
          status: 'failed',
          thread_id: 'wide-thread',
          user_id: user,
          started_at: now - 60_000 * (i + 1),
          ended_at: now - 60_000 * (i + 1) + 1500,
          input: { message: 'Why was my invoice charged twice this month?' },
        },
      })),
      // a thread last active days ago, with a cost of dollars: its widest cells
      {
        type: 'run.start',
        run: {
          id: 'older-thread-1',
          agent_id: 'billing-dispute-resolution-agent',
          thread_id: 'older-thread',
          user_id: user,
          started_at: now - 3 * 86_400_000 - 4 * 3_600_000,
          input: { message: 'Please refund the duplicate charge on my account' },
        },
      },
      {
        type: 'step.end',
        step: {
          id: 'older-thread-1-llm',
          run_id: 'older-thread-1',
          type: 'llm',
          name: 'answer',
          model: 'gpt-4o',
          status: 'succeeded',
          started_at: now - 3 * 86_400_000 - 4 * 3_600_000,
          ended_at: now - 3 * 86_400_000 - 4 * 3_600_000 + 2000,
          input_tokens: 4_000_000,
          output_tokens: 900_000,
        },
      },
      {
        type: 'run.end',
        run: {
          id: 'older-thread-1',
          status: 'succeeded',
          ended_at: now - 3 * 86_400_000 - 4 * 3_600_000 + 2500,
        },
      },
      {
        type: 'run.end',
        run: {
          id: 'wide-thread-2',
          agent_id: 'billing-dispute-resolution-agent',
          status: 'succeeded',
          thread_id: 'wide-thread',
          user_id: user,
          started_at: now - 1000,
        },
      },
    ]);
    await call(
      web.api,
      'POST',
      `/runs/escalation-2026-12-04T09:15:00.000Z-customer-000042-attempt-0/scores`,
      {
        name: 'resolution-quality',
        value: 0.25,
      },
    );
    await call(
      web.api,
      'POST',
      `/runs/escalation-2026-12-04T09:15:00.000Z-customer-000042-attempt-0/scores`,
      {
        name: 'customer-feedback',
        value: false,
      },
    );
    const overflow = () =>
      web.page
        .locator('.table-wrap')
        .first()
        .evaluate((el) => el.scrollWidth - el.clientWidth);
    for (const width of [640, 700, 768, 900, 1024, 1100, 1280]) {
      await web.page.setViewportSize({ width, height: 800 });
      await web.page.goto(`${web.api.url}/runs?agent=${agent}`);
      const menus = web.page.getByRole('button', { name: /Actions for run/ });
      await expect.poll(() => menus.count()).toBe(3);
      expect(await overflow(), `runs at ${width} px`).toBeLessThanOrEqual(0);
      await screenshot(web.page, `runs-long-names-${width}`);
      await web.page.goto(`${web.api.url}/threads?user_id=${encodeURIComponent(user)}`);
      await web.page.locator('.threads-table tbody tr').first().waitFor();
      expect(await overflow(), `threads at ${width} px`).toBeLessThanOrEqual(0);
      expect(await overflowOf(web.page), `the threads page at ${width} px`).toBe(0);
      const last = web.page.locator('.threads-table tbody tr').first().locator('.col-thread-last');
      await expect.poll(async () => (await last.boundingBox())?.width ?? 0).toBeGreaterThan(0);
      await screenshot(web.page, `threads-long-names-${width}`);
      await web.page.goto(`${web.api.url}/users?agent=${agent}`);
      const userRow = web.page.locator('.users-table tbody tr').first();
      await userRow.waitFor();
      expect(await overflow(), `users at ${width} px`).toBeLessThanOrEqual(0);
      expect(await overflowOf(web.page), `the users page at ${width} px`).toBe(0);
      const active = userRow.locator('.col-user-last');
      await expect.poll(async () => (await active.boundingBox())?.width ?? 0).toBeGreaterThan(0);
      await screenshot(web.page, `users-long-names-${width}`);
    }
  });

  it("shows a score's value whole in a runs list, cutting a long name instead", async () => {
    const now = Date.now();
    await ingest(web.api, [
      {
        type: 'run.end',
        run: { id: 'judged-1', agent_id: 'judged', status: 'succeeded', started_at: now - 2000 },
      },
    ]);
    for (const score of [
      { name: 'answer-relevance-by-the-llm-judge', value: 0.25 },
      { name: 'customer-satisfaction-survey', value: 'very dissatisfied' },
    ])
      expect((await call(web.api, 'POST', '/runs/judged-1/scores', score)).status).toBe(201);
    await web.page.setViewportSize({ width: 1280, height: 800 });
    await web.page.goto(`${web.api.url}/runs?agent=judged`);
    const chips = web.page.locator('tr[data-run-id="judged-1"] .score-chip');
    await expect.poll(() => chips.count()).toBe(2);
    // the last character the eye reads in each chip is drawn inside it
    const valueShown = await chips.evaluateAll((els) =>
      els.map((chip) => {
        const box = chip.getBoundingClientRect();
        const shown = chip.querySelector('[aria-hidden="true"]')!;
        const walker = document.createTreeWalker(shown, NodeFilter.SHOW_TEXT);
        let last: Text | null = null;
        for (let n = walker.nextNode(); n; n = walker.nextNode())
          if ((n as Text).data.trim()) last = n as Text;
        const range = document.createRange();
        range.setStart(last!, last!.data.length - 1);
        range.setEnd(last!, last!.data.length);
        const c = range.getBoundingClientRect();
        return c.width > 0 && c.right <= box.right + 0.5;
      }),
    );
    expect(valueShown).toEqual([true, true]);
    await screenshot(web.page, 'score-chips-long-names');
  });

  it('keeps a toast on screen, wrapping a long name it quotes', async () => {
    await ingest(web.api, [
      {
        type: 'run.end',
        run: { id: 'toasted-1', agent_id: 'toasted', status: 'succeeded', started_at: Date.now() },
      },
    ]);
    await web.page.setViewportSize({ width: 1280, height: 800 });
    await web.page.goto(`${web.api.url}/runs/toasted-1`);
    await web.page.getByRole('button', { name: 'Add score' }).click();
    // a name without spaces, as evaluators' ids often are: "Score <name> saved"
    await web.page.getByLabel('Name', { exact: true }).fill('x'.repeat(200));
    await web.page.getByLabel('Value', { exact: true }).fill('1');
    await web.page.getByRole('button', { name: 'Save score' }).click();
    const toast = web.page.locator('.toast', { hasText: 'saved' });
    await toast.waitFor();
    const box = (await toast.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(1280);
    await screenshot(web.page, 'toast-long-name', false);
  });

  it("keeps the actions of an agent's recent runs on screen, from a phone to a tablet", async () => {
    const now = Date.now();
    // the widest cells a run list shows: a run to start later ("starts in 54 min", "waiting"),
    // durations of minutes, errors under the ids, scores
    await ingest(web.api, [
      ...Array.from({ length: 3 }, (_, i) => ({
        type: 'run.end',
        run: {
          id: crypto.randomUUID(),
          agent_id: 'phone-panel',
          status: i === 1 ? 'failed' : 'succeeded',
          started_at: now - 60_000 * (i + 11),
          ended_at: now - 60_000 * (i + 11) + 205,
          ...(i === 1 ? { error: { message: 'GitHub API answered 502' } } : {}),
        },
      })),
      {
        type: 'run.end',
        run: {
          id: 'phone-panel-stopped',
          agent_id: 'phone-panel',
          status: 'cancelled',
          started_at: now - 7 * 60_000,
          ended_at: now - 7 * 60_000 + 72_000,
          error: { message: 'stopped from the dashboard' },
        },
      },
    ]);
    for (const score of [
      { name: 'helpfulness', value: 0.823 },
      { name: 'feedback', value: true },
    ])
      expect((await call(web.api, 'POST', '/runs/phone-panel-stopped/scores', score)).status).toBe(
        201,
      );
    const later = await call(web.api, 'POST', '/agents/phone-panel/runs', {
      delay_ms: 54 * 60_000,
    });
    expect(later.status).toBe(202);
    for (const width of [320, 375, 640, 720, 900, 960, 1024]) {
      await web.page.setViewportSize({ width, height: 812 });
      await web.page.goto(`${web.api.url}/?agent=phone-panel`);
      const panel = web.page.getByRole('region', { name: 'Recent runs of phone-panel' });
      const menus = panel.getByRole('button', { name: /Actions for run/ });
      await expect.poll(() => menus.count()).toBe(5);
      await panel.getByTestId('starts-at').waitFor();
      const wrap = panel.locator('.table-wrap');
      expect(
        await wrap.evaluate((el) => el.scrollWidth - el.clientWidth),
        `scrolled sideways at ${width} px`,
      ).toBeLessThanOrEqual(0);
      const within = (await wrap.boundingBox())!;
      for (const box of await menus.evaluateAll((els) =>
        els.map((el) => el.getBoundingClientRect().toJSON() as DOMRect),
      ))
        expect(box.right, `a menu at ${width} px`).toBeLessThanOrEqual(within.x + within.width);
      await screenshot(web.page, `agent-panel-${width}`);
    }
  });
  it("keeps the status badges of a compared run's differing rows at AA contrast, light and dark", async () => {
    await seedRuns(web.api, [
      {
        id: 'cmp-a11y',
        agent: 'comparer',
        status: 'failed',
        ago: 9000,
        durationMs: 2000,
        error: 'boom',
      },
    ]);
    const retry = await call<{ id: string }>(web.api, 'POST', '/runs/cmp-a11y/retry');
    expect(retry.status).toBe(201);
    await web.page.goto(`${web.api.url}/compare/cmp-a11y/${retry.body.id}`);
    const badges = web.page.locator('.compare-table tr.differs .status-badge');
    await expect.poll(() => badges.count()).toBe(2);
    /** Each badge's text against what is drawn behind it: its tint over the row's. */
    const ratios = () =>
      badges.evaluateAll((els) => {
        const rgba = (c: string) => {
          const n = c.match(/[\d.]+/g)!.map(Number);
          // color(srgb r g b / a) is in 0-1, rgb(a) in 0-255
          const k = c.startsWith('color(') ? 255 : 1;
          return [n[0]! * k, n[1]! * k, n[2]! * k, n[3] ?? 1];
        };
        const behind = (el: Element | null): number[] => {
          if (!el) return [255, 255, 255];
          const [r, g, b, a] = rgba(getComputedStyle(el).backgroundColor);
          if (a! >= 1) return [r!, g!, b!];
          const under = behind(el.parentElement);
          return [r!, g!, b!].map((v, i) => v * a! + under[i]! * (1 - a!));
        };
        const lum = (rgb: number[]) => {
          const [r, g, b] = rgb.map((v) => {
            const x = v / 255;
            return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
          });
          return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
        };
        return els.map((el) => {
          const a = lum(rgba(getComputedStyle(el).color).slice(0, 3));
          const b = lum(behind(el));
          return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        });
      });
    try {
      for (const scheme of ['light', 'dark'] as const) {
        await web.page.emulateMedia({ colorScheme: scheme });
        for (const r of await ratios()) expect(r, scheme).toBeGreaterThanOrEqual(4.5);
      }
    } finally {
      await web.page.emulateMedia({ colorScheme: 'light' });
    }
  });
});
