/**
 * GET /threads' cost by the shape of the conversations, in one process on SQLite: 300,000
 * runs, two in three of them threaded, spread over 5, 1,000 or 100,000 threads. Prints JSON
 * with the mean ms of the first page of 50 and of each page of 200 when paging through all.
 *   npx tsx bench/threads-shapes.ts
 */
import { join } from 'node:path';
import { openDatabase } from '../packages/server/src/db/database.js';
import { migrateToLatest } from '../packages/server/src/db/migrate.js';
import { newRunRow } from '../packages/server/src/ingest/apply.js';
import { listThreads } from '../packages/server/src/threads/threads.js';
import { tempDir } from './common.js';

const RUNS = 300_000;
const shapes: Record<string, unknown>[] = [];
for (const threads of [5, 1_000, 100_000]) {
  const db = await openDatabase(join(tempDir(`threads-${threads}`), 'runlog.db'), {});
  await migrateToLatest(db);
  const sqlite = db.sqlite!;
  sqlite
    .prepare(
      "INSERT INTO projects (id, name, retention_days, created_at) VALUES ('default', 'Default', 30, 0)",
    )
    .run();
  const proto = newRunRow('default', 'x', 0);
  const cols = Object.keys(proto);
  const insert = sqlite.prepare(
    `INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
  );
  sqlite.transaction(() => {
    for (let i = 0; i < RUNS; i++) {
      const at = 1_700_000_000_000 + i * 1000;
      const row: Record<string, unknown> = {
        ...proto,
        id: `run-${i}`,
        agent_id: 'chat',
        thread_id: i % 3 === 0 ? null : `conv-${i % threads}`,
        sort_at: at,
        created_at: at,
      };
      insert.run(...cols.map((c) => row[c]));
    }
  })();
  sqlite.exec('ANALYZE');
  const first = async () => listThreads(db, 'default', {}, { limit: 50 });
  await first();
  let t = performance.now();
  for (let i = 0; i < 5; i++) await first();
  const firstPageMs = (performance.now() - t) / 5;
  let cursor: string | undefined;
  let pages = 0;
  t = performance.now();
  do {
    const page = await listThreads(
      db,
      'default',
      {},
      { limit: 200, ...(cursor ? { cursor } : {}) },
    );
    cursor = page.next_cursor ?? undefined;
    pages++;
  } while (cursor);
  shapes.push({
    threads,
    runs_per_thread: Math.round((RUNS * 2) / 3 / threads),
    first_page_of_50_ms: Number(firstPageMs.toFixed(1)),
    pages_of_200: pages,
    ms_per_page_of_200: Number(((performance.now() - t) / pages).toFixed(1)),
  });
  await db.close();
}
console.log(JSON.stringify({ bench: 'threads-shapes', runs: RUNS, shapes }));
