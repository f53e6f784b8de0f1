import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Run } from '@runlog/core';
import {
  describeEachDb,
  createTestApp,
  ingestOk,
  waitFor,
  type TestApp,
} from '../../test/harness.js';
import type { HubEvent } from './hub.js';
import { PgHubBridge, channelName } from './pg-bridge.js';

describeEachDb('the bridge between instances, far behind', (dialect) => {
  if (dialect !== 'postgres') {
    it.skip('needs PostgreSQL (LISTEN/NOTIFY)', () => {});
    return;
  }
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  /**
   * A bridge of its own on this instance's context, pinging every `pingMs`, with what the hub
   * publishes meanwhile and its LISTEN connection (whose stream a test pauses to silence it).
   */
  function watchedBridge(pingMs: number) {
    const heard: HubEvent[] = [];
    const unsubscribe = t.ctx.hub.subscribe((event) => heard.push(event));
    const bridge = new PgHubBridge(t.ctx, t.ctx.db.pgPool!, channelName(t.ctx.db.pgSchema));
    bridge.pingMs = pingMs;
    const listening = bridge as unknown as {
      client: { connection: { stream: { pause(): void } } } | undefined;
    };
    return {
      bridge,
      heard,
      listening: () => listening.client,
      /** Waits for a LISTEN connection other than `silent`, and for `runId` read back. */
      async caughtUp(silent: unknown, runId: string, timeoutMs?: number) {
        await waitFor(
          () => listening.client !== undefined && listening.client !== silent,
          'a new LISTEN connection',
        );
        await waitFor(
          () => heard.some((e) => e.kind === 'run' && e.runId === runId),
          'the run read back by the catch-up',
          timeoutMs,
        );
      },
      async stop() {
        unsubscribe();
        await bridge.stop();
      },
    };
  }

  it('forgets a backlog past its bound, keeps deletions, and catches up on the latest states', async () => {
    // runs another instance recorded: in the database, announced as refs
    const runIds = Array.from({ length: 8 }, (_, i) => `far-${i}`);
    const ingest = await t.request('POST', '/api/v1/ingest', {
      events: runIds.map((id) => ({ type: 'run.start', run: { id, agent_id: 'far-behind' } })),
    });
    expect(ingest.statusCode).toBe(200);
    const heard: HubEvent[] = [];
    const unsubscribe = t.ctx.hub.subscribe((event) => heard.push(event));
    // a bridge of its own on this instance's context, not started: fed by hand
    const bridge = new PgHubBridge(t.ctx, t.ctx.db.pgPool!, channelName(t.ctx.db.pgSchema));
    bridge.incomingMax = 3;
    const feed = bridge as unknown as {
      onNotification(payload: string): void;
      incoming: Map<string, unknown>;
    };
    try {
      feed.onNotification(
        JSON.stringify({
          i: 'another-instance',
          e: [
            ['d', 'default', 'gone-1', 'far-behind'],
            ...runIds.map((id) => ['r', 'default', id, 'far-behind']),
          ],
        }),
      );
      // never more waiting than the bound, the deletion among them
      expect(feed.incoming.size).toBeLessThanOrEqual(3);
      const metrics = await t.request('GET', '/metrics');
      const overflows = /^runlog_bridge_backlog_overflows_total (\d+)$/m.exec(metrics.body);
      expect(Number(overflows?.[1])).toBeGreaterThan(0);
      // the catch-up reads every run changed since the backlog began: each reaches the listener
      await waitFor(() => {
        const seen = new Set(heard.flatMap((e) => (e.kind === 'run' ? [e.runId] : [])));
        return runIds.every((id) => seen.has(id));
      }, 'every run read back by the catch-up');
      expect(heard.some((e) => e.kind === 'run_deleted' && e.runId === 'gone-1')).toBe(true);
      const run = heard.find((e) => e.kind === 'run' && e.runId === 'far-7');
      expect((run as { run: Run } | undefined)?.run.status).toBe('running');
    } finally {
      unsubscribe();
      await bridge.stop();
    }
  });

  it('finds out that its LISTEN connection went silent, listens again and catches up', async () => {
    const runId = 'while-silent';
    await ingestOk(t, [{ type: 'run.start', run: { id: runId, agent_id: 'silent' } }]);
    const watched = watchedBridge(200);
    try {
      await watched.bridge.start();
      const silent = watched.listening()!;
      // its peer goes silent: nothing more is read from the connection, and nothing closes it
      silent.connection.stream.pause();
      // another instance announces its change meanwhile: the silent connection never hears it
      await t.ctx.db.pgPool!.query('SELECT pg_notify($1, $2)', [
        channelName(t.ctx.db.pgSchema),
        JSON.stringify({ i: 'another-instance', e: [['r', 'default', runId, 'silent']] }),
      ]);
      await watched.caughtUp(silent, runId);
    } finally {
      await watched.stop();
    }
  });

  it('catches up from when its LISTEN connection last answered, not from when it found out', async () => {
    const runId = 'long-silent';
    const watched = watchedBridge(100);
    try {
      await watched.bridge.start();
      // answered pings: the connection hears everything up to now
      await new Promise((resolve) => setTimeout(resolve, 300));
      const silent = watched.listening()!;
      silent.connection.stream.pause();
      // a ping takes as long as it may to be found unanswered: the silence is found out
      // later than the catch-up's margin (as with the 15 s ping: up to 30 s later)
      watched.bridge.pingMs = 6_000;
      // another instance's change as the silence begins: its NOTIFY never arrives
      await ingestOk(t, [{ type: 'run.start', run: { id: runId, agent_id: 'silent' } }]);
      watched.heard.length = 0;
      await watched.caughtUp(silent, runId, 2_000);
    } finally {
      await watched.stop();
    }
  }, 20_000);
});
