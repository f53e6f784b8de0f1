/**
 * POST /ingest throughput against the raw better-sqlite3 insert rate of the same rows, both
 * measured in this run. Prints JSON.
 *   npx tsx bench/ingest.ts [batches]
 */
import { join } from 'node:path';
import { openDatabase } from '../packages/server/src/db/database.js';
import { migrateToLatest } from '../packages/server/src/db/migrate.js';
import { postJson, startServerProcess, tempDir } from './common.js';

const BATCHES = Number(process.argv[2] ?? 400);
const EVENTS_PER_BATCH = 100;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const T0 = Date.parse('2026-01-01T00:00:00Z');

function batch(b: number): unknown[] {
  const runId = `bench-run-${b}`;
  const events: unknown[] = [
    {
      type: 'run.start',
      run: {
        id: runId,
        agent_id: `agent-${b % 20}`,
        input: { task: 'triage', n: b },
        started_at: T0 + b,
      },
    },
  ];
  for (let i = 0; i < EVENTS_PER_BATCH - 2; i++) {
    events.push({
      type: 'step.end',
      step: {
        id: `s${i}`,
        run_id: runId,
        type: i % 2 ? 'tool' : 'llm',
        name: i % 2 ? 'search' : 'plan',
        model: i % 2 ? undefined : 'gpt-4o-mini',
        input_tokens: 100,
        output_tokens: 20,
        input: { q: 'what is the weather like' },
        output: 'a short answer of some length',
        started_at: T0 + b + i,
        ended_at: T0 + b + i + 1,
      },
    });
  }
  events.push({
    type: 'run.end',
    run: { id: runId, status: 'succeeded', output: { ok: true }, ended_at: T0 + b + 1000 },
  });
  return events;
}

/**
 * The same rows written by hand: prepared inserts, one transaction per 100 rows. NORMAL:
 * commits not flushed to disk (the ceiling); FULL: each commit flushed, as durable as
 * Runlog's acknowledgements.
 */
async function rawBaseline(rows: number, sync: 'NORMAL' | 'FULL' = 'NORMAL'): Promise<number> {
  const dir = tempDir('raw');
  const db = await openDatabase(join(dir, 'raw.db'), { sqliteSynchronous: sync });
  await migrateToLatest(db);
  const sqlite = db.sqlite!;
  sqlite
    .prepare("INSERT INTO projects (id, name, retention_days, created_at) VALUES ('p', 'p', 30, 0)")
    .run();
  const insert = sqlite.prepare(
    `INSERT INTO steps (project_id, run_id, id, parent_step_id, seq, type, name, status, started_at, ended_at, duration_ms, input, output, error, model, provider, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, metadata, created_at, updated_at)
     VALUES ('p', ?, ?, NULL, ?, ?, ?, 'succeeded', ?, ?, 1, ?, ?, NULL, ?, NULL, 100, 20, NULL, NULL, 27000, '{}', ?, ?)`,
  );
  const tx = sqlite.transaction((b: number) => {
    for (let i = 0; i < 100; i++) {
      insert.run(
        `raw-${b}`,
        `s${i}`,
        i,
        i % 2 ? 'tool' : 'llm',
        'plan',
        T0 + i,
        T0 + i + 1,
        JSON.stringify({ q: 'what is the weather like' }),
        JSON.stringify('a short answer of some length'),
        i % 2 ? null : 'gpt-4o-mini',
        Date.now(),
        Date.now(),
      );
    }
  });
  const start = process.hrtime.bigint();
  const n = Math.ceil(rows / 100);
  for (let b = 0; b < n; b++) tx(b);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await db.close();
  return (n * 100) / secs;
}

async function ingest(): Promise<{
  eventsPerSec: number;
  committedSteps: number;
  ackedSteps: number;
  peakRssMb: number;
}> {
  const dir = tempDir('ingest');
  const dbPath = join(dir, 'runlog.db');
  const server = await startServerProcess(dbPath, 4791);
  const bodies = Array.from({ length: BATCHES }, (_, b) => JSON.stringify({ events: batch(b) }));
  // warm-up
  for (let w = 0; w < 5; w++) {
    await postJson(`${server.url}/api/v1/ingest`, JSON.stringify({ events: batch(1_000_000 + w) }));
  }
  let next = 0;
  let acked = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const res = await postJson(`${server.url}/api/v1/ingest`, body);
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.text}`);
        acked += EVENTS_PER_BATCH - 2;
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const peakRssMb = server.peakRssMb();
  await server.stop();
  const db = await openDatabase(dbPath);
  const row = await db.kysely
    .selectFrom('steps')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_id', 'like', 'bench-run-%')
    .executeTakeFirstOrThrow();
  await db.close();
  const committed = Number(row.n) - 5 * (EVENTS_PER_BATCH - 2);
  return {
    eventsPerSec: (BATCHES * EVENTS_PER_BATCH) / secs,
    committedSteps: committed,
    ackedSteps: acked,
    peakRssMb,
  };
}

if (process.env.BENCH_LOAD_URL) {
  // load only, against a server started elsewhere (for profiling)
  const url = process.env.BENCH_LOAD_URL;
  let next = 0;
  const t = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < BATCHES) {
        const body = JSON.stringify({ events: batch(next++) });
        await postJson(`${url}/api/v1/ingest`, body);
      }
    }),
  );
  console.log(
    JSON.stringify({
      events_per_sec: Math.round((BATCHES * EVENTS_PER_BATCH) / ((Date.now() - t) / 1000)),
    }),
  );
  process.exit(0);
}

// Rounds alternate the baseline and the server, each on a fresh database, and the figure is
// the median round: this machine's speed moves by 2x within minutes, so a baseline measured
// once before the server can make the same code look 50% faster or slower.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const rounds: { raw: number; ingest: Awaited<ReturnType<typeof ingest>> }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const raw = await rawBaseline(BATCHES * 100);
  rounds.push({ raw, ingest: await ingest() });
}
const median = [...rounds].sort(
  (a, b) => a.ingest.eventsPerSec / a.raw - b.ingest.eventsPerSec / b.raw,
)[Math.floor(rounds.length / 2)]!;
const rawDurable = await rawBaseline(Math.min(BATCHES, 200) * 100, 'FULL');
const result = median.ingest;
console.log(
  JSON.stringify({
    bench: 'ingest',
    batches: BATCHES,
    events_per_batch: EVENTS_PER_BATCH,
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    raw_rows_per_sec: Math.round(median.raw),
    ingest_events_per_sec: Math.round(result.eventsPerSec),
    ratio: Number((result.eventsPerSec / median.raw).toFixed(3)),
    round_ratios: rounds.map((r) => Number((r.ingest.eventsPerSec / r.raw).toFixed(3))),
    raw_durable_rows_per_sec: Math.round(rawDurable),
    ratio_vs_durable: Number((result.eventsPerSec / rawDurable).toFixed(3)),
    acked_steps: rounds.reduce((n, r) => n + r.ingest.ackedSteps, 0),
    committed_steps: rounds.reduce((n, r) => n + r.ingest.committedSteps, 0),
    server_peak_rss_mb: Math.round(Math.max(...rounds.map((r) => r.ingest.peakRssMb))),
  }),
);
