import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { openDatabase, othersMayRead, WAL_SIZE_LIMIT_BYTES } from './database.js';
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

  it('is named at start when every user may read it, as versions before 0600 made it', async () => {
    const file = join(dir, 'old', 'runlog.db');
    mkdirSync(join(dir, 'old'));
    // what an older Runlog made with the usual umask: an upgrade keeps the file's mode
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    const db = await openDatabase(file);
    await migrateToLatest(db);
    await db.close();
    expect(mode(file)).toBe(0o644);
    expect(othersMayRead(file)).toBe(
      `${file} is readable by every user of this machine (mode 644): it holds run inputs and ` +
        `outputs and the API key hashes; make it the owner's only with: chmod 600 ${file}`,
    );
    // shared with a group on purpose, or made private: nothing to say
    chmodSync(file, 0o640);
    expect(othersMayRead(file)).toBeUndefined();
    expect(othersMayRead(join(dir, 'new', '.runlog', 'runlog.db'))).toBeUndefined();
  });

  it("answers reads while a transaction waits for another process's write lock, then commits it", async () => {
    const file = join(dir, 'locked.db');
    const db = await openDatabase(file);
    await sql`CREATE TABLE t (x integer)`.execute(db.kysely);
    await sql`INSERT INTO t (x) VALUES (1)`.execute(db.kysely);
    // a sqlite3 shell, a backup or a CLI command beside the server, holding the write lock
    const other = new SQLite(file);
    other.exec('BEGIN EXCLUSIVE');
    const write = db.kysely
      .transaction()
      .execute(async (trx) => sql`INSERT INTO t (x) VALUES (2)`.execute(trx));
    let written = false;
    void write.then(() => (written = true));
    await new Promise((r) => setTimeout(r, 200));
    // before: the read queued behind the waiting transaction until it gave up, 5 s on
    const reading = sql<{ n: number }>`SELECT count(*) AS n FROM t`.execute(db.kysely);
    const first = await Promise.race([
      reading.then(() => 'read'),
      new Promise((r) => setTimeout(() => r('still waiting'), 3000)),
    ]);
    expect(first).toBe('read');
    expect((await reading).rows[0]!.n).toBe(1);
    expect(written).toBe(false);
    other.exec('COMMIT');
    other.close();
    await write;
    const after = await sql<{ n: number }>`SELECT count(*) AS n FROM t`.execute(db.kysely);
    expect(after.rows[0]!.n).toBe(2);
    await db.close();
  });

  it('cuts its WAL back once a long read that let it grow has ended', async () => {
    const file = join(dir, 'wal.db');
    const db = await openDatabase(file);
    await sql`CREATE TABLE filler (x text)`.execute(db.kysely);
    // a read held open beside the writes (`runlog export` beside a busy server): no
    // checkpoint may pass it, so every commit meanwhile stays in the WAL
    const reader = new SQLite(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM filler').get();
    const megabyte = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 80; i++)
      await sql`INSERT INTO filler (x) VALUES (${megabyte})`.execute(db.kysely);
    expect(statSync(`${file}-wal`).size).toBeGreaterThan(WAL_SIZE_LIMIT_BYTES);
    reader.exec('COMMIT');
    reader.close();
    // the next commits checkpoint the WAL whole, then write it again from its start
    for (let i = 0; i < 2; i++)
      await sql`DELETE FROM filler WHERE rowid = ${i + 1}`.execute(db.kysely);
    // before, the file kept the 80 MB for as long as the server ran
    expect(statSync(`${file}-wal`).size).toBeLessThanOrEqual(WAL_SIZE_LIMIT_BYTES);
    await db.close();
  });
});

describe('an upgrade of a SQLite database', () => {
  it('that stops in a migration changes nothing, so the next start applies it whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-upgrade-'));
    try {
      const file = join(dir, 'runlog.db');
      // a table in the way of 0009's second statement: the upgrade stops there, after its
      // first (runs.models), as a kill or a full disk would stop it
      const db = await openDatabase(file);
      await sql`CREATE TABLE model_rollups (x integer)`.execute(db.kysely);
      await expect(migrateToLatest(db)).rejects.toThrow(/migration 0009_model_usage failed/);
      await sql`DROP TABLE model_rollups`.execute(db.kysely);
      // before, 0001 to 0008 and half of 0009 stayed, and every start after failed on that
      // half: "migration 0009_model_usage failed: duplicate column name: models"
      const result = await migrateToLatest(db);
      expect(result.results?.[0]?.migrationName).toBe('0001_init');
      expect(result.results?.every((r) => r.status === 'Success')).toBe(true);
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
