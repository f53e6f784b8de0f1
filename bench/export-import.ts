/**
 * `runlog export` and `runlog import` of N runs (default 1,000,000, each with 2 steps) on
 * SQLite, each in its own process as users run them: rows/s and peak RSS.
 *   npx tsx bench/export-import.ts [N]
 * Peak RSS comes from /usr/bin/time -v when present, else from sampling /proc. A smaller
 * export (N/10) is measured too: constant memory means both peaks are about the same.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../packages/server/src/db/database.js';
import { migrateToLatest } from '../packages/server/src/db/migrate.js';
import { newRunRow } from '../packages/server/src/ingest/apply.js';
import { newStepRow } from '../packages/server/src/ingest/apply.js';
import type { RunRow, StepRow } from '../packages/server/src/db/schema.js';
import { ROOT, tempDir } from './common.js';

const N = Number(process.argv[2] ?? 1_000_000);
const BIN = join(ROOT, 'packages/server/bin/runlog.js');
const TIME = '/usr/bin/time';
const AGENTS = ['bug-triager', 'writer', 'researcher', 'reviewer', 'planner'];

async function generate(path: string, n: number): Promise<number> {
  const db = await openDatabase(path, { sqliteSynchronous: 'NORMAL' });
  await migrateToLatest(db);
  const sqlite = db.sqlite!;
  const start = Date.parse('2026-01-01T00:00:00Z');
  const run0 = newRunRow('default', 'x', 0);
  const step0 = newStepRow('default', 'x', 'x', 0, 0);
  const runCols = Object.keys(run0) as (keyof RunRow)[];
  const stepCols = Object.keys(step0) as (keyof StepRow)[];
  sqlite
    .prepare(
      `INSERT OR IGNORE INTO projects (id, name, retention_days, created_at) VALUES ('default', 'Default', 30, 0)`,
    )
    .run();
  const insertRun = sqlite.prepare(
    `INSERT INTO runs (${runCols.join(',')}) VALUES (${runCols.map(() => '?').join(',')})`,
  );
  const insertStep = sqlite.prepare(
    `INSERT INTO steps (${stepCols.join(',')}) VALUES (${stepCols.map(() => '?').join(',')})`,
  );
  const t0 = performance.now();
  const batch = sqlite.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const id = `run-${String(i).padStart(8, '0')}`;
      const at = start + i * 1000;
      const failed = i % 10 === 0;
      const run: RunRow = {
        ...run0,
        id,
        agent_id: AGENTS[i % AGENTS.length]!,
        status: failed ? 'failed' : 'succeeded',
        input: JSON.stringify({ ticket: i, text: 'Summarise the thread and propose a fix' }),
        output: failed ? null : JSON.stringify({ verdict: 'ok', score: i % 7 }),
        error: failed ? JSON.stringify({ message: 'tool timed out', type: 'Timeout' }) : null,
        model: 'gpt-4o-mini',
        tags: '["bench"]',
        started_at: at,
        ended_at: at + 1500,
        duration_ms: 1500,
        step_count: 2,
        error_count: failed ? 1 : 0,
        llm_calls: 1,
        tool_calls: 1,
        input_tokens: 1200,
        output_tokens: 300,
        cost_nanos: 360_000,
        sort_at: at,
        created_at: at,
        updated_at: at + 1500,
      };
      insertRun.run(...runCols.map((c) => run[c]));
      const llm: StepRow = {
        ...step0,
        run_id: id,
        id: `${id}-s1`,
        seq: 0,
        type: 'llm',
        name: 'plan',
        status: 'succeeded',
        started_at: at + 10,
        ended_at: at + 900,
        duration_ms: 890,
        output: JSON.stringify('A plan in a few sentences.'),
        model: 'gpt-4o-mini',
        provider: 'openai',
        input_tokens: 1200,
        output_tokens: 300,
        cost_nanos: 360_000,
        created_at: at + 10,
        updated_at: at + 900,
      };
      const tool: StepRow = {
        ...step0,
        run_id: id,
        id: `${id}-s2`,
        parent_step_id: `${id}-s1`,
        seq: 1,
        type: 'tool',
        name: 'search',
        status: failed ? 'failed' : 'succeeded',
        started_at: at + 950,
        ended_at: at + 1400,
        duration_ms: 450,
        input: JSON.stringify({ q: 'stack trace' }),
        error: failed ? JSON.stringify({ message: 'tool timed out' }) : null,
        created_at: at + 950,
        updated_at: at + 1400,
      };
      insertStep.run(...stepCols.map((c) => llm[c]));
      insertStep.run(...stepCols.map((c) => tool[c]));
    }
  });
  for (let i = 0; i < n; i += 20_000) batch(i, Math.min(n, i + 20_000));
  const seconds = (performance.now() - t0) / 1000;
  await db.close();
  return seconds;
}

interface Measured {
  seconds: number;
  peak_rss_mb: number;
  summary: Record<string, unknown>;
}

/** Runs the CLI in a child process; wall time and peak RSS. */
function measure(args: string[]): Promise<Measured> {
  const useTime = existsSync(TIME);
  const cmd = useTime ? TIME : process.execPath;
  const argv = useTime ? ['-v', process.execPath, BIN, ...args] : [BIN, ...args];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sampled = 0;
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) sampled = Math.max(sampled, Number(m[1]) / 1024);
      } catch {
        // the process ended
      }
    }, 200);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      clearInterval(timer);
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) {
        reject(new Error(`runlog ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
        return;
      }
      const timed = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const peak = timed ? Number(timed[1]) / 1024 : sampled;
      const line = stdout
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      resolve({
        seconds,
        peak_rss_mb: Math.round(peak),
        summary: line ? (JSON.parse(line) as Record<string, unknown>) : {},
      });
    });
  });
}

const dir = tempDir('export');
try {
  const source = join(dir, 'source.db');
  const generateSeconds = await generate(source, N);
  console.error(`generated ${N} runs in ${generateSeconds.toFixed(1)} s`);

  const small = await measure([
    'export',
    '--db',
    source,
    '--until',
    new Date(Date.parse('2026-01-01T00:00:00Z') + Math.floor(N / 10) * 1000).toISOString(),
    '-o',
    join(dir, 'small.jsonl'),
    '--json',
  ]);
  const file = join(dir, 'export.jsonl');
  const exp = await measure(['export', '--db', source, '-o', file, '--json']);
  const bytes = statSync(file).size;
  console.error(`exported in ${exp.seconds.toFixed(1)} s`);
  const imp = await measure(['import', file, '--db', join(dir, 'imported.db'), '--json']);
  console.error(`imported in ${imp.seconds.toFixed(1)} s`);
  const csv = await measure([
    'export',
    '--db',
    source,
    '--format',
    'csv',
    '-o',
    join(dir, 'export.csv'),
    '--json',
  ]);

  const rate = (rows: number, s: number) => Math.round(rows / s);
  console.log(
    JSON.stringify({
      runs: N,
      steps: 2 * N,
      generate_s: Number(generateSeconds.toFixed(1)),
      export_jsonl: {
        seconds: Number(exp.seconds.toFixed(1)),
        runs_per_s: rate(N, exp.seconds),
        rows_per_s: rate(3 * N, exp.seconds),
        file_mb: Math.round(bytes / 2 ** 20),
        peak_rss_mb: exp.peak_rss_mb,
        summary: exp.summary,
      },
      export_jsonl_tenth: {
        runs: small.summary.runs,
        peak_rss_mb: small.peak_rss_mb,
      },
      export_csv: {
        seconds: Number(csv.seconds.toFixed(1)),
        runs_per_s: rate(N, csv.seconds),
        peak_rss_mb: csv.peak_rss_mb,
      },
      import_jsonl: {
        seconds: Number(imp.seconds.toFixed(1)),
        runs_per_s: rate(N, imp.seconds),
        rows_per_s: rate(3 * N, imp.seconds),
        peak_rss_mb: imp.peak_rss_mb,
        summary: imp.summary,
      },
      rss_source: existsSync(TIME) ? '/usr/bin/time -v' : '/proc VmHWM sampling',
    }),
  );
} finally {
  // RUNLOG_BENCH_KEEP=1 leaves the databases and files for a closer look
  if (!process.env.RUNLOG_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${dir}`);
}
