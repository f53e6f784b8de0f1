import { spawn, type ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Agent, Run } from '@runlog/core';
import type { ServerConfigInput } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import type { DialectName } from '../src/db/database.js';
import type { AgentRow } from '../src/db/schema.js';
import { exportedSettings } from '../src/export/settings.js';
import { importRuns } from '../src/export/import.js';
import { startTestServer, TEST_ADMIN_KEY } from './harness.js';

export const FIXTURES = fileURLToPath(new URL('../../sdk/test/fixtures/', import.meta.url));

export interface Child {
  proc: ChildProcess;
  /** Resolves with the first stdout line matching `re`. */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
}

/** Runs a TypeScript fixture in a real child process (node + tsx). */
export function spawnFixture(name: string, args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURES + name, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUNLOG_URL: '', RUNLOG_API_KEY: '' },
  });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) {
      if (w.re.test(l)) w.resolve(l);
      else waiters.push(w);
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return {
    proc,
    exited,
    line: (re, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const found = lines.find((l) => re.test(l));
        if (found) return resolve(found);
        const t = setTimeout(
          () => reject(new Error(`no line ${re} from ${name}; stderr: ${stderr.slice(-2000)}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      }),
  };
}

/**
 * Server instances on one fresh test database for a suite (started before it, closed after):
 * one on SQLite, two on PostgreSQL, where a setting must hold over every instance. `call`
 * sends a request with the admin key to the `i`-th instance (round the list) and answers its
 * status and parsed body.
 */
export function instancesOnOneDatabase(
  dialect: DialectName,
  config: Partial<ServerConfigInput> = {},
): {
  server(i?: number): RunningServer;
  call(
    method: string,
    path: string,
    body?: unknown,
    i?: number,
  ): Promise<{ status: number; body: unknown }>;
} {
  /** The first one owns the database: it closes last and drops it. */
  const servers: RunningServer[] = [];
  beforeAll(async () => {
    const first = await startTestServer(dialect, config);
    servers.push(first);
    // the same configuration, so the same database
    if (dialect === 'postgres') servers.push(await startServer(first.ctx.config));
  });
  afterAll(async () => {
    for (const s of servers.reverse()) await s.close();
  });
  const server = (i = 0) => servers[i % servers.length]!;
  return {
    server,
    call: async (method, path, body, i = 0) => {
      const res = await fetch(`${server(i).url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${TEST_ADMIN_KEY}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as unknown };
    },
  };
}

/** What `instancesOnOneDatabase` answers `call` with. */
type Call = ReturnType<typeof instancesOnOneDatabase>['call'];

/**
 * The agent requests the control suites make through `call`, each asserting its answer: `put`
 * an agent's settings (200), `enqueue` a run of it (202, its id), `claim` up to ten of the
 * agents' runs at once without waiting (their ids; none on a 204), each on instance `i`, and
 * `spend`: record a run of the agent started at `startedAt` whose one step cost `usd` (its id).
 */
export function agentRequests(call: Call) {
  let spent = 0;
  return {
    spend: async (agent: string, usd: number, startedAt = Date.now()): Promise<string> => {
      const id = `spent-${spent++}-${Date.now().toString(36)}`;
      const res = await call('POST', '/api/v1/ingest', {
        events: [
          { type: 'run.start', run: { id, agent_id: agent, started_at: startedAt } },
          {
            type: 'step.end',
            step: { id: 's', run_id: id, type: 'llm', cost_usd: usd, started_at: startedAt },
          },
          { type: 'run.end', run: { id, status: 'succeeded', ended_at: startedAt + 1 } },
        ],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return id;
    },
    put: async (agent: string, body: unknown, i = 0): Promise<Agent> => {
      const res = await call('PUT', `/api/v1/agents/${agent}`, body, i);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as Agent;
    },
    enqueue: async (agent: string): Promise<string> => {
      const res = await call('POST', `/api/v1/agents/${agent}/runs`, { input: {} });
      expect(res.status).toBe(202);
      return (res.body as Run).id;
    },
    claim: async (agents: string[], i = 0): Promise<string[]> => {
      const res = await call(
        'POST',
        '/api/v1/workers/claim',
        { agents, max: 10, worker_id: `w-${i}`, wait_ms: 0 },
        i,
      );
      expect([200, 204], JSON.stringify(res.body)).toContain(res.status);
      return res.status === 204 ? [] : (res.body as { runs: Run[] }).runs.map((r) => r.id);
    },
  };
}

/** A project's agents for Prometheus (`GET /api/v1/metrics`), read with the admin key. */
export async function agentMetricsText(server: RunningServer): Promise<string> {
  const res = await fetch(`${server.url}/api/v1/metrics`, {
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
  });
  return res.text();
}

/**
 * The stored row of `agentId` once the settings export of `default` is imported into a new
 * project `into`: what an export and an import carry of it.
 */
export async function reimportedAgent(
  server: RunningServer,
  agentId: string,
  into: string,
): Promise<AgentRow> {
  const { db } = server.ctx;
  const { lines } = await exportedSettings(db, 'default', agentId);
  await importRuns(db, Readable.from([lines]), { projectId: into });
  return db.kysely
    .selectFrom('agents')
    .selectAll()
    .where('project_id', '=', into)
    .where('id', '=', agentId)
    .executeTakeFirstOrThrow();
}
