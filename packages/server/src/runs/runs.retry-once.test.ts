import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run, RunList } from '@runlog/core';
import { createTestApp, describeEachDb, ingestOk, json, type TestApp } from '../../test/harness.js';
import { buildApp } from '../app.js';
import { closeContext, createContext } from '../server.js';

interface ErrorBody {
  error: { code: string; message: string; details: { field: string; message: string }[] };
}

describeEachDb('POST /runs/:run_id/retry with once', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  const failed = async (id: string, agent = 'once-agent') =>
    ingestOk(t, [
      { type: 'run.start', run: { id, agent_id: agent, input: { n: id } } },
      { type: 'run.end', run: { id, status: 'failed', error: { message: 'boom' } } },
    ]);
  const retries = async (id: string) => {
    const res = await t.request('GET', `/api/v1/runs?retry_of=${id}`);
    expect(res.statusCode).toBe(200);
    return json<RunList>(res).runs;
  };

  it('queues a retry (201) the first time and answers that retry (200) after', async () => {
    await failed('o-1');
    const first = await t.request('POST', '/api/v1/runs/o-1/retry', { once: true });
    expect(first.statusCode).toBe(201);
    const queued = json<Run>(first);
    expect(queued).toMatchObject({ retry_of: 'o-1', attempt: 2, status: 'queued' });
    const second = await t.request('POST', '/api/v1/runs/o-1/retry', { once: true });
    expect(second.statusCode).toBe(200);
    expect(json<Run>(second)).toEqual(queued);
    expect((await retries('o-1')).map((r) => r.id)).toEqual([queued.id]);
    // without once, nothing changed: another retry, 201
    const plain = await t.request('POST', '/api/v1/runs/o-1/retry');
    expect(plain.statusCode).toBe(201);
    expect(json<Run>(plain).id).not.toBe(queued.id);
    const third = await t.request('POST', '/api/v1/runs/o-1/retry', { once: false });
    expect(third.statusCode).toBe(201);
    // once answers the newest of them, as GET /runs?retry_of= lists it first
    const newest = (await retries('o-1'))[0]!;
    expect(newest.id).toBe(json<Run>(third).id);
    const after = await t.request('POST', '/api/v1/runs/o-1/retry', { once: true });
    expect(after.statusCode).toBe(200);
    expect(json<Run>(after).id).toBe(newest.id);
    expect(await retries('o-1')).toHaveLength(3);
  });

  it('answers the retry in whatever state it is now, also once it ended', async () => {
    await failed('o-ended');
    const queued = json<Run>(await t.request('POST', '/api/v1/runs/o-ended/retry', { once: true }));
    await ingestOk(t, [{ type: 'run.end', run: { id: queued.id, status: 'succeeded' } }]);
    const again = await t.request('POST', '/api/v1/runs/o-ended/retry', { once: true });
    expect(again.statusCode).toBe(200);
    expect(json<Run>(again)).toMatchObject({ id: queued.id, status: 'succeeded' });
  });

  it('queues one retry for 20 concurrent calls, every answer naming it', async () => {
    await failed('o-race');
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.request('POST', '/api/v1/runs/o-race/retry', { once: true }),
      ),
    );
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses).toEqual([...Array<number>(19).fill(200), 201]);
    const ids = new Set(answers.map((a) => json<Run>(a).id));
    expect(ids.size).toBe(1);
    expect((await retries('o-race')).map((r) => r.id)).toEqual([...ids]);
  });

  it('with an id: the same call sent again answers its retry as the first did (201)', async () => {
    await failed('o-id');
    const [a, b] = await Promise.all(
      [1, 2].map(() => t.request('POST', '/api/v1/runs/o-id/retry', { id: 'o-id-r', once: true })),
    );
    expect([a!.statusCode, b!.statusCode]).toEqual([201, 201]);
    expect(json<Run>(a!)).toEqual(json<Run>(b!));
    // another caller's id: the run has its retry, which it is answered
    const other = await t.request('POST', '/api/v1/runs/o-id/retry', {
      id: 'o-id-other',
      once: true,
    });
    expect(other.statusCode).toBe(200);
    expect(json<Run>(other).id).toBe('o-id-r');
    expect((await t.request('GET', '/api/v1/runs/o-id-other')).statusCode).toBe(404);
    // an id taken by a run that is not its retry is still a 409 naming the field
    const taken = await t.request('POST', '/api/v1/runs/o-id/retry', { id: 'o-1', once: true });
    expect(taken.statusCode).toBe(409);
    expect(json<ErrorBody>(taken).error.details).toEqual([
      expect.objectContaining({ field: 'body.id' }),
    ]);
  });

  it('refuses what it refused before: a run not found, one still running', async () => {
    const missing = await t.request('POST', '/api/v1/runs/o-none/retry', { once: true });
    expect(missing.statusCode).toBe(404);
    await ingestOk(t, [{ type: 'run.start', run: { id: 'o-running', agent_id: 'once-agent' } }]);
    const running = await t.request('POST', '/api/v1/runs/o-running/retry', { once: true });
    expect(running.statusCode).toBe(409);
    expect(await retries('o-running')).toEqual([]);
  });

  it('refuses an invalid or unknown field with a 400 naming it, and queues nothing', async () => {
    await failed('o-bad');
    const cases: [unknown, string][] = [
      [{ once: 'yes' }, 'body.once'],
      [{ once: 1 }, 'body.once'],
      [{ onse: true }, 'body.onse'],
      [{ once: true, extra: 1 }, 'body.extra'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request('POST', '/api/v1/runs/o-bad/retry', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      const error = json<ErrorBody>(res).error;
      expect(error.code).toBe('invalid_input');
      expect(error.details.map((d) => d.field)).toEqual([field]);
      expect(error.message).toMatch(new RegExp(`^${field.replace('.', '\\.')}: `));
    }
    expect(await retries('o-bad')).toEqual([]);
  });

  it('describes once and its 200 and 201 answers in openapi.json', async () => {
    const res = await t.request('GET', '/api/v1/openapi.json');
    const op = json<{
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody: {
              content: Record<string, { schema: { properties: Record<string, unknown> } }>;
            };
            responses: Record<string, { description: string }>;
          }
        >
      >;
    }>(res).paths['/api/v1/runs/{run_id}/retry']!.post!;
    const schema = op.requestBody.content['application/json']!.schema;
    expect(schema.properties.once).toMatchObject({ type: 'boolean' });
    expect(schema).toMatchObject({ additionalProperties: false });
    expect(op.responses['200']!.description).toMatch(/once/);
    expect(op.responses['201']!.description).toMatch(/new queued run/);
  });

  describe('from two server instances at once', () => {
    it('queues one retry between them', async () => {
      // one SQLite file has one writer process; several instances are a PostgreSQL setup
      if (dialect !== 'postgres') return;
      const other = (await createContext(t.ctx.config)).ctx;
      const otherApp = await buildApp(other);
      await otherApp.ready();
      try {
        for (let round = 0; round < 5; round++) {
          const id = `o-two-${round}`;
          await failed(id);
          const answers = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              (i % 2 ? otherApp : t.app).inject({
                method: 'POST',
                url: `/api/v1/runs/${id}/retry`,
                headers: {
                  authorization: `Bearer ${t.adminKey}`,
                  'content-type': 'application/json',
                },
                payload: JSON.stringify({ once: true }),
              }),
            ),
          );
          expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(1);
          expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(19);
          const named = new Set(answers.map((a) => json<Run>(a).id));
          expect(named.size).toBe(1);
          expect((await retries(id)).map((r) => r.id)).toEqual([...named]);
        }
      } finally {
        await closeContext(other, otherApp);
      }
    });
  });
});
