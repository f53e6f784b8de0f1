import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { newId, type Agent, type Run, type WorkerList } from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';
import { cancelRun, enqueueRun } from './control.service.js';
import { sweepOnce, sweepVerdict } from './sweeper.js';
import { sweeper } from './background.js';
import { newRunRow } from '../ingest/apply.js';
import { findAgent, newAgentRow, saveAgent } from '../agents/agents.repository.js';
import { scheduleOnce } from './scheduler.js';
import { nextSlot } from './schedule.js';
import { findRun } from '../runs/runs.repository.js';
import { WORKER_SEEN_EVERY_MS, noteWorker, noteWorkerSeen } from './workers.service.js';
import { Retention } from '../retention/retention.js';

const P = 'default';
let seq = 0;
const agentName = (base: string) => `${base}-${Date.now().toString(36)}-${seq++}`;

describeEachDb('workers and control plane', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect, { cancelGraceMs: 500 });
  });
  afterAll(async () => {
    await t.close();
  });

  const claim = (agents: string[], extra: Record<string, unknown> = {}) =>
    t.request('POST', '/api/v1/workers/claim', { agents, ...extra });

  /** Sets an agent's schedule (or none) and its pending slot straight in the table. */
  const setSchedule = (agent: string, cron: string | null, nextAt: number | null) =>
    t.ctx.db.kysely
      .updateTable('agents')
      .set({
        schedule_cron: cron,
        schedule_tz: cron === null ? null : 'UTC',
        schedule_next_at: nextAt,
      })
      .where('project_id', '=', P)
      .where('id', '=', agent)
      .execute();
  const nextSlotOf = async (agent: string) =>
    (
      await t.ctx.db.kysely
        .selectFrom('agents')
        .select('schedule_next_at')
        .where('project_id', '=', P)
        .where('id', '=', agent)
        .executeTakeFirstOrThrow()
    ).schedule_next_at;

  it('hands the oldest queued run to a claim, running under a lease, and 204 when none waits', async () => {
    const agent = agentName('claimer');
    const first = await enqueueRun(t.ctx, P, agent, { input: { n: 1 } });
    await enqueueRun(t.ctx, P, agent, { input: { n: 2 } });
    const before = Date.now();
    const res = await claim([agent], { lease_ms: 5000, worker_id: 'w-1' });
    expect(res.statusCode).toBe(200);
    const run = json<Run>(res);
    expect(run.id).toBe(first.run.id);
    expect(run.status).toBe('running');
    expect(run.started_at).not.toBeNull();
    expect(Date.parse(run.lease_expires_at!)).toBeGreaterThanOrEqual(before + 5000);
    const row = await findRun(t.ctx.db, P, run.id);
    expect(row?.worker_id).toBe('w-1');
    expect(json<Run>(await claim([agent])).input).toEqual({ n: 2 });
    expect((await claim([agent])).statusCode).toBe(204);
    expect((await claim(['someone-else'])).statusCode).toBe(204);
  });

  it('gives a run queued through /ingest a queued_at, and claims it in its turn', async () => {
    const agent = agentName('ingest-queued');
    const first = await enqueueRun(t.ctx, P, agent, {});
    await new Promise((r) => setTimeout(r, 5));
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: `${agent}-q`, agent_id: agent, status: 'pending' } },
      ],
    });
    expect(res.statusCode).toBe(200);
    const queued = (await findRun(t.ctx.db, P, `${agent}-q`))!;
    expect(queued.status).toBe('queued');
    // before, queued_at stayed null: SQLite handed this run out first, PostgreSQL last
    expect(queued.queued_at).toBeGreaterThan(Date.parse(first.run.queued_at!));
    const claimed = json<{ runs: Run[] }>(await claim([agent], { max: 2 })).runs;
    expect(claimed.map((r) => r.id)).toEqual([first.run.id, `${agent}-q`]);

    // a backfilled run, queued then started and ended long ago in one batch: the server's
    // clock does not stand in past the times its own events give
    const old = `${agent}-old`;
    const backfill = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: old, agent_id: agent, status: 'queued' } },
        { type: 'run.start', run: { id: old, started_at: '2025-01-01T00:00:00Z' } },
        {
          type: 'run.end',
          run: { id: old, status: 'succeeded', ended_at: '2025-01-01T00:01:00Z' },
        },
      ],
    });
    expect(backfill.statusCode).toBe(200);
    const row = (await findRun(t.ctx.db, P, old))!;
    expect(row.queued_at).toBe(Date.parse('2025-01-01T00:00:00Z'));
    expect(row.sort_at).toBe(Date.parse('2025-01-01T00:00:00Z'));
  });

  it('hands up to max runs to one claim, each exactly once', async () => {
    const agent = agentName('batch');
    for (let i = 0; i < 5; i++) await enqueueRun(t.ctx, P, agent, { input: { i } });
    const first = json<{ runs: Run[] }>(await claim([agent], { max: 3 }));
    expect(first.runs.map((r) => r.input)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    expect(first.runs.every((r) => r.status === 'running')).toBe(true);
    const rest = json<{ runs: Run[] }>(await claim([agent], { max: 3 }));
    expect(rest.runs.map((r) => r.input)).toEqual([{ i: 3 }, { i: 4 }]);
    expect((await claim([agent], { max: 3 })).statusCode).toBe(204);
  });

  it('answers a waiting claim as soon as a run is queued', async () => {
    const agent = agentName('long-poll');
    const pending = claim([agent], { wait_ms: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    const queuedAt = Date.now();
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(json<Run>(res).id).toBe(run.id);
    // woken by the enqueue, not by the claim's own look every CLAIM_POLL_MS (1 s)
    expect(Date.now() - queuedAt).toBeLessThan(600);
  });

  it('hands no run to a waiting claim whose key is revoked meanwhile', async () => {
    const agent = agentName('revoked-poll');
    const created = json<{ id: string; key: string }>(
      await t.request('POST', '/api/v1/keys', { scope: 'write', name: 'leaked worker' }),
    );
    const pending = t.request(
      'POST',
      '/api/v1/workers/claim',
      { agents: [agent], wait_ms: 10_000 },
      created.key,
    );
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.request('DELETE', `/api/v1/keys/${created.id}`)).statusCode).toBe(200);
    const { run } = await enqueueRun(t.ctx, P, agent, { input: { secret: 'for workers only' } });
    const res = await pending;
    expect(res.statusCode).toBe(401);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('queued');
  });

  it('renews the lease on heartbeat and reports a Stop to the worker', async () => {
    const agent = agentName('beater');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 2000, worker_id: 'w-2' });
    const hb = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, {
      lease_ms: 60_000,
      worker_id: 'w-2',
    });
    expect(hb.statusCode).toBe(200);
    const body = json<{ cancel_requested: boolean; lease_expires_at: string; status: string }>(hb);
    expect(body.cancel_requested).toBe(false);
    expect(body.status).toBe('running');
    expect(Date.parse(body.lease_expires_at)).toBeGreaterThan(Date.now() + 50_000);
    const other = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, { worker_id: 'w-x' });
    expect(other.statusCode).toBe(409);
    await cancelRun(t.ctx, P, run.id);
    const after = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, {});
    expect(json<{ cancel_requested: boolean }>(after).cancel_requested).toBe(true);
    expect((await t.request('POST', '/api/v1/runs/nope-404/heartbeat', {})).statusCode).toBe(404);
  });

  it('renews several runs in one heartbeat, each answering on its own', async () => {
    const agent = agentName('many-beats');
    const a = await enqueueRun(t.ctx, P, agent, {});
    const b = await enqueueRun(t.ctx, P, agent, {});
    const c = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { max: 2, lease_ms: 2000, worker_id: 'w-many' });
    await claim([agent], { lease_ms: 2000, worker_id: 'w-other' });
    await cancelRun(t.ctx, P, b!.run.id);
    const before = Date.now();
    const res = await t.request('POST', '/api/v1/runs/heartbeat', {
      runs: [a!.run.id, b!.run.id, c!.run.id, 'nope-404'],
      lease_ms: 60_000,
      worker_id: 'w-many',
    });
    expect(res.statusCode).toBe(200);
    const { runs } = json<{ runs: Record<string, unknown>[] }>(res);
    expect(runs.map((r) => [r.id, r.ok])).toEqual([
      [a!.run.id, true],
      [b!.run.id, true],
      [c!.run.id, false],
      ['nope-404', false],
    ]);
    expect(runs[0]).toMatchObject({ status: 'running', cancel_requested: false });
    expect(Date.parse(runs[0]!.lease_expires_at as string)).toBeGreaterThanOrEqual(before + 60_000);
    expect(runs[1]).toMatchObject({ status: 'running', cancel_requested: true });
    expect(runs[2]).toMatchObject({ error: { code: 'conflict' } });
    expect((runs[2]!.error as { message: string }).message).toMatch(/held by worker w-other/);
    expect(runs[3]).toMatchObject({ error: { code: 'not_found' } });
    // the run another worker holds kept its own lease
    const other = (await findRun(t.ctx.db, P, c!.run.id))!;
    expect(other.lease_expires_at! - other.last_heartbeat_at!).toBe(2000);
    const empty = await t.request('POST', '/api/v1/runs/heartbeat', { runs: [] });
    expect(empty.statusCode).toBe(400);
    expect(json<{ error: { message: string } }>(empty).error.message).toMatch(/runs/);
  });

  it('queues runs of several agents in one request, all or none', async () => {
    const agent = agentName('bulk');
    const ids = [newId(), newId()];
    const body = {
      runs: [
        { agent_id: agent, id: ids[0], input: { n: 0 } },
        { agent_id: `${agent}-b`, id: ids[1], trigger: 'manual', input: { n: 1 } },
        { agent_id: agent, input: { n: 2 } },
      ],
    };
    const res = await t.request('POST', '/api/v1/runs/enqueue', body);
    expect(res.statusCode).toBe(202);
    const { runs } = json<{ runs: Run[] }>(res);
    expect(runs.map((r) => [r.agent_id, r.status, r.trigger, r.input])).toEqual([
      [agent, 'queued', 'api', { n: 0 }],
      [`${agent}-b`, 'queued', 'manual', { n: 1 }],
      [agent, 'queued', 'api', { n: 2 }],
    ]);
    expect(runs.slice(0, 2).map((r) => r.id)).toEqual(ids);
    // the runs with ids are queued once however often the request is sent
    const again = json<{ runs: Run[] }>(await t.request('POST', '/api/v1/runs/enqueue', body));
    expect(again.runs.slice(0, 2).map((r) => r.id)).toEqual(ids);
    const count = async () =>
      json<{ total: number }>(await t.request('GET', `/api/v1/runs?agent_id=${agent},${agent}-b`))
        .total;
    expect(await count()).toBe(4);
    // an id of another agent's run refuses the whole request, naming the item
    const conflict = await t.request('POST', '/api/v1/runs/enqueue', {
      runs: [{ agent_id: agent }, { agent_id: agent, id: ids[1] }],
    });
    expect(conflict.statusCode).toBe(409);
    expect(json<{ error: { message: string } }>(conflict).error.message).toMatch(
      /^runs\.1\.id: run .* already exists for agent .*-b$/,
    );
    const alone = await t.request('POST', '/api/v1/runs/enqueue', {
      runs: [{ agent_id: agent, id: ids[1] }],
    });
    expect(alone.statusCode).toBe(409);
    expect(json<{ error: { message: string } }>(alone).error.message).toMatch(/^runs\.0\.id: /);
    const invalid = await t.request('POST', '/api/v1/runs/enqueue', {
      runs: [{ agent_id: agent }, { agent_id: agent, trigger: 'schedule' }],
    });
    expect(invalid.statusCode).toBe(400);
    expect(JSON.stringify(json(invalid))).toMatch(/runs\.1\.trigger/);
    expect(await count()).toBe(4);
  });

  it('renews a claimed run, on a heartbeat without lease_ms, for the lease it held', async () => {
    const agent = agentName('short-lease');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 1000, worker_id: 'w-5' });
    // past half of the lease: a beat sooner than that is not worth a write
    await new Promise((r) => setTimeout(r, 600));
    const before = Date.now();
    const hb = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, { worker_id: 'w-5' });
    const lease = Date.parse(json<{ lease_expires_at: string }>(hb).lease_expires_at);
    expect(lease).toBeGreaterThanOrEqual(before + 1000);
    expect(lease).toBeLessThanOrEqual(Date.now() + 1000);
    expect((await findRun(t.ctx.db, P, run.id))?.lease_expires_at).toBe(lease);
  });

  it('answers a beat while more than half the lease is left from the stored run, writing nothing', async () => {
    const agent = agentName('quick-beat');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 30_000, worker_id: 'w-6' });
    const claimed = (await findRun(t.ctx.db, P, run.id))!;
    const hb = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, { worker_id: 'w-6' });
    expect(json<{ lease_expires_at: string }>(hb).lease_expires_at).toBe(
      new Date(claimed.lease_expires_at!).toISOString(),
    );
    const after = (await findRun(t.ctx.db, P, run.id))!;
    expect(after.updated_at).toBe(claimed.updated_at);
    expect(after.last_heartbeat_at).toBe(claimed.last_heartbeat_at);
    // a shorter lease asked for is written at once
    const before = Date.now();
    const shorter = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, {
      worker_id: 'w-6',
      lease_ms: 2000,
    });
    const lease = Date.parse(json<{ lease_expires_at: string }>(shorter).lease_expires_at);
    expect(lease).toBeGreaterThanOrEqual(before + 2000);
    expect(lease).toBeLessThanOrEqual(Date.now() + 2000);
    expect((await findRun(t.ctx.db, P, run.id))?.lease_expires_at).toBe(lease);
    // Stop is still seen at once
    await cancelRun(t.ctx, P, run.id);
    const stopped = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, {
      worker_id: 'w-6',
    });
    expect(json<{ cancel_requested: boolean }>(stopped).cancel_requested).toBe(true);
  });

  it('puts a released run back in the queue for another worker', async () => {
    const agent = agentName('release');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { worker_id: 'w-3' });
    const res = await t.request('POST', `/api/v1/runs/${run.id}/release`, { worker_id: 'w-3' });
    expect(json<Run>(res).status).toBe('queued');
    const again = json<Run>(await claim([agent], { worker_id: 'w-4' }));
    expect(again.id).toBe(run.id);
    expect((await findRun(t.ctx.db, P, run.id))?.worker_id).toBe('w-4');
  });

  it('gives a released run its whole timeout_ms again to wait for the next worker', async () => {
    const agent = agentName('release-timeout');
    await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms: 1000 });
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { worker_id: 'w-5', lease_ms: 600_000 });
    // claimed 900 ms ago: 100 ms of its timeout left when its worker gives it back
    await t.ctx.db.kysely
      .updateTable('runs')
      .set({ deadline_at: Date.now() + 100 })
      .where('project_id', '=', P)
      .where('id', '=', run.id)
      .execute();
    const res = await t.request('POST', `/api/v1/runs/${run.id}/release`, { worker_id: 'w-5' });
    expect(json<Run>(res).status).toBe('queued');
    // before, it ended timed_out "while still queued" half a second after the release
    await sweepOnce(t.ctx, Date.now() + 500);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('queued');
    await sweepOnce(t.ctx, Date.now() + 1500);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('timed_out');
  });

  it('refuses to release a run no worker holds, and leaves it running', async () => {
    const agent = agentName('release-unclaimed');
    const started = await t.request('POST', '/api/v1/runs', { agent_id: agent });
    const { id } = json<Run>(started);
    const res = await t.request('POST', `/api/v1/runs/${id}/release`, {});
    expect(res.statusCode).toBe(409);
    expect((await findRun(t.ctx.db, P, id))?.status).toBe('running');
  });

  it('gives back, when a stopping worker asks, the runs still held under its id', async () => {
    const agent = agentName('stop-release');
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push((await enqueueRun(t.ctx, P, agent, {})).run);
    const [lost, stopped, other, keyed] = runs.map((r) => r.id) as [string, string, string, string];
    // claimed for the worker as it stopped: the answer never reached it
    expect((await claim([agent], { worker_id: 'w-stops', max: 2 })).statusCode).toBe(200);
    await cancelRun(t.ctx, P, stopped);
    expect(json<Run>(await claim([agent], { worker_id: 'w-stays' })).id).toBe(other);
    expect(json<Run>(await claim([agent])).id).toBe(keyed);
    const keyWorker = (await findRun(t.ctx.db, P, keyed))!.worker_id!;
    expect(keyWorker).toMatch(/^key:/);
    // without release (its ends may still be on the way) nothing moves
    expect((await t.request('DELETE', '/api/v1/workers/w-stops')).statusCode).toBe(204);
    expect((await findRun(t.ctx.db, P, lost))?.status).toBe('running');
    const res = await t.request('DELETE', '/api/v1/workers/w-stops?release=true');
    expect(res.statusCode).toBe(204);
    // before: running under a worker that is gone, to lapse to timed_out never executed
    expect((await findRun(t.ctx.db, P, lost))?.status).toBe('queued');
    expect((await findRun(t.ctx.db, P, stopped))?.status).toBe('cancelled');
    expect((await findRun(t.ctx.db, P, other))?.status).toBe('running');
    // a key's id stands for every claim sent without a worker_id, not for one worker
    const byKey = `/api/v1/workers/${encodeURIComponent(keyWorker)}?release=true`;
    expect((await t.request('DELETE', byKey)).statusCode).toBe(204);
    expect((await findRun(t.ctx.db, P, keyed))?.status).toBe('running');
    expect((await t.request('DELETE', '/api/v1/workers/w-x?release=yes')).statusCode).toBe(400);
    expect(json<Run>(await claim([agent], { worker_id: 'w-next' })).id).toBe(lost);
  });

  it("notes when a worker last asked for an agent's runs, so a queued run can tell none is there", async () => {
    const agent = agentName('seen');
    // asked for before the agent exists (no run of it yet): nothing to note, asked again soon
    const early = Date.now() - 60_000;
    await noteWorkerSeen(t.ctx, P, [agent], early);
    await enqueueRun(t.ctx, P, agent, {});
    const seen = async () => json<Agent>(await t.request('GET', `/api/v1/agents/${agent}`));
    expect((await seen()).worker_seen_at).toBeNull();
    await noteWorkerSeen(t.ctx, P, [agent], early + 2000);
    expect(Date.parse((await seen()).worker_seen_at!)).toBe(early + 2000);
    const before = Date.now();
    await claim([agent], { worker_id: 'w-seen' });
    const at = Date.parse((await seen()).worker_seen_at!);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
    // a polling worker asks every second: written again only once it has grown stale
    await noteWorkerSeen(t.ctx, P, [agent], at + 1000);
    expect(Date.parse((await seen()).worker_seen_at!)).toBe(at);
    await noteWorkerSeen(t.ctx, P, [agent], at + WORKER_SEEN_EVERY_MS);
    expect(Date.parse((await seen()).worker_seen_at!)).toBe(at + WORKER_SEEN_EVERY_MS);
    // a save of the agent read before the note does not put the old value back
    const read = await findAgent(t.ctx.db, P, agent);
    await saveAgent(t.ctx.db, { ...read!, worker_seen_at: null, description: 'saved' });
    expect(await seen()).toMatchObject({
      description: 'saved',
      worker_seen_at: new Date(at + WORKER_SEEN_EVERY_MS).toISOString(),
    });
  });

  it('lists the workers seen lately: their agents, whether online, the runs they hold', async () => {
    const a = agentName('wl-a');
    const b = agentName('wl-b');
    await enqueueRun(t.ctx, P, a, {});
    const held = json<Run>(await claim([b, a], { worker_id: 'wl-busy' }));
    expect((await claim([b], { worker_id: 'wl-idle' })).statusCode).toBe(204);
    const list = async () =>
      json<WorkerList>(await t.request('GET', '/api/v1/workers')).workers.filter((w) =>
        w.id.startsWith('wl-'),
      );
    const ws = await list();
    expect(ws.map((w) => w.id).sort()).toEqual(['wl-busy', 'wl-idle']);
    const busy = ws.find((w) => w.id === 'wl-busy')!;
    expect(busy).toMatchObject({
      agents: [a, b].sort(),
      online: true,
      running: 1,
      running_runs: [{ id: held.id, agent_id: a }],
    });
    expect(ws.find((w) => w.id === 'wl-idle')).toMatchObject({
      agents: [b],
      online: true,
      running: 0,
      running_runs: [],
    });
    // a heartbeat keeps it seen and keeps the agents its claim named
    const first = Date.parse(busy.last_seen_at);
    await noteWorker(t.ctx, P, 'wl-busy', undefined, first + 1000);
    expect((await list()).find((w) => w.id === 'wl-busy')?.last_seen_at).toBe(busy.last_seen_at);
    await noteWorker(t.ctx, P, 'wl-busy', undefined, first + WORKER_SEEN_EVERY_MS);
    const beat = (await list()).find((w) => w.id === 'wl-busy')!;
    expect(Date.parse(beat.last_seen_at)).toBe(first + WORKER_SEEN_EVERY_MS);
    expect(beat).toMatchObject({ agents: [a, b].sort(), first_seen_at: busy.first_seen_at });
    // quiet for 90 s: gone, listed after those online; quiet for a day: not listed; for a
    // week: forgotten by retention
    await noteWorker(t.ctx, P, 'wl-quiet', [a], Date.now() - 2 * 60_000);
    const ids = (await list()).map((w) => w.id);
    expect(ids.at(-1)).toBe('wl-quiet');
    expect((await list()).find((w) => w.id === 'wl-quiet')?.online).toBe(false);
    await noteWorker(t.ctx, P, 'wl-gone', [a], Date.now() - 8 * 24 * 3_600_000);
    expect((await list()).some((w) => w.id === 'wl-gone')).toBe(false);
    await new Retention(t.ctx).runOnce();
    const rows = await t.ctx.db.kysely
      .selectFrom('workers')
      .select('id')
      .where('id', 'like', 'wl-%')
      .orderBy('id')
      .execute();
    expect(rows.map((r) => r.id)).toEqual(['wl-busy', 'wl-idle', 'wl-quiet']);
    // a worker holding many runs lists its oldest 20, and another's newer run is listed too
    const c = agentName('wl-c');
    for (let i = 0; i < 26; i++) await enqueueRun(t.ctx, P, c, {});
    expect((await claim([c], { worker_id: 'wl-many', max: 25 })).statusCode).toBe(200);
    expect((await claim([c], { worker_id: 'wl-one' })).statusCode).toBe(200);
    const after = await list();
    const many = after.find((w) => w.id === 'wl-many')!;
    expect(many.running).toBe(25);
    expect(many.running_runs).toHaveLength(20);
    expect(after.find((w) => w.id === 'wl-one')).toMatchObject({ running: 1 });
    expect(after.find((w) => w.id === 'wl-one')?.running_runs).toHaveLength(1);
    // a worker that says it stops leaves the list at once; a beat on its way does not bring
    // it back, its next claim does
    const stop = await t.request('DELETE', '/api/v1/workers/wl-idle');
    expect(stop.statusCode).toBe(204);
    expect((await t.request('DELETE', '/api/v1/workers/wl-idle')).statusCode).toBe(204);
    expect((await list()).some((w) => w.id === 'wl-idle')).toBe(false);
    await noteWorker(t.ctx, P, 'wl-idle', undefined);
    expect((await list()).some((w) => w.id === 'wl-idle')).toBe(false);
    expect((await claim([b], { worker_id: 'wl-idle' })).statusCode).toBe(204);
    expect((await list()).find((w) => w.id === 'wl-idle')?.agents).toEqual([b]);
  });

  it('ends a run as timed_out when its lease lapses, naming the worker', async () => {
    const agent = agentName('lapse');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 1000, worker_id: 'w-dead' });
    await sweepOnce(t.ctx);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('running');
    await sweepOnce(t.ctx, Date.now() + 1500);
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row.status).toBe('timed_out');
    const error = JSON.parse(row.error!) as { message: string; type: string };
    expect(error.type).toBe('LeaseExpired');
    expect(error.message).toMatch(
      /^lease expired at \S+: no heartbeat from worker w-dead renewed it \(last renewed \S+\)$/,
    );
    expect(row.ended_at).not.toBeNull();
  });

  it('gives a lease that lapsed while no server was up one more lease after the start', async () => {
    const agent = agentName('outage');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 1000, worker_id: 'w-away' });
    // the server comes back 5 s later: the lease lapsed while it was down
    const restart = { at: Date.now() + 5000, graceMs: 30_000 };
    await sweepOnce(t.ctx, restart.at + 1000, restart);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('running');
    // nobody came back within the grace: it ends as before
    await sweepOnce(t.ctx, restart.at + 30_001, restart);
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row.status).toBe('timed_out');
    expect(JSON.parse(row.error!)).toMatchObject({ type: 'LeaseExpired' });
  });

  it('gives a lease that lapsed while the database was away one more lease once it is back', async () => {
    const agent = agentName('db-away');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 1000, worker_id: 'w-db-away' });
    let clock = Date.now();
    const sweep = sweeper(t.ctx, () => clock);
    // the database goes away for 5 s: sweeps fail, as do the worker's heartbeats (503)
    const away = vi
      .spyOn(t.ctx.writer, 'transact')
      .mockRejectedValue(
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      );
    clock += 5000;
    await expect(sweep()).rejects.toThrow('ECONNREFUSED');
    away.mockRestore();
    // back: the lease lapsed while no heartbeat could be recorded, and waits one more lease
    clock += 1000;
    await sweep();
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('running');
    // no heartbeat came within it: it ends as before
    clock += 30_001;
    await sweep();
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row.status).toBe('timed_out');
    expect(JSON.parse(row.error!)).toMatchObject({ type: 'LeaseExpired' });
  });

  it('gives a lease that lapsed while heartbeats failed for the database one more lease once it is back', async () => {
    const agent = agentName('db-away-beat');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 2000, worker_id: 'w-beating' });
    let clock = Date.now();
    const sweep = sweeper(t.ctx, () => clock);
    await sweep();
    // the database goes away: the worker's heartbeat is answered 503; the sweeps in between
    // found nothing to end yet, so they did not fail
    const away = vi.spyOn(t.ctx.db.kysely, 'transaction').mockImplementation(
      () =>
        ({
          execute: () =>
            Promise.reject(
              Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
            ),
        }) as never,
    );
    // (a beat writes once half its lease is gone, or asking for a shorter one, as here)
    const beat = await t.request('POST', `/api/v1/runs/${run.id}/heartbeat`, {
      worker_id: 'w-beating',
      lease_ms: 1000,
    });
    expect(beat.statusCode).toBe(503);
    away.mockRestore();
    // back after the lease lapsed: it waits one more lease for the next heartbeat
    clock += 5000;
    await sweep();
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('running');
    clock += 30_001;
    await sweep();
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('timed_out');
  });

  it('sweeps as usual, within the grace after a start, what passed since the start and queued waits', async () => {
    const agent = agentName('after-start');
    await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms: 1000 });
    const fresh = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 1000, worker_id: 'w-new' });
    const waiting = await enqueueRun(t.ctx, P, agent, {});
    // started just now: the claimed run's lease lapses after the start, the queued run's
    // wait (its timeout_ms) too, and neither gets the grace
    await sweepOnce(t.ctx, Date.now() + 1500, { at: Date.now() - 1, graceMs: 30_000 });
    expect((await findRun(t.ctx.db, P, fresh.run.id))?.status).toBe('timed_out');
    // a queued run's wait that ran out before the start: nobody could renew it either
    const late = await enqueueRun(t.ctx, P, agent, {});
    await sweepOnce(t.ctx, Date.now() + 1500, { at: Date.now() + 1200, graceMs: 30_000 });
    for (const id of [waiting.run.id, late.run.id])
      expect((await findRun(t.ctx.db, P, id))?.status).toBe('timed_out');
  });

  it('ends a run as timed_out when it passes its agent timeout_ms', async () => {
    const agent = agentName('slow');
    await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms: 1000 });
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 600_000 });
    await sweepOnce(t.ctx, Date.now() + 2000);
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row.status).toBe('timed_out');
    expect(JSON.parse(row.error!)).toMatchObject({ type: 'Timeout' });
    expect(JSON.parse(row.error!).message).toMatch(/timed out after timeout_ms \(1000 ms\)/);
  });

  it('refuses to queue a run under the id of one deleted lately, whose worker may still end it', async () => {
    const agent = agentName('reused');
    const { run } = await enqueueRun(t.ctx, P, agent, { id: 'reused-id-1' });
    await claim([agent], { lease_ms: 600_000, worker_id: 'w-old' });
    expect((await t.request('DELETE', `/api/v1/runs/${run.id}`)).statusCode).toBe(204);
    const again = await t.request('POST', `/api/v1/agents/${agent}/runs`, { id: run.id });
    expect(again.statusCode).toBe(409);
    expect(json<{ error: { details: unknown[] } }>(again).error.details).toEqual([
      { field: 'body.id', message: 'the id of a run deleted less than a day ago' },
    ]);
    // so the old worker's late end still refers to nothing
    const end = await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.end', run: { id: run.id, status: 'failed' } }],
    });
    expect(end.statusCode).toBe(207);
    expect(await findRun(t.ctx.db, P, run.id)).toBeUndefined();
  });

  it('runs without a deadline when the agent lost its timeout_ms while the run was queued', async () => {
    const agent = agentName('untimed');
    await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms: 5000 });
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms: null });
    await claim([agent], { lease_ms: 600_000 });
    // before, the queued run's deadline stayed and it ended timed_out after "1938 ms"
    await sweepOnce(t.ctx, Date.now() + 10_000);
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row).toMatchObject({ status: 'running', deadline_at: null });
  });

  it('ends a stopped run cancelled, not timed_out, when its timeout passes during the grace period', async () => {
    const agent = agentName('stopped-slow');
    await t.request('PUT', `/api/v1/agents/${agent}`, { timeout_ms: 1000 });
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 600_000, worker_id: 'w-slow' });
    await cancelRun(t.ctx, P, run.id);
    // timed_out counted in the agent's fail rate a run the user had stopped
    await sweepOnce(t.ctx, Date.now() + 2000);
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row.status).toBe('cancelled');
    expect(JSON.parse(row.error!)).toEqual({
      type: 'Cancelled',
      message: 'stopped: its timeout_ms passed before its worker confirmed the stop',
    });
    // a Stop pressed after the timeout had passed (before the sweep came by) undoes nothing
    const late = (await findRun(t.ctx.db, P, run.id))!;
    const running = { ...late, status: 'running', ended_at: null, deadline_at: 1000 };
    expect(sweepVerdict({ ...running, cancel_requested_at: 5000 }, 6000, 600_000)).toMatchObject({
      status: 'timed_out',
    });
    expect(sweepVerdict({ ...running, cancel_requested_at: 900 }, 6000, 600_000)).toMatchObject({
      status: 'cancelled',
    });
  });

  it('forces cancelled after the grace period when the worker never confirms a Stop', async () => {
    const agent = agentName('deaf');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 600_000 });
    await cancelRun(t.ctx, P, run.id);
    await sweepOnce(t.ctx);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('running');
    await sweepOnce(t.ctx, Date.now() + 1000);
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(row.status).toBe('cancelled');
    expect(JSON.parse(row.error!).message).toMatch(
      /^stop forced after grace period \(500 ms\): its worker never confirmed$/,
    );

    // a run recorded without a worker has only the process that records it to confirm
    const recorded = await t.request('POST', '/api/v1/runs', { agent_id: agent });
    const id = json<Run>(recorded).id;
    await cancelRun(t.ctx, P, id);
    await sweepOnce(t.ctx, Date.now() + 1000);
    expect(JSON.parse((await findRun(t.ctx.db, P, id))!.error!).message).toBe(
      'stop forced after grace period (500 ms): the process running it never confirmed',
    );
  });

  it('never ends a stopped run before it started, when its clock ran ahead of the server', async () => {
    const agent = agentName('ahead');
    const startedAt = Date.now() + 10 * 60_000;
    const recorded = await t.request('POST', '/api/v1/runs', {
      agent_id: agent,
      started_at: startedAt,
    });
    const id = json<Run>(recorded).id;
    await cancelRun(t.ctx, P, id);
    await sweepOnce(t.ctx, Date.now() + 60_000);
    const row = (await findRun(t.ctx.db, P, id))!;
    expect(row.status).toBe('cancelled');
    expect(row.ended_at).toBeGreaterThanOrEqual(row.started_at!);
    expect(row.duration_ms).toBe(row.ended_at! - row.started_at!);
  });

  it('ends a stopped run cancelled, not timed_out, when its lease lapses before the grace period', async () => {
    const agent = agentName('stopped-dead');
    const { run } = await enqueueRun(t.ctx, P, agent, {});
    await claim([agent], { lease_ms: 1000, worker_id: 'w-gone' });
    await cancelRun(t.ctx, P, run.id);
    // the lease lapses within a grace period of 10 minutes
    const row = (await findRun(t.ctx.db, P, run.id))!;
    expect(sweepVerdict(row, row.lease_expires_at! + 1, 600_000)).toMatchObject({
      status: 'cancelled',
      error: {
        type: 'Cancelled',
        message: 'stopped: the lease of worker w-gone expired before it confirmed the stop',
      },
    });
    await sweepOnce(t.ctx, Date.now() + 1500);
    expect((await findRun(t.ctx.db, P, run.id))?.status).toBe('cancelled');
  });

  it('queues one schedule run per slot and, after downtime, one run for all missed slots', async () => {
    const agent = agentName('cron');
    await enqueueRun(t.ctx, P, agent, {}); // creates the agent
    const now = Date.now();
    await setSchedule(agent, '*/2 * * * * *', now - 60_000);
    await scheduleOnce(t.ctx, now);
    await scheduleOnce(t.ctx, now);
    const runs = await t.ctx.db.kysely
      .selectFrom('runs')
      .selectAll()
      .where('agent_id', '=', agent)
      .where('trigger', '=', 'schedule')
      .execute();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe('queued');
    const next = await nextSlotOf(agent);
    expect(next).toBe(nextSlot('*/2 * * * * *', 'UTC', now));
    expect(next!).toBeGreaterThan(now);
  });

  it('fires due slots however many stored schedules never fire', async () => {
    const now = Date.now();
    // schedules of 30 February, stored before they were refused: no next slot, ever
    const dead = Array.from({ length: 1001 }, (_, i) => ({
      ...newAgentRow(P, agentName(`dead-${i}`), 'dead', now),
      schedule_cron: '0 0 30 2 *',
      schedule_tz: 'UTC',
    }));
    for (let i = 0; i < dead.length; i += 200)
      await t.ctx.db.kysely
        .insertInto('agents')
        .values(dead.slice(i, i + 200))
        .execute();
    const agent = agentName('alive');
    await enqueueRun(t.ctx, P, agent, {});
    await setSchedule(agent, '* * * * * *', now - 500);
    try {
      // before: the 1,001 filled the pass's limit of 1,000, and no schedule fired at all
      expect(await scheduleOnce(t.ctx, now)).toBeGreaterThanOrEqual(1);
    } finally {
      await setSchedule(agent, null, null);
      await t.ctx.db.kysely
        .deleteFrom('agents')
        .where('project_id', '=', P)
        .where(
          'id',
          'in',
          dead.map((a) => a.id),
        )
        .execute();
    }
  });

  it('runs each slot a busy scheduler fell a few seconds behind on, skipping none', async () => {
    const agent = agentName('behind');
    await enqueueRun(t.ctx, P, agent, {});
    const now = Math.floor(Date.now() / 1000) * 1000;
    await setSchedule(agent, '* * * * * *', now - 3000);
    // a pass three seconds late: before, it went on from now, and two slots never ran; it
    // fires each in turn, so the lag does not carry on to the next pass either
    await scheduleOnce(t.ctx, now);
    const slots = await t.ctx.db.kysely
      .selectFrom('schedule_slots')
      .select('slot_at')
      .where('project_id', '=', P)
      .where('agent_id', '=', agent)
      .orderBy('slot_at')
      .execute();
    expect(slots.map((s) => s.slot_at)).toEqual([now - 3000, now - 2000, now - 1000, now]);
    expect(await nextSlotOf(agent)).toBe(now + 1000);
    await setSchedule(agent, null, null);
  });

  const scheduleRuns = (agent: string) =>
    t.ctx.db.kysely
      .selectFrom('runs')
      .select(['id', 'metadata'])
      .where('project_id', '=', P)
      .where('agent_id', '=', agent)
      .where('trigger', '=', 'schedule')
      .execute();
  const pause = async (agent: string, paused: boolean) => {
    const res = await t.request('PUT', `/api/v1/agents/${agent}`, { schedule: { paused } });
    expect(res.statusCode).toBe(200);
    return json<Agent>(res);
  };

  it('queues nothing for a paused schedule over many slots, and keeps its slot where it was', async () => {
    const agent = agentName('paused');
    await enqueueRun(t.ctx, P, agent, {});
    const now = Math.floor(Date.now() / 1000) * 1000;
    await setSchedule(agent, '* * * * * *', now - 500);
    await pause(agent, true);
    // a pass per second for ten seconds, and one a day later (other tests' agents may queue:
    // this agent's runs are counted)
    for (let s = 0; s <= 10; s++) {
      await scheduleOnce(t.ctx, now + s * 1000);
      expect(await scheduleRuns(agent)).toEqual([]);
    }
    await scheduleOnce(t.ctx, now + 86_400_000);
    expect(await scheduleRuns(agent)).toEqual([]);
    expect(await nextSlotOf(agent)).toBe(now - 500);
    await setSchedule(agent, null, null);
  });

  it('resumes from the next slot: the slots passed while paused never run, not even once', async () => {
    const agent = agentName('resumed');
    await enqueueRun(t.ctx, P, agent, {});
    const cron = '* * * * *';
    // a slot three minutes overdue: unpaused, a pass runs it once (downtime)
    await setSchedule(agent, cron, Date.now() - 180_000);
    await pause(agent, true);
    await scheduleOnce(t.ctx);
    expect(await scheduleRuns(agent)).toEqual([]);
    const before = Date.now();
    const resumed = await pause(agent, false);
    const next = Date.parse(resumed.next_run_at!);
    expect(next).toBe(nextSlot(cron, 'UTC', before));
    expect(await nextSlotOf(agent)).toBe(next);
    // before the next slot, nothing; at it, its one run
    await scheduleOnce(t.ctx, next - 1);
    expect(await scheduleRuns(agent)).toEqual([]);
    await scheduleOnce(t.ctx, next);
    const runs = await scheduleRuns(agent);
    expect(runs.map((r) => JSON.parse(r.metadata) as unknown)).toEqual([
      { schedule_slot: new Date(next).toISOString() },
    ]);
    await setSchedule(agent, null, null);
  });

  it('queues nothing for a schedule paused after the pass read it', async () => {
    const agent = agentName('paused-late');
    await enqueueRun(t.ctx, P, agent, {});
    const now = Date.now();
    await setSchedule(agent, '* * * * * *', now - 500);
    // the pass reads the due agents, then the schedule is paused (here or on another
    // instance) before its transaction
    const transact = t.ctx.writer.transact.bind(t.ctx.writer);
    t.ctx.writer.transact = async (fn) => {
      t.ctx.writer.transact = transact;
      await pause(agent, true);
      return transact(fn);
    };
    await scheduleOnce(t.ctx, now);
    expect(await scheduleRuns(agent)).toEqual([]);
    await setSchedule(agent, null, null);
  });

  it('queues nothing for an agent deleted or unscheduled after the pass read it', async () => {
    const agent = agentName('gone');
    await enqueueRun(t.ctx, P, agent, {});
    const now = Date.now();
    await setSchedule(agent, '* * * * * *', now - 500);
    // the pass reads the due agents, then the agent is deleted before its transaction
    const transact = t.ctx.writer.transact.bind(t.ctx.writer);
    t.ctx.writer.transact = async (fn) => {
      t.ctx.writer.transact = transact;
      expect((await t.request('DELETE', `/api/v1/agents/${agent}`)).statusCode).toBe(204);
      return transact(fn);
    };
    await scheduleOnce(t.ctx, now);
    // before, the pass queued the slot anyway, and that run brought the agent back
    expect((await t.request('GET', `/api/v1/agents/${agent}`)).statusCode).toBe(404);
    const runs = await t.ctx.db.kysely
      .selectFrom('runs')
      .select('id')
      .where('project_id', '=', P)
      .where('agent_id', '=', agent)
      .execute();
    expect(runs).toEqual([]);
  });
});

it('computes the next cron slot in the schedule timezone', () => {
  const after = Date.parse('2026-03-02T07:30:00.000Z');
  // 09:00 in Paris (UTC+1 in March before DST) is 08:00 UTC
  expect(new Date(nextSlot('0 9 * * *', 'Europe/Paris', after)!).toISOString()).toBe(
    '2026-03-02T08:00:00.000Z',
  );
  expect(new Date(nextSlot('0 9 * * *', 'UTC', after)!).toISOString()).toBe(
    '2026-03-02T09:00:00.000Z',
  );
});

it("says when a recorded run's lease ran out, not a 'since' that is its start", () => {
  const start = Date.parse('2026-03-01T10:00:00.000Z');
  const run = {
    ...newRunRow('p', 'r', start),
    status: 'running',
    started_at: start,
    lease_expires_at: start + 3_600_000,
  };
  const verdict = sweepVerdict(run, start + 3_600_001, 30_000);
  expect(verdict?.error?.message).toBe(
    'lease expired at 2026-03-01T11:00:00.000Z: no event or heartbeat from the agent renewed it',
  );
});
