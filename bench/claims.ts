/**
 * What an agent's concurrency caps cost a claim, in one process: claims of up to 16 runs
 * (`claimRuns`, as `POST /workers/claim` makes them) of an agent without a cap, one with
 * `max_concurrency`, one with `max_concurrency_per_thread: 1`, and one with a 24 h budget
 * (`max_cost_usd_24h`, never reached: what reading the spend costs), each with the same
 * 40,000 queued runs (10 turns of 2,000 threads), in rounds alternated in the same run.
 * Each claimed run stays running, so the later claims of the per-thread agent find the
 * head of its queue all turns of threads that run: the case that costs it most. Prints JSON.
 *   npx tsx bench/claims.ts
 *   BENCH_DB=postgres npx tsx bench/claims.ts (a database of its own, dropped after)
 */
import { join } from 'node:path';
import { sql } from 'kysely';
import { createContext, closeContext } from '../packages/server/src/server.js';
import { enqueueRuns } from '../packages/server/src/control/control.service.js';
import { claimRuns } from '../packages/server/src/control/workers.service.js';
import { upsertAgent } from '../packages/server/src/agents/agents.service.js';
import { BENCH_KEY, pgDatabase, percentile, tempDir } from './common.js';

const THREADS = 2000;
const TURNS = 10;
const CLAIMS = 100;
const MAX = 16;
const P = 'default';

const onPostgres = process.env.BENCH_DB === 'postgres';
const pgDb = onPostgres ? await pgDatabase('claims') : undefined;
const { ctx } = await createContext({
  db: pgDb ? pgDb.url : join(tempDir('claims'), 'runlog.db'),
  port: 0,
  host: '127.0.0.1',
  retentionDays: 30,
  adminKey: BENCH_KEY,
  logLevel: 'silent',
  background: false,
});
try {
  const agents = {
    none: {},
    capped: { max_concurrency: 3000 },
    per_thread: { max_concurrency_per_thread: 1 },
    budgeted: { max_cost_usd_24h: 1_000_000 },
  } as const;
  for (const [agent, body] of Object.entries(agents)) {
    await upsertAgent(ctx.db, P, agent, body, { now: Date.now(), maxFieldBytes: 1 << 20 });
    for (let turn = 0; turn < TURNS; turn++) {
      const items = Array.from({ length: THREADS }, (_, t) => ({
        agent_id: agent,
        thread_id: `thread-${t}`,
        input: { turn },
      }));
      for (let i = 0; i < items.length; i += 1000)
        await enqueueRuns(ctx, P, items.slice(i, i + 1000));
    }
  }
  // the planner's statistics, as autovacuum (PostgreSQL) or PRAGMA optimize keep them
  await sql`ANALYZE`.execute(ctx.db.kysely);

  const times = new Map<string, number[]>(Object.keys(agents).map((a) => [a, []]));
  const claimed = new Map<string, number>(Object.keys(agents).map((a) => [a, 0]));
  // rounds alternated between the agents, so a noisy moment costs each the same
  for (let round = 0; round < 2 * CLAIMS; round += 10) {
    for (const agent of Object.keys(agents)) {
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        const runs = await claimRuns(ctx, P, {
          agents: [agent],
          leaseMs: 3_600_000,
          workerId: 'bench',
          max: MAX,
        });
        times.get(agent)!.push(performance.now() - t0);
        claimed.set(agent, claimed.get(agent)! + runs.length);
      }
    }
  }
  const ms = (agent: string) => {
    const sorted = [...times.get(agent)!].sort((a, b) => a - b);
    const r = (x: number) => Number(x.toFixed(2));
    return {
      p50: r(percentile(sorted, 50)),
      p99: r(percentile(sorted, 99)),
      claimed: claimed.get(agent),
    };
  };
  console.log(
    JSON.stringify({
      bench: 'claims',
      database: onPostgres ? 'postgres' : 'sqlite',
      queued_per_agent: THREADS * TURNS,
      claims_per_agent: 2 * CLAIMS,
      max_per_claim: MAX,
      no_cap_ms: ms('none'),
      max_concurrency_ms: ms('capped'),
      per_thread_ms: ms('per_thread'),
      budget_24h_ms: ms('budgeted'),
    }),
  );
} finally {
  await closeContext(ctx);
  await pgDb?.drop();
}
