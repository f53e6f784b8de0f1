import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from './client.js';
import { openOutputFile } from './output-file.js';

describe('openOutputFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runlog-output-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the file its name only when committed, its owner only', async () => {
    const path = join(dir, 'runs.jsonl');
    const file = await openOutputFile(path);
    file.stream.write('{"id":"r1"}\n');
    expect(readdirSync(dir)).not.toContain('runs.jsonl');
    await file.commit();
    expect(readFileSync(path, 'utf8')).toBe('{"id":"r1"}\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['runs.jsonl']);
  });

  it('leaves the file that was there when discarded, and nothing beside it', async () => {
    const path = join(dir, 'backup.jsonl');
    writeFileSync(path, 'the last backup\n');
    const file = await openOutputFile(path);
    file.stream.write('half of a new one');
    await file.discard();
    await file.discard();
    expect(readFileSync(path, 'utf8')).toBe('the last backup\n');
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('says a write that failed when committed, and keeps nothing of it', async () => {
    const file = await openOutputFile(join(dir, 'failed.csv'));
    const closed = new Promise<void>((resolve) => file.stream.once('close', () => resolve()));
    file.stream.destroy(new Error('disk full'));
    await closed;
    await expect(file.commit()).rejects.toThrow(/^cannot write .*failed\.csv: disk full$/);
    await file.discard();
    expect(readdirSync(dir).filter((f) => f.includes('failed'))).toEqual([]);
  });

  it('names the file it cannot write', async () => {
    const err = await openOutputFile(join(dir, 'no', 'such', 'dir.csv')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toMatch(/^cannot write .*no\/such\/dir\.csv: ENOENT/);
  });
});
