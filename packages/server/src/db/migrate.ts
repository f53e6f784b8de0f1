import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import type { Db } from './database.js';
import * as m0001 from './migrations/0001_init.js';
import * as m0002QueryIndexes from './migrations/0002_query_indexes.js';
import * as m0003RollupGrains from './migrations/0003_rollup_grains.js';
import * as m0004PartialIndexes from './migrations/0004_partial_indexes.js';
import * as m0005DeletedRuns from './migrations/0005_deleted_runs.js';
import * as m0006ErrorRuns from './migrations/0006_error_runs.js';
import * as m0007IdCollation from './migrations/0007_id_collation.js';
import * as m0008WorkerSeen from './migrations/0008_worker_seen.js';
import * as m0009ModelUsage from './migrations/0009_model_usage.js';
import * as m0010RunSortIndexes from './migrations/0010_run_sort_indexes.js';
import * as m0011Workers from './migrations/0011_workers.js';
import * as m0012Scores from './migrations/0012_scores.js';
import * as m0013Threads from './migrations/0013_threads.js';
import * as m0014AgentLimits from './migrations/0014_agent_limits.js';
import * as m0015DeletedRunAgents from './migrations/0015_deleted_run_agents.js';
import * as m0016RunAgentSortIndexes from './migrations/0016_run_agent_sort_indexes.js';
import * as m0017StepCostGiven from './migrations/0017_step_cost_given.js';
import * as m0018StepFirstToken from './migrations/0018_step_first_token.js';
import * as m0019SchedulePaused from './migrations/0019_schedule_paused.js';
import * as m0020Webhooks from './migrations/0020_webhooks.js';
import * as m0021AgentRetry from './migrations/0021_agent_retry.js';
import * as m0022AgentMaxConcurrency from './migrations/0022_agent_max_concurrency.js';
import * as m0023AgentThreadConcurrency from './migrations/0023_agent_thread_concurrency.js';
import * as m0024UsersLatest from './migrations/0024_users_latest.js';
import * as m0025AgentPaused from './migrations/0025_agent_paused.js';
import * as m0026AgentBudget24h from './migrations/0026_agent_budget_24h.js';
import * as m0027BudgetWebhooks from './migrations/0027_budget_webhooks.js';

const MIGRATIONS: Record<string, Migration> = {
  '0001_init': m0001,
  '0002_query_indexes': m0002QueryIndexes,
  '0003_rollup_grains': m0003RollupGrains,
  '0004_partial_indexes': m0004PartialIndexes,
  '0005_deleted_runs': m0005DeletedRuns,
  '0006_error_runs': m0006ErrorRuns,
  '0007_id_collation': m0007IdCollation,
  '0008_worker_seen': m0008WorkerSeen,
  '0009_model_usage': m0009ModelUsage,
  '0010_run_sort_indexes': m0010RunSortIndexes,
  '0011_workers': m0011Workers,
  '0012_scores': m0012Scores,
  '0013_threads': m0013Threads,
  '0014_agent_limits': m0014AgentLimits,
  '0015_deleted_run_agents': m0015DeletedRunAgents,
  '0016_run_agent_sort_indexes': m0016RunAgentSortIndexes,
  '0017_step_cost_given': m0017StepCostGiven,
  '0018_step_first_token': m0018StepFirstToken,
  '0019_schedule_paused': m0019SchedulePaused,
  '0020_webhooks': m0020Webhooks,
  '0021_agent_retry': m0021AgentRetry,
  '0022_agent_max_concurrency': m0022AgentMaxConcurrency,
  '0023_agent_thread_concurrency': m0023AgentThreadConcurrency,
  '0024_users_latest': m0024UsersLatest,
  '0025_agent_paused': m0025AgentPaused,
  '0026_agent_budget_24h': m0026AgentBudget24h,
  '0027_budget_webhooks': m0027BudgetWebhooks,
};

class StaticProvider implements MigrationProvider {
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve(MIGRATIONS);
  }
}

function migratorOf(db: Db): Migrator {
  return new Migrator({
    db: db.kysely,
    provider: new StaticProvider(),
    // without it Kysely finds the migration tables of ANY schema and skips creating ours
    ...(db.pgSchema ? { migrationTableSchema: db.pgSchema } : {}),
  });
}

/**
 * Brings the schema up to `name` and no further: a database as that version of Runlog left
 * it, for tests of an upgrade from it. Throws when a migration fails.
 * @example await migrateTo(db, '0017_step_cost_given')
 */
export async function migrateTo(db: Db, name: string): Promise<MigrationResultSet> {
  if (!(name in MIGRATIONS)) throw new Error(`no migration ${name}`);
  return migrate(db, (migrator) => migrator.migrateTo(name));
}

/** Brings the schema up to date; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<MigrationResultSet> {
  return migrate(db, (migrator) => migrator.migrateToLatest());
}

async function migrate(
  db: Db,
  run: (migrator: Migrator) => Promise<MigrationResultSet>,
): Promise<MigrationResultSet> {
  const migrator = migratorOf(db);
  let result = await run(migrator);
  // Kysely looks for its migration tables by reading the catalog of every schema: one that
  // another client drops meanwhile (another instance's, a test's) fails that read with
  // 3F000 naming it. Nothing was migrated then; asking again reads the catalog anew.
  for (let attempt = 1; attempt < 10 && otherSchemaVanished(result.error, db.pgSchema); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    result = await run(migrator);
  }
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    // a database a newer Runlog migrated (a rollback, an older instance restarting during a
    // rolling upgrade): say so, rather than that a migration failed
    const newer = /previously executed migration (\S+) is missing/.exec(reason);
    if (newer)
      throw new Error(
        `this database was migrated by a newer version of Runlog (migration ${newer[1]}); run that version or a newer one`,
      );
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${reason}`);
  }
  return result;
}

/** A catalog read failed on a schema (not ours) dropped while it ran. */
function otherSchemaVanished(error: unknown, ours: string | undefined): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (e?.code !== '3F000') return false;
  const named = /schema "([^"]+)" does not exist/.exec(e.message ?? '')?.[1];
  return named !== undefined && named !== ours;
}
