/**
 * POST /ingest throughput against the raw better-sqlite3 insert rate of the same rows, both
 * measured in this run. Prints JSON.
 *   npx tsx bench/ingest.ts [batches]
 */
import { join } from 'node:path';
import { openDatabase } from '../packages/server/src/db/database.js';
import {
  EVENTS_PER_BATCH,
  ingestBatch,
  postJson,
  rawStepInserts,
  startServerProcess,
  tempDir,
} from './common.js';

const BATCHES = Number(process.argv[2] ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

async function ingest(): Promise<{
  eventsPerSec: number;
  committedSteps: number;
  ackedSteps: number;
  peakRssMb: number;
  serverCpuUsPerEvent: number;
  loadCpuUsPerEvent: number;
}> {
  const dir = tempDir('ingest');
  const dbPath = join(dir, 'runlog.db');
  const server = await startServerProcess(dbPath, 4791);
  const bodies = Array.from({ length: BATCHES }, (_, b) =>
    JSON.stringify({ events: ingestBatch(b) }),
  );
  // warm-up
  for (let w = 0; w < 5; w++) {
    await postJson(
      `${server.url}/api/v1/ingest`,
      JSON.stringify({ events: ingestBatch(1_000_000 + w) }),
    );
  }
  let next = 0;
  let acked = 0;
  const serverCpu0 = server.cpuMs();
  const loadCpu0 = process.cpuUsage();
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
  const events = BATCHES * EVENTS_PER_BATCH;
  const serverCpuUsPerEvent = ((server.cpuMs() - serverCpu0) * 1000) / events;
  const loadCpu = process.cpuUsage(loadCpu0);
  const loadCpuUsPerEvent = (loadCpu.user + loadCpu.system) / events;
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
    eventsPerSec: events / secs,
    committedSteps: committed,
    ackedSteps: acked,
    peakRssMb,
    serverCpuUsPerEvent,
    loadCpuUsPerEvent,
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
        const body = JSON.stringify({ events: ingestBatch(next++) });
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
  const raw = await rawStepInserts(BATCHES * 100);
  rounds.push({ raw, ingest: await ingest() });
}
const median = [...rounds].sort(
  (a, b) => a.ingest.eventsPerSec / a.raw - b.ingest.eventsPerSec / b.raw,
)[Math.floor(rounds.length / 2)]!;
const rawDurable = await rawStepInserts(Math.min(BATCHES, 200) * 100, 'FULL');
const result = median.ingest;
console.log(
  JSON.stringify({
    bench: 'ingest',
    batches: BATCHES,
    events_per_batch: EVENTS_PER_BATCH,
    payload_chars: Number(process.env.BENCH_PAYLOAD_CHARS ?? 0),
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    raw_rows_per_sec: Math.round(median.raw),
    ingest_events_per_sec: Math.round(result.eventsPerSec),
    ratio: Number((result.eventsPerSec / median.raw).toFixed(3)),
    round_ratios: rounds.map((r) => Number((r.ingest.eventsPerSec / r.raw).toFixed(3))),
    // CPU per event of the server (all its threads) and of this load generator, against the
    // raw insert's own cost per row: where the ratio is lost
    server_cpu_us_per_event: Number(result.serverCpuUsPerEvent.toFixed(1)),
    load_cpu_us_per_event: Number(result.loadCpuUsPerEvent.toFixed(1)),
    raw_us_per_row: Number((1e6 / median.raw).toFixed(1)),
    raw_durable_rows_per_sec: Math.round(rawDurable),
    ratio_vs_durable: Number((result.eventsPerSec / rawDurable).toFixed(3)),
    acked_steps: rounds.reduce((n, r) => n + r.ingest.ackedSteps, 0),
    committed_steps: rounds.reduce((n, r) => n + r.ingest.committedSteps, 0),
    server_peak_rss_mb: Math.round(Math.max(...rounds.map((r) => r.ingest.peakRssMb))),
  }),
);
