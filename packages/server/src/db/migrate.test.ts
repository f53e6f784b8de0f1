import { expect, it } from 'vitest';
import type { Agent } from '@runlog/core';
import {
  createTestApp,
  describeEachDb,
  freshDatabase,
  json,
  type TestApp,
} from '../../test/harness.js';
import { scheduleOnce } from '../control/scheduler.js';
import { openDatabase } from './database.js';
import { migrateTo } from './migrate.js';

describeEachDb('an upgrade from the migrations before 0019_schedule_paused', (dialect) => {
  it('keeps every schedule stored before running: none comes back paused', async () => {
    const database = freshDatabase(dialect);
    let t: TestApp | undefined;
    try {
      // a database as the version before paused schedules left it, with a schedule due
      const old = await openDatabase(database.url);
      const now = Date.now();
      // this minute's slot, due: the slot after it is always ahead of now (a time a second
      // back was not a slot, and in a minute's first second the slot after it was due too)
      const due = Math.floor(now / 60_000) * 60_000;
      try {
        await migrateTo(old, '0017_step_cost_given');
        await old.kysely
          .insertInto('projects')
          .values({ id: 'default', name: 'Default', retention_days: 30, created_at: now })
          .execute();
        await old.kysely
          .insertInto('agents')
          .values({
            project_id: 'default',
            id: 'nightly',
            name: 'nightly',
            description: null,
            schedule_cron: '* * * * *',
            schedule_tz: 'Europe/Paris',
            schedule_next_at: due,
            timeout_ms: null,
            metadata: '{}',
            created_at: now,
            updated_at: now,
          })
          .execute();
      } finally {
        await old.close();
      }
      // the new version starts on it: migrates, then schedules
      t = await createTestApp(dialect, {}, database);
      const res = await t.request('GET', '/api/v1/agents/nightly');
      expect(res.statusCode).toBe(200);
      expect(json<Agent>(res)).toMatchObject({
        schedule: { cron: '* * * * *', timezone: 'Europe/Paris', paused: false },
        next_run_at: new Date(due).toISOString(),
      });
      expect(await scheduleOnce(t.ctx, now)).toBe(1);
      const runs = await t.ctx.db.kysely
        .selectFrom('runs')
        .select(['agent_id', 'trigger'])
        .where('project_id', '=', 'default')
        .execute();
      expect(runs).toEqual([{ agent_id: 'nightly', trigger: 'schedule' }]);
    } finally {
      if (t) await t.close();
      else await database.drop();
    }
  });
});
