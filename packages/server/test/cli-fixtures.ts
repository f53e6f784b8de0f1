import { PassThrough } from 'node:stream';
import { expect } from 'vitest';
import { freshDatabase, type TestApp, type TestDatabase } from './harness.js';
import { openDatabase, type Db, type DialectName } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { exportRuns, type ExportOptions } from '../src/export/export.js';
import { run } from '../src/cli/main.js';

export const T0 = Date.parse('2026-02-01T08:00:00.000Z');

/**
 * `runlog <args>` in process, its output captured; `stdin` is what it reads from standard
 * input, `signal` stands for Ctrl-C.
 * @example const { code, stdout } = await runCli(['runs', 'list'], { env })
 */
export async function runCli(
  args: string[],
  opts: { env: NodeJS.ProcessEnv; stdin?: string; signal?: AbortSignal },
): Promise<{ code: number | 'serving'; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  err.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const stdin = new PassThrough();
  stdin.end(opts.stdin ?? '');
  const code = await run(args, {
    stdout: out,
    stderr: err,
    stdin,
    env: opts.env,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { code, stdout, stderr };
}

/** A varied history: nested steps, errors, costs, a queued run, unicode and a huge payload. */
export function sampleEvents(prefix: string): unknown[] {
  const events: unknown[] = [];
  for (let i = 0; i < 12; i++) {
    const id = `${prefix}-run-${i}`;
    const t = T0 + i * 3_600_000;
    events.push({
      type: 'run.start',
      run: {
        id,
        agent_id: i % 3 === 0 ? 'bug-triager' : 'writer',
        trigger: (['api', 'manual', 'schedule', 'retry'] as const)[i % 4],
        source: 'n8n',
        thread_id: `t-${i % 2}`,
        input: { pr: i, text: 'naïve “quotes”, commas, \n newlines 🚀' },
        tags: ['ci', `n${i}`],
        metadata: { nested: { a: [1, 2, { b: null }] } },
        started_at: t,
      },
    });
    events.push({
      type: 'step.end',
      step: {
        id: `${id}-s1`,
        run_id: id,
        type: 'llm',
        name: 'plan',
        model: 'gpt-4o-mini',
        started_at: t + 10,
        ended_at: t + 500,
        status: 'succeeded',
        input_tokens: 1000 + i,
        output_tokens: 200 + i,
        cached_input_tokens: 100,
        // streamed: its first token 120 ms in
        ...(i % 2 === 0 ? { first_token_at: t + 130 } : {}),
        output: 'x'.repeat(i === 5 ? 2_000_000 : 10),
      },
    });
    events.push({
      type: 'step.end',
      step: {
        id: `${id}-s2`,
        run_id: id,
        parent_step_id: `${id}-s1`,
        type: 'tool',
        name: 'search, "web"',
        started_at: t + 600,
        ended_at: t + 900,
        status: i % 4 === 1 ? 'failed' : 'succeeded',
        cost_usd: 0.000123,
        ...(i % 4 === 1 ? { error: { message: 'boom', type: 'Timeout' } } : {}),
      },
    });
    if (i < 10)
      events.push({
        type: 'run.end',
        run: {
          id,
          status: i % 4 === 1 ? 'failed' : i === 7 ? 'cancelled' : 'succeeded',
          ...(i % 4 === 1
            ? {
                error: {
                  message: 'it broke',
                  type: 'AgentError',
                  stack: 'AgentError: it broke\n    at triage (agent.ts:42:11)',
                },
              }
            : { output: { verdict: 'ok', i } }),
          ended_at: t + 1000 + i,
        },
      });
  }
  return events;
}

export async function seed(t: TestApp, prefix: string): Promise<void> {
  const res = await t.request('POST', '/api/v1/ingest', { events: sampleEvents(prefix) });
  expect(res.statusCode).toBe(200);
  const queued = await t.request('POST', '/api/v1/ingest', {
    events: [{ type: 'run.update', run: { id: `${prefix}-queued`, status: 'queued' } }],
  });
  expect(queued.statusCode).toBe(200);
}

export async function exportText(db: Db, opts: Partial<ExportOptions> = {}): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await exportRuns(db, { projectId: 'default', format: 'jsonl', pageSize: 5, ...opts }, out);
  out.end();
  return Buffer.concat(chunks).toString('utf8');
}

/** The run lines of a JSONL export: those after its settings lines (which name a `kind`). */
export function runLines(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .filter((l) => !('kind' in (JSON.parse(l) as object)));
}

/**
 * An export with its project line's retention blanked: an import raises a new project's
 * retention to keep the (old) runs it restores, so only that figure may differ on re-export.
 */
export function sansRetention(text: string): string {
  return text.replace(/^(\{"kind":"project",[^\n]*?"retention_days":)\d+/, '$1"*"');
}

export async function emptyDb(dialect: DialectName): Promise<{ db: Db; database: TestDatabase }> {
  const database = freshDatabase(dialect);
  const db = await openDatabase(database.url);
  await migrateToLatest(db);
  return { db, database };
}

export async function tableRows(db: Db) {
  const k = db.kysely;
  const runs = await k.selectFrom('runs').selectAll().orderBy('id').execute();
  const agents = await k.selectFrom('agents').selectAll().orderBy('id').execute();
  const prices = await k.selectFrom('model_prices').selectAll().orderBy('model').execute();
  const steps = await k.selectFrom('steps').selectAll().orderBy('run_id').orderBy('id').execute();
  const rollups = await k
    .selectFrom('run_rollups')
    .selectAll()
    .where('runs', '!=', 0)
    .orderBy('agent_id')
    .orderBy('hour')
    .orderBy('status')
    .orderBy('trigger')
    .execute();
  const histogram = await k
    .selectFrom('duration_histogram')
    .selectAll()
    .where('runs', '!=', 0)
    .orderBy('agent_id')
    .orderBy('hour')
    .orderBy('bin')
    .execute();
  const models = await k
    .selectFrom('model_rollups_daily')
    .selectAll()
    .where('runs', '!=', 0)
    .orderBy('agent_id')
    .orderBy('day')
    .orderBy('model')
    .execute();
  return { runs, steps, agents, prices, rollups, histogram, models };
}
