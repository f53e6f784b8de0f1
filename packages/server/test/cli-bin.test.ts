import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runFixture } from '../../core/test/fixtures.js';
import pg from 'pg';
import { PG_BASE_URL, pgIt, silenceableRelay, startTestServer, waitFor } from './harness.js';
import { openDatabase } from '../src/db/database.js';
import { configFromEnv } from '../src/config.js';

const BIN = fileURLToPath(new URL('../bin/runlog.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)));

function runlog(...args: string[]) {
  return runlogWith({}, ...args);
}

function runlogWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  return runlogFed(undefined, env, ...args);
}

/** The binary run with `input` on its standard input. */
function runlogFed(input: string | undefined, env: NodeJS.ProcessEnv, ...args: string[]) {
  const res = spawnSync(process.execPath, [BIN, ...args], {
    input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', RUNLOG_URL: 'http://127.0.0.1:1', ...env },
    timeout: 20_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

// the binary runs the build (`npm test` builds first); without one there is nothing to spawn
(built ? describe : describe.skip)('the runlog binary', () => {
  it('prints help on every level and exits 0', () => {
    const top = runlog('--help');
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: runlog \[options\] \[command\]/);
    for (const cmd of ['runs', 'threads', 'agents', 'keys']) {
      const sub = runlog(cmd, '--help');
      expect(sub.code).toBe(0);
      expect(sub.stdout).toContain(`Usage: runlog ${cmd} [options] [command]`);
    }
    expect(runlog('export', '--help').stdout).toContain('--format <format>');
    expect(runlog('--version').stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    // `runs get` is `runs show` by the name other CLIs use
    expect(runlog('runs', 'get', '--help').stdout).toMatch(/^Usage: runlog runs show\|get /);
    expect(runlog('agents', 'set', '--help').stdout).toContain('--max-cost <usd>');
    // Stop and Retry take many runs: ids, or the filters runs list takes
    for (const action of ['cancel', 'retry']) {
      const help = runlog('runs', action, '--help').stdout;
      expect(help).toContain(`Usage: runlog runs ${action} [options] [ids...]`);
      for (const flag of ['--agent <id>', '--status <list>', '--since <when>', '--limit <n>'])
        expect(help).toContain(flag);
      expect(help).toContain('--dry-run');
      expect(help).toContain('-y, --yes');
    }
  });

  it('acts on the runs filters match only with --yes when not at a terminal', async () => {
    const server = await startTestServer('sqlite');
    try {
      const res = await fetch(`${server.url}/api/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          events: ['bin-1', 'bin-2'].flatMap((id) => [
            { type: 'run.start', run: { id, agent_id: 'bin-agent' } },
            { type: 'run.end', run: { id, status: 'failed' } },
          ]),
        }),
      });
      expect(res.status).toBe(200);
      // the server runs in this process: the binary is spawned, not run synchronously
      const runlogAsync = (...args: string[]) => {
        const child = spawn(process.execPath, [BIN, ...args], {
          env: {
            PATH: process.env.PATH ?? '',
            RUNLOG_URL: server.url,
            RUNLOG_API_KEY: server.adminKey,
          },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        child.stdin.end();
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
          child.on('close', (code) => resolve({ code, stdout, stderr })),
        );
      };
      const asked = await runlogAsync('runs', 'retry', '--agent', 'bin-agent');
      expect(asked.code).toBe(2);
      expect(asked.stderr).toBe(
        'runlog: add --yes to retry 2 runs (or --dry-run to only list them)\n',
      );
      expect(asked.stdout).toMatch(/^2 runs to retry:\n/);
      const json = await runlogAsync('runs', 'retry', '--agent', 'bin-agent', '--json');
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stderr)).toMatchObject({ error: { exit_code: 2 } });
      expect(json.stdout).toBe('');
      const done = await runlogAsync('runs', 'retry', '--agent', 'bin-agent', '--yes');
      expect(done.code).toBe(0);
      expect(done.stdout).toMatch(/\n2 runs: queued 2, already retried 0, failed 0\n$/);
    } finally {
      await server.close();
    }
  });

  it('imports from standard input with -, as export -o - writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-stdin-'));
    const runs = ['r-1', 'r-2'].map((id) => ({
      ...runFixture({ id, status: 'succeeded', ended_at: '2026-01-01T00:00:01.000Z' }),
      steps: [],
    }));
    const from = join(dir, 'from.db');
    const into = join(dir, 'into.db');
    const jsonl = runs.map((r) => JSON.stringify(r)).join('\n') + '\n';
    expect(runlogFed(jsonl, {}, 'import', '-', '--db', from)).toMatchObject({
      code: 0,
      stdout: 'imported 2 runs (0 steps) from standard input into project default\n',
    });
    // one database to another through a pipe
    const exported = runlog('export', '--db', from, '-o', '-');
    expect(exported.code, exported.stderr).toBe(0);
    const piped = runlogFed(exported.stdout, {}, 'import', '-', '--db', into, '--json');
    expect(piped.code, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({
      file: '-',
      bytes: Buffer.byteLength(exported.stdout),
      runs: 2,
    });
    // what is not an export is refused line by line, naming where it came from
    const csv = runlogFed('id,agent_id\nr-9,a\n', {}, 'import', '-', '--db', into);
    expect(csv.code).toBe(1);
    expect(csv.stderr).toContain('runlog: standard input:1: ');
    expect(csv.stderr).toContain('2 lines of standard input were not imported');
  });

  it('exits 2 with one line for bad usage and 1 with one line for a failure', () => {
    const flag = runlog('stats', '--days', 'many');
    expect(flag).toMatchObject({ code: 2, stdout: '' });
    expect(flag.stderr).toBe(
      "runlog: option '--days <n>' argument 'many' is invalid. --days must be a whole number\n",
    );
    const missing = runlog('import', '/nonexistent/runs.jsonl');
    expect(missing).toMatchObject({
      code: 1,
      stderr: 'runlog: cannot read /nonexistent/runs.jsonl: no such file\n',
    });
    expect(runlog('nonsense').code).toBe(2);
    // a flag's value out of its range is bad usage too, named before anything starts
    expect(runlog('serve', '--port', '99999')).toMatchObject({
      code: 2,
      stderr:
        "runlog: option '--port <port>' argument '99999' is invalid. --port must be 0 to 65535\n",
    });
    expect(runlog('serve', '--retention-days', '0').code).toBe(2);
  });

  // a device that is always full: the output is lost, as on a full disk
  (existsSync('/dev/full') ? it : it.skip)(
    'fails when its output cannot be written (a full disk), as a cut pipe does not',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'runlog-full-'));
      const db = join(dir, 'runlog.db');
      expect(runlog('migrate', '--db', db).code).toBe(0);
      const full = openSync('/dev/full', 'w');
      try {
        const toFull = (...args: string[]) => {
          const res = spawnSync(process.execPath, [BIN, ...args], {
            encoding: 'utf8',
            env: { PATH: process.env.PATH ?? '' },
            stdio: ['ignore', full, 'pipe'],
            timeout: 20_000,
          });
          return { code: res.status, stderr: res.stderr };
        };
        expect(toFull('migrate', '--db', db)).toEqual({
          code: 1,
          stderr: 'runlog: cannot write the output: ENOSPC: no space left on device, write\n',
        });
        const json = toFull('migrate', '--db', db, '--json');
        expect(json.code).toBe(1);
        expect(JSON.parse(json.stderr)).toMatchObject({ error: { exit_code: 1 } });
      } finally {
        closeSync(full);
      }
    },
  );

  it('stops a start on bad configuration with one line naming the setting or the cause', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-bin-'));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = String((blocker.address() as AddressInfo).port);
    try {
      const taken = runlog('serve', '--db', join(dir, 'a.db'), '--port', port);
      expect(taken).toMatchObject({
        code: 1,
        stderr: `runlog: port ${port} on 127.0.0.1 is already in use (set --port or RUNLOG_PORT)\n`,
      });
    } finally {
      blocker.close();
    }
    writeFileSync(join(dir, 'file'), '');
    const underFile = runlog('serve', '--db', join(dir, 'file', 'x.db'), '--port', '0');
    expect(underFile.code).toBe(1);
    expect(underFile.stderr).toBe(
      `runlog: cannot create or open the database file ${join(dir, 'file', 'x.db')}: ${join(dir, 'file')} is a file, not a directory\n`,
    );
    if (existsSync('/proc/self')) {
      // a folder that cannot be made where its parent is (Node's recursive mkdir looped here)
      const underProc = runlog('serve', '--db', '/proc/runlog-nope/x.db', '--port', '0');
      expect(underProc).toMatchObject({
        code: 1,
        stderr:
          'runlog: cannot create or open the database file /proc/runlog-nope/x.db: the folder /proc/runlog-nope cannot be made there\n',
      });
    }
    const badHost = runlogWith(
      { RUNLOG_HOST: 'not-a-host.invalid', RUNLOG_DB: join(dir, 'c.db') },
      'serve',
      '--port',
      '0',
    );
    expect(badHost).toMatchObject({
      code: 1,
      stderr:
        'runlog: cannot listen on not-a-host.invalid:0: the host does not resolve (set --host or RUNLOG_HOST)\n',
    });
    // a PostgreSQL that refuses the role is a database that cannot be connected to
    const noRole = runlog(
      'serve',
      '--db',
      'postgres://no_such_role_runlog:pw@127.0.0.1:5432/postgres',
      '--port',
      '0',
    );
    expect(noRole.code).toBe(1);
    expect(noRole.stderr).toMatch(
      /^runlog: cannot connect to the database postgres:\/\/no_such_role_runlog:\*+@127\.0\.0\.1:5432\/postgres: .+\n$/,
    );
    // nor is one that will not talk TLS as the URL asks: the line names the database too
    const noTls = runlog(
      'serve',
      '--db',
      `${PG_BASE_URL}${PG_BASE_URL.includes('?') ? '&' : '?'}sslmode=verify-full`,
      '--port',
      '0',
    );
    expect(noTls.code).toBe(1);
    expect(noTls.stderr).toMatch(/^runlog: cannot connect to the database postgres:\/\/.+: .+\n$/);
    // an empty RUNLOG_PORT is not port 0 (a random port): it is refused like any bad one, as
    // bad usage (exit 2), as the same flag is
    for (const value of ['abc', '', '4.5']) {
      const badPort = runlogWith({ RUNLOG_PORT: value, RUNLOG_DB: join(dir, 'b.db') }, 'serve');
      expect(badPort.code).toBe(2);
      expect(badPort.stderr).toBe(
        'runlog: invalid configuration: --port (RUNLOG_PORT) must be a port number (0-65535)\n',
      );
    }
    // an empty database or host is said in words, as the port is
    expect(runlogWith({ RUNLOG_DB: '' }, 'serve').stderr).toBe(
      'runlog: invalid configuration: --db (RUNLOG_DB) must not be empty: a SQLite file path or a postgres:// URL\n',
    );
    expect(runlogWith({ RUNLOG_DB: '' }, 'keys', 'list').stderr).toBe(
      'runlog: invalid configuration: --db (RUNLOG_DB) must not be empty: a SQLite file path or a postgres:// URL\n',
    );
    expect(runlogWith({ RUNLOG_HOST: '', RUNLOG_DB: join(dir, 'b.db') }, 'serve').stderr).toBe(
      'runlog: invalid configuration: --host (RUNLOG_HOST) must not be empty: an address to listen on, such as 127.0.0.1\n',
    );
    // out of range, the line says the range
    const badDays = runlogWith(
      { RUNLOG_RETENTION_DAYS: '5000', RUNLOG_DB: join(dir, 'b.db') },
      'serve',
    );
    expect(badDays.stderr).toBe(
      'runlog: invalid configuration: --retention-days (RUNLOG_RETENTION_DAYS) must be a number of days (1 to 3650)\n',
    );
    // a level is named with the ones there are; `INFO` is taken as other tools' LOG_LEVEL is
    expect(
      runlogWith({ RUNLOG_LOG_LEVEL: 'verbose', RUNLOG_DB: join(dir, 'b.db') }, 'serve').stderr,
    ).toBe(
      'runlog: invalid configuration: RUNLOG_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent\n',
    );
    expect(configFromEnv({ RUNLOG_LOG_LEVEL: ' INFO ' }).logLevel).toBe('info');
    // a dozen starts of the binary one after another: on a loaded machine each takes seconds
  }, 120_000);

  it('prints the first admin key and its login link once, and never a key given in RUNLOG_ADMIN_KEY', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-bin-'));
    const serve = async (env: NodeJS.ProcessEnv) => {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
        env: { PATH: process.env.PATH ?? '', ...env },
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
      // the start's lines are written at once, before the signal can be handled
      child.kill('SIGTERM');
      await new Promise((resolve) => child.stdout.once('close', resolve));
      return out;
    };
    const generated = await serve({ RUNLOG_DB: join(dir, 'a.db') });
    const key = /^ {2}(rl_\S+)$/m.exec(generated)?.[1];
    expect(key).toBeDefined();
    expect(generated).toContain(`/login#key=${key}`);
    const again = await serve({ RUNLOG_DB: join(dir, 'a.db') });
    expect(again).not.toContain('rl_');
    const given = 'rl_scripted_admin_key_0123456789';
    const scripted = await serve({ RUNLOG_DB: join(dir, 'b.db'), RUNLOG_ADMIN_KEY: given });
    expect(scripted).toContain('the admin key from RUNLOG_ADMIN_KEY');
    expect(scripted).not.toContain(given);

    // an export imported into a new database brings its project, but no key to log in with
    const exported = {
      ...runFixture({
        project_id: 'acme',
        status: 'succeeded',
        ended_at: '2026-01-01T00:00:01.000Z',
      }),
      steps: [],
    };
    writeFileSync(join(dir, 'runs.jsonl'), `${JSON.stringify(exported)}\n`);
    expect(runlog('import', '--db', join(dir, 'c.db'), join(dir, 'runs.jsonl')).code).toBe(0);
    const imported = await serve({ RUNLOG_DB: join(dir, 'c.db') });
    expect(imported).toContain(
      'This database had no API key: added an admin key for project acme (shown once):',
    );
    const importedKey = /^ {2}(rl_\S+)$/m.exec(imported)?.[1];
    expect(imported).toContain(`/login#key=${importedKey}`);
    const keys = JSON.parse(
      runlog('keys', 'list', '--db', join(dir, 'c.db'), '--project', 'acme', '--json').stdout,
    ) as {
      keys: { scope: string }[];
    };
    expect(keys.keys.map((k) => k.scope)).toEqual(['admin']);
  });

  it("logs a request's path and filters at info, but not the text of its search", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-log-'));
    const key = 'rl_scripted_admin_key_0123456789';
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
      env: {
        PATH: process.env.PATH ?? '',
        RUNLOG_DB: join(dir, 'runlog.db'),
        RUNLOG_ADMIN_KEY: key,
        RUNLOG_LOG_LEVEL: 'info',
      },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
      const url = /Runlog listening on (\S+)/.exec(out)![1]!;
      const res = await fetch(`${url}/api/v1/runs?status=failed&q=card%204242%20expired&limit=5`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
      await waitFor(() => out.includes('request completed'), 'the request to be logged', 5_000);
      // the search is over what agents recorded (prompts, customers' words): it stays out of
      // the log, where it would outlive the runs it found
      expect(out).toContain('/api/v1/runs?status=failed&q=[redacted]&limit=5');
      expect(out).not.toContain('4242');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('close', resolve));
    }
  });

  it('stores a JSON field past --max-field-bytes truncated, and the variable sets it too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-field-'));
    const key = 'rl_scripted_admin_key_0123456789';
    const serve = async (args: string[], env: NodeJS.ProcessEnv) => {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
        env: { PATH: process.env.PATH ?? '', RUNLOG_ADMIN_KEY: key, ...env },
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      try {
        await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
        const url = /Runlog listening on (\S+)/.exec(out)![1]!;
        const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
        const res = await fetch(`${url}/api/v1/ingest`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            events: [
              { type: 'run.start', run: { id: 'r3k', agent_id: 'a', input: 'x'.repeat(3000) } },
              { type: 'run.start', run: { id: 'r1k', agent_id: 'a', input: 'y'.repeat(1000) } },
            ],
          }),
        });
        expect(res.status).toBe(200);
        const input = async (id: string) =>
          (
            (await (await fetch(`${url}/api/v1/runs/${id}`, { headers })).json()) as {
              input: unknown;
            }
          ).input;
        return { over: await input('r3k'), under: await input('r1k') };
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('close', resolve));
      }
    };
    for (const [args, env, db] of [
      [['--max-field-bytes', '2048'], {}, 'flag.db'],
      [[], { RUNLOG_MAX_FIELD_BYTES: '2048' }, 'env.db'],
    ] as const) {
      const { over, under } = await serve([...args], { ...env, RUNLOG_DB: join(dir, db) });
      expect(over, db).toMatchObject({ __runlog_truncated__: true, original_size: 3002 });
      expect(under, db).toBe('y'.repeat(1000));
    }
    // out of its range: one line naming the flag and the variable, exit 2
    expect(runlog('serve', '--max-field-bytes', '100').code).toBe(2);
    const small = runlogWith(
      { RUNLOG_MAX_FIELD_BYTES: '100', RUNLOG_DB: join(dir, 'bad.db') },
      'serve',
    );
    expect(small).toMatchObject({
      code: 2,
      stderr:
        'runlog: invalid configuration: --max-field-bytes (RUNLOG_MAX_FIELD_BYTES) must be a number of bytes (1024 to 67108864)\n',
    });
  }, 60_000);

  it('writes all of a large --json answer into a pipe before exiting', async () => {
    const server = await startTestServer('sqlite');
    try {
      const input = 'x'.repeat(300_000);
      const res = await fetch(`${server.url}/api/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          events: [{ type: 'run.start', run: { id: 'big', agent_id: 'a', input } }],
        }),
      });
      expect(res.status).toBe(200);
      // the child's stdout is a pipe, as with `| jq`
      const child = spawn(process.execPath, [BIN, 'runs', 'show', 'big', '--json'], {
        env: {
          PATH: process.env.PATH ?? '',
          RUNLOG_URL: server.url,
          RUNLOG_API_KEY: server.adminKey,
        },
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      expect((JSON.parse(stdout) as { input: string }).input).toBe(input);

      // a reader that stops early (`| head -c 100`) is no failure of the command's
      const early = spawn(process.execPath, [BIN, 'runs', 'show', 'big', '--json'], {
        env: {
          PATH: process.env.PATH ?? '',
          RUNLOG_URL: server.url,
          RUNLOG_API_KEY: server.adminKey,
        },
      });
      let stderr = '';
      early.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      early.stdout.once('data', () => early.stdout.destroy());
      expect(await new Promise((resolve) => early.on('close', resolve))).toBe(0);
      expect(stderr).toBe('');

      // nor for a command that keeps writing: runs tail | head -1
      const tail = spawn(process.execPath, [BIN, 'runs', 'tail', '--json'], {
        env: {
          PATH: process.env.PATH ?? '',
          RUNLOG_URL: server.url,
          RUNLOG_API_KEY: server.adminKey,
        },
      });
      let tailErr = '';
      tail.stderr.setEncoding('utf8').on('data', (d: string) => (tailErr += d));
      let lines = 0;
      tail.stdout.on('data', () => {
        lines++;
        tail.stdout.destroy();
      });
      const record = (n: number) =>
        fetch(`${server.url}/api/v1/ingest`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${server.adminKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({
            events: [{ type: 'run.start', run: { id: `tail-${n}`, agent_id: 'a' } }],
          }),
        });
      const closed = new Promise((resolve) => tail.on('close', resolve));
      for (let n = 0; lines === 0 || tail.exitCode === null; n++) {
        if (n > 100) break;
        await record(n);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await closed).toBe(0);
      expect(tailErr).toBe('');
    } finally {
      await server.close();
    }
  });

  it('answers the requests under way when told to stop, so none is committed and reported failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-bin-'));
    const key = 'rl_graceful_stop_key_0123456789abcdef';
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--db', join(dir, 'x.db')],
      {
        env: { PATH: process.env.PATH ?? '', RUNLOG_ADMIN_KEY: key },
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
    const url = /listening on (\S+)/.exec(out)![1]!;
    const failed: string[] = [];
    const answered: string[] = [];
    let stop = false;
    let n = 0;
    const client = async () => {
      while (!stop) {
        const id = `g-${n++}`;
        try {
          const res = await fetch(`${url}/api/v1/agents/a/runs`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ id }),
          });
          if (res.status === 202) answered.push(id);
          await res.arrayBuffer();
        } catch {
          failed.push(id);
          stop = true;
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);
    await waitFor(() => answered.length > 50, 'requests to flow');
    // a worker's long poll, waiting for runs of an agent nobody queues
    const poll = fetch(`${url}/api/v1/workers/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agents: ['idle-agent'], wait_ms: 60_000 }),
    }).then((r) => r.status);
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    // answered as the server stops, not held to its 60 s nor cut off
    expect(await poll).toBe(204);
    const code = await new Promise((resolve) => child.on('exit', resolve));
    stop = true;
    await Promise.all(clients);
    expect(code).toBe(0);
    // every run answered 202 is there, and no request that failed was written
    const db = await openDatabase(join(dir, 'x.db'));
    try {
      const stored = new Set(
        (await db.kysely.selectFrom('runs').select('id').execute()).map((r) => r.id),
      );
      for (const id of answered) expect(stored.has(id), id).toBe(true);
      for (const id of failed) expect(stored.has(id), `${id} failed but was written`).toBe(false);
    } finally {
      await db.close();
    }
  });

  it('exits at once, with 1, on a second signal while its shutdown waits on a request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-bin-'));
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--db', join(dir, 'x.db')],
      {
        env: { PATH: process.env.PATH ?? '', RUNLOG_ADMIN_KEY: 'rl_second_signal_key_0123456789' },
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
    const port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(out)![1]);
    // a request whose body stops arriving keeps the shutdown waiting for its grace period,
    // as one held by a database that stopped answering keeps it waiting for good
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      'POST /api/v1/ingest HTTP/1.1\r\nHost: runlog\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n{"events"',
    );
    try {
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGTERM');
      await waitFor(() => out.includes('shutting down'), 'the shutdown to start');
      child.kill('SIGINT');
      // before, the second signal was ignored: the shutdown ran its course and exited 0
      expect(await exited).toBe(1);
      expect(err).toBe('runlog: SIGINT again, exiting without finishing the shutdown\n');
    } finally {
      socket.destroy();
    }
  });

  it('logs no error for the requests it refuses while it shuts down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-bin-'));
    const key = 'rl_refused_stop_key_0123456789abcdef';
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--db', join(dir, 'x.db')],
      { env: { PATH: process.env.PATH ?? '', RUNLOG_ADMIN_KEY: key } },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
    const port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(out)![1]);
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    let answers = '';
    socket.on('data', (chunk: Buffer) => (answers += chunk.toString()));
    await new Promise((resolve) => socket.once('connect', resolve));
    const request = (path: string, body: unknown) => {
      const text = JSON.stringify(body);
      return (
        `POST ${path} HTTP/1.1\r\nHost: runlog\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
      );
    };
    try {
      // a long poll keeps the connection open through the shutdown's start; the request sent
      // after it on the same connection arrives while the server closes
      socket.write(request('/api/v1/workers/claim', { agents: ['a'], wait_ms: 5000 }));
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGTERM');
      await waitFor(() => out.includes('shutting down'), 'the shutdown to start');
      socket.write(request('/api/v1/ingest', { events: [] }));
      expect(await exited).toBe(0);
      expect(answers).toMatch(/HTTP\/1\.1 503 /);
      // an expected answer, as each deploy gives: before, each was a level-50 line with a stack
      expect(out).not.toContain('request failed');
      expect(out).not.toContain('"level":50');
    } finally {
      socket.destroy();
    }
  });

  pgIt(
    'exits, with 1, once its shutdown has waited 20 s for a database that stopped answering [postgres]',
    async () => {
      const relay = await silenceableRelay();
      const schema = `rt_stop_${Date.now().toString(36)}`;
      const key = 'rl_silent_stop_key_0123456789abcdef';
      const sep = relay.url.includes('?') ? '&' : '?';
      const child = spawn(
        process.execPath,
        [BIN, 'serve', '--port', '0', '--db', `${relay.url}${sep}schema=${schema}`],
        { env: { PATH: process.env.PATH ?? '', RUNLOG_ADMIN_KEY: key } },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      try {
        await waitFor(() => out.includes('Runlog listening'), 'the server to start', 15_000);
        const url = /listening on (\S+)/.exec(out)![1]!;
        const ingest = () =>
          fetch(`${url}/api/v1/ingest`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              events: [{ type: 'run.start', run: { id: 'r', agent_id: 'a' } }],
            }),
          });
        expect((await ingest()).status).toBe(200);
        relay.silence();
        // a write under way on a connection that will never answer
        const stuck = ingest().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 300));
        child.kill('SIGTERM');
        // before, the process waited on that connection for good
        expect(await exited).toBe(1);
        expect(err).toBe(
          'runlog: the shutdown did not finish within 20 s (the database does not answer); exiting\n',
        );
        await stuck;
      } finally {
        child.kill('SIGKILL');
        relay.close();
        const admin = new pg.Client({ connectionString: PG_BASE_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end();
      }
    },
    40_000,
  );

  it('runs admin commands on a SQLite file while its server records, waiting for the lock', async () => {
    const server = await startTestServer('sqlite');
    try {
      let stop = false;
      const statuses = new Map<number, number>();
      let n = 0;
      const load = async () => {
        while (!stop) {
          const i = n++;
          const events = Array.from({ length: 20 }, (_, j) => ({
            type: 'step.end',
            step: { id: `s${j}`, run_id: `busy-${i}`, type: 'tool' },
          }));
          const res = await fetch(`${server.url}/api/v1/ingest`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${server.adminKey}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ events }),
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }
      };
      // finished runs old enough for cleanup to delete, in several transactions
      const ended = Date.now() - 60 * 86_400_000;
      for (let b = 0; b < 6; b++) {
        const events = Array.from({ length: 100 }, (_, i) => ({
          type: 'run.end',
          run: { id: `old-${b}-${i}`, agent_id: 'a', status: 'succeeded', ended_at: ended },
        }));
        await fetch(`${server.url}/api/v1/ingest`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${server.adminKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ events }),
        });
      }
      const loads = Array.from({ length: 6 }, load);
      const cli = (...args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [BIN, ...args, '--db', server.dbUrl], {
            env: { PATH: process.env.PATH ?? '' },
          });
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
          child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        });
      try {
        await waitFor(() => n > 20, 'the load to run');
        const cleanup = await cli('cleanup', '--days', '30', '--batch-size', '50');
        expect(cleanup, cleanup.stderr).toMatchObject({ code: 0 });
        for (let i = 0; i < 4; i++) {
          const created = await cli(
            'keys',
            'create',
            '--name',
            `k${i}`,
            '--scope',
            'read',
            '--json',
          );
          expect(created, created.stderr).toMatchObject({ code: 0 });
          const { id } = JSON.parse(created.stdout) as { id: string };
          const revoked = await cli('keys', 'revoke', id);
          expect(revoked, revoked.stderr).toMatchObject({ code: 0 });
        }
      } finally {
        stop = true;
        await Promise.all(loads);
      }
      // the server went on answering, and never with 503 for the CLI's transactions
      expect([...statuses.keys()]).toEqual([200]);
    } finally {
      await server.close();
    }
    // nine starts of the binary beside a server under load: a busy machine (two suites, a
    // bench) took them past the default 30 s
  }, 120_000);
});
