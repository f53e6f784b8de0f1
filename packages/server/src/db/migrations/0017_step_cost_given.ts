import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // whether a step's cost was given (1) or computed from the price table (0): a computed one
  // is computed again when usage comes later, whatever the price was when it was computed.
  // Null for steps written before this column (then a cost the price table gives is computed).
  await db.schema.alterTable('steps').addColumn('cost_given', 'integer').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('steps').dropColumn('cost_given').execute();
}
