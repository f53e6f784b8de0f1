import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { run } from './main.js';

/** What a mistyped URL would have become: a SQLite file under `<scheme>:/` in the working directory. */
const STRAY = ['postgress:', 'mysql:'];
afterEach(() => {
  for (const dir of STRAY) rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stderr = '';
  err.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const code = await run(args, { stdout: out, stderr: err, env });
  return { code, stderr };
}

it('refuses a --db URL that is not postgres:// for migrate and import, as serve does, creating no SQLite file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'runlog-db-url-'));
  const file = join(dir, 'runs.jsonl');
  writeFileSync(file, '');
  try {
    const refusal =
      'runlog: invalid configuration: --db (RUNLOG_DB) must be a file path or a postgres:// URL\n';
    expect(await cli(['migrate', '--db', 'postgress://postgres@127.0.0.1/runlog'])).toEqual({
      code: 2,
      stderr: refusal,
    });
    expect(await cli(['import', file], { RUNLOG_DB: 'mysql://root@127.0.0.1/runlog' })).toEqual({
      code: 2,
      stderr: refusal,
    });
    for (const stray of STRAY) expect(existsSync(stray), stray).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('says how many lines an import refused, one line in the singular', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'runlog-import-'));
  const file = join(dir, 'bad.jsonl');
  writeFileSync(file, '{"id": 5}\n');
  try {
    const { code, stderr } = await cli(['import', file, '--db', join(dir, 'runlog.db')]);
    expect(code).toBe(1);
    expect(stderr.split('\n').at(-2)).toBe(`runlog: 1 line of ${file} was not imported`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
