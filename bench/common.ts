import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../packages/server/src/db/database.js';
import { migrateToLatest } from '../packages/server/src/db/migrate.js';
import pg from 'pg';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BENCH_KEY = 'rl_bench_admin_key_0123456789abcdefghijklmn';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `runlog-bench-${prefix}-`));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Peak resident memory seen so far (sampled from /proc), in MB. */
  peakRssMb(): number;
  /** CPU time the server process has used so far, user and system, in ms (from /proc). */
  cpuMs(): number;
  stop(): Promise<void>;
}

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function cpuMsOf(pid: number): number {
  try {
    // utime and stime, fields 14 and 15 of /proc/<pid>/stat, after the command's parentheses
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Linux's USER_HZ, the unit of /proc's CPU times: 100 on every architecture Node runs on. */
const CLOCK_TICKS = 100;

/** Starts the built server (`runlog serve`) in its own process, as users run it. */
export async function startServerProcess(
  db: string,
  port: number,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [
      // BENCH_PROFILE_DIR: write the server's CPU profile there, to see where a bench's time goes
      ...(process.env.BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
        : []),
      join(ROOT, 'packages/server/bin/runlog.js'),
      'serve',
      '--db',
      db,
      '--port',
      String(port),
    ],
    {
      env: { ...process.env, RUNLOG_ADMIN_KEY: BENCH_KEY, RUNLOG_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(child.pid!));
  }, 100);
  return {
    url,
    child,
    peakRssMb: () => Math.max(peak, rssOf(child.pid!)),
    cpuMs: () => cpuMsOf(child.pid!),
    stop: async () => {
      clearInterval(sampler);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * Latency over HTTP measured by wrk (a C load generator, Debian's `wrk` package) on one
 * connection, so the figure is the server's and not a JavaScript client's: a warm-up, then
 * `seconds` of requests cycling through `paths`. `undefined` when wrk is not installed.
 */
export function wrkLatency(
  url: string,
  paths: string[],
  seconds: number,
): { p50: number; p99: number; requests: number } | undefined {
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (probe.error) return undefined;
  const dir = tempDir('wrk');
  const script = join(dir, 'paths.lua');
  writeFileSync(
    script,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format("GET", paths[(i % #paths) + 1])\nend\n`,
  );
  const args = (d: number) => [
    '-t1',
    '-c1',
    `-d${d}s`,
    '--latency',
    '-s',
    script,
    '-H',
    `Authorization: Bearer ${BENCH_KEY}`,
    url,
  ];
  spawnSync('wrk', args(Math.max(2, Math.ceil(seconds / 3))), { encoding: 'utf8' });
  const out = spawnSync('wrk', args(seconds), { encoding: 'utf8' }).stdout;
  const ms = (label: string) => {
    const m = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) throw new Error(`wrk printed no ${label}th percentile:\n${out}`);
    const v = Number(m[1]);
    return Number((m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v).toFixed(2));
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} failed responses`);
  return { p50: ms('50'), p99: ms('99'), requests };
}

/**
 * The latency floor of this machine for `wrkLatency`: a bare `node:http` server in its own
 * process answering every request with the same `body` and doing nothing else, measured the
 * same way. A server's p99 cannot be below this one's; on a shared two-core VM the floor's
 * tail moves by the hour, so the queries bench prints it beside the server's figures.
 */
export async function httpFloor(
  body: string,
  seconds: number,
): Promise<{ p50: number; p99: number; requests: number } | undefined> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const body = ${JSON.stringify(body)};
       require('node:http').createServer((req, res) => {
         res.setHeader('content-type', 'application/json; charset=utf-8');
         res.end(body);
       }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (code) => reject(new Error(`the floor server exited with ${code}`)));
    });
    return wrkLatency(`http://127.0.0.1:${port}`, ['/'], seconds);
  } finally {
    child.kill();
  }
}

const keepAlive = new http.Agent({ keepAlive: true });

/**
 * A JSON POST with the bench key over a kept-alive connection, as the SDK sends: fetch would
 * cost the load generator, which shares the machine's two cores with the server, several
 * times the CPU.
 */
export function postJson(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: keepAlive,
        headers: {
          authorization: `Bearer ${BENCH_KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export const BENCH_T0 = Date.parse('2026-01-01T00:00:00Z');
export const EVENTS_PER_BATCH = 100;

/**
 * Characters added to each step's input and to its output (half as many), the same in the
 * /ingest batches and in the raw inserts: 0 (the default) gives short payloads, 1000 a
 * prompt and an answer of the size real LLM steps record (`BENCH_PAYLOAD_CHARS`).
 */
const PAYLOAD_CHARS = Number(process.env.BENCH_PAYLOAD_CHARS ?? 0);

/** Text of `n` characters, words varying with `seed` (so it compresses as text does). */
function filler(n: number, seed: number): string {
  let s = '';
  while (s.length < n) s += `word${(seed * 7919 + s.length) % 1000} `;
  return s.slice(0, n);
}

const payloads = new Map<number, { input: unknown; output: unknown }>();

/** Step `i`'s input and output, built once: the raw inserts time their writing, not this. */
export function stepPayload(i: number): { input: unknown; output: unknown } {
  let p = payloads.get(i);
  if (!p) {
    p =
      PAYLOAD_CHARS === 0
        ? { input: { q: 'what is the weather like' }, output: 'a short answer of some length' }
        : {
            input: { q: 'what is the weather like', context: filler(PAYLOAD_CHARS, i) },
            output: `a short answer of some length ${filler(PAYLOAD_CHARS / 2, i + 1)}`,
          };
    payloads.set(i, p);
  }
  return p;
}

/** The ingest benches' batch `b`: a run's start, 98 ended steps (llm and tool) and its end. */
export function ingestBatch(b: number): unknown[] {
  const runId = `bench-run-${b}`;
  const events: unknown[] = [
    {
      type: 'run.start',
      run: {
        id: runId,
        agent_id: `agent-${b % 20}`,
        input: { task: 'triage', n: b },
        started_at: BENCH_T0 + b,
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
        ...stepPayload(i),
        started_at: BENCH_T0 + b + i,
        ended_at: BENCH_T0 + b + i + 1,
      },
    });
  }
  events.push({
    type: 'run.end',
    run: { id: runId, status: 'succeeded', output: { ok: true }, ended_at: BENCH_T0 + b + 1000 },
  });
  return events;
}

/**
 * The same rows written by hand: prepared inserts, one transaction per 100 rows. NORMAL:
 * commits not flushed to disk (the ceiling); FULL: each commit flushed, as durable as
 * Runlog's acknowledgements.
 */
export async function rawStepInserts(
  rows: number,
  sync: 'NORMAL' | 'FULL' = 'NORMAL',
): Promise<number> {
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
        BENCH_T0 + i,
        BENCH_T0 + i + 1,
        JSON.stringify(stepPayload(i).input),
        JSON.stringify(stepPayload(i).output),
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

const PG_BASE_URL = process.env.RUNLOG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A new database on the machine's PostgreSQL for this run, and a way to drop it. */
export async function pgDatabase(
  bench: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `runlog_bench_${bench}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: PG_BASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(PG_BASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      // BENCH_PG_KEEP=1 keeps it, to look at its query plans after
      if (process.env.BENCH_PG_KEEP) console.error(`kept ${url.toString()}`);
      else await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}
