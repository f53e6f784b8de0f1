// The Threads section in a real browser: the list of conversations, one conversation's
// turns, live updates, and a phone's width.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestServer } from '../../server/test/harness.js';
import { ingest, type Api } from './seed.js';
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

interface Turn {
  id: string;
  agent: string;
  thread: string;
  user?: string;
  /** Start, in ms before now. */
  ago: number;
  input: unknown;
  output?: unknown;
  error?: string;
  /** Left running when true. */
  running?: boolean;
  tokens?: [number, number];
}

/** One run of a thread: its start, an LLM step with tokens and a cost, and its end. */
function turnEvents(t: Turn, now: number): unknown[] {
  const start = now - t.ago;
  const [input, output] = t.tokens ?? [800, 200];
  const events: unknown[] = [
    {
      type: 'run.start',
      run: {
        id: t.id,
        agent_id: t.agent,
        thread_id: t.thread,
        user_id: t.user ?? null,
        started_at: start,
        input: t.input,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${t.id}-llm`,
        run_id: t.id,
        type: 'llm',
        name: 'answer',
        model: 'gpt-4o-mini',
        started_at: start + 10,
        ended_at: start + 900,
        input_tokens: input,
        output_tokens: output,
        cost_usd: (input + output) / 1_000_000,
      },
    },
  ];
  if (!t.running)
    events.push({
      type: 'run.end',
      run: {
        id: t.id,
        status: t.error ? 'failed' : 'succeeded',
        ended_at: start + 1200,
        ...(t.error ? { error: { message: t.error, type: 'UpstreamError' } } : {}),
        ...(t.output !== undefined ? { output: t.output } : {}),
      },
    });
  return events;
}

async function seedTurns(api: Api, turns: Turn[]): Promise<void> {
  const now = Date.now();
  const events = turns.flatMap((t) => turnEvents(t, now));
  for (let i = 0; i < events.length; i += 500) await ingest(api, events.slice(i, i + 500));
}

const ODD_THREAD = 'support/ticket 7?';

browserSuite('threads in a real browser', () => {
  let server: Server;
  let api: Api;
  let page: Page;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;

  const threadIds = (p: Page = page) =>
    p
      .locator('.threads-table tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-thread-id')));
  const row = (threadId: string, p: Page = page) =>
    p.locator(`.threads-table tr[data-thread-id="${threadId}"]`);
  const turnIds = (p: Page = page) =>
    p
      .locator('.turns > li')
      .evaluateAll((items) => items.map((i) => i.getAttribute('data-run-id')));
  const turn = (runId: string, p: Page = page) => p.locator(`.turns > li[data-run-id="${runId}"]`);

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer('sqlite', { webRoot: DIST });
    api = { url: server.url, key: server.adminKey };
    await seedTurns(api, [
      {
        id: 'refund-1',
        agent: 'support-bot',
        thread: 'conv-refund',
        user: 'dana@example.com',
        ago: 10 * MIN,
        input: { messages: [{ role: 'user', content: 'I want a refund for order 1042' }] },
        output: { content: 'Sure, I can help with order 1042. What went wrong?' },
        tokens: [1200, 300],
      },
      {
        id: 'refund-2',
        agent: 'support-bot',
        thread: 'conv-refund',
        user: 'dana@example.com',
        ago: 8 * MIN,
        input: 'It arrived\nbroken',
        error: 'Payments API timed out after 30 s',
      },
      {
        id: 'refund-3',
        agent: 'billing-bot',
        thread: 'conv-refund',
        user: 'dana@example.com',
        ago: 6 * MIN,
        input: { query: 'Any update on my refund?' },
        output: 'Your refund of $42 is on its way.',
      },
      {
        id: 'ship-1',
        agent: 'sales-bot',
        thread: 'conv-shipping',
        user: 'lee@example.com',
        ago: 3 * MIN,
        input: 'Do you ship to Norway?',
        output: { answer: 'Yes, within 5 working days.' },
      },
      {
        id: 'ticket-1',
        agent: 'support-bot',
        thread: ODD_THREAD,
        ago: 1 * MIN,
        input: 'My password reset email never came',
        running: true,
      },
      // a long conversation, hours ago: its turns come 50 at a time
      ...Array.from({ length: 55 }, (_, i) => ({
        id: `long-${String(i + 1).padStart(2, '0')}`,
        agent: 'chatty-bot',
        thread: 'conv-long',
        ago: 5 * 60 * MIN - i * MIN,
        input: `Question number ${i + 1}`,
        output: `Answer number ${i + 1}`,
      })),
      // and enough old threads for a second page of them
      ...Array.from({ length: 50 }, (_, i) => ({
        id: `old-${i}`,
        agent: 'archive-bot',
        thread: `old-thread-${String(i).padStart(2, '0')}`,
        ago: 2 * 24 * 60 * MIN + i * MIN,
        input: `Old question ${i}`,
        output: 'Old answer',
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

  it('lists threads the latest active first, titled by their first input, with their counts', async () => {
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Threads' })
      .click();
    await page.getByRole('heading', { name: 'Threads' }).waitFor();
    await expect
      .poll(async () => (await threadIds()).slice(0, 4))
      .toEqual([ODD_THREAD, 'conv-shipping', 'conv-refund', 'conv-long']);
    const refund = row('conv-refund');
    expect(await refund.locator('.thread-title').textContent()).toBe(
      'I want a refund for order 1042',
    );
    expect(await refund.locator('.thread-id').textContent()).toBe('conv-refund');
    expect(await refund.locator('.col-thread-agents').textContent()).toBe(
      'billing-bot, support-bot',
    );
    expect(await refund.locator('.col-thread-user').textContent()).toBe('dana@example.com');
    expect(await refund.locator('.col-thread-runs').textContent()).toBe('3');
    // a failure stands out; none reads as a plain 0
    expect(await refund.locator('.col-thread-failed .failed-count').textContent()).toBe('1');
    expect(await row('conv-shipping').locator('.col-thread-failed .failed-count').count()).toBe(0);
    expect(await refund.locator('.thread-reply').textContent()).toContain(
      'Your refund of $42 is on its way.',
    );
    expect(await refund.locator('.col-thread-last time').textContent()).toBe('6 min ago');
    expect(await refund.locator('.status-icon').getAttribute('aria-label')).toBe(
      'Latest run succeeded',
    );
    // a thread with a run still going says so
    const odd = row(ODD_THREAD);
    expect(await odd.getByTestId('thread-active').textContent()).toContain('1 active');
    expect(await odd.getAttribute('data-status')).toBe('running');
    expect(await refund.getByTestId('thread-active').count()).toBe(0);
    await screenshot(page, 'threads', false);

    // 50 a page: the older threads come with Load more
    expect(await threadIds().then((ids) => ids.length)).toBe(50);
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(async () => (await threadIds()).length).toBe(54);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    expect((await threadIds()).at(-1)).toBe('old-thread-49');
  });

  it('filters threads by agent and user, the filters kept in the URL', async () => {
    await page.goto(`${server.url}/threads`);
    await row('conv-refund').waitFor();
    await page.getByLabel('Agent').selectOption('support-bot');
    await expect.poll(() => threadIds()).toEqual([ODD_THREAD, 'conv-refund']);
    expect(new URL(page.url()).searchParams.get('agent')).toBe('support-bot');
    // each thread is summed over the runs the filter keeps
    expect(await row('conv-refund').locator('.col-thread-runs').textContent()).toBe('2');
    expect(await row('conv-refund').locator('.status-icon').getAttribute('aria-label')).toBe(
      'Latest run failed: Payments API timed out after 30 s',
    );
    await page.getByLabel('User').fill('lee@example.com');
    await page.getByText('No threads match these filters').waitFor();
    expect(new URL(page.url()).searchParams.get('user_id')).toBe('lee@example.com');
    await page.getByLabel('Agent').selectOption('');
    await expect.poll(() => threadIds()).toEqual(['conv-shipping']);
    // a shared link opens the same view
    await page.goto(`${server.url}/threads?agent=billing-bot`);
    await expect.poll(() => threadIds()).toEqual(['conv-refund']);
    expect(await page.getByLabel('Agent').inputValue()).toBe('billing-bot');
    // Clear filters also drops a user typed but not yet applied: it must not come back
    await page.getByLabel('User').fill('half-typed');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    await expect.poll(() => page.getByLabel('User').inputValue()).toBe('');
    await page.waitForTimeout(600); // past the text field's 350 ms debounce
    expect(new URL(page.url()).search).toBe('');
    await expect.poll(async () => (await threadIds()).length).toBe(50);
  });

  it('searches threads by any part of their id, in any case, the search kept in the URL', async () => {
    const DAY = 24 * 60 * MIN;
    // enough threads holding one text for a second page of them, older than the rest
    await seedTurns(
      api,
      Array.from({ length: 55 }, (_, i) => ({
        id: `searchable-${i}`,
        agent: 'archive-bot',
        thread: `Searchable-Thread-${String(i).padStart(2, '0')}`,
        ago: 3 * DAY + i * MIN,
        input: `Searchable question ${i}`,
        output: 'Searchable answer',
      })),
    );
    const search = page.getByRole('searchbox', { name: 'Search', exact: true });
    await page.goto(`${server.url}/threads`);
    await row('conv-refund').waitFor();
    await search.fill('REFUND');
    await expect.poll(() => threadIds()).toEqual(['conv-refund']);
    expect(new URL(page.url()).searchParams.get('q')).toBe('REFUND');
    // the search picks threads; each is still summed over all its runs
    expect(await row('conv-refund').locator('.col-thread-runs').textContent()).toBe('3');
    await screenshot(page, 'threads-search', false);

    // a reload (or a shared link) opens the same search
    await page.reload();
    await expect.poll(() => threadIds()).toEqual(['conv-refund']);
    expect(await search.inputValue()).toBe('REFUND');

    // live: a new thread the search holds comes in, one it does not stays out
    await expect.poll(() => page.locator('.conn-open').count()).toBe(1);
    await seedTurns(api, [
      {
        id: 'refund-old-1',
        agent: 'support-bot',
        thread: 'Old-Refund-7',
        ago: 4 * DAY,
        input: 'Hi',
      },
      {
        id: 'unrelated-1',
        agent: 'support-bot',
        thread: 'conv-unrelated',
        ago: 4 * DAY,
        input: 'Hi',
      },
    ]);
    await expect
      .poll(() => threadIds(), { timeout: 10_000 })
      .toEqual(['conv-refund', 'Old-Refund-7']);
    expect(await threadIds()).not.toContain('conv-unrelated');

    // an id with a slash, a space and a question mark, searched by part of it
    await search.fill('TICKET 7?');
    await expect.poll(() => threadIds()).toEqual([ODD_THREAD]);
    expect(new URL(page.url()).searchParams.get('q')).toBe('TICKET 7?');

    // Enter applies it at once; Load more reads the next page of the same search
    await search.fill('searchable-THREAD');
    await search.press('Enter');
    await expect.poll(async () => (await threadIds()).length).toBe(50);
    expect(new URL(page.url()).searchParams.get('q')).toBe('searchable-THREAD');
    expect(await page.locator('.page-head .count').textContent()).toBe('50+');
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(async () => (await threadIds()).length).toBe(55);
    const all = await threadIds();
    expect(all.every((id) => /searchable-thread/i.test(id ?? ''))).toBe(true);
    expect(all.at(-1)).toBe('Searchable-Thread-54');
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);

    // nothing found says what was searched for, not how to record a first thread
    await search.fill('no-such-thread');
    await page.getByText('No threads match “no-such-thread”').waitFor();
    expect(await page.locator('.empty-body').textContent()).toBe(
      'No thread id holds this text, in any case. Change or clear the search.',
    );
    // with the User filter too, it says that filter may be why
    await page.getByLabel('User').fill('lee@example.com');
    await expect
      .poll(() => page.locator('.empty-body').textContent())
      .toContain('has runs these filters keep');
    await screenshot(page, 'threads-search-empty', false);

    // Clear filters drops the search and the user, and typing not yet applied with them
    await search.fill('half-typed');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
    await expect.poll(() => search.inputValue()).toBe('');
    expect(await page.getByLabel('User').inputValue()).toBe('');
    await page.waitForTimeout(600); // past the field's 350 ms debounce
    expect(new URL(page.url()).search).toBe('');
    await expect.poll(async () => (await threadIds()).length).toBe(50);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(1);

    // on a phone, the search keeps the filters on screen
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await phone.goto(`${server.url}/threads?q=refund`);
      await expect.poll(() => threadIds(phone)).toEqual(['conv-refund', 'Old-Refund-7']);
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const field = await phone
        .getByRole('searchbox', { name: 'Search', exact: true })
        .boundingBox();
      expect(field!.x).toBeGreaterThanOrEqual(0);
      expect(field!.x + field!.width).toBeLessThanOrEqual(375);
      await screenshot(phone, 'threads-search-375', false);
    } finally {
      await phone.close();
    }
  }, 60_000); // the live step waits out the list's 3 s refresh throttle

  it('opens a thread as its conversation, the oldest turn first, each with its input and output', async () => {
    await page.goto(`${server.url}/threads`);
    await row('conv-refund').getByRole('link', { name: 'I want a refund for order 1042' }).click();
    await page.getByRole('heading', { name: 'Thread conv-refund' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/threads/conv-refund');
    await expect.poll(() => turnIds()).toEqual(['refund-1', 'refund-2', 'refund-3']);
    const facts = page.locator('.thread-facts');
    expect(await facts.locator('div', { hasText: /^Runs/ }).locator('dd').textContent()).toBe('3');
    expect(
      await facts
        .locator('div', { hasText: /^Failed/ })
        .locator('dd')
        .textContent(),
    ).toBe('1');
    expect(
      await facts
        .locator('div', { hasText: /^Agents/ })
        .locator('dd')
        .textContent(),
    ).toBe('billing-bot, support-bot');
    // the user opens its page; "as runs" beside it, its runs on the Runs page
    const user = facts.locator('div', { hasText: /^User/ }).locator('dd');
    expect(await user.getByRole('link', { name: 'dana@example.com' }).getAttribute('href')).toBe(
      '/users/dana%40example.com',
    );
    expect(
      await user.getByRole('link', { name: 'All runs of this user' }).getAttribute('href'),
    ).toBe('/runs?user_id=dana%40example.com');

    const first = turn('refund-1');
    expect(await first.getByRole('article').getAttribute('aria-label')).toBe('Turn 1');
    expect(await first.locator('.turn-in .turn-text').textContent()).toBe(
      'I want a refund for order 1042',
    );
    expect(await first.locator('.turn-out .turn-text').textContent()).toBe(
      'Sure, I can help with order 1042. What went wrong?',
    );
    expect(await first.locator('.turn-agent').textContent()).toBe('support-bot');
    // a failed turn says what it failed with, and has no output to show
    const failed = turn('refund-2');
    expect(await failed.getAttribute('data-status')).toBe('failed');
    // a message keeps its lines, as the user wrote it
    expect(await failed.locator('.turn-in .turn-text').textContent()).toBe('It arrived\nbroken');
    expect(await failed.locator('.turn-error .turn-text').textContent()).toBe(
      'UpstreamError: Payments API timed out after 30 s',
    );
    expect(await failed.locator('.turn-out').count()).toBe(0);
    const last = turn('refund-3');
    expect(await last.locator('.turn-in .turn-text').textContent()).toBe(
      'Any update on my refund?',
    );
    expect(await last.locator('.turn-agent').textContent()).toBe('billing-bot');

    // the whole payload is one click away, as JSON
    await first.getByRole('button', { name: 'Show JSON' }).click();
    await first.getByRole('region', { name: 'Turn 1 input' }).waitFor();
    expect(await first.locator('.turn-json').textContent()).toContain('messages: [1 item]');
    await screenshot(page, 'thread');
    await first.getByRole('button', { name: 'Hide JSON' }).click();

    // each turn links to its run's page
    await last.getByRole('link', { name: /Run refund-3/ }).click();
    await page.getByRole('heading', { name: /Run refund-3/ }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/agents/billing-bot/runs/refund-3');
    // and the run's page links back to its thread
    await page.getByRole('link', { name: 'conv-refund' }).click();
    await page.getByRole('heading', { name: 'Thread conv-refund' }).waitFor();
  });

  it('shows a run recorded in the thread afterwards without a reload', async () => {
    await page.goto(`${server.url}/threads/conv-refund`);
    await expect.poll(() => turnIds()).toEqual(['refund-1', 'refund-2', 'refund-3']);
    await expect.poll(() => page.locator('.conn-open').count()).toBe(1);
    const now = Date.now();
    await ingest(api, [
      {
        type: 'run.start',
        run: {
          id: 'refund-4',
          agent_id: 'support-bot',
          thread_id: 'conv-refund',
          user_id: 'dana@example.com',
          started_at: now,
          input: { messages: [{ role: 'user', content: 'Thanks! When will it arrive?' }] },
        },
      },
    ]);
    await expect
      .poll(() => turnIds(), { timeout: 10_000 })
      .toEqual(['refund-1', 'refund-2', 'refund-3', 'refund-4']);
    const added = turn('refund-4');
    expect(await added.getAttribute('data-status')).toBe('running');
    expect(await added.locator('.turn-in .turn-text').textContent()).toBe(
      'Thanks! When will it arrive?',
    );
    expect(await added.locator('.turn-out .turn-text').textContent()).toBe('Running…');
    // the thread's sums follow, and say a run is going
    const runs = page.locator('.thread-facts div', { hasText: /^Runs/ }).locator('dd');
    await expect.poll(() => runs.textContent(), { timeout: 10_000 }).toBe('4');
    await page.locator('.thread-page .page-head').getByTestId('thread-active').waitFor();

    await ingest(api, [
      {
        type: 'run.end',
        run: {
          id: 'refund-4',
          status: 'succeeded',
          ended_at: now + 800,
          output: 'In 3 to 5 working days.',
        },
      },
    ]);
    await expect
      .poll(() => added.locator('.turn-out .turn-text').textContent(), { timeout: 10_000 })
      .toBe('In 3 to 5 working days.');
    expect(await added.getAttribute('data-status')).toBe('succeeded');
    await expect
      .poll(() => page.locator('.thread-page .page-head').getByTestId('thread-active').count(), {
        timeout: 10_000,
      })
      .toBe(0);

    // the Threads list, open, moves the thread to the top as its run comes
    await page.goto(`${server.url}/threads`);
    await expect.poll(async () => (await threadIds())[0]).toBe('conv-refund');
    await ingest(api, [
      {
        type: 'run.start',
        run: {
          id: 'ship-2',
          agent_id: 'sales-bot',
          thread_id: 'conv-shipping',
          input: 'And Iceland?',
        },
      },
    ]);
    await expect
      .poll(async () => (await threadIds())[0], { timeout: 10_000 })
      .toBe('conv-shipping');
    expect(await row('conv-shipping').locator('.col-thread-runs').textContent()).toContain('2');
    expect(await row('conv-shipping').getByTestId('thread-active').count()).toBe(1);
  }, 60_000); // each live step waits out the lists' 3 s refresh throttle

  it('reads a long conversation 50 turns at a time, the earlier ones on demand', async () => {
    await page.goto(`${server.url}/threads/conv-long`);
    await expect.poll(async () => (await turnIds()).length).toBe(50);
    const ids = await turnIds();
    expect(ids[0]).toBe('long-06');
    expect(ids.at(-1)).toBe('long-55');
    expect(await turn('long-06').getByRole('article').getAttribute('aria-label')).toBe('Turn 6');
    expect(await page.locator('#conversation-title .count').textContent()).toBe('50 of 55 runs');
    await page.getByRole('button', { name: 'Load earlier turns' }).click();
    await expect.poll(async () => (await turnIds()).length).toBe(55);
    expect((await turnIds())[0]).toBe('long-01');
    expect(await turn('long-01').locator('.turn-in .turn-text').textContent()).toBe(
      'Question number 1',
    );
    expect(await page.getByRole('button', { name: 'Load earlier turns' }).count()).toBe(0);
  });

  it('opens a thread whose id needs encoding, and says when a thread has no runs', async () => {
    await page.goto(`${server.url}/threads`);
    await row(ODD_THREAD).getByRole('link').click();
    await page.getByRole('heading', { name: `Thread ${ODD_THREAD}` }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/threads/support%2Fticket%207%3F');
    await expect.poll(() => turnIds()).toEqual(['ticket-1']);
    // a link to it from the Runs page's thread filter
    await page.getByRole('link', { name: 'See as runs' }).click();
    await page.getByRole('button', { name: `Remove filter Thread: ${ODD_THREAD}` }).waitFor();
    await page.getByRole('link', { name: ODD_THREAD }).click();
    await page.getByRole('heading', { name: `Thread ${ODD_THREAD}` }).waitFor();

    await page.goto(`${server.url}/threads/${encodeURIComponent('no such thread')}`);
    await page.getByRole('heading', { name: 'Thread not found' }).waitFor();
    expect(await page.locator('.empty-body').textContent()).toContain(
      'No runs in thread no such thread',
    );
    // the way on, in the sentence, is told from it by more than its colour (WCAG 1.4.1)
    const seeAll = page.locator('.empty-body').getByRole('link', { name: 'See all threads' });
    expect(await seeAll.evaluate((a) => getComputedStyle(a).textDecorationLine)).toBe('underline');
    await screenshot(page, 'thread-not-found');
  });

  it('says no usage for a turn cancelled before it started, rather than "— tokens"', async () => {
    await ingest({ url: server.url, key: server.adminKey }, [
      {
        type: 'run.end',
        run: {
          id: 'never-1',
          agent_id: 'support-bot',
          thread_id: 'conv-never',
          status: 'cancelled',
          input: 'Anyone there?',
          error: { message: 'cancelled before it started', type: 'Cancelled' },
        },
      },
    ]);
    await page.goto(`${server.url}/threads/conv-never`);
    await expect.poll(() => turnIds()).toEqual(['never-1']);
    const facts = turn('never-1').locator('.turn-facts');
    // when it was queued or ended is all there is to say: no duration, tokens or cost
    expect((await facts.textContent())?.trim()).toMatch(/^ended (just now|.* ago)$/);
  });

  it("gives a turn's pending answer AA contrast on its tint, in the light and the dark theme", async () => {
    await page.goto(`${server.url}/threads/${encodeURIComponent(ODD_THREAD)}`);
    const pending = turn('ticket-1').locator('.turn-out .turn-text.muted');
    await pending.waitFor();
    expect(await pending.textContent()).toBe('Running…');
    const ratio = () =>
      pending.evaluate((el) => {
        const lum = (c: string) => {
          const [r, g, b] = c
            .match(/[\d.]+/g)!
            .slice(0, 3)
            .map((v) => {
              const x = Number(v) / 255;
              return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
            });
          return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
        };
        const a = lum(getComputedStyle(el).color);
        const b = lum(getComputedStyle(el.closest('.turn-out')!).backgroundColor);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      });
    try {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        expect(await ratio(), scheme).toBeGreaterThanOrEqual(4.5);
      }
    } finally {
      await page.emulateMedia({ colorScheme: 'light' });
    }
  });

  it('fits a phone and the dark theme', async () => {
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await phone.goto(`${server.url}/threads`);
      await row('conv-refund', phone).waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      // agents and user go under the title; the counts stay
      expect(await phone.getByRole('columnheader', { name: 'Agents' }).isVisible()).toBe(false);
      const narrow = row('conv-refund', phone).locator('.thread-who-narrow');
      expect(await narrow.isVisible()).toBe(true);
      expect(await narrow.textContent()).toBe('billing-bot, support-bot · dana@example.com');
      expect(await row('conv-refund', phone).locator('.failed-count').isVisible()).toBe(true);
      await screenshot(phone, 'threads-375', false);
      await phone.goto(`${server.url}/threads/conv-refund`);
      await turn('refund-1', phone).waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'thread-375');
      await phone.emulateMedia({ colorScheme: 'dark' });
      await screenshot(phone, 'thread-375-dark');
      await phone.goto(`${server.url}/threads`);
      await row('conv-refund', phone).waitFor();
      await screenshot(phone, 'threads-375-dark', false);
      await phone.setViewportSize({ width: 1280, height: 860 });
      await screenshot(phone, 'threads-dark', false);
      await phone.goto(`${server.url}/threads/conv-refund`);
      await turn('refund-1', phone).waitFor();
      await screenshot(phone, 'thread-dark');

      // the smallest phones keep every section of the header on screen, unscrolled
      await phone.emulateMedia({ colorScheme: 'light' });
      await phone.setViewportSize({ width: 320, height: 700 });
      await phone.goto(`${server.url}/threads`);
      await row('conv-refund', phone).waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const nav = phone.getByRole('navigation', { name: 'Main' });
      expect(await nav.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'threads-320', false);
      // between a phone and a desktop, the header's sections take a row of their own
      await phone.setViewportSize({ width: 720, height: 700 });
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      expect(await nav.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
      await screenshot(phone, 'threads-720', false);
    } finally {
      await phone.close();
    }
  });

  it("keeps a turn whose run has a long id on a phone's screen, the id's end shown", async () => {
    const id = `support-turn-2026-12-04T09:15:00.000Z-customer-000042-session-${'x'.repeat(30)}-7`;
    await ingest(api, [
      {
        type: 'run.end',
        run: {
          id,
          agent_id: 'support-bot',
          thread_id: 'conv-long-id',
          status: 'succeeded',
          input: { message: 'Where is my order?' },
          output: { answer: 'On its way.' },
        },
      },
    ]);
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 812 });
      await phone.goto(`${server.url}/threads/conv-long-id`);
      const link = turn(id, phone).locator('.turn-link');
      await link.waitFor();
      expect(await overflowOf(phone)).toBeLessThanOrEqual(0);
      const [box, article] = [await link.boundingBox(), await turn(id, phone).boundingBox()];
      expect(box!.x + box!.width).toBeLessThanOrEqual(article!.x + article!.width);
      // the id's last characters, where a run's ids tell them apart, are drawn inside the link
      const idEndShown = await link.locator('.mono').evaluate((el) => {
        const texts: Text[] = [];
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) texts.push(n as Text);
        const last = texts.filter((t) => t.data).pop()!;
        const range = document.createRange();
        range.setStart(last, last.data.length - 1);
        range.setEnd(last, last.data.length);
        const [c, b] = [range.getBoundingClientRect(), el.getBoundingClientRect()];
        return c.width > 0 && c.right <= b.right + 0.5;
      });
      expect(idEndShown).toBe(true);
      await screenshot(phone, 'thread-long-run-id-375');
    } finally {
      await phone.close();
    }
  });

  it("shows a turn's message with its lines: paragraphs, a list and code as written", async () => {
    const answer = 'Try these:\n1. Restart the router\n2. Call us\n\n```\nping 10.0.0.1\n```';
    await ingest(api, [
      {
        type: 'run.end',
        run: {
          id: 'lines-1',
          agent_id: 'support-bot',
          thread_id: 'conv-lines',
          status: 'succeeded',
          input: { message: 'My internet is down.\nWhat can I do?' },
          output: { answer },
        },
      },
    ]);
    await page.goto(`${server.url}/threads/conv-lines`);
    await expect.poll(() => turnIds()).toEqual(['lines-1']);
    const t = turn('lines-1');
    expect(await t.locator('.turn-in .turn-text').innerText()).toBe(
      'My internet is down.\nWhat can I do?',
    );
    expect(await t.locator('.turn-out .turn-text').innerText()).toBe(answer);
  });
});
