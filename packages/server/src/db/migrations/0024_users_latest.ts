import { sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // the user list: a project's runs made for a user newest first, their user read off the
  // index, so finding a page of users reads about as many entries as the page's last runs,
  // however few of the project's runs name a user (as runs_threads_latest does for threads)
  await db.schema
    .createIndex('runs_users_latest')
    .on('runs')
    .columns(['project_id', 'sort_at', 'id', 'user_id'])
    .where(sql.ref('user_id'), 'is not', null)
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('runs_users_latest').execute();
}
