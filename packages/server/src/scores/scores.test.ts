import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import {
  MAX_SCORES_PER_RUN,
  type IngestResponse,
  type Run,
  type RunList,
  type Score,
  type ScoreList,
  type StatsResponse,
} from '@runlog/core';
import { Readable } from 'node:stream';
import {
  describeEachDb,
  createTestApp,
  json,
  queryPlan,
  type TestApp,
} from '../../test/harness.js';
import { emptyDb, exportText, runLines } from '../../test/cli-fixtures.js';
import { importRuns } from '../export/import.js';
import { purgeEndedBefore } from '../retention/purge.js';
import type { Db } from '../db/database.js';
import { summarize } from './scores.js';

let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${seq++}`;

it('sums scores up by name: counts, the mean of values, labels, the most common type', () => {
  expect(
    summarize([
      { name: 'helpful', type: 'numeric', label: null, n: 2, total: 1.5 },
      { name: 'feedback', type: 'boolean', label: null, n: '3', total: '2' },
      { name: 'verdict', type: 'categorical', label: 'ok', n: 2, total: null },
      { name: 'verdict', type: 'categorical', label: 'bad', n: 1, total: null },
      { name: 'verdict', type: 'numeric', label: null, n: 1, total: 0.5 },
    ]),
  ).toEqual({
    feedback: { type: 'boolean', n: 3, avg: 0.666666666667, labels: {} },
    helpful: { type: 'numeric', n: 2, avg: 0.75, labels: {} },
    verdict: { type: 'categorical', n: 4, avg: 0.5, labels: { ok: 2, bad: 1 } },
  });
});

it('keeps names and labels that are also names of object members as plain keys', () => {
  const summary = summarize([
    { name: '__proto__', type: 'numeric', label: null, n: 1, total: 2 },
    { name: 'q', type: 'categorical', label: 'constructor', n: 2, total: null },
    { name: 'q', type: 'categorical', label: '__proto__', n: 1, total: null },
  ]);
  expect(JSON.parse(JSON.stringify(summary))).toEqual(
    JSON.parse(
      '{"__proto__":{"type":"numeric","n":1,"avg":2,"labels":{}},"q":{"type":"categorical","n":3,"avg":null,"labels":{"constructor":2,"__proto__":1}}}',
    ),
  );
});

describeEachDb('scores', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  const ingest = (events: unknown[]) => t.request('POST', '/api/v1/ingest', { events });
  const startRun = async (agent: string) => {
    const res = await t.request('POST', '/api/v1/runs', { agent_id: agent });
    expect(res.statusCode).toBe(201);
    return json<Run>(res);
  };
  const scoresOf = async (runId: string) =>
    json<ScoreList>(await t.request('GET', `/api/v1/runs/${runId}/scores`)).scores;
  const runOf = async (runId: string) => json<Run>(await t.request('GET', `/api/v1/runs/${runId}`));

  it('scores a run through the API: 201 new, 200 replacing its id, listed and summed on the run', async () => {
    const run = await startRun(unique('scored'));
    expect(run.scores).toEqual({});
    const first = await t.request('POST', `/api/v1/runs/${run.id}/scores`, {
      name: 'helpfulness',
      value: 0.8,
      comment: 'mostly right',
      source: 'reviewer',
      metadata: { rubric: 'v2' },
    });
    expect(first.statusCode).toBe(201);
    const score = json<Score>(first);
    expect(score).toMatchObject({
      run_id: run.id,
      step_id: null,
      name: 'helpfulness',
      type: 'numeric',
      value: 0.8,
      comment: 'mostly right',
      source: 'reviewer',
      metadata: { rubric: 'v2' },
    });
    expect(score.id).toBeTruthy();

    const up = await t.request('POST', `/api/v1/runs/${run.id}/scores`, {
      id: 'fb-1',
      name: 'feedback',
      value: true,
    });
    expect(up.statusCode).toBe(201);
    const down = await t.request('POST', `/api/v1/runs/${run.id}/scores`, {
      id: 'fb-1',
      name: 'feedback',
      value: false,
      comment: 'wrong repo',
    });
    expect(down.statusCode).toBe(200);
    const replaced = json<Score>(down);
    expect(replaced).toMatchObject({ id: 'fb-1', type: 'boolean', value: false });
    expect(replaced.created_at).toBe(json<Score>(up).created_at);
    expect(Date.parse(replaced.updated_at)).toBeGreaterThan(Date.parse(json<Score>(up).updated_at));

    await t.request('POST', `/api/v1/runs/${run.id}/scores`, { name: 'verdict', value: 'ok' });
    const list = await scoresOf(run.id);
    expect(list.map((s) => [s.name, s.value])).toEqual([
      ['helpfulness', 0.8],
      ['feedback', false],
      ['verdict', 'ok'],
    ]);
    const after = await runOf(run.id);
    expect(after.scores).toEqual({
      feedback: { type: 'boolean', n: 1, avg: 0, labels: {} },
      helpfulness: { type: 'numeric', n: 1, avg: 0.8, labels: {} },
      verdict: { type: 'categorical', n: 1, avg: null, labels: { ok: 1 } },
    });
    expect(Date.parse(after.updated_at)).toBeGreaterThan(Date.parse(run.updated_at));

    // a new comment leaves the summary as it was, and still moves the run (a run_update)
    const summed = await runOf(run.id);
    await t.request('POST', `/api/v1/runs/${run.id}/scores`, {
      id: 'fb-1',
      name: 'feedback',
      value: false,
      comment: 'wrong repo, and slow',
    });
    const commented = await runOf(run.id);
    expect(commented.scores).toEqual(summed.scores);
    expect(Date.parse(commented.updated_at)).toBeGreaterThan(Date.parse(summed.updated_at));

    const del = await t.request('DELETE', `/api/v1/runs/${run.id}/scores/fb-1`);
    expect(del.statusCode).toBe(204);
    expect((await scoresOf(run.id)).map((s) => s.name)).toEqual(['helpfulness', 'verdict']);
    expect(Object.keys((await runOf(run.id)).scores)).toEqual(['helpfulness', 'verdict']);
    expect((await t.request('DELETE', `/api/v1/runs/${run.id}/scores/fb-1`)).statusCode).toBe(404);
  });

  it("publishes each change of a run's scores as the run, with its new summary", async () => {
    const run = await startRun(unique('published'));
    const seen: Run['scores'][] = [];
    const unsubscribe = t.ctx.hub.subscribe((e) => {
      if (e.kind === 'run' && e.runId === run.id) seen.push(e.run.scores);
    });
    try {
      const post = (body: object) => t.request('POST', `/api/v1/runs/${run.id}/scores`, body);
      await post({ id: 'p', name: 'feedback', value: true });
      await post({ id: 'p', name: 'feedback', value: true, comment: 'same value, new words' });
      await ingest([{ type: 'score', score: { id: 'q', run_id: run.id, name: 'n', value: 2 } }]);
      await t.request('DELETE', `/api/v1/runs/${run.id}/scores/p`);
    } finally {
      unsubscribe();
    }
    expect(seen).toEqual([
      { feedback: { type: 'boolean', n: 1, avg: 1, labels: {} } },
      { feedback: { type: 'boolean', n: 1, avg: 1, labels: {} } },
      {
        feedback: { type: 'boolean', n: 1, avg: 1, labels: {} },
        n: { type: 'numeric', n: 1, avg: 2, labels: {} },
      },
      { n: { type: 'numeric', n: 1, avg: 2, labels: {} } },
    ]);
  });

  it('refuses bad scores naming the field, and writes nothing', async () => {
    const run = await startRun(unique('bad-scores'));
    const cases: [unknown, string][] = [
      [{ value: 1 }, 'body.name'],
      [{ name: 'x' }, 'body.value'],
      [{ name: 'x', value: null }, 'body.value'],
      [{ name: 'x', value: '' }, 'body.value'],
      [{ name: 'x', value: [1] }, 'body.value'],
      [{ name: 'x', value: 1e16 }, 'body.value'],
      [{ name: '', value: 1 }, 'body.name'],
      [{ name: 'x', value: 1, id: 'bad id' }, 'body.id'],
      [{ name: 'x', value: 1, run_id: 'other' }, 'body.run_id'],
      [{ name: 'x', value: 1, step_id: 'no-such-step' }, 'body.step_id'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request('POST', `/api/v1/runs/${run.id}/scores`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.body).toContain(field);
    }
    expect(await scoresOf(run.id)).toEqual([]);
    // a value missing or of no score type says what a score's value may be, not "Invalid input"
    for (const body of [{ name: 'x' }, { name: 'x', value: null }, { name: 'x', value: [1] }]) {
      const res = await t.request('POST', `/api/v1/runs/${run.id}/scores`, body);
      expect(
        json<{ error: { details: unknown[] } }>(res).error.details,
        JSON.stringify(body),
      ).toEqual([
        { field: 'body.value', message: 'must be a number, true or false, or a label (text)' },
      ]);
    }
    const missing = await t.request('POST', '/api/v1/runs/no-such-run/scores', {
      name: 'x',
      value: 1,
    });
    expect(missing.statusCode).toBe(404);
    expect((await t.request('GET', '/api/v1/runs/no-such-run/scores')).statusCode).toBe(404);
    expect((await t.request('GET', '/api/v1/runs/no-such-run')).statusCode).toBe(404);
  });

  it('takes scores through /ingest, idempotent by id, and a score before its run creates it', async () => {
    const runId = unique('ingested');
    const events = [
      { type: 'score', score: { id: 'e1', run_id: runId, name: 'relevance', value: 3 } },
      {
        type: 'score',
        score: { id: 'e2', run_id: runId, name: 'relevance', value: 4, step_id: 's1' },
      },
      { type: 'run.start', run: { id: runId, agent_id: 'scored-agent' } },
    ];
    expect((await ingest(events)).statusCode).toBe(200);
    expect((await ingest(events)).statusCode).toBe(200);
    const scores = await scoresOf(runId);
    expect(scores.map((s) => [s.id, s.value, s.step_id])).toEqual([
      ['e1', 3, null],
      ['e2', 4, 's1'],
    ]);
    const run = await runOf(runId);
    expect(run.agent_id).toBe('scored-agent');
    expect(run.scores).toEqual({ relevance: { type: 'numeric', n: 2, avg: 3.5, labels: {} } });

    const bad = await ingest([
      { type: 'score', score: { run_id: runId, name: 'x', value: {} } },
      { type: 'score', score: { run_id: runId, value: 1 } },
    ]);
    expect(bad.statusCode).toBe(207);
    const answer = json<IngestResponse>(bad);
    expect(answer.rejected).toBe(2);
    expect(answer.results!.map((r) => r.error?.details?.[0])).toMatchObject([
      { field: 'events.0.score.value' },
      { field: 'events.1.score.name' },
    ]);
    expect(await scoresOf(runId)).toHaveLength(2);
  });

  it(`holds at most ${MAX_SCORES_PER_RUN} scores per run: a 409, while replacing one still works`, async () => {
    const runId = unique('full');
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        type: 'score',
        score: { id: `s${from + i}`, run_id: runId, name: 'n', value: from + i },
      }));
    expect((await ingest(batch(0, 600))).statusCode).toBe(200);
    const over = await ingest(batch(600, 401));
    expect(over.statusCode).toBe(207);
    const answer = json<IngestResponse>(over);
    expect(answer.accepted).toBe(400);
    expect(answer.results![400]!.error).toMatchObject({ code: 'conflict' });
    expect(answer.results![400]!.error!.message).toContain(String(MAX_SCORES_PER_RUN));
    const res = await t.request('POST', `/api/v1/runs/${runId}/scores`, { name: 'n', value: 1 });
    expect(res.statusCode).toBe(409);
    expect(res.body).toContain('params.run_id');
    const again = await t.request('POST', `/api/v1/runs/${runId}/scores`, {
      id: 's0',
      name: 'n',
      value: 7,
    });
    expect(again.statusCode).toBe(200);
    const run = await runOf(runId);
    expect(run.scores.n!.n).toBe(MAX_SCORES_PER_RUN);
    // one deleted makes room for one more
    expect((await t.request('DELETE', `/api/v1/runs/${runId}/scores/s1`)).statusCode).toBe(204);
    expect(
      (await t.request('POST', `/api/v1/runs/${runId}/scores`, { name: 'n', value: 1 })).statusCode,
    ).toBe(201);
  });

  it('lists the runs with a score, narrowed by value or label', async () => {
    const agent = unique('filtered');
    const [a, b, c] = [await startRun(agent), await startRun(agent), await startRun(agent)];
    const score = (runId: string, body: object) =>
      t.request('POST', `/api/v1/runs/${runId}/scores`, body);
    await score(a.id, { name: 'feedback', value: true });
    await score(b.id, { name: 'feedback', value: false });
    await score(b.id, { name: 'feedback', value: true });
    await score(c.id, { name: 'verdict', value: 'wrong tool' });
    const ids = async (query: string) =>
      json<RunList>(await t.request('GET', `/api/v1/runs?agent_id=${agent}&${query}`))
        .runs.map((r) => r.id)
        .sort();
    expect(await ids('score=feedback')).toEqual([a.id, b.id].sort());
    expect(await ids('score=feedback&score_max=0')).toEqual([b.id]);
    expect(await ids('score=feedback&score_min=1')).toEqual([a.id, b.id].sort());
    expect(await ids('score=verdict&score_label=wrong%20tool')).toEqual([c.id]);
    expect(await ids('score=verdict&score_label=right')).toEqual([]);
    expect(await ids('score=nothing')).toEqual([]);
    const blank = await t.request('GET', `/api/v1/runs?score=feedback&score_max=%20`);
    expect(blank.statusCode).toBe(400);
    expect(blank.body).toContain('query.score_max');
    const lonely = await t.request('GET', `/api/v1/runs?score_max=0`);
    expect(lonely.statusCode).toBe(400);
    expect(lonely.body).toContain('query.score');
  });

  it('sums the scores given in a range up in the stats, by name', async () => {
    const agent = unique('stats');
    const other = unique('stats-other');
    const [a, b] = [await startRun(agent), await startRun(agent)];
    const o = await startRun(other);
    const score = (runId: string, body: object) =>
      t.request('POST', `/api/v1/runs/${runId}/scores`, body);
    await score(a.id, { name: 'feedback', value: true });
    await score(a.id, { name: 'feedback', value: true });
    await score(b.id, { name: 'feedback', value: false });
    await score(b.id, { name: 'quality', value: 2.5 });
    await score(b.id, { name: 'quality', value: 'n/a' });
    await score(o.id, { name: 'feedback', value: false });
    const stats = json<StatsResponse>(
      await t.request('GET', `/api/v1/runs/stats?agent_id=${agent}`),
    );
    expect(stats.by_score).toEqual([
      {
        name: 'feedback',
        type: 'boolean',
        n: 3,
        runs: 2,
        avg: 0.666666666667,
        min: 0,
        max: 1,
        labels: {},
      },
      {
        name: 'quality',
        type: 'numeric',
        n: 2,
        runs: 1,
        avg: 2.5,
        min: 2.5,
        max: 2.5,
        labels: { 'n/a': 1 },
      },
    ]);
    const both = json<StatsResponse>(
      await t.request('GET', `/api/v1/runs/stats?agent_id=${agent},${other}`),
    );
    expect(both.by_score.find((s) => s.name === 'feedback')).toMatchObject({ n: 4, runs: 3 });
    const past = json<StatsResponse>(
      await t.request(
        'GET',
        `/api/v1/runs/stats?agent_id=${agent}&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`,
      ),
    );
    expect(past.by_score).toEqual([]);
  });

  it('deletes a run with its scores', async () => {
    const run = await startRun(unique('deleted'));
    await t.request('POST', `/api/v1/runs/${run.id}/scores`, { name: 'x', value: 1 });
    expect((await t.request('DELETE', `/api/v1/runs/${run.id}`)).statusCode).toBe(204);
    const left = await t.ctx.db.kysely
      .selectFrom('scores')
      .select('id')
      .where('run_id', '=', run.id)
      .execute();
    expect(left).toEqual([]);
    // a deleted run's scores are refused, as its other events are
    const late = await ingest([{ type: 'score', score: { run_id: run.id, name: 'x', value: 2 } }]);
    expect(late.statusCode).toBe(207);
    expect(json<IngestResponse>(late).results![0]!.error).toMatchObject({ code: 'not_found' });
  });

  const scoreRows = (db: Db, runId: string) =>
    db.kysely.selectFrom('scores').selectAll().where('run_id', '=', runId).orderBy('id').execute();

  it('exports a run with its scores, and an import gives them back (a line without keeps them)', async () => {
    const agent = unique('exported');
    const run = await startRun(agent);
    await t.request('POST', `/api/v1/runs/${run.id}/scores`, {
      id: 'a',
      name: 'feedback',
      value: true,
      comment: 'great',
      metadata: { by: 'ann' },
    });
    // through /ingest, a score may name a step not recorded (yet)
    await ingest([
      {
        type: 'score',
        score: { id: 'b', run_id: run.id, name: 'tone', value: 'dry', step_id: 's9' },
      },
    ]);
    const text = await exportText(t.ctx.db, { agentId: agent });
    const [line] = runLines(text).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect((line!.score_list as { id: string }[]).map((s) => s.id)).toEqual(['a', 'b']);
    expect(Object.keys(line!).at(-1)).toBe('steps');

    const { db, database } = await emptyDb(dialect);
    try {
      const result = await importRuns(db, Readable.from([text]));
      expect(result.rejected).toBe(0);
      expect(await scoreRows(db, run.id)).toEqual(await scoreRows(t.ctx.db, run.id));
      const stored = (id: string, d: Db) =>
        d.kysely.selectFrom('runs').select('scores').where('id', '=', id).executeTakeFirstOrThrow();
      expect(await stored(run.id, db)).toEqual(await stored(run.id, t.ctx.db));
      expect(await exportText(db, { agentId: agent })).toBe(text);
      // a line as the API answers a run (no score_list): the stored scores stay
      const bare = { ...line!, score_list: undefined, scores: undefined };
      await importRuns(db, Readable.from([JSON.stringify(bare) + '\n']));
      expect(await scoreRows(db, run.id)).toHaveLength(2);
      expect(JSON.parse((await stored(run.id, db)).scores)).toMatchObject({ feedback: { n: 1 } });
      // a score whose value is not of its type is that line's rejection, naming the field
      const wrong = {
        ...line!,
        score_list: [{ ...(line!.score_list as object[])[0], value: 'yes' }],
      };
      const rejected: string[] = [];
      const r = await importRuns(db, Readable.from([JSON.stringify(wrong) + '\n']), {
        onReject: (_line, message) => rejected.push(message),
      });
      expect(r.rejected).toBe(1);
      expect(rejected[0]).toContain('score_list.0.value');
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('exports and imports scores named like object members whole', async () => {
    const agent = unique('proto');
    const run = await startRun(agent);
    await t.request('POST', `/api/v1/runs/${run.id}/scores`, { name: '__proto__', value: 1 });
    await t.request('POST', `/api/v1/runs/${run.id}/scores`, { name: 'q', value: 'constructor' });
    const summary = (await runOf(run.id)).scores;
    expect(Object.keys(summary)).toEqual(['__proto__', 'q']);
    expect(summary.q!.labels).toEqual(JSON.parse('{"constructor":1}'));
    const text = await exportText(t.ctx.db, { agentId: agent });
    const { db, database } = await emptyDb(dialect);
    try {
      expect((await importRuns(db, Readable.from([text]))).rejected).toBe(0);
      expect(await scoreRows(db, run.id)).toEqual(await scoreRows(t.ctx.db, run.id));
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('refuses an import line with scores recording would refuse, naming the field', async () => {
    const run = await startRun(unique('import-bounds'));
    await t.request('POST', `/api/v1/runs/${run.id}/scores`, { id: 'a', name: 'n', value: 1 });
    const [text] = runLines(await exportText(t.ctx.db, { agentId: run.agent_id }));
    const line = JSON.parse(text!) as { score_list: Record<string, unknown>[] };
    const score = line.score_list[0]!;
    const cases: [Record<string, unknown>, string][] = [
      [{ ...line, score_list: [{ ...score, name: 'x'.repeat(201) }] }, 'score_list.0.name'],
      [{ ...line, score_list: [{ ...score, value: 1e300 }] }, 'score_list.0.value'],
      [
        {
          ...line,
          score_list: Array.from({ length: 1001 }, (_, i) => ({ ...score, id: `s${i}` })),
        },
        'score_list',
      ],
    ];
    const { db, database } = await emptyDb(dialect);
    try {
      for (const [bad, field] of cases) {
        const rejected: string[] = [];
        const r = await importRuns(db, Readable.from([JSON.stringify(bad) + '\n']), {
          onReject: (_line, message) => rejected.push(message),
        });
        expect(r.rejected, field).toBe(1);
        expect(rejected[0]).toContain(field);
      }
      expect(await scoreRows(db, run.id)).toEqual([]);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('retention deletes the scores of the runs it deletes', async () => {
    const runId = unique('old');
    const ended = Date.now() - 90 * 86_400_000;
    await ingest([
      {
        type: 'run.end',
        run: {
          id: runId,
          agent_id: 'old-agent',
          status: 'succeeded',
          started_at: ended - 1000,
          ended_at: ended,
        },
      },
      { type: 'score', score: { id: 'x', run_id: runId, name: 'n', value: 1 } },
    ]);
    expect(await scoreRows(t.ctx.db, runId)).toHaveLength(1);
    await purgeEndedBefore(t.ctx.db, { projectId: 'default', before: ended + 1 });
    expect(await scoreRows(t.ctx.db, runId)).toEqual([]);
  });
});

describeEachDb("a run's score summary", (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  if (dialect === 'sqlite')
    // first: a statement is prepared once per connection
    it("reads the run's own scores off the key, never every score of the project", async () => {
      // SQLite keeps no statistics here: grouped by name, it read the groups off scores_name
      // and so walked every score of the project for each run scored (8 s for 1,000 scores
      // of 500 runs at 100,000 scores)
      const sqlite = t.ctx.db.sqlite!;
      const texts: string[] = [];
      const real = sqlite.prepare.bind(sqlite);
      vi.spyOn(sqlite, 'prepare').mockImplementation(((text: string) => {
        texts.push(text);
        return real(text);
      }) as typeof sqlite.prepare);
      const run = unique('plan');
      try {
        const res = await t.request('POST', '/api/v1/ingest', {
          events: [
            { type: 'run.start', run: { id: run, agent_id: 'a' } },
            { type: 'score', score: { run_id: run, name: 'quality', value: 0.5 } },
            { type: 'score', score: { run_id: run, name: 'quality', value: 1 } },
          ],
        });
        expect(res.statusCode).toBe(200);
      } finally {
        vi.restoreAllMocks();
      }
      const reads = texts.filter(
        (s) => /^select .* from "scores"/.test(s) && /"run_id" = \?/.test(s),
      );
      expect(reads.length).toBeGreaterThan(0);
      for (const text of reads) {
        for (const detail of queryPlan(sqlite, text))
          expect(detail, text).not.toMatch(
            /^(SCAN scores|SEARCH scores USING .*\(project_id=\?\)$)/,
          );
      }
      const got = json<Run>(await t.request('GET', `/api/v1/runs/${run}`));
      expect(got.scores).toEqual({ quality: { type: 'numeric', n: 2, avg: 0.75, labels: {} } });
    });

  it('sums up each name of the run, whatever the other runs hold', async () => {
    const run = unique('sum');
    const other = unique('sum');
    const score = (run_id: string, name: string, value: unknown) => ({
      type: 'score',
      score: { run_id, name, value },
    });
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [
        { type: 'run.start', run: { id: run, agent_id: 'a' } },
        { type: 'run.start', run: { id: other, agent_id: 'a' } },
        score(run, 'quality', 0.25),
        score(run, 'quality', 1),
        score(run, 'feedback', true),
        score(run, 'feedback', false),
        score(run, 'feedback', true),
        score(run, 'verdict', 'ok'),
        score(run, 'verdict', 'ok'),
        score(run, 'verdict', 'bad'),
        score(other, 'quality', 0),
        score(other, 'verdict', 'bad'),
      ],
    });
    expect(res.statusCode).toBe(200);
    const got = json<Run>(await t.request('GET', `/api/v1/runs/${run}`));
    expect(got.scores).toEqual({
      feedback: { type: 'boolean', n: 3, avg: 0.666666666667, labels: {} },
      quality: { type: 'numeric', n: 2, avg: 0.625, labels: {} },
      verdict: { type: 'categorical', n: 3, avg: null, labels: { ok: 2, bad: 1 } },
    });
  });
});
