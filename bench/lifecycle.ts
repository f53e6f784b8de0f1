/**
 * The full job lifecycle through the HTTP API (queue, claim, heartbeat, end) against BullMQ
 * on the machine's Redis doing the same (add, process with a progress update, complete),
 * same job count and concurrency, measured side by side in this run; then the SDK's cost
 * per recorded step on the agent's thread. Prints JSON.
 *   npx tsx bench/lifecycle.ts [jobs] [concurrency]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Runlog } from '../packages/sdk/src/index.js';
import { BENCH_KEY, ROOT, startServerProcess, tempDir } from './common.js';

const JOBS = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const STEPS = 50_000;

async function produce(count: number, add: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await add(next++);
    }),
  );
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface LifecycleRun {
  jobsPerSec: number;
  serverCpuMsPerJob: number;
  clientCpuMsPerJob: number;
}

async function runlogLifecycle(url: string, serverPid: number): Promise<LifecycleRun> {
  const errors: Error[] = [];
  const runlog = new Runlog({
    url,
    apiKey: BENCH_KEY,
    handleSignals: false,
    onError: (err) => errors.push(err),
  });
  const agent = `bench-${Date.now().toString(36)}`;
  let done = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => (allDone = r));
  const server0 = cpuSeconds(serverPid);
  const client0 = cpuSeconds(process.pid);
  const t0 = performance.now();
  const worker = runlog.worker({
    agents: {
      [agent]: async (run) => {
        // the heartbeat every real job sends at least once: the SDK sends the beats its
        // runs ask for in the same turn as one request, as ioredis pipelines BullMQ's calls
        await run.heartbeat();
        return { ok: (run.input as { i: number }).i };
      },
    },
    concurrency: CONCURRENCY,
    pollWaitMs: 5_000,
  });
  await produce(JOBS, (i) => runlog.runs.enqueue(agent, { input: { i } }));
  // the end is committed when the server has it: wait for every run.end to be acknowledged
  const poll = setInterval(() => {
    void runlog.runs.list({ agent_id: agent, status: 'succeeded', limit: 1 }).then((l) => {
      done = l.total;
      if (done >= JOBS) allDone();
    });
  }, 20);
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const serverCpu = cpuSeconds(serverPid) - server0;
  const clientCpu = cpuSeconds(process.pid) - client0;
  clearInterval(poll);
  await worker.stop();
  await runlog.shutdown();
  if (errors.length > 0) throw errors[0];
  return {
    jobsPerSec: JOBS / seconds,
    serverCpuMsPerJob: (serverCpu * 1000) / JOBS,
    clientCpuMsPerJob: (clientCpu * 1000) / JOBS,
  };
}

interface Connection {
  connection: { host: string; port: number };
}
/** The part of BullMQ's API this bench uses (it is loaded at run time, see loadBullmq). */
interface BullMQ {
  Queue: new (
    name: string,
    opts: Connection,
  ) => {
    add(name: string, data: unknown, opts?: { removeOnComplete?: boolean }): Promise<unknown>;
    obliterate(opts: { force: boolean }): Promise<void>;
    close(): Promise<void>;
  };
  Worker: new (
    name: string,
    process: (job: { data: unknown; updateProgress(p: number): Promise<void> }) => Promise<unknown>,
    opts: Connection & { concurrency: number },
  ) => { on(event: 'completed', fn: () => void): void; close(): Promise<void> };
  QueueEvents: new (
    name: string,
    opts: Connection,
  ) => { waitUntilReady(): Promise<unknown>; close(): Promise<void> };
}

/**
 * BullMQ is the baseline, not a dependency: it is installed on first use into bench/.deps,
 * outside the workspace, so `npm ci` never needs it (its optional native packages are not
 * all on this machine's registry, which breaks `npm ci` for a lock that names them).
 */
async function loadBullmq(): Promise<BullMQ> {
  const dir = join(ROOT, 'bench', '.deps');
  const manifest = join(dir, 'package.json');
  if (!existsSync(join(dir, 'node_modules', 'bullmq'))) {
    mkdirSync(dir, { recursive: true });
    if (!existsSync(manifest)) writeFileSync(manifest, '{"private": true}\n');
    const install = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--no-package-lock', 'bullmq@5'],
      { cwd: dir, stdio: 'inherit' },
    );
    if (install.status !== 0) throw new Error('could not install bullmq into bench/.deps');
  }
  return (await import(createRequire(manifest).resolve('bullmq'))) as BullMQ;
}

