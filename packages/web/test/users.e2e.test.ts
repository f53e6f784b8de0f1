// The Users section in a real browser: who runs were made for, summed up and ordered by their
// latest run; one user's page with its threads and runs; links to it; live updates; a phone.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestServer } from '../../server/test/harness.js';
import { call, ingest, type Api } from './seed.js';
import {
  DIST,
  browserSuite,
  ensureBuilt,
  logIn,
  openBrowser,
  overflowOf,
  screenshot,
} from './browser.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const MIN = 60_000;

interface Seeded {
  id: string;
  agent: string;
  user?: string;
  thread?: string;
  /** Start, in ms before now. */
  ago: number;
  error?: string;
  /** Left running when true. */
  running?: boolean;
  tokens?: [number, number];
  cost?: number;
}

/** One run: its start, an LLM step with tokens and a cost, and (unless running) its end. */
function runEvents(r: Seeded, now: number): unknown[] {
  const start = now - r.ago;
  const [input, output] = r.tokens ?? [800, 200];
  const events: unknown[] = [
    {
      type: 'run.start',
      run: {
        id: r.id,
        agent_id: r.agent,
        thread_id: r.thread ?? null,
        user_id: r.user ?? null,
        started_at: start,
        input: `Input of ${r.id}`,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${r.id}-llm`,
        run_id: r.id,
        type: 'llm',
        name: 'answer',
        model: 'gpt-4o-mini',
        started_at: start + 10,
        ended_at: start + 900,
        input_tokens: input,
        output_tokens: output,
        cost_usd: r.cost ?? 0.25,
      },
    },
  ];
  if (!r.running)
    events.push({
      type: 'run.end',
      run: {
        id: r.id,
        status: r.error ? 'failed' : 'succeeded',
        ended_at: start + 1200,
        ...(r.error ? { error: { message: r.error, type: 'UpstreamError' } } : {}),
      },
    });
  return events;
}

async function seed(api: Api, runs: Seeded[]): Promise<void> {
  const now = Date.now();
  const events = runs.flatMap((r) => runEvents(r, now));
  for (let i = 0; i < events.length; i += 500) await ingest(api, events.slice(i, i + 500));
}

const DANA = 'dana@example.com';
const LEE = 'lee@example.com';
/** A user id that needs encoding in a path. */
const ODD_USER = 'ops/team 7?';

browserSuite('users in a real browser', () => {
  let server: Server;
  let api: Api;
  let page: Page;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;

  const userIds = (p: Page = page) =>
    p
      .locator('.users-table tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-user-id')));
  const row = (userId: string, p: Page = page) =>
    p.locator(`.users-table tr[data-user-id="${userId}"]`);
  const cell = (userId: string, col: string) => row(userId).locator(`.col-user-${col}`);
  const fact = (label: string) =>
    page
      .locator('.user-facts > div', {
        has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }),
      })
      .locator('dd');
  const runIds = (p: Page = page) =>
    p
      .locator('.runs-table tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer('sqlite', { webRoot: DIST });
    api = { url: server.url, key: server.adminKey };
    await seed(api, [
      // Dana: two threads and two failures, her latest run one of them
      {
        id: 'refund-1',
        agent: 'support-bot',
        user: DANA,
        thread: 'conv-refund',
        ago: 10 * MIN,
        tokens: [1200, 300],
        cost: 0.5,
      },
      {
        id: 'refund-2',
        agent: 'support-bot',
        user: DANA,
        thread: 'conv-refund',
        ago: 8 * MIN,
        error: 'Payments API timed out after 30 s',
      },
      { id: 'refund-3', agent: 'billing-bot', user: DANA, thread: 'conv-refund', ago: 6 * MIN },
      {
        id: 'invoice-1',
        agent: 'support-bot',
        user: DANA,
        thread: 'conv-invoice',
        ago: 5 * MIN,
        error: 'Invoice 1042 not found',
        cost: 0.5,
      },
      // Lee: one run, fine
      { id: 'ship-1', agent: 'sales-bot', user: LEE, thread: 'conv-shipping', ago: 3 * MIN },
      // a run without a user is nobody's
      { id: 'anon-1', agent: 'sales-bot', thread: 'conv-anon', ago: 2 * MIN },
      // an odd id, its run still going and in no thread
      { id: 'ops-1', agent: 'support-bot', user: ODD_USER, ago: 1 * MIN, running: true },
      // and enough users of days ago for a second page
      ...Array.from({ length: 50 }, (_, i) => ({
        id: `old-${i}`,
        agent: 'archive-bot',
        user: `old-user-${String(i).padStart(2, '0')}`,
        ago: 2 * 24 * 60 * MIN + i * MIN,
      })),
    ]);
    browser = await openBrowser();
    page = browser.page;
    await logIn(page, server.url, server.adminKey);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('lists users the latest active first, each with its runs, failures, threads and cost', async () => {
    await page.goto(`${server.url}/`);
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Users' })
      .click();
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    await expect
      .poll(async () => (await userIds()).slice(0, 4))
      .toEqual([ODD_USER, LEE, DANA, 'old-user-00']);
    // the run without a user is no one's
    expect(await userIds()).not.toContain(null);
    expect(await cell(DANA, 'runs').textContent()).toBe('4');
    // failures stand out, as on the Threads page; none reads as a plain 0
    expect(await cell(DANA, 'failed').locator('.failed-count').textContent()).toBe('2');
    expect(await cell(LEE, 'failed').locator('.failed-count').count()).toBe(0);
    expect(await cell(LEE, 'failed').textContent()).toBe('0');
    expect(await cell(DANA, 'threads').textContent()).toBe('2');
    expect(await cell(ODD_USER, 'threads').textContent()).toBe('0');
    expect(await cell(DANA, 'agents').textContent()).toBe('billing-bot, support-bot');
    // 1,500 + 3 × 1,000 tokens; $0.50 + $0.25 + $0.25 + $0.50
    expect(await cell(DANA, 'tokens').textContent()).toBe('4.5k');
    expect(await row(DANA).locator('td.col-usage').nth(1).textContent()).toBe('$1.50');
    expect(await cell(DANA, 'last').textContent()).toBe('5 min ago');
    // the latest run's status, with what it failed with, links to that run
    const latest = row(DANA).locator('.col-status a');
    expect(await latest.getAttribute('href')).toBe('/agents/support-bot/runs/invoice-1');
    expect(await latest.getByRole('img').getAttribute('aria-label')).toBe(
      'Latest run failed: Invoice 1042 not found',
    );
    expect(await row(DANA).locator('.user-error').textContent()).toContain(
      'Invoice 1042 not found',
    );
    expect(await row(LEE).locator('.status-icon').getAttribute('aria-label')).toBe(
      'Latest run succeeded',
    );
    // a user with a run still going says so
    expect(await row(ODD_USER).getByTestId('thread-active').textContent()).toContain('1 active');
    expect(await row(ODD_USER).getAttribute('data-status')).toBe('running');
    await screenshot(page, 'users', false);

    // 50 a page: the older users come with Load more
    expect((await userIds()).length).toBe(50);
    expect(await page.locator('.page-head .count').textContent()).toBe('50+');
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(async () => (await userIds()).length).toBe(53);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    expect((await userIds()).at(-1)).toBe('old-user-49');
    expect(await page.locator('.page-head .count').textContent()).toBe('53');
  });

  it('sums each user over the agent and time range the URL keeps', async () => {
    await page.goto(`${server.url}/users`);
    await row(DANA).waitFor();
    await page.getByLabel('Agent').selectOption('support-bot');
    await expect.poll(() => userIds()).toEqual([ODD_USER, DANA]);
    expect(new URL(page.url()).searchParams.get('agent')).toBe('support-bot');
    expect(await cell(DANA, 'runs').textContent()).toBe('3');
    expect(await cell(DANA, 'threads').textContent()).toBe('2');
    expect(await cell(DANA, 'agents').textContent()).toBe('support-bot');
    expect(await page.getByTestId('users-filtered-note').isVisible()).toBe(true);
    // a range: the last 7 minutes hold one of Dana's runs of support-bot
    const from = new Date(Date.now() - 7 * MIN).toISOString();
    await page.goto(`${server.url}/users?agent=support-bot&from=${encodeURIComponent(from)}`);
    await expect.poll(() => userIds()).toEqual([ODD_USER, DANA]);
    expect(await cell(DANA, 'runs').textContent()).toBe('1');
    expect(await cell(DANA, 'threads').textContent()).toBe('1');
    expect(await page.getByLabel('From').inputValue()).not.toBe('');
    // a range before any run: nothing, and the way back
    const to = new Date(Date.now() - 30 * 24 * 60 * MIN).toISOString();
    await page.goto(`${server.url}/users?to=${encodeURIComponent(to)}`);
    await page.getByText('No users match these filters').waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    await expect.poll(async () => (await userIds()).length).toBe(50);
  });

  it('searches users by any part of their id, in any case, the search kept in the URL', async () => {
    const DAY = 24 * 60 * MIN;
    // enough users holding one text for a second page of them, older than the rest
    await seed(
      api,
      Array.from({ length: 55 }, (_, i) => ({
        id: `searchable-${i}`,
        agent: 'archive-bot',
        user: `Searchable-User-${String(i).padStart(2, '0')}`,
        ago: 3 * DAY + i * MIN,
      })),
    );
    const search = page.getByRole('searchbox', { name: 'Search', exact: true });
    await page.goto(`${server.url}/users`);
    await row(DANA).waitFor();
    await search.fill('DANA@');
    await expect.poll(() => userIds()).toEqual([DANA]);
    expect(new URL(page.url()).searchParams.get('q')).toBe('DANA@');
    // the search picks users; each is still summed over all its runs
    expect(await cell(DANA, 'runs').textContent()).toBe('4');
    expect(await page.getByTestId('users-filtered-note').count()).toBe(0);
    expect(await page.locator('.page-head .count').textContent()).toBe('1');
    await screenshot(page, 'users-search', false);

    // a reload (or a shared link) opens the same search
    await page.reload();
    await expect.poll(() => userIds()).toEqual([DANA]);
    expect(await search.inputValue()).toBe('DANA@');

    // live: a new user the search holds comes in, one it does not stays out
    await expect.poll(() => page.locator('.conn-open').count()).toBe(1);
    await seed(api, [
      { id: 'dana-org-1', agent: 'sales-bot', user: 'Dana@Example.org', ago: 4 * DAY },
      { id: 'zed-1', agent: 'sales-bot', user: 'zed@example.com', ago: 4 * DAY },
    ]);
    await expect.poll(() => userIds(), { timeout: 10_000 }).toEqual([DANA, 'Dana@Example.org']);
    const zed = await call<{ users: { user_id: string }[] }>(api, 'GET', '/users?q=ZED');
    expect(zed.body.users.map((u) => u.user_id)).toEqual(['zed@example.com']);
    expect(await userIds()).not.toContain('zed@example.com');

    // Enter applies it at once; Load more reads the next page of the same search
    await search.fill('searchable-USER');
    await search.press('Enter');
    await expect.poll(async () => (await userIds()).length).toBe(50);
    expect(new URL(page.url()).searchParams.get('q')).toBe('searchable-USER');
    expect(await page.locator('.page-head .count').textContent()).toBe('50+');
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(async () => (await userIds()).length).toBe(55);
    const all = await userIds();
    expect(all.every((id) => /searchable-user/i.test(id ?? ''))).toBe(true);
    expect(all.at(-1)).toBe('Searchable-User-54');
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);

    // nothing found says what was searched for, not how to record a first user
    await search.fill('no-such-person');
    await page.getByText('No users match “no-such-person”').waitFor();
    expect(await page.locator('.empty-body').textContent()).toBe(
      'No user id holds this text, in any case. Change or clear the search.',
    );
    // with another filter too, it says that filter may be why
    await page.getByLabel('Agent').selectOption('billing-bot');
    await expect
      .poll(() => page.locator('.empty-body').textContent())
      .toContain('has runs these filters keep');
    expect(new URL(page.url()).searchParams.get('q')).toBe('no-such-person');
    await screenshot(page, 'users-search-empty', false);

    // Clear filters drops the search, and typing not yet applied with it
    await search.fill('half-typed');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    await expect.poll(() => search.inputValue()).toBe('');
    await page.waitForTimeout(600); // past the field's 350 ms debounce
    expect(new URL(page.url()).search).toBe('');
    await expect.poll(async () => (await userIds()).length).toBe(50);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(1);

    // on a phone, the search keeps the filters on screen
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await phone.goto(`${server.url}/users?q=dana%40`);
      await expect.poll(() => userIds(phone)).toEqual([DANA, 'Dana@Example.org']);
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const field = await phone
        .getByRole('searchbox', { name: 'Search', exact: true })
        .boundingBox();
      expect(field!.x).toBeGreaterThanOrEqual(0);
      expect(field!.x + field!.width).toBeLessThanOrEqual(375);
      await screenshot(phone, 'users-search-375', false);
    } finally {
      await phone.close();
    }
  }, 60_000); // the live step waits out the list's 3 s refresh throttle

  it("opens a user's page: its sums, its threads and its latest runs, then all its runs", async () => {
    await page.goto(`${server.url}/users`);
    await row(DANA).getByRole('link', { name: DANA }).click();
    await page.getByRole('heading', { name: `User ${DANA}` }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/users/dana%40example.com');
    expect(await fact('Runs').textContent()).toBe('4');
    expect(await fact('Failed').textContent()).toBe('2');
    expect(await fact('Threads').textContent()).toBe('2');
    expect(await fact('Tokens').textContent()).toBe('4.5k');
    expect(await fact('Cost').textContent()).toBe('$1.50');
    expect(await fact('Agents').textContent()).toBe('billing-bot, support-bot');
    expect(await fact('First seen').textContent()).toBe('10 min ago');
    expect(await fact('Last active').textContent()).toBe('5 min ago');
    expect(await fact('Latest run').textContent()).toContain('Invoice 1042 not found');
    // its threads, the latest active first, without a User column naming her on every row
    const threads = page.getByRole('table', { name: /^Latest threads of/ });
    await expect
      .poll(() =>
        threads
          .locator('tbody tr')
          .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-thread-id'))),
      )
      .toEqual(['conv-invoice', 'conv-refund']);
    expect(await threads.getByRole('columnheader', { name: 'User' }).count()).toBe(0);
    expect(
      await threads.locator('tr[data-thread-id="conv-refund"] .col-thread-runs').textContent(),
    ).toBe('3');
    // its runs, the newest first
    const runs = page.getByRole('table', { name: /^Latest runs of/ });
    await expect
      .poll(() =>
        runs
          .locator('tbody tr')
          .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id'))),
      )
      .toEqual(['invoice-1', 'refund-3', 'refund-2', 'refund-1']);
    await screenshot(page, 'user');

    // a thread of hers opens as its conversation, which links back to her
    await threads.getByRole('link', { name: 'Input of refund-1' }).click();
    await page.getByRole('heading', { name: 'Thread conv-refund' }).waitFor();
    await page.locator('.thread-facts').getByRole('link', { name: DANA }).click();
    await page.getByRole('heading', { name: `User ${DANA}` }).waitFor();

    await page.getByRole('link', { name: 'All runs of this user' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('user_id')).toBe(DANA);
    expect(new URL(page.url()).pathname).toBe('/runs');
    await expect.poll(() => runIds()).toEqual(['invoice-1', 'refund-3', 'refund-2', 'refund-1']);
    await page.getByRole('button', { name: `Remove filter User: ${DANA}` }).waitFor();
    // the filter's chip leads back to the user
    await page.locator('.exact-filters').getByRole('link', { name: DANA }).click();
    await page.getByRole('heading', { name: `User ${DANA}` }).waitFor();
  });

  it("links a run's user and a thread's user to the user's page", async () => {
    await page.goto(`${server.url}/agents/sales-bot/runs/ship-1`);
    await page.getByRole('heading', { name: /Run ship-1/ }).waitFor();
    expect(
      await page.getByRole('link', { name: 'All runs of this user' }).getAttribute('href'),
    ).toBe('/runs?user_id=lee%40example.com');
    await page.getByRole('link', { name: LEE }).click();
    await page.getByRole('heading', { name: `User ${LEE}` }).waitFor();
    // and the Threads list's User column
    await page.goto(`${server.url}/threads`);
    await page
      .locator('.threads-table tr[data-thread-id="conv-shipping"]')
      .getByRole('link', { name: LEE })
      .click();
    await page.getByRole('heading', { name: `User ${LEE}` }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/users/lee%40example.com');
  });

  it('opens a user whose id needs encoding, and says when no run names a user', async () => {
    await page.goto(`${server.url}/users`);
    await row(ODD_USER).getByRole('link', { name: ODD_USER }).click();
    await page.getByRole('heading', { name: `User ${ODD_USER}` }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/users/ops%2Fteam%207%3F');
    expect(await fact('Threads').textContent()).toBe('0');
    await page.getByText('No threads', { exact: true }).waitFor();
    expect(await page.locator('.user-page .page-head').getByTestId('thread-active').count()).toBe(
      1,
    );

    await page.goto(`${server.url}/users/${encodeURIComponent('nobody@example.com')}`);
    await page.getByRole('heading', { name: 'User not found' }).waitFor();
    expect(await page.locator('.empty-body').textContent()).toContain(
      'No runs were made for user nobody@example.com',
    );
    await screenshot(page, 'user-not-found');
    await page.locator('.empty-body').getByRole('link', { name: 'See all users' }).click();
    await page.getByRole('heading', { name: 'Users' }).waitFor();
  });

  it('moves a user to the top and adds up its new run while the page is open', async () => {
    await page.goto(`${server.url}/users`);
    await expect.poll(async () => (await userIds())[0]).toBe(ODD_USER);
    await expect.poll(() => page.locator('.conn-open').count()).toBe(1);
    await seed(api, [
      {
        id: 'ship-2',
        agent: 'sales-bot',
        user: LEE,
        thread: 'conv-shipping',
        ago: 0,
        running: true,
      },
    ]);
    await expect.poll(async () => (await userIds())[0], { timeout: 10_000 }).toBe(LEE);
    expect(await cell(LEE, 'runs').textContent()).toContain('2');
    expect(await row(LEE).getByTestId('thread-active').count()).toBe(1);

    // a user's page follows its runs too
    await page.goto(`${server.url}/users/${encodeURIComponent(LEE)}`);
    await expect.poll(() => fact('Runs').textContent()).toBe('2');
    await ingest(api, [
      {
        type: 'run.end',
        run: {
          id: 'ship-2',
          status: 'failed',
          ended_at: Date.now(),
          error: { message: 'No route to Iceland' },
        },
      },
    ]);
    await expect.poll(() => fact('Failed').textContent(), { timeout: 10_000 }).toBe('1');
    await expect
      .poll(() => page.locator('.runs-table tr[data-run-id="ship-2"]').getAttribute('data-status'))
      .toBe('failed');
    expect(await page.locator('.user-page .page-head').getByTestId('thread-active').count()).toBe(
      0,
    );
  }, 60_000); // each live step waits out the lists' 3 s refresh throttle

  it('says how a run gets a user in a project whose runs have none', async () => {
    const created = await call<{ admin_key: { key: string } }>(api, 'POST', '/projects', {
      name: 'Anonymous runs',
    });
    expect(created.status).toBe(201);
    const other = { url: server.url, key: created.body.admin_key.key };
    await seed(other, [{ id: 'nobodys-1', agent: 'support-bot', thread: 'conv-x', ago: MIN }]);
    const fresh = await openBrowser();
    try {
      await logIn(fresh.page, server.url, other.key);
      await fresh.page.goto(`${server.url}/users`);
      await fresh.page.getByText('No users yet').waitFor();
      const body = await fresh.page.locator('.empty-body').textContent();
      expect(body).toContain("runlog.run('my-agent', fn, { userId })");
      expect(body).toContain('user_id');
      await screenshot(fresh.page, 'users-empty', false);
    } finally {
      await fresh.close();
    }
  });

  it('fits a phone, and the header keeps every section on the smallest one', async () => {
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await phone.goto(`${server.url}/users`);
      await row(DANA, phone).waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      // the agents go under the user; the counts stay
      expect(await phone.getByRole('columnheader', { name: 'Agents' }).isVisible()).toBe(false);
      const narrow = row(DANA, phone).locator('.user-who-narrow');
      expect(await narrow.isVisible()).toBe(true);
      expect(await narrow.textContent()).toBe('billing-bot, support-bot');
      expect(await row(DANA, phone).locator('.failed-count').isVisible()).toBe(true);
      await screenshot(phone, 'users-375', false);
      await phone.goto(`${server.url}/users/${encodeURIComponent(DANA)}`);
      await phone.getByRole('heading', { name: `User ${DANA}` }).waitFor();
      await phone.locator('.runs-table tbody tr').first().waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'user-375');
      await phone.emulateMedia({ colorScheme: 'dark' });
      await screenshot(phone, 'user-375-dark');
      await phone.emulateMedia({ colorScheme: 'light' });

      await phone.setViewportSize({ width: 320, height: 700 });
      await phone.goto(`${server.url}/users`);
      await row(DANA, phone).waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const nav = phone.getByRole('navigation', { name: 'Main' });
      expect(await nav.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'users-320', false);
      // Settings is an icon on a phone, still named for a screen reader
      const settings = nav.getByRole('link', { name: 'Settings' });
      expect(await settings.isVisible()).toBe(true);
      expect(await settings.locator('svg').isVisible()).toBe(true);
      // and every width up to a desktop keeps the header's sections on screen
      for (const width of [375, 640, 720, 820, 879, 880, 900, 1024, 1280]) {
        await phone.setViewportSize({ width, height: 700 });
        expect(await overflowOf(phone), `${width} px`).toBeLessThanOrEqual(0);
        expect(
          await nav.evaluate((el) => el.scrollWidth - el.clientWidth),
          `the nav at ${width} px`,
        ).toBeLessThanOrEqual(0);
        const last = await settings.boundingBox();
        expect(last!.x + last!.width, `Settings at ${width} px`).toBeLessThanOrEqual(width);
        await screenshot(phone, `users-header-${width}`, false);
      }
    } finally {
      await phone.close();
    }
  });
});
