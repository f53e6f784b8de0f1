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
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // a's write path holds run same-name of project default (a group commit under way)
    const holder = a.ctx.db.kysely.transaction().execute(async (trx) => {
      await advisoryLocks<Database>(trx, [`default/${run.id}`]);
      locked();
      await held;
    });
    try {
      await isLocked;
      const recorded = b.request('POST', '/api/v1/ingest', {
        events: [{ type: 'run.start', run }],
      });
      const waited = await Promise.race([
        recorded.then((res) => res.statusCode),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000)),
      ]);
      expect(waited).toBe(200);
    } finally {
      release();
      await holder;
    }
    // and within one schema the lock still holds: a's own write of the run waits for it
    let releaseAgain!: () => void;
    const heldAgain = new Promise<void>((resolve) => (releaseAgain = resolve));
    let lockedAgain!: () => void;
    const isLockedAgain = new Promise<void>((resolve) => (lockedAgain = resolve));
    const again = a.ctx.db.kysely.transaction().execute(async (trx) => {
      await advisoryLocks<Database>(trx, [`default/${run.id}`]);
      lockedAgain();
      await heldAgain;
    });
    await isLockedAgain;
    let answered = false;
    const own = a.request('POST', '/api/v1/ingest', { events: [{ type: 'run.start', run }] });
    void own.then(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(answered).toBe(false);
    releaseAgain();
    await again;
    expect((await own).statusCode).toBe(200);
  });
});
