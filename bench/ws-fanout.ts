/**
 * run_update fan-out to 1,000 WebSocket subscribers of `agent:bench`, SQLite. Prints JSON.
 *   npx tsx bench/ws-fanout.ts [runs] [clients]
 *
 * The server runs built (`npm run build`) in its own process, as users run it; the 1,000
 * clients share this process, so their own decoding is part of what is measured. They use
 * ten read keys, a hundred clients each (the server holds at most 200 connections per key).
 *
 * What is measured, per run_update and client:
 * - `latency_ms`: receipt minus the run's `updated_at` (the server's clock when the write
 *   path applied the change, before its commit and fsync): an upper bound of commit to
 *   receipt. Both processes read the same system clock; `updated_at` has ms resolution.
 * - `latency_from_request_ms`: receipt minus the moment the POST /ingest was sent.
 * - `fanout_spread_ms`: receipt minus the first client's receipt of the same update: the
 *   cost of the fan-out itself, without the commit's fsync.
 * - `burst.latency_ms`: the same, for 50 runs started by one request (50 updates for each
 *   client from one group commit).
 * - `latency_from_answer_ms`: receipt minus the moment the whole HTTP answer was read
 *   (clamped to 0); `received_before_answer_pct`: how often the update came first. The
 *   fan-out runs on the turn after the commit, so the answer usually leaves first.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { percentile, postJson, startServerProcess, tempDir } from './common.js';

const RUNS = Number(process.argv[2] ?? 200);
const CLIENTS = Number(process.argv[3] ?? 1000);
const WARMUP = 10;
const BURSTS = 10;
const BURST = 50;
const AGENT = 'bench';

interface Pending {
  /** When the request was sent and when its answer came back (performance.now()). */
  sent: number;
  answered: number | undefined;
  /** Receipt times (performance.now()) and receipt minus `updated_at` (ms). */
  receipts: number[];
  sinceUpdate: number[];
  done: () => void;
}

const pending = new Map<string, Pending>();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Receipt is stamped when the frame reaches its handler; decoding is deferred to a batch,
 * so one client's JSON.parse does not count against the clients read after it.
 */
const inbox: { at: number; raw: WebSocket.RawData }[] = [];
let decodeScheduled = false;

function onMessage(raw: WebSocket.RawData): void {
  inbox.push({ at: performance.now(), raw });
  if (decodeScheduled) return;
  decodeScheduled = true;
  setImmediate(decode);
}

function decode(): void {
  decodeScheduled = false;
  for (const { at, raw } of inbox.splice(0)) {
    const msg = JSON.parse(String(raw)) as {
      type: string;
      data?: { id: string; status: string; updated_at: string };
    };
    if (msg.type !== 'run_update' || !msg.data) continue;
    const p = pending.get(`${msg.data.id}/${msg.data.status}`);
    if (!p) continue;
    p.receipts.push(at);
    p.sinceUpdate.push(performance.timeOrigin + at - Date.parse(msg.data.updated_at));
    if (p.receipts.length === CLIENTS) p.done();
  }
}

/** Read keys for the clients, `perKey` clients each. */
async function readKeys(url: string, clients: number, perKey = 100): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < Math.ceil(clients / perKey); i++) {
    const res = await postJson(
      `${url}/api/v1/keys`,
      JSON.stringify({ scope: 'read', name: `viewers-${i}` }),
    );
    if (res.status !== 201) throw new Error(`creating a key answered ${res.status}: ${res.text}`);
    keys.push((JSON.parse(res.text) as { key: string }).key);
  }
  return keys;
}

async function connectClient(url: string, key: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/ws`, {
    headers: { authorization: `Bearer ${key}` },
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await new Promise<void>((resolve) => {
    ws.once('message', () => resolve());
    ws.send(JSON.stringify({ type: 'subscribe', topics: [`agent:${AGENT}`] }));
  });
  ws.on('message', onMessage);
  return ws;
}

/** Sends one event and waits until every client has the run_update it causes. */
async function step(url: string, key: string, event: unknown): Promise<Pending> {
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const p: Pending = {
    sent: performance.now(),
    answered: undefined,
    receipts: [],
    sinceUpdate: [],
    done,
  };
  pending.set(key, p);
  const res = await postJson(`${url}/api/v1/ingest`, JSON.stringify({ events: [event] }));
  p.answered = performance.now();
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}`);
  const timeout = new Promise<void>((_, reject) =>
    setTimeout(
      () => reject(new Error(`${key}: ${p.receipts.length}/${CLIENTS} clients got it`)),
      10_000,
    ).unref(),
  );
  await Promise.race([all, timeout]);
  pending.delete(key);
  return p;
}

