import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';
import { migrateToLatest } from './migrate.js';

const posix = process.platform === 'win32' ? describe.skip : describe;

posix('a SQLite database file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runlog-mode-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const mode = (path: string) => statSync(path).mode & 0o777;

  it('is made readable by its owner only, in new folders only they may enter, its WAL too', async () => {
    const file = join(dir, 'new', '.runlog', 'runlog.db');
    const db = await openDatabase(file);
    await migrateToLatest(db);
    await db.kysely
      .insertInto('projects')
      .values({ id: 'p', name: 'P', retention_days: 30, created_at: 0 })
      .execute();
    expect(mode(file)).toBe(0o600);
    expect(mode(`${file}-wal`)).toBe(0o600);
    expect(mode(join(dir, 'new', '.runlog'))).toBe(0o700);
    expect(mode(join(dir, 'new'))).toBe(0o700);
    await db.close();
  });

  it('keeps the mode of a file and folder that were there', async () => {
    const folder = join(dir, 'shared');
    mkdirSync(folder, { mode: 0o755 });
    chmodSync(folder, 0o755);
    const file = join(folder, 'runlog.db');
    writeFileSync(file, '');
    chmodSync(file, 0o640);
    const db = await openDatabase(file);
    await migrateToLatest(db);
    expect(mode(file)).toBe(0o640);
    expect(mode(folder)).toBe(0o755);
    await db.close();
  });
});
