// What the on-call engineer reads in a real browser during an incident: which failures are
// happening now, and which are old news.

import { expect, it } from 'vitest';
import { call, seedRuns } from './seed.js';
import { browserSuite, overflowOf, signedIn, screenshot } from './browser.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

browserSuite('an incident in a real browser', () => {
  const web = signedIn();

  it("says how long ago each agent's last error was, so an old one does not read as now", async () => {
    await seedRuns(web.api, [
      // failed hours ago, fine since
      {
        id: 'old-fail',
        agent: 'quiet-bot',
        status: 'failed',
        ago: 5 * HOUR + 10 * MINUTE,
        durationMs: 900,
        error: 'upstream 503',
      },
      { id: 'old-ok', agent: 'quiet-bot', status: 'succeeded', ago: 2 * MINUTE, durationMs: 900 },
      // failing now
      {
        id: 'new-fail',
        agent: 'broken-bot',
        status: 'failed',
        // ended 2 min 30 s ago: "2 min ago" however long a loaded machine takes to draw it
        ago: 2 * MINUTE + 30_000,
        durationMs: 900,
        error: "Cannot read properties of undefined (reading 'total')",
      },
    ]);
    const { page, server } = web;
    await page.goto(`${server.url}/`);
    const errorOf = (agent: string) =>
      page.locator(`button.agent-row[data-agent-id="${agent}"] .col-error`);
    await errorOf('broken-bot').getByText("reading 'total'").waitFor();
    await expect.poll(() => errorOf('quiet-bot').textContent()).toBe('5 h ago: upstream 503');
    expect(await errorOf('broken-bot').textContent()).toBe(
      "2 min ago: Cannot read properties of undefined (reading 'total')",
    );
    await screenshot(page, 'incident-last-error-age', false);

    // on a phone the error goes under the agent's name, its age with it
    await page.setViewportSize({ width: 390, height: 800 });
    const narrow = page.locator('button.agent-row[data-agent-id="quiet-bot"] .agent-error-narrow');
    await expect.poll(() => narrow.textContent()).toBe('5 h ago: upstream 503');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('opens a run from its id alone, as the CLI and the logs print it', async () => {
    await seedRuns(web.api, [
      {
        id: 'by-id-1',
        agent: 'by-id-bot',
        status: 'failed',
        ago: MINUTE,
        durationMs: 900,
        error: 'boom',
      },
    ]);
    const { page, server } = web;
    await page.goto(`${server.url}/runs/by-id-1`);
    await page.waitForURL(`${server.url}/agents/by-id-bot/runs/by-id-1`, { timeout: 10_000 });
    await page.getByRole('heading', { name: /^Run/ }).first().waitFor();
    expect(await page.locator('.run-detail').getByText('boom').first().isVisible()).toBe(true);
    // an id no run has says so, at the address the user typed
    await page.goto(`${server.url}/runs/no-such-run`);
    await page.getByRole('heading', { name: 'Run not found' }).waitFor();
    expect(page.url()).toBe(`${server.url}/runs/no-such-run`);
  });

  it('lists what each failed run failed with, so what the failures share shows', async () => {
    await seedRuns(web.api, [
      { id: 'list-ok', agent: 'list-bot', status: 'succeeded', ago: 3 * MINUTE, durationMs: 900 },
      {
        id: 'list-fail',
        agent: 'list-bot',
        status: 'failed',
        ago: 2 * MINUTE,
        durationMs: 900,
        error: "Cannot read properties of undefined (reading 'total')",
      },
    ]);
    const { page, server } = web;
    await page.goto(`${server.url}/runs?agent=list-bot`);
    const row = (id: string) => page.locator(`tr[data-run-id="${id}"]`);
    await row('list-fail').waitFor();
    expect(await row('list-fail').locator('.run-error-line').textContent()).toBe(
      "Cannot read properties of undefined (reading 'total')",
    );
    expect(await row('list-ok').locator('.run-error-line').count()).toBe(0);
    await screenshot(page, 'incident-runs-errors', false);
  });

  it('says a queued run waits on a busy worker, not on none, when its worker holds a hung run', async () => {
    const { api, page, server } = web;
    expect((await call(api, 'POST', '/agents/busy-bot/runs', { id: 'busy-a' })).status).toBe(202);
    const claim = await call(api, 'POST', '/workers/claim', {
      agents: ['busy-bot'],
      worker_id: 'busy-host:1',
      max: 1,
    });
    expect(claim.status).toBe(200);
    expect((await call(api, 'POST', '/agents/busy-bot/runs', { id: 'busy-b' })).status).toBe(202);
    // its one slot taken for minutes: the worker has not asked for runs since
    await server.ctx.db.kysely
      .updateTable('agents')
      .set({ worker_seen_at: Date.now() - 5 * MINUTE })
      .where('id', '=', 'busy-bot')
      .execute();
    await page.goto(`${server.url}/agents/busy-bot/runs/busy-b`);
    const note = page.locator('.run-waiting');
    await expect
      .poll(() => note.textContent())
      .toMatch(
        /The worker of busy-bot online is busy with a run and has not asked for more since 5 min ago/,
      );
    await screenshot(page, 'incident-busy-worker', false);
  });

  it('says on the Agents page when an agent has runs queued and no worker ever asked for them', async () => {
    const { api, page, server } = web;
    // a schedule queues runs that nothing takes
    expect((await call(api, 'POST', '/agents/lonely-bot/runs', { id: 'lonely-1' })).status).toBe(
      202,
    );
    await page.goto(`${server.url}/`);
    const last = (agent: string) =>
      page.locator(`button.agent-row[data-agent-id="${agent}"] .col-last`);
    await expect.poll(() => last('lonely-bot').textContent()).toMatch(/^queued .*· no worker$/);
    // a worker that asks (busy-bot's, above) is there: its queued run just waits its turn
    expect(await last('busy-bot').textContent()).not.toContain('no worker');
    // how far the last run's text reaches into the Runs column beside it (0 or less: not)
    const overlap = (agent: string) =>
      last(agent).evaluate((cell) => {
        const text = document.createRange();
        text.selectNodeContents(cell);
        return (
          text.getBoundingClientRect().right - cell.nextElementSibling!.getBoundingClientRect().left
        );
      });
    expect(await overlap('lonely-bot'), 'at 1280 px').toBeLessThanOrEqual(0);
    await screenshot(page, 'incident-no-worker', false);
    try {
      // on narrower screens, the text wraps in its column rather than run on
      for (const width of [1100, 960, 901, 760, 640]) {
        await page.setViewportSize({ width, height: 800 });
        expect(await overlap('lonely-bot'), `at ${width} px`).toBeLessThanOrEqual(0);
      }
      // on a phone too, without widening the page
      await page.setViewportSize({ width: 390, height: 800 });
      expect(await last('lonely-bot').textContent()).toContain('no worker');
      expect(await overlap('lonely-bot'), 'at 390 px').toBeLessThanOrEqual(0);
      expect(await overflowOf(page)).toBeLessThanOrEqual(0);
      await screenshot(page, 'incident-no-worker-narrow', false);
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
  });

  it('says on the Agents page, as on the run page, that no worker takes a queued run once its workers stopped', async () => {
    const { api, page, server } = web;
    // each agent had a worker, which asked for its runs (none queued yet) and then stopped
    for (const [agent, ago] of [
      ['gone-bot', 10 * MINUTE],
      ['left-bot', 30_000],
    ] as const) {
      const worker = `${agent}-host:1`;
      const claim = await call(api, 'POST', '/workers/claim', {
        agents: [agent],
        worker_id: worker,
      });
      expect(claim.status).toBe(204);
      expect((await call(api, 'DELETE', `/workers/${encodeURIComponent(worker)}`)).status).toBe(
        204,
      );
      expect((await call(api, 'POST', `/agents/${agent}/runs`, { id: `${agent}-1` })).status).toBe(
        202,
      );
      await server.ctx.db.kysely
        .updateTable('agents')
        .set({ worker_seen_at: Date.now() - ago })
        .where('id', '=', agent)
        .execute();
    }
    await page.goto(`${server.url}/`);
    const last = (agent: string) =>
      page.locator(`button.agent-row[data-agent-id="${agent}"] .col-last`);
    // the last asked 10 minutes ago: none has since
    await expect
      .poll(() => last('gone-bot').textContent())
      .toMatch(/^queued .* · no worker since 10 min ago$/);
    expect(await last('gone-bot').locator('.no-worker').getAttribute('title')).toMatch(
      /^No worker has asked for runs of gone-bot since .*: its queued runs wait until one does$/,
    );
    // the last asked half a minute ago and has stopped
    await expect
      .poll(() => last('left-bot').textContent())
      .toMatch(/^queued .* · no worker since 3\d s ago$/);
    expect(await last('left-bot').locator('.no-worker').getAttribute('title')).toMatch(
      /^No worker of left-bot is running: the last one asked for its runs at .* and has stopped$/,
    );
    await screenshot(page, 'incident-no-worker-since', false);
    // each run's page says the same
    await page.goto(`${server.url}/agents/gone-bot/runs/gone-bot-1`);
    await expect
      .poll(() => page.locator('.run-waiting').textContent())
      .toMatch(/No worker has asked for runs of gone-bot since 10 min ago\./);
    await page.goto(`${server.url}/agents/left-bot/runs/left-bot-1`);
    await expect
      .poll(() => page.locator('.run-waiting').textContent())
      .toMatch(/No worker of left-bot is running: the last one asked for its runs 3\d s ago/);
  });

  it("shows a queued run's tokens, cost and steps as not known yet, and counts them once it starts", async () => {
    const { api, page, server } = web;
    expect((await call(api, 'POST', '/agents/waiting-bot/runs', { id: 'waiting-1' })).status).toBe(
      202,
    );
    await page.goto(`${server.url}/agents/waiting-bot/runs/waiting-1`);
    const fact = (label: string) =>
      page
        .locator('.facts > div', { has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }) })
        .locator('dd');
    await page.locator('.run-waiting').waitFor();
    // not "0 (0 in / 0 out)", "$0" and "0 · 0 LLM · 0 tool": nothing is measured yet
    for (const label of ['Tokens', 'Cost', 'Steps'])
      expect(await fact(label).textContent()).toBe('—');
    expect(await page.locator('#timeline-title').textContent()).toBe('Timeline ');
    await screenshot(page, 'queued-run-facts', false);
    // a worker takes it: from then on its figures are counted, zero or not
    const claim = await call(api, 'POST', '/workers/claim', {
      agents: ['waiting-bot'],
      worker_id: 'waiting-host:1',
    });
    expect(claim.status).toBe(200);
    await expect.poll(() => fact('Steps').textContent()).toBe('0 · 0 LLM · 0 tool');
    expect(await fact('Tokens').textContent()).toBe('0 (0 in / 0 out)');
    expect(await fact('Cost').textContent()).toBe('$0');
    expect(await page.locator('#timeline-title').textContent()).toBe('Timeline 0 steps');
  });
});
