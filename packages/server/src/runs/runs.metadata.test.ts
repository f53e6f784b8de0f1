import { afterAll, beforeAll, expect, it } from 'vitest';
import { metadataMatches, type IngestEvent, type Run, type RunList } from '@runlog/core';
import {
  createTestApp,
  describeEachDb,
  getOk,
  ingestOk,
  json,
  type TestApp,
} from '../../test/harness.js';

/** Each run's metadata: what `GET /runs?metadata[key]=value` is checked against. */
const METADATA: Record<string, Record<string, unknown>> = {
  'm-1': {
    env: 'prod',
    pr: 42,
    ok: true,
    region: 'eu,west',
    'a.b': 'dot',
    'we"ird]': 'q',
    ключ: 'значение',
    nested: { env: 'prod' },
    list: ['prod'],
  },
  'm-2': { env: 'staging', pr: '42', ok: false, ratio: 0.1, big: 2 ** 53 },
  'm-3': { env: 'prod', pr: 42.5, ok: 'true' },
  // the key's text only in values: found by the first look, refused by the second
  'm-4': { note: 'env', desc: '"env":"prod"' },
  'm-5': {},
  'm-6': { env: null },
  'm-7': { env: { x: 1 } },
  'm-8': { ENV: 'prod' },
  // text jsonb cannot take as written (PostgreSQL reads these escapes as U+FFFD)
  'm-9': { env: 'lone \ud800 surrogate', pr: 7 },
  'm-10': { env: 'a NUL \u0000', ok: true },
};

/**
 * The runs the filter should keep, in the list's order (newest first): core's predicate, which
 * the dashboard checks live runs with, so the two must agree.
 */
function expected(filter: Record<string, string>): string[] {
  return Object.keys(METADATA)
    .filter((id) => metadataMatches(METADATA[id], filter))
    .reverse();
}

const query = (filter: Record<string, string>, extra = '') =>
  new URLSearchParams(
    Object.entries(filter).map(([k, v]): [string, string] => [`metadata[${k}]`, v]),
  ).toString() + extra;

describeEachDb('GET /runs?metadata[key]=value', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const t0 = Date.parse('2026-11-01T10:00:00Z');
    const events: IngestEvent[] = Object.entries(METADATA).map(([id, metadata], i) => ({
      type: 'run.start',
      run: { id, agent_id: i % 2 ? 'odd' : 'even', started_at: t0 + i * 1000, metadata },
    }));
    await ingestOk(t, events);
    // another project's run with the same metadata is never listed
    const project = await t.request('POST', '/api/v1/projects', { name: 'Other' });
    const other = json<{ admin_key: { key: string } }>(project).admin_key.key;
    await ingestOk(
      t,
      [{ type: 'run.start', run: { id: 'other-1', agent_id: 'even', metadata: { env: 'prod' } } }],
      other,
    );
  });
  afterAll(async () => {
    await t.close();
  });

  const list = (qs: string) => getOk<RunList>(t, `/api/v1/runs?${qs}`);

  it('keeps the runs whose metadata holds each key with the value', async () => {
    const cases: Record<string, string>[] = [
      { env: 'prod' },
      { env: 'staging' },
      { pr: '42' }, // the number 42 and the text "42"
      { pr: '42.0' }, // the number only: the text "42" is not "42.0"
      { pr: '4.2e1' },
      { pr: '42.5' },
      { ok: 'true' }, // the boolean and the text
      { ok: 'false' },
      { ratio: '0.1' },
      { big: String(2 ** 53) },
      { region: 'eu,west' },
      { 'a.b': 'dot' },
      { 'we"ird]': 'q' },
      { ключ: 'значение' },
      { env: 'prod', pr: '42' },
      { env: 'prod', ok: 'true' },
      { pr: '7' },
    ];
    for (const filter of cases) {
      const want = expected(filter);
      expect(want.length, JSON.stringify(filter)).toBeGreaterThan(0);
      const got = await list(query(filter));
      expect(
        got.runs.map((r) => r.id),
        JSON.stringify(filter),
      ).toEqual(want);
      expect(got.total, JSON.stringify(filter)).toBe(want.length);
    }
  });

  it('matches nothing for null, objects, arrays, other keys or a number not quite equal', async () => {
    const cases: Record<string, string>[] = [
      { env: 'null' },
      { env: '{"x":1}' },
      { nested: '{"env":"prod"}' },
      { list: 'prod' },
      { note: 'prod' },
      { env: 'Prod' },
      { big: String(2n ** 53n + 1n) }, // exact, not read as a double
      { pr: '42.5', env: 'staging' }, // each key must hold
    ];
    for (const filter of cases) {
      expect(expected(filter), JSON.stringify(filter)).toEqual([]);
      const got = await list(query(filter));
      expect(got.runs, JSON.stringify(filter)).toEqual([]);
      expect(got.total).toBe(0);
    }
  });

  it('takes the brackets as written, and goes with the other filters', async () => {
    expect((await list('metadata[env]=prod&agent_id=even')).runs.map((r) => r.id)).toEqual([
      'm-3',
      'm-1',
    ]);
    expect((await list('metadata[env]=prod&agent_id=odd')).runs).toEqual([]);
    // an empty value is no filter, as for any parameter
    expect((await list('metadata[env]=')).runs).toHaveLength(Object.keys(METADATA).length);
  });

  it('pages with the cursor and exports the same runs', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: RunList = await list(
        `metadata[env]=prod&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      seen.push(...page.runs.map((r: Run) => r.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(expected({ env: 'prod' }));
    const res = await t.request('GET', '/api/v1/runs.jsonl?metadata[pr]=42');
    expect(res.statusCode).toBe(200);
    const lines = res.body
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as Run).id);
    expect(lines).toEqual(expected({ pr: '42' }));
  });

  it('refuses bad filters with a 400 naming the parameter, and lists nothing', async () => {
    const eleven = Array.from({ length: 11 }, (_, i) => `metadata[k${i}]=v`).join('&');
    const cases: [string, string][] = [
      ['metadata[]=prod', 'query.metadata[]'],
      ['metadata=prod', 'query.metadata'],
      ['metadata[env]=a&metadata[env]=b', 'query.metadata[env]'],
      ['metadata=prod&metadata[env]=a', 'query.metadata[env]'],
      ['metadata[env]=a%00', 'query.metadata[env]'],
      ['metadata[__proto__]=a', 'query.metadata[__proto__]'],
      [eleven, 'query.metadata'],
      [`metadata[${'k'.repeat(201)}]=v`, `query.metadata.${'k'.repeat(201)}`],
      [`metadata[env]=${'v'.repeat(501)}`, 'query.metadata.env'],
      ['metadatas[env]=prod', 'query.metadatas[env]'],
    ];
    for (const [qs, field] of cases) {
      const res = await t.request('GET', `/api/v1/runs?${qs}`);
      expect(res.statusCode, qs).toBe(400);
      const body = json<{ error: { code: string; details: { field: string }[] } }>(res);
      expect(body.error.code, qs).toBe('invalid_input');
      expect(
        body.error.details.map((d) => d.field),
        qs,
      ).toContain(field);
    }
  });

  it('is described in openapi.json as a deepObject parameter', async () => {
    const doc = await getOk<{
      paths: Record<string, { get: { parameters: { name: string }[] } }>;
    }>(t, '/api/v1/openapi.json');
    for (const path of ['/api/v1/runs', '/api/v1/runs.csv']) {
      const param = doc.paths[path]!.get.parameters.find((p) => p.name === 'metadata');
      expect(param, path).toMatchObject({ in: 'query', style: 'deepObject', explode: true });
    }
  });
});
