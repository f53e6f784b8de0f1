import { afterAll, describe, expect } from 'vitest';
import { advisoryLocks } from '../src/db/dialect.js';
import type { Database } from '../src/db/schema.js';
import { createTestApp, pgIt, type TestApp } from './harness.js';

/**
 * Two Runlog deployments on two schemas of one PostgreSQL database (`?schema=`): their
 * advisory locks, which PostgreSQL keeps for the whole database, must not meet.
 */
describe('deployments on two schemas of one PostgreSQL database', () => {
  let a: TestApp | undefined;
  let b: TestApp | undefined;
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  pgIt('records a run while the other holds the lock of a run of the same name', async () => {
    a = await createTestApp('postgres');
    b = await createTestApp('postgres');
    const run = { id: 'same-name', agent_id: 'support' };
    const ingest = (app: TestApp) =>
      app.request('POST', '/api/v1/ingest', { events: [{ type: 'run.start', run }] });
    // a's write path holds run same-name of project default (a group commit under way)
    let held = await holdLock(a, `default/${run.id}`);
    try {
      const waited = await Promise.race([
        ingest(b).then((res) => res.statusCode),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000)),
      ]);
      expect(waited).toBe(200);
    } finally {
      await held.release();
    }
    // and within one schema the lock still holds: a's own write of the run waits for it
    held = await holdLock(a, `default/${run.id}`);
    let answered = false;
    const own = ingest(a);
    void own.then(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(answered).toBe(false);
    await held.release();
    expect((await own).statusCode).toBe(200);
  });
});

/** Holds `key`'s advisory lock in a transaction of `app`'s, as its write path would, until released. */
async function holdLock(app: TestApp, key: string): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = app.ctx.db.kysely.transaction().execute(async (trx) => {
    await advisoryLocks<Database>(trx, [key]);
    locked();
    await released;
  });
  await isLocked;
  return {
    release: async () => {
      release();
      await done;
    },
  };
}
