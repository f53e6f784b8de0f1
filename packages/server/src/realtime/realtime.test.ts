import type { Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PROJECT_HEADER, type Run, type Step } from '@runlog/core';
import {
  describeEachDb,
  PG_BASE_URL,
  pgIt,
  startTestServer,
  TEST_ADMIN_KEY,
  waitFor,
} from '../../test/harness.js';
import pg from 'pg';
import { startServer } from '../server.js';
import { channelName, hubBridgeOf } from './pg-bridge.js';
import { realtimeServer } from './realtime.routes.js';
import type { HubEvent } from './hub.js';
import type { RealtimeServer } from './ws-server.js';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

interface ServerMsg {
  type: string;
  topic?: string;
  topics?: string[];
  data?: Record<string, unknown>;
  error?: { code: string; message: string; details?: unknown[] };
}

/** A connected client that keeps every message it receives. */
class Client {
  readonly messages: ServerMsg[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number } | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as ServerMsg);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = { code };
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits for the first message (from index `from`) matching `pred`. */
  async next(pred: (m: ServerMsg) => boolean, from = 0, timeoutMs = 10_000): Promise<ServerMsg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching message; got ${JSON.stringify(this.messages).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 15_000): Promise<{ code: number }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  async subscribe(topics: string[]): Promise<void> {
    const from = this.messages.length;
    this.send({ type: 'subscribe', topics });
    await this.next((m) => m.type === 'subscribed', from);
  }

  get socket(): Socket {
    // ws keeps its TCP socket private; pausing it is how a test plays a client that stops reading
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  close(): void {
    this.ws.terminate();
  }
}

function wsUrl(server: TestServer): string {
  return `${server.url.replace(/^http/, 'ws')}/api/v1/ws`;
}

/** Opens a WebSocket; rejects with the HTTP status when the upgrade is refused. */
function connect(
  server: TestServer,
  opts: { key?: string; cookie?: string; path?: string; origin?: string; project?: string } = {},
): Promise<Client> {
  const headers: Record<string, string> = {};
  if (opts.project) headers[PROJECT_HEADER] = opts.project;
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin) headers.origin = opts.origin;
  const url = opts.path ? `${server.url.replace(/^http/, 'ws')}${opts.path}` : wsUrl(server);
  const ws = new WebSocket(url, { headers });
  const client = new Client(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        reject(
          Object.assign(new Error('refused'), {
            status: res.statusCode,
            body,
            headers: res.headers,
          }),
        ),
      );
    });
    ws.once('error', reject);
  });
}

async function api(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
  key: string = server.adminKey,
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text ? (JSON.parse(text) as unknown) : undefined,
    headers: res.headers,
  };
}

async function ingest(server: TestServer, events: unknown[], key?: string): Promise<void> {
  const res = await api(server, 'POST', '/api/v1/ingest', { events }, key);
  expect(res.status).toBe(200);
}

