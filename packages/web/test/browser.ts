// The browser the dashboard's tests drive: Debian's Chromium through Playwright, on a build of
// the dashboard that a real test server serves.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer } from '../../server/test/harness.js';
import type { Api } from './seed.js';

export const CHROMIUM = process.env.RUNLOG_CHROMIUM ?? '/usr/bin/chromium';
export const WEB = fileURLToPath(new URL('..', import.meta.url));
export const DIST = join(WEB, 'dist');
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const SHOTS = join(ROOT, 'test-results', 'screenshots');

/** CI installs Chromium; a machine without it reports these tests as skipped, never passed. */
export const browserSuite = existsSync(CHROMIUM) || process.env.CI ? describe : describe.skip;

/** Builds the dashboard when no build is there yet (the server serves `dist`). */
export function ensureBuilt(): void {
  if (!existsSync(join(DIST, 'index.html'))) {
    execFileSync('npx', ['vite', 'build'], { cwd: WEB, stdio: 'inherit' });
  }
}

/** A headless Chromium with a fresh, empty profile, its first page, and how to close both. */
export async function openBrowser(): Promise<{
  context: BrowserContext;
  page: Page;
  close: () => Promise<void>;
}> {
  const userDir = mkdtempSync(join(tmpdir(), 'runlog-chromium-'));
  const context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 860 },
    colorScheme: 'light',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

/** Opens the dashboard's login link for `key` on `page` and waits until it is signed in. */
export async function logIn(page: Page, serverUrl: string, key: string): Promise<void> {
  await page.goto(`${serverUrl}/login#key=${key}`);
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
}

/**
 * A test server on SQLite serving the built dashboard, and a browser signed in to it: what a
 * browser suite that needs nothing else sets up first. `close` ends both.
 */
export async function openSignedIn(): Promise<{
  server: Awaited<ReturnType<typeof startTestServer>>;
  api: Api;
  page: Page;
  close: () => Promise<void>;
}> {
  ensureBuilt();
  const server = await startTestServer('sqlite', { webRoot: DIST });
  const browser = await openBrowser().catch(async (err: unknown) => {
    await server.close();
    throw err;
  });
  await logIn(browser.page, server.url, server.adminKey);
  return {
    server,
    api: { url: server.url, key: server.adminKey },
    page: browser.page,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/** What `signedIn()` hands a suite's tests, filled in before the first of them runs. */
export type SignedIn = Awaited<ReturnType<typeof openSignedIn>>;

/**
 * Inside a `browserSuite`: a server, the built dashboard and a signed-in page
 * (`openSignedIn`) opened before the suite's tests and closed after them.
 */
export function signedIn(): SignedIn {
  const session = {} as SignedIn;
  beforeAll(async () => {
    Object.assign(session, await openSignedIn());
  }, 120_000);
  afterAll(async () => {
    await session.close?.();
  });
  return session;
}

/** Saves a screenshot of the whole page (or of the screen) as test-results/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

/** How far the page is wider than the screen (0 when nothing overflows). */
export function overflowOf(page: Page): Promise<number> {
  return page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
}