async function bullmqLifecycle(port = 6379): Promise<number> {
  const { Queue, Worker: BullWorker, QueueEvents } = await loadBullmq();
  const connection = { host: '127.0.0.1', port };
  const name = `runlog-bench-${Date.now().toString(36)}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  let completed = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => (allDone = r));
  const t0 = performance.now();
  const worker = new BullWorker(
    name,
    async (job) => {
      await job.updateProgress(1);
      return { ok: (job.data as { i: number }).i };
    },
    { connection, concurrency: CONCURRENCY },
  );
  worker.on('completed', () => {
    if (++completed >= JOBS) allDone();
  });
  await produce(JOBS, (i) => queue.add('job', { i }, { removeOnComplete: true }));
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return JOBS / seconds;
}

/** µs per `run.step` on the agent's thread, over a no-op baseline of the same loop. */
async function stepOverhead(url: string): Promise<{ step_us: number; baseline_us: number }> {
  const runlog = new Runlog({
    url,
    apiKey: BENCH_KEY,
    handleSignals: false,
    maxQueue: STEPS * 3,
    onError: () => {},
  });
  const work = (i: number) => i + 1;
  const baseline = async () => {
    const t = performance.now();
    for (let i = 0; i < STEPS; i++) await (async () => work(i))();
    return ((performance.now() - t) * 1000) / STEPS;
  };
  const recorded = () =>
    runlog.run('bench-overhead', async (run) => {
      const t = performance.now();
      for (let i = 0; i < STEPS; i++)
        await run.step('tool', 'work', () => work(i), { input: { i } });
      return ((performance.now() - t) * 1000) / STEPS;
    });
  await baseline();
  await recorded(); // warm-up
  const base = await baseline();
  const withSteps = await recorded();
  await runlog.flush(60_000);
  await runlog.shutdown();
  return { step_us: withSteps - base, baseline_us: base };
}

/**
 * The machine's Redis keeps nothing on disk (`--save "" --appendonly no`), while Runlog
 * acknowledges only durable commits. For a like-for-like figure, BullMQ also runs on a
 * private Redis that fsyncs its append-only file on every write.
 */
async function durableRedis(): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = 6390 + Math.floor(Math.random() * 50);
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      tempDir('redis'),
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const port = 4790 + Math.floor(Math.random() * 100);
const server = await startServerProcess(join(tempDir('lifecycle'), 'runlog.db'), port);
try {
  await runlogLifecycle(server.url, server.child.pid!); // warm-up: JIT, prepared statements
  await bullmqLifecycle();
  // three rounds, each Runlog then BullMQ, so both meet the same moments of this shared
  // machine; each side's best round (a pause elsewhere only ever slows a round)
  const rounds = [];
  const bullRounds: number[] = [];
  for (let i = 0; i < 3; i++) {
    rounds.push(await runlogLifecycle(server.url, server.child.pid!));
    bullRounds.push(await bullmqLifecycle());
  }
  const best = rounds.reduce((a, b) => (b.jobsPerSec > a.jobsPerSec ? b : a));
  const runlogJobs = best.jobsPerSec;
  const bullJobs = Math.max(...bullRounds);
  const redis = await durableRedis();
  let bullDurableJobs: number;
  try {
    bullDurableJobs = await bullmqLifecycle(redis.port);
  } finally {
    await redis.stop();
  }
  const overhead = await stepOverhead(server.url);
  console.log(
    JSON.stringify({
      jobs: JOBS,
      concurrency: CONCURRENCY,
      runlog_jobs_per_s: Math.round(runlogJobs),
      runlog_rounds_jobs_per_s: rounds.map((r) => Math.round(r.jobsPerSec)),
      runlog_server_cpu_ms_per_job: Number(best.serverCpuMsPerJob.toFixed(3)),
      runlog_client_cpu_ms_per_job: Number(best.clientCpuMsPerJob.toFixed(3)),
      bullmq_jobs_per_s: Math.round(bullJobs),
      bullmq_rounds_jobs_per_s: bullRounds.map(Math.round),
      ratio: Number((runlogJobs / bullJobs).toFixed(3)),
      bullmq_fsync_always_jobs_per_s: Math.round(bullDurableJobs),
      ratio_vs_fsync_always: Number((runlogJobs / bullDurableJobs).toFixed(3)),
      sdk_step_overhead_us: Number(overhead.step_us.toFixed(2)),
      sdk_baseline_us: Number(overhead.baseline_us.toFixed(2)),
      server_peak_rss_mb: Math.round(server.peakRssMb()),
    }),
  );
} finally {
  await server.stop();
}
