// An agent's budget over 24 hours in a real browser: set in the settings dialog (a bad one
// refused beside its input), shown against the row's 24 h cost, the row badged Over budget
// once recorded spend reaches it, a queued run's page saying it waits for the budget, and a
// budget raised or cleared elsewhere (the CLI, another tab) shown live.

import { beforeAll, expect, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import type { AgentSummary, Run } from '@runlog/core';
import { call, ingest, type Api } from './seed.js';
import { browserSuite, overflowOf, screenshot, signedIn, type SignedIn } from './browser.js';

const MIN = 60_000;
/** How long a live update may take to show on a loaded machine (CI runs test files side by side). */
const LIVE = { timeout: 15_000 };

browserSuite("an agent's budget over 24 hours in a real browser", () => {
  const web = signedIn();
  let server: SignedIn['server'];
  let api: Api;
  let page: Page;
  let spent = 0;

  const row = (agentId: string) => page.locator(`button.agent-row[data-agent-id="${agentId}"]`);
  const getAgent = async (agentId: string) => {
    const res = await call<AgentSummary>(api, 'GET', `/agents/${agentId}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const openAgent = async (agentId: string) => {
    await page.goto(`${server.url}/`);
    await row(agentId).click();
    await page.getByRole('region', { name: `Recent runs of ${agentId}` }).waitFor();
  };
  const openSettings = async () => {
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: /^Settings of / });
    await dialog.waitFor();
    return dialog;
  };
  const isPut = (agentId: string) => (r: Request) =>
    r.method() === 'PUT' && new URL(r.url()).pathname === `/api/v1/agents/${agentId}`;
  const setBudget = async (agentId: string, usd: number | null) => {
    const res = await call(api, 'PUT', `/agents/${agentId}`, { max_cost_usd_24h: usd });
    expect(res.status).toBe(200);
  };
  /**
   * Records a finished run of `agentId` started `ago` ms before now, one LLM step costing `usd`,
   * ended `status`; answers its id.
   */
  const spend = async (
    agentId: string,
    usd: number,
    ago = 5 * MIN,
    status: 'succeeded' | 'failed' = 'succeeded',
  ) => {
    const id = `${agentId}-spend-${++spent}`;
    const start = Date.now() - ago;
    await ingest(api, [
      {
        type: 'run.start',
        run: { id, agent_id: agentId, trigger: 'api', source: 'sdk', started_at: start },
      },
      {
        type: 'step.end',
        step: {
          id: `${id}-s0`,
          run_id: id,
          seq: 0,
          type: 'llm',
          name: 'draft reply',
          started_at: start,
          ended_at: start + 1000,
          status: 'succeeded',
          cost_usd: usd,
        },
      },
      { type: 'run.end', run: { id, status, ended_at: start + 1500 } },
    ]);
    return id;
  };
  /** A worker asks for `agentId`'s runs: one serves it, so nothing but its budget holds them. */
  const serve = async (agentId: string) => {
    const claim = { agents: [agentId], worker_id: `${agentId}-worker` };
    expect((await call(api, 'POST', '/workers/claim', claim)).status).toBe(204);
  };
  const retriesOf = async (runId: string) =>
    (await call<{ runs: Run[] }>(api, 'GET', `/runs?retry_of=${runId}`)).body.runs;

  beforeAll(async () => {
    ({ server, api, page } = web);
    // the size the layout is judged at: a cost column that wraps or runs over shows here
    await page.setViewportSize({ width: 1400, height: 900 });
    await spend('spend-bot', 0.02);
    await spend('free-bot', 0.02);
    // started more than 24 hours ago: not in the figure the budget is held to
    await spend('spend-bot', 5, 25 * 60 * MIN);
    const scheduled = await call(api, 'PUT', '/agents/spend-bot', {
      schedule: { cron: '0 9 * * *', timezone: 'UTC' },
    });
    expect(scheduled.status).toBe(200);
  }, 120_000);

  it('sets a budget in the settings dialog, refusing a bad one, and shows it against the cost', async () => {
    await openAgent('spend-bot');
    let dialog = await openSettings();
    const input = dialog.getByLabel('Budget per 24 hours (US$)');
    expect(await input.inputValue()).toBe('');
    const help = await dialog
      .locator(`[id="${await input.getAttribute('id')}-help"]`)
      .textContent();
    expect(help).toContain(
      'While the runs it started in the last 24 hours cost this much or more, its queued runs wait and its schedule skips its slots',
    );
    expect(help).toContain('Empty: no budget.');
    expect(await dialog.getByTestId('settings-spent-24h').textContent()).toBe(
      'Its runs of the last 24 hours cost $0.02.',
    );

    // refused beside its input with the per-run cost's message, and nothing sent
    const puts: unknown[] = [];
    const onRequest = (r: Request) => {
      if (isPut('spend-bot')(r)) puts.push(r.postDataJSON());
    };
    page.on('request', onRequest);
    await input.fill('0');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => input.getAttribute('aria-invalid'), LIVE).toBe('true');
    expect(
      await dialog.locator(`[id="${await input.getAttribute('id')}-error"]`).textContent(),
    ).toBe('Enter a number above 0, or leave it empty');
    expect(puts).toEqual([]);
    await input.fill('0.05');
    expect(await input.getAttribute('aria-invalid')).toBeNull();
    await screenshot(page, 'agent-budget-settings', false);

    // saved: the budget alone is sent
    const sent = page.waitForRequest(isPut('spend-bot'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect((await sent).postDataJSON()).toEqual({ max_cost_usd_24h: 0.05 });
    await dialog.waitFor({ state: 'hidden' });
    expect((await getAgent('spend-bot')).max_cost_usd_24h).toBe(0.05);

    // the row: the budget among its settings, the cost against it, no badge under it
    const cost = row('spend-bot').locator('.col-cost');
    await expect.poll(() => cost.locator('.cost-budget').textContent(), LIVE).toBe('of $0.05');
    expect(await cost.locator('.cost-spent').textContent()).toBe('$0.02');
    expect(await cost.getAttribute('aria-label')).toBe(
      'cost in 24 hours $0.02 of its $0.05 budget',
    );
    expect(await row('spend-bot').locator('.agent-budget').textContent()).toBe('budget $0.05/24 h');
    expect(await row('spend-bot').locator('.agent-over-budget').count()).toBe(0);
    // an agent without one reads its cost alone
    expect(await row('free-bot').locator('.col-cost').textContent()).toBe('$0.02');
    expect(await row('free-bot').locator('.agent-budget').count()).toBe(0);

    // what the server holds, after a reload; saving it unchanged sends nothing
    await openAgent('spend-bot');
    dialog = await openSettings();
    expect(await dialog.getByLabel('Budget per 24 hours (US$)').inputValue()).toBe('0.05');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect
      .poll(() => page.locator('.toast').last().textContent())
      .toContain('No changes to save');
    page.off('request', onRequest);
    expect(puts).toEqual([{ max_cost_usd_24h: 0.05 }]);
  });

  it("badges the row Over budget once its runs' cost reaches the budget, and a queued run's page says it waits", async () => {
    await setBudget('spend-bot', 0.05);
    await page.goto(`${server.url}/`);
    const badge = row('spend-bot').locator('.agent-over-budget');
    const cost = row('spend-bot').locator('.col-cost');
    await expect.poll(() => cost.locator('.cost-spent').textContent(), LIVE).toBe('$0.02');
    expect(await badge.count()).toBe(0);

    // spend recorded while the page is open: $0.06 of $0.05
    await spend('spend-bot', 0.02);
    await spend('spend-bot', 0.02);
    await expect.poll(() => badge.textContent(), LIVE).toBe('Over budget');
    const summary = await getAgent('spend-bot');
    expect(summary.counts_24h.cost_usd).toBeCloseTo(0.06, 9);
    expect(await cost.locator('.cost-spent').textContent()).toBe('$0.06');
    expect(await cost.getAttribute('class')).toContain('over-budget');
    expect(await cost.getAttribute('aria-label')).toBe(
      'cost in 24 hours $0.06 of its $0.05 budget, over budget',
    );
    // the server's budget watch notes since when, within a second: the page may have it yet
    const said =
      ": its runs of the last 24 hours cost $0.06, at or over its budget of $0.05. Workers are handed none of its queued runs and its schedule skips its slots until the last 24 hours' cost falls below $0.05 or the budget is raised; runs under way go on";
    expect((await badge.getAttribute('title'))!.endsWith(said)).toBe(true);
    await expect
      .poll(async () => (await getAgent('spend-bot')).over_budget_since, LIVE)
      .not.toBeNull();
    await page.reload();
    await expect.poll(() => badge.getAttribute('title'), LIVE).toMatch(/^Over budget since \S/);
    expect((await badge.getAttribute('title'))!.endsWith(said)).toBe(true);

    // the cost column stays one figure a line, inside its column, at 1400 and at 1280 px
    for (const width of [1400, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      for (const part of ['.cost-spent', '.cost-budget']) {
        const box = await cost.locator(part).boundingBox();
        expect(box!.height, `${part} at ${width} px`).toBeLessThan(20);
      }
      expect(await cost.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
      const [cell, next] = [
        await cost.boundingBox(),
        await row('spend-bot').locator('.col-error').boundingBox(),
      ];
      expect(cell!.x + cell!.width).toBeLessThanOrEqual(next!.x);
      expect(await overflowOf(page)).toBeLessThanOrEqual(0);
    }
    // a phone hides the cost column: the badge, beside the name, still says it
    await page.setViewportSize({ width: 375, height: 812 });
    expect(await badge.isVisible()).toBe(true);
    expect(await cost.isVisible()).toBe(false);
    expect(await overflowOf(page)).toBeLessThanOrEqual(0);
    await screenshot(page, 'agent-budget-phone', false);
    await page.setViewportSize({ width: 1400, height: 900 });
    await screenshot(page, 'agent-budget-over', false);

    // a run queued now waits for the budget, not for a worker
    const queued = await call<Run>(api, 'POST', '/agents/spend-bot/runs', { input: { n: 1 } });
    expect(queued.status).toBe(202);
    await page.goto(`${server.url}/agents/spend-bot/runs/${queued.body.id}`);
    const notice = page.getByTestId('run-agent-over-budget');
    await expect
      .poll(() => notice.textContent())
      .toBe(
        "Waiting: its agent is over its budget. The runs spend-bot started in the last 24 hours cost $0.06, at or over its budget of $0.05 per 24 hours: no worker is handed its runs until that falls below it. Raise the budget in the agent's settings to start this run now.",
      );
    expect(await notice.getByRole('link', { name: 'spend-bot' }).getAttribute('href')).toBe(
      '/?agent=spend-bot',
    );
    expect(await page.getByText('Waiting for a worker.').count()).toBe(0);
    await screenshot(page, 'agent-budget-run', false);

    // raised elsewhere: the run waits for a worker again, with no reload
    await setBudget('spend-bot', 1);
    await page.getByText('Waiting for a worker.').waitFor();
    expect(await notice.count()).toBe(0);
  });

  it('takes the badge off live when the budget is raised elsewhere, and the budget off when cleared', async () => {
    await setBudget('spend-bot', 0.05);
    await page.goto(`${server.url}/`);
    const badge = row('spend-bot').locator('.agent-over-budget');
    const cost = row('spend-bot').locator('.col-cost');
    await expect.poll(() => badge.textContent(), LIVE).toBe('Over budget');

    await setBudget('spend-bot', 20);
    await expect.poll(() => badge.count(), LIVE).toBe(0);
    expect(await cost.locator('.cost-budget').textContent()).toBe('of $20');
    expect(await cost.getAttribute('class')).not.toContain('over-budget');
    expect(await row('spend-bot').locator('.agent-budget').textContent()).toBe('budget $20/24 h');

    // lowered to what was spent: over again, at the budget itself
    await setBudget('spend-bot', 0.06);
    await expect.poll(() => badge.textContent(), LIVE).toBe('Over budget');

    await setBudget('spend-bot', null);
    await expect.poll(() => badge.count(), LIVE).toBe(0);
    await expect.poll(() => row('spend-bot').locator('.agent-budget').count(), LIVE).toBe(0);
    expect(await cost.textContent()).toBe('$0.06');
    expect((await getAgent('spend-bot')).max_cost_usd_24h).toBeNull();
  });

  it("says in Run now's dialog that an agent over its budget holds the run, live, and paused alone once paused", async () => {
    await spend('over-now-bot', 0.06);
    await setBudget('over-now-bot', 0.05);
    await openAgent('over-now-bot');
    await page.getByRole('button', { name: 'Run now' }).click();
    const dialog = page.getByRole('dialog', { name: 'Run over-now-bot now' });
    await dialog.waitFor();
    const note = dialog.getByTestId('run-now-over-budget');
    expect(await note.textContent()).toBe(
      'over-now-bot is over its budget ($0.06 of $0.05 in the last 24 hours): the run waits queued until that falls below it or the budget is raised in its Settings.',
    );
    expect(await dialog.getByTestId('run-now-paused').count()).toBe(0);
    await screenshot(page, 'agent-budget-run-now', false);

    // raised elsewhere while the dialog is open: the note goes
    await setBudget('over-now-bot', 1);
    await expect.poll(() => note.count(), LIVE).toBe(0);

    // over it again and paused as well: said paused alone, as the run's page says it
    await setBudget('over-now-bot', 0.05);
    expect((await call(api, 'PUT', '/agents/over-now-bot', { paused: true })).status).toBe(200);
    await expect.poll(() => dialog.getByTestId('run-now-paused').count(), LIVE).toBe(1);
    expect(await note.count()).toBe(0);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const queued = await call<{ runs: Run[] }>(
      api,
      'GET',
      '/runs?agent_id=over-now-bot&status=queued',
    );
    expect(queued.status).toBe(200);
    expect(queued.body.runs).toEqual([]);
  });

  it('asks before retrying a run of an agent over its budget, saying its retry waits, as Edit & retry says', async () => {
    const runId = await spend('over-retry-bot', 0.06, 5 * MIN, 'failed');
    await setBudget('over-retry-bot', 0.05);
    await serve('over-retry-bot');
    const said =
      'over-retry-bot is over its budget ($0.06 of $0.05 in the last 24 hours): the retry waits queued until that falls below it or the budget is raised (Agents).';

    await page.goto(`${server.url}/agents/over-retry-bot/runs/${runId}`);
    await page.getByRole('button', { name: 'Retry', exact: true }).click();
    const ask = page.getByRole('dialog', { name: `Retry run ${runId}?` });
    await ask.waitFor();
    const note = ask.getByTestId('retry-agent-over-budget');
    expect(await note.textContent()).toBe(said);
    expect(await note.getByRole('link', { name: 'Agents' }).getAttribute('href')).toBe(
      '/?agent=over-retry-bot',
    );
    // its worker is there: the budget alone is why it asks
    expect(await ask.getByTestId('retry-no-worker').count()).toBe(0);
    expect(await ask.getByTestId('retry-agent-paused').count()).toBe(0);
    await ask.getByRole('button', { name: 'Cancel' }).click();
    await ask.waitFor({ state: 'hidden' });
    expect(await retriesOf(runId)).toEqual([]);

    await page.getByRole('button', { name: 'Edit & retry' }).click();
    const edit = page.getByRole('dialog', { name: 'Retry with another input' });
    await expect.poll(() => edit.getByTestId('retry-agent-over-budget').textContent()).toBe(said);
    await edit.getByRole('button', { name: 'Cancel' }).click();
    expect(await retriesOf(runId)).toEqual([]);
  });

  it("says in the bulk Retry's question that an agent over its budget holds its retries", async () => {
    const runId = await spend('over-bulk-bot', 0.06, 5 * MIN, 'failed');
    await setBudget('over-bulk-bot', 0.05);
    await serve('over-bulk-bot');
    await page.goto(`${server.url}/runs?agent=over-bulk-bot&status=failed`);
    await page.getByRole('checkbox', { name: `Select run ${runId}` }).check();
    // one run, its worker there: asked only because its budget holds the retry
    await page.getByRole('button', { name: 'Retry 1 failed run' }).click();
    const bulk = page.getByRole('dialog', { name: 'Retry 1 failed run?' });
    await bulk.waitFor();
    const note = bulk.getByTestId('bulk-agent-over-budget');
    await expect
      .poll(() => note.textContent())
      .toBe(
        'over-bulk-bot is over its budget ($0.06 of $0.05 in the last 24 hours): its retries wait queued until that falls below it or the budget is raised (Agents).',
      );
    expect(await note.getByRole('link', { name: 'Agents' }).getAttribute('href')).toBe(
      '/?agent=over-bulk-bot',
    );
    expect(await bulk.getByTestId('bulk-no-worker').count()).toBe(0);
    await bulk.getByRole('button', { name: 'Cancel' }).click();
    await bulk.waitFor({ state: 'hidden' });
    expect(await retriesOf(runId)).toEqual([]);
  });
});
