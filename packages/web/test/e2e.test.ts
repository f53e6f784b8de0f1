import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BrowserContext, Dialog, Page } from 'playwright-core';
import type { Run, Score } from '@runlog/core';
import { Runlog } from '@runlog/sdk';
import { startTestServer } from '../../server/test/harness.js';
import { call, ingest, seedRuns, type Api } from './seed.js';
import {
  DIST,
  ROOT,
  SHOTS,
  browserSuite as suite,
  ensureBuilt,
  logIn,
  openBrowser,
  overflowOf,
  screenshot,
} from './browser.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

suite('dashboard in a real browser', () => {
  let server: Server;
  let api: Api;
  let context: BrowserContext;
  let page: Page;
  let closeBrowser: (() => Promise<void>) | undefined;

  const shot = (name: string, p: Page = page) => screenshot(p, name);

  const runRow = (runId: string) => page.locator(`tr[data-run-id="${runId}"]`);
  const statusOf = (runId: string) =>
    runRow(runId)
      .getAttribute('data-status', { timeout: 2000 })
      .catch(() => null);

  /** Opens the Agents page with one agent expanded. */
  const openAgent = async (agentId: string) => {
    await page.goto(`${server.url}/`);
    await page.locator(`button.agent-row[data-agent-id="${agentId}"]`).click();
    await page.getByRole('region', { name: `Recent runs of ${agentId}` }).waitFor();
  };

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer('sqlite', { webRoot: DIST, cancelGraceMs: 60_000 });
    api = { url: server.url, key: server.adminKey };
    const browser = await openBrowser();
    context = browser.context;
    page = browser.page;
    closeBrowser = browser.close;
  }, 120_000);

  afterAll(async () => {
    await closeBrowser?.();
    await server?.close();
  });

  it('logs in with the printed link and takes the key out of the address bar', async () => {
    const min = 60_000;
    await seedRuns(api, [
      {
        id: 'seed-ok-1',
        agent: 'bug-triager',
        status: 'succeeded',
        ago: 62 * min,
        durationMs: 12_400,
      },
      {
        id: 'seed-fail-1',
        agent: 'bug-triager',
        status: 'failed',
        ago: 30 * min,
        durationMs: 8_100,
        error: 'GitHub API rate limit exceeded (403)',
      },
      {
        id: 'seed-ok-2',
        agent: 'release-notes',
        status: 'succeeded',
        ago: 10 * min,
        durationMs: 31_000,
        trigger: 'schedule',
        steps: 5,
      },
      {
        id: 'seed-ok-3',
        agent: 'code-reviewer',
        status: 'succeeded',
        ago: 4 * min,
        durationMs: 45_200,
        steps: 7,
        model: 'claude-sonnet-4',
      },
      {
        id: 'seed-to-1',
        agent: 'data-sync',
        status: 'timed_out',
        ago: 95 * min,
        durationMs: 600_000,
        trigger: 'schedule',
        error: 'lease expired: no heartbeat for 30 s',
      },
      {
        id: 'seed-ok-4',
        agent: 'data-sync',
        status: 'succeeded',
        ago: 35 * min,
        durationMs: 92_000,
        trigger: 'schedule',
      },
    ]);
    await page.goto(`${server.url}/login#key=${server.adminKey}`);
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
    expect(new URL(page.url()).pathname).toBe('/');
    expect(page.url()).not.toContain(server.adminKey);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'runlog_session')?.httpOnly).toBe(true);
    await page.locator('button.agent-row[data-agent-id="bug-triager"]').waitFor();
    await shot('login-then-agents');
  });

  it('logs out from the header and back in with the key form', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(new URL(page.url()).pathname).toBe('/login');
    // a link mangled on its way is refused as a key, on a page that stays usable
    await page.goto(`${server.url}/login#key=%E0%A4%A`);
    await page.getByRole('alert').waitFor();
    await page.getByLabel('API key').waitFor();
    await page.getByLabel('API key').fill('rl_not_a_real_key_000000000000');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').waitFor();
    await shot('login');
    await page.getByLabel('API key').fill(server.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();

    // the printed link works in the tab that just logged out
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').waitFor();
    await page.goto(`${server.url}/login#key=${server.adminKey}`);
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 10_000 });

    // a deep link opened logged out lands where it pointed after logging in
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').waitFor();
    await page.goto(`${server.url}/runs?status=failed`);
    await page.getByLabel('API key').fill(server.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    const landed = new URL(page.url());
    expect(landed.pathname + landed.search).toBe('/runs?status=failed');

    // a link with another key, opened while logged in, asks before switching
    const other = await call<{ key: string }>(api, 'POST', '/keys', {
      name: 'link from elsewhere',
      scope: 'read',
    });
    const session = async () =>
      page.evaluate(
        async () => ((await (await fetch('/api/v1/session')).json()) as { scope: string }).scope,
      );
    await page.goto(`${server.url}/login#key=${other.body.key}`);
    await page.getByRole('heading', { name: 'Switch API key?' }).waitFor();
    expect(page.url()).not.toContain(other.body.key);
    await shot('login-switch-key');
    // the header and this question name the project, its id in the tooltip
    const stay = page.getByRole('button', { name: 'Stay in Default' });
    expect(await stay.getAttribute('title')).toContain('default');
    await stay.click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
    expect(await session()).toBe('admin');
    await page.goto(`${server.url}/login#key=${other.body.key}`);
    await page.getByRole('button', { name: "Log in with the link's key" }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
    expect(await session()).toBe('read');
    // back to the admin key for the tests that follow
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').fill(server.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
    expect(await session()).toBe('admin');
  });

  it('goes to the login page by itself when the key behind the session is revoked', async () => {
    const temp = await call<{ id: string; key: string }>(api, 'POST', '/keys', {
      name: 'revoked while looking',
      scope: 'read',
    });
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').fill(temp.body.key);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Agents' }).waitFor();
    expect((await call(api, 'DELETE', `/keys/${temp.body.id}`)).status).toBe(200);
    // no click: the live connection closing is what tells the page
    await page.getByLabel('API key').waitFor({ timeout: 15_000 });
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('API key').fill(server.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
  });

  it("keeps a tab to its project when another tab logs in to another: its Stop never reaches the other project's run", async () => {
    const created = await call<{ admin_key: { key: string } }>(api, 'POST', '/projects', {
      id: 'e2e-other-tab',
      name: 'Other tab',
    });
    const otherApi: Api = { url: server.url, key: created.body.admin_key.key };
    // one run id, running in both projects
    for (const [a, input] of [
      [api, 'input of default'],
      [otherApi, 'input of other tab'],
    ] as const)
      await ingest(a, [
        { type: 'run.start', run: { id: 'two-tabs', agent_id: 'two-tabs-agent', input } },
      ]);
    await page.goto(`${server.url}/agents/two-tabs-agent/runs/two-tabs`);
    await page.getByText('input of default').waitFor();
    // the browser's one cookie becomes the other project's, as a login to it in another tab
    // leaves it (this tab's live connection still on the session it had)
    const login = await fetch(`${server.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: otherApi.key }),
    });
    const token = /runlog_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
    await context.addCookies([
      { name: 'runlog_session', value: token, url: server.url, httpOnly: true, sameSite: 'Strict' },
    ]);
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    // the first tab reloads to the project the browser is now in, and says why
    await page.getByText('logged in to another project in another tab').waitFor();
    await page.getByText('input of other tab').waitFor();
    const run = async (a: Api) => (await call<Run>(a, 'GET', '/runs/two-tabs')).body;
    expect(await run(otherApi)).toMatchObject({ status: 'running', cancel_requested_at: null });
    expect(await run(api)).toMatchObject({ status: 'running', cancel_requested_at: null });
    // back to the admin key of the default project for the tests that follow
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').fill(server.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
  });

  it('offers a read key the write and admin actions disabled, saying which scope they need', async () => {
    const model = 'e2e-read-only-model';
    expect(
      (await call(api, 'PUT', `/prices/${model}`, { input_per_mtok: 1, output_per_mtok: 2 }))
        .status,
    ).toBe(200);
    const reader = await call<{ id: string; key: string }>(api, 'POST', '/keys', {
      name: 'read-only looker',
      scope: 'read',
    });
    try {
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByLabel('API key').fill(reader.body.key);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Agents' }).waitFor();
      const project = page.locator('.header .project');
      expect(await project.textContent()).toBe('Default');
      expect(await project.getAttribute('title')).toMatch(/default.*read scope/);
      const needsWrite = 'Needs a write or admin key';
      const needsAdmin = 'Needs an admin key';

      // Run now opens, to say what it does, but queues nothing
      await openAgent('bug-triager');
      await page.getByRole('button', { name: 'Run now' }).click();
      const dialog = page.getByRole('dialog');
      expect(await dialog.getByRole('button', { name: 'Queue run' }).isDisabled()).toBe(true);
      expect(await dialog.textContent()).toContain(needsWrite);
      await shot('read-key-run-now');
      await dialog.getByRole('button', { name: 'Cancel' }).click();

      // Retry in a run's menu and on its page
      await page.goto(`${server.url}/runs?agent=bug-triager`);
      await runRow('seed-fail-1')
        .getByRole('button', { name: /Actions for run/ })
        .click();
      const retryItem = page.getByRole('menuitem', { name: 'Retry' });
      expect(await retryItem.isDisabled()).toBe(true);
      expect(await retryItem.getAttribute('title')).toBe(needsWrite);
      await page.keyboard.press('Escape');
      await page.goto(`${server.url}/agents/bug-triager/runs/seed-fail-1`);
      const retry = page.getByRole('button', { name: 'Retry', exact: true });
      await retry.waitFor();
      expect(await retry.isDisabled()).toBe(true);
      expect(await retry.getAttribute('title')).toBe(needsWrite);
      // scoring the run: 👍/👎 and Add score say what they need
      const good = page.getByRole('button', { name: 'Good', exact: true });
      expect(await good.isDisabled()).toBe(true);
      expect(await good.getAttribute('title')).toBe(needsWrite);
      expect(await page.getByRole('button', { name: 'Add score' }).isDisabled()).toBe(true);
      expect(await page.getByText(`${needsWrite} to score runs`).count()).toBe(1);

      // Settings: keys are not listed (the server refuses a read key), nothing can be changed
      await page.goto(`${server.url}/settings`);
      await page.getByRole('heading', { name: 'Model prices' }).waitFor();
      await page.getByRole('button', { name: `Remove override of ${model}` }).waitFor();
      expect(await page.getByRole('button', { name: 'Create key' }).isDisabled()).toBe(true);
      expect(await page.getByRole('button', { name: 'Create key' }).getAttribute('title')).toBe(
        needsAdmin,
      );
      expect(await page.getByLabel('Name').isDisabled()).toBe(true);
      expect(await page.getByRole('button', { name: 'Save price' }).isDisabled()).toBe(true);
      expect(await page.getByLabel('Model', { exact: true }).isDisabled()).toBe(true);
      expect(await page.getByRole('button', { name: `Edit price of ${model}` }).isDisabled()).toBe(
        true,
      );
      const remove = page.getByRole('button', { name: `Remove override of ${model}` });
      expect(await remove.isDisabled()).toBe(true);
      expect(await remove.getAttribute('title')).toBe(needsAdmin);
      expect(await page.getByRole('button', { name: 'Save', exact: true }).isDisabled()).toBe(true);
      expect(await page.getByText(`${needsAdmin} to list, create or revoke keys`).count()).toBe(1);
      expect(await page.locator('.error-box').count()).toBe(0);
      await shot('read-key-settings');
    } finally {
      // back to the admin key for the tests that follow, whatever failed above
      await context.clearCookies();
      await page.goto(`${server.url}/login#key=${server.adminKey}`);
      await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 10_000 });
    }
    // the admin key has them all
    await page.goto(`${server.url}/settings`);
    await page.getByRole('button', { name: `Remove override of ${model}` }).waitFor();
    expect(await page.getByRole('button', { name: 'Create key' }).isDisabled()).toBe(false);
    expect(
      await page.getByRole('button', { name: `Remove override of ${model}` }).isDisabled(),
    ).toBe(false);
    expect((await call(api, 'DELETE', `/prices/${model}`)).status).toBe(204);
    expect((await call(api, 'DELETE', `/keys/${reader.body.id}`)).status).toBe(200);
  });

  it('cuts a very long key name so every Revoke button stays on screen', async () => {
    const name = `grafana-${'n'.repeat(150)}`;
    const long = await call<{ id: string }>(api, 'POST', '/keys', { name, scope: 'read' });
    await page.goto(`${server.url}/settings`);
    const revoke = page.getByRole('button', { name: `Revoke key ${name}` });
    await revoke.waitFor();
    const box = await revoke.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(1280);
    const cut = page.locator('.key-name .truncate', { hasText: name });
    expect(await cut.getAttribute('title')).toBe(name);
    expect(await cut.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
    const table = page.locator('.keys-table');
    expect((await table.boundingBox())!.width).toBeLessThanOrEqual(1280);
    expect((await call(api, 'DELETE', `/keys/${long.body.id}`)).status).toBe(200);
  });

  it("keeps a price override's Edit and Remove on a phone's screen", async () => {
    const model = 'acme-support-finetune-2026-12-v3';
    expect(
      (await call(api, 'PUT', `/prices/${model}`, { input_per_mtok: 1.25, output_per_mtok: 10 }))
        .status,
    ).toBe(200);
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await page.goto(`${server.url}/settings`);
      const buttons = [`Edit price of ${model}`, `Remove override of ${model}`].map((name) =>
        page.getByRole('button', { name }),
      );
      await buttons[0]!.waitFor();
      for (const button of buttons) {
        const box = (await button.boundingBox())!;
        expect(box.x).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width).toBeLessThanOrEqual(375);
      }
      expect(await overflowOf(page)).toBe(0);
      await buttons[0]!.scrollIntoViewIfNeeded();
      await screenshot(page, 'settings-price-override-375', false);
      // Edit fills the form above, off the screen: its first price takes the focus, in view
      await buttons[0]!.click();
      const input = page.locator('#price-input');
      await expect.poll(() => input.evaluate((el) => el === document.activeElement)).toBe(true);
      expect(await input.inputValue()).toBe('1.25');
      const box = (await input.boundingBox())!;
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.y + box.height).toBeLessThanOrEqual(812);
      // the built-in prices, opened: their four columns fit, neither the page nor the table
      // scrolls sideways (the cached price was cut off at the card's edge)
      await page.locator('.builtin summary').click();
      const builtin = page.locator('.builtin .table-wrap');
      await builtin.locator('tbody tr').first().waitFor();
      for (const width of [375, 320]) {
        await page.setViewportSize({ width, height: 812 });
        expect(
          await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
          `the page at ${width} px`,
        ).toBe(true);
        expect(
          await builtin.evaluate((el) => el.scrollWidth - el.clientWidth),
          `the built-in prices at ${width} px`,
        ).toBeLessThanOrEqual(0);
        const wrap = (await builtin.boundingBox())!;
        const cached = (await builtin.locator('th', { hasText: 'Cached input' }).boundingBox())!;
        expect(cached.x + cached.width, `Cached input at ${width} px`).toBeLessThanOrEqual(
          wrap.x + wrap.width,
        );
        await builtin.scrollIntoViewIfNeeded();
        await screenshot(page, `settings-builtin-prices-${width}`, false);
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
      expect((await call(api, 'DELETE', `/prices/${model}`)).status).toBe(204);
    }
  });

  it('expands an agent to its recent runs, 5 shown until Show all', async () => {
    const errors = ['model refused: content policy', 'Zendesk API timeout after 30 s'];
    await seedRuns(api, [
      ...Array.from({ length: 7 }, (_, i) => ({
        id: `exp-${i}`,
        agent: 'support-bot',
        status: i === 4 || i === 1 ? ('failed' as const) : ('succeeded' as const),
        ago: (40 - i * 5) * 60_000,
        durationMs: 4200 + ((i * 7919) % 13) * 1100,
        trigger: (['api', 'schedule', 'manual', 'api', 'retry', 'api', 'manual'] as const)[i],
        error: i === 4 ? errors[0] : i === 1 ? errors[1] : undefined,
        model: 'gpt-4o',
        steps: 4 + (i % 3),
      })),
      {
        id: 'exp-7',
        agent: 'support-bot',
        status: 'running',
        ago: 9_000,
        durationMs: 20_000,
        steps: 3,
        model: 'gpt-4o',
      },
    ]);
    await openAgent('support-bot');
    const rows = page.locator('.agent-panel tbody tr');
    await expect.poll(() => rows.count()).toBe(5);
    expect(await rows.first().getAttribute('data-run-id')).toBe('exp-7');
    expect(await rows.first().getAttribute('data-status')).toBe('running');
    await shot('agents');
    // the README's screenshot is refreshed on request, so test runs leave the tree clean
    if (process.env.RUNLOG_UPDATE_SCREENSHOT) {
      copyFileSync(join(SHOTS, 'agents.png'), join(ROOT, 'docs', 'screenshot.png'));
    }
    await page.getByRole('button', { name: 'Show all 8' }).click();
    await expect.poll(() => rows.count()).toBe(8);
    // one agent open at a time
    await page.locator('button.agent-row[data-agent-id="bug-triager"]').click();
    await page.getByRole('region', { name: 'Recent runs of bug-triager' }).waitFor();
    expect(await page.locator('.agent-panel').count()).toBe(1);
    expect(
      await page
        .locator('button.agent-row[data-agent-id="support-bot"]')
        .getAttribute('aria-expanded'),
    ).toBe('false');
  });

  /** An SDK client for the test server; workers created from it poll fast. */
  const sdk = () =>
    new Runlog({
      url: server.url,
      apiKey: server.adminKey,
      handleSignals: false,
      flushIntervalMs: 20,
      onError: () => {},
    });

  it('shows a run an SDK worker executes going from queued to running to succeeded without a reload', async () => {
    await seedRuns(api, [
      { id: 'live-prev', agent: 'live-agent', status: 'succeeded', ago: 120_000, durationMs: 1500 },
    ]);
    await openAgent('live-agent');
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));

    await page.getByRole('button', { name: 'Run now' }).click();
    // no worker of it yet: the dialog says the run will wait, before it is queued
    expect(await page.getByTestId('run-now-no-worker').textContent()).toBe(
      'No worker has asked for runs of live-agent yet: the run waits until one does (runlog.worker(…) in the SDK).',
    );
    await page.getByLabel('Input (JSON, optional)').fill('{ "pr": 42 }');
    await page.getByRole('button', { name: 'Queue run' }).click();
    const first = page.locator('.agent-panel tbody tr').first();
    await expect.poll(() => first.getAttribute('data-status')).toBe('queued');
    const runId = (await first.getAttribute('data-run-id'))!;
    expect(runId).not.toBe('live-prev');
    // it has not started: its row says when it was queued, not that it started
    expect(await first.locator('.col-started').textContent()).toMatch(/^queued /);

    // a worker starts only now, so the queued state was on screen first
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const seen: unknown[] = [];
    const runlog = sdk();
    runlog.worker({
      pollWaitMs: 1000,
      agents: {
        'live-agent': async (run) => {
          seen.push(run.input);
          await run.step('tool', 'fetch_pr', async () => ({ files: 3 }), { input: run.input });
          await gate;
          return { merged: true };
        },
      },
    });
    try {
      await expect.poll(() => statusOf(runId), { timeout: 15_000 }).toBe('running');
      expect(seen).toEqual([{ pr: 42 }]);
      // the duration ticks while it runs
      const d1 = await runRow(runId).getByTestId('duration').textContent();
      await expect
        .poll(() => runRow(runId).getByTestId('duration').textContent(), { timeout: 5000 })
        .not.toBe(d1);
      // the run's own page follows it live too: its step, then its end
      const detail = await context.newPage();
      await detail.goto(`${server.url}/agents/live-agent/runs/${runId}`);
      await detail.locator('.tl-row', { hasText: 'fetch_pr' }).waitFor();
      const badge = detail.locator('.page-head .status-badge');
      expect(await badge.getAttribute('data-status')).toBe('running');
      finish();
      await expect.poll(() => statusOf(runId), { timeout: 15_000 }).toBe('succeeded');
      await expect
        .poll(() => badge.getAttribute('data-status'), { timeout: 10_000 })
        .toBe('succeeded');
      expect(await detail.getByRole('region', { name: 'Run output' }).textContent()).toContain(
        'merged',
      );
      await detail.close();
    } finally {
      finish();
      await runlog.shutdown();
    }
    expect(
      await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload),
    ).toBe(true);
  });

  it('stops a running run from the kebab menu and sees it end cancelled', async () => {
    const queued = await call<Run>(api, 'POST', '/agents/stopper/runs', { trigger: 'api' });
    expect(queued.status).toBe(202);
    const runId = queued.body.id;
    const runlog = sdk();
    runlog.worker({
      pollWaitMs: 1000,
      leaseMs: 3000,
      heartbeatIntervalMs: 200,
      agents: {
        // runs until Stop fires its abort signal
        stopper: (run) =>
          new Promise((_, reject) =>
            run.signal.addEventListener('abort', () => reject(new Error('stopped'))),
          ),
      },
    });
    try {
      await openAgent('stopper');
      await expect.poll(() => statusOf(runId), { timeout: 15_000 }).toBe('running');
      await runRow(runId)
        .getByRole('button', { name: /Actions for run/ })
        .click();
      await page.getByRole('menuitem', { name: 'Stop' }).click();
      await expect.poll(() => statusOf(runId), { timeout: 15_000 }).toBe('cancelled');
      expect(await runRow(runId).getByRole('img').getAttribute('aria-label')).toBe('Cancelled');
    } finally {
      await runlog.shutdown();
    }
  });

  it('shows no tokens or cost for a run cancelled before it started', async () => {
    const queued = await call<Run>(api, 'POST', '/agents/never-ran/runs', { trigger: 'api' });
    const runId = queued.body.id;
    expect((await call<Run>(api, 'POST', `/runs/${runId}/cancel`)).body.status).toBe('cancelled');
    await openAgent('never-ran');
    await expect.poll(() => statusOf(runId)).toBe('cancelled');
    expect(await runRow(runId).locator('td.col-usage').allTextContents()).toEqual(['—', '—']);
    // and its page says the same of its tokens as of its cost
    await page.goto(`${server.url}/agents/never-ran/runs/${runId}`);
    const fact = (label: string) =>
      page.locator('.facts > div', { has: page.locator('dt', { hasText: label }) }).locator('dd');
    await fact('Cost').waitFor();
    expect([await fact('Tokens').textContent(), await fact('Cost').textContent()]).toEqual([
      '—',
      '—',
    ]);
    // a run recorded by its end alone (no start) did use what its steps say: shown, not hidden
    await ingest(api, [
      {
        type: 'step.end',
        step: {
          id: 's1',
          run_id: 'end-only',
          type: 'llm',
          model: 'gpt-4o-mini',
          status: 'succeeded',
          input_tokens: 1200,
          output_tokens: 300,
        },
      },
      { type: 'run.end', run: { id: 'end-only', agent_id: 'never-ran', status: 'succeeded' } },
    ]);
    await openAgent('never-ran');
    await expect.poll(() => statusOf('end-only')).toBe('succeeded');
    expect(await runRow('end-only').locator('td.col-usage').allTextContents()).toEqual([
      '1.5k',
      '$0.00036',
    ]);
    await page.goto(`${server.url}/agents/never-ran/runs/end-only`);
    await fact('Cost').waitFor();
    expect(await fact('Cost').textContent()).toBe('$0.00036');
    expect(await fact('Tokens').textContent()).toBe('1.5k (1.2k in / 300 out)');
  });

  it('says a step named after its model once when a retry is compared with its original', async () => {
    const at = Date.now() - 3000;
    const llm = (run: string, status: string) => ({
      type: 'step.end',
      step: {
        id: `${run}-llm`,
        run_id: run,
        type: 'llm',
        name: 'gpt-4o-mini',
        model: 'gpt-4o-mini',
        status,
        started_at: at,
        ended_at: at + 1000,
      },
    });
    await ingest(api, [
      { type: 'run.start', run: { id: 'cmp-a', agent_id: 'comparer', started_at: at } },
      llm('cmp-a', 'failed'),
      { type: 'run.end', run: { id: 'cmp-a', status: 'failed', error: { message: 'boom' } } },
      {
        type: 'run.start',
        run: { id: 'cmp-b', agent_id: 'comparer', retry_of: 'cmp-a', started_at: at },
      },
      llm('cmp-b', 'succeeded'),
      { type: 'run.end', run: { id: 'cmp-b', status: 'succeeded' } },
    ]);
    await page.goto(`${server.url}/compare/cmp-a/cmp-b`);
    const cells = page.locator('.compare-steps tbody tr').first().locator('td');
    await cells.first().waitFor();
    expect(
      await Promise.all([1, 2].map((i) => cells.nth(i).locator('span').first().textContent())),
    ).toEqual(['llm · gpt-4o-mini', 'llm · gpt-4o-mini']);
  });

  it('marks a running run as stopping in its row while Stop waits out the grace period', async () => {
    await seedRuns(api, [
      { id: 'grace-1', agent: 'graceful', status: 'running', ago: 5000, durationMs: 60_000 },
    ]);
    await openAgent('graceful');
    await expect.poll(() => statusOf('grace-1')).toBe('running');
    expect(await runRow('grace-1').getAttribute('data-stopping')).toBeNull();
    // no worker holds this run: it stays running until the 60 s grace period ends
    const stop = await call<Run>(api, 'POST', '/runs/grace-1/cancel');
    expect(stop.body.status).toBe('running');
    await expect
      .poll(() => runRow('grace-1').locator('.col-duration').textContent())
      .toBe('stopping…');
    expect(await runRow('grace-1').getAttribute('data-stopping')).toBe('true');
    expect(await runRow('grace-1').getByRole('img').getAttribute('aria-label')).toBe(
      'Running, stop requested',
    );
  });

  it('follows a run retried already to its retry instead of retrying it twice', async () => {
    await seedRuns(api, [
      {
        id: 'retry-once',
        agent: 'once-retrier',
        status: 'failed',
        ago: 60_000,
        durationMs: 3000,
        error: 'boom',
      },
    ]);
    // a worker serves the agent: Retry acts at once, without asking first
    const claim = { agents: ['once-retrier'], worker_id: 'once-retrier-worker' };
    expect((await call(api, 'POST', '/workers/claim', claim)).status).toBe(204);
    // retried already (a teammate, a click a moment ago)
    expect((await call(api, 'POST', '/runs/retry-once/retry', { id: 'retry-once-2' })).status).toBe(
      201,
    );
    const retries = async () =>
      (await call<{ total: number }>(api, 'GET', '/runs?retry_of=retry-once')).body.total;
    // the dashboard asks the server to retry once (look and queue in one step), not to look
    // first and retry after: two clicks racing would queue two
    const retryBodies: (string | null)[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname.endsWith('/retry-once/retry'))
        retryBodies.push(r.postData());
    });
    await openAgent('once-retrier');
    await runRow('retry-once')
      .getByRole('button', { name: /Actions for run/ })
      .click();
    await page.getByRole('menuitem', { name: 'Retry' }).click();
    const toast = page.locator('.toast', { hasText: 'Already retried' });
    await toast.waitFor();
    expect(await toast.textContent()).toContain(
      'Already retried as retry-once-2 (attempt 2, queued): retry that run to try again',
    );
    expect(await toast.getByRole('link', { name: 'Open' }).getAttribute('href')).toBe(
      '/agents/once-retrier/runs/retry-once-2',
    );
    // its page's Retry leads to the retry too; nothing more was queued (before: one more each)
    await page.goto(`${server.url}/agents/once-retrier/runs/retry-once`);
    await page.getByRole('button', { name: 'Retry', exact: true }).click();
    await expect
      .poll(() => new URL(page.url()).pathname)
      .toBe('/agents/once-retrier/runs/retry-once-2');
    expect(await retries()).toBe(1);
    expect(retryBodies.map((b) => JSON.parse(b ?? 'null') as unknown)).toEqual([
      { once: true },
      { once: true },
    ]);
  });

  it('retries a failed run from the kebab menu and sees the new run appear', async () => {
    await seedRuns(api, [
      {
        id: 'retry-me',
        agent: 'retrier',
        status: 'failed',
        ago: 60_000,
        durationMs: 3000,
        error: 'boom',
      },
    ]);
    const claim = { agents: ['retrier'], worker_id: 'retrier-worker' };
    expect((await call(api, 'POST', '/workers/claim', claim)).status).toBe(204);
    await openAgent('retrier');
    await runRow('retry-me')
      .getByRole('button', { name: /Actions for run/ })
      .click();
    await page.getByRole('menuitem', { name: 'Retry' }).click();
    const first = page.locator('.agent-panel tbody tr').first();
    await expect.poll(() => first.getAttribute('data-run-id')).not.toBe('retry-me');
    expect(await first.getAttribute('data-status')).toBe('queued');
    expect(await first.locator('.col-trigger').textContent()).toBe('Retry');
    await shot('agents-retry');
    // the message that says it was queued leads to it
    const retryId = (await first.getAttribute('data-run-id'))!;
    await page.locator('.toast').getByRole('link', { name: 'Open' }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/agents/retrier/runs/${retryId}`);
    // the retry's page compares it with the run it retried: what differs, where they part
    await page.getByRole('link', { name: 'Compare with it' }).click();
    await page.getByRole('heading', { name: 'Compare runs', level: 1 }).waitFor();
    const status = page.locator('.compare-table tr', { hasText: 'Status' });
    expect(await status.getAttribute('class')).toBe('differs');
    expect(await page.locator('.compare-table tr', { hasText: 'Attempt' }).textContent()).toBe(
      'Attempt12',
    );
    expect(await page.getByTestId('compare-split').textContent()).toBe(
      'They went apart at step 1.',
    );
    await shot('compare');
    // the original deleted: the page says so and leads to the retry
    expect((await call(api, 'DELETE', '/runs/retry-me')).status).toBe(204);
    await page.reload();
    await page.getByText('The original run is gone').waitFor();
    await page.getByRole('link', { name: 'Open the retry' }).click();
    await page.waitForURL(new RegExp(`/agents/retrier/runs/${retryId}$`));
  });

  it('asks for the 24 h counts again each minute while no run changes', async () => {
    // the counts go by the hour: a run older than a day leaves them with no update to say so
    await ingest(api, [
      { type: 'run.end', run: { id: 'quiet-1', agent_id: 'quiet-agent', status: 'failed' } },
    ]);
    // a browser of its own: a fake clock is its whole context's
    const other = await openBrowser();
    try {
      const p = other.page;
      await logIn(p, server.url, server.adminKey);
      // a fake clock: a quiet minute in a moment
      await p.clock.install();
      let asked = 0;
      p.on('request', (r) => {
        if (new URL(r.url()).pathname === '/api/v1/agents') asked++;
      });
      await p.goto(`${server.url}/`);
      await p.locator('button.agent-row[data-agent-id="quiet-agent"]').waitFor();
      const before = asked;
      await p.clock.runFor(61_000);
      await expect.poll(() => asked).toBeGreaterThan(before);
    } finally {
      await other.close();
    }
  });

  it("updates an agent's 24 h counts live as its runs start", async () => {
    await page.goto(`${server.url}/`);
    const runs = page.locator('button.agent-row[data-agent-id="retrier"] .col-num').first();
    const before = Number((await runs.getAttribute('aria-label'))?.split(' ')[0]);
    await ingest(api, [
      { type: 'run.start', run: { id: 'count-me', agent_id: 'retrier', started_at: Date.now() } },
    ]);
    await expect
      .poll(() => runs.getAttribute('aria-label'), { timeout: 10_000 })
      .toBe(`${before + 1} runs in 24 hours`);
    expect(await runs.textContent()).toContain('1 running');
  });

  it('keeps a Running list and the Stats page current as runs start and end', async () => {
    const now = Date.now();
    await ingest(api, [
      { type: 'run.start', run: { id: 'live-flt-1', agent_id: 'live-flt', started_at: now } },
      { type: 'run.start', run: { id: 'live-flt-2', agent_id: 'live-flt', started_at: now } },
    ]);
    await page.goto(`${server.url}/runs?status=running&agent=live-flt`);
    const ids = () =>
      page
        .locator('.runs-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    await expect.poll(ids).toEqual(['live-flt-2', 'live-flt-1']);
    // the last row's menu is whole on screen: the table's scrolling box does not cut it off
    await runRow('live-flt-1')
      .getByRole('button', { name: /Actions for run/ })
      .click();
    const stop = page.getByRole('menuitem', { name: 'Stop' });
    await stop.waitFor();
    expect(
      await stop.evaluate((el) => {
        const r = el.getBoundingClientRect();
        return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === el;
      }),
    ).toBe(true);
    await page.keyboard.press('Escape');
    await stop.waitFor({ state: 'detached' });
    // a run that ends leaves the list of running runs, and the count follows
    await ingest(api, [{ type: 'run.end', run: { id: 'live-flt-1', status: 'succeeded' } }]);
    await expect.poll(ids, { timeout: 10_000 }).toEqual(['live-flt-2']);
    expect(await page.locator('.page-head .count').textContent()).toBe('1');

    await page.goto(`${server.url}/stats?range=24h&agent=live-flt`);
    const runs = page.locator('.stat-card', { hasText: 'Runs' }).first().locator('.stat-value');
    await expect.poll(() => runs.textContent()).toBe('2');
    await ingest(api, [
      { type: 'run.start', run: { id: 'live-flt-3', agent_id: 'live-flt', started_at: now } },
    ]);
    await expect.poll(() => runs.textContent(), { timeout: 15_000 }).toBe('3');
  });

  it('takes a run deleted through the API out of the list, live, and says so on its page', async () => {
    const now = Date.now();
    await ingest(api, [
      { type: 'run.start', run: { id: 'live-del-1', agent_id: 'live-del', started_at: now } },
      { type: 'run.start', run: { id: 'live-del-2', agent_id: 'live-del', started_at: now + 1 } },
    ]);
    await page.goto(`${server.url}/runs?agent=live-del`);
    const ids = () =>
      page
        .locator('.runs-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    await expect.poll(ids).toEqual(['live-del-2', 'live-del-1']);
    const detail = await context.newPage();
    await detail.goto(`${server.url}/agents/live-del/runs/live-del-1`);
    await detail.getByRole('heading', { name: /live-del-1/ }).waitFor();
    expect((await call(api, 'DELETE', '/runs/live-del-1')).status).toBe(204);
    // before, the run stayed on every open dashboard until it was reloaded
    await expect.poll(ids, { timeout: 10_000 }).toEqual(['live-del-2']);
    await detail.getByText('Run not found').waitFor({ timeout: 10_000 });
    // deleted through the API, not by retention: the page does not guess which
    expect(await detail.locator('.empty-body').textContent()).toMatch(/may have been deleted,/);
    expect(await detail.locator('.empty-body').textContent()).not.toMatch(/retention/);
    await detail.close();
  });

  it('turns a page of runs to the top of the next one, a late-recorded run in its place', async () => {
    await seedRuns(
      api,
      Array.from({ length: 60 }, (_, i) => ({
        id: `pager-${String(i).padStart(2, '0')}`,
        agent: 'pager-agent',
        status: 'succeeded' as const,
        ago: 600_000 - i * 1000,
        durationMs: 500,
      })),
    );
    await page.goto(`${server.url}/runs?agent=pager-agent`);
    await runRow('pager-59').waitFor();
    await page.getByRole('button', { name: 'Older →' }).scrollIntoViewIfNeeded();
    await page.getByRole('button', { name: 'Older →' }).click();
    await runRow('pager-09').waitFor();
    expect(new URL(page.url()).searchParams.get('page')).toBe('2');
    // the list is read from its top (its first row on screen), and the keyboard goes on from there
    const first = await runRow('pager-09').boundingBox();
    expect(first!.y).toBeGreaterThanOrEqual(0);
    expect(first!.y).toBeLessThan(860 - first!.height);
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('TABLE');

    // a run recorded now that started between pager-29 and pager-30 goes between them
    await page.getByRole('button', { name: '← Newer' }).click();
    await runRow('pager-59').waitFor();
    const before = await call<Run>(api, 'GET', '/runs/pager-29');
    const startedAt = Date.parse(before.body.started_at!) + 500;
    await ingest(api, [
      {
        type: 'run.start',
        run: { id: 'pager-late', agent_id: 'pager-agent', started_at: startedAt },
      },
    ]);
    await runRow('pager-late').waitFor();
    const ids = await page
      .locator('tr[data-run-id]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    expect(ids.indexOf('pager-late')).toBe(ids.indexOf('pager-29') - 1);
    expect(ids.indexOf('pager-late')).toBe(ids.indexOf('pager-30') + 1);
  });

  it('filters the Runs page and keeps the filters in the URL', async () => {
    await seedRuns(api, [
      {
        id: 'flt-a',
        agent: 'filter-a',
        status: 'failed',
        ago: 50_000,
        durationMs: 1000,
        error: 'needle in the error text',
      },
      { id: 'flt-b', agent: 'filter-a', status: 'succeeded', ago: 40_000, durationMs: 1000 },
      {
        id: 'flt-c',
        agent: 'filter-b',
        status: 'failed',
        ago: 30_000,
        durationMs: 1000,
        error: 'other',
      },
    ]);
    await page.goto(`${server.url}/runs`);
    await page.locator('.runs-table tbody tr').first().waitFor();
    await page.getByRole('button', { name: /Failed/ }).click();
    await page.getByLabel('Agent').selectOption('filter-a');
    await expect
      .poll(() =>
        page
          .locator('.runs-table tbody tr')
          .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id'))),
      )
      .toEqual(['flt-a']);
    // on a wide screen the agent has its own column, not a second line under the run's id
    expect(await page.locator('.run-agent-narrow').first().isVisible()).toBe(false);
    const url = new URL(page.url());
    expect(url.searchParams.get('status')).toBe('failed');
    expect(url.searchParams.get('agent')).toBe('filter-a');
    await shot('runs');

    // a Source typed just before a chip click reaches the URL and the results too
    await page.getByLabel('Source').fill('elsewhere');
    await page.getByRole('button', { name: /Succeeded/ }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('source')).toBe('elsewhere');
    expect(new URL(page.url()).searchParams.get('status')).toBe('failed,succeeded');
    await page.getByText('No runs match these filters').waitFor();
    expect(await page.getByLabel('Source').inputValue()).toBe('elsewhere');

    // a shared link opens the same view; text search narrows it
    await page.goto(`${server.url}/runs?status=failed&q=needle`);
    await expect
      .poll(() =>
        page
          .locator('.runs-table tbody tr')
          .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id'))),
      )
      .toEqual(['flt-a']);
    expect(await page.getByRole('button', { name: /Failed/ }).getAttribute('aria-pressed')).toBe(
      'true',
    );
    expect(await page.getByLabel('Search').inputValue()).toBe('needle');

    // Clear filters also drops text typed but not yet applied: it must not come back
    await page.getByLabel('Source').fill('half-typed');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    // the router renders the new address in a transition: the fields follow a moment later
    await expect.poll(() => page.getByLabel('Search').inputValue()).toBe('');
    await expect.poll(() => page.getByLabel('Source').inputValue()).toBe('');
    await page.waitForTimeout(600); // past the text fields' 350 ms debounce
    expect(new URL(page.url()).search).toBe('');
    expect(await page.getByLabel('Source').inputValue()).toBe('');

    // a date filter goes in the URL as an instant in UTC, the same runs for everyone who opens it
    await page.getByLabel('From').fill('2026-12-04T09:30');
    await expect.poll(() => new URL(page.url()).searchParams.get('from')).toMatch(/Z$/);
    const from = new URL(page.url()).searchParams.get('from')!;
    expect(await page.evaluate((v) => new Date(v).getTime(), '2026-12-04T09:30')).toBe(
      Date.parse(from),
    );
    await expect.poll(() => page.getByLabel('From').inputValue()).toBe('2026-12-04T09:30');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');

    // the agent chooser shows what the link asked for: two agents, or one it does not list
    await page.goto(`${server.url}/runs?agent=filter-a,filter-b`);
    await runRow('flt-a').waitFor();
    expect(await page.getByLabel('Agent').inputValue()).toBe('filter-a,filter-b');
    // and two triggers, which it filters on, not the first alone
    await page.goto(`${server.url}/runs?agent=filter-a,filter-b&trigger=manual,retry`);
    await expect.poll(() => page.getByLabel('Trigger').inputValue()).toBe('manual,retry');
    expect(await page.getByLabel('Trigger').locator('option:checked').textContent()).toBe(
      'Manual, Retry',
    );
    await page.goto(`${server.url}/stats?agent=ghost-agent`);
    await expect.poll(() => page.locator('#stats-agent').inputValue()).toBe('ghost-agent');

    // sorted by duration: the longest first, the order kept in the URL
    await seedRuns(api, [
      { id: 'srt-short', agent: 'sort-e2e', status: 'succeeded', ago: 9_000, durationMs: 500 },
      { id: 'srt-long', agent: 'sort-e2e', status: 'succeeded', ago: 8_000, durationMs: 3000 },
      { id: 'srt-mid', agent: 'sort-e2e', status: 'succeeded', ago: 7_000, durationMs: 1500 },
    ]);
    await page.goto(`${server.url}/runs?agent=sort-e2e`);
    await runRow('srt-mid').waitFor();
    const order = () =>
      page
        .locator('.runs-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    expect(await order()).toEqual(['srt-mid', 'srt-long', 'srt-short']);
    await page.getByLabel('Sort').selectOption('duration');
    await expect.poll(order).toEqual(['srt-long', 'srt-mid', 'srt-short']);
    expect(new URL(page.url()).searchParams.get('sort')).toBe('duration');
    expect(await page.locator('.runs-table caption').textContent()).toBe('Runs, longest first');
    await page.getByRole('button', { name: 'Next →' }).waitFor();

    // a page past the last says so, not that there are no runs, and leads back
    await page.goto(`${server.url}/runs?page=99`);
    await page.getByText('No runs on this page').waitFor();
    await page.getByRole('button', { name: 'Go to the first page' }).click();
    await page.locator('.runs-table tbody tr').first().waitFor();
    expect(new URL(page.url()).searchParams.get('page')).toBeNull();
  });

  it("opens a run's timeline with nested steps and payloads shown as text", async () => {
    await seedRuns(api, [
      {
        id: 'tl-run',
        agent: 'timeline-agent',
        status: 'failed',
        ago: 90_000,
        durationMs: 20_000,
        steps: 6,
        error: 'search failed',
        input: { html: '<img src=x onerror="window.__xss=1"><b>bold</b>' },
      },
    ]);
    await openAgent('timeline-agent');
    await runRow('tl-run')
      .getByRole('button', { name: /Actions for run/ })
      .click();
    await page.getByRole('menuitem', { name: 'View details' }).click();
    await page.getByTestId('timeline').waitFor();
    expect(new URL(page.url()).pathname).toBe('/agents/timeline-agent/runs/tl-run');
    // the whole id, to copy into the CLI or the API (the title shows only its end)
    expect(await page.locator('.run-id').textContent()).toBe('tl-run');
    await page.getByRole('button', { name: 'Copy the run id' }).waitFor();
    // the run's error shows its stack, folded until asked for
    const stack = page.locator('.run-error-stack');
    expect(await stack.locator('pre').isVisible()).toBe(false);
    await stack.getByText('Stack trace').click();
    expect(await stack.locator('pre').textContent()).toContain('at triage (agent.ts:42:11)');
    const stepRows = page.locator('.tl-row');
    await expect.poll(() => stepRows.count()).toBe(6);
    // children sit under the agent step, indented
    const pads = await stepRows
      .locator('.tl-label')
      .evaluateAll((els) => els.map((e) => (e as HTMLElement).style.paddingLeft));
    expect(pads[0]).toBe('8px');
    expect(pads[1]).toBe('22px');
    expect(await page.locator('.tl-row.st-failed').count()).toBe(1);
    expect(await page.locator('.tl-bar.failed').count()).toBe(1);
    await page.locator('.tl-row.st-failed').click();
    await page.getByRole('region', { name: 'Error' }).waitFor();
    expect(await page.locator('.step-details').textContent()).toContain('search failed');
    // a streamed model call: its time to first token, marked on its bar
    expect(await page.locator('.tl-bar .tl-first-token').count()).toBe(2);
    await page.locator('.tl-row', { hasText: 'draft reply' }).first().click();
    await expect
      .poll(() => page.locator('.step-details').textContent())
      .toMatch(/First token\s*after 420\s?ms/);

    // milliseconds sit with the seconds, never after AM/PM
    const facts = await page.locator('.facts').first().textContent();
    expect(facts).toMatch(/:\d{2}\.\d{3}/);
    expect(facts).not.toMatch(/[AP]M\.\d/);

    const input = page.getByRole('region', { name: 'Run input', exact: true });
    expect(await input.textContent()).toContain('<b>bold</b>');
    expect(await input.locator('b, img').count()).toBe(0);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
    await shot('run-detail');

    // the dark palette follows the system, and not through an explicit light choice
    const bodyBg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await bodyBg()).toBe('rgb(14, 17, 22)');
    await shot('run-detail-dark');
    await page.evaluate(() => (document.documentElement.dataset.theme = 'light'));
    expect(await bodyBg()).toBe('rgb(247, 248, 250)');
    await page.evaluate(() => delete document.documentElement.dataset.theme);
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('counts a single step as "1 step" above the timeline', async () => {
    await seedRuns(api, [
      {
        id: 'one-step-run',
        agent: 'one-stepper',
        status: 'succeeded',
        ago: 30_000,
        durationMs: 900,
        steps: 1,
      },
    ]);
    await page.goto(`${server.url}/agents/one-stepper/runs/one-step-run`);
    await page.getByTestId('timeline').waitFor();
    expect(await page.getByRole('heading', { name: /^Timeline/ }).textContent()).toBe(
      'Timeline 1 step',
    );
  });

  it('shows a payload cut to the size limit as a notice and its first part', async () => {
    const preview = '{"rows": [1, 2, 3';
    await seedRuns(api, [
      {
        id: 'trunc-run',
        agent: 'truncator',
        status: 'succeeded',
        ago: 30_000,
        durationMs: 1000,
        output: { __runlog_truncated__: true, original_size: 1_600_000, preview },
      },
    ]);
    await page.goto(`${server.url}/agents/truncator/runs/trunc-run`);
    const output = page.getByRole('region', { name: 'Run output' });
    await output.getByText('Truncated: 1.6 MB originally; showing the first part').waitFor();
    expect(await output.textContent()).toContain(preview);
    expect(await output.textContent()).not.toContain('__runlog_truncated__');

    // Copy gives the part that was kept, not the marker object around it
    await page.evaluate(() => {
      const w = window as unknown as { copied?: string };
      Object.defineProperty(navigator, 'clipboard', {
        configurable: true,
        value: { writeText: (text: string) => Promise.resolve(void (w.copied = text)) },
      });
    });
    await output.getByRole('button', { name: 'Copy Run output' }).click();
    await page.getByText('Run output copied: the first part that was kept').waitFor();
    expect(await page.evaluate(() => (window as unknown as { copied?: string }).copied)).toBe(
      preview,
    );
  });

  it('hides tokens and cost on a narrow viewport without overflowing', async () => {
    const narrow = await context.newPage();
    await narrow.setViewportSize({ width: 390, height: 844 });
    await narrow.goto(`${server.url}/?agent=support-bot`);
    await narrow.locator('.agent-panel tbody tr').first().waitFor();
    expect(await narrow.getByRole('columnheader', { name: 'Tokens' }).isVisible()).toBe(false);
    expect(await narrow.getByRole('columnheader', { name: 'Cost' }).isVisible()).toBe(false);
    // and, in an agent's panel, the duration (on the run's page): its start and ⋮ menu fit
    expect(await narrow.getByRole('columnheader', { name: 'Duration' }).isVisible()).toBe(false);
    expect(await narrow.getByRole('columnheader', { name: 'Started' }).isVisible()).toBe(true);
    const overflow = await narrow.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    // which agent is failing stays visible on a phone
    const failing = narrow.locator('button.agent-row[data-agent-id="support-bot"] .fail-rate');
    expect(await failing.isVisible()).toBe(true);
    expect(await failing.textContent()).toMatch(/^\d+%$/);
    // and what it failed with: the last error goes under the agent's name
    const lastError = narrow.locator(
      'button.agent-row[data-agent-id="support-bot"] .agent-error-narrow',
    );
    expect(await lastError.isVisible()).toBe(true);
    expect((await lastError.textContent())?.length).toBeGreaterThan(0);
    await shot('agents-narrow', narrow);
    await narrow.goto(`${server.url}/runs`);
    await narrow.locator('.runs-table tbody tr').first().waitFor();
    expect(await narrow.getByRole('columnheader', { name: 'Tokens' }).isVisible()).toBe(false);
    // no Agent column on a phone: each run says its agent under its id
    expect(await narrow.getByRole('columnheader', { name: 'Agent' }).isVisible()).toBe(false);
    const firstAgent = narrow.locator('.runs-table tbody tr').first().locator('.run-agent-narrow');
    expect(await firstAgent.isVisible()).toBe(true);
    expect((await firstAgent.textContent())?.length).toBeGreaterThan(0);
    expect(
      await narrow.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      ),
    ).toBeLessThanOrEqual(0);
    await shot('runs-narrow', narrow);
    await narrow.close();
  });

  it('keeps long run ids and agent names on screen at 1280 px and on a phone', async () => {
    const longId = `run-with-a-long-id-${'a'.repeat(90)}`;
    const longAgent = `agent-with-a-long-name-${'b'.repeat(80)}`;
    await seedRuns(api, [
      { id: longId, agent: longAgent, status: 'failed', ago: 20_000, durationMs: 900, error: 'x' },
    ]);
    await page.goto(`${server.url}/runs`);
    const menu = runRow(longId).getByRole('button', { name: /Actions for run/ });
    await menu.waitFor();
    const box = await menu.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(1280);

    const narrow = await context.newPage();
    await narrow.setViewportSize({ width: 390, height: 844 });
    const overflow = () =>
      narrow.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
    await narrow.goto(`${server.url}/runs`);
    await narrow.locator(`tr[data-run-id="${longId}"]`).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await narrow.goto(`${server.url}/agents/${longAgent}/runs/${longId}`);
    await narrow.getByTestId('timeline').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    // a step's name has room on a phone, its full text as a tooltip and in the opened step
    const names = narrow.locator('.tl-name');
    await expect.poll(() => names.count()).toBe(3);
    const widths = await names.evaluateAll((els) =>
      els.map((e) => e.getBoundingClientRect().width),
    );
    for (const w of widths) expect(w).toBeGreaterThan(80);
    expect(await names.nth(2).getAttribute('title')).toBe('draft reply');
    await narrow.locator('.tl-row').nth(2).click();
    expect(await narrow.locator('.step-details .step-name').textContent()).toBe('draft reply');
    expect(await overflow()).toBeLessThanOrEqual(0);
    await narrow.goto(`${server.url}/?agent=${longAgent}`);
    await narrow.locator(`tr[data-run-id="${longId}"]`).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await narrow.getByRole('button', { name: 'Run now' }).click();
    const dialog = await narrow.getByRole('dialog').boundingBox();
    expect(dialog!.x).toBeGreaterThanOrEqual(0);
    expect(dialog!.x + dialog!.width).toBeLessThanOrEqual(390);
    await shot('long-ids-narrow', narrow);
    // the agent picker keeps to the screen; the By-agent table scrolls in its card
    await narrow.goto(`${server.url}/stats?range=24h`);
    await narrow.getByRole('heading', { name: 'By agent' }).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    const byAgent = narrow.locator('.table-wrap', { hasText: longAgent });
    expect(await byAgent.evaluate((el) => getComputedStyle(el).overflowX)).toBe('auto');
    // chart labels keep their size on a phone: each chart is drawn as wide as its box
    await expect.poll(() => narrow.locator('.chart .axis').count()).toBeGreaterThan(10);
    const axisHeights = await narrow
      .locator('.chart .axis')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    expect(Math.min(...axisHeights)).toBeGreaterThanOrEqual(9);
    await shot('stats-narrow', narrow);
    // an agent's name keeps most of the row on a phone
    await narrow.goto(`${server.url}/`);
    const name = narrow.locator(`button.agent-row[data-agent-id="${longAgent}"] .agent-name`);
    await shot('agents-long-narrow', narrow);
    expect((await name.boundingBox())!.width).toBeGreaterThanOrEqual(120);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await narrow.close();
  });

  it('reconnects after losing the WebSocket and catches up on what it missed', async () => {
    await seedRuns(api, [
      { id: 'rc-run', agent: 'reconnector', status: 'running', ago: 5_000, durationMs: 60_000 },
    ]);
    const p = await context.newPage();
    // lets the test cut the socket and refuse reconnects, like a network drop would
    await p.addInitScript(() => {
      const w = window as unknown as {
        __sockets: WebSocket[];
        __blockWs: boolean;
        WebSocket: typeof WebSocket;
      };
      const Native = w.WebSocket;
      w.__sockets = [];
      w.__blockWs = false;
      w.WebSocket = class extends Native {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(
            w.__blockWs ? String(url).replace('/api/v1/ws', '/api/v1/ws-down') : url,
            protocols,
          );
          w.__sockets.push(this);
        }
      };
    });
    await p.goto(`${server.url}/?agent=reconnector`);
    const row = p.locator('tr[data-run-id="rc-run"]');
    await expect.poll(() => row.getAttribute('data-status')).toBe('running');
    await p.locator('.conn-open').waitFor();

    await p.evaluate(() => {
      const w = window as unknown as { __sockets: WebSocket[]; __blockWs: boolean };
      w.__blockWs = true;
      for (const ws of w.__sockets) ws.close();
    });
    await p.getByText('Reconnecting…', { exact: true }).waitFor();
    // said to a screen reader too, by a live region that stays on the page
    const news = p.getByTestId('connection-announcer');
    expect(await news.getAttribute('role')).toBe('status');
    await expect.poll(() => news.textContent()).toBe('Live updates lost. Reconnecting…');
    await ingest(api, [{ type: 'run.end', run: { id: 'rc-run', status: 'succeeded' } }]);
    await p.waitForTimeout(800);
    expect(await row.getAttribute('data-status')).toBe('running');
    await shot('reconnecting', p);

    await p.evaluate(() => ((window as unknown as { __blockWs: boolean }).__blockWs = false));
    await p.locator('.conn-open').waitFor({ timeout: 20_000 });
    await expect.poll(() => news.textContent()).toBe('Live again');
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 10_000 }).toBe('succeeded');
    await p.close();
  });

  it('shows stats and settings pages', async () => {
    await page.goto(`${server.url}/stats?range=24h`);
    await page.getByRole('heading', { name: 'Runs by status' }).waitFor();
    expect(await page.locator('.stat-card').first().textContent()).toMatch(/Runs\d+/);
    // the window starts at a whole hour: the card says which, as "the last 24 hours" differs
    // (yesterday's, but in the day's last hour)
    expect(await page.locator('.stat-card .stat-hint').first().textContent()).toMatch(
      /^Last 24 hours, since (yesterday )?\d{1,2}:00/,
    );
    // p50 and p95 come from a histogram: they read as estimates, and say so on hover
    const p95 = page.locator('.stat-card', { hasText: 'p95 duration' });
    expect(await p95.locator('.stat-value').textContent()).toMatch(/^≈ \d/);
    expect(await p95.getAttribute('title')).toMatch(/estimated from a duration histogram/i);
    // what each model took of the cost: the seeded runs' model, priced, with its share
    const mini = page.locator('table.by-model tbody tr', { hasText: 'gpt-4o-mini' });
    await mini.waitFor();
    expect(await mini.locator('td').nth(6).textContent()).toMatch(/^\$\d/);
    expect(await mini.locator('.share-pct').textContent()).toMatch(/^\d+(\.\d)?%$/);
    await shot('stats');
    // a model leads to its runs over the same range
    await mini.getByRole('link', { name: 'gpt-4o-mini' }).click();
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
    const url = new URL(page.url());
    expect(url.searchParams.get('model')).toBe('gpt-4o-mini');
    expect(url.searchParams.get('from')).toMatch(/Z$/);
    await page.locator('.exact-chip', { hasText: 'Model: gpt-4o-mini' }).waitFor();
    await page.locator('.runs-table tbody tr').first().waitFor();
    await page.goto(`${server.url}/settings`);
    await page.getByLabel('Name').fill('ci-worker');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.getByTestId('new-key').textContent();
    expect(secret?.length).toBeGreaterThan(20);
    const keys = await call<{ keys: { name: string | null }[] }>(api, 'GET', '/keys');
    expect(keys.body.keys.some((k) => k.name === 'ci-worker')).toBe(true);
    await shot('settings');

    // dialogs answer through `questions`; revoking the new key takes its secret off screen
    const questions: string[] = [];
    const answer = (d: Dialog) => {
      questions.push(d.message());
      void d.accept();
    };
    page.on('dialog', answer);
    await page.getByRole('button', { name: 'Revoke key ci-worker' }).click();
    await page.getByTestId('new-key').waitFor({ state: 'detached' });
    // lowering retention says what it deletes before saving
    await page.getByLabel('Keep runs for (days)').fill('7');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Runs are kept 7 days').waitFor();
    expect(questions.at(-1)).toContain('older than 7 days');
    page.off('dialog', answer);

    // the header toggle switches theme and remembers it across a reload
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe(
      'rgb(14, 17, 22)',
    );
    await page.goto(`${server.url}/?agent=support-bot`);
    await page.locator('.agent-panel tbody tr').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await shot('agents-dark');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
  });

  it("says when a scheduled agent's next run comes", async () => {
    const put = await call(api, 'PUT', '/agents/nightly-digest', {
      schedule: { cron: '0 0 1 1 *', timezone: 'UTC' },
    });
    expect(put.status).toBe(200);
    await page.goto(`${server.url}/`);
    const schedule = page.locator(
      'button.agent-row[data-agent-id="nightly-digest"] .agent-schedule',
    );
    await expect.poll(() => schedule.textContent()).toMatch(/^next run in \d+ (d|h|min)$/);
    expect(await schedule.getAttribute('title')).toBe('Schedule: 0 0 1 1 * (UTC)');
    // and its limits on one run, beside the schedule
    const limited = await call(api, 'PUT', '/agents/nightly-digest', {
      max_cost_usd: 2,
      max_steps: 200,
    });
    expect(limited.status).toBe(200);
    await page.goto(`${server.url}/?limits=1`);
    const limits = page.locator('button.agent-row[data-agent-id="nightly-digest"] .agent-limits');
    await expect.poll(() => limits.textContent()).toBe('limit $2.00, 200 steps');
    await shot('agents-limits');
  });

  it("names the models a run's cost leaves out", async () => {
    const res = await call(api, 'POST', '/ingest', {
      events: [
        { type: 'run.start', run: { id: 'part-priced', agent_id: 'part-priced' } },
        {
          type: 'step.end',
          step: {
            id: 'a',
            run_id: 'part-priced',
            type: 'llm',
            model: 'gpt-4o',
            input_tokens: 1000,
          },
        },
        {
          type: 'step.end',
          step: {
            id: 'b',
            run_id: 'part-priced',
            type: 'llm',
            model: 'my-llama',
            input_tokens: 9000,
          },
        },
      ],
    });
    expect(res.status).toBe(200);
    await page.goto(`${server.url}/agents/part-priced/runs/part-priced`);
    const part = page.locator('.unpriced-part');
    await expect.poll(() => part.textContent()).toBe(' + tokens of my-llama at no known price');
    // and what each model took, most cost first
    const uses = page.locator('.model-uses li');
    await expect
      .poll(() => uses.allTextContents())
      .toEqual([
        'gpt-4o 1 call · 1.0k tokens · $0.0025',
        'my-llama 1 call · 9.0k tokens · no price',
      ]);
  });

  it('says on a queued run whether any worker asks for its agent', async () => {
    const enqueue = (id: string) => call(api, 'POST', '/agents/no-worker-yet/runs', { id });
    expect((await enqueue('wait-1')).status).toBe(202);
    expect((await enqueue('wait-2')).status).toBe(202);
    await page.goto(`${server.url}/agents/no-worker-yet/runs/wait-2`);
    const notice = page.locator('.run-waiting');
    await expect
      .poll(() => notice.textContent())
      .toMatch(/^Waiting for a worker\. No worker has asked for runs of no-worker-yet yet/);
    expect(await notice.getAttribute('class')).toContain('run-waiting-quiet');
    // a worker asks (and takes the older run): the one left says a worker is there
    const claimed = await call<{ id: string }>(api, 'POST', '/workers/claim', {
      agents: ['no-worker-yet'],
      worker_id: 'e2e-host:4242:abc123',
    });
    expect(claimed.body.id).toBe('wait-1');
    await page.reload();
    await expect
      .poll(() => notice.textContent())
      .toMatch(/^Waiting for a worker\. A worker asked for runs of no-worker-yet /);
    expect(await notice.getAttribute('class')).not.toContain('run-waiting-quiet');
    // the notice leads to the workers: this one online, its agent, the run it holds
    await notice.getByRole('link', { name: 'See the workers' }).click();
    await page.getByRole('heading', { name: 'Workers', level: 1 }).waitFor();
    const worker = page.locator('tr[data-worker-id="e2e-host:4242:abc123"]');
    await worker.waitFor();
    expect(await worker.locator('.worker-status').textContent()).toContain('Online');
    expect(await worker.locator('.worker-agents').textContent()).toBe('no-worker-yet');
    expect(await worker.locator('.held-runs').textContent()).toBe('1: wait-1');
    await shot('workers');
    await worker.getByRole('link', { name: 'wait-1' }).click();
    await page.waitForURL(/\/agents\/no-worker-yet\/runs\/wait-1$/);
    // a run no longer queued says nothing of workers
    await page.goto(`${server.url}/agents/no-worker-yet/runs/wait-1`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    expect(await notice.count()).toBe(0);
    // the workers page hears the run end live, well before its 10 s refresh
    await page.goto(`${server.url}/workers`);
    await worker.locator('.held-runs').waitFor();
    await ingest(api, [{ type: 'run.end', run: { id: 'wait-1', status: 'succeeded' } }]);
    await expect.poll(() => worker.textContent(), { timeout: 4000 }).toContain('idle');
    // the worker stops (Ctrl-C): it leaves the list, and the run still queued says none is there
    expect((await call(api, 'DELETE', '/workers/e2e-host:4242:abc123')).status).toBe(204);
    await page.goto(`${server.url}/agents/no-worker-yet/runs/wait-2`);
    await expect
      .poll(() => notice.textContent())
      .toMatch(/^Waiting for a worker\. No worker of no-worker-yet is running: the last one asked/);
    expect(await notice.getAttribute('class')).toContain('run-waiting-quiet');
  });

  it('keeps 1,000 agents and a 2,000-step run virtualised, reachable by scrolling', async () => {
    const t0 = Date.now() - 3_600_000;
    const agents = Array.from({ length: 1000 }, (_, i) => ({
      type: 'run.end',
      run: {
        id: `many-${i}`,
        agent_id: `fleet-${String(i).padStart(4, '0')}`,
        status: i % 7 === 0 ? 'failed' : 'succeeded',
        started_at: t0 + i * 1000,
        ended_at: t0 + i * 1000 + 500,
      },
    }));
    for (let i = 0; i < agents.length; i += 500) await ingest(api, agents.slice(i, i + 500));
    const steps = Array.from({ length: 2000 }, (_, i) => ({
      type: 'step.end',
      step: {
        id: `big-s${i}`,
        run_id: 'big-run',
        seq: i,
        parent_step_id: i % 10 === 0 ? null : `big-s${i - (i % 10)}`,
        type: i % 10 === 0 ? 'agent' : i % 2 ? 'llm' : 'tool',
        name: `step ${i}`,
        started_at: t0 + i * 50,
        ended_at: t0 + i * 50 + 40,
        status: i === 1503 || i === 1777 ? 'failed' : 'succeeded',
      },
    }));
    await ingest(api, [
      { type: 'run.start', run: { id: 'big-run', agent_id: 'big-agent', started_at: t0 } },
    ]);
    for (let i = 0; i < steps.length; i += 1000) await ingest(api, steps.slice(i, i + 1000));
    await ingest(api, [
      { type: 'run.end', run: { id: 'big-run', status: 'succeeded', ended_at: t0 + 100_100 } },
    ]);

    await page.goto(`${server.url}/`);
    await page.locator('button.agent-row[data-agent-id="fleet-0000"]').waitFor();
    expect(await page.locator('.agent-item').count()).toBeLessThan(80);
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.locator('button.agent-row[data-agent-id="timeline-agent"]').waitFor();
    expect(await page.locator('.agent-item').count()).toBeLessThan(80);

    await page.goto(`${server.url}/agents/big-agent/runs/big-run`);
    await page.getByTestId('timeline').waitFor();
    // the first 1,000 steps show at once, the others join as their page comes
    await expect
      .poll(() => page.getByRole('heading', { name: /Timeline/ }).textContent())
      .toMatch(/^Timeline 2000 steps$/);
    expect(await page.locator('.tl-row').count()).toBeLessThan(120);
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.locator('.tl-row[data-step-id="big-s1999"]').waitFor();
    expect(await page.locator('.tl-row').count()).toBeLessThan(120);

    // the failed steps of a long run are one press away, in turn, each opened
    const next = page.getByRole('button', { name: 'Next failed step (2)' });
    expect(await next.getAttribute('title')).toBe('2 of 2000 steps failed');
    for (const id of ['big-s1503', 'big-s1777', 'big-s1503']) {
      await next.click();
      const row = page.locator(`.tl-row[data-step-id="${id}"]`);
      await expect.poll(() => row.getAttribute('aria-expanded')).toBe('true');
      expect(await row.isVisible()).toBe(true);
    }
    // a screen reader hears which it opened; Tab from the button goes to that step's row,
    // not to the first of the rows drawn around it
    expect(await page.getByTestId('next-failed-news').textContent()).toBe(
      'Failed step 1 of 2 opened: step 1503',
    );
    await next.press('Tab');
    await expect
      .poll(() => page.evaluate(() => (document.activeElement as HTMLElement).dataset.stepId))
      .toBe('big-s1503');
    await page.screenshot({ path: join(SHOTS, 'run-big-failed.png') });
    // on a phone too, where the axis row has no label column
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${server.url}/agents/big-agent/runs/big-run`);
    await phone.getByTestId('timeline').waitFor();
    const phoneNext = phone.getByRole('button', { name: 'Next failed step (2)' });
    await phoneNext.waitFor();
    await phoneNext.click();
    const phoneRow = phone.locator('.tl-row[data-step-id="big-s1503"]');
    await expect.poll(() => phoneRow.getAttribute('aria-expanded')).toBe('true');
    // the opened step's own row is in sight below the sticky header and axis, not under them
    const axisBottom = await phone
      .locator('.tl-axis')
      .evaluate((el) => el.getBoundingClientRect().bottom);
    await expect
      .poll(async () => (await phoneRow.boundingBox())?.y ?? -1)
      .toBeGreaterThanOrEqual(axisBottom - 1);
    expect((await phoneRow.boundingBox())!.y).toBeLessThan(844 / 2);
    await phone.screenshot({ path: join(SHOTS, 'run-big-failed-phone.png') });
    await phone.close();
  });
  it('draws the steps in sight of a long run whose scores load after its timeline', async () => {
    const t0 = Date.now() - 600_000;
    await ingest(api, [
      { type: 'run.start', run: { id: 'scored-long', agent_id: 'scored-agent', started_at: t0 } },
      ...Array.from({ length: 300 }, (_, i) => ({
        type: 'step.end',
        step: {
          id: `sl-s${i}`,
          run_id: 'scored-long',
          seq: i,
          type: 'tool',
          name: `step ${i}`,
          started_at: t0 + i * 1000,
          ended_at: t0 + i * 1000 + 800,
        },
      })),
      // scores enough to push the timeline down by far more than its rows drawn beyond sight
      ...Array.from({ length: 40 }, (_, i) => ({
        type: 'score',
        score: { run_id: 'scored-long', name: `check-${i}`, value: i / 40 },
      })),
      { type: 'run.end', run: { id: 'scored-long', status: 'succeeded', ended_at: t0 + 300_000 } },
    ]);
    await page.goto(`${server.url}/agents/scored-agent/runs/scored-long`);
    await page.getByTestId('timeline').waitFor();
    await page.locator('.scores-table tbody tr').nth(39).waitFor();
    // well into the list, the rows on screen are drawn
    await page.evaluate(() => {
      const list = document.querySelector('[role="list"][aria-label="Steps"]')!;
      window.scrollTo(0, list.getBoundingClientRect().top + window.scrollY + 3000);
    });
    const inSight = () =>
      page.locator('.tl-row').evaluateAll(
        (rows) =>
          rows.filter((r) => {
            const box = r.getBoundingClientRect();
            return box.bottom > 0 && box.top < window.innerHeight;
          }).length,
      );
    await expect.poll(inSight).toBeGreaterThan(10);
    await shot('run-long-scored');
  });

  it('keeps agent names readable on the smallest phones', async () => {
    const long = 'customer-support-escalation-agent';
    await seedRuns(api, [
      { id: 'tiny-1', agent: long, status: 'failed', ago: 30_000, durationMs: 900, error: 'x' },
    ]);
    const phone = await context.newPage();
    const name = (agent: string) =>
      phone.locator(`button.agent-row[data-agent-id="${agent}"] .agent-name`);
    for (const width of [320, 375, 414]) {
      await phone.setViewportSize({ width, height: 800 });
      await phone.goto(`${server.url}/`);
      await name(long).waitFor();
      // the last run's column no longer takes its whole width first
      expect((await name(long).boundingBox())!.width).toBeGreaterThanOrEqual(90);
      expect(
        await phone.evaluate(
          () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
        ),
      ).toBeLessThanOrEqual(0);
      if (width >= 375) {
        // "bug-triager" on one line
        const box = (await name('bug-triager').boundingBox())!;
        expect(box.height).toBeLessThan(24);
      }
      await shot(`agents-${width}`, phone);
    }
    await phone.close();
  });

  it('lists the sub-runs of a run, live, and links a sub-run to its parent under its own agent', async () => {
    await seedRuns(api, [
      { id: 'nest-parent', agent: 'nest-boss', status: 'running', ago: 20_000, durationMs: 60_000 },
    ]);
    await call(api, 'PUT', '/agents/nest-boss', { name: 'Nest Boss' });
    const now = Date.now();
    const kid = (id: string, agent: string, ago: number, extra: object = {}) => ({
      type: 'run.start',
      run: {
        id,
        agent_id: agent,
        parent_run_id: 'nest-parent',
        started_at: now - ago,
        thread_id: 'thread-nest',
        tags: ['nested'],
        ...extra,
      },
    });
    await ingest(api, [
      kid('nest-kid-1', 'nest-helper', 15_000),
      { type: 'run.end', run: { id: 'nest-kid-1', status: 'succeeded' } },
      kid('nest-kid-2', 'nest-writer', 10_000),
      { type: 'run.end', run: { id: 'nest-kid-2', status: 'failed', error: { message: 'x' } } },
    ]);
    await page.goto(`${server.url}/agents/nest-boss/runs/nest-parent`);
    const subRuns = page.locator('.sub-runs li');
    await expect.poll(() => subRuns.count()).toBe(2);
    // newest first, each under its own agent, with its status
    expect(
      await subRuns.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    ).toEqual(['/agents/nest-writer/runs/nest-kid-2', '/agents/nest-helper/runs/nest-kid-1']);
    expect(await subRuns.first().getByRole('img').getAttribute('aria-label')).toBe('Failed');
    await expect.poll(() => page.title()).toBe('Run nest-parent · Nest Boss · Runlog');

    // a sub-run of an agent not listed yet appears as the parent records its call, and its end shows
    await ingest(api, [
      kid('nest-kid-3', 'nest-newcomer', 1000),
      {
        type: 'step.end',
        step: { id: 'nest-call', run_id: 'nest-parent', type: 'agent', name: 'call newcomer' },
      },
    ]);
    await expect.poll(() => subRuns.count(), { timeout: 15_000 }).toBe(3);
    const kid3 = page.locator('.sub-runs li', { hasText: 'nest-kid-3' });
    expect(await kid3.getByRole('img').getAttribute('aria-label')).toBe('Running');
    await ingest(api, [{ type: 'run.end', run: { id: 'nest-kid-3', status: 'succeeded' } }]);
    await expect
      .poll(() => kid3.getByRole('img').getAttribute('aria-label'), { timeout: 10_000 })
      .toBe('Succeeded');
    await shot('run-sub-runs');

    // the sub-run's page links its parent under the parent's agent, by its name
    await page.locator('.sub-runs a', { hasText: 'nest-kid-1' }).click();
    await page.getByRole('heading', { name: /Run nest-kid-1/ }).waitFor();
    const parent = page.locator('.facts div', { hasText: 'Parent run' });
    expect(await parent.getByRole('link').getAttribute('href')).toBe(
      '/agents/nest-boss/runs/nest-parent',
    );
    await expect.poll(() => parent.locator('dd').textContent()).toBe('nest-parent · Nest Boss');
    // an address naming another agent goes to the run's own
    await page.goto(`${server.url}/agents/nest-helper/runs/nest-parent`);
    await expect
      .poll(() => new URL(page.url()).pathname)
      .toBe('/agents/nest-boss/runs/nest-parent');

    // many sub-runs: the first 50, and the others on the Runs page
    await ingest(api, [
      { type: 'run.start', run: { id: 'many-parent', agent_id: 'many-boss' } },
      ...Array.from({ length: 52 }, (_, i) => ({
        type: 'run.start',
        run: {
          id: `many-kid-${String(i).padStart(2, '0')}`,
          agent_id: 'many-kids',
          parent_run_id: 'many-parent',
          started_at: now - 60_000 + i * 100,
        },
      })),
    ]);
    await page.goto(`${server.url}/agents/many-boss/runs/many-parent`);
    await expect.poll(() => subRuns.count()).toBe(50);
    await page.getByRole('link', { name: 'and 2 more' }).click();
    await expect.poll(() => runRow('many-kid-51').count()).toBe(1);
    expect(new URL(page.url()).searchParams.get('parent_run_id')).toBe('many-parent');
    expect(
      await page.getByRole('button', { name: 'Remove filter Sub-runs of: many-parent' }).count(),
    ).toBe(1);
  });

  it('filters the Runs page by thread, user and tag from a run page, as removable chips', async () => {
    const now = Date.now();
    await ingest(api, [
      {
        type: 'run.start',
        run: {
          id: 'thr-1',
          agent_id: 'threader',
          started_at: now - 30_000,
          thread_id: 'conv-42',
          user_id: 'lee@example.com',
          tags: ['vip'],
        },
      },
      { type: 'run.end', run: { id: 'thr-1', status: 'failed', error: { message: 'x' } } },
      {
        type: 'run.start',
        run: { id: 'thr-2', agent_id: 'threader', started_at: now - 20_000, thread_id: 'conv-42' },
      },
      { type: 'run.end', run: { id: 'thr-2', status: 'succeeded' } },
      {
        type: 'run.start',
        run: { id: 'thr-3', agent_id: 'threader', started_at: now - 10_000, thread_id: 'conv-7' },
      },
    ]);
    const ids = () =>
      page
        .locator('.runs-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
    await page.goto(`${server.url}/agents/threader/runs/thr-1`);
    // the thread's id opens its conversation; "as runs" beside it, its runs on the Runs page
    await page.getByRole('link', { name: 'All runs in this thread' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('thread_id')).toBe('conv-42');
    await expect.poll(ids).toEqual(['thr-2', 'thr-1']);
    const chip = page.getByRole('button', { name: 'Remove filter Thread: conv-42' });
    await chip.waitFor();
    // a live run of another thread stays out of the filtered list
    await ingest(api, [
      { type: 'run.start', run: { id: 'thr-4', agent_id: 'threader', thread_id: 'conv-9' } },
    ]);
    await page.waitForTimeout(800);
    expect(await ids()).toEqual(['thr-2', 'thr-1']);
    // the chip stays with the other filters
    await page.getByRole('button', { name: /Failed/ }).click();
    await expect.poll(ids).toEqual(['thr-1']);
    expect(new URL(page.url()).searchParams.get('thread_id')).toBe('conv-42');
    await shot('runs-thread-filter');
    await chip.click();
    await expect.poll(() => new URL(page.url()).searchParams.get('thread_id')).toBeNull();
    expect(new URL(page.url()).searchParams.get('status')).toBe('failed');
    await page.getByRole('button', { name: 'Clear filters' }).click();

    await page.goto(`${server.url}/agents/threader/runs/thr-1`);
    // the user's id opens its page; "as runs" beside it, its runs on the Runs page
    await page.getByRole('link', { name: 'All runs of this user' }).click();
    await expect.poll(ids).toEqual(['thr-1']);
    expect(
      await page.getByRole('button', { name: 'Remove filter User: lee@example.com' }).count(),
    ).toBe(1);
    await page.goto(`${server.url}/agents/threader/runs/thr-1`);
    await page.getByRole('link', { name: 'vip' }).click();
    await expect.poll(ids).toEqual(['thr-1']);
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    // the address changes before the router renders the page for it
    await expect.poll(() => page.getByRole('button', { name: /^Remove filter/ }).count()).toBe(0);
  });

  it("lists a run's scores, records 👍 from its page, and filters and counts runs by score", async () => {
    await seedRuns(api, [
      { id: 'sc-good', agent: 'scorer', status: 'succeeded', ago: 50_000, durationMs: 4000 },
      { id: 'sc-bad', agent: 'scorer', status: 'succeeded', ago: 40_000, durationMs: 4000 },
      { id: 'sc-none', agent: 'scorer', status: 'failed', ago: 30_000, durationMs: 4000 },
      { id: 'sc-full', agent: 'scorer', status: 'succeeded', ago: 20_000, durationMs: 4000 },
    ]);
    const post = (runId: string, body: Record<string, unknown>) =>
      call<{ id: string }>(api, 'POST', `/runs/${runId}/scores`, body);
    const scoresOf = async (runId: string) =>
      (await call<{ scores: Score[] }>(api, 'GET', `/runs/${runId}/scores`)).body.scores;
    expect(
      (
        await post('sc-good', {
          name: 'helpfulness',
          value: 0.8234,
          comment: 'Clear and correct',
          source: 'llm-judge',
          step_id: 'sc-good-s2',
        })
      ).status,
    ).toBe(201);
    expect(
      (await post('sc-good', { name: 'topic', value: 'billing', source: 'reviewer' })).status,
    ).toBe(201);
    const thumb = { id: 'app-thumb', name: 'feedback', value: false, source: 'app' };
    expect((await post('sc-bad', { ...thumb, comment: 'Wrong' })).status).toBe(201);
    // the same id replaces
    expect((await post('sc-bad', { ...thumb, comment: 'Wrong answer' })).status).toBe(200);
    // a run holding the most scores it can
    await ingest(
      api,
      Array.from({ length: 1000 }, (_, i) => ({
        type: 'score',
        score: { run_id: 'sc-full', name: 'eval', value: i / 1000 },
      })),
    );

    // the run's page lists them: a number compact, a label as a chip, the step linked
    await page.goto(`${server.url}/agents/scorer/runs/sc-good`);
    const section = page.getByRole('region', { name: /^Scores/ });
    const rows = section.locator('.scores-table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const helpful = rows.filter({ hasText: 'helpfulness' });
    expect(await helpful.locator('.score-num').textContent()).toBe('0.823');
    expect(await helpful.locator('.score-num').getAttribute('title')).toBe('0.8234');
    expect(await helpful.textContent()).toContain('Clear and correct');
    expect(await helpful.textContent()).toContain('llm-judge');
    expect(await rows.filter({ hasText: 'topic' }).locator('.score-label').textContent()).toBe(
      'billing',
    );
    // a score's step opens in the timeline, the keyboard on it
    await helpful.getByRole('link', { name: 'draft reply' }).click();
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute('data-step-id')))
      .toBe('sc-good-s2');
    expect(await page.locator('.step-details .step-name').textContent()).toBe('draft reply');

    // 👍 records the session's feedback; 👎 replaces it; 👎 again takes it back
    const good = section.getByRole('button', { name: 'Good', exact: true });
    const bad = section.getByRole('button', { name: 'Bad', exact: true });
    const feedback = async () =>
      (await scoresOf('sc-good'))
        .filter((s) => s.name === 'feedback')
        .map((s) => `${s.id.startsWith('dashboard-feedback-')} ${s.value} ${s.source}`);
    await good.click();
    await expect.poll(() => good.getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => rows.count()).toBe(3);
    expect(await feedback()).toEqual(['true true dashboard']);
    await bad.click();
    await expect.poll(() => bad.getAttribute('aria-pressed')).toBe('true');
    expect(await good.getAttribute('aria-pressed')).toBe('false');
    await expect.poll(feedback).toEqual(['true false dashboard']);
    expect(await rows.count()).toBe(3);
    await bad.click();
    await expect.poll(() => rows.count()).toBe(2);
    expect(await feedback()).toEqual([]);
    await good.click();
    await expect.poll(() => rows.count()).toBe(3);
    expect(
      await rows.filter({ hasText: 'feedback' }).getByRole('img', { name: 'thumbs up' }).count(),
    ).toBe(1);

    // Add score: a name, a value read as a number, yes/no or a label, and a comment
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        return el ? `${el.tagName} ${el.getAttribute('aria-label') ?? el.id}` : '';
      });
    await section.getByRole('button', { name: 'Add score' }).click();
    const name = section.getByLabel('Name');
    await expect.poll(() => name.evaluate((el) => el === document.activeElement)).toBe(true);
    await name.fill('accuracy');
    await section.getByLabel('Value').fill('true');
    expect(await section.getByText('Saved as yes (true)').count()).toBe(1);
    await section.getByLabel(/Comment/).fill('checked by hand');
    await section.getByRole('button', { name: 'Save score' }).click();
    await expect.poll(() => rows.count()).toBe(4);
    const accuracy = rows.filter({ hasText: 'accuracy' });
    expect(await accuracy.locator('.score-value').textContent()).toBe('yes');
    expect(await accuracy.textContent()).toContain('checked by hand');
    expect(await accuracy.textContent()).toContain('dashboard');
    // saved, the form closes and the focus goes back to Add score, which opens a new one
    const form = section.getByRole('form', { name: 'Add a score' });
    const add = section.getByRole('button', { name: 'Add score' });
    expect(await form.count()).toBe(0);
    expect(await add.getAttribute('aria-expanded')).toBe('false');
    expect(await add.evaluate((el) => el === document.activeElement)).toBe(true);
    await shot('run-scores');
    await page.keyboard.press('Enter');
    await expect.poll(() => name.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await name.inputValue()).toBe('');
    expect(await section.getByLabel('Value').inputValue()).toBe('');
    await page.keyboard.press('Escape');
    await expect.poll(() => form.count()).toBe(0);

    // deleting asks first, and the keyboard goes on from the row before
    const questions: string[] = [];
    const accept = (d: Dialog) => {
      questions.push(d.message());
      void d.accept();
    };
    page.on('dialog', accept);
    const del = section.getByRole('button', { name: 'Delete score accuracy: yes' });
    await del.focus();
    await page.keyboard.press('Enter');
    await del.waitFor({ state: 'detached' });
    page.off('dialog', accept);
    expect(questions).toEqual(['Delete the score accuracy (yes)?']);
    await expect.poll(focused).toBe('BUTTON Delete score feedback: thumbs up');
    expect(await rows.count()).toBe(3);

    // a run full of scores: the API's 409 shows as an error, the list shows its first 50
    await page.goto(`${server.url}/agents/scorer/runs/sc-full`);
    await section.getByRole('button', { name: 'Show all 1,000 scores' }).waitFor();
    expect(await rows.count()).toBe(50);
    await section.getByRole('button', { name: 'Add score' }).click();
    await section.getByLabel('Name').fill('one-too-many');
    await section.getByLabel('Value').fill('3');
    await section.getByRole('button', { name: 'Save score' }).click();
    await expect
      .poll(() => page.locator('.toast-error').textContent())
      .toMatch(/^Score not saved: .*1000 scores/);
    // not saved: the form stays open with what was typed, to try again
    expect(await section.getByLabel('Name').inputValue()).toBe('one-too-many');

    // the Runs page shows each run's scores as chips, a new one live
    await page.goto(`${server.url}/runs?agent=scorer`);
    // each chip short for the eye, its sentence for a screen reader and as its tooltip
    const chips = (runId: string) =>
      runRow(runId)
        .locator('.score-chip')
        .evaluateAll((els) =>
          els.map(
            (el) =>
              `${el.querySelector('[aria-hidden]')?.textContent?.trim()}` +
              `${el.querySelector('[data-thumb]')?.getAttribute('data-thumb') ?? ''}` +
              ` | ${el.querySelector('.sr-only')?.textContent?.trim()}`,
          ),
        );
    await expect
      .poll(() => chips('sc-good'))
      .toEqual([
        'feedbackup | feedback: thumbs up',
        'helpfulness 0.823 | helpfulness: 0.823',
        '+1 | and 1 more: topic: billing',
      ]);
    expect(await chips('sc-bad')).toEqual(['feedbackdown | feedback: thumbs down']);
    expect(await chips('sc-none')).toEqual([]);
    expect(await post('sc-none', { name: 'helpfulness', value: 0.2 })).toMatchObject({
      status: 201,
    });
    await expect.poll(() => chips('sc-none')).toEqual(['helpfulness 0.2 | helpfulness: 0.2']);
    await shot('runs-scores');

    // ?score=feedback&score_max=0: the thumbs down, as a removable chip
    const ids = () =>
      page
        .locator('.runs-table tbody tr')
        .evaluateAll((trs) => trs.map((r) => r.getAttribute('data-run-id')));
    await page.goto(`${server.url}/runs?score=feedback&score_max=0`);
    const chip = page.getByRole('button', { name: 'Remove filter Score: feedback ≤ 0' });
    await chip.waitFor();
    await expect.poll(ids).toEqual(['sc-bad']);
    await shot('runs-score-filter');
    await chip.click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    await expect.poll(async () => (await ids()).length).toBeGreaterThan(1);

    // the Stats page counts the range's scores by name, each leading to its runs
    await page.goto(`${server.url}/stats?range=24h`);
    const byScore = page.locator('table.by-score tbody tr');
    const row = (n: string) =>
      byScore.filter({ has: page.getByRole('link', { name: n, exact: true }) });
    await row('feedback').waitFor();
    const cells = (n: string) => row(n).locator('td').allTextContents();
    // sc-bad's thumbs down and sc-good's thumbs up
    expect(await cells('feedback')).toEqual([
      'feedback',
      'Yes / no',
      '2',
      '2',
      '50% thumbs up',
      '—',
      '—',
    ]);
    expect(await row('feedback').getByRole('img', { name: 'thumbs up' }).count()).toBe(1);
    expect(await cells('helpfulness')).toEqual([
      'helpfulness',
      'Number',
      '2',
      '2',
      '0.512',
      '0.2 – 0.823',
      '—',
    ]);
    expect(await cells('topic')).toEqual(['topic', 'Label', '1', '1', '—', '—', 'billing 1']);
    expect(await byScore.first().locator('td').first().textContent()).toBe('eval');
    await shot('stats-scores');
    await row('feedback').getByRole('link', { name: 'feedback' }).click();
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
    const url = new URL(page.url());
    expect(url.searchParams.get('score')).toBe('feedback');
    expect(url.searchParams.get('from')).toMatch(/Z$/);
    await page.getByRole('button', { name: 'Remove filter Score: feedback' }).waitFor();
    await expect.poll(async () => (await ids()).sort()).toEqual(['sc-bad', 'sc-good']);

    // a phone: the scores as cards, no column for them in the runs list, nothing overflowing
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 375, height: 812 });
    const overflow = () =>
      phone.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
    await phone.goto(`${server.url}/agents/scorer/runs/sc-good`);
    await phone.locator('.scores-table tbody tr').nth(2).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    const delBox = await phone
      .getByRole('button', { name: /^Delete score helpfulness/ })
      .boundingBox();
    expect(delBox!.x + delBox!.width).toBeLessThanOrEqual(375);
    await shot('run-scores-narrow', phone);
    await phone.goto(`${server.url}/runs?agent=scorer`);
    await phone.locator('tr[data-run-id="sc-good"]').waitFor();
    expect(await phone.getByRole('columnheader', { name: 'Scores' }).isVisible()).toBe(false);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await phone.goto(`${server.url}/stats?range=24h`);
    await phone.locator('table.by-score').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot('stats-scores-narrow', phone);
    await phone.close();
  });

  it('lists a step recorded only by its end where its bar is drawn', async () => {
    const t = Date.now() - 60_000;
    await ingest(api, [
      { type: 'run.start', run: { id: 'order-run', agent_id: 'orderer', started_at: t } },
      {
        type: 'step.start',
        step: { id: 'o-1', run_id: 'order-run', name: 'first', started_at: t + 1000 },
      },
      { type: 'step.end', step: { id: 'o-1', run_id: 'order-run', ended_at: t + 2000 } },
      {
        type: 'step.start',
        step: { id: 'o-3', run_id: 'order-run', name: 'third', started_at: t + 9000 },
      },
    ]);
    await page.goto(`${server.url}/agents/orderer/runs/order-run`);
    await expect.poll(() => page.locator('.tl-row').count()).toBe(2);
    // live, as a step.end alone: between the two, by its end, not after every timed step
    await ingest(api, [
      {
        type: 'step.end',
        step: { id: 'o-2', run_id: 'order-run', name: 'second', type: 'tool', ended_at: t + 5000 },
      },
    ]);
    const names = () => page.locator('.tl-name').allTextContents();
    await expect.poll(names).toEqual(['first', 'second', 'third']);
    await page.reload();
    await expect.poll(names).toEqual(['first', 'second', 'third']);
  });

  it('keeps the keyboard focus in place through menus, navigation, Stop and new keys', async () => {
    await seedRuns(api, [
      {
        id: 'kb-run',
        agent: 'keyboarder',
        status: 'running',
        ago: 5000,
        durationMs: 60_000,
        input: { note: 'x'.repeat(2500) },
      },
    ]);
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        return el ? `${el.tagName} ${el.getAttribute('aria-label') ?? el.textContent ?? ''}` : '';
      });
    // Tab in an open menu closes it and goes back to its button, not to the page's end
    await page.goto(`${server.url}/runs?agent=keyboarder`);
    const kebab = runRow('kb-run').getByRole('button', { name: /Actions for run/ });
    await kebab.click();
    const item = page.getByRole('menuitem', { name: 'View details' });
    await expect.poll(() => item.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowUp');
    // the focused item shows a 2 px outline, not only a faint tint
    const outline = await item.evaluate((el) => {
      const s = getComputedStyle(el);
      return `${s.outlineStyle} ${s.outlineWidth}`;
    });
    expect(outline).toBe('solid 2px');
    await page.keyboard.press('Tab');
    await expect.poll(() => page.getByRole('menu').count()).toBe(0);
    expect(await focused()).toBe('BUTTON Actions for run kb-run');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('BUTTON Actions for run kb-run');

    // each page names the tab; after a move in the app, the focus is on the new page's heading
    expect(await page.title()).toBe('Runs · Runlog');
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Stats' })
      .click();
    await expect.poll(focused).toBe('H1 Stats');
    expect(await page.title()).toBe('Stats · Runlog');
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Settings' })
      .click();
    await expect.poll(focused).toBe('H1 Settings');
    expect(await page.title()).toBe('Settings · Runlog');
    await page.goto(`${server.url}/no-such-page`);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    expect(await page.title()).toBe('Page not found · Runlog');
    await page.goto(`${server.url}/agents/keyboarder/runs/no-such-run`);
    await page.getByRole('heading', { level: 1, name: 'Run not found' }).waitFor();
    // a control tabbed to backwards stops below the sticky header
    const padding = await page.evaluate(
      () => getComputedStyle(document.documentElement).scrollPaddingTop,
    );
    expect(parseFloat(padding)).toBeGreaterThanOrEqual(52);

    // Stop keeps the focus while its request is out, and hands it to Retry when the run ends,
    // saying so to a screen reader
    await page.goto(`${server.url}/agents/keyboarder/runs/kb-run`);
    // "show all" goes as the text shows whole: the focus goes to that text
    const showAll = page.getByRole('button', { name: '… show all 2,500 characters' });
    await showAll.focus();
    await page.keyboard.press('Enter');
    await showAll.waitFor({ state: 'detached' });
    expect(await page.evaluate(() => document.activeElement?.className)).toBe('j-str');
    const stop = page.getByRole('button', { name: 'Stop', exact: true });
    await stop.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => stop.getAttribute('aria-disabled')).toBe('true');
    expect(await focused()).toMatch(/^BUTTON \W*Stop$/);
    await ingest(api, [{ type: 'run.end', run: { id: 'kb-run', status: 'cancelled' } }]);
    await expect.poll(() => stop.count()).toBe(0);
    await expect.poll(focused).toMatch(/^BUTTON \W*Retry$/);
    expect(await page.getByTestId('run-status-news').textContent()).toBe('Run cancelled');
    expect(await page.getByTestId('run-status-news').getAttribute('role')).toBe('status');

    // Done on a new key's panel goes back to Create key
    await page.goto(`${server.url}/settings`);
    await page.getByLabel('Name').fill('kb-key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const done = page.getByRole('button', { name: 'Done' });
    await done.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('new-key').waitFor({ state: 'detached' });
    expect(await focused()).toBe('BUTTON Create key');
    // Revoke, replaced by "revoked", leaves the focus on that word
    const revoke = page.getByRole('button', { name: 'Revoke key kb-key' });
    const accept = (d: Dialog) => void d.accept();
    page.on('dialog', accept);
    await revoke.focus();
    await page.keyboard.press('Enter');
    await revoke.waitFor({ state: 'detached' });
    await expect.poll(focused).toBe('SPAN revoked');
    page.off('dialog', accept);
  });

  it('gives dark-theme text AA contrast on Stop, the step chips and raised surfaces', async () => {
    await seedRuns(api, [
      {
        id: 'dark-run',
        agent: 'darkling',
        status: 'running',
        ago: 5000,
        durationMs: 60_000,
        steps: 4,
      },
    ]);
    await ingest(api, [
      {
        type: 'step.end',
        step: { id: 'dark-think', run_id: 'dark-run', type: 'think', name: 'ponder' },
      },
    ]);
    await page.emulateMedia({ colorScheme: 'dark' });
    try {
      await page.goto(`${server.url}/agents/darkling/runs/dark-run`);
      await page.locator('.type-chip.t-think').first().waitFor();
      const ratio = (selector: string, bgSelector?: string) =>
        page.evaluate(
          ([sel, bgSel]) => {
            const rgb = (c: string) =>
              c
                .match(/[\d.]+/g)!
                .slice(0, 3)
                .map(Number);
            const lum = (c: string) => {
              const [r, g, b] = rgb(c).map((v) => {
                const x = v / 255;
                return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
              });
              return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
            };
            const el = document.querySelector(sel!)!;
            const bgEl = bgSel ? document.querySelector(bgSel)! : el;
            const a = lum(getComputedStyle(el).color);
            const b = lum(getComputedStyle(bgEl).backgroundColor);
            return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          },
          [selector, bgSelector],
        );
      expect(await ratio('.btn-danger')).toBeGreaterThanOrEqual(4.5);
      for (const type of ['llm', 'tool', 'agent', 'think'])
        expect(await ratio(`.type-chip.t-${type}`)).toBeGreaterThanOrEqual(4.5);
      // muted text on a raised surface (the count beside "Timeline")
      expect(await ratio('h2 .count.muted')).toBeGreaterThanOrEqual(4.5);
      await shot('run-detail-dark-contrast');
    } finally {
      await page.emulateMedia({ colorScheme: 'light' });
    }
  });

  it('fits Settings on a small phone, explains a bad retention and names the agent in Run now', async () => {
    await call(api, 'PUT', '/agents/named-agent', { name: 'Friendly Name' });
    await seedRuns(api, [
      { id: 'named-1', agent: 'named-agent', status: 'succeeded', ago: 5000, durationMs: 500 },
    ]);
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 320, height: 700 });
    await phone.goto(`${server.url}/settings`);
    const admin = phone.locator('.scope-admin').first();
    await admin.waitFor();
    // one line: "admin", not "admi" over "n"
    expect((await admin.boundingBox())!.height).toBeLessThan(24);
    await phone.getByLabel('Keep runs for (days)').fill('0');
    const error = phone.getByText('Enter a whole number of days from 1 to 3,650.');
    await error.waitFor();
    expect(await phone.getByLabel('Keep runs for (days)').getAttribute('aria-describedby')).toBe(
      await error.getAttribute('id'),
    );
    await shot('settings-320', phone);
    await phone.goto(`${server.url}/?agent=named-agent`);
    // past a thousand agents (an earlier test): the filter brings this one into view
    await phone.getByLabel('Filter agents').fill('named-agent');
    // the filter is in the URL (a reload or a shared link keeps it), the count says of how many
    await expect.poll(() => new URL(phone.url()).searchParams.get('q')).toBe('named-agent');
    await phone.reload();
    expect(await phone.getByLabel('Filter agents').inputValue()).toBe('named-agent');
    await expect
      .poll(() => phone.locator('.page-head .count').textContent())
      .toMatch(/^\d+ of \d+$/);
    await phone.getByRole('button', { name: 'Run now' }).click();
    await phone.getByRole('heading', { name: 'Run Friendly Name now' }).waitFor();
    await phone.close();
  });
});
