import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { RunRow, StepRow } from '../db/schema.js';

/** A run of the project, or `undefined`: another project's run is as absent as a missing one. */
export async function findRun(db: Db, projectId: string, id: string): Promise<RunRow | undefined> {
  return db.kysely
    .selectFrom('runs')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** A run's steps in time order (`seq`, the arrival order unless the caller gave one, breaks ties). */
export async function listSteps(db: Db, projectId: string, runId: string): Promise<StepRow[]> {
  return (
    db.kysely
      .selectFrom('steps')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('run_id', '=', runId)
      // time order; steps that only reported an end sort by it
      .orderBy(sql`coalesce(started_at, ended_at, created_at)`)
      .orderBy('seq')
      .orderBy('id')
      .execute()
  );
}

export async function findStep(
  db: Db,
  projectId: string,
  runId: string,
  id: string,
): Promise<StepRow | undefined> {
  return db.kysely
    .selectFrom('steps')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('run_id', '=', runId)
    .where('id', '=', id)
    .executeTakeFirst();
}