/** One POST starting `ids.length` runs (one group commit); waits for every client to get each. */
async function burst(url: string, ids: string[]): Promise<Pending[]> {
  const sent = performance.now();
  const all = ids.map((id) => {
    let done!: () => void;
    const arrived = new Promise<void>((resolve) => (done = resolve));
    const p: Pending = { sent, answered: undefined, receipts: [], sinceUpdate: [], done };
    pending.set(`${id}/running`, p);
    return { p, arrived };
  });
  const res = await postJson(
    `${url}/api/v1/ingest`,
    JSON.stringify({
      events: ids.map((id) => ({ type: 'run.start', run: { id, agent_id: AGENT } })),
    }),
  );
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}`);
  await Promise.race([
    Promise.all(all.map((a) => a.arrived)),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error('burst timed out')), 30_000).unref(),
    ),
  ]);
  for (const id of ids) pending.delete(`${id}/running`);
  return all.map((a) => a.p);
}

function summary(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? NaN),
  };
}

async function main(): Promise<void> {
  const dir = tempDir('ws');
  const server = await startServerProcess(join(dir, 'runlog.db'), await freePort());
  const clients: WebSocket[] = [];
  try {
    const rssIdle = server.peakRssMb();
    const keys = await readKeys(server.url, CLIENTS);
    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = Math.min(50, CLIENTS - i);
      clients.push(
        ...(await Promise.all(
          Array.from({ length: batch }, (_, j) =>
            connectClient(server.url, keys[Math.floor((i + j) / 100)]!),
          ),
        )),
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    const rssConnected = server.peakRssMb();

    const sinceUpdate: number[] = [];
    const spread: number[] = [];
    const fromAnswer: number[] = [];
    const fromRequest: number[] = [];
    let beforeAnswer = 0;
    for (let r = 0; r < WARMUP + RUNS; r++) {
      const id = `ws-bench-${r}`;
      const results = [
        await step(server.url, `${id}/running`, {
          type: 'run.start',
          run: { id, agent_id: AGENT, trigger: 'api', input: { task: 'fan-out', n: r } },
        }),
        await step(server.url, `${id}/succeeded`, {
          type: 'run.end',
          run: { id, status: 'succeeded', output: { ok: true } },
        }),
      ];
      if (r < WARMUP) continue;
      for (const p of results) {
        sinceUpdate.push(...p.sinceUpdate);
        const first = Math.min(...p.receipts);
        for (const t of p.receipts) spread.push(t - first);
        for (const t of p.receipts) {
          const sinceAnswer = t - p.answered!;
          if (sinceAnswer < 0) beforeAnswer++;
          fromAnswer.push(Math.max(0, sinceAnswer));
          fromRequest.push(t - p.sent);
        }
      }
    }
    // bursts: BURST runs in one request, so BURST run_updates per client in one group commit
    const burstSinceUpdate: number[] = [];
    for (let b = 0; b < BURSTS; b++) {
      const ids = Array.from({ length: BURST }, (_, i) => `ws-burst-${b}-${i}`);
      for (const p of await burst(server.url, ids)) burstSinceUpdate.push(...p.sinceUpdate);
    }
    const latency = summary(sinceUpdate);
    console.log(
      JSON.stringify({
        clients: CLIENTS,
        runs: RUNS,
        run_updates_measured: sinceUpdate.length,
        latency_ms: latency,
        p50_ms: latency.p50,
        p99_ms: latency.p99,
        latency_from_request_ms: summary(fromRequest),
        fanout_spread_ms: summary(spread),
        burst: {
          runs_per_request: BURST,
          requests: BURSTS,
          latency_ms: summary(burstSinceUpdate),
        },
        latency_from_answer_ms: summary(fromAnswer),
        received_before_answer_pct:
          Math.round((beforeAnswer / Math.max(1, fromAnswer.length)) * 1000) / 10,
        server_rss_mb: {
          idle: Math.round(rssIdle),
          connected: Math.round(rssConnected),
          peak: Math.round(server.peakRssMb()),
        },
      }),
    );
  } finally {
    for (const ws of clients) ws.terminate();
    await server.stop();
  }
}

await main();
