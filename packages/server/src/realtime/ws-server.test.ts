import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Run } from '@runlog/core';
import type { AuthContext } from '../http/route.js';
import { Metrics } from '../metrics/metrics.js';
import { EventHub } from './hub.js';
import { RealtimeServer, type RealtimeLimits } from './ws-server.js';

const AUTH: AuthContext = { projectId: 'p', scope: 'read', keyId: 'k1' };

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A RealtimeServer behind a bare HTTP server, with the authenticator the test drives. */
async function start(
  authenticate: () => Promise<AuthContext | undefined>,
  limits: Partial<RealtimeLimits> = {},
  hub = new EventHub(),
) {
  // no periodic recheck during a test: only the calls the test makes
  const rt = new RealtimeServer(hub, new Metrics(), authenticate, {
    recheckMs: 600_000,
    ...limits,
  });
  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => rt.handleUpgrade(req, socket, head));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  cleanup = async () => {
    await rt.close();
    await new Promise((r) => http.close(r));
  };
  return { rt, url };
}

it('checks credentials again when a revocation comes while a recheck is under way', async () => {
  let revoked = false;
  let gate: Promise<void> | undefined;
  const { rt, url } = await start(async () => {
    // what the database says when asked, answered once the gate opens
    const valid = !revoked;
    if (gate) await gate;
    return valid ? AUTH : undefined;
  });
  const ws = new WebSocket(url);
  await new Promise((r) => ws.once('open', r));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));

  let open!: () => void;
  gate = new Promise((r) => (open = r));
  const first = rt.recheck(); // reads the key as valid, then waits
  await new Promise((r) => setImmediate(r));
  revoked = true;
  const second = rt.recheck(); // the revocation's recheck, while the first is under way
  gate = undefined;
  open();
  await first;
  await second;
  // before, the second call answered the first's pass, which had read the key before its
  // revocation: the connection stayed open until the periodic recheck (15 s)
  const code = await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000, 'open'))]);
  expect(code).toBe(1008);
});

it('folds the rechecks asked during one pass into a single pass after it', async () => {
  let calls = 0;
  let gate: Promise<void> | undefined;
  const { rt, url } = await start(async () => {
    calls++;
    if (gate) await gate;
    return AUTH;
  });
  const ws = new WebSocket(url);
  await new Promise((r) => ws.once('open', r));
  calls = 0;
  let open!: () => void;
  gate = new Promise((r) => (open = r));
  const first = rt.recheck();
  const more = [rt.recheck(), rt.recheck(), rt.recheck()];
  gate = undefined;
  open();
  await Promise.all([first, ...more]);
  expect(calls).toBe(2);
  expect(ws.readyState).toBe(WebSocket.OPEN);
  ws.terminate();
});

it('keeps a client that reads at full speed when one commit brings more than the bound', async () => {
  const hub = new EventHub();
  // one commit's updates alone pass the byte bound: 40 runs of 4 KB against 64 KB
  const { url } = await start(
    () => Promise.resolve(AUTH),
    {
      softBufferBytes: 16 * 1024,
      maxPendingBytes: 64 * 1024,
    },
    hub,
  );
  const ws = new WebSocket(url);
  const updates: string[] = [];
  let closed: number | undefined;
  ws.on('close', (code) => (closed = code));
  await new Promise((r) => ws.once('open', r));
  const subscribed = new Promise((r) => ws.once('message', r));
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { type: string; data?: { id: string } };
    if (msg.type === 'run_update') updates.push(msg.data!.id);
  });
  ws.send(JSON.stringify({ type: 'subscribe', topics: ['runs'] }));
  await subscribed;
  const pad = 'x'.repeat(4096);
  const burst = () => {
    const ids = Array.from({ length: 40 }, (_, i) => `r${updates.length}-${i}`);
    for (const id of ids)
      hub.publish({
        kind: 'run',
        projectId: 'p',
        runId: id,
        agentId: 'a',
        status: 'running',
        updatedAt: Date.now(),
        run: { id, agent_id: 'a', status: 'running', input: pad } as unknown as Run,
      });
    return ids;
  };
  // before, the client was closed 1013 (too slow) in the middle of the first commit's updates
  for (let round = 0; round < 3; round++) {
    const ids = burst();
    await waitUntil(() => ids.every((id) => updates.includes(id)) || closed !== undefined);
    expect(closed).toBeUndefined();
  }
  ws.terminate();
});

async function waitUntil(done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5_000; !done() && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 10));
}
