import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, readableError } from '@runlog/core';
import { describeEachDb, startTestServer } from '../../server/test/harness.js';
import { type Runlog, RunlogApiError, RunlogConnectionError, RunlogError } from '../src/index.js';
import { FaultProxy, clientFactory, deadUrl, type TestServer } from './helpers.js';

// against a real server on each database: the SDK's reads and claims go through its queries
describeEachDb('SDK read client', (dialect) => {
  let server: TestServer;
  const clients = clientFactory(() => ({
    url: server.url,
    apiKey: server.adminKey,
    flushIntervalMs: 20,
    heartbeatIntervalMs: 60_000,
    onError: () => {},
  }));
  let runlog: Runlog;
  const agent = `client-agent-${newId().slice(-6)}`;
  const ids = { ok: newId(), failed: newId(), other: newId() };

  beforeAll(async () => {
    server = await startTestServer(dialect);
    runlog = clients.make();
    await runlog.run(
      agent,
      async (run) => {
        await run.tool('lookup', { q: 'a' }, () => ['hit']);
        await run.llm({ model: 'gpt-4o-mini', input_tokens: 100, output_tokens: 10 });
        return { answer: 42 };
      },
      {
        id: ids.ok,
        input: { q: 'a' },
        tags: ['red'],
        userId: 'u-1',
        threadId: 't-1',
        metadata: { env: 'prod', pr: 42 },
      },
    );
    await runlog
      .run(
        agent,
        () => {
          throw new Error('boom');
        },
        { id: ids.failed, tags: ['blue'], metadata: { env: 'staging', pr: '42' } },
      )
      .catch(() => {});
    await runlog.run(`${agent}-other`, () => 'x', { id: ids.other });
    expect(await runlog.flush()).toBe(true);
  });
  afterAll(async () => {
    await clients.shutdownAll();
    await server.close();
  });

  describe('runs', () => {
    it('list() filters by agent, status, tag and time and pages with a cursor', async () => {
      const all = await runlog.runs.list({ agent_id: [agent, `${agent}-other`] });
      expect(all.runs.map((r) => r.id).sort()).toEqual(Object.values(ids).sort());
      expect(all.has_more).toBe(false);

      const failed = await runlog.runs.list({ agent_id: agent, status: ['failed'] });
      expect(failed.runs.map((r) => r.id)).toEqual([ids.failed]);
      expect(readableError(failed.runs[0]!.error!).message).toBe('boom');

      const tagged = await runlog.runs.list({ tag: 'red', user_id: 'u-1', thread_id: 't-1' });
      expect(tagged.runs.map((r) => r.id)).toEqual([ids.ok]);

      const prod = await runlog.runs.list({ metadata: { env: 'prod', pr: 42 } });
      expect(prod.runs.map((r) => r.id)).toEqual([ids.ok]);
      const pr = await runlog.runs.list({ agent_id: agent, metadata: { pr: '42' } });
      expect(pr.runs.map((r) => r.id).sort()).toEqual([ids.ok, ids.failed].sort());
      const none = await runlog.runs.list({ metadata: { env: 'prod', pr: '43' } });
      expect(none.runs).toEqual([]);

      const future = await runlog.runs.list({ from: new Date(Date.now() + 3_600_000) });
      expect(future.runs).toEqual([]);

      const page1 = await runlog.runs.list({ agent_id: agent, limit: 1 });
      expect(page1.runs).toHaveLength(1);
      expect(page1.has_more).toBe(true);
      const page2 = await runlog.runs.list({
        agent_id: agent,
        limit: 1,
        cursor: page1.next_cursor!,
        q: undefined,
      });
      expect(page2.runs).toHaveLength(1);
      expect(page2.runs[0]!.id).not.toBe(page1.runs[0]!.id);
    });

    it('get() returns the run, and with include steps its steps too', async () => {
      const run = await runlog.runs.get(ids.ok);
      expect(run).toMatchObject({
        id: ids.ok,
        agent_id: agent,
        status: 'succeeded',
        input: { q: 'a' },
        output: { answer: 42 },
        tags: ['red'],
        tool_calls: 1,
        llm_calls: 1,
        total_tokens: 110,
      });
      expect('steps' in run).toBe(false);
      const withSteps = await runlog.runs.get(ids.ok, { include: 'steps' });
      expect(withSteps.steps.map((s) => [s.type, s.name])).toEqual([
        ['tool', 'lookup'],
        ['llm', 'gpt-4o-mini'],
      ]);
    });

    it('steps() lists the steps of a run in order', async () => {
      const steps = await runlog.runs.steps(ids.ok);
      expect(steps.map((s) => s.seq)).toEqual([0, 1]);
      expect(steps[0]).toMatchObject({ type: 'tool', input: { q: 'a' }, output: ['hit'] });
    });

    it('enqueue() queues a run, cancel() stops it, retry() queues it again linked to it', async () => {
      const queued = await runlog.runs.enqueue(`${agent}-queued`, {
        input: { n: 1 },
        tags: ['q'],
      });
      expect(queued).toMatchObject({
        agent_id: `${agent}-queued`,
        status: 'queued',
        input: { n: 1 },
      });
      const cancelled = await runlog.runs.cancel(queued.id);
      expect(cancelled.id).toBe(queued.id);
      expect(cancelled.status).toBe('cancelled');
      const retried = await runlog.runs.retry(queued.id);
      expect(retried.id).not.toBe(queued.id);
      expect(retried).toMatchObject({ retry_of: queued.id, status: 'queued', input: { n: 1 } });
      // with the id given, the same call again answers the same retry
      const once = await runlog.runs.retry(queued.id, { id: `${agent}-retry-once` });
      expect(await runlog.runs.retry(queued.id, { id: once.id })).toEqual(once);
      expect((await runlog.runs.list({ retry_of: queued.id })).runs).toHaveLength(2);
      const bare = await runlog.runs.enqueue(`${agent}-queued`);
      expect(bare.status).toBe('queued');
    });

    it('retry() with once queues one retry among callers racing, and answers it to each', async () => {
      const source = await runlog.runs.enqueue(`${agent}-once`, { input: { n: 2 } });
      await runlog.runs.cancel(source.id);
      const mine = `${source.id}-mine`;
      const answers = await Promise.all([
        runlog.runs.retry(source.id, { once: true, id: mine }),
        ...Array.from({ length: 9 }, () => runlog.runs.retry(source.id, { once: true })),
      ]);
      expect(new Set(answers.map((r) => r.id)).size).toBe(1);
      const retries = (await runlog.runs.list({ retry_of: source.id })).runs;
      expect(retries.map((r) => r.id)).toEqual([answers[0]!.id]);
      expect(retries[0]).toMatchObject({ status: 'queued', input: { n: 2 }, attempt: 2 });
      // later: the retry it has is answered, and the id given says it was not this call's
      const later = await runlog.runs.retry(source.id, { once: true, id: `${source.id}-later` });
      expect(later.id).toBe(answers[0]!.id);
      // without once, another retry
      expect((await runlog.runs.retry(source.id)).id).not.toBe(answers[0]!.id);
      expect((await runlog.runs.list({ retry_of: source.id })).runs).toHaveLength(2);
      // the runs retried, and those not yet
      const ids = async (retried: boolean) =>
        (await runlog.runs.list({ agent_id: `${agent}-once`, retried })).runs.map((r) => r.id);
      expect(await ids(true)).toEqual([source.id]);
      expect(await ids(false)).not.toContain(source.id);
      expect(await ids(false)).toHaveLength(2);
    });

    it('enqueue() calls made together go in one request, each answered with its own run', async () => {
      const proxy = await FaultProxy.start(server.url);
      try {
        const viaProxy = clients.make({ url: proxy.url });
        const queued = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            viaProxy.runs.enqueue(`${agent}-bulk-${i % 2}`, { input: { i } }),
          ),
        );
        expect(queued.map((r) => r.input)).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
        expect(queued.map((r) => r.agent_id)).toEqual(
          Array.from({ length: 20 }, (_, i) => `${agent}-bulk-${i % 2}`),
        );
        expect(queued.every((r) => r.status === 'queued')).toBe(true);
        expect(proxy.requests.map((r) => r.path)).toEqual(['/api/v1/runs/enqueue']);
        const listed = await runlog.runs.list({ agent_id: [`${agent}-bulk-0`, `${agent}-bulk-1`] });
        expect(listed.total).toBe(20);
      } finally {
        await proxy.close();
      }
    });

    it('enqueue() of a run the server refuses fails alone when it was sent with others', async () => {
      const taken = await runlog.runs.enqueue(`${agent}-taken`);
      const [ok, refused, tooLong] = await Promise.allSettled([
        runlog.runs.enqueue(`${agent}-together`, { input: { n: 1 } }),
        // its id belongs to a run of another agent: 409
        runlog.runs.enqueue(`${agent}-together`, { id: taken.id }),
        runlog.runs.enqueue(`${agent}-together`, { source: 'x'.repeat(201) }),
      ]);
      expect(ok.status === 'fulfilled' && ok.value.status).toBe('queued');
      expect(refused.status === 'rejected' && refused.reason).toMatchObject({ status: 409 });
      expect(tooLong.status === 'rejected' && tooLong.reason).toMatchObject({
        status: 400,
        message: expect.stringMatching(/source/),
      });
      const listed = await runlog.runs.list({ agent_id: `${agent}-together` });
      expect(listed.runs.map((r) => r.input)).toEqual([{ n: 1 }]);
    });

    it('enqueue() inside a run queues a sub-run of it, in its thread, unless told otherwise', async () => {
      const inner = await runlog.run(
        `${agent}-parent`,
        async (run) => ({
          parent: run.id,
          nested: await runlog.runs.enqueue(`${agent}-sub`),
          own: await runlog.runs.enqueue(`${agent}-sub`, { thread_id: 't-own', user_id: 'u-own' }),
          named: await runlog.runs.enqueue(`${agent}-sub`, { parent_run_id: 'elsewhere' }),
          loose: await runlog.runs.enqueue(`${agent}-sub`, { parent_run_id: null }),
        }),
        { threadId: 't-parent', userId: 'u-parent' },
      );
      expect(inner.nested).toMatchObject({
        parent_run_id: inner.parent,
        thread_id: 't-parent',
        user_id: 'u-parent',
      });
      expect(inner.own).toMatchObject({
        parent_run_id: inner.parent,
        thread_id: 't-own',
        user_id: 'u-own',
      });
      expect(inner.named).toMatchObject({ parent_run_id: 'elsewhere', thread_id: null });
      expect(inner.loose).toMatchObject({ parent_run_id: null, thread_id: null, user_id: null });
      // outside any run: no parent
      expect(await runlog.runs.enqueue(`${agent}-sub`)).toMatchObject({ parent_run_id: null });
    });

    it('enqueue() sends an input JSON cannot hold as a JSON-safe copy', async () => {
      const input: Record<string, unknown> = { n: 1n, f: () => 1 };
      input.self = input;
      const queued = await runlog.runs.enqueue('enqueue-json-agent', { input });
      expect((await runlog.runs.get(queued.id)).input).toEqual({ n: '1', self: '[Circular]' });
    });
  });

  describe('agents', () => {
    it('list() returns each agent with its latest run and counts', async () => {
      const agents = await runlog.agents.list();
      const mine = agents.find((a) => a.id === agent);
      expect(mine).toBeDefined();
      expect(mine!.counts_24h).toMatchObject({ runs: 2, succeeded: 1, failed: 1 });
      expect(mine!.last_error?.run_id).toBe(ids.failed);
      expect(agents.some((a) => a.id === `${agent}-other`)).toBe(true);
    });
  });

  describe('errors', () => {
    it('an unknown run is a RunlogApiError 404 not_found', async () => {
      const err = await runlog.runs.get(newId()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunlogApiError);
      expect(err).toBeInstanceOf(RunlogError);
      expect(err).toMatchObject({ status: 404, code: 'not_found', name: 'RunlogApiError' });
    });

    it('a bad API key is a RunlogApiError 401 unauthorized', async () => {
      const bad = clients.make({ apiKey: 'rl_not_a_real_key_000000000000000000000000' });
      const err = await bad.runs.list().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunlogApiError);
      expect(err).toMatchObject({ status: 401, code: 'unauthorized' });
      const none = clients.make({ apiKey: '' });
      await expect(none.agents.list()).rejects.toMatchObject({ status: 401 });
    });

    it('an invalid query is a RunlogApiError 400 naming the field', async () => {
      const err = (await runlog.runs
        .list({ limit: -1 })
        .catch((e: unknown) => e)) as RunlogApiError;
      expect(err.status).toBe(400);
      expect(err.code).toBe('invalid_input');
      expect(JSON.stringify(err.details)).toContain('limit');
      // what could not be sent as meant is refused the same way, before any request
      const badDate = (await runlog.runs
        .list({ from: new Date('nope') })
        .catch((e: unknown) => e)) as RunlogApiError;
      expect(badDate).toBeInstanceOf(RunlogApiError);
      expect(badDate).toMatchObject({ status: 400, message: 'query.from: an invalid Date' });
      const nested = (await runlog.runs
        .list({ metadata: { a: { b: 1 } as never } })
        .catch((e: unknown) => e)) as RunlogApiError;
      expect(nested).toBeInstanceOf(RunlogApiError);
      expect(nested.details).toEqual([
        {
          field: 'query.metadata[a]',
          message:
            'a metadata filter matches a text, number or boolean value, not an object or a list',
        },
      ]);
    });

    it('nothing listening is a RunlogConnectionError naming the server', async () => {
      const url = await deadUrl();
      const down = clients.make({ url: `${url}/` });
      expect(down.url).toBe(url);
      const err = await down.runs.list().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunlogConnectionError);
      expect((err as Error).message).toContain(`cannot reach Runlog at ${url}`);
      await expect(down.agents.list()).rejects.toBeInstanceOf(RunlogConnectionError);
    });
  });
});
