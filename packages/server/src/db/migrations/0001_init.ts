import { sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('projects')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('retention_days', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('project_id', 'text', (c) =>
      c.notNull().references('projects.id').onDelete('cascade'),
    )
    .addColumn('name', 'text')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('api_keys_project').on('api_keys').columns(['project_id']).execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('project_id', 'text', (c) =>
      c.notNull().references('projects.id').onDelete('cascade'),
    )
    .addColumn('key_id', 'text', (c) => c.notNull().references('api_keys.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('agents')
    .addColumn('project_id', 'text', (c) =>
      c.notNull().references('projects.id').onDelete('cascade'),
    )
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('schedule_cron', 'text')
    .addColumn('schedule_tz', 'text')
    .addColumn('schedule_next_at', 'bigint')
    .addColumn('timeout_ms', 'bigint')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('agents_pk', ['project_id', 'id'])
    .execute();
  await db.schema
    .createIndex('agents_schedule')
    .on('agents')
    .columns(['schedule_next_at'])
    .where(sql.ref('schedule_next_at'), 'is not', null)
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('project_id', 'text', (c) =>
      c.notNull().references('projects.id').onDelete('cascade'),
    )
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('source', 'text')
    .addColumn('triggered_by', 'text')
    .addColumn('user_id', 'text')
    .addColumn('thread_id', 'text')
    .addColumn('parent_run_id', 'text')
    .addColumn('retry_of', 'text')
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('input', 'text')
    .addColumn('output', 'text')
    .addColumn('error', 'text')
    .addColumn('model', 'text')
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('queued_at', 'bigint')
    .addColumn('started_at', 'bigint')
    .addColumn('ended_at', 'bigint')
    .addColumn('duration_ms', 'bigint')
    .addColumn('cancel_requested_at', 'bigint')
    .addColumn('lease_expires_at', 'bigint')
    .addColumn('worker_id', 'text')
    .addColumn('last_heartbeat_at', 'bigint')
    .addColumn('deadline_at', 'bigint')
    .addColumn('step_count', 'integer', (c) => c.notNull())
    .addColumn('error_count', 'integer', (c) => c.notNull())
    .addColumn('llm_calls', 'integer', (c) => c.notNull())
    .addColumn('tool_calls', 'integer', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull())
    .addColumn('output_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cost_nanos', 'bigint', (c) => c.notNull())
    .addColumn('sort_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('runs_pk', ['project_id', 'id'])
    .execute();
  // newest first, per project and per agent (keyset pagination on sort_at, id)
  await db.schema
    .createIndex('runs_project_sort')
    .on('runs')
    .columns(['project_id', 'sort_at', 'id'])
    .execute();
  await db.schema
    .createIndex('runs_agent_sort')
    .on('runs')
    .columns(['project_id', 'agent_id', 'sort_at', 'id'])
    .execute();
  await db.schema
    .createIndex('runs_status_sort')
    .on('runs')
    .columns(['project_id', 'status', 'sort_at'])
    .execute();
  await db.schema
    .createIndex('runs_thread')
    .on('runs')
    .columns(['project_id', 'thread_id'])
    .execute();
  await db.schema
    .createIndex('runs_retry_of')
    .on('runs')
    .columns(['project_id', 'retry_of'])
    .execute();
  await db.schema
    .createIndex('runs_parent')
    .on('runs')
    .columns(['project_id', 'parent_run_id'])
    .execute();
  // the control plane's sweeps: queued runs to claim, running runs whose lease or deadline passed
  await db.schema
    .createIndex('runs_queue')
    .on('runs')
    .columns(['agent_id', 'queued_at'])
    .where(sql.ref('status'), '=', 'queued')
    .execute();
  await db.schema
    .createIndex('runs_leases')
    .on('runs')
    .columns(['lease_expires_at'])
    .where(sql.ref('status'), '=', 'running')
    .execute();
  await db.schema
    .createIndex('runs_deadlines')
    .on('runs')
    .columns(['deadline_at'])
    .where(sql.ref('status'), 'in', ['queued', 'running'])
    .execute();
  await db.schema
    .createIndex('runs_ended')
    .on('runs')
    .columns(['project_id', 'ended_at'])
    .execute();

  await db.schema
    .createTable('steps')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('parent_step_id', 'text')
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('ended_at', 'bigint')
    .addColumn('duration_ms', 'bigint')
    .addColumn('input', 'text')
    .addColumn('output', 'text')
    .addColumn('error', 'text')
    .addColumn('model', 'text')
    .addColumn('provider', 'text')
    .addColumn('input_tokens', 'bigint')
    .addColumn('output_tokens', 'bigint')
    .addColumn('cached_input_tokens', 'bigint')
    .addColumn('reasoning_tokens', 'bigint')
    .addColumn('cost_nanos', 'bigint')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('steps_pk', ['project_id', 'run_id', 'id'])
    .execute();

  await db.schema
    .createTable('run_rollups')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('hour', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('runs', 'bigint', (c) => c.notNull())
    .addColumn('duration_count', 'bigint', (c) => c.notNull())
    .addColumn('duration_sum', 'bigint', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull())
    .addColumn('output_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cost_nanos', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_rollups_pk', [
      'project_id',
      'agent_id',
      'hour',
      'status',
      'trigger',
    ])
    .execute();
  await db.schema
    .createIndex('run_rollups_hour')
    .on('run_rollups')
    .columns(['project_id', 'hour'])
    .execute();

  await db.schema
    .createTable('duration_histogram')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('hour', 'bigint', (c) => c.notNull())
    .addColumn('bin', 'integer', (c) => c.notNull())
    .addColumn('runs', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('duration_histogram_pk', ['project_id', 'agent_id', 'hour', 'bin'])
    .execute();
  await db.schema
    .createIndex('duration_histogram_hour')
    .on('duration_histogram')
    .columns(['project_id', 'hour'])
    .execute();

  await db.schema
    .createTable('model_prices')
    .addColumn('project_id', 'text', (c) =>
      c.notNull().references('projects.id').onDelete('cascade'),
    )
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('input_per_mtok', 'double precision', (c) => c.notNull())
    .addColumn('output_per_mtok', 'double precision', (c) => c.notNull())
    .addColumn('cached_input_per_mtok', 'double precision')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_prices_pk', ['project_id', 'model'])
    .execute();

  await db.schema
    .createTable('schedule_slots')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('slot_at', 'bigint', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('schedule_slots_pk', ['project_id', 'agent_id', 'slot_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'schedule_slots',
    'model_prices',
    'duration_histogram',
    'run_rollups',
    'steps',
    'runs',
    'agents',
    'sessions',
    'api_keys',
    'projects',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
