import { sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // the thread list: a project's threaded runs newest first, their thread read off the
  // index, so finding a page of threads reads about as many entries as the page's last
  // turns, however few of the project's runs are in a thread
  await db.schema
    .createIndex('runs_threads_latest')
    .on('runs')
    .columns(['project_id', 'sort_at', 'id', 'thread_id'])
    .where(sql.ref('thread_id'), 'is not', null)
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('runs_threads_latest').execute();
}
