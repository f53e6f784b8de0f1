import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestEvent, Run, RunList } from '@runlog/core';
import {
  createTestApp,
  describeEachDb,
  getOk,
  ingestOk,
  json,
  type TestApp,
} from '../../test/harness.js';
import { readCsv } from '../../test/csv.js';
import { CSV_COLUMNS, csvCell } from '../export/record.js';
import { exportFileName } from './runs.export.js';

describe('csvCell', () => {
  it('quotes what needs it, doubles quotes, and keeps a spreadsheet from running text', () => {
    expect(csvCell(null)).toBe('');
    expect(csvCell(-1.5)).toBe('-1.5');
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('say "hi", then go')).toBe('"say ""hi"", then go"');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    for (const start of ['+', '-', '@', '\t']) expect(csvCell(`${start}1`)).toBe(`'${start}1`);
  });

  it('names the file by its date, and by its agent when it holds one', () => {
    const at = new Date('2026-12-07T23:59:00Z');
    expect(exportFileName('csv', undefined, at)).toBe('runs-2026-12-07.csv');
    expect(exportFileName('jsonl', ['support-bot'], at)).toBe('runs-support-bot-2026-12-07.jsonl');
    expect(exportFileName('csv', ['a', 'b'], at)).toBe('runs-2026-12-07.csv');
  });
});

describeEachDb('runs export', (dialect) => {
  let t: TestApp;
  const T0 = Date.parse('2026-12-01T10:00:00Z');
  const get = (url: string, key?: string) => t.request('GET', url, undefined, key);

  beforeAll(async () => {
    t = await createTestApp(dialect);
    const events: IngestEvent[] = [
      {
        type: 'run.end',
        run: {
          id: 'x-odd',
          agent_id: 'support',
          status: 'failed',
          user_id: 'dana, "the" user',
          tags: ['vip', 'eu'],
          input: '=1+2, "quoted"\nsecond line',
          output: { answer: 'ünïcode ✓' },
          error: { message: 'rate limited', type: 'RateLimitError' },
          metadata: { ticket: 7 },
          started_at: T0 + 5_000,
          ended_at: T0 + 6_500,
        },
      },
      {
        type: 'step.end',
        step: {
          id: 's1',
          run_id: 'x-odd',
          type: 'llm',
          model: 'house',
          input_tokens: 100,
          output_tokens: 20,
          cost_usd: 0.25,
        },
      },
    ];
    // 1,203 runs of one agent: more than two of the export's pages
    for (let i = 0; i < 1203; i++)
      events.push({
        type: 'run.end',
        run: {
          id: `bulk-${String(i).padStart(4, '0')}`,
          agent_id: 'bulk',
          status: i % 3 === 0 ? 'failed' : 'succeeded',
          input: { i },
          started_at: T0 - i * 1000,
          ended_at: T0 - i * 1000 + (i % 17) * 10,
        },
      });
    for (let i = 0; i < events.length; i += 1000) await ingestOk(t, events.slice(i, i + 1000));
  });
  afterAll(() => t.close());

  it('answers a CSV file of the runs the filters keep, each field a cell, text kept whole', async () => {
    const res = await get('/api/v1/runs.csv?agent_id=support');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(
      /^attachment; filename="runs-support-\d{4}-\d{2}-\d{2}\.csv"$/,
    );
    const [header, ...rows] = readCsv(res.body);
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(1);
    const row = Object.fromEntries(header!.map((c, i) => [c, rows[0]![i]]));
    expect(row).toMatchObject({
      id: 'x-odd',
      agent_id: 'support',
      status: 'failed',
      user_id: 'dana, "the" user',
      started_at: '2026-12-01T10:00:05.000Z',
      ended_at: '2026-12-01T10:00:06.500Z',
      duration_ms: '1500',
      step_count: '1',
      llm_calls: '1',
      total_tokens: '120',
      cost_usd: '0.25',
      model: 'house',
      tags: 'vip;eu',
      error_type: 'RateLimitError',
      error_message: 'rate limited',
      // a spreadsheet would run it as a formula: it opens as the text it is
      input: `'=1+2, "quoted"\nsecond line`,
      output: '{"answer":"ünïcode ✓"}',
      metadata: '{"ticket":7}',
      retry_of: '',
    });
  });

  it('answers JSON Lines of the runs as GET /runs lists them, in its order', async () => {
    const res = await get('/api/v1/runs.jsonl?status=failed&agent_id=bulk');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    const lines = res.body.split('\n');
    expect(lines.pop()).toBe('');
    const exported = lines.map((l) => JSON.parse(l) as Run);
    const listed: Run[] = [];
    let cursor: string | null = null;
    do {
      const page: RunList = await getOk<RunList>(
        t,
        `/api/v1/runs?status=failed&agent_id=bulk&limit=500${cursor ? `&cursor=${cursor}` : ''}`,
      );
      listed.push(...page.runs);
      cursor = page.next_cursor;
    } while (cursor);
    expect(exported).toHaveLength(401);
    expect(exported).toEqual(listed);
  });

  it('pages through every run the filters keep, at most limit of them, in the sort asked', async () => {
    const ids = async (query: string) =>
      readCsv((await get(`/api/v1/runs.csv?${query}`)).body)
        .slice(1)
        .map((row) => row[0]);
    const newest = Array.from({ length: 1203 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
    expect(await ids('agent_id=bulk')).toEqual(newest);
    expect(await ids('agent_id=bulk&limit=500')).toEqual(newest.slice(0, 500));
    expect(await ids('agent_id=bulk&limit=501')).toEqual(newest.slice(0, 501));
    expect(await ids('agent_id=bulk&limit=1')).toEqual(newest.slice(0, 1));
    // the longest first, as GET /runs?sort=duration pages them
    const byDuration: string[] = [];
    let cursor: string | null = null;
    do {
      const page: RunList = await getOk<RunList>(
        t,
        `/api/v1/runs?agent_id=bulk&sort=duration&limit=500${cursor ? `&cursor=${cursor}` : ''}`,
      );
      byDuration.push(...page.runs.map((r) => r.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(await ids('agent_id=bulk&sort=duration')).toEqual(byDuration);
    expect(await ids('agent_id=nobody')).toEqual([]);
    expect(await ids('q=second%20line')).toEqual(['x-odd']);
  });

  it('refuses a bad query naming the field, and keeps to the key and its project', async () => {
    for (const [query, field] of [
      ['limit=0', 'query.limit'],
      ['limit=100001', 'query.limit'],
      ['cursor=abc', 'query.cursor'],
      ['offset=5', 'query.offset'],
      ['from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z', 'query.to'],
      ['score_min=1', 'query.score'],
      ['status=exploded', 'query.status.0'],
    ] as const) {
      for (const format of ['csv', 'jsonl']) {
        const res = await get(`/api/v1/runs.${format}?${query}`);
        expect(res.statusCode, query).toBe(400);
        expect(json<{ error: { details: { field: string }[] } }>(res).error.details[0]!.field).toBe(
          field,
        );
      }
    }
    expect((await t.request('GET', '/api/v1/runs.csv', undefined, null)).statusCode).toBe(401);
    const created = await t.request('POST', '/api/v1/projects', { name: 'elsewhere' });
    const { key } = json<{ admin_key: { key: string } }>(created).admin_key;
    const other = await get('/api/v1/runs.csv', key);
    expect(readCsv(other.body)).toEqual([[...CSV_COLUMNS]]);
    expect((await get('/api/v1/runs.jsonl', key)).body).toBe('');
  });
});
