/**
 * Runs the benchmarks, each in its own process, and writes bench/RESULTS.md.
 *   npm run bench                 all of them
 *   npm run bench -- ingest ws    some of them
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './common.js';

interface Bench {
  name: string;
  file: string;
  args: string[];
  /** Environment the bench runs with, beside this process's. */
  env?: Record<string, string>;
  title: string;
  goal: string;
  verdict: (r: Record<string, unknown>) => string;
}

const num = (v: unknown) => (typeof v === 'number' ? v : NaN);
const at = (r: Record<string, unknown>, path: string) =>
  path
    .split('.')
    .reduce<unknown>(
      (o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
      r,
    );
const pass = (ok: boolean) => (ok ? 'met' : '**not met**');

/** The read goals, the same on SQLite and on PostgreSQL. */
const QUERIES_GOAL = 'latest-20 p99 < 2 ms; stats p99 < 50 ms; RSS < 300 MB';
const queriesVerdict = (r: Record<string, unknown>) =>
  pass(
    num(at(r, 'agent_latest_20_ms.p99')) < 2 &&
      num(at(r, 'stats_one_agent_30d_ms.p99')) < 50 &&
      num(at(r, 'stats_all_agents_30d_ms.p99')) < 50 &&
      num(r.server_peak_rss_mb) < 300,
  );

const BENCHES: Bench[] = [
  {
    name: 'ingest',
    file: 'ingest.ts',
    args: ['2000'],
    title: 'POST /ingest, batches of 100 events, SQLite',
    goal: '>= 60% of the raw better-sqlite3 insert rate of the same rows, every acknowledged event committed',
    verdict: (r) =>
      `${pass(num(r.ratio) >= 0.6 && r.acked_steps === r.committed_steps)} (ratio ${String(r.ratio)})`,
  },
  {
    name: 'ingest-payloads',
    file: 'ingest.ts',
    args: ['2000'],
    env: { BENCH_PAYLOAD_CHARS: '1000' },
    title: 'POST /ingest as above, each step with a 1 KB input and a 0.5 KB output',
    goal: "the same goal, over rows of the size real LLM steps record (the issue's ~100k raw rows/s); RSS < 300 MB",
    verdict: (r) =>
      `${pass(num(r.ratio) >= 0.6 && r.acked_steps === r.committed_steps && num(r.server_peak_rss_mb) < 300)} (ratio ${String(r.ratio)}, peak RSS ${String(r.server_peak_rss_mb)} MB)`,
  },
  {
    name: 'stages',
    file: 'ingest-stages.ts',
    args: ['2000'],
    title: "Where /ingest's time goes: parse, validate, write, per event, in one process",
    goal: 'none of its own: it shows the ceiling the ingest ratio has on one thread',
    verdict: () => 'measured',
  },
  {
    name: 'queries',
    file: 'queries.ts',
    args: ['1000000'],
    title: '20 latest runs of one agent and /runs/stats over 1,000,000 runs, SQLite, over HTTP',
    goal: QUERIES_GOAL,
    verdict: queriesVerdict,
  },
  {
    name: 'queries-pg',
    file: 'queries.ts',
    args: ['1000000'],
    env: { BENCH_DB: 'postgres' },
    title: 'The same reads over 1,000,000 runs on PostgreSQL, over HTTP',
    goal: QUERIES_GOAL,
    verdict: queriesVerdict,
  },
  {
    name: 'threads',
    file: 'threads-shapes.ts',
    args: [],
    title: 'GET /threads by the shape of the conversations, 300,000 runs, SQLite, in one process',
    goal: 'none of its own: a page sums every run of its threads, so long threads cost more',
    verdict: () => 'measured',
  },
  {
    name: 'ws',
    file: 'ws-fanout.ts',
    args: [],
    title: 'run_update fan-out to 1,000 WebSocket subscribers',
    goal: 'p99 < 50 ms from commit to receipt; RSS < 300 MB',
    verdict: (r) => pass(num(r.p99_ms) < 50 && num(at(r, 'server_rss_mb.peak')) < 300),
  },
  {
    name: 'lifecycle',
    file: 'lifecycle.ts',
    args: [],
    title: 'Queue, claim, heartbeat, end over HTTP vs BullMQ on Redis',
    goal: "match BullMQ's jobs/s; SDK overhead < 50 µs per recorded step",
    verdict: (r) => pass(num(r.ratio) >= 1 && num(r.sdk_step_overhead_us) < 50),
  },
  {
    name: 'claims',
    file: 'claims.ts',
    args: [],
    title:
      'Claims of an agent with and without concurrency caps, 20,000 queued runs each, SQLite, in one process',
    goal: 'none of its own: what the caps cost a claim, beside a claim of an agent without one',
    verdict: () => 'measured',
  },
  {
    name: 'claims-postgres',
    file: 'claims.ts',
    args: [],
    env: { BENCH_DB: 'postgres' },
    title: 'The same claims on PostgreSQL',
    goal: 'none of its own: what the caps cost a claim, beside a claim of an agent without one',
    verdict: () => 'measured',
  },
  {
    name: 'export',
    file: 'export-import.ts',
    args: [],
    title: 'runlog export and import of 1,000,000 runs',
    goal: 'constant memory; rows/s reported',
    verdict: () => 'measured',
  },
];

const wanted = process.argv.slice(2);
const chosen = BENCHES.filter((b) => wanted.length === 0 || wanted.includes(b.name));
const sections: string[] = [];
for (const bench of chosen) {
  const file = join(ROOT, 'bench', bench.file);
  if (!existsSync(file)) {
    sections.push(`## ${bench.title}\n\nNot present (bench/${bench.file}).\n`);
    continue;
  }
  console.error(`bench: ${bench.name} ...`);
  const out = spawnSync(process.execPath, ['--import', 'tsx', file, ...bench.args], {
    cwd: ROOT,
    env: { ...process.env, ...bench.env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 30 * 60_000,
  });
  const line = out.stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (out.status !== 0 || !line) {
    sections.push(
      `## ${bench.title}\n\nFailed (exit ${String(out.status)}):\n\n\`\`\`\n${(out.stderr || out.stdout).slice(-2000)}\n\`\`\`\n`,
    );
    continue;
  }
  const result = JSON.parse(line) as Record<string, unknown>;
  console.error(line);
  sections.push(
    `## ${bench.title}\n\nGoal: ${bench.goal}. Result: ${bench.verdict(result)}.\n\nCommand: \`${Object.entries(
      bench.env ?? {},
    )
      .map(([k, v]) => `${k}=${v} `)
      .join(
        '',
      )}npx tsx bench/${bench.file} ${bench.args.join(' ')}\`\n\n\`\`\`json\n${JSON.stringify(result, null, 2)}\n\`\`\`\n`,
  );
}

const header = `# Benchmark results

Written by \`npm run bench\` on ${new Date().toISOString()} — ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.
Each figure is measured against its baseline in the same run where there is one; the
machine is shared, so absolute numbers move between runs while ratios move less.
`;
if (wanted.length === 0)
  writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), [header, ...sections].join('\n'));
else console.log([header, ...sections].join('\n'));
