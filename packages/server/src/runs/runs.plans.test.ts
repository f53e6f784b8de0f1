import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Db } from '../db/database.js';
import { migrateToLatest } from '../db/migrate.js';
import { queryPlan } from '../../test/harness.js';
import { listRuns } from './runs.repository.js';
import { listScores } from '../scores/scores.js';

// SQLite without planner statistics (a new server's first hours): each plan is its guess
describe('query plans of run reads on a SQLite file', () => {
  let dir: string;
  let db: Db;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'runlog-plans-'));
    db = await openDatabase(join(dir, 'runlog.db'));
    await migrateToLatest(db);
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['cost', 'duration', 'tokens'] as const)(
    "reads one agent's runs off an index led by it, in its order (%s)",
    async (sort) => {
      const sql: string[] = [];
      const readers = db.readers!;
      const real = readers.all.bind(readers);
      vi.spyOn(readers, 'all').mockImplementation(((
        text: string,
        parameters: readonly unknown[],
      ) => {
        sql.push(text);
        return real(text, parameters);
      }) as typeof readers.all);
      try {
        await listRuns(db, 'p', { agentIds: ['a'] }, { limit: 50, sorted: { sort } });
      } finally {
        vi.restoreAllMocks();
      }
      expect(sql).toHaveLength(1);
      const details = queryPlan(db.sqlite!, sql[0]!).join('\n');
      // before: the project's whole order walked for the agent's few runs (1 s at 400,000)
      expect(details).toMatch(new RegExp(`USING INDEX runs_agent_sort_${sort} `));
      expect(details).not.toMatch(/TEMP B-TREE/);
    },
  );

  it("reads a run's own scores off the key, not the project's in time order", async () => {
    const sql: string[] = [];
    // a new connection's first read of scores: its statement is prepared here
    const sqlite = db.sqlite!;
    const real = sqlite.prepare.bind(sqlite);
    vi.spyOn(sqlite, 'prepare').mockImplementation(((text: string) => {
      sql.push(text);
      return real(text);
    }) as typeof sqlite.prepare);
    try {
      await listScores(db, 'p', 'r');
    } finally {
      vi.restoreAllMocks();
    }
    expect(sql).toHaveLength(1);
    const details = queryPlan(sqlite, sql[0]!, ['p', 'r']).join('\n');
    // before: SCAN by scores_created, every score of the project (260 ms cold at 104,000)
    expect(details).not.toMatch(/scores_created/);
    expect(details).toMatch(
      /USING INDEX sqlite_autoindex_scores_1 \(project_id=\? AND run_id=\?\)/,
    );
  });
});
