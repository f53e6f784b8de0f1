// An agent's settings dialog in a real browser: schedule, timeout and limits saved from the
// Agents page, the server's errors beside their inputs, a read key, and a phone's width.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Locator, Page, Request } from 'playwright-core';
import type { Agent } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import { call, ingest, seedRuns, type Api } from './seed.js';
import {
  DIST,
  browserSuite,
  ensureBuilt,
  openBrowser,
  overflowOf,
  screenshot,
  logIn,
} from './browser.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const MIN = 60_000;

browserSuite('agent settings in a real browser', () => {
  let server: Server;
  let api: Api;
  let page: Page;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;

  const row = (agentId: string, p: Page = page) =>
    p.locator(`button.agent-row[data-agent-id="${agentId}"]`);
  const getAgent = async (agentId: string) => {
    const res = await call<Agent>(api, 'GET', `/agents/${agentId}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const openAgent = async (agentId: string, p: Page = page) => {
    await p.goto(`${server.url}/`);
    await row(agentId, p).click();
    await p.getByRole('region', { name: `Recent runs of ${agentId}` }).waitFor();
  };
  /** Opens the Settings dialog of the expanded agent. */
  const openSettings = async (p: Page = page) => {
    await p.getByRole('button', { name: 'Settings', exact: true }).click();
    const dialog = p.getByRole('dialog', { name: /^Settings of / });
    await dialog.waitFor();
    return dialog;
  };
  /** The error shown for `input`: the paragraph its aria-describedby names, right below it. */
  const errorOf = async (input: Locator) => {
    const id = await input.getAttribute('id');
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect((await input.getAttribute('aria-describedby'))?.split(' ')).toContain(`${id}-error`);
    const error = input.page().locator(`[id="${id}-error"]`);
    const [box, below] = [await input.boundingBox(), await error.boundingBox()];
    expect(below!.y - (box!.y + box!.height)).toBeGreaterThanOrEqual(0);
    expect(below!.y - (box!.y + box!.height)).toBeLessThan(16);
    return error.textContent();
  };
  const isPut = (agentId: string) => (r: Request) =>
    r.method() === 'PUT' && new URL(r.url()).pathname === `/api/v1/agents/${agentId}`;

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer('sqlite', { webRoot: DIST });
    api = { url: server.url, key: server.adminKey };
    await seedRuns(api, [
      {
        id: 'report-1',
        agent: 'nightly-report',
        status: 'succeeded',
        ago: 30 * MIN,
        durationMs: 4000,
      },
      {
        id: 'limited-1',
        agent: 'limited-bot',
        status: 'succeeded',
        ago: 20 * MIN,
        durationMs: 2000,
      },
      {
        id: 'phone-1',
        agent: 'phone-bot',
        status: 'failed',
        ago: 10 * MIN,
        durationMs: 3000,
        error: 'boom',
      },
    ]);
    const limited = await call(api, 'PUT', '/agents/limited-bot', {
      max_cost_usd: 2,
      max_steps: 200,
      timeout_ms: 90_000,
    });
    expect(limited.status).toBe(200);
    browser = await openBrowser();
    page = browser.page;
    await logIn(page, server.url, server.adminKey);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('sets a schedule, a timeout and limits; the row then shows the next run and the limits', async () => {
    await openAgent('nightly-report');
    expect(await row('nightly-report').locator('.agent-schedule').count()).toBe(0);
    const settings = page.getByRole('button', { name: 'Settings', exact: true });
    const dialog = await openSettings();
    // the keyboard starts in the first input, and the dialog holds the agent's settings
    const name = dialog.getByLabel('Display name');
    expect(await name.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await name.inputValue()).toBe('nightly-report');
    expect(await dialog.getByRole('radio', { name: 'No schedule' }).isChecked()).toBe(true);
    expect(await dialog.getByLabel('Cron expression').count()).toBe(0);
    // each limit says what passing it does
    expect(
      await dialog.getByText('the run is ended as failed and its agent told to stop').count(),
    ).toBe(3);

    await name.fill('Nightly report');
    await dialog.getByRole('radio', { name: 'Run on a schedule' }).check();
    await dialog.getByLabel('Cron expression').fill('0 9 * * *');
    await dialog.getByLabel('Time zone').fill('UTC');
    await dialog.getByLabel('Time a run may take').fill('10');
    await dialog.getByLabel('Timeout unit').selectOption('min');
    await dialog.getByLabel('Max cost (US$)').fill('2');
    await dialog.getByLabel('Max steps').fill('200');
    await screenshot(page, 'agent-settings', false);

    const put = page.waitForRequest(isPut('nightly-report'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    // only what changed goes to the server: no description, no max_tokens
    expect((await put).postDataJSON()).toEqual({
      name: 'Nightly report',
      schedule: { cron: '0 9 * * *', timezone: 'UTC' },
      timeout_ms: 600_000,
      max_cost_usd: 2,
      max_steps: 200,
    });
    await dialog.waitFor({ state: 'hidden' });
    await expect
      .poll(() => page.locator('.toast').last().textContent())
      .toMatch(/^Settings of Nightly report saved; next run .+/);
    // the focus goes back to the button that opened the dialog
    expect(await settings.evaluate((el) => el === document.activeElement)).toBe(true);

    const header = row('nightly-report');
    expect(await header.locator('.agent-name').textContent()).toBe('Nightly report');
    await expect
      .poll(() => header.locator('.agent-schedule').textContent())
      .toMatch(/^next run in \d+ (d|h|min)$/);
    expect(await header.locator('.agent-limits').textContent()).toBe('limit $2.00, 200 steps');
    const saved = await getAgent('nightly-report');
    expect(saved).toMatchObject({
      name: 'Nightly report',
      description: null,
      schedule: { cron: '0 9 * * *', timezone: 'UTC' },
      timeout_ms: 600_000,
      max_cost_usd: 2,
      max_tokens: null,
      max_steps: 200,
    });
    expect(Date.parse(saved.next_run_at!)).toBeGreaterThan(Date.now());
    await screenshot(page, 'agent-settings-saved', false);

    // opened again, it holds what was saved and says when the next run is
    const again = await openSettings();
    expect(await again.getByLabel('Cron expression').inputValue()).toBe('0 9 * * *');
    expect(await again.getByLabel('Time a run may take').inputValue()).toBe('10');
    expect(await again.getByLabel('Timeout unit').inputValue()).toBe('min');
    expect(await again.getByTestId('settings-next-run').textContent()).toMatch(/^Next run in /);
    await page.keyboard.press('Escape');
    await again.waitFor({ state: 'hidden' });
  });

  it("shows the server's errors beside their inputs, keeps the dialog open and saves nothing", async () => {
    await openAgent('nightly-report');
    const before = await getAgent('nightly-report');
    const dialog = await openSettings();
    const puts: unknown[] = [];
    page.on('request', (r) => {
      if (isPut('nightly-report')(r)) puts.push(r.postDataJSON());
    });

    // a limit the server refuses
    const cost = dialog.getByLabel('Max cost (US$)');
    await cost.fill('2000000');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => cost.getAttribute('aria-invalid')).toBe('true');
    expect(await errorOf(cost)).toMatch(/1000000|1,000,000/);
    expect(await cost.evaluate((el) => el === document.activeElement)).toBe(true);

    // a cron expression it cannot read, beside the cron input
    await cost.fill('5');
    expect(await cost.getAttribute('aria-invalid')).toBeNull();
    const cron = dialog.getByLabel('Cron expression');
    await cron.fill('61 * * * *');
    await dialog.getByLabel('Max steps').fill('10');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => cron.getAttribute('aria-invalid')).toBe('true');
    expect(await errorOf(cron)).toMatch(/minute/i);
    expect(await cron.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await dialog.isVisible()).toBe(true);
    await screenshot(page, 'agent-settings-error', false);
    expect(puts).toEqual([
      { max_cost_usd: 2_000_000 },
      { schedule: { cron: '61 * * * *', timezone: 'UTC' }, max_cost_usd: 5, max_steps: 10 },
    ]);

    // an input that is not a number is caught before anything is sent
    await dialog.getByLabel('Max steps').fill('ten');
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect(await errorOf(dialog.getByLabel('Max steps'))).toBe('Enter a number, or leave it empty');
    expect(puts).toHaveLength(2);

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await getAgent('nightly-report')).toEqual(before);
    expect(await row('nightly-report').locator('.agent-limits').textContent()).toBe(
      'limit $2.00, 200 steps',
    );
    // opened again, the errors and the unsaved inputs are gone
    const again = await openSettings();
    expect(await again.getByLabel('Cron expression').inputValue()).toBe('0 9 * * *');
    expect(await again.locator('.field-error').count()).toBe(0);
    await again.getByRole('button', { name: 'Cancel' }).click();
    await again.waitFor({ state: 'hidden' });
  });

  it('clears a limit, keeping what another user changed meanwhile', async () => {
    await openAgent('limited-bot');
    const limits = row('limited-bot').locator('.agent-limits');
    expect(await limits.textContent()).toBe('limit $2.00, 200 steps');
    const dialog = await openSettings();
    expect(await dialog.getByLabel('Max cost (US$)').inputValue()).toBe('2');
    expect(await dialog.getByLabel('Time a run may take').inputValue()).toBe('90');
    expect(await dialog.getByLabel('Timeout unit').inputValue()).toBe('s');
    // someone else sets a token limit while this dialog is open
    expect((await call(api, 'PUT', '/agents/limited-bot', { max_tokens: 50_000 })).status).toBe(
      200,
    );

    await dialog.getByLabel('Max cost (US$)').fill('');
    const put = page.waitForRequest(isPut('limited-bot'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect((await put).postDataJSON()).toEqual({ max_cost_usd: null });
    await dialog.waitFor({ state: 'hidden' });
    await expect.poll(() => limits.textContent()).toBe('limit 50k tokens, 200 steps');
    expect(await getAgent('limited-bot')).toMatchObject({
      max_cost_usd: null,
      max_tokens: 50_000,
      max_steps: 200,
      timeout_ms: 90_000,
    });

    // every limit and the timeout cleared: the row names no limit
    const again = await openSettings();
    await again.getByLabel('Max tokens (input + output)').fill('');
    await again.getByLabel('Max steps').fill('');
    await again.getByLabel('Time a run may take').fill('');
    await again.getByRole('button', { name: 'Save' }).click();
    await again.waitFor({ state: 'hidden' });
    await expect.poll(() => limits.count()).toBe(0);
    expect(await getAgent('limited-bot')).toMatchObject({
      max_cost_usd: null,
      max_tokens: null,
      max_steps: null,
      timeout_ms: null,
    });

    // and No schedule removes a schedule
    await openAgent('nightly-report');
    const noSchedule = await openSettings();
    await noSchedule.getByRole('radio', { name: 'No schedule' }).check();
    const cleared = page.waitForRequest(isPut('nightly-report'));
    await noSchedule.getByRole('button', { name: 'Save' }).click();
    expect((await cleared).postDataJSON()).toEqual({ schedule: null });
    await expect.poll(() => row('nightly-report').locator('.agent-schedule').count()).toBe(0);
    expect(await getAgent('nightly-report')).toMatchObject({ schedule: null, next_run_at: null });
  });

  it('sets a retry policy, shows it on the row, and removes it', async () => {
    await ingest(api, [{ type: 'run.start', run: { id: 'flaky-1', agent_id: 'flaky-bot' } }]);
    await openAgent('flaky-bot');
    const dialog = await openSettings();
    const attempts = dialog.getByLabel('Attempts in all');
    const delay = dialog.getByLabel('First retry after (seconds)');
    // no policy: the delay and the backoff wait for a number of attempts
    expect(await attempts.inputValue()).toBe('');
    expect(await delay.isDisabled()).toBe(true);
    await attempts.fill('3');
    await delay.fill('30');
    await dialog.getByLabel('Each next retry').selectOption('fixed');
    const put = page.waitForRequest(isPut('flaky-bot'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect((await put).postDataJSON()).toEqual({
      retry: { max_attempts: 3, delay_ms: 30_000, backoff: 'fixed' },
    });
    await dialog.waitFor({ state: 'hidden' });
    await expect
      .poll(() => row('flaky-bot').locator('.agent-retry').textContent())
      .toBe('retries up to 2×');
    expect((await getAgent('flaky-bot')).retry).toEqual({
      max_attempts: 3,
      delay_ms: 30_000,
      backoff: 'fixed',
    });
    // a bad number is refused beside its input, and nothing is saved
    const again = await openSettings();
    expect(await again.getByLabel('First retry after (seconds)').inputValue()).toBe('30');
    await again.getByLabel('Attempts in all').fill('1');
    await again.getByRole('button', { name: 'Save' }).click();
    expect(await errorOf(again.getByLabel('Attempts in all'))).toBe(
      'Enter 2 to 20 (the first run included), or leave it empty',
    );
    await screenshot(page, 'agent-settings-retry', false);
    await again.getByLabel('Attempts in all').fill('');
    await again.getByRole('button', { name: 'Save' }).click();
    await again.waitFor({ state: 'hidden' });
    expect((await getAgent('flaky-bot')).retry).toBeNull();
    await expect.poll(() => row('flaky-bot').locator('.agent-retry').count()).toBe(0);
  });

  it("says an automatic retry waits its delay, on the retry's page", async () => {
    await call(api, 'PUT', '/agents/held-bot', { retry: { max_attempts: 2, delay_ms: 600_000 } });
    const queued = await call<{ id: string }>(api, 'POST', '/agents/held-bot/runs', {});
    expect(queued.status).toBe(202);
    const claimed = await call(api, 'POST', '/workers/claim', { agents: ['held-bot'] });
    expect(claimed.status).toBe(200);
    await ingest(api, [
      { type: 'run.end', run: { id: queued.body.id, status: 'failed', error: { message: '503' } } },
    ]);
    const retries = await call<{ runs: { id: string }[] }>(
      api,
      'GET',
      `/runs?retry_of=${queued.body.id}`,
    );
    await page.goto(`${server.url}/runs/${retries.body.runs[0]!.id}`);
    const held = page.getByTestId('run-held');
    await held.waitFor();
    expect(await held.textContent()).toMatch(
      /^Retrying later\. Its agent's retry policy holds this run back until .+ \(in (9|1[0-2]) min\): a worker of held-bot takes it then\. Stop cancels it\.$/,
    );
  });

  it('queues a run to start later from Run now; its row and its page say when it starts', async () => {
    await openAgent('nightly-report');
    await page.getByRole('button', { name: 'Run now' }).click();
    const dialog = page.getByRole('dialog', { name: /^Run / });
    await dialog.waitFor();
    const at = dialog.getByLabel('Start at (your local time)');
    expect(await at.count()).toBe(0);
    await dialog.getByLabel('Later').check();
    // an hour ahead, on the next five minutes, in the viewer's time
    const suggested = await at.inputValue();
    expect(suggested).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:[0-5][05]$/);
    await screenshot(page, 'run-later-dialog');
    await at.fill('2020-01-01T10:00');
    await dialog.getByRole('button', { name: 'Queue for later' }).click();
    expect(await dialog.getByRole('alert').textContent()).toBe(
      'That time has passed: pick a later one, or start it now.',
    );
    await at.fill(suggested);
    await dialog.getByRole('button', { name: 'Queue for later' }).click();
    await page.getByText(/^Run queued to start /).waitFor();
    const first = page.locator('.agent-panel tbody tr').first();
    await expect.poll(() => first.getAttribute('data-status')).toBe('queued');
    expect(await first.locator('.col-started').textContent()).toBe('starts in 1 h');
    const id = (await first.getAttribute('data-run-id'))!;
    // its row's menu offers Start now too (a run due has none)
    await first.getByRole('button', { name: /^Actions for run / }).click();
    await page.getByRole('menuitem', { name: 'Start now' }).waitFor();
    await page.keyboard.press('Escape');
    const run = (await call<{ queued_at: string; created_at: string }>(api, 'GET', `/runs/${id}`))
      .body;
    const ahead = Date.parse(run.queued_at) - Date.parse(run.created_at);
    expect(ahead).toBeGreaterThan(55 * MIN);
    expect(ahead).toBeLessThanOrEqual(65 * MIN);
    await page.goto(`${server.url}/runs/${id}`);
    const held = page.getByTestId('run-held');
    await held.waitFor();
    expect(await held.textContent()).toMatch(
      /^Starts later\. It was queued to start at .+ \(in (59 min|1 h)\): a worker of nightly-report takes it then\. Stop cancels it\.$/,
    );
    // its page holds its start where a run's queued time goes
    expect(await page.locator('.facts dt', { hasText: /^Starts$/ }).count()).toBe(1);
    await screenshot(page, 'run-starts-later');
    // Start now: due at once, so it waits for a worker like any queued run
    await page.getByRole('button', { name: 'Start now' }).click();
    await page.getByText('The run may start now: a worker takes it next').waitFor();
    await held.waitFor({ state: 'detached' });
    // due now: the time is when it was queued again, as any queued run's
    await expect.poll(() => page.locator('.facts dt', { hasText: /^Queued$/ }).count()).toBe(1);
    expect(await page.locator('.facts dt', { hasText: /^Starts$/ }).count()).toBe(0);
    const due = (await call<{ queued_at: string }>(api, 'GET', `/runs/${id}`)).body;
    expect(Date.parse(due.queued_at)).toBeLessThanOrEqual(Date.now());
    await call(api, 'POST', `/runs/${id}/cancel`);

    // another, stopped before its start: it never started, and never will
    const later = await call<{ id: string }>(api, 'POST', '/agents/nightly-report/runs', {
      delay_ms: 60 * MIN,
    });
    expect((await call(api, 'POST', `/runs/${later.body.id}/cancel`)).status).toBe(200);
    await page.goto(`${server.url}/runs?agent=nightly-report`);
    const stopped = page.locator(`tr[data-run-id="${later.body.id}"]`);
    // when it ended, not "queued in 1 h"
    await expect.poll(() => stopped.locator('.col-started').textContent()).toMatch(/^ended /);
    await page.goto(`${server.url}/runs/${later.body.id}`);
    const note = page.locator('.run-error');
    await note.waitFor();
    // said, not alarmed: Stop is what the user asked for
    expect(await note.getAttribute('class')).toBe('run-error run-error-stopped');
    expect(await note.getAttribute('role')).toBe('status');
    expect(await page.locator('.facts dt', { hasText: /^Was to start$/ }).count()).toBe(1);
    await screenshot(page, 'run-stopped-before-start');
  });

  it('caps the runs at once; a queued run past the cap says it waits for a slot', async () => {
    await ingest(api, [{ type: 'run.start', run: { id: 'capped-0', agent_id: 'capped-bot' } }]);
    await openAgent('capped-bot');
    const dialog = await openSettings();
    const cap = dialog.getByLabel('Runs at once on workers');
    expect(await cap.inputValue()).toBe('');
    await cap.fill('0');
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect(await errorOf(cap)).toBe('Enter a number above 0, or leave it empty');
    await cap.scrollIntoViewIfNeeded();
    await screenshot(page, 'agent-settings-concurrency', false);
    await cap.fill('2');
    const put = page.waitForRequest(isPut('capped-bot'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect((await put).postDataJSON()).toEqual({ max_concurrency: 2 });
    await dialog.waitFor({ state: 'hidden' });
    await expect
      .poll(() => row('capped-bot').locator('.agent-concurrency').textContent())
      .toBe('2 at once');
    expect((await getAgent('capped-bot')).max_concurrency).toBe(2);

    // a worker holds two: the third waits for one of them to end, and says so
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await call<{ id: string }>(api, 'POST', '/agents/capped-bot/runs', {})).body.id);
    const claimed = await call<{ runs: unknown[] }>(api, 'POST', '/workers/claim', {
      agents: ['capped-bot'],
      max: 5,
      worker_id: 'cap-host:1',
    });
    expect(claimed.body.runs).toHaveLength(2);
    await page.goto(`${server.url}/runs/${ids[2]}`);
    const capped = page.getByTestId('run-capped');
    await capped.waitFor();
    expect(await capped.textContent()).toBe(
      'Waiting for a slot. At most 2 runs of capped-bot execute at once (its concurrency cap in Settings), and 2 are running: this run starts when one of them ends. See the workers',
    );
    await screenshot(page, 'run-waiting-for-slot', false);
    // one ends: a slot frees, the run is handed to the next claim
    await ingest(api, [{ type: 'run.end', run: { id: ids[0]!, status: 'succeeded' } }]);
    const next = await call<{ id: string }>(api, 'POST', '/workers/claim', {
      agents: ['capped-bot'],
      worker_id: 'cap-host:1',
    });
    expect(next.body.id).toBe(ids[2]);
  });

  it("takes a thread's runs one at a time; a queued turn says it waits for its thread", async () => {
    await ingest(api, [{ type: 'run.start', run: { id: 'chat-0', agent_id: 'chat-bot' } }]);
    await openAgent('chat-bot');
    const dialog = await openSettings();
    const perThread = dialog.getByLabel('Runs of one thread at once');
    await perThread.fill('1');
    const put = page.waitForRequest(isPut('chat-bot'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    expect((await put).postDataJSON()).toEqual({ max_concurrency_per_thread: 1 });
    await dialog.waitFor({ state: 'hidden' });
    await expect
      .poll(() => row('chat-bot').locator('.agent-thread-concurrency').textContent())
      .toBe('1 per thread');
    await screenshot(page, 'agents-caps-on-rows', false);
    // two turns of one conversation: the worker gets the first, the second waits for it
    const turns: string[] = [];
    for (let i = 0; i < 2; i++)
      turns.push(
        (await call<{ id: string }>(api, 'POST', '/agents/chat-bot/runs', { thread_id: 'conv-7' }))
          .body.id,
      );
    const claimed = await call<{ runs: { id: string }[] }>(api, 'POST', '/workers/claim', {
      agents: ['chat-bot'],
      max: 5,
      worker_id: 'chat-host:1',
    });
    expect(claimed.body.runs.map((r) => r.id)).toEqual([turns[0]]);
    await page.goto(`${server.url}/runs/${turns[1]}`);
    const held = page.getByTestId('run-thread-held');
    await held.waitFor();
    expect(await held.textContent()).toBe(
      'Waiting for its thread. A run of thread conv-7 is running, and chat-bot takes at most one run of a thread at once: this run starts when it ends.',
    );
    expect(await held.getByRole('link', { name: 'conv-7' }).getAttribute('href')).toBe(
      '/threads/conv-7',
    );
    await screenshot(page, 'run-waiting-for-thread', false);
  });

  it('shows at once a setting changed elsewhere (the CLI, another tab), and an agent deleted', async () => {
    await ingest(api, [{ type: 'run.start', run: { id: 'remote-1', agent_id: 'remote-bot' } }]);
    await ingest(api, [{ type: 'run.start', run: { id: 'doomed-1', agent_id: 'doomed-bot' } }]);
    await page.goto(`${server.url}/`);
    await row('remote-bot').waitFor();
    await row('doomed-bot').waitFor();
    // the page's own agents list is a minute old before it reads it again by itself
    expect((await call(api, 'PUT', '/agents/remote-bot', { max_concurrency: 3 })).status).toBe(200);
    await expect
      .poll(() => row('remote-bot').locator('.agent-concurrency').textContent(), {
        timeout: 5000,
      })
      .toBe('3 at once');
    expect((await call(api, 'DELETE', '/agents/doomed-bot')).status).toBe(204);
    await expect.poll(() => row('doomed-bot').count(), { timeout: 5000 }).toBe(0);
  });

  it('offers a read key the Settings button disabled, saying why', async () => {
    const reader = await call<{ key: string }>(api, 'POST', '/keys', {
      name: 'settings looker',
      scope: 'read',
    });
    expect(reader.status).toBe(201);
    const other = await openBrowser();
    try {
      const p = other.page;
      await logIn(p, server.url, reader.body.key);
      await openAgent('phone-bot', p);
      const settings = p.getByRole('button', { name: 'Settings', exact: true });
      await expect
        .poll(() => settings.getAttribute('title'))
        .toBe("Needs a write or admin key to change an agent's settings");
      expect(await settings.isDisabled()).toBe(true);
      // Run now beside it keeps its own behaviour
      expect(await p.getByRole('button', { name: 'Run now' }).isDisabled()).toBe(false);
      await screenshot(p, 'agent-settings-read-key', false);
    } finally {
      await other.close();
    }
  });

  it('fits a phone, in the light and the dark theme', async () => {
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await openAgent('phone-bot', phone);
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const dialog = await openSettings(phone);
      await dialog.getByRole('radio', { name: 'Run on a schedule' }).check();
      await dialog.getByLabel('Cron expression').fill('*/15 * * * *');
      const box = await dialog.boundingBox();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(375);
      // nothing inside it is wider than it: no sideways scrolling in the dialog
      expect(await dialog.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'agent-settings-375', false);
      await phone.emulateMedia({ colorScheme: 'dark' });
      await screenshot(phone, 'agent-settings-375-dark', false);
      // scrolled down, the limits and the buttons
      await dialog.getByRole('button', { name: 'Save' }).scrollIntoViewIfNeeded();
      await screenshot(phone, 'agent-settings-375-dark-end', false);
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await expect
        .poll(() => row('phone-bot', phone).locator('.agent-schedule').textContent())
        .toMatch(/^next run in \d+ (s|min)$|^next run just now$/);
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'agents-375-dark-scheduled', false);
      // the smallest phones keep the panel's four buttons on screen, wrapping if they must
      await phone.setViewportSize({ width: 320, height: 700 });
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const run = await phone.getByRole('button', { name: 'Run now' }).boundingBox();
      expect(run!.x + run!.width).toBeLessThanOrEqual(320);
    } finally {
      await phone.close();
    }
  });

  it('says whether runs retried the failures behind the fail rate, red only while one stands', async () => {
    await seedRuns(api, [
      {
        id: 'fetch-fail-1',
        agent: 'flaky-fetch',
        status: 'failed',
        ago: 40 * MIN,
        durationMs: 900,
      },
      {
        id: 'fetch-fail-2',
        agent: 'flaky-fetch',
        status: 'timed_out',
        ago: 30 * MIN,
        durationMs: 900,
      },
      {
        id: 'fetch-ok-3',
        agent: 'flaky-fetch',
        status: 'succeeded',
        ago: 20 * MIN,
        durationMs: 900,
      },
    ]);
    const rate = () => row('flaky-fetch').locator('.fail-rate');
    const show = async () => {
      await page.goto(`${server.url}/`);
      await rate().waitFor();
      return {
        className: await rate().getAttribute('class'),
        title: await rate().getAttribute('title'),
      };
    };
    expect(await show()).toMatchObject({
      className: expect.stringMatching(/\bbad\b/),
      title: '2 failed or timed out in 24 hours, none retried',
    });
    expect((await call(api, 'POST', '/runs/fetch-fail-1/retry')).status).toBe(201);
    expect(await show()).toMatchObject({
      className: expect.stringMatching(/\bbad\b/),
      title: '2 failed or timed out in 24 hours: 1 retried, 1 not',
    });
    expect((await call(api, 'POST', '/runs/fetch-fail-2/retry')).status).toBe(201);
    const shown = await show();
    expect(shown.className).not.toMatch(/\bbad\b/);
    expect(shown.className).toMatch(/\bretried\b/);
    expect(shown.title).toBe('2 failed or timed out in 24 hours, every one retried');
    expect(await rate().textContent()).toBe('67%');
    await screenshot(page, 'agents-failures-retried');
  });
});
