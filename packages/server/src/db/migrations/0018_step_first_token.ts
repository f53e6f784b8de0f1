import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // when a streamed answer's first token came (epoch ms): an LLM step's time to first token
  // is from its start to it. Null for steps that did not record one.
  await db.schema.alterTable('steps').addColumn('first_token_at', 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('steps').dropColumn('first_token_at').execute();
}
