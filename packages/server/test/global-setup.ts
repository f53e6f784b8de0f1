import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAvailable: boolean;
  }
}

export const PG_ADMIN_URL =
  process.env.RUNLOG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Decides once whether the PostgreSQL suites run: they run when the server answers, and
 * must run (failing otherwise) when RUNLOG_TEST_DB=postgres or RUNLOG_TEST_REQUIRE_PG=1.
 */
export default async function setup(project: TestProject): Promise<void> {
  const want = process.env.RUNLOG_TEST_DB ?? 'all';
  const required = want === 'postgres' || process.env.RUNLOG_TEST_REQUIRE_PG === '1';
  if (want === 'sqlite') {
    project.provide('pgAvailable', false);
    return;
  }
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    project.provide('pgAvailable', true);
  } catch (err) {
    if (required) {
      throw new Error(
        `PostgreSQL is required for these tests but does not answer at ${PG_ADMIN_URL}: ${(err as Error).message}`,
      );
    }
    project.provide('pgAvailable', false);
    console.warn(
      `\n[runlog tests] PostgreSQL does not answer at ${PG_ADMIN_URL}: the PostgreSQL suites are SKIPPED.\n`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}
