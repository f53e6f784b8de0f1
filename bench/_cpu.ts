import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runlog } from '../packages/sdk/src/index.js';
import { BENCH_KEY, startServerProcess, tempDir } from './common.js';
const JOBS = 3000, CONCURRENCY = 16;
const cpu = (pid: number | 'self') => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const server = await startServerProcess(join(tempDir('lc'), 'r.db'), 4799);
async function once() {
  const url = server.url;
  const runlog = new Runlog({ url, apiKey: BENCH_KEY, handleSignals: false, onError: () => {} });
  const agent = `bench-${Math.random().toString(36).slice(2)}`;
  let allDone: () => void = () => {}; const finished = new Promise<void>((r) => (allDone = r));
  const s0 = cpu(server.child.pid!), c0 = cpu('self'), t0 = performance.now();
  const worker = runlog.worker({ agents: { [agent]: async (run) => {
    await fetch(`${url}/api/v1/runs/${run.id}/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${BENCH_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ lease_ms: 30000, worker_id: worker.id }) }).then((r) => r.text());
    return { ok: 1 }; } }, concurrency: CONCURRENCY, pollWaitMs: 5000 });
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < JOBS) { next++; await runlog.runs.enqueue(agent, { input: { i: next } }); } }));
  const tq = performance.now();
  const poll = setInterval(() => void runlog.runs.list({ agent_id: agent, status: 'succeeded', limit: 1 }).then((l) => { if (l.total >= JOBS) allDone(); }), 20);
  await finished; clearInterval(poll);
  const secs = (performance.now() - t0) / 1000;
  console.log({ jobs_s: Math.round(JOBS / secs), enqueue_phase_s: ((tq - t0)/1000).toFixed(2), secs: secs.toFixed(2), server_cpu_ms_per_job: ((cpu(server.child.pid!) - s0) * 1000 / JOBS).toFixed(3), client_cpu_ms_per_job: ((cpu('self') - c0) * 1000 / JOBS).toFixed(3) });
  await worker.stop(); await runlog.shutdown();
}
await once(); await once(); await once();
await server.stop();