async function metric(server: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

let seq = 0;
function uid(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

const runOf = (m: ServerMsg) => m.data as unknown as Run;
const stepOf = (m: ServerMsg) => m.data as unknown as Step;

describeEachDb('realtime WebSocket', (dialect) => {
  let server: TestServer;
  let rt: RealtimeServer;
  const clients: Client[] = [];

  async function open(opts: Parameters<typeof connect>[1]): Promise<Client> {
    const c = await connect(server, opts);
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    server = await startTestServer(dialect);
    rt = realtimeServer(server.ctx)!;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
  });

  it('sends run_update to agent:<id> subscribers when a run starts and again when it ends', async () => {
    const agent = uid('agent');
    const runId = uid('run');
    const c = await open({ key: server.adminKey });
    await c.subscribe([`agent:${agent}`]);

    await ingest(server, [{ type: 'run.start', run: { id: runId, agent_id: agent } }]);
    const started = await c.next((m) => m.type === 'run_update' && runOf(m).id === runId);
    expect(started.topic).toBe(`agent:${agent}`);
    expect(runOf(started).status).toBe('running');
    expect(runOf(started).agent_id).toBe(agent);

    const from = c.messages.indexOf(started) + 1;
    await ingest(server, [
      { type: 'run.end', run: { id: runId, status: 'succeeded', output: { ok: 1 } } },
    ]);
    const ended = await c.next((m) => m.type === 'run_update' && runOf(m).id === runId, from);
    expect(runOf(ended).status).toBe('succeeded');
    expect(runOf(ended).output).toEqual({ ok: 1 });
  });

  it('sends large fields to the list topics as previews and to run:<id> whole', async () => {
    const agent = uid('agent');
    const runId = uid('run');
    const c = await open({ key: server.adminKey });
    await c.subscribe([`agent:${agent}`, `run:${runId}`]);
    const input = 'i'.repeat(100_000);
    await ingest(server, [
      { type: 'run.start', run: { id: runId, agent_id: agent, input, metadata: { k: 1 } } },
    ]);
    const whole = await c.next((m) => m.type === 'run_update' && m.topic === `run:${runId}`);
    expect(runOf(whole).input).toBe(input);
    const listed = await c.next((m) => m.type === 'run_update' && m.topic === `agent:${agent}`);
    expect(runOf(listed).input).toEqual({
      __runlog_truncated__: true,
      original_size: 100_002,
      preview: `"${'i'.repeat(1999)}`,
    });
    // the small fields as they are
    expect(runOf(listed).metadata).toEqual({ k: 1 });
    expect(runOf(listed).status).toBe('running');
  });

  it('sends step_update to run:<id> subscribers', async () => {
    const runId = uid('run');
    const c = await open({ key: server.adminKey });
    await c.subscribe([`run:${runId}`]);
    await ingest(server, [
      { type: 'run.start', run: { id: runId, agent_id: uid('agent') } },
      { type: 'step.start', step: { id: 's1', run_id: runId, type: 'llm', name: 'plan' } },
    ]);
    const step = await c.next((m) => m.type === 'step_update');
    expect(step.topic).toBe(`run:${runId}`);
    expect(stepOf(step)).toMatchObject({
      id: 's1',
      run_id: runId,
      status: 'running',
      name: 'plan',
    });
    await ingest(server, [
      { type: 'step.end', step: { id: 's1', run_id: runId, status: 'succeeded', output: 'done' } },
    ]);
    const ended = await c.next(
      (m) => m.type === 'step_update' && stepOf(m).status === 'succeeded',
      c.messages.indexOf(step) + 1,
    );
    expect(stepOf(ended).output).toBe('done');
    const run = await c.next((m) => m.type === 'run_update');
    expect(run.topic).toBe(`run:${runId}`);
  });

  it('tells the subscribers of a deleted run, its agent and `runs` that it is gone', async () => {
    const runId = uid('run');
    const agent = uid('agent');
    const c = await open({ key: server.adminKey });
    await c.subscribe(['runs', `agent:${agent}`, `run:${runId}`]);
    await ingest(server, [{ type: 'run.start', run: { id: runId, agent_id: agent } }]);
    await c.next((m) => m.type === 'run_update' && m.topic === `run:${runId}`);
    const from = c.messages.length;
    expect((await api(server, 'DELETE', `/api/v1/runs/${runId}`)).status).toBe(204);
    // before, nothing was sent, and dashboards showed the run until they were reloaded
    for (const topic of ['runs', `agent:${agent}`, `run:${runId}`]) {
      const gone = await c.next((m) => m.type === 'run_deleted' && m.topic === topic, from);
      expect(gone).toMatchObject({ data: { id: runId, agent_id: agent } });
    }
    c.close();
  });

  it('sends agent_update to `agents` and agent:<id> subscribers when its settings change, and agent_deleted', async () => {
    const agent = uid('agent');
    const c = await open({ key: server.adminKey });
    const runsOnly = await open({ key: server.adminKey });
    await c.subscribe(['agents', `agent:${agent}`]);
    await runsOnly.subscribe(['runs']);
    const put = await api(server, 'PUT', `/api/v1/agents/${agent}`, {
      max_concurrency: 2,
      retry: { max_attempts: 3 },
    });
    expect(put.status).toBe(200);
    for (const topic of ['agents', `agent:${agent}`]) {
      const update = await c.next((m) => m.type === 'agent_update' && m.topic === topic);
      // the agent as GET /agents/:id has it
      expect(update.data).toMatchObject({ id: agent, max_concurrency: 2 });
      expect(update.data).toEqual(put.json);
    }
    // a setting changed again: the newest state follows
    const from = c.messages.length;
    await api(server, 'PUT', `/api/v1/agents/${agent}`, { schedule: { cron: '0 9 * * *' } });
    const paused = await c.next((m) => m.type === 'agent_update' && m.topic === 'agents', from);
    expect(paused.data).toMatchObject({ schedule: { cron: '0 9 * * *', paused: false } });
    const gone = c.messages.length;
    expect((await api(server, 'DELETE', `/api/v1/agents/${agent}`)).status).toBe(204);
    for (const topic of ['agents', `agent:${agent}`]) {
      const deleted = await c.next((m) => m.type === 'agent_deleted' && m.topic === topic, gone);
      expect(deleted.data).toEqual({ id: agent });
    }
    // `runs` carries runs only
    await ingest(server, [{ type: 'run.start', run: { id: uid('run'), agent_id: agent } }]);
    await runsOnly.next((m) => m.type === 'run_update');
    expect(runsOnly.messages.some((m) => m.type.startsWith('agent_'))).toBe(false);
  });

  it('sends every run of the project to `runs` subscribers, and nothing to another project', async () => {
    const created = await api(server, 'POST', '/api/v1/projects', { name: uid('other') });
    expect(created.status).toBe(201);
    const otherKey = (created.json as { admin_key: { key: string } }).admin_key.key;

    const mine = await open({ key: server.adminKey });
    const theirs = await open({ key: otherKey });
    const agentA = uid('a');
    const agentB = uid('b');
    await mine.subscribe(['runs']);
    // same topic names in the other project: still nothing of ours may reach them
    await theirs.subscribe(['runs', `agent:${agentA}`]);

    const r1 = uid('run');
    const r2 = uid('run');
    await ingest(server, [
      { type: 'run.start', run: { id: r1, agent_id: agentA } },
      { type: 'run.start', run: { id: r2, agent_id: agentB } },
    ]);
    await mine.next((m) => m.type === 'run_update' && runOf(m).id === r1);
    await mine.next((m) => m.type === 'run_update' && runOf(m).id === r2);

    // a run in their project, sent after ours: once both its copies arrived (in whatever TCP
    // reads), ours would have arrived before them
    const theirRun = uid('run');
    await ingest(
      server,
      [{ type: 'run.start', run: { id: theirRun, agent_id: agentA } }],
      otherKey,
    );
    for (const topic of ['runs', `agent:${agentA}`]) {
      await theirs.next((m) => m.type === 'run_update' && m.topic === topic);
    }
    const seen = theirs.messages.filter((m) => m.type === 'run_update').map((m) => runOf(m).id);
    expect(seen).toEqual([theirRun, theirRun]);
    expect(mine.messages.some((m) => m.type === 'run_update' && runOf(m).id === theirRun)).toBe(
      false,
    );
  });

  it('stops sending a topic after unsubscribe', async () => {
    const agent = uid('agent');
    const c = await open({ key: server.adminKey });
    await c.subscribe([`agent:${agent}`, 'runs']);
    const from = c.messages.length;
    c.send({ type: 'unsubscribe', topics: [`agent:${agent}`] });
    const ack = await c.next((m) => m.type === 'unsubscribed', from);
    expect(ack.topics).toEqual([`agent:${agent}`]);
    const runId = uid('run');
    await ingest(server, [{ type: 'run.start', run: { id: runId, agent_id: agent } }]);
    await c.next((m) => m.type === 'run_update' && m.topic === 'runs' && runOf(m).id === runId);
    // the `runs` copy is sent after the agent copy would have been
    expect(c.messages.filter((m) => m.topic === `agent:${agent}`)).toEqual([]);
  });

  it('refuses the upgrade with 401 without a valid key', async () => {
    await expect(connect(server, {})).rejects.toMatchObject({ status: 401 });
    const err = (await connect(server, { key: 'rl_not_a_key_000000000000000000000000' }).catch(
      (e: unknown) => e,
    )) as { status: number; body: string };
    expect(err.status).toBe(401);
    expect(JSON.parse(err.body)).toMatchObject({ error: { code: 'unauthorized' } });
  });

  it('answers an upgrade on another path with 404 and a plain GET /api/v1/ws with 400', async () => {
    await expect(
      connect(server, { key: server.adminKey, path: '/api/v1/nope' }),
    ).rejects.toMatchObject({
      status: 404,
    });
    const res = await api(server, 'GET', '/api/v1/ws');
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: { code: 'invalid_input' } });
  });

  it('accepts the dashboard session cookie', async () => {
    const login = await fetch(`${server.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: server.adminKey }),
    });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(cookie).toMatch(/^runlog_session=/);
    const c = await open({ cookie });
    await c.subscribe(['runs']);
    const runId = uid('run');
    await ingest(server, [{ type: 'run.start', run: { id: runId, agent_id: 'cookie-agent' } }]);
    const got = await c.next((m) => m.type === 'run_update');
    expect(runOf(got).id).toBe(runId);
    await expect(connect(server, { cookie: 'runlog_session=forged' })).rejects.toMatchObject({
      status: 401,
    });
    // the dashboard's own origin may use the cookie; a page of another origin may not
    const own = await open({ cookie, origin: server.url });
    own.close();
    await expect(connect(server, { cookie, origin: 'http://127.0.0.1:1' })).rejects.toMatchObject({
      status: 401,
    });
    // a key is its own proof, whatever page opens the socket
    const keyed = await open({ key: server.adminKey, origin: 'http://elsewhere.example' });
    keyed.close();
  });

  it('refuses a socket naming another project than its session is for (?project=)', async () => {
    const login = await fetch(`${server.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: server.adminKey }),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    // a dashboard tab still showing another project, after a login here in another tab
    await expect(
      connect(server, { cookie, path: '/api/v1/ws?project=another-project' }),
    ).rejects.toMatchObject({ status: 401 });
    await expect(
      connect(server, { key: server.adminKey, path: '/api/v1/ws?project=another-project' }),
    ).rejects.toMatchObject({ status: 401 });
    const own = await open({ cookie, path: '/api/v1/ws?project=default' });
    await own.subscribe(['runs']);
    const runId = uid('run');
    await ingest(server, [{ type: 'run.start', run: { id: runId, agent_id: 'tab-agent' } }]);
    expect(runOf(await own.next((m) => m.type === 'run_update')).id).toBe(runId);
    own.close();
  });

  it('refuses a socket whose X-Runlog-Project names another project (409), as openapi.json says', async () => {
    const refused = await connect(server, {
      key: server.adminKey,
      project: 'another-project',
    }).then(
      (c) => {
        c.close();
        return { status: 101, body: '' };
      },
      (err: { status: number; body: string }) => err,
    );
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.body)).toMatchObject({
      error: { code: 'conflict', details: [{ field: `headers.${PROJECT_HEADER}` }] },
    });
    const own = await open({ key: server.adminKey, project: 'default' });
    own.close();
    // the description names what the upgrade reads and answers: `?project=`, and 101, not 200
    const doc = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<
        string,
        { get: { parameters: { name: string; in: string }[]; responses: object } }
      >;
    };
    const ws = doc.paths['/api/v1/ws']!.get;
    expect(ws.parameters).toContainEqual(expect.objectContaining({ name: 'project', in: 'query' }));
    expect(ws.responses).toHaveProperty('101');
    expect(ws.responses).toHaveProperty('409');
    expect(ws.responses).not.toHaveProperty('200');
  });

  it('closes connections whose key is revoked or whose session ends, and keeps the others', async () => {
    const created = await api(server, 'POST', '/api/v1/keys', { scope: 'read', name: 'ws-revoke' });
    expect(created.status).toBe(201);
    const { id, key } = created.json as { id: string; key: string };
    const withKey = await open({ key });
    const withAdmin = await open({ key: server.adminKey });
    const login = await fetch(`${server.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: server.adminKey }),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const withSession = await open({ cookie });

    expect((await api(server, 'DELETE', `/api/v1/keys/${id}`)).status).toBe(200);
    expect((await withKey.waitClosed(5_000)).code).toBe(1008);
    const logout = await fetch(`${server.url}/api/v1/session`, {
      method: 'DELETE',
      headers: { cookie },
    });
    expect(logout.status).toBe(204);
    expect((await withSession.waitClosed(5_000)).code).toBe(1008);

    // the admin key's connection is untouched and still answers
    await rt.recheck();
    const from = withAdmin.messages.length;
    withAdmin.send({ type: 'ping' });
    await withAdmin.next((m) => m.type === 'pong', from);
    expect(withAdmin.closed).toBeUndefined();
  });

  it('answers bad frames with an error naming the field and keeps the socket usable', async () => {
    const c = await open({ key: server.adminKey });
    c.send('not json{');
    const e1 = await c.next((m) => m.type === 'error');
    expect(e1.error).toMatchObject({ code: 'invalid_input' });
    expect(e1.error?.message).toMatch(/JSON/);
    // every error carries its details, as HTTP error bodies do: the field, and what is wrong
    // with it (not the field named twice, "message: message: ...")
    expect(e1.error?.message).toBe('message: not valid JSON');
    expect(e1.error?.details).toEqual([{ field: 'message', message: 'not valid JSON' }]);

    let from = c.messages.length;
    c.send({ type: 'dance' });
    const e2 = await c.next((m) => m.type === 'error', from);
    expect(e2.error?.message).toMatch(/^message\.type/);
    expect(e2.error?.details?.length).toBeGreaterThan(0);

    from = c.messages.length;
    c.send({ type: 'subscribe', topics: ['runs', 'bogus:topic'] });
    const e3 = await c.next((m) => m.type === 'error', from);
    expect(e3.error?.message).toMatch(/^message\.topics\.1/);

    from = c.messages.length;
    c.send({ type: 'subscribe', topics: [] });
    const e4 = await c.next((m) => m.type === 'error', from);
    expect(e4.error?.message).toMatch(/^message\.topics/);

    from = c.messages.length;
    c.send({ type: 'ping' });
    await c.next((m) => m.type === 'pong', from);
    // the rejected subscribe took nothing: `runs` arrives only after a good one
    const runId = uid('run');
    await c.subscribe([`run:${runId}`]);
    await ingest(server, [{ type: 'run.start', run: { id: runId, agent_id: 'frames' } }]);
    const got = await c.next((m) => m.type === 'run_update');
    expect(got.topic).toBe(`run:${runId}`);
    expect(c.messages.filter((m) => m.type === 'run_update' && m.topic === 'runs')).toEqual([]);
  });

  it('limits the connections one key holds open at once', async () => {
    const created = await api(server, 'POST', '/api/v1/keys', { scope: 'read', name: 'ws-many' });
    const { key } = created.json as { key: string };
    const saved = rt.limits.maxConnectionsPerKey;
    rt.limits.maxConnectionsPerKey = 2;
    try {
      const first = await open({ key });
      await open({ key });
      // before, one key opened them by the thousand, each with 1,000 topics and a backlog
      const err = (await connect(server, { key }).catch((e: unknown) => e)) as {
        status: number;
        body: string;
      };
      expect(err.status).toBe(429);
      expect(JSON.parse(err.body)).toMatchObject({
        error: { code: 'rate_limited', message: 'at most 2 open connections per key' },
      });
      // another key is not held back, and a closed connection frees its place
      const other = await api(server, 'POST', '/api/v1/keys', { scope: 'read', name: 'ws-other' });
      (await open({ key: (other.json as { key: string }).key })).close();
      first.close();
      await first.waitClosed();
      await waitFor(async () => {
        const c = await connect(server, { key }).catch(() => undefined);
        c?.close();
        return c !== undefined;
      }, 'a place to free up');
    } finally {
      rt.limits.maxConnectionsPerKey = saved;
    }
  });

  it('limits the topics of one connection', async () => {
    const c = await open({ key: server.adminKey });
    const saved = rt.limits.maxTopics;
    rt.limits.maxTopics = 3;
    try {
      await c.subscribe(['run:a', 'run:b']);
      const from = c.messages.length;
      c.send({ type: 'subscribe', topics: ['run:c', 'run:d'] });
      const err = await c.next((m) => m.type === 'error', from);
      expect(err.error?.message).toMatch(/at most 3 topics/);
      expect(err.error?.details).toEqual([
        { field: 'message.topics', message: expect.stringMatching(/^at most 3 topics/) },
      ]);
    } finally {
      rt.limits.maxTopics = saved;
    }
  });

  it('coalesces updates for a client that stops reading and ends with the final state', async () => {
    const runId = uid('run');
    const pad = 'x'.repeat(48 * 1024);
    const c = await open({ key: server.adminKey });
    await c.subscribe([`run:${runId}`]);
    await ingest(server, [
      { type: 'run.start', run: { id: runId, agent_id: 'slow', metadata: { n: 0 } } },
    ]);
    await c.next((m) => m.type === 'run_update');

    c.socket.pause();
    let n = 0;
    // write until the server holds updates back for this client, then some more
    await waitFor(
      async () => {
        n++;
        await ingest(server, [
          { type: 'run.update', run: { id: runId, metadata: { n }, output: { pad } } },
        ]);
        return rt.pendingCount > 0;
      },
      'the server to start coalescing',
      60_000,
    );
    for (let i = 0; i < 20; i++) {
      n++;
      await ingest(server, [
        { type: 'run.update', run: { id: runId, metadata: { n }, output: { pad } } },
      ]);
    }
    n++;
    await ingest(server, [
      {
        type: 'run.end',
        run: { id: runId, status: 'succeeded', metadata: { n }, output: { done: true } },
      },
    ]);
    const committed = n + 1; // the start and n later states

    c.socket.resume();
    await c.next((m) => m.type === 'run_update' && runOf(m).status === 'succeeded', 0, 20_000);
    await waitFor(() => rt.pendingCount === 0, 'the backlog to drain');
    const from = c.messages.length;
    c.send({ type: 'ping' });
    await c.next((m) => m.type === 'pong', from);

    const updates = c.messages.filter((m) => m.type === 'run_update').map(runOf);
    const ns = updates.map((r) => (r.metadata as { n: number }).n);
    expect(updates.length).toBeLessThan(committed);
    for (let i = 1; i < ns.length; i++) expect(ns[i]).toBeGreaterThan(ns[i - 1]!);
    const last = updates[updates.length - 1]!;
    expect(last.status).toBe('succeeded');
    expect(last.output).toEqual({ done: true });
    expect(ns[ns.length - 1]).toBe(n);
    expect(await metric(server, 'runlog_ws_updates_coalesced_total')).toBeGreaterThan(0);
  });

  it('drops a client that never reads once its backlog passes the bound', async () => {
    const saved = rt.limits.maxPending;
    rt.limits.maxPending = 40;
    try {
      const c = await open({ key: server.adminKey });
      await c.subscribe(['runs']);
      const before = await metric(server, 'runlog_ws_connections');
      const droppedBefore = await metric(server, 'runlog_ws_slow_clients_dropped_total');
      c.socket.pause();
      const pad = 'y'.repeat(48 * 1024);
      await waitFor(
        async () => {
          const events = Array.from({ length: 10 }, () => ({
            type: 'run.start',
            run: { id: uid('flood'), agent_id: 'flood', input: { pad } },
          }));
          await ingest(server, events);
          return (await metric(server, 'runlog_ws_connections')) < before;
        },
        'the slow client to be dropped',
        60_000,
      );
      expect(await metric(server, 'runlog_ws_slow_clients_dropped_total')).toBe(droppedBefore + 1);
      c.socket.resume();
      await c.waitClosed();
    } finally {
      rt.limits.maxPending = saved;
    }
  });

  it('drops a client whose backlog passes the byte bound, few as its updates are', async () => {
    const saved = rt.limits.maxPendingBytes;
    // each update carries a 200 KB input: before, only their count (10,000) was bounded, and
    // one paused client held gigabytes
    rt.limits.maxPendingBytes = 2 * 1024 * 1024;
    try {
      const c = await open({ key: server.adminKey });
      // run:<id>, which carries runs whole (the list topics carry large fields as previews)
      const ids = Array.from({ length: 200 }, () => uid('heavy'));
      await c.subscribe(ids.map((id) => `run:${id}`));
      const droppedBefore = await metric(server, 'runlog_ws_slow_clients_dropped_total');
      c.socket.pause();
      const pad = 'z'.repeat(200 * 1024);
      let sent = 0;
      await waitFor(
        async () => {
          const events = ids.slice(sent, sent + 5).map((id) => ({
            type: 'run.start',
            run: { id, agent_id: 'heavy', input: { pad } },
          }));
          await ingest(server, events);
          sent += events.length;
          return (await metric(server, 'runlog_ws_slow_clients_dropped_total')) > droppedBefore;
        },
        'the slow client to be dropped',
        60_000,
      );
      // far fewer than the count bound: the bytes decided
      expect(sent).toBeLessThan(rt.limits.maxPending);
      c.socket.resume();
      await c.waitClosed();
    } finally {
      rt.limits.maxPendingBytes = saved;
    }
  });

  it('drops a client that sends and never reads once the answers pile up', async () => {
    const saved = rt.limits.hardBufferBytes;
    rt.limits.hardBufferBytes = 1024 * 1024;
    try {
      const c = await open({ key: server.adminKey });
      c.socket.pause();
      // each subscribe is answered with its topics (about 130 KB here): before, answers were
      // written whatever waited, and a client sending without reading grew the server by GBs
      const topics = Array.from({ length: 1000 }, (_, i) => `run:${'t'.repeat(120)}${i}`);
      const frame = JSON.stringify({ type: 'subscribe', topics });
      const droppedBefore = await metric(server, 'runlog_ws_slow_clients_dropped_total');
      for (let i = 0; i < 400 && c.ws.readyState === WebSocket.OPEN; i++) {
        c.ws.send(frame);
        await new Promise((r) => setImmediate(r));
      }
      expect(await metric(server, 'runlog_ws_slow_clients_dropped_total')).toBe(droppedBefore + 1);
      c.socket.resume();
      await c.waitClosed();
    } finally {
      rt.limits.hardBufferBytes = saved;
    }
  });

  it('terminates a connection that does not answer the heartbeat ping and keeps one that does', async () => {
    const healthy = await open({ key: server.adminKey });
    const mute = new Client(
      new WebSocket(wsUrl(server), {
        headers: { authorization: `Bearer ${server.adminKey}` },
        autoPong: false,
      }),
    );
    clients.push(mute);
    await new Promise((resolve) => mute.ws.once('open', resolve));
    const pinged = new Promise((resolve) => healthy.ws.once('ping', resolve));
    rt.heartbeat();
    await pinged;
    // frames are handled in order: once our ping is answered, the server has had the pong
    const from = healthy.messages.length;
    healthy.send({ type: 'ping' });
    await healthy.next((m) => m.type === 'pong', from);
    rt.heartbeat();
    expect((await mute.waitClosed()).code).toBe(1006);
    const again = healthy.messages.length;
    healthy.send({ type: 'ping' });
    await healthy.next((m) => m.type === 'pong', again);
    expect(healthy.closed).toBeUndefined();
  });

  it('closes open sockets when the server shuts down', async () => {
    const other = await startTestServer(dialect);
    const c = await connect(other, { key: other.adminKey });
    await other.close();
    expect((await c.waitClosed()).code).toBe(1001);
  });
});

/** The backends LISTENing on a channel: one per server instance. */
async function listenerPids(admin: pg.Client, channel: string): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE query = $1 ORDER BY pid',
    [`LISTEN "${channel}"`],
  );
  return rows.map((r) => r.pid);
}

describeEachDb('realtime across server instances', (dialect) => {
  if (dialect !== 'postgres') {
    it.skip('needs PostgreSQL (LISTEN/NOTIFY)', () => {});
    return;
  }
  let a: TestServer;
  let b: TestServer | undefined;

  beforeAll(async () => {
    a = await startTestServer(dialect);
    // the second instance opens the first one's database URL: the same schema
    const running = await startServer({
      db: a.dbUrl,
      port: 0,
      host: '127.0.0.1',
      retentionDays: 30,
      adminKey: a.adminKey,
      logLevel: 'silent',
    });
    b = { ...running, adminKey: a.adminKey, dbUrl: a.dbUrl, drop: async () => {} };
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  /** The least wait of both instances before they listen again after a lost connection. */
  function holdReconnects(ms: number): void {
    for (const ctx of [a.ctx, b!.ctx]) hubBridgeOf(ctx)!.reconnectMinMs = ms;
  }

  it('delivers a run ingested through instance A to a subscriber on instance B', async () => {
    const c = await connect(b!, { key: a.adminKey });
    const agent = uid('bridged');
    const runId = uid('run');
    await c.subscribe([`agent:${agent}`, `run:${runId}`]);
    await ingest(a, [
      { type: 'run.start', run: { id: runId, agent_id: agent } },
      { type: 'step.start', step: { id: 's1', run_id: runId, type: 'tool', name: 'grep' } },
    ]);
    const started = await c.next(
      (m) => m.type === 'run_update' && m.topic === `agent:${agent}` && runOf(m).id === runId,
    );
    expect(runOf(started).status).toBe('running');
    const step = await c.next((m) => m.type === 'step_update');
    expect(stepOf(step)).toMatchObject({ id: 's1', run_id: runId, name: 'grep' });

    await ingest(a, [
      { type: 'run.end', run: { id: runId, status: 'failed', error: { message: 'boom' } } },
    ]);
    const ended = await c.next(
      (m) =>
        m.type === 'run_update' && m.topic === `agent:${agent}` && runOf(m).status === 'failed',
    );
    expect(runOf(ended).error).toMatchObject({ message: 'boom' });
    // instance A's own subscribers are served locally, not twice through the bridge
    const onA = await connect(a, { key: a.adminKey });
    await onA.subscribe([`run:${runId}`]);
    await ingest(a, [{ type: 'run.update', run: { id: runId, metadata: { late: 1 } } }]);
    await onA.next((m) => m.type === 'run_update');
    const sentinel = uid('run');
    await onA.subscribe([`run:${sentinel}`]);
    await ingest(a, [{ type: 'run.start', run: { id: sentinel, agent_id: agent } }]);
    await onA.next((m) => m.type === 'run_update' && runOf(m).id === sentinel);
    expect(
      onA.messages.filter((m) => m.type === 'run_update' && runOf(m).id === runId),
    ).toHaveLength(1);
    onA.close();
    c.close();
  });

  it('tells a subscriber on instance B of a run deleted through instance A', async () => {
    const c = await connect(b!, { key: a.adminKey });
    const runId = uid('run');
    await c.subscribe([`run:${runId}`]);
    await ingest(a, [{ type: 'run.start', run: { id: runId, agent_id: 'deleted-far' } }]);
    await c.next((m) => m.type === 'run_update');
    expect((await api(a, 'DELETE', `/api/v1/runs/${runId}`)).status).toBe(204);
    const gone = await c.next((m) => m.type === 'run_deleted');
    expect(gone).toMatchObject({
      topic: `run:${runId}`,
      data: { id: runId, agent_id: 'deleted-far' },
    });
    c.close();
  });

  it("tells a subscriber on instance B of an agent's settings changed and deleted through instance A", async () => {
    const agent = uid('agent');
    const c = await connect(b!, { key: a.adminKey });
    await c.subscribe(['agents']);
    expect((await api(a, 'PUT', `/api/v1/agents/${agent}`, { max_concurrency: 4 })).status).toBe(
      200,
    );
    const update = await c.next((m) => m.type === 'agent_update');
    expect(update).toMatchObject({ topic: 'agents', data: { id: agent, max_concurrency: 4 } });
    expect((await api(a, 'DELETE', `/api/v1/agents/${agent}`)).status).toBe(204);
    const gone = await c.next((m) => m.type === 'agent_deleted');
    expect(gone).toMatchObject({ topic: 'agents', data: { id: agent } });
    c.close();
  });

  it('ends on instance B at once a key revoked on instance A, for HTTP and WebSocket', async () => {
    const created = await api(a, 'POST', '/api/v1/keys', { scope: 'read', name: 'revoked-on-a' });
    const { id, key } = created.json as { id: string; key: string };
    // B has the key in its credential cache and a socket open with it
    expect((await api(b!, 'GET', '/api/v1/agents', undefined, key)).status).toBe(200);
    const onB = await connect(b!, { key });
    expect((await api(a, 'DELETE', `/api/v1/keys/${id}`)).status).toBe(200);
    // well before B's periodic recheck (15 s) or its cache lapsing (10 s)
    expect((await onB.waitClosed(5_000)).code).toBe(1008);
    expect((await api(b!, 'GET', '/api/v1/agents', undefined, key)).status).toBe(401);
  });

  it('lists again at its next claim on instance A a worker forgotten through instance B', async () => {
    const worker = uid('worker');
    const agent = uid('idle');
    const claim = () =>
      api(a, 'POST', '/api/v1/workers/claim', {
        agents: [agent],
        wait_ms: 0,
        worker_id: worker,
      });
    const listed = async (server: TestServer) =>
      ((await api(server, 'GET', '/api/v1/workers')).json as { workers: { id: string }[] }).workers
        .map((w) => w.id)
        .includes(worker);
    expect((await claim()).status).toBe(204);
    expect(await listed(b!)).toBe(true);
    // the worker's own stop, or the dashboard's, through the other instance
    expect((await api(b!, 'DELETE', `/api/v1/workers/${worker}`)).status).toBe(204);
    expect(await listed(a)).toBe(false);
    // it goes on asking through A: listed again, as the API says, well before A would write
    // its row again by itself (WORKER_SEEN_EVERY_MS, 15 s)
    await waitFor(
      async () => {
        expect((await claim()).status).toBe(204);
        return listed(b!);
      },
      'the worker listed again',
      5_000,
    );
  });

  it('prices steps recorded through instance B with a price changed on instance A at once', async () => {
    const model = uid('bridged-model');
    const runId = uid('run');
    const priced = async (stepId: string) => {
      await ingest(b!, [
        {
          type: 'step.end',
          step: { id: stepId, run_id: runId, type: 'llm', model, input_tokens: 1_000_000 },
        },
      ]);
      const steps = (await api(b!, 'GET', `/api/v1/runs/${runId}/steps`)).json as {
        steps: { id: string; cost_usd: number | null }[];
      };
      return steps.steps.find((s) => s.id === stepId)?.cost_usd;
    };
    const put = async (input: number) =>
      expect(
        (
          await api(a, 'PUT', `/api/v1/prices/${model}`, {
            input_per_mtok: input,
            output_per_mtok: 0,
          })
        ).status,
      ).toBe(200);
    await put(1);
    // B caches the project's prices on its first priced step
    await waitFor(async () => (await priced(uid('s'))) === 1, 'B to price with the first price');
    await put(100);
    // told over NOTIFY, not after B's cache lapses (30 s)
    await waitFor(
      async () => (await priced(uid('s'))) === 100,
      'B to price with the new price',
      5_000,
    );
  });

  it('writes deliveries on instance B for a webhook created on instance A at once', async () => {
    const agent = uid('hooked');
    const ended = async () => {
      const runId = uid('run');
      await ingest(b!, [
        { type: 'run.end', run: { id: runId, agent_id: agent, status: 'failed' } },
      ]);
      return runId;
    };
    // B caches that the project has no endpoint for this agent's runs
    await ended();
    const created = await api(a, 'POST', '/api/v1/webhooks', {
      url: 'http://127.0.0.1:9/unreachable',
      agent_ids: [agent],
    });
    expect(created.status).toBe(201);
    const hookId = (created.json as { id: string }).id;
    // told over NOTIFY, not after B's cache lapses (30 s)
    await waitFor(
      async () => {
        const runId = await ended();
        const list = (await api(a, 'GET', `/api/v1/webhooks/${hookId}/deliveries`)).json as {
          deliveries: { run_id: string }[];
        };
        return list.deliveries.some((d) => d.run_id === runId);
      },
      "B to write a delivery for A's new webhook",
      5_000,
    );
    expect((await api(a, 'DELETE', `/api/v1/webhooks/${hookId}`)).status).toBe(204);
  });

  it("reads another instance's change back only when a local listener wants it", async () => {
    const bridgeCounters = async () => ({
      skipped: await metric(b!, 'runlog_bridge_changes_skipped_total'),
      reads: await metric(b!, 'runlog_bridge_reads_total'),
      received: await metric(b!, 'runlog_bridge_events_received_total'),
    });
    // the sockets of the test before are closed: nothing on B listens
    await waitFor(
      async () => (await metric(b!, 'runlog_ws_connections')) === 0,
      'instance B to have no WebSocket client',
    );
    const start = await bridgeCounters();
    const agent = uid('unheard');
    const runId = uid('run');
    await ingest(a, [
      { type: 'run.start', run: { id: runId, agent_id: agent } },
      { type: 'step.start', step: { id: 's1', run_id: runId, type: 'tool', name: 'grep' } },
    ]);
    // B has dealt with the NOTIFY once it skipped both changes, or (wrongly) read them
    await waitFor(async () => {
      const now = await bridgeCounters();
      return now.skipped >= start.skipped + 2 || now.reads > start.reads;
    }, 'instance B to be told of the run and its step');
    expect(await bridgeCounters()).toMatchObject({ reads: start.reads, received: start.received });

    // an internal listener (as claim waiters are) gets what it wants read back, and only that
    const wanted = uid('wanted');
    const got: HubEvent[] = [];
    const unsubscribe = b!.ctx.hub.subscribe(
      (event) => got.push(event),
      (target) => target.kind === 'run' && target.agentId === wanted,
    );
    try {
      const ignored = uid('run');
      const mine = uid('run');
      await ingest(a, [{ type: 'run.start', run: { id: ignored, agent_id: agent } }]);
      await ingest(a, [{ type: 'run.start', run: { id: mine, agent_id: wanted } }]);
      await waitFor(() => got.length > 0, 'the wanted run on instance B');
      // B is told in commit order: `ignored` was passed over before `mine` was read
      expect(got.map((e) => [e.kind, e.kind === 'agent' ? e.agentId : e.runId])).toEqual([
        ['run', mine],
      ]);
      const after = await bridgeCounters();
      expect(after.received).toBe(start.received + 1);
      expect(after.reads).toBeGreaterThan(start.reads);
    } finally {
      unsubscribe();
    }

    // a WebSocket subscriber on B gets the first run's next change
    const c = await connect(b!, { key: a.adminKey });
    await c.subscribe([`agent:${agent}`]);
    await ingest(a, [{ type: 'run.end', run: { id: runId, status: 'succeeded' } }]);
    const ended = await c.next((m) => m.type === 'run_update' && runOf(m).id === runId);
    expect(runOf(ended).status).toBe('succeeded');

    // that subscriber's topics are all B wants: another agent's run is not read back
    const beforeOther = await bridgeCounters();
    await ingest(a, [{ type: 'run.start', run: { id: uid('run'), agent_id: uid('other') } }]);
    await waitFor(
      async () => (await bridgeCounters()).skipped > beforeOther.skipped,
      'instance B to pass over the other agent',
    );
    expect((await bridgeCounters()).reads).toBe(beforeOther.reads);
    c.close();

    // a claim waiting on B wants its agent's queued runs, and only those
    const worker = uid('worker-agent');
    const claim = api(b!, 'POST', '/api/v1/workers/claim', { agents: [worker], wait_ms: 20_000 });
    await waitFor(async () => {
      const before = await bridgeCounters();
      await api(a, 'POST', `/api/v1/agents/${uid('idle')}/runs`, {});
      return (await bridgeCounters()).skipped > before.skipped;
    }, 'instance B to pass over a run queued for another agent');
    const queued = await api(a, 'POST', `/api/v1/agents/${worker}/runs`, {});
    const claimed = await claim;
    expect(claimed.status).toBe(200);
    expect(claimed.json).toMatchObject({ id: (queued.json as { id: string }).id });
  });

  /**
   * Makes `change` (after `prepare`) while neither instance listens: both LISTEN connections
   * are ended and held off 1.5 s (100 ms by default, less than a loaded machine takes to
   * commit). A try counts only when the change was committed and announced before either
   * listened again; up to five tries. Answers what `prepare` gave for the try that counted.
   */
  async function changeWhileNotListening<T>(
    prepare: () => Promise<T>,
    change: (prepared: T) => Promise<unknown>,
  ): Promise<T> {
    const admin = new pg.Client({ connectionString: a.dbUrl.split('?')[0] });
    await admin.connect();
    const listeners = () => listenerPids(admin, channelName(a.ctx.db.pgSchema));
    holdReconnects(1_500);
    try {
      for (let round = 0; round < 5; round++) {
        const prepared = await prepare();
        await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [
          await listeners(),
        ]);
        await change(prepared);
        await new Promise((r) => setTimeout(r, 20));
        const during = await listeners();
        await waitFor(async () => (await listeners()).length === 2, 'both instances to listen');
        if (during.length === 0) return prepared;
      }
      throw new Error('never managed to make a change while both instances were not listening');
    } finally {
      holdReconnects(0);
      await admin.end();
    }
  }

  it('delivers what other instances changed while its LISTEN connection was down', async () => {
    const c = await connect(b!, { key: a.adminKey });
    const runId = await changeWhileNotListening(
      async () => {
        const id = uid('run');
        await c.subscribe([`run:${id}`]);
        return id;
      },
      (id) =>
        ingest(a, [
          { type: 'run.start', run: { id, agent_id: 'while-down' } },
          // steps too: before, only runs were caught up, and a watcher kept a step running
          { type: 'step.end', step: { id: 's1', run_id: id, status: 'failed' } },
        ]),
    );
    const got = await c.next((m) => m.type === 'run_update' && runOf(m).id === runId);
    expect(runOf(got).status).toBe('running');
    const step = await c.next((m) => m.type === 'step_update' && m.topic === `run:${runId}`);
    expect(step.data).toMatchObject({ id: 's1', status: 'failed' });
    c.close();
  });

  it("delivers an agent's settings changed while its LISTEN connection was down", async () => {
    const c = await connect(b!, { key: a.adminKey });
    await c.subscribe(['agents']);
    const agent = await changeWhileNotListening(
      async () => uid('agent'),
      (id) => api(a, 'PUT', `/api/v1/agents/${id}`, { max_concurrency: 7 }),
    );
    const got = await c.next((m) => m.type === 'agent_update' && m.data?.id === agent);
    expect(got.data).toMatchObject({ id: agent, max_concurrency: 7 });
    c.close();
  });

  it('delivers an agent deleted, with its runs, while its LISTEN connection was down', async () => {
    const c = await connect(b!, { key: a.adminKey });
    await c.subscribe(['agents']);
    const agent = await changeWhileNotListening(
      async () => {
        const id = uid('agent-gone');
        await ingest(a, [{ type: 'run.start', run: { id: uid('run'), agent_id: id } }]);
        return id;
      },
      async (id) => expect((await api(a, 'DELETE', `/api/v1/agents/${id}`)).status).toBe(204),
    );
    // before, B's Agents pages kept the agent until their next refresh
    const gone = await c.next((m) => m.type === 'agent_deleted' && m.data?.id === agent);
    expect(gone.topic).toBe('agents');
    c.close();
  });

  it('delivers a deletion other instances made while its LISTEN connection was down', async () => {
    const c = await connect(b!, { key: a.adminKey });
    const { agent, runId, from } = await changeWhileNotListening(
      async () => {
        const run = { agent: uid('deleted-while-down'), runId: uid('run') };
        await c.subscribe(['runs', `agent:${run.agent}`, `run:${run.runId}`]);
        await ingest(a, [{ type: 'run.start', run: { id: run.runId, agent_id: run.agent } }]);
        const from = c.messages.length;
        await c.next((m) => m.type === 'run_update' && m.topic === `run:${run.runId}`);
        return { ...run, from };
      },
      async ({ runId }) =>
        expect((await api(a, 'DELETE', `/api/v1/runs/${runId}`)).status).toBe(204),
    );
    // before, the deletion's NOTIFY was lost and B's subscribers kept the run for good
    for (const topic of ['runs', `agent:${agent}`, `run:${runId}`]) {
      const gone = await c.next(
        (m) => m.type === 'run_deleted' && m.topic === topic && m.data?.id === runId,
        from,
      );
      expect(gone.data).toEqual({ id: runId, agent_id: agent });
    }
    c.close();
  });

  it('announces what an instance commits while it shuts down to the other instances', async () => {
    const c = await connect(b!, { key: a.adminKey });
    const runId = uid('run');
    await c.subscribe([`run:${runId}`]);
    const third = await startServer({
      db: a.dbUrl,
      port: 0,
      host: '127.0.0.1',
      retentionDays: 30,
      adminKey: a.adminKey,
      logLevel: 'silent',
    });
    // a write still on its way when the shutdown begins (a rolling restart): it commits
    const closing = third.close();
    const refused = await third.ctx.writer.submit('default', [
      { type: 'run.start', run: { id: runId, agent_id: 'shutting-down' } },
    ]);
    await closing;
    expect(refused).toEqual([]);
    // before, the bridge stopped first and instance B never heard of the run
    const got = await c.next((m) => m.type === 'run_update' && runOf(m).id === runId);
    expect(runOf(got).status).toBe('running');
    c.close();
  });

  it('delivers a change whose read-back failed once the database answers again', async () => {
    const c = await connect(b!, { key: a.adminKey });
    const runId = uid('run');
    await c.subscribe([`run:${runId}`]);
    // instance B's reads fail for a moment while its LISTEN connection stays up
    const db = b!.ctx.db as { kysely: object };
    const real = db.kysely;
    db.kysely = new Proxy(real, {
      get: (target, prop) =>
        prop === 'selectFrom'
          ? () => {
              throw new Error('Connection terminated unexpectedly');
            }
          : Reflect.get(target, prop),
    });
    try {
      await ingest(a, [{ type: 'run.start', run: { id: runId, agent_id: 'read-failed' } }]);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      db.kysely = real;
    }
    // before, the failed read's updates were dropped and the run stayed unseen on B
    const got = await c.next((m) => m.type === 'run_update' && runOf(m).id === runId);
    expect(runOf(got).status).toBe('running');
    c.close();
  });

  it('listens again after its LISTEN connection is killed', async () => {
    const channel = channelName(a.ctx.db.pgSchema);
    const admin = new pg.Client({ connectionString: a.dbUrl.split('?')[0] });
    await admin.connect();
    try {
      const listeners = () => listenerPids(admin, channel);
      const before = await listeners();
      expect(before).toHaveLength(2); // instance A and instance B
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
      await waitFor(async () => {
        const now = await listeners();
        return now.length === 2 && now.every((pid) => !before.includes(pid));
      }, 'both instances to listen again');

      const c = await connect(b!, { key: a.adminKey });
      const runId = uid('run');
      await c.subscribe([`run:${runId}`]);
      await ingest(a, [{ type: 'run.start', run: { id: runId, agent_id: 'after-reconnect' } }]);
      const got = await c.next((m) => m.type === 'run_update');
      expect(runOf(got).id).toBe(runId);
      c.close();
    } finally {
      await admin.end();
    }
  });
});

pgIt(
  'refuses an upgrade with 503 and Retry-After while its database refuses connections',
  async () => {
    // a database of its own: it is closed to connections, as while PostgreSQL restarts
    const name = `rt_ws_closed_${Date.now().toString(36)}_${process.pid}`;
    const admin = new pg.Client({ connectionString: PG_BASE_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${name}"`);
      const url = new URL(PG_BASE_URL);
      url.pathname = `/${name}`;
      const running = await startServer({
        db: url.toString(),
        port: 0,
        host: '127.0.0.1',
        retentionDays: 30,
        adminKey: TEST_ADMIN_KEY,
        logLevel: 'silent',
      });
      const server: TestServer = {
        ...running,
        adminKey: TEST_ADMIN_KEY,
        dbUrl: url.toString(),
        drop: async () => {},
      };
      try {
        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        // a dashboard reconnecting: told to come back, as an HTTP request is, not a 500
        const refused = (await connect(server, { key: TEST_ADMIN_KEY }).catch(
          (e: unknown) => e,
        )) as { status: number; body: string; headers: Record<string, string> };
        expect(refused.status).toBe(503);
        expect(refused.headers['retry-after']).toBe('5');
        expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'unavailable' } });
        const http = await api(server, 'GET', '/api/v1/runs');
        expect(http.status).toBe(503);
        expect(http.headers.get('retry-after')).toBe('5');

        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
        const c = await connect(server, { key: TEST_ADMIN_KEY });
        c.close();
      } finally {
        await server.close();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  },
);
