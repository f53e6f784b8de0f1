import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';

interface Project {
  id: string;
  name: string;
  retention_days: number;
}
interface ApiError {
  error: { code: string; details?: { field: string }[] };
}
interface PriceList {
  prices: { model: string; source: string; input_per_mtok: number }[];
}

const firstField = (res: LightMyRequestResponse) => json<ApiError>(res).error.details?.[0]?.field;
const errorCode = (res: LightMyRequestResponse) => json<ApiError>(res).error.code;

describeEachDb('projects, settings and prices API', (dialect) => {
  let t: TestApp;
  let readKey: string;
  let writeKey: string;
  /** The admin key of a second project, `other`. */
  let otherKey: string;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    const key = async (scope: string) =>
      json<{ key: string }>(await t.request('POST', '/api/v1/keys', { scope })).key;
    readKey = await key('read');
    writeKey = await key('write');
    const other = await t.request('POST', '/api/v1/projects', { id: 'other', name: 'Other' });
    otherKey = json<{ admin_key: { key: string } }>(other).admin_key.key;
  });
  afterAll(async () => {
    await t.close();
  });

  const projectOf = async (key = t.adminKey) =>
    json<{ projects: Project[] }>(await t.request('GET', '/api/v1/projects', undefined, key))
      .projects[0]!;

  it('creates no project when its admin key cannot be made, so the same id can be tried again', async () => {
    const failing = vi
      .spyOn(t.ctx.auth, 'createKey')
      .mockRejectedValueOnce(new Error('disk I/O error'));
    try {
      const first = await t.request('POST', '/api/v1/projects', { id: 'keyless', name: 'K' });
      expect(first.statusCode).toBe(500);
      expect(json<{ error: { message: string } }>(first).error.message).not.toContain('disk');
    } finally {
      failing.mockRestore();
    }
    const again = await t.request('POST', '/api/v1/projects', { id: 'keyless', name: 'K' });
    expect(again.statusCode).toBe(201);
    const key = json<{ admin_key: { key: string } }>(again).admin_key.key;
    expect(json(await t.request('GET', '/api/v1/session', undefined, key))).toMatchObject({
      project_id: 'keyless',
    });
  });

  it('renames a project and changes its retention, read back by GET /projects', async () => {
    const res = await t.request('PATCH', '/api/v1/projects/default', {
      name: 'Team A',
      retention_days: 90,
    });
    expect(res.statusCode).toBe(200);
    expect(json<Project>(res)).toMatchObject({ id: 'default', name: 'Team A', retention_days: 90 });
    expect(await projectOf()).toMatchObject({ name: 'Team A', retention_days: 90 });

    // a field left out keeps its value
    const renamed = await t.request('PATCH', '/api/v1/projects/default', { name: 'Team B' });
    expect(json<Project>(renamed)).toMatchObject({ name: 'Team B', retention_days: 90 });
    // the session answer names the project, for the dashboard's header, to any scope
    const session = await t.request('GET', '/api/v1/session', undefined, readKey);
    expect(json(session)).toMatchObject({ project_id: 'default', project_name: 'Team B' });
    const other = await t.request('GET', '/api/v1/session', undefined, otherKey);
    expect(json(other)).toMatchObject({ project_id: 'other', project_name: 'Other' });
  });

  it('refuses a bad project change naming the field, writing nothing', async () => {
    const before = await projectOf();
    for (const [body, field] of [
      [{ retention_days: 0 }, 'body.retention_days'],
      [{ retention_days: 3651 }, 'body.retention_days'],
      [{ retention_days: 1.5 }, 'body.retention_days'],
      [{ name: '' }, 'body.name'],
      // spaces alone: the dashboard's header showed the project as nothing
      [{ name: '   ' }, 'body.name'],
      [{ name: 'ok', retention_days: 'long' }, 'body.retention_days'],
    ] as const) {
      const res = await t.request('PATCH', '/api/v1/projects/default', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(firstField(res)).toBe(field);
    }
    expect(await projectOf()).toEqual(before);
  });

  it("answers 404 for another project's id and changes neither project", async () => {
    const mine = await projectOf();
    const res = await t.request('PATCH', '/api/v1/projects/other', { name: 'Taken over' });
    expect(res.statusCode).toBe(404);
    expect(await projectOf(otherKey)).toMatchObject({ id: 'other', name: 'Other' });
    expect(await projectOf()).toEqual(mine);
  });

  it('lets only an admin key change a project', async () => {
    const before = await projectOf();
    for (const key of [readKey, writeKey]) {
      const res = await t.request('PATCH', '/api/v1/projects/default', { name: 'x' }, key);
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('forbidden');
    }
    expect(await projectOf()).toEqual(before);
  });

  it('reads settings with a read key and changes them with an admin key', async () => {
    const read = await t.request('GET', '/api/v1/settings', undefined, readKey);
    expect(read.statusCode).toBe(200);
    const project = await projectOf();
    expect(json(read)).toEqual({
      project: { ...project, created_at: expect.any(String) as string },
      retention_days: project.retention_days,
    });

    const changed = await t.request('PATCH', '/api/v1/settings', { retention_days: 7 });
    expect(changed.statusCode).toBe(200);
    expect(json(changed)).toMatchObject({ retention_days: 7, project: { retention_days: 7 } });
    const after = await t.request('GET', '/api/v1/settings', undefined, readKey);
    expect(json(after)).toMatchObject({ retention_days: 7, project: { retention_days: 7 } });
    // the other project keeps its own settings
    const other = await t.request('GET', '/api/v1/settings', undefined, otherKey);
    expect(json<{ retention_days: number }>(other).retention_days).not.toBe(7);
  });

  it('refuses bad settings naming the field, writing nothing', async () => {
    await t.request('PATCH', '/api/v1/settings', { retention_days: 30 });
    for (const body of [
      {},
      { retention_days: 0 },
      { retention_days: 4000 },
      { retention_days: '9' },
    ]) {
      const res = await t.request('PATCH', '/api/v1/settings', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(firstField(res)).toBe('body.retention_days');
    }
    expect((await projectOf()).retention_days).toBe(30);
  });

  it('lets only an admin key change settings, and no key read them', async () => {
    await t.request('PATCH', '/api/v1/settings', { retention_days: 30 });
    for (const key of [readKey, writeKey]) {
      const res = await t.request('PATCH', '/api/v1/settings', { retention_days: 5 }, key);
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('forbidden');
    }
    expect((await t.request('GET', '/api/v1/settings', undefined, null)).statusCode).toBe(401);
    expect((await projectOf()).retention_days).toBe(30);
  });

  const overrides = async (key = t.adminKey) =>
    json<PriceList>(await t.request('GET', '/api/v1/prices', undefined, key)).prices.filter(
      (p) => p.source === 'project',
    );
  const putPrice = (model: string, key = t.adminKey) =>
    t.request('PUT', `/api/v1/prices/${model}`, { input_per_mtok: 1, output_per_mtok: 2 }, key);

  it('refuses a field a project, settings, price or key body does not take, naming it, writing nothing', async () => {
    // each would otherwise answer 2xx with the field ignored: a cached-input price never set,
    // a project never renamed, a key made without its name
    const project = await projectOf();
    const prices = await overrides();
    const keys = json<{ keys: unknown[] }>(await t.request('GET', '/api/v1/keys')).keys;
    const cases: [string, string, Record<string, unknown>, string][] = [
      ['PATCH', '/api/v1/projects/default', { nmae: 'Renamed' }, 'body.nmae'],
      ['PATCH', '/api/v1/settings', { retention_days: 9, retention: 9 }, 'body.retention'],
      [
        'PUT',
        '/api/v1/prices/typo-model',
        { input_per_mtok: 1, output_per_mtok: 2, cached_input: 0.5 },
        'body.cached_input',
      ],
      ['POST', '/api/v1/keys', { scope: 'read', nmae: 'grafana' }, 'body.nmae'],
      [
        'POST',
        '/api/v1/projects',
        { id: 'typo-project', name: 'Typo', retention: 9 },
        'body.retention',
      ],
    ];
    for (const [method, url, body, field] of cases) {
      const res = await t.request(method, url, body);
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(json<ApiError>(res).error.details).toEqual([{ field, message: 'unknown field' }]);
    }
    expect(await projectOf()).toEqual(project);
    expect(await overrides()).toEqual(prices);
    expect(json<{ keys: unknown[] }>(await t.request('GET', '/api/v1/keys')).keys).toEqual(keys);
    // the project was not made: its id is free
    const made = await t.request('POST', '/api/v1/projects', { id: 'typo-project', name: 'Typo' });
    expect(made.statusCode).toBe(201);
  });

  it('removes a price override: the list and new steps fall back to the built-in price', async () => {
    expect((await putPrice('gpt-4o-mini')).statusCode).toBe(200);
    const costOf = async (stepId: string) => {
      const run = `price-${stepId}`;
      await t.request('POST', '/api/v1/runs', { id: run, agent_id: 'pricer' });
      const step = await t.request('POST', `/api/v1/runs/${run}/steps`, {
        id: stepId,
        type: 'llm',
        model: 'gpt-4o-mini',
        input_tokens: 1_000_000,
        output_tokens: 0,
        status: 'succeeded',
      });
      return json<{ cost_usd: number }>(step).cost_usd;
    };
    expect(await costOf('with-override')).toBeCloseTo(1, 9);

    const res = await t.request('DELETE', '/api/v1/prices/gpt-4o-mini');
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(await overrides()).toEqual([]);
    expect(await costOf('built-in')).toBeCloseTo(0.15, 9);

    const again = await t.request('DELETE', '/api/v1/prices/gpt-4o-mini');
    expect(again.statusCode).toBe(404);
  });

  it('keeps one override per model as prices match it, the last one set, on every database', async () => {
    // `Zed-1.5`, `zed-1-5` and `ZED-1.5` price the same steps: before, all three were kept
    // and a step was priced by whichever the database listed last (100 on SQLite, 10 on PostgreSQL)
    for (const [model, price] of [
      ['Zed-1.5', 1],
      ['zed-1-5', 100],
      ['ZED-1.5', 10],
    ] as const) {
      const res = await t.request('PUT', `/api/v1/prices/${model}`, {
        input_per_mtok: price,
        output_per_mtok: price,
      });
      expect(res.statusCode).toBe(200);
    }
    expect((await overrides()).map((p) => [p.model, p.input_per_mtok])).toEqual([['ZED-1.5', 10]]);
    await t.request('POST', '/api/v1/runs', { id: 'zed-run', agent_id: 'pricer' });
    const step = await t.request('POST', '/api/v1/runs/zed-run/steps', {
      type: 'llm',
      model: 'zed-1.5',
      input_tokens: 1_000_000,
      output_tokens: 0,
      status: 'succeeded',
    });
    expect(json<{ cost_usd: number }>(step).cost_usd).toBeCloseTo(10, 9);
    // removed by any of its spellings
    expect((await t.request('DELETE', '/api/v1/prices/zed-1-5')).statusCode).toBe(204);
    expect(await overrides()).toEqual([]);
  });

  it('refuses a model name with a NUL character on every database, naming the field', async () => {
    // before: stored on SQLite, a 500 on PostgreSQL, and an export PostgreSQL could not import
    for (const res of [
      await putPrice('a%00b'),
      await t.request('DELETE', '/api/v1/prices/a%00b'),
    ]) {
      expect(res.statusCode).toBe(400);
      expect(json<{ error: { details: { field: string }[] } }>(res).error.details[0]!.field).toBe(
        'params.model',
      );
    }
    expect(await overrides()).toEqual([]);
  });

  it("lets only an admin key remove a price override, and only its own project's", async () => {
    await putPrice('guarded');
    await putPrice('guarded', otherKey);
    for (const key of [readKey, writeKey]) {
      const res = await t.request('DELETE', '/api/v1/prices/guarded', undefined, key);
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('forbidden');
    }
    expect((await overrides()).map((p) => p.model)).toEqual(['guarded']);

    expect((await t.request('DELETE', '/api/v1/prices/guarded')).statusCode).toBe(204);
    expect(await overrides()).toEqual([]);
    expect((await overrides(otherKey)).map((p) => p.model)).toEqual(['guarded']);
    await putPrice('only-mine');
    const notTheirs = await t.request('DELETE', '/api/v1/prices/only-mine', undefined, otherKey);
    expect(notTheirs.statusCode).toBe(404);
    expect((await overrides()).map((p) => p.model)).toEqual(['only-mine']);
  });
});
