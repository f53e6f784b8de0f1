import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, Run, RunList } from '@runlog/core';
import { runCli } from './cli-fixtures.js';
import { readCsv } from './csv.js';
import { describeEachDb, startTestServer, TEST_ADMIN_KEY, waitFor } from './harness.js';

const BIN = fileURLToPath(new URL('../bin/runlog.js', import.meta.url));

let n = 0;
const uniq = (base: string) => `${base}-${Date.now().toString(36)}-${n++}`;

describeEachDb('runlog runs export', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  const dir = mkdtempSync(join(tmpdir(), 'runlog-export-'));
  let cli: (args: string[], env?: NodeJS.ProcessEnv) => ReturnType<typeof runCli>;
  let key: string;

  beforeAll(async () => {
    server = await startTestServer(dialect, { background: false });
    const id = uniq('export');
    const created = await fetch(`${server.url}/api/v1/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: id }),
    });
    key = ((await created.json()) as { admin_key: { key: string } }).admin_key.key;
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const events: IngestEvent[] = Array.from({ length: 30 }, (_, i) => ({
      type: 'run.end',
      run: {
        id: `run-${String(i).padStart(2, '0')}`,
        agent_id: i % 2 ? 'support' : 'billing',
        status: i % 5 === 0 ? 'failed' : 'succeeded',
        // a cell with a quote, a comma and a line break: one run all the same
        input: i === 7 ? 'a "quoted", two-line\ninput' : { i },
        started_at: t0 + i * 1000,
        ended_at: t0 + i * 1000 + 500,
      },
    }));
    const res = await fetch(`${server.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(200);
    cli = (args, env = {}) =>
      runCli(args, { env: { RUNLOG_URL: server.url, RUNLOG_API_KEY: key, ...env } });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the runs a filter keeps as CSV to standard output, a row a run', async () => {
    const res = await cli(['runs', 'export', '--agent', 'support', '--status', 'succeeded']);
    expect(res.code, res.stderr).toBe(0);
    // the file runlog export --format csv writes
    expect(res.stdout).toMatch(/^id,project_id,agent_id,status,trigger,/);
    expect(res.stdout.endsWith('\n')).toBe(true);
    // run-07's input holds a line break inside its quoted cell
    expect(res.stdout).toContain('"a ""quoted"", two-line\ninput"');
    const ids = readCsv(res.stdout)
      .slice(1)
      .map((row) => row[0]);
    const odd = Array.from({ length: 15 }, (_, k) => 29 - 2 * k).filter((i) => i % 5 !== 0);
    expect(ids).toEqual(odd.map((i) => `run-${String(i).padStart(2, '0')}`));
  });

  it('writes JSON Lines to a file named .jsonl, its owner only, and says how many runs', async () => {
    const file = join(dir, 'failed.jsonl');
    const res = await cli([
      'runs',
      'export',
      '--status',
      'failed',
      '--sort',
      'duration',
      '-o',
      file,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe(`wrote 6 runs to ${file}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const exported = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Run);
    const listed = await fetch(`${server.url}/api/v1/runs?status=failed&sort=duration&limit=50`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(exported).toEqual(((await listed.json()) as RunList).runs);
  });

  it('counts CSV rows, not the line breaks inside cells, and keeps to --limit', async () => {
    const file = join(dir, 'all.csv');
    const res = await cli(['runs', 'export', '--limit', '25', '-o', file]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe(`wrote 25 runs to ${file}\n`);
    const one = await cli(['runs', 'export', '--limit', '1', '--format', 'jsonl']);
    expect(one.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect((JSON.parse(one.stdout) as Run).id).toBe('run-29');
  });

  it('takes -o - as standard output, as runlog export does, writing no file named -', async () => {
    // a file named - would land in the working directory: taken away if the test makes one
    const dash = join(process.cwd(), '-');
    expect(existsSync(dash)).toBe(false);
    try {
      const res = await cli(['runs', 'export', '--limit', '2', '--format', 'jsonl', '-o', '-']);
      expect(res.code, res.stderr).toBe(0);
      expect(
        res.stdout
          .trimEnd()
          .split('\n')
          .map((l) => (JSON.parse(l) as Run).id),
      ).toEqual(['run-29', 'run-28']);
      expect(existsSync(dash)).toBe(false);
    } finally {
      rmSync(dash, { force: true });
    }
  });

  it('leaves no short file when the answer is cut off, and keeps the file an earlier export wrote', async () => {
    const file = join(dir, 'cut.csv');
    writeFileSync(file, 'an earlier export\n');
    // a server that sends the header and one row, then drops the connection
    const broken = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.write('id,agent_id\nrun-1,support\n', () => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
      const res = await cli(['runs', 'export', '-o', file], { RUNLOG_URL: url });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^runlog: /);
    } finally {
      broken.close();
    }
    expect(readFileSync(file, 'utf8')).toBe('an earlier export\n');
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
    // and a whole export then replaces it, its owner's only
    expect((await cli(['runs', 'export', '--limit', '3', '-o', file])).code).toBe(0);
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(4);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('takes its half-written file away when stopped with Ctrl-C', async () => {
    const file = join(dir, 'interrupted.csv');
    writeFileSync(file, 'an earlier export\n');
    // a server that sends the header and one row, then nothing more
    const open: ServerResponse[] = [];
    const stalled = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.write('id,agent_id\nrun-1,support\n');
      open.push(res);
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
      const child = spawn(process.execPath, [BIN, 'runs', 'export', '-o', file], {
        env: { PATH: process.env.PATH ?? '', RUNLOG_URL: url, RUNLOG_API_KEY: key },
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.once('exit', (_code, signal) => resolve(signal)),
      );
      // the row is in the hidden file
      await waitFor(
        () =>
          readdirSync(dir).some(
            (f) => f.startsWith('.interrupted.csv.') && statSync(join(dir, f)).size > 0,
          ),
        'the export to begin',
        15_000,
      );
      child.kill('SIGINT');
      expect(await exited).toBe('SIGINT');
    } finally {
      for (const res of open) res.destroy();
      stalled.close();
    }
    expect(readFileSync(file, 'utf8')).toBe('an earlier export\n');
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('takes --json as every data command does: what it wrote, and a failure, as JSON', async () => {
    const file = join(dir, 'summary.csv');
    const res = await cli(['runs', 'export', '--status', 'failed', '-o', file, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ runs: 6, file });
    expect(res.stderr).toBe('');
    // to standard output: the data there, the summary on stderr
    const piped = await cli([
      'runs',
      'export',
      '--status',
      'failed',
      '--format',
      'jsonl',
      '--json',
    ]);
    expect(piped.stdout.trimEnd().split('\n')).toHaveLength(6);
    expect(JSON.parse(piped.stderr)).toEqual({ runs: 6, file: null });
    const refused = await cli(['runs', 'export', '--json'], { RUNLOG_API_KEY: 'rl_wrong_key' });
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stderr)).toMatchObject({
      error: { message: expect.stringContaining('the API key was refused') },
    });
  });

  it('refuses bad usage (exit 2) and says what the server refused (exit 1)', async () => {
    expect(await cli(['runs', 'export', '--limit', '100001'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--limit must be 1 to 100000'),
    });
    expect(await cli(['runs', 'export', '--format', 'xlsx'])).toMatchObject({ code: 2 });
    expect(
      await cli(['runs', 'export', '--since', '2026-12-02', '--until', '2026-12-01']),
    ).toMatchObject({ code: 2, stderr: expect.stringContaining('--since must not be after') });
    expect(await cli(['runs', 'export', '-o', join(dir, 'no', 'such', 'dir.csv')])).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('cannot write'),
    });
    expect(await cli(['runs', 'export'], { RUNLOG_API_KEY: 'rl_wrong_key' })).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('the API key was refused'),
    });
  });
});
