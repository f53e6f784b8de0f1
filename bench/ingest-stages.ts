/**
 * Where `/ingest`'s time goes, per event, in one process and without HTTP: parsing the
 * batch's JSON, validating each event (zod), and applying and committing the events through
 * the write path (`IngestWriter`, eight batches per group commit as under load), each
 * against the raw better-sqlite3 insert of the same step rows, measured alternately in the
 * same run. Prints JSON.
 *   npx tsx bench/ingest-stages.ts [batches]
 */
import { join } from 'node:path';
import { openDatabase } from '../packages/server/src/db/database.js';
import { migrateToLatest } from '../packages/server/src/db/migrate.js';
import { validateEvents } from '../packages/server/src/ingest/ingest.service.js';
import { IngestWriter } from '../packages/server/src/ingest/writer.js';
import { PriceBook } from '../packages/server/src/ingest/prices.js';
import { EventHub } from '../packages/server/src/realtime/hub.js';
import { Metrics } from '../packages/server/src/metrics/metrics.js';
import { EVENTS_PER_BATCH, ingestBatch, rawStepInserts, tempDir } from './common.js';

const BATCHES = Number(process.argv[2] ?? 2000);
const GROUP = 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const micros = () => Number(process.hrtime.bigint()) / 1e3;

async function stages(round: number): Promise<{ parse: number; validate: number; write: number }> {
  const offset = round * BATCHES;
  const bodies = Array.from({ length: BATCHES }, (_, b) =>
    JSON.stringify({ events: ingestBatch(offset + b) }),
  );
  const events = BATCHES * EVENTS_PER_BATCH;
  let t = micros();
  const parsed = bodies.map((body) => (JSON.parse(body) as { events: unknown[] }).events);
  const parse = (micros() - t) / events;
  t = micros();
  const valid = parsed.map((p) => validateEvents(p).valid);
  const validate = (micros() - t) / events;

  const db = await openDatabase(join(tempDir('stages'), 'runlog.db'));
  await migrateToLatest(db);
  await db.kysely
    .insertInto('projects')
    .values({ id: 'p', name: 'p', retention_days: 30, created_at: Date.now() })
    .execute();
  const writer = new IngestWriter(db, new EventHub(), new PriceBook(db), new Metrics(), {
    maxFieldBytes: 64 * 1024,
  });
  t = micros();
  for (let g = 0; g < valid.length; g += GROUP) {
    await Promise.all(valid.slice(g, g + GROUP).map((batch) => writer.submit('p', batch)));
  }
  const write = (micros() - t) / events;
  await writer.close();
  await db.close();
  return { parse, validate, write };
}

const rounds: { raw: number; parse: number; validate: number; write: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const raw = 1e6 / (await rawStepInserts(BATCHES * EVENTS_PER_BATCH));
  rounds.push({ raw, ...(await stages(r)) });
}
const median = (pick: (r: (typeof rounds)[number]) => number) =>
  rounds.map(pick).sort((a, b) => a - b)[Math.floor(rounds.length / 2)]!;
const us = (v: number) => Number(v.toFixed(2));
const raw = median((r) => r.raw);
const total = median((r) => r.parse + r.validate + r.write);
console.log(
  JSON.stringify({
    bench: 'ingest-stages',
    batches: BATCHES,
    rounds: ROUNDS,
    raw_insert_us_per_row: us(raw),
    parse_us_per_event: us(median((r) => r.parse)),
    validate_us_per_event: us(median((r) => r.validate)),
    write_us_per_event: us(median((r) => r.write)),
    write_vs_raw: Number(median((r) => r.write / r.raw).toFixed(2)),
    // the ratio /ingest could reach on one thread if HTTP cost nothing
    ceiling_ratio_without_http: Number(
      median((r) => r.raw / (r.parse + r.validate + r.write)).toFixed(3),
    ),
    total_us_per_event: us(total),
  }),
);
