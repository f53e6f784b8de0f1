import { sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // Most runs have no thread, user, parent or retry, and a queued or running run has no end:
  // their index entries only cost every insert a B-tree write. The filters on these columns
  // (`thread_id = ?`, `ended_at < ?`...) imply IS NOT NULL, so both databases still use them.
  // The list filters also hold the list order (sort_at, id): without it SQLite, which keeps
  // no statistics here, preferred walking the whole project newest first to skip a sort.
  const partial: [name: string, column: string, columns: string[]][] = [
    ['runs_thread', 'thread_id', ['project_id', 'thread_id', 'sort_at', 'id']],
    ['runs_retry_of', 'retry_of', ['project_id', 'retry_of', 'sort_at', 'id']],
    ['runs_parent', 'parent_run_id', ['project_id', 'parent_run_id', 'sort_at', 'id']],
    ['runs_user_sort', 'user_id', ['project_id', 'user_id', 'sort_at', 'id']],
    ['runs_ended', 'ended_at', ['project_id', 'ended_at']],
  ];
  for (const [name, column, columns] of partial) {
    await db.schema.dropIndex(name).execute();
    await db.schema
      .createIndex(name)
      .on('runs')
      .columns(columns)
      .where(sql.ref(column), 'is not', null)
      .execute();
  }
  // a claim reads one project's oldest queued runs of some agents in (queued_at, id) order
  await db.schema.dropIndex('runs_queue').execute();
  await db.schema
    .createIndex('runs_queue')
    .on('runs')
    .columns(['project_id', 'agent_id', 'queued_at', 'id'])
    .where(sql.ref('status'), '=', 'queued')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  const full: [name: string, columns: string[]][] = [
    ['runs_thread', ['project_id', 'thread_id']],
    ['runs_retry_of', ['project_id', 'retry_of']],
    ['runs_parent', ['project_id', 'parent_run_id']],
    ['runs_user_sort', ['project_id', 'user_id', 'sort_at']],
    ['runs_ended', ['project_id', 'ended_at']],
  ];
  for (const [name, columns] of full) {
    await db.schema.dropIndex(name).execute();
    await db.schema.createIndex(name).on('runs').columns(columns).execute();
  }
  await db.schema.dropIndex('runs_queue').execute();
  await db.schema
    .createIndex('runs_queue')
    .on('runs')
    .columns(['agent_id', 'queued_at'])
    .where(sql.ref('status'), '=', 'queued')
    .execute();
}
