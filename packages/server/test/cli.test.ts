import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli/main.js';
import type { CliIo } from '../src/cli/io.js';
import { PG_BASE_URL, describeEachDb, startTestServer, waitFor } from './harness.js';
import { watchBudgetsOnce } from '../src/control/budget-watch.js';
import { openDatabase } from '../src/db/database.js';
import { sql } from 'kysely';
import {
  localDate,
  type Agent,
  type Score,
  type ScoreList,
  type ThreadList,
  type ThreadSummary,
} from '@runlog/core';
import { T0, runCli, runLines, sampleEvents, sansRetention } from './cli-fixtures.js';

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
}

function capture(env: NodeJS.ProcessEnv = {}, signal?: AbortSignal): Captured {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  err.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  return {
    io: { stdout: out, stderr: err, env, ...(signal ? { signal } : {}) },
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

/** A port nothing listens on (taken and released at once). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describeEachDb('runlog CLI', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let env: NodeJS.ProcessEnv;
  let dir: string;

  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    runCli(args, { env: { ...env, ...extraEnv } });
  const ingest = async (events: unknown[]) => {
    const res = await fetch(`${server.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    server = await startTestServer(dialect, { background: false });
    env = { RUNLOG_URL: server.url, RUNLOG_API_KEY: server.adminKey, RUNLOG_DB: server.dbUrl };
    dir = mkdtempSync(join(tmpdir(), 'runlog-cli-'));
    await ingest(sampleEvents('c'));
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates: says the database is up to date, and fails with one line, exit 1', async () => {
    const ok = await cli(['migrate']);
    expect(ok).toMatchObject({ code: 0, stdout: 'the database is up to date\n' });
    const fresh = join(dir, 'fresh.db');
    const applied = await cli(['migrate', '--db', fresh]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(
      /^applied 0001_init, .*0022_agent_max_concurrency, 0023_agent_thread_concurrency, 0024_users_latest, 0025_agent_paused, 0026_agent_budget_24h, 0027_budget_webhooks\n$/,
    );
    // a mistyped PostgreSQL schema is an error for a command that only reads, not a new schema
    if (dialect === 'postgres') {
      const schema = `no_such_schema_${Date.now().toString(36)}`;
      const url = `${PG_BASE_URL}${PG_BASE_URL.includes('?') ? '&' : '?'}schema=${schema}`;
      const exported = await cli(['export', '--db', url, '-o', join(dir, 'none.jsonl')]);
      expect(exported).toMatchObject({
        code: 1,
        stderr: `runlog: no schema ${schema} in this database\n`,
      });
      const db = await openDatabase(PG_BASE_URL);
      try {
        const found = await sql<{
          n: number;
        }>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${schema}`.execute(
          db.kysely,
        );
        expect(found.rows[0]?.n).toBe(0);
      } finally {
        await db.close();
      }
    }
    // a database a newer Runlog migrated says so, not that a migration failed
    const sqlite = new Database(fresh);
    sqlite
      .prepare('INSERT INTO kysely_migration (name, timestamp) VALUES (?, ?)')
      .run('9999_from_the_future', new Date().toISOString());
    sqlite.close();
    const newer = await cli(['migrate', '--db', fresh]);
    expect(newer).toMatchObject({
      code: 1,
      stderr:
        'runlog: this database was migrated by a newer version of Runlog (migration 9999_from_the_future); run that version or a newer one\n',
    });
    const bad = await cli(['migrate', '--db', 'postgres://nobody@127.0.0.1:1/none']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^runlog: /);
    // with --json, the answer and the failure are JSON
    expect(JSON.parse((await cli(['migrate', '--json'])).stdout)).toEqual({ applied: [] });
    const badJson = await cli(['migrate', '--json', '--db', 'postgres://nobody@127.0.0.1:1/none']);
    expect(badJson.code).toBe(1);
    expect(JSON.parse(badJson.stderr)).toMatchObject({
      error: { message: expect.stringMatching(/database/), exit_code: 1 },
    });
    const missing = await cli(['runs', 'show', 'no-such-run', '--json']);
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { message: 'run no-such-run not found', exit_code: 1, status: 404, code: 'not_found' },
    });
    // a usage error too: a script asking for JSON parses whatever comes back
    const usage = await cli(['runs', 'list', '--limit', 'abc', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toMatchObject({
      error: { message: expect.stringMatching(/--limit/), exit_code: 2 },
    });
    const plain = await cli(['runs', 'list', '--limit', 'abc']);
    expect(plain.stderr).toMatch(/^runlog: .*--limit/);
    // a failure of the output itself (a full disk) is JSON too
    const full = capture(env);
    full.io.stdout = new Writable({
      write: (_chunk, _encoding, done) => done(new Error('ENOSPC: no space left on device')),
    });
    expect(await run(['export', '--json'], full.io)).toBe(1);
    expect(JSON.parse(full.stderr())).toEqual({
      error: { message: 'ENOSPC: no space left on device', exit_code: 1 },
    });
  });

  it('lists runs as an aligned table, newest first, and filters them', async () => {
    const all = await cli(['runs', 'list']);
    expect(all.code).toBe(0);
    const lines = all.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^ID\s+AGENT\s+STATUS\s+TRIGGER\s+STARTED\s+DURATION\s+STEPS\s+TOKENS\s+COST\s+ERROR$/,
    );
    expect(lines[1]).toMatch(/^c-run-11\s+writer\s+running\s/);
    expect(all.stdout).toContain('12 of 12 runs');
    // what each failed run failed with, on its line
    expect(all.stdout).toMatch(/^c-run-5\s+writer\s+failed\s.*\s\$\S+ {2}it broke$/m);
    // no run listed has an error: no column for one
    const ok = await cli(['runs', 'list', '--status', 'succeeded']);
    expect(ok.stdout.split('\n')[0]).toMatch(/\sCOST$/);
    // not a TTY: no colour codes
    expect(all.stdout).not.toContain('\u001b[');

    // nothing matched: said, and, for an agent the project does not know, that too
    expect(await cli(['runs', 'list', '--agent', 'writer', '--status', 'timed_out'])).toEqual({
      code: 0,
      stdout: 'no runs match\n',
      stderr: '',
    });
    expect(await cli(['runs', 'list', '--agent', 'wirter'])).toEqual({
      code: 0,
      stdout:
        'no runs match; no agent wirter in this project (runlog agents list shows the agents there are)\n',
      stderr: '',
    });
    // --json keeps its shape: an empty list
    expect(
      JSON.parse((await cli(['runs', 'list', '--agent', 'wirter', '--json'])).stdout),
    ).toMatchObject({
      runs: [],
      total: 0,
    });

    const failed = await cli(['runs', 'list', '--agent', 'writer', '--status', 'failed', '--json']);
    const body = JSON.parse(failed.stdout) as { runs: { id: string }[]; total: number };
    expect(body.runs.map((r) => r.id)).toEqual(['c-run-5', 'c-run-1']);
    expect(body.total).toBe(2);

    const limited = JSON.parse((await cli(['runs', 'list', '--limit', '2', '--json'])).stdout) as {
      runs: unknown[];
    };
    expect(limited.runs).toHaveLength(2);

    // page by page: the footer names the cursor of the next page, which keeps the filters
    const first = await cli(['runs', 'list', '--agent', 'writer', '--limit', '2']);
    const cursor = /^2 of \d+ runs; the next page: --cursor (\S+)$/m.exec(first.stdout)?.[1];
    expect(cursor, first.stdout).toBeDefined();
    const seen = first.stdout.split('\n').slice(1, 3);
    const next = await cli([
      'runs',
      'list',
      '--agent',
      'writer',
      '--limit',
      '2',
      '--cursor',
      cursor!,
    ]);
    expect(next.code, next.stderr).toBe(0);
    const page2 = next.stdout.split('\n').slice(1, 3);
    expect(page2.every((l) => /^c-run-\d+\s+writer\s/.test(l))).toBe(true);
    expect(page2.some((l) => seen.includes(l))).toBe(false);
    // a cursor the server does not take is the flag's bad usage (exit 2), as in every list
    for (const list of ['runs', 'threads', 'users']) {
      const bad = await cli([list, 'list', '--cursor', 'garbage']);
      expect(bad, list).toMatchObject({
        code: 2,
        stderr: 'runlog: --cursor: not a cursor this API returned\n',
      });
    }
  });

  it('filters runs by source, user, thread, tag, parent, retry, text and time', async () => {
    const at = Date.parse('2026-02-01T10:00:00Z');
    await ingest([
      {
        type: 'run.start',
        run: {
          id: 'cf-root',
          agent_id: 'cf-support',
          source: 'zapier',
          user_id: 'u-cf',
          thread_id: 't-cf',
          tags: ['vip'],
          metadata: { env: 'prod', pr: 42, 'a=b': 'x=y' },
          input: { ask: 'needle in the input' },
          started_at: at,
        },
      },
      {
        type: 'run.start',
        run: {
          id: 'cf-child',
          agent_id: 'cf-researcher',
          parent_run_id: 'cf-root',
          started_at: at + 1,
        },
      },
      {
        type: 'run.end',
        run: { id: 'cf-again', agent_id: 'cf-support', retry_of: 'cf-root', started_at: at + 2 },
      },
    ]);
    const ids = async (...args: string[]) => {
      const res = await cli(['runs', 'list', ...args, '--json']);
      expect(res.code, res.stderr).toBe(0);
      return (JSON.parse(res.stdout) as { runs: { id: string }[] }).runs.map((r) => r.id);
    };
    expect(await ids('--source', 'zapier')).toEqual(['cf-root']);
    expect(await ids('--user', 'u-cf')).toEqual(['cf-root']);
    expect(await ids('--thread', 't-cf')).toEqual(['cf-root']);
    expect(await ids('--tag', 'vip')).toEqual(['cf-root']);
    // by metadata: each key with its value, a number as a number, the key up to the first =
    expect(await ids('--metadata', 'env=prod', '--metadata', 'pr=42.0')).toEqual(['cf-root']);
    expect(await ids('--metadata', 'env=prod', '--metadata', 'pr=43')).toEqual([]);
    expect(await ids('--metadata', 'a=b=x=y')).toEqual([]);
    for (const [args, message] of [
      [['--metadata', 'env'], '--metadata takes key=value (got "env")'],
      [['--metadata', 'env='], '--metadata takes key=value (got "env=")'],
      [['--metadata', 'env=a', '--metadata', 'env=b'], '--metadata: env given twice'],
      [['--metadata', `${'k'.repeat(201)}=v`], '--metadata: a key is 1 to 200 characters'],
      [['--metadata', '__proto__=v'], '__proto__ cannot be filtered on'],
    ] as const) {
      const bad = await cli(['runs', 'list', ...args]);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toContain(message);
    }
    expect(await ids('--parent', 'cf-root')).toEqual(['cf-child']);
    expect(await ids('--retry-of', 'cf-root')).toEqual(['cf-again']);
    expect(await ids('--search', 'NEEDLE')).toEqual(['cf-root']);
    // by a model a step names, exactly (quotes and colons included)
    await ingest([
      {
        type: 'step.end',
        step: { id: 'llm', run_id: 'cf-root', type: 'llm', model: 'we"ird:model', input_tokens: 3 },
      },
    ]);
    expect(await ids('--model', 'we"ird:model')).toEqual(['cf-root']);
    expect(await ids('--model', 'ird:model')).toEqual([]);
    // sorted: the longest first (runs not ended last), a wrong order named
    await ingest([
      { type: 'run.end', run: { id: 'cf-root', status: 'succeeded', ended_at: at + 5000 } },
      { type: 'run.end', run: { id: 'cf-again', status: 'failed', ended_at: at + 9000 } },
    ]);
    const window = ['--since', '2026-02-01T10:00:00Z', '--until', '2026-02-01T10:00:00.002Z'];
    const sorted = await ids(...window, '--sort', 'duration');
    expect(sorted.filter((id) => id.startsWith('cf-'))).toEqual([
      'cf-again',
      'cf-root',
      'cf-child',
    ]);
    const badSort = await cli(['runs', 'list', '--sort', 'slowest']);
    expect(badSort.code).toBe(2);
    expect(badSort.stderr).toContain('--sort must be one of newest, cost, duration, tokens');
    // runs show links the tree both ways, and names the user
    const root = (await cli(['runs', 'show', 'cf-root'])).stdout;
    expect(root).toMatch(/^ {2}sub-runs {3}cf-child \(cf-researcher, running\)$/m);
    expect(root).toMatch(/^ {2}user {7}u-cf$/m);
    expect((await cli(['runs', 'show', 'cf-child'])).stdout).toMatch(/^ {2}parent {5}cf-root$/m);
    expect(
      await ids('--since', '2026-02-01T10:00:00.001Z', '--until', '2026-02-01T10:00:00.001Z'),
    ).toEqual(['cf-child']);
    const backwards = await cli(['runs', 'list', '--since', '2026-02-02', '--until', '2026-02-01']);
    expect(backwards).toMatchObject({
      code: 2,
      stderr: 'runlog: --since must not be after --until\n',
    });
    // deleting the agents deletes their runs: the other tests see the sample runs alone
    for (const agent of ['cf-support', 'cf-researcher'])
      await fetch(`${server.url}/api/v1/agents/${agent}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
  });

  it("says which models a run's cost leaves out", async () => {
    await ingest([
      { type: 'run.start', run: { id: 'cp-mixed', agent_id: 'cp-agent' } },
      {
        type: 'step.end',
        step: { id: 'a', run_id: 'cp-mixed', type: 'llm', model: 'gpt-4o', input_tokens: 1000 },
      },
      {
        type: 'step.end',
        step: { id: 'b', run_id: 'cp-mixed', type: 'llm', model: 'my-llama', input_tokens: 9000 },
      },
    ]);
    const res = await cli(['runs', 'show', 'cp-mixed']);
    expect(res.stdout).toMatch(
      /cost\s+\$0\.0025 and the tokens of my-llama, which have no known price$/m,
    );
    // and what each model took, most cost first, the unpriced one's cost unknown
    expect(res.stdout).toMatch(/^ {2}models {5}gpt-4o {2}1 call {2}\S+ tok {2}\$0\.0025$/m);
    expect(res.stdout).toMatch(/^ {13}my-llama {2}1 call {2}\S+ tok {2}-$/m);
    await fetch(`${server.url}/api/v1/agents/cp-agent`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
  });

  it('shows a run: its summary, then its steps as an indented tree with durations, tokens and cost', async () => {
    const res = await cli(['runs', 'show', 'c-run-1']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^Run c-run-1$/m);
    expect(res.stdout).toMatch(/^ {2}status {5}failed$/m);
    expect(res.stdout).toMatch(
      /^ {2}error {6}AgentError: it broke\n {13}at triage \(agent\.ts:42:11\)$/m,
    );
    expect(res.stdout).toMatch(
      /^ {2}llm plan\s+succeeded\s+490ms\s+1\.2k tok\s+\$0\.000\d{2}\s+gpt-4o-mini/m,
    );
    expect(res.stdout).toMatch(/^ {2}└─ tool search, "web"\s+failed\s+300ms\s+\$0\.00012\s+boom$/m);
    const json = JSON.parse((await cli(['runs', 'show', 'c-run-1', '--json'])).stdout) as {
      steps: { id: string }[];
    };
    expect(json.steps.map((s) => s.id)).toEqual(['c-run-1-s1', 'c-run-1-s2']);
  });

  it('says of a queued run whether a worker of its agent was seen, as the dashboard does', async () => {
    const send = (method: string, path: string, body?: unknown) =>
      fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${server.adminKey}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    try {
      expect((await send('POST', '/agents/cq-agent/runs', { id: 'cq-run-1' })).status).toBe(202);
      const waiting = await cli(['runs', 'show', 'cq-run-1']);
      expect(waiting.stdout).toMatch(/^ {2}worker {5}none seen yet: this run waits for one$/m);
      const claim = await send('POST', '/workers/claim', {
        agents: ['cq-agent'],
        worker_id: 'cq-host:1',
      });
      expect(claim.status).toBe(200);
      expect((await send('POST', '/agents/cq-agent/runs', { id: 'cq-run-2' })).status).toBe(202);
      expect((await cli(['runs', 'show', 'cq-run-2'])).stdout).toMatch(
        /^ {2}worker {5}last seen \d+s ago$/m,
      );
      // its one run held for minutes (it hangs), the worker asks for no more: busy, not gone
      await server.ctx.db.kysely
        .updateTable('agents')
        .set({ worker_seen_at: Date.now() - 5 * 60_000 })
        .where('id', '=', 'cq-agent')
        .execute();
      expect((await cli(['runs', 'show', 'cq-run-2'])).stdout).toMatch(
        /^ {2}worker {5}busy: online, holding 1 run, and not asking for more since 5m ago$/m,
      );
      // a run that is not waiting says nothing of workers
      expect((await cli(['runs', 'show', 'cq-run-1'])).stdout).not.toMatch(/^ {2}worker /m);
      // the worker stopped: none there now, said as the dashboard says it
      expect((await send('DELETE', '/workers/cq-host:1?release=true')).ok).toBe(true);
      expect((await cli(['runs', 'show', 'cq-run-2'])).stdout).toMatch(
        /^ {2}worker {5}none has asked for its agent's runs since 5m ago: this run waits for one$/m,
      );
      await server.ctx.db.kysely
        .updateTable('agents')
        .set({ worker_seen_at: Date.now() - 10_000 })
        .where('id', '=', 'cq-agent')
        .execute();
      expect((await cli(['runs', 'show', 'cq-run-2'])).stdout).toMatch(
        /^ {2}worker {5}none running: the last one asked for its agent's runs \d+s ago and has stopped; this run waits for one$/m,
      );
    } finally {
      await send('DELETE', '/workers/cq-host:1');
      await send('DELETE', '/runs/cq-run-1');
      await send('DELETE', '/runs/cq-run-2');
      await send('DELETE', '/agents/cq-agent');
    }
  });

  it('shows sibling steps in start order, as the dashboard does, not in arrival (seq) order', async () => {
    const step = (id: string, name: string, started: number, parent?: string) => ({
      type: 'step.end',
      step: {
        id,
        run_id: 'c-order',
        type: 'tool',
        name,
        started_at: T0 + started,
        ended_at: T0 + started + 5,
        status: 'succeeded',
        ...(parent ? { parent_step_id: parent } : {}),
      },
    });
    // arrival order gives seq: the late step is recorded before the early one
    await ingest([
      { type: 'run.start', run: { id: 'c-order', agent_id: 'writer', started_at: T0 } },
      step('o-root', 'root', 0),
      step('o-late', 'late', 500, 'o-root'),
      step('o-early', 'early', 100, 'o-root'),
    ]);
    try {
      const res = await cli(['runs', 'show', 'c-order']);
      expect(res.code).toBe(0);
      const names = res.stdout.match(/^ {2}(?:[├└]─ )?tool \w+/gm);
      expect(names).toEqual(['  tool root', '  ├─ tool early', '  └─ tool late']);
    } finally {
      // the other tests count the sample runs
      await fetch(`${server.url}/api/v1/runs/c-order`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
    }
  });

  it('prints escape sequences in recorded text as text, never to the terminal', async () => {
    // and a right-to-left override, which shows what follows it reversed: `fdp.exe` as `exe.pdf`
    const hostile =
      'line1\r\u001b[1A\u001b[2KFAKE: all good\u001b]0;PWNED\u0007\u009b2J in \u202efdp.exe';
    await ingest([
      {
        type: 'run.end',
        run: {
          id: 'c-ansi',
          agent_id: 'writer',
          source: '\u001b[2Jsrc',
          status: 'failed',
          error: { message: hostile },
          started_at: T0,
        },
      },
      {
        type: 'step.end',
        step: {
          id: 'c-ansi-llm',
          run_id: 'c-ansi',
          type: 'llm',
          status: 'succeeded',
          // a model name is free text too: stats prints it in its per-model table
          model: '\u001b]8;;https://evil.example\u0007gpt\u001b[2J',
          input_tokens: 1,
          started_at: T0,
        },
      },
    ]);
    try {
      const outputs = [
        (await cli(['runs', 'show', 'c-ansi'])).stdout,
        (await cli(['runs', 'list', '--agent', 'writer'])).stdout,
        (await cli(['agents', 'list'])).stdout,
        (await cli(['stats', '--days', '3650'])).stdout,
      ];
      for (const out of outputs) {
        // eslint-disable-next-line no-control-regex
        expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      }
      expect(outputs[0]).toContain('line1\\x0d\\x1b[1A\\x1b[2KFAKE: all good\\x1b]0;PWNED\\x07');
      expect(outputs[0]).toContain(' in \\u202efdp.exe');
      for (const out of outputs) expect(out).not.toContain('\u202e');
      expect(outputs[3]).toContain('\\x1b]8;;https://evil.example\\x07gpt\\x1b[2J');
      // --json gives the data as recorded
      const json = JSON.parse((await cli(['runs', 'show', 'c-ansi', '--json'])).stdout) as {
        error: { message: string };
      };
      expect(json.error.message).toBe(hostile);
    } finally {
      await fetch(`${server.url}/api/v1/runs/c-ansi`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
    }
  });

  it('keeps a table row on one line, and a field of several lines under its name', async () => {
    // recorded text with newlines: a spoofed row, a spoofed field
    const thread = 'c-nl\nFAKE-THREAD        9       0';
    await ingest([
      {
        type: 'run.end',
        run: {
          id: 'c-nl',
          agent_id: 'writer',
          thread_id: thread,
          user_id: 'bob\n  status     succeeded',
          status: 'failed',
          error: { message: 'first line\nsecond line' },
          started_at: T0,
        },
      },
      {
        type: 'step.end',
        step: {
          id: 'c-nl-step',
          run_id: 'c-nl',
          type: 'tool',
          name: 'fetch\tpage\nFAKE-STEP',
          status: 'succeeded',
          started_at: T0,
        },
      },
    ]);
    try {
      const show = (await cli(['runs', 'show', 'c-nl'])).stdout;
      // every line of the summary is a field or goes on under one
      const summary = show.split('\n\n')[0]!.split('\n').slice(1);
      for (const line of summary) expect(line).toMatch(/^ {2}\w[\w-]* +\S|^ {13}/);
      expect(show).toContain('  user       bob\n               status     succeeded\n');
      expect(show).toContain('  error      first line\n             second line\n');
      expect(show).toContain('tool fetch\\tpage\\nFAKE-STEP');
      expect(show).not.toMatch(/^FAKE-STEP/m);
      const threads = (await cli(['threads', 'list', '--user', 'bob\n  status     succeeded']))
        .stdout;
      expect(threads.trimEnd().split('\n')).toHaveLength(3);
      expect(threads).toContain('c-nl\\nFAKE-THREAD');
      const shown = (await cli(['threads', 'show', thread])).stdout;
      expect(shown.split('\n')[0]).toBe('Thread c-nl\\nFAKE-THREAD        9       0');
    } finally {
      await fetch(`${server.url}/api/v1/runs/c-nl`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
    }
  });

  it("shows a run's error of several lines once, then where it was thrown", async () => {
    const message = 'invalid input:\n  name: required\n  age: too small';
    await ingest([
      {
        type: 'run.end',
        run: {
          id: 'c-multi-error',
          agent_id: 'writer',
          status: 'failed',
          // as a JavaScript error's stack has it: the type and the whole message, then frames
          error: {
            type: 'ZodError',
            message,
            stack: `ZodError: ${message}\n    at parse (schema.ts:10:5)\n    at main (agent.ts:3:1)`,
          },
          started_at: T0,
        },
      },
    ]);
    try {
      const show = (await cli(['runs', 'show', 'c-multi-error'])).stdout;
      expect(show).toContain(
        '  error      ZodError: invalid input:\n' +
          '               name: required\n' +
          '               age: too small\n' +
          '             at parse (schema.ts:10:5)\n' +
          '             at main (agent.ts:3:1)\n',
      );
      expect(show.match(/name: required/g)).toHaveLength(1);
    } finally {
      await fetch(`${server.url}/api/v1/runs/c-multi-error`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
    }
  });

  it('lists agents and reports stats and daily metrics', async () => {
    const agents = JSON.parse((await cli(['agents', 'list', '--json'])).stdout) as {
      agents: { id: string }[];
    };
    expect(agents.agents.map((a) => a.id).sort()).toEqual(['bug-triager', 'writer']);
    expect((await cli(['agents', 'list'])).stdout).toMatch(/^bug-triager\s+bug-triager\s/m);
    expect((await cli(['agents', 'list'])).stdout).not.toContain('NEXT RUN');
    // spend over 24 h: the sample runs are older, so none
    expect((await cli(['agents', 'list'])).stdout).toMatch(/\sCOST 24H(\s|$)/m);
    expect((await cli(['agents', 'list'])).stdout).toMatch(/^writer\s.*\s-\s/m);
    // the last error says when it was: the sample's failed months ago, not now
    expect((await cli(['agents', 'list'])).stdout).toMatch(/^writer\s.*\s2026-02-\d\d: it broke$/m);
    // a scheduled agent adds when its next run comes (a yearly slot: nothing is queued here)
    const schedule = (value: unknown) =>
      fetch(`${server.url}/api/v1/agents/writer`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ schedule: value }),
      });
    expect((await schedule({ cron: '0 0 1 1 *', timezone: 'UTC' })).status).toBe(200);
    try {
      const listed = (await cli(['agents', 'list'])).stdout;
      expect(listed).toContain('NEXT RUN');
      expect(listed).toMatch(/^writer\s.*\s(in \d+[smhd]|\d{4}-\d{2}-\d{2})\s/m);
    } finally {
      await schedule(null);
    }

    const stats = JSON.parse((await cli(['stats', '--days', '3650', '--json'])).stdout) as {
      totals: { runs: number };
      by_agent: { agent_id: string; runs: number }[];
    };
    expect(stats.totals.runs).toBe(12);
    expect(stats.by_agent.find((a) => a.agent_id === 'writer')?.runs).toBe(8);
    const human = await cli(['stats', '--days', '3650', '--agent', 'writer']);
    expect(human.stdout).toMatch(/^ {2}runs {7}8 /m);
    expect(human.stdout).toMatch(/^ {2}fail rate {2}33\.3%$/m);
    // percentiles are estimates from histograms, and say so
    expect(human.stdout).toMatch(/^ {2}duration {3}p50 ≈\S+ +p95 ≈\S+ +avg /m);

    const metrics = await cli(['metrics', '--agent', 'writer', '--days', '366']);
    expect(metrics.code).toBe(0);
    expect(metrics.stdout).toMatch(/^2026-02-01\s+8\s+33\.3%/m);
    expect(metrics.stdout).toMatch(/^ {2}runs {7}[▁▂▃▄▅▆▇█]+$/m);
    // --days N is the last N whole days, today the last of them
    const today = new Date().toISOString().slice(0, 10);
    const three = JSON.parse(
      (await cli(['metrics', '--agent', 'writer', '--days', '3', '--json'])).stdout,
    ) as {
      series: { t: string }[];
    };
    expect(three.series).toHaveLength(3);
    expect(three.series.at(-1)?.t.slice(0, 10)).toBe(today);
    const one = await cli(['stats', '--days', '1']);
    expect(one.stdout).toContain(`Last 1 day (${today} to ${today})`);
    // an agent that does not exist is an error, not a quiet agent
    for (const cmd of ['stats', 'metrics']) {
      const typo = await cli([cmd, '--agent', 'no-such-agent']);
      expect(typo.code).toBe(1);
      expect(typo.stderr).toBe('runlog: agent no-such-agent not found\n');
    }
    const needsAgent = await cli(['metrics']);
    expect(needsAgent.code).toBe(2);
    expect(needsAgent.stderr).toBe("runlog: required option '--agent <id>' not specified\n");

    // a 60-column terminal: the tables fit, dropping what matters least, and days stay whole
    const narrow = { COLUMNS: '60' };
    const tableLines = (out: string) => out.split('\n\n').slice(1).join('\n').split('\n');
    for (const args of [
      ['stats', '--days', '3650'],
      ['metrics', '--agent', 'writer', '--days', '366'],
    ]) {
      const out = (await cli(args, narrow)).stdout;
      for (const l of tableLines(out)) expect(l.length, `${args[0]}: ${l}`).toBeLessThanOrEqual(60);
    }
    for (const l of (await cli(['runs', 'show', 'c-run-0'], narrow)).stdout.split('\n'))
      expect(l.length, `runs show: ${l}`).toBeLessThanOrEqual(60);
    expect((await cli(['metrics', '--agent', 'writer', '--days', '366'], narrow)).stdout).toMatch(
      /^2026-02-01\s+8\s+33\.3%/m,
    );

    // tokens spent on a model with no known price: the cost is unknown, not $0
    await ingest([
      { type: 'run.start', run: { id: 'unpriced-1', agent_id: 'unpriced' } },
      {
        type: 'step.end',
        step: {
          id: 's',
          run_id: 'unpriced-1',
          type: 'llm',
          model: 'house-model-7',
          input_tokens: 500,
        },
      },
      { type: 'run.end', run: { id: 'unpriced-1', status: 'succeeded' } },
    ]);
    const unpriced = await cli(['stats', '--agent', 'unpriced']);
    expect(unpriced.stdout).toMatch(/^ {2}cost {7}-$/m);
    expect(unpriced.stdout).toMatch(/^unpriced\s.*\s-$/m);
    // its 24 h spend is unknown, not none
    expect((await cli(['agents', 'list'])).stdout).toMatch(/^unpriced\s.*\sno price(\s|$)/m);
    // and per model: its calls and tokens, its cost unknown
    expect(unpriced.stdout).toMatch(/^MODEL\s+RUNS\s+CALLS\s+IN\s+OUT\s+TOKENS\s+COST\s+SHARE$/m);
    expect(unpriced.stdout).toMatch(/^house-model-7\s+1\s+1\s+500\s+0\s+500\s+-\s+-$/m);
    expect((await cli(['metrics', '--agent', 'unpriced', '--days', '1'])).stdout).toMatch(
      /^\d{4}-\d{2}-\d{2}\s+1\s.*\s-\s/m,
    );

    // runs without a duration yet (queued): no percentile to estimate, so no "≈"
    const queued = await fetch(`${server.url}/api/v1/agents/waiting/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'waiting-1' }),
    });
    expect(queued.status).toBe(202);
    expect((await cli(['stats', '--agent', 'waiting', '--days', '1'])).stdout).toMatch(
      /^ {2}duration {3}p50 - {2}p95 - {2}avg -$/m,
    );
    expect((await cli(['metrics', '--agent', 'waiting', '--days', '1'])).stdout).toMatch(
      /^waiting: 1 run in 1 day, fail rate -, p95 -, cost /m,
    );
  });

  it("counts stats' and metrics' days in the zone of --tz or RUNLOG_TZ", async () => {
    // writer's runs, 09:00 to 19:00 UTC on 1 February, are Tokyo's evening and night after
    const tokyo = await cli([
      'metrics',
      '--agent',
      'writer',
      '--days',
      '366',
      '--tz',
      'Asia/Tokyo',
    ]);
    expect(tokyo.code, tokyo.stderr).toBe(0);
    expect(tokyo.stdout).toMatch(/^writer: 8 runs in 366 days \(Asia\/Tokyo\), /m);
    expect(tokyo.stdout).toMatch(/^2026-02-01\s+4\s/m);
    expect(tokyo.stdout).toMatch(/^2026-02-02\s+4\s/m);
    // UTC by default, as the CLI prints times
    expect((await cli(['metrics', '--agent', 'writer', '--days', '366'])).stdout).toMatch(
      /^2026-02-01\s+8\s/m,
    );
    expect(
      (await cli(['metrics', '--agent', 'writer', '--days', '366'], { RUNLOG_TZ: 'Asia/Tokyo' }))
        .stdout,
    ).toMatch(/^2026-02-02\s+4\s/m);
    // the flag before the environment
    expect(
      (
        await cli(['metrics', '--agent', 'writer', '--days', '366', '--tz', 'UTC'], {
          RUNLOG_TZ: 'Asia/Tokyo',
        })
      ).stdout,
    ).toMatch(/^2026-02-01\s+8\s/m);

    // --days N: the last N days of the zone, today (there) the last
    const three = JSON.parse(
      (
        await cli([
          'metrics',
          '--agent',
          'writer',
          '--days',
          '3',
          '--tz',
          'Pacific/Kiritimati',
          '--json',
        ])
      ).stdout,
    ) as { from: string; series: { t: string }[] };
    expect(three.series).toHaveLength(3);
    // Kiritimati is 14 hours ahead of UTC: its days start at 10:00 UTC the day before
    expect(three.series.every((p) => p.t.endsWith('T10:00:00.000Z'))).toBe(true);
    const today = localDate('Pacific/Kiritimati', Date.now());
    expect(localDate('Pacific/Kiritimati', Date.parse(three.series.at(-1)!.t))).toBe(today);
    const one = await cli(['stats', '--days', '1', '--tz', 'Pacific/Kiritimati']);
    expect(one.stdout).toContain(`Last 1 day (${today} to ${today}, Pacific/Kiritimati)`);
    const totals = (tz: string) =>
      cli(['stats', '--days', '366', '--agent', 'writer', '--json', '--tz', tz]).then(
        (r) => (JSON.parse(r.stdout) as { totals: { runs: number } }).totals.runs,
      );
    expect(await totals('Asia/Tokyo')).toBe(8);

    for (const [args, env, from] of [
      [['--tz', 'Mars/Olympus'], {}, '--tz'],
      [[], { RUNLOG_TZ: 'Mars/Olympus' }, 'RUNLOG_TZ'],
    ] as const) {
      const bad = await cli(['stats', ...args], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe(
        `runlog: ${from} must be an IANA time zone such as America/Los_Angeles, UTC or local, not Mars/Olympus\n`,
      );
    }
    // local: this machine's zone
    expect((await cli(['stats', '--days', '1', '--tz', 'local'])).code).toBe(0);
  });

  it('lists the workers seen lately, the runs they hold', async () => {
    const none =
      'no worker running (a worker that stops leaves this list; one that died stays 24 hours): queued runs start when one does\n';
    expect((await cli(['workers'])).stdout).toBe(none);
    const post = (path: string, body: unknown) =>
      fetch(`${server.url}/api/v1${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/agents/cw-agent/runs', { id: 'cw-run' })).status).toBe(202);
    const claim = await post('/workers/claim', { agents: ['cw-agent'], worker_id: 'cw-host:1' });
    expect(claim.status).toBe(200);
    const out = (await cli(['workers'])).stdout;
    expect(out).toMatch(/^WORKER\s+STATUS\s+AGENTS\s+RUNNING\s+LAST SEEN\s+FIRST SEEN$/m);
    expect(out).toMatch(/^cw-host:1\s+online\s+cw-agent\s+1\s+/m);
    const json = JSON.parse((await cli(['workers', '--json'])).stdout) as {
      workers: { id: string; running_runs: { id: string }[] }[];
    };
    expect(json.workers[0]).toMatchObject({ id: 'cw-host:1', running_runs: [{ id: 'cw-run' }] });
    // a worker that stops takes itself off the list: it did ask for runs, it is just not there
    const stop = await fetch(`${server.url}/api/v1/workers/cw-host:1`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(stop.status).toBe(204);
    expect((await cli(['workers'])).stdout).toBe(none);
    // the other tests see the sample runs alone
    await fetch(`${server.url}/api/v1/agents/cw-agent`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
  });

  describe('agents set/show', () => {
    const ids = [
      'cs-set',
      'cs-keep',
      'cs-clear',
      'cs-bad',
      'cs-cron',
      'cs-none',
      'cs-pause',
      'cs-cap',
    ];
    afterAll(async () => {
      // the other tests see the sample agents alone
      for (const id of ids)
        await fetch(`${server.url}/api/v1/agents/${id}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${server.adminKey}` },
        });
    });
    const json = async (...args: string[]) => {
      const res = await cli([...args, '--json']);
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout) as Agent;
    };
    /** POSTs to the API with the admin key, as a worker or a script would. */
    const post = (path: string, body: unknown) =>
      fetch(`${server.url}/api/v1${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${server.adminKey}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    const settings = (a: Agent) => ({
      name: a.name,
      description: a.description,
      schedule: a.schedule,
      timeout_ms: a.timeout_ms,
      max_cost_usd: a.max_cost_usd,
      max_tokens: a.max_tokens,
      max_steps: a.max_steps,
    });

    it('sets a name, a schedule, a timeout and limits, and shows them', async () => {
      const set = await cli([
        'agents',
        'set',
        'cs-set',
        '--name',
        'Support bot',
        '--description',
        'Answers tickets',
        '--schedule',
        '0 9 * * 1-5',
        '--timezone',
        'Europe/Paris',
        '--timeout',
        '5m',
        '--max-cost',
        '0.5',
        '--max-tokens',
        '200000',
        '--max-steps',
        '50',
      ]);
      expect(set.code, set.stderr).toBe(0);
      const block = [
        'Agent cs-set',
        '  name        Support bot',
        '  description Answers tickets',
        '  schedule    0 9 * * 1-5 (Europe/Paris)',
        // 9:00 in Paris: 8:00 or 7:00 UTC by the season, on a weekday
        expect.stringMatching(/^ {2}next run {4}\S+T0[78]:00:00\.000Z \(in \d+[smhd]\)$/),
        '  timeout     5m',
        '  limits      $0.50 cost, 200,000 tokens, 50 steps',
        '  budget      none',
        '  retry       none',
        '  concurrency no cap',
        '  worker      none seen yet: queued runs wait for one',
        expect.stringMatching(/^ {2}created {5}\S+Z \(\d+s ago\)$/),
        expect.stringMatching(/^ {2}updated {5}\S+Z \(\d+s ago\)$/),
        '',
      ];
      // an id not seen before makes a new agent, and says so
      expect(set.stdout.split('\n')).toEqual([
        'created agent cs-set: no agent had this id',
        ...block,
      ]);
      const shown = await cli(['agents', 'show', 'cs-set']);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout.split('\n')).toEqual(block);

      const agent = await json('agents', 'show', 'cs-set');
      expect(settings(agent)).toEqual({
        name: 'Support bot',
        description: 'Answers tickets',
        schedule: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris', paused: false },
        timeout_ms: 300_000,
        max_cost_usd: 0.5,
        max_tokens: 200_000,
        max_steps: 50,
      });
      expect(new Date(agent.next_run_at!).getUTCDay()).not.toBe(0);
      expect(new Date(agent.next_run_at!).getUTCDay()).not.toBe(6);
      // `get` is `show`; --json with `set` answers the saved agent
      expect((await cli(['agents', 'get', 'cs-set'])).stdout.split('\n')).toEqual(block);
      const saved = await json('agents', 'set', 'cs-set', '--max-steps', '60', '--timeout', '1.5h');
      expect(saved).toMatchObject({ id: 'cs-set', max_steps: 60, timeout_ms: 5_400_000 });
      expect(Date.parse(saved.updated_at)).toBeGreaterThanOrEqual(Date.parse(agent.updated_at));

      // the worker that last asked for its runs
      const claim = await fetch(`${server.url}/api/v1/workers/claim`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agents: ['cs-set'], worker_id: 'cs-host:1' }),
      });
      // no run queued: nothing to hand out, but the worker was seen
      expect(claim.status).toBe(204);
      expect((await cli(['agents', 'show', 'cs-set'])).stdout).toMatch(
        /^ {2}worker {6}last seen \S+Z \(\d+s ago\)$/m,
      );
    });

    it('keeps what is not given: a new cron keeps its zone, a zone alone keeps the cron', async () => {
      await json('agents', 'set', 'cs-keep', '--schedule', '0 9 * * *', '--timezone', 'Asia/Tokyo');
      await json('agents', 'set', 'cs-keep', '--max-cost', '$2', '--name', 'Keeper');
      const cron = await json('agents', 'set', 'cs-keep', '--schedule', '30 10 * * *');
      expect(settings(cron)).toMatchObject({
        name: 'Keeper',
        schedule: { cron: '30 10 * * *', timezone: 'Asia/Tokyo', paused: false },
        max_cost_usd: 2,
      });
      // 10:30 in Tokyo is 01:30 UTC
      expect(cron.next_run_at).toMatch(/T01:30:00\.000Z$/);
      const zone = await json('agents', 'set', 'cs-keep', '--timezone', 'UTC');
      expect(zone.schedule).toEqual({ cron: '30 10 * * *', timezone: 'UTC', paused: false });
      expect(zone.next_run_at).toMatch(/T10:30:00\.000Z$/);
      // an agent that exists is changed without a word about creating it
      const again = await cli(['agents', 'set', 'cs-keep', '--max-tokens', '1000']);
      expect(again.stdout).toMatch(/^Agent cs-keep\n/);
      expect(again.stdout).toContain('\n  limits      $2 cost, 1,000 tokens\n');
    });

    it('pauses and resumes a schedule alone (--schedule-only), keeping its cron; list and show say paused', async () => {
      await json(
        'agents',
        'set',
        'cs-pause',
        '--schedule',
        '0 9 * * *',
        '--timezone',
        'Asia/Tokyo',
      );
      const paused = await cli(['agents', 'pause', 'cs-pause', '--schedule-only']);
      expect(paused.code, paused.stderr).toBe(0);
      expect(paused.stdout).toBe(
        'schedule 0 9 * * * (Asia/Tokyo) of agent cs-pause paused: it queues no run until resumed (runlog agents resume cs-pause)\n',
      );
      expect((await cli(['agents', 'show', 'cs-pause'])).stdout).toContain(
        '\n  schedule    0 9 * * * (Asia/Tokyo)\n  next run    paused: no run is queued until resumed\n',
      );
      const listed = (await cli(['agents', 'list'])).stdout;
      expect(listed).toContain('NEXT RUN');
      expect(listed).toMatch(/^cs-pause\s.*\spaused\s/m);
      // pausing again changes nothing; --json answers the agent
      const again = await json('agents', 'pause', 'cs-pause', '--schedule-only');
      expect(again.schedule).toEqual({ cron: '0 9 * * *', timezone: 'Asia/Tokyo', paused: true });
      expect(again.next_run_at).toBeNull();
      // a setting changed meanwhile keeps the schedule paused
      expect(
        (await json('agents', 'set', 'cs-pause', '--schedule', '0 10 * * *')).schedule,
      ).toEqual({ cron: '0 10 * * *', timezone: 'Asia/Tokyo', paused: true });

      const resumed = await cli(['agents', 'resume', 'cs-pause', '--schedule-only']);
      expect(resumed.code, resumed.stderr).toBe(0);
      // 10:00 in Tokyo is 01:00 UTC
      expect(resumed.stdout).toMatch(
        /^schedule 0 10 \* \* \* \(Asia\/Tokyo\) of agent cs-pause resumed: next run \S+T01:00:00\.000Z \(in \d+[smhd]\)\n$/,
      );
      expect((await json('agents', 'show', 'cs-pause')).schedule?.paused).toBe(false);
      expect((await cli(['agents', 'show', 'cs-pause'])).stdout).toMatch(
        /^ {2}next run {4}\S+T01:00:00\.000Z \(in \d+[smhd]\)$/m,
      );

      // without a schedule: the server's 400 names it, exit 1, nothing made
      await json('agents', 'set', 'cs-pause', '--no-schedule');
      const none = await cli(['agents', 'pause', 'cs-pause', '--schedule-only']);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('agent cs-pause has no schedule to pause');
      // an id no agent has (a typo) is said so, not as an agent without a schedule
      const unknown = await cli(['agents', 'resume', 'cs-nobody']);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toBe('runlog: agent cs-nobody not found\n');
      expect((await cli(['agents', 'show', 'cs-nobody'])).code).toBe(1);
      // nor is one made by pausing it
      expect(await cli(['agents', 'pause', 'cs-nobody'])).toMatchObject({
        code: 1,
        stderr: 'runlog: agent cs-nobody not found\n',
      });
      expect((await cli(['agents', 'show', 'cs-nobody'])).code).toBe(1);
    });

    it('pauses and resumes an agent: its queued runs wait, and show, list and runs show say so', async () => {
      await json('agents', 'set', 'cs-held', '--schedule', '0 9 * * *');
      const paused = await cli(['agents', 'pause', 'cs-held']);
      expect(paused).toMatchObject({
        code: 0,
        stdout:
          'agent cs-held paused: no worker is handed its queued runs, and its schedule queues none, until runlog agents resume cs-held; runs under way go on (runlog runs cancel --agent cs-held stops them)\n',
      });
      const shown = (await cli(['agents', 'show', 'cs-held'])).stdout;
      expect(shown).toMatch(
        /\n {2}paused {6}\S+Z \(\d+s ago\): no worker is handed its queued runs and its schedule queues none \(runlog agents resume cs-held\)\n/,
      );
      expect(shown).toContain(
        '\n  next run    the agent is paused: no run is queued until resumed\n',
      );
      expect((await cli(['agents', 'list'])).stdout).toMatch(/^cs-held\s.*\sagent paused\s/m);
      // a run queued meanwhile waits, and says why
      expect((await post('/agents/cs-held/runs', { id: 'cs-held-1' })).status).toBe(202);
      expect((await cli(['runs', 'show', 'cs-held-1'])).stdout).toMatch(
        /\n {2}worker {5}none is handed its runs: its agent is paused \(since \d+s ago\); runlog agents resume starts this run\n/,
      );
      const asJson = await json('agents', 'pause', 'cs-held');
      expect(asJson.paused_at).toEqual(expect.any(String));
      expect(asJson.next_run_at).toBeNull();

      // resume takes the schedule's own pause off too
      await json('agents', 'pause', 'cs-held', '--schedule-only');
      const resumed = await cli(['agents', 'resume', 'cs-held']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toMatch(
        /^agent cs-held resumed: workers take its queued runs; its schedule queues the next run \S+T09:00:00\.000Z \(in \d+[smhd]\)\n$/,
      );
      const after = await json('agents', 'show', 'cs-held');
      expect(after).toMatchObject({ paused_at: null, schedule: { paused: false } });
    });

    it('sets a budget over 24 hours: list, show, agents run and runs show say when it holds runs back', async () => {
      const set = await cli([
        ...['agents', 'set', 'cs-budget', '--max-cost-24h', '0.05'],
        ...['--schedule', '0 9 * * *'],
      ]);
      expect(set.stdout).toContain('\n  budget      $0.05 per 24 hours\n');
      const now = Date.now();
      await ingest([
        {
          type: 'run.start',
          run: { id: 'cs-budget-spent', agent_id: 'cs-budget', started_at: now },
        },
        {
          type: 'step.end',
          step: {
            id: 's',
            run_id: 'cs-budget-spent',
            type: 'llm',
            cost_usd: 0.02,
            started_at: now,
          },
        },
        { type: 'run.end', run: { id: 'cs-budget-spent', status: 'succeeded', ended_at: now + 1 } },
      ]);
      expect((await cli(['agents', 'show', 'cs-budget'])).stdout).toContain(
        '\n  budget      $0.05 per 24 hours ($0.0200 spent)\n',
      );
      expect((await cli(['agents', 'list'])).stdout).toMatch(
        /^cs-budget\s.*\s\$0\.0200 of \$0\.05\s/m,
      );
      // set under what its runs cost: it says so at once
      expect(
        (await cli(['agents', 'set', 'cs-budget', '--max-cost-24h', '0.02'])).stdout,
      ).toContain(
        '\n  budget      $0.02 per 24 hours; $0.0200 spent: no worker is handed its queued runs',
      );
      expect((await cli(['agents', 'show', 'cs-budget'])).stdout).toContain(
        '\n  budget      $0.02 per 24 hours; $0.0200 spent: no worker is handed its queued runs and its schedule skips its slots until that falls below it\n',
      );
      // once the budget watch has seen it (background jobs are off here: one pass by hand)
      expect(await watchBudgetsOnce(server.ctx)).toBe(1);
      expect((await cli(['agents', 'show', 'cs-budget'])).stdout).toMatch(
        /\n {2}budget {6}\$0\.02 per 24 hours; \$0\.0200 spent, reached \d+s ago: no worker is handed/,
      );
      // its slots pass without a run meanwhile
      expect((await cli(['agents', 'show', 'cs-budget'])).stdout).toMatch(
        /\n {2}next run {4}\S+T09:00:00\.000Z \(in \d+[smhd]\); skipped while the agent is over its budget\n/,
      );
      expect((await cli(['agents', 'list'])).stdout).toMatch(/^cs-budget\s.*\sover budget\s/m);
      const queued = await cli(['agents', 'run', 'cs-budget', '--id', 'cs-budget-1']);
      expect(queued.code, queued.stderr).toBe(0);
      expect(queued.stderr).toBe(
        'agent cs-budget is over its budget: its runs of the last 24 hours cost $0.0200 of $0.02; the run waits until that falls below it (runlog agents set cs-budget --max-cost-24h raises it)\n',
      );
      expect((await cli(['runs', 'show', 'cs-budget-1'])).stdout).toContain(
        "\n  worker     none is handed its runs: its agent's runs of the last 24 hours cost $0.0200, at or over its budget of $0.02 (max_cost_usd_24h); this run starts once that falls below it, or the budget is raised\n",
      );
      // out of range: the flag's own error; none clears it
      const refused = await cli(['agents', 'set', 'cs-budget', '--max-cost-24h', '0']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--max-cost-24h must be an amount of US dollars above 0');
      const cleared = await json(
        ...['agents', 'set', 'cs-budget', '--max-cost-24h', 'none', '--no-schedule'],
      );
      expect(cleared.max_cost_usd_24h).toBeNull();
      expect((await cli(['agents', 'show', 'cs-budget'])).stdout).toContain(
        '\n  budget      none\n',
      );
    });

    it('clears settings with none and the --no- flags', async () => {
      await json(
        ...['agents', 'set', 'cs-clear', '--description', 'temp', '--schedule', '0 * * * *'],
        ...['--timeout', '10m', '--max-cost', '1', '--max-tokens', '5000', '--max-steps', '9'],
      );
      const some = await json('agents', 'set', 'cs-clear', '--max-cost', 'none', '--no-timeout');
      expect(settings(some)).toMatchObject({
        timeout_ms: null,
        max_cost_usd: null,
        max_tokens: 5000,
        max_steps: 9,
      });
      const shown = (await cli(['agents', 'show', 'cs-clear'])).stdout;
      expect(shown).toContain('\n  timeout     none\n  limits      5,000 tokens, 9 steps\n');
      const none = await json(
        ...['agents', 'set', 'cs-clear', '--no-limits', '--no-schedule', '--no-description'],
      );
      expect(settings(none)).toEqual({
        name: 'cs-clear',
        description: null,
        schedule: null,
        timeout_ms: null,
        max_cost_usd: null,
        max_tokens: null,
        max_steps: null,
      });
      expect(none.next_run_at).toBeNull();
      expect((await cli(['agents', 'show', 'cs-clear'])).stdout).toMatch(
        /^Agent cs-clear\n {2}name {8}cs-clear\n {2}schedule {4}none\n {2}timeout {5}none\n {2}limits {6}none\n/,
      );
      // `--schedule none` and `--timeout none` clear as the --no- flags do
      await json('agents', 'set', 'cs-clear', '--schedule', '0 * * * *', '--timeout', '1m');
      const off = await json(
        'agents',
        'set',
        'cs-clear',
        '--schedule',
        'none',
        '--timeout',
        'none',
      );
      expect(settings(off)).toMatchObject({ schedule: null, timeout_ms: null });
    });

    it('caps how many runs execute at once, shows it and removes the cap', async () => {
      const set = await cli(['agents', 'set', 'cs-cap', '--max-concurrency', '3']);
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout).toContain('\n  concurrency at most 3 runs at once on workers\n');
      expect((await json('agents', 'show', 'cs-cap')).max_concurrency).toBe(3);
      // other settings leave it as it is
      expect((await json('agents', 'set', 'cs-cap', '--max-steps', '9')).max_concurrency).toBe(3);
      const one = await cli(['agents', 'set', 'cs-cap', '--max-concurrency', '1']);
      expect(one.stdout).toContain('\n  concurrency at most 1 run at once on workers\n');
      const bad = await cli(['agents', 'set', 'cs-cap', '--max-concurrency', '0']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--max-concurrency must be 1 to 10000, or none to clear it');
      expect((await json('agents', 'set', 'cs-cap', '--no-max-concurrency')).max_concurrency).toBe(
        null,
      );
      await json('agents', 'set', 'cs-cap', '--max-concurrency', '2');
      const none = await json('agents', 'set', 'cs-cap', '--max-concurrency', 'none');
      expect(none.max_concurrency).toBeNull();
      expect((await cli(['agents', 'show', 'cs-cap'])).stdout).toContain(
        '\n  concurrency no cap\n',
      );
      // a queued run held back by the cap says so, rather than that it waits for a worker
      await json('agents', 'set', 'cs-cap', '--max-concurrency', '1');
      for (const id of ['cs-cap-1', 'cs-cap-2'])
        expect((await post('/agents/cs-cap/runs', { id })).status).toBe(202);
      const claimed = await post('/workers/claim', {
        agents: ['cs-cap'],
        max: 2,
        worker_id: 'h:1',
      });
      expect(((await claimed.json()) as { runs: unknown[] }).runs).toHaveLength(1);
      expect((await cli(['runs', 'show', 'cs-cap-2'])).stdout).toContain(
        "\n  worker     at its agent's cap: 1 run of at most 1 running; this run starts when one ends\n",
      );

      // a thread's runs one at a time, beside the agent's cap
      const threads = await cli([
        ...['agents', 'set', 'cs-cap', '--max-concurrency', '5'],
        ...['--max-concurrency-per-thread', '1'],
      ]);
      expect(threads.stdout).toContain(
        '\n  concurrency at most 5 runs at once on workers; at most 1 run of a thread at once\n',
      );
      for (const id of ['cs-thread-1', 'cs-thread-2'])
        expect((await post('/agents/cs-cap/runs', { id, thread_id: 'conv-1' })).status).toBe(202);
      const turns = await post('/workers/claim', { agents: ['cs-cap'], max: 5, worker_id: 'h:1' });
      // cs-cap-2 (no thread) and the thread's first turn
      expect(((await turns.json()) as { runs: { id: string }[] }).runs.map((r) => r.id)).toEqual([
        'cs-cap-2',
        'cs-thread-1',
      ]);
      expect((await cli(['runs', 'show', 'cs-thread-2'])).stdout).toContain(
        "\n  worker     at its thread's cap: 1 run of thread conv-1 running (at most 1 at once); this run starts when one ends\n",
      );
      const off = await json('agents', 'set', 'cs-cap', '--no-max-concurrency-per-thread');
      expect(off.max_concurrency_per_thread).toBeNull();
    });

    it('sets a retry policy, changes a part of it, shows it and removes it', async () => {
      const set = await cli(['agents', 'set', 'cs-retry', '--max-attempts', '3']);
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout).toContain(
        '\n  retry       up to 3 attempts, the first retry after 10s, each next one twice as long\n',
      );
      // the delay alone: the attempts and the backoff stay as they are
      const delayed = await json('agents', 'set', 'cs-retry', '--retry-delay', '30s');
      expect(delayed.retry).toEqual({ max_attempts: 3, delay_ms: 30_000, backoff: 'exponential' });
      const fixed = await cli(['agents', 'set', 'cs-retry', '--retry-backoff', 'fixed']);
      expect(fixed.stdout).toContain('\n  retry       up to 3 attempts, each retry after 30s\n');
      const now = await json(
        'agents',
        'set',
        'cs-retry',
        '--max-attempts',
        '5',
        '--retry-delay',
        '0s',
      );
      expect(now.retry).toEqual({ max_attempts: 5, delay_ms: 0, backoff: 'fixed' });
      expect((await cli(['agents', 'show', 'cs-retry'])).stdout).toContain(
        '\n  retry       up to 5 attempts, each retry at once\n',
      );
      // a retry waiting its delay says so: no worker takes it before its queued time
      await json('agents', 'set', 'cs-retry', '--retry-delay', '10m');
      expect((await post('/agents/cs-retry/runs', { id: 'cs-retry-1' })).status).toBe(202);
      expect((await post('/workers/claim', { agents: ['cs-retry'] })).status).toBe(200);
      await ingest([{ type: 'run.end', run: { id: 'cs-retry-1', status: 'failed' } }]);
      const [retry] = (
        (await (
          await fetch(`${server.url}/api/v1/runs?retry_of=cs-retry-1`, {
            headers: { authorization: `Bearer ${server.adminKey}` },
          })
        ).json()) as { runs: { id: string }[] }
      ).runs;
      expect((await cli(['runs', 'show', retry!.id])).stdout).toMatch(
        /\n {2}queued {5}\S+ \(in (9|1[0-2])m\): held back by its agent's retry policy until then\n/,
      );
      expect((await json('agents', 'set', 'cs-retry', '--no-retry')).retry).toBeNull();
      await json('agents', 'set', 'cs-retry', '--max-attempts', '2');
      expect((await json('agents', 'set', 'cs-retry', '--max-attempts', 'none')).retry).toBeNull();
    });

    it('refuses bad values with exit 2, naming the flag, and changes nothing', async () => {
      const before = await json('agents', 'set', 'cs-bad', '--max-steps', '5');
      const refused = (flag: string, value: string, why: string) =>
        `runlog: option '${flag}' argument '${value}' is invalid. ${why}\n`;
      for (const [args, stderr] of [
        [
          ['--timeout', '500ms'],
          refused(
            '--timeout <duration>',
            '500ms',
            '--timeout must be 1s to 7d, or none to clear it',
          ),
        ],
        [
          ['--timeout', '8d'],
          refused('--timeout <duration>', '8d', '--timeout must be 1s to 7d, or none to clear it'),
        ],
        [
          ['--timeout', 'soon'],
          refused(
            '--timeout <duration>',
            'soon',
            '--timeout must be a span like 30s, 5m or 2h, or milliseconds, or none to clear it',
          ),
        ],
        ...['0', '-1', '2000000'].map((v) => [
          ['--max-cost', v],
          refused(
            '--max-cost <usd>',
            v,
            '--max-cost must be an amount of US dollars above 0 and at most 1000000, or none to clear it',
          ),
        ]),
        [
          ['--max-tokens', '1.5'],
          refused(
            '--max-tokens <n>',
            '1.5',
            '--max-tokens must be a whole number, or none to clear it',
          ),
        ],
        [
          ['--max-steps', '0'],
          refused(
            '--max-steps <n>',
            '0',
            '--max-steps must be 1 to 1000000000, or none to clear it',
          ),
        ],
        [['--name', ''], refused('--name <text>', '', '--name must be 1 to 200 characters')],
        [
          [],
          'runlog: nothing to set: give --name, --description, --schedule, --timezone, --timeout, --max-cost, --max-tokens, --max-steps, --max-cost-24h, --max-attempts, --max-concurrency or --max-concurrency-per-thread (or a --no- flag to remove one)\n',
        ],
        [
          ['--no-limits', '--max-steps', '3'],
          'runlog: --no-limits removes every limit: leave out --max-steps\n',
        ],
        [
          ['--max-attempts', '1'],
          refused('--max-attempts <n>', '1', '--max-attempts must be 2 to 20, or none to clear it'),
        ],
        [
          ['--retry-delay', '2d'],
          refused('--retry-delay <duration>', '2d', '--retry-delay must be 0ms to 1d'),
        ],
        [
          ['--retry-backoff', 'linear'],
          refused(
            '--retry-backoff <how>',
            'linear',
            '--retry-backoff must be one of exponential, fixed',
          ),
        ],
        [
          ['--retry-delay', '30s'],
          'runlog: --retry-delay needs --max-attempts <n>: agent cs-bad retries no run on its own\n',
        ],
        [
          ['--no-retry', '--retry-delay', '30s'],
          'runlog: --no-retry (or --max-attempts none) removes the retry policy: leave out --retry-delay\n',
        ],
        [
          ['--no-retry', '--max-attempts', '3'],
          'runlog: --no-retry removes the retry policy: leave out --max-attempts\n',
        ],
        [
          ['--no-schedule', '--timezone', 'UTC'],
          'runlog: --timezone is the zone of a schedule: leave it out with --no-schedule\n',
        ],
        [
          ['--timezone', 'UTC'],
          'runlog: --timezone needs --schedule <cron>: agent cs-bad has no schedule\n',
        ],
        // values only the server checks are named by their flag too, not as body.schedule.cron
        [
          ['--schedule', '0 0 30 2 *'],
          'runlog: --schedule: never fires: no date matches 0 0 30 2 *\n',
        ],
        [
          ['--schedule', '0 9 * * *', '--timezone', 'Mars/Phobos'],
          'runlog: --timezone: unknown time zone Mars/Phobos\n',
        ],
      ] as [string[], string][]) {
        const res = await cli(['agents', 'set', 'cs-bad', ...args]);
        expect(res, args.join(' ')).toEqual({ code: 2, stdout: '', stderr });
      }
      const both = await cli([
        'agents',
        'set',
        'cs-bad',
        '--schedule',
        'every tuesday',
        '--timezone',
        'Mars/Phobos',
      ]);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(
        /^runlog: --schedule: not a valid cron expression .*; --timezone: unknown time zone Mars\/Phobos\n$/,
      );
      const asJson = await cli(['agents', 'set', 'cs-bad', '--max-cost', 'lots', '--json']);
      expect(asJson.code).toBe(2);
      expect(JSON.parse(asJson.stderr)).toMatchObject({
        error: { message: expect.stringContaining('--max-cost must be'), exit_code: 2 },
      });
      const bad = await cli(['agents', 'show', 'not ok']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('<agent-id> must be 1-128 characters of A-Za-z0-9._:-');
      expect(await json('agents', 'show', 'cs-bad')).toMatchObject({
        max_steps: 5,
        updated_at: before.updated_at,
      });
    });

    it('names the flag of a cron or time zone the server refuses, exit 2, as text or JSON', async () => {
      // the server checks these; its refusal is said by the flag given, as bad usage
      const cron = await cli(['agents', 'set', 'cs-cron', '--schedule', 'every day']);
      expect(cron.code).toBe(2);
      expect(cron.stdout).toBe('');
      expect(cron.stderr).toMatch(/^runlog: --schedule: not a valid cron expression .+\n$/);
      const zone = await cli(
        ...[['agents', 'set', 'cs-cron', '--schedule', '0 9 * * *', '--timezone', 'Mars/Olympus']],
      );
      expect(zone).toMatchObject({
        code: 2,
        stderr: 'runlog: --timezone: unknown time zone Mars/Olympus\n',
      });
      const asJson = await cli(['agents', 'set', 'cs-cron', '--schedule', '61 * * * *', '--json']);
      expect(asJson.code).toBe(2);
      expect(JSON.parse(asJson.stderr)).toMatchObject({
        error: { message: expect.stringMatching(/^--schedule: /), exit_code: 2 },
      });
      // a refused call makes no agent
      expect((await cli(['agents', 'show', 'cs-cron'])).code).toBe(1);
    });

    it('says an agent that does not exist is not found, exit 1, as text or JSON', async () => {
      expect(await cli(['agents', 'show', 'cs-none'])).toEqual({
        code: 1,
        stdout: '',
        stderr: 'runlog: agent cs-none not found\n',
      });
      const asJson = await cli(['agents', 'show', 'cs-none', '--json']);
      expect(asJson.code).toBe(1);
      expect(JSON.parse(asJson.stderr)).toEqual({
        error: { message: 'agent cs-none not found', exit_code: 1, status: 404, code: 'not_found' },
      });
    });
  });

  describe('threads', () => {
    // two hours ago: each thread's LAST reads `1h ago`, or `2h ago` on a slow machine
    const at = Date.now() - 2 * 3_600_000 + 5 * 60_000;
    const turn = (id: string, thread: string, agent: string, ms: number, extra: object) => ({
      type: 'run.end',
      run: {
        id,
        agent_id: agent,
        thread_id: thread,
        status: 'succeeded',
        started_at: at + ms,
        ended_at: at + ms + 1000,
        ...extra,
      },
    });

    beforeAll(async () => {
      await ingest([
        turn('ct-a1', 'ct-conv-a', 'ct-chat', 0, {
          user_id: 'u-ct',
          input: { messages: [{ role: 'user', content: 'My order\nis late' }] },
          output: 'Sorry to hear that.',
        }),
        turn('ct-a2', 'ct-conv-a', 'ct-support', 60_000, {
          user_id: 'u-ct',
          status: 'failed',
          input: 'Where is it now?',
          error: { message: 'tool timeout', type: 'Timeout' },
        }),
        turn('ct-a3', 'ct-conv-a', 'ct-chat', 120_000, {
          user_id: 'u-ct',
          input: 'Thanks',
          output: { answer: 'You are welcome' },
        }),
        // a thread whose id a URL path would read as more path and a query; still running
        {
          type: 'run.start',
          run: {
            id: 'ct-b1',
            agent_id: 'ct-chat',
            thread_id: 'ct/conv b?',
            input: 'Hello',
            started_at: at + 30_000,
          },
        },
      ]);
    });
    afterAll(async () => {
      // deleting the agents deletes their runs: the other tests see the sample runs alone
      for (const agent of ['ct-chat', 'ct-support'])
        await fetch(`${server.url}/api/v1/agents/${agent}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${server.adminKey}` },
        });
    });

    const mine = ['--agent', 'ct-chat,ct-support'];

    it('lists threads as a table, the latest active first, and pages with the cursor it names', async () => {
      const all = await cli(['threads', 'list', ...mine]);
      expect(all.code, all.stderr).toBe(0);
      const lines = all.stdout.split('\n');
      expect(lines[0]).toMatch(
        /^THREAD\s+RUNS\s+FAILED\s+ACTIVE\s+AGENTS\s+USER\s+TOKENS\s+COST\s+LAST\s+FIRST INPUT$/,
      );
      expect(lines[1]).toMatch(
        /^ct-conv-a\s+3\s+1\s+0\s+ct-chat,ct-support\s+u-ct\s+0\s+\$0\s+[12]h ago\s+My order is late$/,
      );
      expect(lines[2]).toMatch(
        /^ct\/conv b\?\s+1\s+0\s+1\s+ct-chat\s+-\s+0\s+\$0\s+[12]h ago\s+Hello$/,
      );
      expect(lines.slice(3)).toEqual(['2 threads', '']);

      // one at a time: the footer names the cursor of the next page
      const first = await cli(['threads', 'list', ...mine, '--limit', '1']);
      const cursor = /^1 thread; the next page: --cursor (\S+)$/m.exec(first.stdout)?.[1];
      expect(first.stdout.split('\n')[1]).toMatch(/^ct-conv-a\s/);
      expect(cursor).toBeDefined();
      const next = await cli(['threads', 'list', ...mine, '--limit', '1', '--cursor', cursor!]);
      expect(next.stdout.split('\n').slice(1)).toEqual([
        expect.stringMatching(/^ct\/conv b\?\s/),
        '1 thread',
        '',
      ]);

      const json = async (...args: string[]) => {
        const res = await cli(['threads', 'list', ...mine, ...args, '--json']);
        expect(res.code, res.stderr).toBe(0);
        return JSON.parse(res.stdout) as ThreadList;
      };
      const listed = await json();
      expect(listed).toMatchObject({ has_more: false, next_cursor: null });
      expect(listed.threads[0]).toMatchObject({
        thread_id: 'ct-conv-a',
        runs: 3,
        failed: 1,
        agent_ids: ['ct-chat', 'ct-support'],
        first_run: { id: 'ct-a1', input: 'My order is late' },
        last_run: { id: 'ct-a3', status: 'succeeded', output: 'You are welcome', error: null },
      });
      // each filter keeps runs, and a thread is summed over the runs kept
      const counts = (list: ThreadList) => list.threads.map((t) => [t.thread_id, t.runs]);
      expect(counts(await json('--user', 'u-ct'))).toEqual([['ct-conv-a', 3]]);
      expect(counts(await json('--agent', 'ct-support'))).toEqual([['ct-conv-a', 1]]);
      const until = new Date(at + 45_000).toISOString();
      expect(counts(await json('--until', until))).toEqual([
        ['ct/conv b?', 1],
        ['ct-conv-a', 1],
      ]);
      expect(counts(await json('--since', until))).toEqual([['ct-conv-a', 2]]);
      expect(counts(await json('--search', 'CONV B'))).toEqual([['ct/conv b?', 1]]);

      expect((await cli(['threads', 'list', '--agent', 'ct-nobody'])).stdout).toBe(
        'no threads match\n',
      );
      // a narrow terminal: the preview is cut and the least needed columns go, one line a thread
      const narrow = await cli(['threads', 'list', ...mine], { COLUMNS: '60' });
      for (const l of narrow.stdout.split('\n')) expect(l.length, l).toBeLessThanOrEqual(60);
      expect(narrow.stdout).toMatch(/^ct-conv-a\s+3\s+1\s/m);
    });

    it('refuses bad flags with exit 2, a cursor the server did not write too', async () => {
      const limit = await cli(['threads', 'list', '--limit', '0']);
      expect(limit).toMatchObject({
        code: 2,
        stderr: "runlog: option '--limit <n>' argument '0' is invalid. --limit must be 1 to 200\n",
      });
      const agent = await cli(['threads', 'list', '--agent', 'ok,not ok']);
      expect(agent.code).toBe(2);
      expect(agent.stderr).toContain('--agent must be 1-128 characters of A-Za-z0-9._:-');
      const backwards = await cli([
        'threads',
        'list',
        '--since',
        '2026-02-02',
        '--until',
        '2026-02-01',
      ]);
      expect(backwards).toMatchObject({
        code: 2,
        stderr: 'runlog: --since must not be after --until\n',
      });
      // the server's 400 names the flag's field: the flag's bad usage, as --limit's is
      const cursor = await cli(['threads', 'list', '--cursor', 'not-a-cursor', '--json']);
      expect(cursor.code).toBe(2);
      expect(JSON.parse(cursor.stderr)).toEqual({
        error: {
          message: '--cursor: not a cursor this API returned',
          exit_code: 2,
          status: 400,
          code: 'invalid_input',
        },
      });
    });

    it('shows a thread: its summary, then its turns oldest first, the earlier ones counted', async () => {
      const shown = await cli(['threads', 'show', 'ct-conv-a']);
      expect(shown.code, shown.stderr).toBe(0);
      const out = shown.stdout;
      expect(out).toMatch(
        /^Thread ct-conv-a\n {2}runs {7}3 \(1 failed\)\n {2}agents {5}ct-chat, ct-support\n {2}user {7}u-ct\n/,
      );
      expect(out).toContain(`  first      ${new Date(at).toISOString()} (`);
      expect(out).toContain(`  last       ${new Date(at + 120_000).toISOString()} (`);
      const turns = out.split('\nTurns\n')[1]!.split('\n');
      expect(turns[0]).toMatch(/^ {2}WHEN\s+RUN\s+STATUS\s+AGENT\s+INPUT → OUTPUT$/);
      expect(turns.slice(1)).toEqual([
        expect.stringMatching(
          /^ {2}[12]h ago\s+ct-a1\s+succeeded\s+ct-chat\s+My order is late → Sorry to hear that\.$/,
        ),
        expect.stringMatching(
          /^ {2}[12]h ago\s+ct-a2\s+failed\s+ct-support\s+Where is it now\? → tool timeout$/,
        ),
        expect.stringMatching(
          /^ {2}[12]h ago\s+ct-a3\s+succeeded\s+ct-chat\s+Thanks → You are welcome$/,
        ),
        '',
      ]);

      // the latest two: the first turn counted, not shown
      const latest = await cli(['threads', 'show', 'ct-conv-a', '--limit', '2']);
      expect(latest.stdout).toContain('\nTurns (1 earlier turn not shown; --limit 3 shows all)\n');
      expect(latest.stdout).not.toContain('ct-a1');
      const json = JSON.parse(
        (await cli(['threads', 'show', 'ct-conv-a', '--limit', '2', '--json'])).stdout,
      ) as ThreadSummary & { turns: { id: string }[]; earlier_turns: number };
      expect(json).toMatchObject({ thread_id: 'ct-conv-a', runs: 3, failed: 1, earlier_turns: 1 });
      expect(json.turns.map((r) => r.id)).toEqual(['ct-a2', 'ct-a3']);

      // any text names a thread: sent percent-encoded
      const odd = await cli(['threads', 'show', 'ct/conv b?']);
      expect(odd.stdout).toMatch(/^Thread ct\/conv b\?\n {2}runs {7}1 \(1 active\)\n/);
      expect(odd.stdout).toMatch(/^ {2}[12]h ago\s+ct-b1\s+running\s+ct-chat\s+Hello$/m);
    });

    it('says a thread no run names is not found, exit 1, as text or JSON', async () => {
      expect(await cli(['threads', 'show', 'ct-no-such-thread'])).toMatchObject({
        code: 1,
        stdout: '',
        stderr: 'runlog: thread ct-no-such-thread not found\n',
      });
      const json = await cli(['threads', 'show', 'ct-no-such-thread', '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stderr)).toEqual({
        error: {
          message: 'thread ct-no-such-thread not found',
          exit_code: 1,
          status: 404,
          code: 'not_found',
        },
      });
      // a URL's path takes `..` for a step up: said, not asked of the wrong route
      expect(await cli(['threads', 'show', '..'])).toMatchObject({
        code: 2,
        stderr:
          'runlog: thread .. cannot be named in a URL; runlog runs list --thread .. lists its runs\n',
      });
    });
  });

  it('cancels a queued run and retries a finished one', async () => {
    const res = await fetch(`${server.url}/api/v1/agents/writer/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'c-to-cancel' }),
    });
    expect(res.status).toBe(202);
    const cancel = await cli(['runs', 'cancel', 'c-to-cancel']);
    expect(cancel).toMatchObject({
      code: 0,
      stdout: 'run c-to-cancel of project default cancelled\n',
    });
    const again = await cli(['runs', 'cancel', 'c-to-cancel']);
    expect(again.code).toBe(1);
    expect(again.stderr.split('\n')).toHaveLength(2);

    const retry = JSON.parse((await cli(['runs', 'retry', 'c-run-1', '--json'])).stdout) as {
      id: string;
      retry_of: string;
      attempt: number;
      status: string;
    };
    expect(retry).toMatchObject({ retry_of: 'c-run-1', attempt: 2, status: 'queued' });
    // a second pass over the same run queues nothing, unless told to
    const twice = await cli(['runs', 'retry', 'c-run-1']);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain(
      `run c-run-1 was retried already as ${retry.id} (attempt 2, queued): nothing queued; retry ${retry.id} to try again, or add --again`,
    );
    const forced = await cli(['runs', 'retry', 'c-run-1', '--again']);
    expect(forced.stdout).toMatch(
      /^queued run \S+ of project default \(attempt 2, retry of c-run-1\)$/m,
    );
    const retries = await fetch(`${server.url}/api/v1/runs?retry_of=c-run-1`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(((await retries.json()) as { total: number }).total).toBe(2);
  });

  describe('runs cancel and runs retry on many runs', () => {
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${server.adminKey}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      expect(res.status, path).toBeLessThan(300);
      return (await res.json()) as T;
    };
    const retriesOf = async (id: string) =>
      (await api<{ runs: { id: string }[] }>('GET', `/runs?retry_of=${id}`)).runs.map((r) => r.id);
    /** Runs of `agent` ended with `status`, the first recorded first (the last listed). */
    const ended = async (agent: string, ids: string[], status = 'failed') => {
      const at = Date.now() - 60_000;
      await ingest(
        ids.flatMap((id, i) => [
          { type: 'run.start', run: { id, agent_id: agent, started_at: at + i * 1000 } },
          {
            type: 'run.end',
            run: { id, status, error: { message: `boom ${id}` }, ended_at: at + i * 1000 + 500 },
          },
        ]),
      );
    };
    /** A command line run with standard input a terminal that answers `answer`. */
    const atTerminal = async (args: string[], answer: string) => {
      const c = capture(env);
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      Object.assign(c.io.stderr, { isTTY: true });
      stdin.end(answer);
      const code = await run(args, { ...c.io, stdin });
      return { code, stdout: c.stdout(), stderr: c.stderr() };
    };

    it('refuses a --status naming runs that cannot be retried, before listing or acting', async () => {
      // queued and running runs cannot be retried (the server answers 409 for each): listed as
      // "runs to retry", they would only all fail, where the dashboard's Retry leaves them out
      await ended('bulk-s', ['bs-1']);
      for (const status of ['failed,queued', 'running']) {
        const retry = await cli([
          'runs',
          'retry',
          '--agent',
          'bulk-s',
          '--status',
          status,
          '--yes',
        ]);
        expect(retry.code).toBe(2);
        expect(retry.stdout).toBe('');
        expect(retry.stderr).toBe(
          'runlog: --status: a queued or running run cannot be retried (stop it first); ' +
            'retry takes succeeded, failed, cancelled, timed_out\n',
        );
      }
      expect(await retriesOf('bs-1')).toEqual([]);
    });

    it('lists the runs filters match and retries them only with --yes, each once', async () => {
      await ended('bulk-r', ['br-1', 'br-2', 'br-3']);
      await ended('bulk-r', ['br-ok'], 'succeeded');
      await ended('bulk-other', ['bo-1']);
      // asked without --yes, not at a terminal: the runs are listed, nothing is queued
      const asked = await cli(['runs', 'retry', '--agent', 'bulk-r', '--since', '2h']);
      expect(asked.code).toBe(2);
      expect(asked.stdout).toMatch(
        /^3 runs to retry:\nID\s+AGENT\s+STATUS\s+TRIGGER\s+WHEN\s+ERROR\n/,
      );
      // failed and timed out by default: the succeeded run is not taken
      expect(asked.stdout.match(/^br-\d\s+bulk-r\s+failed\s/gm)).toHaveLength(3);
      expect(asked.stdout).not.toContain('br-ok');
      expect(asked.stderr).toBe(
        'runlog: add --yes to retry 3 runs (or --dry-run to only list them)\n',
      );
      for (const id of ['br-1', 'br-2', 'br-3']) expect(await retriesOf(id)).toEqual([]);

      const dry = await cli(['runs', 'retry', '--agent', 'bulk-r', '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/^3 runs to retry \(dry run\):\n/);
      expect(dry.stdout).toMatch(/dry run: nothing retried\n$/);
      const dryJson = JSON.parse(
        (await cli(['runs', 'retry', '--agent', 'bulk-r', '--dry-run', '--json'])).stdout,
      ) as { dry_run: boolean; matched: number; total: number; runs: { id: string }[] };
      expect(dryJson).toMatchObject({ dry_run: true, matched: 3, total: 3 });
      expect(dryJson.runs.map((r) => r.id)).toEqual(['br-3', 'br-2', 'br-1']);
      for (const id of ['br-1', 'br-2', 'br-3']) expect(await retriesOf(id)).toEqual([]);

      // one was retried already (a teammate): it is left out, the others queued, each once
      const earlier = await api<{ id: string }>('POST', '/runs/br-2/retry');
      const first = await cli([
        'runs',
        'retry',
        '--agent',
        'bulk-r',
        '--status',
        'failed',
        '--limit',
        '1',
        '--yes',
      ]);
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^1 run to retry:\n/);
      expect(first.stdout).toContain(
        '2 runs match; only the newest 1 (--limit 1) are taken: raise --limit (up to 1000) or narrow the filters (--until), or run it again, for the rest\n',
      );
      expect(first.stdout).toMatch(/^queued run \S+ \(attempt 2, retry of br-3\)$/m);
      expect(first.stdout).toMatch(/\n1 run: queued 1, already retried 0, failed 0\n$/);
      // the same pass again goes on with the rest: the runs retried are not taken again
      const next = await cli(['runs', 'retry', '--agent', 'bulk-r', '--limit', '1', '--yes']);
      expect(next.stdout).toMatch(/^queued run \S+ \(attempt 2, retry of br-1\)$/m);
      expect(next.stdout).not.toContain('only the newest');
      expect(await retriesOf('br-1')).toHaveLength(1);
      expect(await retriesOf('br-2')).toEqual([earlier.id]);
      expect(await retriesOf('br-3')).toHaveLength(1);
      const done = JSON.parse(
        (await cli(['runs', 'retry', '--agent', 'bulk-r', '--yes', '--json'])).stdout,
      ) as { summary: Record<string, number>; results: unknown[]; matched: number };
      expect(done).toMatchObject({
        matched: 0,
        results: [],
        summary: { queued: 0, already_retried: 0, failed: 0 },
      });
      // why nothing matches: those runs were retried already
      expect((await cli(['runs', 'retry', '--agent', 'bulk-r', '--yes'])).stdout).toMatch(
        /^no runs match: nothing to retry \(\d+ runs match that were retried already: --again retries them again\)\n$/,
      );
      // the lists say which were retried
      const listed = async (flag: string) =>
        (
          JSON.parse(
            (await cli(['runs', 'list', '--agent', 'bulk-r', '--status', 'failed', flag, '--json']))
              .stdout,
          ) as { runs: { id: string }[] }
        ).runs.map((r) => r.id);
      expect(await listed('--retried')).toEqual(['br-3', 'br-2', 'br-1']);
      await ended('bulk-r', ['br-4']);
      expect(await listed('--not-retried')).toEqual(['br-4']);
      const both = await cli(['runs', 'list', '--retried', '--not-retried']);
      expect(both).toMatchObject({
        code: 2,
        stderr: 'runlog: give --retried or --not-retried, not both\n',
      });
      // --again retries them all the same; --limit bounds them, and says what it left out
      const bounded = await cli([
        'runs',
        'retry',
        '--agent',
        'bulk-r',
        '--again',
        '--limit',
        '1',
        '--yes',
      ]);
      expect(bounded.code).toBe(0);
      expect(bounded.stdout).toContain(
        '4 runs match; only the newest 1 (--limit 1) are taken: raise --limit (up to 1000) or narrow the filters (--until) for the rest\n',
      );
      expect(bounded.stdout).toMatch(/^queued run \S+ \(attempt 2, retry of br-3\)$/m);
      expect(await retriesOf('br-3')).toHaveLength(2);
      const twice = await cli(['runs', 'retry', '--agent', 'bulk-r', '--again', '--yes']);
      expect(twice.stdout).toMatch(/\n4 runs: queued 4, already retried 0, failed 0\n$/);
      expect(await retriesOf('br-3')).toHaveLength(3);
      expect(await retriesOf('br-4')).toHaveLength(1);
      expect(await retriesOf('bo-1')).toEqual([]);
    });

    it('asks at a terminal, and does nothing unless told yes', async () => {
      await ended('bulk-t', ['bt-1', 'bt-2']);
      const no = await atTerminal(['runs', 'retry', '--agent', 'bulk-t'], 'n\n');
      expect(no.code).toBe(1);
      expect(no.stderr).toBe('Retry 2 runs? [y/N] runlog: nothing done: not confirmed\n');
      expect(await retriesOf('bt-1')).toEqual([]);
      const yes = await atTerminal(['runs', 'retry', '--agent', 'bulk-t'], 'y\n');
      expect(yes.code).toBe(0);
      expect(yes.stdout).toMatch(/\n2 runs: queued 2, already retried 0, failed 0\n$/);
      expect(await retriesOf('bt-1')).toHaveLength(1);
      expect(await retriesOf('bt-2')).toHaveLength(1);
    });

    it('retries several runs by id, sums up and fails (exit 1) when any could not be', async () => {
      await ended('bulk-i', ['bi-1', 'bi-2']);
      await ingest([{ type: 'run.start', run: { id: 'bi-running', agent_id: 'bulk-i' } }]);
      const res = await cli(['runs', 'retry', 'bi-1', 'bi-2', 'bi-running', 'bi-none', 'bi-1']);
      expect(res.code).toBe(1);
      expect(res.stdout).toMatch(/\n4 runs: queued 2, already retried 0, failed 2\n$/);
      expect(res.stderr.split('\n').sort()).toEqual([
        '',
        'runlog: 2 of 4 runs could not be retried',
        'runlog: run bi-none: not found',
        'runlog: run bi-running: is still running; stop it or wait for it to end before retrying',
      ]);
      expect(await retriesOf('bi-1')).toHaveLength(1);
      expect(await retriesOf('bi-2')).toHaveLength(1);
      // a key that may not retry fails the command once, not each run
      const readKey = (
        JSON.parse(
          (await cli(['keys', 'create', '--scope', 'read', '--name', 'bulk', '--json'])).stdout,
        ) as { key: string }
      ).key;
      const denied = await cli([
        'runs',
        'retry',
        'bi-1',
        'bi-2',
        'bi-none',
        '--again',
        '--api-key',
        readKey,
      ]);
      expect(denied.code).toBe(1);
      expect(denied.stdout).toBe('');
      expect(denied.stderr.split('\n')).toHaveLength(2);
      expect(await retriesOf('bi-1')).toHaveLength(1);
      const listed = await cli(['runs', 'retry', 'bi-1', 'bi-none', '--dry-run']);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/^1 run to retry \(dry run\):\n/);
      expect(listed.stdout).toContain('not found: bi-none\n');
      expect(await retriesOf('bi-1')).toHaveLength(1);
    });

    it('says which runs it acted on before a failure of the whole command stopped it', async () => {
      const ids = Array.from({ length: 8 }, (_, i) => `bm-${i}`);
      await ended('bulk-m', ids);
      // a proxy in front of the server that refuses the key from the fourth retry on
      let retries = 0;
      const proxy = createHttpServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (req.url?.endsWith('/retry') && ++retries >= 4) {
            res.writeHead(401, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'unauthorized', message: 'revoked' } }));
            return;
          }
          void fetch(`${server.url}${req.url}`, {
            method: req.method,
            headers: req.headers as Record<string, string>,
            ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
          }).then(async (answer) => {
            res.writeHead(answer.status, { 'content-type': 'application/json' });
            res.end(await answer.text());
          });
        });
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
        const res = await cli(['runs', 'retry', ...ids, '--json', '--url', url]);
        expect(res.code).toBe(1);
        const out = JSON.parse(res.stdout) as {
          results: { run_id: string; outcome: string }[];
          stopped: string;
          not_done: string[];
        };
        expect(out.stopped).toBe('the API key was refused (check --api-key or RUNLOG_API_KEY)');
        expect(JSON.parse(res.stderr)).toMatchObject({ error: { message: out.stopped } });
        // every run is either said done or not done, in the order given
        const done = out.results.map((r) => r.run_id);
        expect([...done, ...out.not_done].sort()).toEqual(ids);
        expect(out.not_done.length).toBeGreaterThanOrEqual(4);
        // and the server agrees: the runs said queued have their retry, the others none
        for (const r of out.results) expect(r.outcome).toBe('queued');
        for (const id of done) expect(await retriesOf(id)).toHaveLength(1);
        for (const id of out.not_done) expect(await retriesOf(id)).toEqual([]);
        // in text, the runs done are said as they come, then which were not acted on
        retries = 0;
        const text = await cli(['runs', 'retry', ...out.not_done, '--url', url]);
        expect(text.code).toBe(1);
        expect(text.stdout).toMatch(/\nstopped before \d+ runs?: bm-\d/);
      } finally {
        proxy.close();
      }
    });

    it('stops the runs filters match, skipping those that ended', async () => {
      for (const id of ['bc-q1', 'bc-q2']) await api('POST', '/agents/bulk-c/runs', { id });
      await ingest([{ type: 'run.start', run: { id: 'bc-run', agent_id: 'bulk-c' } }]);
      await ended('bulk-c', ['bc-done']);
      const dry = await cli(['runs', 'cancel', '--agent', 'bulk-c', '--dry-run']);
      // queued and running by default: the ended run is not taken
      expect(dry.stdout).toMatch(/^3 runs to stop \(dry run\):\n/);
      expect(dry.stdout).not.toContain('bc-done');
      const one = await cli(['runs', 'cancel', '--agent', 'bulk-c', '--limit', '1', '--dry-run']);
      expect(one.stdout).toContain(
        '3 runs match; only the newest 1 (--limit 1) are taken: raise --limit (up to 1000) or narrow the filters (--until), or run it again, for the rest\n',
      );
      const done = await cli(['runs', 'cancel', '--agent', 'bulk-c', '--yes']);
      expect(done.code).toBe(0);
      const lines = done.stdout.split('\n');
      expect(lines).toEqual(
        expect.arrayContaining([
          'run bc-q1 cancelled',
          'run bc-q2 cancelled',
          'stop requested for run bc-run (running)',
          '3 runs: cancelled 2, stop requested 1, already ended 0, failed 0',
        ]),
      );
      expect((await api<{ status: string }>('GET', '/runs/bc-q1')).status).toBe('cancelled');
      const all = await cli([
        'runs',
        'cancel',
        '--agent',
        'bulk-c',
        '--status',
        'cancelled,failed',
        '--yes',
        '--json',
      ]);
      expect(all.code).toBe(0);
      expect(JSON.parse(all.stdout)).toMatchObject({
        action: 'cancel',
        matched: 3,
        summary: { cancelled: 0, stop_requested: 0, already_ended: 3, failed: 0 },
      });
      const none = await cli(['runs', 'cancel', '--agent', 'bulk-none', '--yes', '--json']);
      expect(none.code).toBe(0);
      expect(JSON.parse(none.stdout)).toEqual({
        action: 'cancel',
        matched: 0,
        total: 0,
        total_capped: false,
        results: [],
        summary: { cancelled: 0, stop_requested: 0, already_ended: 0, failed: 0 },
      });
      // an agent the project does not know is said: a misspelt one reads as a quiet one
      expect(await cli(['runs', 'retry', '--agent', 'bulk-none'])).toMatchObject({
        code: 0,
        stdout:
          'no runs match: nothing to retry; no agent bulk-none in this project (runlog agents list shows the agents there are)\n',
      });
      expect(
        await cli(['runs', 'retry', '--agent', 'bulk-c', '--status', 'timed_out']),
      ).toMatchObject({
        code: 0,
        stdout: 'no runs match: nothing to retry\n',
      });
      // by ids: one ended, one not there
      const byIds = await cli(['runs', 'cancel', 'bc-done', 'bc-none']);
      expect(byIds.code).toBe(1);
      expect(byIds.stdout).toContain('skipped run bc-done: has already ended (failed)\n');
      expect(byIds.stderr).toContain('runlog: run bc-none: not found\n');
    });

    it('refuses ids with filters, neither, or a bound out of range (exit 2)', async () => {
      const cases: [string[], RegExp][] = [
        [['runs', 'retry', 'r-1', '--agent', 'x'], /give run ids or filters, not both/],
        [['runs', 'cancel'], /give the ids of the runs to stop, or filters/],
        [['runs', 'retry', '--agent', 'x', '--limit', '0'], /--limit must be 1 to 1000/],
        [['runs', 'retry', '--since', '1h', '--until', '2h'], /--since must not be after --until/],
        [['runs', 'retry', 'not an id'], /<id>/],
      ];
      for (const [args, message] of cases) {
        const res = await cli(args);
        expect(res.code, args.join(' ')).toBe(2);
        expect(res.stderr).toMatch(message);
        expect(res.stdout).toBe('');
      }
    });
  });

  it('retries a run once when two passes run at the same time', async () => {
    await ingest([
      { type: 'run.start', run: { id: 'c-race', agent_id: 'writer' } },
      { type: 'run.end', run: { id: 'c-race', status: 'failed' } },
    ]);
    const passes = await Promise.all(
      Array.from({ length: 6 }, () => cli(['runs', 'retry', 'c-race'])),
    );
    const queued = passes.filter((p) => p.code === 0);
    expect(queued).toHaveLength(1);
    const id = /^queued run (\S+) of project default \(attempt 2, retry of c-race\)$/m.exec(
      queued[0]!.stdout,
    )?.[1];
    expect(id).toBeDefined();
    for (const p of passes.filter((p) => p.code !== 0))
      expect(p).toMatchObject({
        code: 1,
        stderr: `runlog: run c-race was retried already as ${id} (attempt 2, queued): nothing queued; retry ${id} to try again, or add --again\n`,
      });
    const retries = await fetch(`${server.url}/api/v1/runs?retry_of=c-race`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(((await retries.json()) as { total: number }).total).toBe(1);
  });

  it('scores runs, lists and deletes their scores, and shows them in show, list and stats', async () => {
    const now = Date.now();
    await ingest([
      { type: 'run.start', run: { id: 'cs-run', agent_id: 'cs-agent', started_at: now } },
      {
        type: 'step.end',
        step: {
          id: 'cs-step',
          run_id: 'cs-run',
          type: 'tool',
          name: 'search',
          status: 'succeeded',
        },
      },
      { type: 'run.end', run: { id: 'cs-run', status: 'succeeded', ended_at: now + 10 } },
      { type: 'run.start', run: { id: 'cs-other', agent_id: 'cs-agent', started_at: now + 1 } },
    ]);
    const score = async (...args: string[]) => {
      const res = await cli(['runs', 'score', ...args, '--json']);
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout) as Score;
    };
    const scores = async (runId: string) =>
      (JSON.parse((await cli(['runs', 'scores', runId, '--json'])).stdout) as ScoreList).scores;
    try {
      const up = await cli(['runs', 'score', 'cs-run', 'feedback', 'true', '--comment', 'spot on']);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout).toMatch(/^scored run cs-run: feedback true \(score \S+\)\n$/);
      // true/false a boolean, a number a number (negative too), anything else a label
      const quality = await score('cs-run', 'quality', '0.8');
      expect(quality).toMatchObject({ type: 'numeric', value: 0.8, source: 'cli', step_id: null });
      expect(await score('cs-run', 'quality', '-1')).toMatchObject({ value: -1 });
      const tone = await cli(['runs', 'score', 'cs-run', 'tone', 'polite', '--step', 'cs-step']);
      expect(tone.stdout).toMatch(/^scored run cs-run \(step cs-step\): tone polite \(score /);
      expect(await score('cs-other', 'feedback', 'false')).toMatchObject({ type: 'boolean' });
      // --id names the score to replace: the run keeps one
      const replaced = await score('cs-run', 'quality', '0.9', '--id', quality.id);
      expect(replaced).toMatchObject({ id: quality.id, value: 0.9 });
      const held = await scores('cs-run');
      expect(held.map((s) => [s.name, s.value, s.comment])).toEqual([
        ['feedback', true, 'spot on'],
        ['quality', 0.9, null],
        ['quality', -1, null],
        ['tone', 'polite', null],
      ]);

      const table = (await cli(['runs', 'scores', 'cs-run'])).stdout;
      expect(table).toMatch(/^ID\s+NAME\s+VALUE\s+STEP\s+COMMENT\s+SOURCE\s+WHEN$/m);
      expect(table).toMatch(/^\S+\s+feedback\s+true\s+spot on\s+cli\s+\d+s ago$/m);
      expect(table).toMatch(/^\S+\s+tone\s+polite\s+cs-step\s+cli\s+\d+s ago$/m);
      expect((await cli(['runs', 'scores', 'cs-other'])).stdout).not.toMatch(/STEP/);

      // runs show sums them up by name
      const shown = (await cli(['runs', 'show', 'cs-run'])).stdout;
      // one boolean score reads as its value, not as a share of true
      expect(shown).toMatch(/^ {2}scores {5}feedback {2}1 score {3}true$/m);
      expect(shown).toMatch(/^ {13}quality {3}2 scores {2}avg -0\.05$/m);
      expect(shown).toMatch(/^ {13}tone {6}1 score {3}polite 1$/m);

      // runs list finds the runs by a score, and shows it
      const ids = async (...args: string[]) => {
        const res = await cli(['runs', 'list', '--agent', 'cs-agent', ...args, '--json']);
        expect(res.code, res.stderr).toBe(0);
        return (JSON.parse(res.stdout) as { runs: { id: string }[] }).runs.map((r) => r.id);
      };
      expect(await ids('--score', 'feedback')).toEqual(['cs-other', 'cs-run']);
      expect(await ids('--score', 'feedback', '--score-max', '0')).toEqual(['cs-other']);
      expect(await ids('--score', 'quality', '--score-min', '-1', '--score-max', '-0.5')).toEqual([
        'cs-run',
      ]);
      expect(await ids('--score', 'tone', '--score-label', 'polite')).toEqual(['cs-run']);
      expect(await ids('--score', 'tone', '--score-label', 'rude')).toEqual([]);
      const listed = (await cli(['runs', 'list', '--agent', 'cs-agent', '--score', 'feedback']))
        .stdout;
      expect(listed.split('\n')[0]).toMatch(/\sCOST\s+FEEDBACK$/);
      expect(listed).toMatch(/^cs-other\s.*\sfalse$/m);
      expect(listed).toMatch(/^cs-run\s.*\strue$/m);
      for (const [args, message] of [
        [['--score-min', '1'], '--score-min, --score-max and --score-label need --score <name>'],
        [['--score', 'q', '--score-min', '1', '--score-max', '0'], 'must not be above --score-max'],
        [['--score', 'q', '--score-max', 'lots'], '--score-max must be a number'],
      ] as const) {
        const bad = await cli(['runs', 'list', ...args]);
        expect(bad.code).toBe(2);
        expect(bad.stderr).toContain(message);
      }

      // stats: the scores given, by name
      const stats = (await cli(['stats', '--agent', 'cs-agent', '--days', '1'])).stdout;
      expect(stats).toMatch(/^SCORE\s+TYPE\s+N\s+RUNS\s+AVG\s+MIN\s+MAX\s+LABELS$/m);
      expect(stats).toMatch(/^feedback\s+boolean\s+2\s+2\s+50\.0% true\s+-\s+-$/m);
      expect(stats).toMatch(/^quality\s+numeric\s+2\s+1\s+-0\.05\s+-1\s+0\.9$/m);
      expect(stats).toMatch(/^tone\s+categorical\s+1\s+1\s+-\s+-\s+-\s+polite 1$/m);
      const statsJson = JSON.parse(
        (await cli(['stats', '--agent', 'cs-agent', '--days', '1', '--json'])).stdout,
      ) as { by_score: { name: string }[] };
      expect(statsJson.by_score.map((s) => s.name).sort()).toEqual(['feedback', 'quality', 'tone']);
      // and fits a narrow terminal like the other tables
      for (const out of [
        (await cli(['stats', '--agent', 'cs-agent', '--days', '1'], { COLUMNS: '50' })).stdout,
        (await cli(['runs', 'show', 'cs-run'], { COLUMNS: '50' })).stdout,
        (await cli(['runs', 'scores', 'cs-run'], { COLUMNS: '50' })).stdout,
      ])
        for (const l of out.split('\n')) expect(l.length, l).toBeLessThanOrEqual(50);

      // a value the API would refuse is bad usage, named before anything is sent
      const long = await cli(['runs', 'score', 'cs-run', 'tone', 'x'.repeat(201)]);
      expect(long).toMatchObject({ code: 2 });
      expect(long.stderr).toContain('<value> must be 1 to 200 characters');
      const huge = await cli(['runs', 'score', 'cs-run', 'quality', '1e16']);
      expect(huge.code).toBe(2);
      const missing = await cli(['runs', 'score', 'no-such-run', 'feedback', 'true']);
      expect(missing.code).toBe(1);
      expect(missing.stderr.split('\n')).toHaveLength(2);

      // unscore deletes one; a score it does not know is a one-line failure
      const toneId = held.find((s) => s.name === 'tone')!.id;
      expect(await cli(['runs', 'unscore', 'cs-run', toneId])).toMatchObject({
        code: 0,
        stdout: `deleted score ${toneId} of run cs-run\n`,
      });
      expect((await scores('cs-run')).map((s) => s.name)).toEqual([
        'feedback',
        'quality',
        'quality',
      ]);
      const again = await cli(['runs', 'unscore', 'cs-run', toneId]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^runlog: [^\n]+\n$/);
      const feedbackId = held[0]!.id;
      expect(
        JSON.parse((await cli(['runs', 'unscore', 'cs-run', feedbackId, '--json'])).stdout),
      ).toEqual({ run_id: 'cs-run', score_id: feedbackId, deleted: true });
      expect((await cli(['runs', 'show', 'cs-run'])).stdout).not.toMatch(/feedback/);
      await cli(['runs', 'unscore', 'cs-other', (await scores('cs-other'))[0]!.id]);
      expect((await cli(['runs', 'scores', 'cs-other'])).stdout).toBe(
        'run cs-other has no scores\n',
      );
    } finally {
      // the other tests see the sample runs alone
      await fetch(`${server.url}/api/v1/agents/cs-agent`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
    }
  });

  it('shows a run that starts and ends while runs tail watches', async () => {
    const stop = new AbortController();
    // a key read from a file ends in a newline: before, tail alone failed on it
    const c = capture({ ...env, RUNLOG_API_KEY: `${server.adminKey}\n` }, stop.signal);
    const done = run(['runs', 'tail', '--agent', 'tail-agent'], c.io);
    await waitFor(() => c.stderr().includes('watching'), 'the subscription');
    // an agent with no run yet is watched all the same, and said, as a misspelt one would be
    expect(c.stderr()).toBe(
      'watching agent tail-agent; Ctrl-C to stop\n' +
        'no agent tail-agent in this project yet: its first run will show here (runlog agents list shows the agents there are)\n',
    );
    await ingest([{ type: 'run.start', run: { id: 'c-tailed', agent_id: 'tail-agent' } }]);
    await ingest([{ type: 'run.start', run: { id: 'c-other', agent_id: 'writer' } }]);
    // a Stop is a change of its own: the line says so, not the same line again
    await fetch(`${server.url}/api/v1/runs/c-tailed/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    await waitFor(() => c.stdout().includes('(stop requested)'), 'the stop request');
    await ingest([{ type: 'run.end', run: { id: 'c-tailed', status: 'cancelled' } }]);
    await waitFor(() => /c-tailed\s+tail-agent\s+cancelled/.test(c.stdout()), 'the end');
    stop.abort();
    expect(await done).toBe(0);
    const lines = c.stdout().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d {2}c-tailed {2}tail-agent {2}running /);
    expect(lines[1]).toMatch(/ {2}c-tailed {2}tail-agent {2}running \(stop requested\) /);
    expect(c.stdout()).not.toContain('c-other');
    // an agent that has runs: nothing more to say
    const known = new AbortController();
    const k = capture(env, known.signal);
    const watching = run(['runs', 'tail', '--agent', 'writer'], k.io);
    await waitFor(() => k.stderr().includes('watching'), 'the subscription');
    known.abort();
    expect(await watching).toBe(0);
    expect(k.stderr()).toBe('watching agent writer; Ctrl-C to stop\n');
  });

  it('runs tail rides out a dropped connection and goes on showing runs', async () => {
    // a TCP relay to the server that can drop every connection and refuse new ones a while
    const sockets = new Set<Socket>();
    let refusing = false;
    const target = new URL(server.url);
    const relay = createServer((inbound) => {
      if (refusing) return void inbound.destroy();
      const outbound = connect(Number(target.port), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      const drop = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    const stop = new AbortController();
    const c = capture({ ...env, RUNLOG_URL: url }, stop.signal);
    const done = run(['runs', 'tail', '--agent', 'tail-again'], c.io);
    try {
      await waitFor(() => c.stderr().includes('watching'), 'the subscription');
      refusing = true;
      for (const s of sockets) s.destroy();
      await waitFor(() => c.stderr().includes('reconnecting'), 'the drop to be noticed');
      await new Promise((r) => setTimeout(r, 800));
      refusing = false;
      await waitFor(() => c.stderr().includes('reconnected'), 'the reconnection', 15_000);
      await ingest([{ type: 'run.start', run: { id: 'c-after-drop', agent_id: 'tail-again' } }]);
      await waitFor(() => c.stdout().includes('c-after-drop'), 'the run after the drop');
    } finally {
      stop.abort();
      expect(await done).toBe(0);
      relay.close();
      for (const s of sockets) s.destroy();
    }
  });

  it('runs tail gives up a connection gone silent and reconnects', async () => {
    // a TCP relay that can stop passing anything on while keeping its sockets open: a network
    // that dropped (a laptop asleep, a NAT that forgot it) closes nothing
    const frozen: (() => void)[] = [];
    const sockets = new Set<Socket>();
    const target = new URL(server.url);
    const relay = createServer((inbound) => {
      const outbound = connect(Number(target.port), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      frozen.push(() => {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        inbound.pause();
        outbound.pause();
      });
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    const stop = new AbortController();
    const c = capture({ ...env, RUNLOG_URL: url }, stop.signal);
    c.io.heartbeatMs = 200;
    const done = run(['runs', 'tail', '--agent', 'tail-silent'], c.io);
    try {
      await waitFor(() => c.stderr().includes('watching'), 'the subscription');
      for (const freeze of frozen.splice(0)) freeze();
      await waitFor(() => c.stderr().includes('reconnecting'), 'the silence to be noticed');
      await waitFor(() => c.stderr().includes('reconnected'), 'the reconnection', 15_000);
      await ingest([
        { type: 'run.start', run: { id: 'c-after-silence', agent_id: 'tail-silent' } },
      ]);
      await waitFor(() => c.stdout().includes('c-after-silence'), 'the run after the silence');
    } finally {
      stop.abort();
      expect(await done).toBe(0);
      relay.close();
      for (const s of sockets) s.destroy();
    }
  });

  it('reports a bad key, a missing server, bad flags and bad dates in one line', async () => {
    const badKey = await cli(['runs', 'list'], { RUNLOG_API_KEY: 'rl_wrong' });
    expect(badKey).toMatchObject({
      code: 1,
      stderr: 'runlog: the API key was refused (check --api-key or RUNLOG_API_KEY)\n',
    });
    // as JSON it carries the status and code, so a script tells it from a run not found
    const badKeyJson = await cli(['runs', 'list', '--json'], { RUNLOG_API_KEY: 'rl_wrong' });
    expect(JSON.parse(badKeyJson.stderr)).toEqual({
      error: {
        message: 'the API key was refused (check --api-key or RUNLOG_API_KEY)',
        exit_code: 1,
        status: 401,
        code: 'unauthorized',
      },
    });
    // a key no header can carry is said to be one, not fetch's "ByteString" error
    for (const args of [
      ['runs', 'list'],
      ['runs', 'tail'],
    ])
      expect(await cli(args, { RUNLOG_API_KEY: 'ключ' })).toMatchObject({
        code: 2,
        stderr:
          'runlog: --api-key (RUNLOG_API_KEY) must be printable ASCII without spaces: the key as Runlog printed it (rl_ and letters and digits)\n',
      });
    const tailBadKey = await cli(['runs', 'tail'], { RUNLOG_API_KEY: 'rl_wrong' });
    expect(tailBadKey.code).toBe(1);
    expect(tailBadKey.stderr).toContain('the API key was refused');
    const port = await freePort();
    const down = await cli(['agents', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(down).toMatchObject({
      code: 1,
      stderr: `runlog: cannot reach the Runlog server at http://127.0.0.1:${port} (is it running? set --url or RUNLOG_URL)\n`,
    });
    // the server's address copied with the API's prefix works as well
    const prefixed = await cli(['runs', 'list', '--limit', '1'], {
      RUNLOG_URL: `${server.url}/api/v1/`,
    });
    expect(prefixed.code).toBe(0);
    const missing = await cli(['runs', 'show', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^runlog: .*not found\n$/);
    const flag = await cli(['runs', 'list', '--colour']);
    expect(flag).toMatchObject({ code: 2, stderr: "runlog: unknown option '--colour'\n" });
    const date = await cli(['runs', 'list', '--since', 'last tuesday']);
    expect(date.code).toBe(2);
    expect(date.stderr.split('\n')).toHaveLength(2);
    expect(date.stderr).toContain('--since must be a span like 24h or 7d');
    const status = await cli(['runs', 'list', '--status', 'done']);
    expect(status.code).toBe(2);
    // `stats` is no run id (GET /runs/stats answers the stats): said as bad usage, not as a
    // refused `include` parameter of the stats
    const reserved = await cli(['runs', 'show', 'stats']);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain('"stats" is reserved');
    const help = await cli(['runs', 'show', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: runlog runs show|get [options] <id>');
  });

  it('creates, lists and revokes keys; a created key works against the server', async () => {
    const created = JSON.parse(
      (await cli(['keys', 'create', '--scope', 'read', '--name', 'ci', '--json'])).stdout,
    ) as { id: string; key: string; scope: string };
    expect(created.scope).toBe('read');
    const withKey = await cli(['runs', 'list', '--json', '--api-key', created.key]);
    expect(withKey.code).toBe(0);
    const denied = await cli(['runs', 'retry', 'c-run-2', '--api-key', created.key]);
    expect(denied.code).toBe(1);
    const list = await cli(['keys', 'list']);
    expect(list.stdout).toMatch(
      new RegExp(`^${created.id}\\s+\\S+\\s+read\\s+ci\\s.*active$`, 'm'),
    );
    expect((await cli(['keys', 'revoke', created.id])).code).toBe(0);
    if (dialect === 'postgres') {
      // the running server had the key cached; the CLI's NOTIFY makes it look again now,
      // well within the cache's 10 s
      await waitFor(
        async () => (await cli(['runs', 'list', '--api-key', created.key])).code === 1,
        'the server to refuse the revoked key',
        5_000,
      );
    } else {
      // on SQLite the server sees the file changed under another connection, at once
      expect((await cli(['runs', 'list', '--api-key', created.key])).code).toBe(1);
    }
    expect((await cli(['keys', 'list'])).stdout).toMatch(
      new RegExp(`^${created.id}\\s.*revoked$`, 'm'),
    );
    const again = await cli(['keys', 'revoke', 'no-such-key']);
    expect(again).toMatchObject({
      code: 1,
      stderr: 'runlog: no key no-such-key in project default\n',
    });
    expect((await cli(['keys', 'create', '--scope', 'root'])).code).toBe(2);
    // the API's limit on a key's name holds here too (5,000 characters were taken)
    const long = await cli(['keys', 'create', '--scope', 'read', '--name', 'n'.repeat(201)]);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain('--name must be 1 to 200 characters');
  });

  it('exports and imports through the CLI: the re-export is identical, bad lines are numbered', async () => {
    const first = join(dir, `first-${dialect}.jsonl`);
    const exported = await cli(['export', '-o', first, '--json']);
    expect(exported.code).toBe(0);
    // runs' prompts and outputs, readable by every user of the machine with the usual umask
    expect(statSync(first).mode & 0o077).toBe(0);
    const summary = JSON.parse(exported.stdout) as {
      runs: number;
      steps: number;
      agents: number;
    };
    expect(summary.runs).toBeGreaterThanOrEqual(12);
    // the agents go with their runs (settings lines before the first run)
    expect(summary).toMatchObject({ agents: expect.any(Number), prices: 0 });
    expect(summary.agents).toBeGreaterThanOrEqual(2);
    const copy = join(dir, `copy-${dialect}.db`);
    const imported = await cli(['import', first, '--db', copy]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(
      new RegExp(
        `^imported ${summary.runs} runs \\(\\d+ steps\\), ${summary.agents} agents from [^;]*$`,
      ),
    );
    // again: nothing changes, and the summary says the runs were there already
    const again = await cli(['import', first, '--db', copy]);
    expect(again.stdout).toMatch(
      new RegExp(`; ${summary.runs} of them were already there, now as in the file\\n$`),
    );
    expect(again.stderr).toBe('');
    // into a project that keeps runs a shorter time than they are old: the import says so
    const copyDb = await openDatabase(copy);
    await copyDb.kysely.updateTable('projects').set({ retention_days: 1 }).execute();
    await copyDb.close();
    const shorter = await cli(['import', first, '--db', copy]);
    expect(shorter.stderr).toMatch(
      /^runlog: note: \d+ imported runs of project default ended more than its retention \(1 day\) ago, and retention deletes them on its next pass; raise retention_days first/,
    );
    const shorterJson = JSON.parse(
      (await cli(['import', first, '--db', copy, '--json'])).stdout,
    ) as {
      expiring: { project_id: string; retention_days: number }[];
    };
    expect(shorterJson.expiring).toEqual([
      expect.objectContaining({ project_id: 'default', retention_days: 1 }),
    ]);
    const second = join(dir, `second-${dialect}.jsonl`);
    expect((await cli(['export', '--db', copy, '-o', second])).code).toBe(0);
    // the same file but for the project's retention, which the test set to 1 above
    expect(sansRetention(readFileSync(second, 'utf8'))).toBe(
      sansRetention(readFileSync(first, 'utf8')),
    );

    const csv = await cli(['export', '--format', 'csv', '--agent', 'bug-triager']);
    expect(csv.stdout.split('\n')[1]).toMatch(/^c-run-0,default,bug-triager,succeeded,/);
    const nobody = await cli(['export', '--agent', 'no-such-agent']);
    expect(nobody).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'runlog: no agent no-such-agent in project default\n',
    });
    // `-o -` is standard output, not a file named -
    const dash = await cli(['export', '--format', 'csv', '--agent', 'bug-triager', '-o', '-']);
    expect(dash.stdout).toBe(csv.stdout);
    // a CSV export given to import is one clear line, not a rejection per line
    const csvFile = join(dir, `export-${dialect}.csv`);
    writeFileSync(csvFile, csv.stdout);
    const wrong = await cli(['import', csvFile, '--db', join(dir, `csv-${dialect}.db`)]);
    expect(wrong).toMatchObject({ code: 1, stdout: '' });
    expect(wrong.stderr).toMatch(/^runlog: .* is not a JSONL export: [^\n]*\n$/);

    const reversed = await cli(['export', '--since', '2026-02-02', '--until', '2026-02-01']);
    expect(reversed.code).toBe(2);
    expect(reversed.stderr).toBe('runlog: --since must be before --until: no run can match\n');

    const bad = join(dir, `bad-${dialect}.jsonl`);
    const lines = runLines(readFileSync(first, 'utf8'));
    writeFileSync(bad, [lines[0], '{"id": 5}', lines[1]].join('\n'));
    const partial = await cli(['import', bad, '--db', join(dir, `partial-${dialect}.db`)]);
    expect(partial.code).toBe(1);
    expect(partial.stderr).toContain(`runlog: ${bad}:2: id: `);
    expect(partial.stdout).toMatch(/^imported 2 runs .*; 1 line rejected$/m);
    // with --json, stdout and stderr each hold JSON only: the rejected lines are in the summary
    const partialJson = await cli(['import', bad, '--json', '--db', join(dir, `pj-${dialect}.db`)]);
    expect(partialJson.code).toBe(1);
    expect(JSON.parse(partialJson.stdout)).toMatchObject({
      runs: 2,
      rejected: 1,
      rejections: [{ line: 2, reason: expect.stringMatching(/^id: /) }],
    });
    expect(JSON.parse(partialJson.stderr)).toMatchObject({ error: expect.anything() });
    // a file that cannot be written is one line naming it, not Node's error
    const unwritable = await cli(['export', '-o', join(dir, 'no-such-dir', 'x.jsonl')]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/^runlog: cannot write .*no-such-dir\/x\.jsonl: ENOENT/);
  });

  it('says which project an import went into, and that a project it created has no key yet', async () => {
    const file = join(dir, `projects-${dialect}.jsonl`);
    expect((await cli(['export', '-o', file])).code).toBe(0);
    const runs = runLines(readFileSync(file, 'utf8')).length;
    const db = join(dir, `projects-${dialect}.db`);
    // `stagng` for `staging`: the runs go to a new project that no key reaches
    const typo = await cli(['import', file, '--db', db, '--project', 'stagng']);
    expect(typo.code).toBe(0);
    expect(typo.stdout).toMatch(new RegExp(` from ${file} into project stagng\\n$`));
    expect(typo.stderr).toBe(
      'runlog: note: created project stagng, which no key reaches yet: add one with `runlog keys create --scope admin --project stagng`\n',
    );
    // into a project that is there: named, and no note
    const again = await cli(['import', file, '--db', db, '--project', 'stagng', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({
      runs,
      projects: ['stagng'],
      created_projects: [],
    });
    expect(again.stderr).toBe('');
  });

  it('cleans up old runs while ingestion goes on, losing no recent run', async () => {
    const dry = JSON.parse(
      (await cli(['cleanup', '--days', '30', '--dry-run', '--json'])).stdout,
    ) as {
      deleted_runs: number;
    };
    expect(dry.deleted_runs).toBe(10);
    // without --days, the project's own retention (30 days here) decides
    const byRetention = JSON.parse((await cli(['cleanup', '--dry-run', '--json'])).stdout) as {
      deleted_runs: number;
    };
    expect(byRetention.deleted_runs).toBe(10);
    expect((await cli(['cleanup', '--all-projects', '--dry-run'])).code).toBe(2);
    // every ended run at once is said, not assumed: --yes, or --dry-run to count them
    const everything = await cli(['cleanup', '--days', '0']);
    expect(everything).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'runlog: --days 0 deletes every run that has ended, of project default: add --yes to do it, or --dry-run to count them\n',
    });
    expect(
      JSON.parse((await cli(['cleanup', '--days', '0', '--dry-run', '--json'])).stdout),
    ).toMatchObject({ dry_run: true, deleted_runs: expect.any(Number) });
    expect(JSON.parse((await cli(['cleanup', '--dry-run', '--json'])).stdout)).toMatchObject({
      deleted_runs: 10,
    });
    // which project it cleans: `default` unless --project says, or every one
    expect(JSON.parse((await cli(['cleanup', '--dry-run', '--json'])).stdout)).toMatchObject({
      project_id: 'default',
    });
    expect((await cli(['cleanup', '--days', '30', '--all-projects', '--dry-run'])).stdout).toMatch(
      /^would delete 10 runs and 20 steps of every project that ended before /,
    );
    const live = Array.from({ length: 25 }, (_, i) => `c-live-${i}`);
    const ingesting = (async () => {
      for (const id of live)
        await ingest([
          { type: 'run.start', run: { id, agent_id: 'writer' } },
          { type: 'run.end', run: { id, status: 'succeeded' } },
        ]);
    })();
    // on PostgreSQL the running server hears of the deletions and tells its subscribers
    const deletedSeen: string[] = [];
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/ws`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; data?: { id: string } };
      if (m.type === 'subscribed') deletedSeen.push('(subscribed)');
      if (m.type === 'run_deleted') deletedSeen.push(m.data!.id);
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', topics: ['runs'] }));
    await waitFor(() => deletedSeen.length > 0, 'the subscription');
    const [cleanup] = await Promise.all([
      cli(['cleanup', '--days', '30', '--batch-size', '1']),
      ingesting,
    ]);
    expect(cleanup.code).toBe(0);
    expect(cleanup.stdout).toMatch(
      /^deleted 10 runs and 20 steps of project default that ended before /,
    );
    if (dialect === 'postgres') {
      await waitFor(() => deletedSeen.length === 11, 'ten run_deleted messages');
      expect(deletedSeen).toContain('c-run-0');
    } else {
      // on SQLite the server does not hear of another process's deletions (README)
      await new Promise((r) => setTimeout(r, 200));
      expect(deletedSeen).toEqual(['(subscribed)']);
    }
    ws.terminate();
    const left = JSON.parse((await cli(['runs', 'list', '--limit', '500', '--json'])).stdout) as {
      runs: { id: string }[];
    };
    const ids = left.runs.map((r) => r.id);
    for (const id of live) expect(ids).toContain(id);
    expect(ids).not.toContain('c-run-0');
    expect(ids).toContain('c-run-11');
  });
});
