import { afterEach, expect, it, vi } from 'vitest';
import type { AppContext } from '../context.js';
import { repeatEvery } from './background.js';
import { startTestServer, waitFor } from '../../test/harness.js';

afterEach(() => {
  vi.useRealTimers();
});

it('never runs a job twice at once, goes on after a failure, and waits for it on close', async () => {
  vi.useFakeTimers();
  const ctx = { onClose: [] as (() => Promise<unknown>)[] } as unknown as AppContext;
  let calls = 0;
  let finish: () => void = () => {};
  const job = () => {
    calls++;
    if (calls === 2) return Promise.reject(new Error('database away'));
    return new Promise<void>((resolve) => (finish = resolve));
  };
  repeatEvery(ctx, 100, job);
  await vi.advanceTimersByTimeAsync(550);
  expect(calls).toBe(1); // the first run is still going: the ticks after it were skipped
  finish();
  await vi.advanceTimersByTimeAsync(100);
  expect(calls).toBe(2); // this one fails...
  await vi.advanceTimersByTimeAsync(100);
  expect(calls).toBe(3); // ...and the next tick runs again
  let closed = false;
  const closing = Promise.all(ctx.onClose.map((stop) => stop())).then(() => (closed = true));
  await vi.advanceTimersByTimeAsync(500);
  expect(closed).toBe(false); // waits for the run in progress
  expect(calls).toBe(3); // and starts no other
  finish();
  await closing;
  expect(closed).toBe(true);
});

it("keeps a SQLite server's query planner statistics from its start", async () => {
  const server = await startTestServer('sqlite');
  try {
    const sqlite = server.ctx.db.sqlite!;
    // PRAGMA optimize at start writes sqlite_stat1 for the tables that have rows by then
    await waitFor(
      () =>
        sqlite.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").get() !==
        undefined,
      'the statistics table',
    );
    const tables = sqlite.prepare('SELECT DISTINCT tbl FROM sqlite_stat1').all() as {
      tbl: string;
    }[];
    expect(tables.map((t) => t.tbl)).toContain('projects');
  } finally {
    await server.close();
  }
});
