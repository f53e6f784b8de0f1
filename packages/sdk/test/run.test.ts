import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId, readableError } from '@runlog/core';
import { describeEachDb, startTestServer } from '../../server/test/harness.js';
import { type Runlog, RunCancelledError, currentRun, type RunContext } from '../src/index.js';
import { clientFactory, waitFor, type TestServer } from './helpers.js';

// against a real server on each database: the SDK's reads and claims go through its queries
describeEachDb('SDK run() and steps', (dialect) => {
  let server: TestServer;
  let errors: Error[] = [];
  const clients = clientFactory(() => ({
    url: server.url,
    apiKey: server.adminKey,
    flushIntervalMs: 20,
    heartbeatIntervalMs: 50,
    onError: (e) => errors.push(e),
  }));
  let runlog: Runlog;

  beforeAll(async () => {
    server = await startTestServer(dialect);
    runlog = clients.make();
  });
  afterEach(() => {
    errors = [];
  });
  afterAll(async () => {
    await clients.shutdownAll();
    await server.close();
  });

  describe('run()', () => {
    it('nests steps by where they are called: a tool inside an llm step is its child', async () => {
      let runId = '';
      await runlog.run('nest-agent', async (run) => {
        runId = run.id;
        expect(currentRun()).toBe(run);
        await run.llm({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, () =>
          run.tool('inner', { x: 1 }, async (a) => {
            // still nested after an await inside the step
            await new Promise((r) => setTimeout(r, 1));
            return run.step('think', 'deepest', () => a.x + 1);
          }),
        );
        // concurrent siblings each keep their own parent
        await Promise.all([
          run.step('retrieval', 'a', () => run.tool('under-a', {}, () => 'a')),
          run.step('retrieval', 'b', () => run.tool('under-b', {}, () => 'b')),
        ]);
        await run.tool('top', {}, () => null);
      });
      expect(currentRun()).toBeUndefined();
      expect(await runlog.flush()).toBe(true);
      const steps = await runlog.runs.steps(runId);
      const byName = new Map(steps.map((s) => [s.name, s]));
      const llm = byName.get('gpt-4o-mini')!;
      expect(llm.type).toBe('llm');
      expect(llm.parent_step_id).toBeNull();
      expect(llm.input).toEqual([{ role: 'user', content: 'hi' }]);
      expect(llm.output).toBe(2);
      expect(byName.get('inner')!.parent_step_id).toBe(llm.id);
      expect(byName.get('deepest')!.parent_step_id).toBe(byName.get('inner')!.id);
      expect(byName.get('under-a')!.parent_step_id).toBe(byName.get('a')!.id);
      expect(byName.get('under-b')!.parent_step_id).toBe(byName.get('b')!.id);
      expect(byName.get('top')!.parent_step_id).toBeNull();
      expect(steps.map((s) => s.seq)).toEqual([...steps.keys()]);
    });

    it('reads a run this process just recorded, its events still waiting to go', async () => {
      const slow = clients.make({ flushIntervalMs: 60_000 });
      const id = newId();
      let seen: unknown;
      await slow.run(
        'read-own-writes-agent',
        async (run) => {
          await run.step('tool', 'quick', () => 1);
          // its start and step wait for the flush interval: the read sends them first
          seen = await slow.runs.get(run.id, { include: 'steps' });
          return 'done';
        },
        { id, threadId: `thread-${id}` },
      );
      expect(seen).toMatchObject({ id, status: 'running', steps: [{ name: 'quick' }] });
      // before: 404 until the end, sent a moment later, reached the server
      expect(await slow.runs.get(id)).toMatchObject({ id, status: 'succeeded', output: 'done' });
      expect((await slow.threads.get(`thread-${id}`)).runs).toBe(1);
      expect(errors).toEqual([]);
    });

    it("sends a run's end at once, without waiting for the flush interval", async () => {
      const slow = clients.make({ flushIntervalMs: 60_000 });
      const id = newId();
      await slow.run(
        'prompt-end-agent',
        async (run) => {
          await run.step('tool', 'quick', () => 1);
          return 'done';
        },
        { id },
      );
      const run = await waitFor(async () => {
        const r = await runlog.runs.get(id).catch(() => undefined);
        return r?.status === 'succeeded' && r;
      }, 'the run to arrive');
      expect(run.step_count).toBe(1);
      // the server may answer the read before the SDK has heard its batch's acknowledgement
      await waitFor(() => slow.pending === 0, 'the SDK to hear the acknowledgement');
    });

    it('records the return value as the output and hands it back', async () => {
      const id = newId();
      const out = await runlog.run('output-agent', () => ({ verdict: 'bug', score: 0.9 }), {
        id,
        input: { issue: 7 },
        trigger: 'api',
        source: 'test',
        triggeredBy: 'ci',
        metadata: { team: 'core' },
      });
      expect(out).toEqual({ verdict: 'bug', score: 0.9 });
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id);
      expect(run).toMatchObject({
        status: 'succeeded',
        input: { issue: 7 },
        output: { verdict: 'bug', score: 0.9 },
        trigger: 'api',
        source: 'test',
        triggered_by: 'ci',
        metadata: { team: 'core' },
        error: null,
      });
      expect(run.duration_ms).not.toBeNull();
    });

    it('records a thrown error with its stack, marks the step and run failed and rethrows it', async () => {
      const id = newId();
      const thrown = new TypeError('no such issue');
      const caught = await runlog
        .run(
          'error-agent',
          async (run) => {
            await run.tool('fetch', { n: 1 }, () => {
              throw thrown;
            });
          },
          { id },
        )
        .catch((e: unknown) => e);
      expect(caught).toBe(thrown);
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ message: 'no such issue', type: 'TypeError' });
      expect(readableError(run.error!).stack).toContain('no such issue');
      expect(run.steps[0]).toMatchObject({ name: 'fetch', status: 'failed' });
      expect(readableError(run.steps[0]!.error!).message).toBe('no such issue');
      expect(run.error_count).toBe(1);
    });

    it("records what a thrown error wraps: its cause and an AggregateError's errors", async () => {
      const id = newId();
      // what fetch() throws when the server is down: the reason is only in the cause
      const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
        code: 'ECONNREFUSED',
      });
      const thrown = new TypeError('fetch failed', { cause: refused });
      const many = new AggregateError([new RangeError('first'), 'second'], 'all failed', {
        cause: { status: 503 },
      });
      await runlog
        .run('cause-agent', (run) => run.step('tool', 'many', () => Promise.reject(many)))
        .catch(() => {});
      await runlog
        .run(
          'cause-agent',
          async (run) => {
            await run.tool('fetch', { url: 'http://127.0.0.1:9' }, () => Promise.reject(thrown));
          },
          { id },
        )
        .catch(() => {});
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run.error).toMatchObject({ message: 'fetch failed', type: 'TypeError' });
      expect(readableError(run.error!).stack).toContain('TypeError: fetch failed');
      expect(readableError(run.error!).stack).toContain(
        '[cause]: Error: connect ECONNREFUSED 127.0.0.1:9',
      );
      expect(readableError(run.steps[0]!.error!).stack).toBe(readableError(run.error!).stack);
      const [other] = (await runlog.runs.list({ agent_id: 'cause-agent', limit: 2 })).runs.filter(
        (r) => r.id !== id,
      );
      const stack = readableError(other!.error!).stack!;
      expect(stack).toContain('AggregateError: all failed');
      expect(stack).toContain('[errors[0]]: RangeError: first');
      expect(stack).toContain('[errors[1]]: "second"');
      expect(stack).toContain('[cause]: {"status":503}');
      expect(errors).toEqual([]);
    });

    it('rethrows a thrown value JSON cannot hold unchanged, from the run and from a step', async () => {
      const circular: Record<string, unknown> = { code: 'E_X' };
      circular.self = circular;
      for (const thrown of [circular, 5n]) {
        const id = newId();
        const fromRun = await runlog
          .run('throw-agent', () => Promise.reject(thrown))
          .catch((e) => e);
        expect(fromRun).toBe(thrown);
        const fromStep = await runlog
          .run(
            'throw-agent',
            (run) =>
              run.step('tool', 'x', () => {
                throw thrown;
              }),
            { id },
          )
          .catch((e: unknown) => e);
        expect(fromStep).toBe(thrown);
        expect(await runlog.flush()).toBe(true);
        const run = await runlog.runs.get(id, { include: 'steps' });
        expect(run.status).toBe('failed');
        expect(run.steps[0]).toMatchObject({ status: 'failed', error: run.error });
      }
      expect(errors).toEqual([]);
    });

    it('records inputs and outputs as they were, JSON-safe, and loses no healthy run beside them', async () => {
      const id = newId();
      const healthy = newId();
      const circular: Record<string, unknown> = { a: 1 };
      circular.self = circular;
      await runlog.run(
        'snapshot-agent',
        async (run) => {
          const messages = [{ role: 'user', content: 'q1' }];
          await run.llm({ model: 'm', messages }, () => 'a1');
          messages.push({ role: 'assistant', content: 'a1' });
          await run.tool('big', { n: 1n, f: () => 1 }, () => circular);
          run.update({ metadata: { big: 2n } });
          return messages;
        },
        { id, input: { n: 10n } },
      );
      await runlog.run('snapshot-agent', () => 'fine', { id: healthy });
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run.input).toEqual({ n: '10' });
      expect(run.metadata).toEqual({ big: '2' });
      expect(run.steps[0]!.input).toEqual([{ role: 'user', content: 'q1' }]);
      expect(run.steps[1]!.input).toEqual({ n: '1' });
      expect(run.steps[1]!.output).toEqual({ a: 1, self: '[Circular]' });
      expect((await runlog.runs.get(healthy)).status).toBe('succeeded');
      expect(errors).toEqual([]);
    });

    it('leaves out an option the server would refuse and still records the run', async () => {
      const id = newId();
      const out = await runlog.run('options-agent', () => 'fine', {
        id,
        threadId: 'thread\u0000nul',
        trigger: 'nonsense' as never,
        userId: 'dana',
      });
      expect(out).toBe('fine');
      await runlog.flush();
      const run = await runlog.runs.get(id);
      expect(run).toMatchObject({ status: 'succeeded', output: 'fine', user_id: 'dana' });
      expect(run.thread_id).toBeNull();
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/left out trigger, thread_id /),
      ]);
      errors = [];
      // a bad run id leaves nothing to record: the code still runs
      expect(await runlog.run('options-agent', () => 'ran', { id: 'bad id' })).toBe('ran');
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/^run bad id not recorded/),
      ]);
    });

    it('leaves out a step or update field the server would refuse and records the rest', async () => {
      const id = newId();
      await runlog.run(
        'fields-agent',
        async (run) => {
          await run.llm({ model: 'gpt-4o' }, (s) => {
            s.set({ input_tokens: -1, output_tokens: 7 });
            return 'answer';
          });
          await run.tool('n'.repeat(600), { q: 1 }, () => 'long name');
          await run.tool('a\u0000b', {}, () => 'nul');
          run.update({ tags: [1 as never], metadata: { keep: 1 } });
        },
        { id },
      );
      await runlog.flush();
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run.status).toBe('succeeded');
      expect(run.metadata).toEqual({ keep: 1 });
      const [llm, long, nul] = run.steps!;
      expect(llm).toMatchObject({ type: 'llm', output: 'answer', output_tokens: 7 });
      expect(llm?.input_tokens).toBeNull();
      expect(long).toMatchObject({ type: 'tool', name: null, output: 'long name' });
      expect(nul).toMatchObject({ type: 'tool', name: null, output: 'nul' });
      const messages = errors.map((e) => e.message);
      expect(messages).toContainEqual(expect.stringMatching(/^step .*: left out input_tokens /));
      expect(messages).toContainEqual(expect.stringMatching(/^run .*: left out tags /));
      expect(messages.filter((m) => m.includes('left out name'))).toHaveLength(2);
    });

    it('tells onError of cached or reasoning tokens over the total they are part of, and records them as given', async () => {
      const id = newId();
      await runlog.run(
        'usage-agent',
        async (run) => {
          // Anthropic's usage passed as it comes: cache reads beside input_tokens
          await run.llm({ model: 'gpt-4o' }, (s) => {
            s.set({ input_tokens: 100, cached_input_tokens: 1_000_000, output_tokens: 5 });
            return 'a';
          });
          await run.llm({ model: 'o3' }, (s) => {
            s.set({ input_tokens: 10, output_tokens: 5, reasoning_tokens: 50 });
            return 'b';
          });
          // within them: nothing said
          await run.llm({ model: 'gpt-4o' }, (s) => {
            s.set({ input_tokens: 100, cached_input_tokens: 100, output_tokens: 5 });
            return 'c';
          });
        },
        { id },
      );
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run.steps!.map((s) => s.cached_input_tokens)).toEqual([1_000_000, null, 100]);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          /^step \S+ of run \S+: cached_input_tokens \(1000000\) is more than input_tokens \(100\), of which it is a part: with Anthropic's usage, add cache_read_input_tokens/,
        ),
        expect.stringMatching(
          /^step \S+ of run \S+: reasoning_tokens \(50\) is more than output_tokens \(5\), of which it is a part; its cost is counted from these figures$/,
        ),
      ]);
    });

    it('run.update merges metadata into what the run started with', async () => {
      const id = newId();
      await runlog.run(
        'update-agent',
        async (run) => {
          run.update({ metadata: { pr: 12 } });
          await runlog.flush();
          run.update({ metadata: { title: 'Fix login' }, tags: ['later'], model: 'gpt-4o' });
        },
        { id, metadata: { team: 'core' } },
      );
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id);
      expect(run.metadata).toEqual({ team: 'core', pr: 12, title: 'Fix login' });
      expect(run.model).toBe('gpt-4o');
      expect(run.tags).toContain('later');
    });

    it('a run that ends before its start is sent keeps what run.update changed', async () => {
      const id = newId();
      await runlog.run(
        'short-update-agent',
        async (run) => {
          await run.llm({ model: 'gpt-4o-mini', output: 'hi', input_tokens: 3 });
          run.update({ metadata: { a: 2, b: 3 }, source: 'later', tags: ['u1'] });
          run.update({ model: 'gpt-4o', tags: ['u2'] });
        },
        { id, metadata: { a: 1 }, source: 'first', tags: ['start'] },
      );
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id);
      expect(run).toMatchObject({
        status: 'succeeded',
        metadata: { a: 2, b: 3 },
        source: 'later',
        model: 'gpt-4o',
        step_count: 1,
      });
      expect([...run.tags].sort()).toEqual(['start', 'u1', 'u2']);
    });

    it('a step keeps the metadata it started with and adds what step.set gives, short or long', async () => {
      const id = newId();
      await runlog.run(
        'step-metadata-agent',
        async (run) => {
          // its start still waits in the buffer when it ends: the two go as one event
          await run.step('tool', 'short', (step) => step.set({ metadata: { b: 2, a: 'end' } }), {
            metadata: { a: 1, c: 3 },
          });
          // its start went alone: the server merges the end into it
          await run.step(
            'tool',
            'long',
            async (step) => {
              await runlog.flush();
              step.set({ metadata: { b: 2, a: 'end' } });
            },
            { metadata: { a: 1, c: 3 } },
          );
        },
        { id },
      );
      expect(await runlog.flush()).toBe(true);
      const steps = await runlog.runs.steps(id);
      expect(steps.map((s) => [s.name, s.metadata])).toEqual([
        ['short', { a: 'end', b: 2, c: 3 }],
        ['long', { a: 'end', b: 2, c: 3 }],
      ]);
    });

    it('step.set adds tokens, cost and metadata, and its output wins over the return value', async () => {
      let runId = '';
      await runlog.run('set-agent', async (run) => {
        runId = run.id;
        await run.llm({ model: 'gpt-4o-mini', provider: 'openai' }, (step) => {
          step.set({ metadata: { a: 1 } });
          step.set({ metadata: { b: 2 }, input_tokens: 1000, output_tokens: 100, cost_usd: 0.25 });
          step.set({ output: 'from set' });
          return 'from return';
        });
        await run.llm({
          model: 'house-model',
          name: 'recorded',
          input: 'prompt',
          output: 'reply',
          started_at: Date.now() - 50,
          ended_at: Date.now(),
        });
      });
      expect(await runlog.flush()).toBe(true);
      const steps = await runlog.runs.steps(runId);
      const timed = steps.find((s) => s.name === 'gpt-4o-mini');
      const recorded = steps.find((s) => s.name === 'recorded');
      expect(timed).toMatchObject({
        output: 'from set',
        metadata: { a: 1, b: 2 },
        input_tokens: 1000,
        output_tokens: 100,
        cost_usd: 0.25,
        provider: 'openai',
        model: 'gpt-4o-mini',
      });
      expect(recorded).toMatchObject({
        name: 'recorded',
        type: 'llm',
        status: 'succeeded',
        input: 'prompt',
        output: 'reply',
      });
      expect(recorded!.duration_ms).toBeGreaterThanOrEqual(0);
    });

    it('step.set keeps what an earlier set gave for a field given as undefined', async () => {
      // a streamed reply, as Anthropic streams it: the input tokens come first, the output
      // tokens last, and the events between carry no usage
      const events = [
        { usage: { input_tokens: 812 }, text: '' },
        { usage: undefined, text: 'Hel' },
        { usage: undefined, text: 'lo' },
        { usage: { output_tokens: 95 }, text: '' },
      ];
      let runId = '';
      await runlog.run('stream-set-agent', async (run) => {
        runId = run.id;
        await run.llm({ model: 'claude-x', provider: 'anthropic' }, async (step) => {
          let text = '';
          for (const event of events) {
            await new Promise((r) => setImmediate(r));
            text += event.text;
            step.set({
              input_tokens: event.usage?.input_tokens,
              output_tokens: event.usage?.output_tokens,
              metadata: event.usage?.input_tokens ? { usage_events: true } : undefined,
            });
          }
          return text;
        });
      });
      expect(await runlog.flush()).toBe(true);
      const [step] = await runlog.runs.steps(runId);
      expect(step).toMatchObject({
        output: 'Hello',
        input_tokens: 812,
        output_tokens: 95,
        metadata: { usage_events: true },
      });
    });

    it("step.firstToken notes a streamed answer's first chunk once; run.llm takes one recorded", async () => {
      let runId = '';
      let late: Promise<void> = Promise.resolve();
      await runlog.run('ttft-agent', async (run) => {
        runId = run.id;
        await run.llm({ name: 'streamed', model: 'gpt-4o-mini' }, async (step) => {
          await new Promise((r) => setTimeout(r, 30)); // the wait for the first chunk
          let text = '';
          for (const chunk of ['Hel', 'lo']) {
            step.firstToken();
            text += chunk;
            await new Promise((r) => setTimeout(r, 300)); // the next chunk comes much later
          }
          return text;
        });
        // a stream read on after its step's function returned: reported once, not per chunk
        await run.llm({ name: 'left-behind', model: 'gpt-4o-mini' }, (step) => {
          late = new Promise((resolve) =>
            setTimeout(() => {
              step.firstToken();
              step.firstToken();
              resolve();
            }, 5),
          );
          return 'reply';
        });
        await run.llm({
          name: 'recorded',
          model: 'gpt-4o-mini',
          started_at: Date.parse('2026-03-01T10:00:00Z'),
          first_token_at: Date.parse('2026-03-01T10:00:00.180Z'),
          ended_at: Date.parse('2026-03-01T10:00:01Z'),
        });
      });
      await late;
      expect(await runlog.flush()).toBe(true);
      const steps = new Map((await runlog.runs.steps(runId)).map((s) => [s.name, s]));
      const streamed = steps.get('streamed')!;
      // the first chunk after ~30 ms, not the second after ~330 ms
      expect(streamed.time_to_first_token_ms).toBeGreaterThanOrEqual(25);
      expect(streamed.time_to_first_token_ms).toBeLessThan(300);
      expect(streamed.duration_ms).toBeGreaterThanOrEqual(600);
      expect(steps.get('left-behind')?.first_token_at).toBeNull();
      expect(steps.get('recorded')?.time_to_first_token_ms).toBe(180);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.message).toContain('step.firstToken() after the step');
    });

    it('step.set after the step ended is reported, not lost in silence', async () => {
      let runId = '';
      let late: Promise<void> = Promise.resolve();
      await runlog.run('late-set-agent', async (run) => {
        runId = run.id;
        // usage told by a stream's 'end' event, after the function already returned
        await run.llm({ model: 'gpt-4o-mini' }, (step) => {
          late = new Promise((resolve) =>
            setTimeout(() => {
              step.set({ input_tokens: 812, output_tokens: 95 });
              resolve();
            }, 5),
          );
          return 'reply';
        });
      });
      await late;
      expect(await runlog.flush()).toBe(true);
      const [step] = await runlog.runs.steps(runId);
      expect(step).toMatchObject({ output: 'reply', input_tokens: null });
      expect(errors.map((e) => e.message)).toEqual([
        `step ${step!.id} of run ${runId}: step.set() after the step's function returned is not recorded`,
      ]);
    });

    it('a run started inside another run is its child, in its thread, unless a parent is given', async () => {
      let outer = '';
      let inner = '';
      let explicit = '';
      let own = '';
      await runlog.run(
        'parent-agent',
        async (run) => {
          outer = run.id;
          await runlog.run('child-agent', (child) => {
            inner = child.id;
          });
          await runlog.run('child-agent', (child) => void (explicit = child.id), {
            parentRunId: 'someone-else',
          });
          await runlog.run('child-agent', (child) => void (own = child.id), {
            threadId: 'thread-own',
          });
        },
        { threadId: 'thread-1', userId: 'user-1' },
      );
      expect(await runlog.flush()).toBe(true);
      // a sub-agent's run belongs to its parent's conversation and user
      expect(await runlog.runs.get(inner)).toMatchObject({
        parent_run_id: outer,
        thread_id: 'thread-1',
        user_id: 'user-1',
      });
      expect(await runlog.runs.get(explicit)).toMatchObject({
        parent_run_id: 'someone-else',
        thread_id: null,
        user_id: null,
      });
      expect(await runlog.runs.get(own)).toMatchObject({
        thread_id: 'thread-own',
        user_id: 'user-1',
      });
      expect((await runlog.runs.get(outer)).parent_run_id).toBeNull();
      const children = await runlog.runs.list({ parent_run_id: outer });
      expect(children.runs.map((r) => r.id).sort()).toEqual([inner, own].sort());
    });

    it('a run started later from a timer set up inside an ended run is not its child', async () => {
      let first = '';
      let later: Promise<string> | undefined;
      let inside: RunContext | undefined;
      await runlog.run(
        'chat-agent',
        (run) => {
          first = run.id;
          // a poller started lazily by the first request keeps that run's async context
          setTimeout(() => {
            inside = currentRun();
            later = runlog.run('job-agent', (job) => job.id);
          }, 20);
        },
        { threadId: 'thread-chat', userId: 'user-chat' },
      );
      await waitFor(() => later !== undefined, 'the timer to fire');
      expect(inside).toBeUndefined();
      const job = await later!;
      expect(await runlog.flush()).toBe(true);
      expect(await runlog.runs.get(job)).toMatchObject({
        parent_run_id: null,
        thread_id: null,
        user_id: null,
      });
      expect((await runlog.runs.list({ parent_run_id: first })).runs).toEqual([]);
    });

    it('Stop pressed on a recording run fires run.signal and the run ends cancelled', async () => {
      let ctx: RunContext | undefined;
      const id = newId();
      const done = runlog.run(
        'stoppable-agent',
        async (run) => {
          ctx = run;
          await new Promise<void>((resolve) =>
            run.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
          return 'stopped early';
        },
        { id },
      );
      await waitFor(() => ctx !== undefined, 'the run to start');
      expect(await runlog.flush()).toBe(true);
      await runlog.runs.cancel(id);
      expect(await done).toBe('stopped early');
      expect(ctx!.signal.reason).toBeInstanceOf(RunCancelledError);
      expect(await runlog.flush()).toBe(true);
      expect((await runlog.runs.get(id)).status).toBe('cancelled');
    });

    it('records a run whose host clock steps back an hour meanwhile, its step and end not before their start', async () => {
      const id = newId();
      const wall = Date.now.bind(Date);
      let stepped: { mockRestore: () => void } | undefined;
      try {
        await runlog.run(
          'clock-step-agent',
          async (run) => {
            await run.step('custom', 'lookup', async () => {
              // NTP steps the clock back while the step runs (a VM resumed, a bad RTC fixed)
              stepped = vi.spyOn(Date, 'now').mockImplementation(() => wall() - 3_600_000);
              await new Promise((r) => setTimeout(r, 20));
              return 'found';
            });
            return { ok: true };
          },
          { id },
        );
      } finally {
        stepped?.mockRestore();
      }
      // before: the start and end went as one event ending before it started, refused (207):
      // the run was left running under `unknown`, and the step lost
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run).toMatchObject({
        agent_id: 'clock-step-agent',
        status: 'succeeded',
        output: { ok: true },
      });
      expect(run.steps.map((s) => s.name)).toEqual(['lookup']);
      const [step] = run.steps;
      expect(step!.duration_ms).toBeGreaterThanOrEqual(15);
      expect(step!.duration_ms).toBeLessThan(60_000);
      expect(run.duration_ms).toBeGreaterThanOrEqual(step!.duration_ms!);
      expect(errors).toEqual([]);
    });

    it('drops and reports a step recorded on a run object kept past its end; a score still counts', async () => {
      const id = newId();
      let kept: RunContext | undefined;
      await runlog.run(
        'kept-run-agent',
        async (run) => {
          kept = run;
          await run.tool('inside', {}, () => 'ok');
          return 'done';
        },
        { id },
      );
      // the code ran on: its result is the agent's, the step is not the run's
      expect(await kept!.step('custom', 'after-end', async () => 'late')).toBe('late');
      expect(await kept!.tool('late-tool', {}, () => 'late too')).toBe('late too');
      kept!.score('judged', 0.5);
      expect(await runlog.flush()).toBe(true);
      const run = await runlog.runs.get(id, { include: 'steps' });
      expect(run.steps.map((s) => s.name)).toEqual(['inside']);
      expect(run).toMatchObject({ status: 'succeeded', step_count: 1, tool_calls: 1 });
      expect(run.scores).toMatchObject({ judged: { type: 'numeric' } });
      // each step told once, naming it
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          /^step \S+ \(after-end\) of run \S+: recorded after the run ended, not recorded$/,
        ),
        expect.stringMatching(
          /^step \S+ \(late-tool\) of run \S+: recorded after the run ended, not recorded$/,
        ),
      ]);
    });

    it('run.signal takes a listener from each of many parallel calls without a leak warning', async () => {
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on('warning', onWarning);
      try {
        const id = newId();
        let listening = 0;
        const done = runlog.run(
          'fan-out-agent',
          async (run) => {
            // what 20 parallel fetch(url, { signal: run.signal }) or runs.wait calls do
            await Promise.all(
              Array.from(
                { length: 20 },
                () =>
                  new Promise<void>((resolve) => {
                    run.signal.addEventListener('abort', () => resolve(), { once: true });
                    listening++;
                  }),
              ),
            );
            return 'all stopped';
          },
          { id },
        );
        await waitFor(() => listening === 20, 'the calls to listen');
        expect(await runlog.flush()).toBe(true);
        await runlog.runs.cancel(id);
        expect(await done).toBe('all stopped');
        // a warning is emitted on the next tick
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('Stop pressed on a run reaches the sub-agent running inside it', async () => {
      const id = newId();
      let child: RunContext | undefined;
      const done = runlog.run(
        'stoppable-parent',
        async () => {
          // a sub-agent's code listens to its own signal, not its parent's
          return runlog.run('stoppable-child', async (run) => {
            child = run;
            await new Promise<void>((resolve) =>
              run.signal.addEventListener('abort', () => resolve(), { once: true }),
            );
            return 'child stopped';
          });
        },
        { id },
      );
      await waitFor(() => child !== undefined, 'the sub-agent to start');
      expect(await runlog.flush()).toBe(true);
      await runlog.runs.cancel(id);
      expect(await done).toBe('child stopped');
      expect(child!.signal.reason).toBeInstanceOf(RunCancelledError);
      expect(await runlog.flush()).toBe(true);
      expect((await runlog.runs.get(id)).status).toBe('cancelled');
      expect(await runlog.runs.get(child!.id)).toMatchObject({
        parent_run_id: id,
        status: 'cancelled',
      });
    });

    it('a run that was ended on the server aborts run.signal', async () => {
      const id = newId();
      let ctx: RunContext | undefined;
      const done = runlog.run(
        'ended-agent',
        async (run) => {
          ctx = run;
          await new Promise<void>((resolve) =>
            run.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        },
        { id },
      );
      await waitFor(() => ctx !== undefined, 'the run to start');
      expect(await runlog.flush()).toBe(true);
      const res = await fetch(`${server.url}/api/v1/runs/${id}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'failed', error: 'ended elsewhere' }),
      });
      expect(res.status).toBe(200);
      await done;
      expect(String(ctx!.signal.reason)).toMatch(
        /already ended failed on the server: ended elsewhere/,
      );
    });

    it('a run() given the id of a run that ended before it is not stopped for that', async () => {
      // a job queue runs a failed job again under the same job id
      const id = newId();
      await expect(
        runlog.run(
          'job-agent',
          () => {
            throw new Error('transient');
          },
          { id },
        ),
      ).rejects.toThrow('transient');
      expect(await runlog.flush()).toBe(true);
      let signal: AbortSignal | undefined;
      const out = await runlog.run(
        'job-agent',
        async (run) => {
          signal = run.signal;
          // long enough for several beats (every 50 ms here)
          await new Promise((r) => setTimeout(r, 600));
          return 'second attempt';
        },
        { id },
      );
      expect(out).toBe('second attempt');
      expect(signal!.aborted).toBe(false);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          new RegExp(`^run ${id} had already ended failed before this run\\(\\)`),
        ),
      ]);
      expect(await runlog.flush()).toBe(true);
      expect((await runlog.runs.get(id)).status).toBe('failed');
    });

    it("a run past its agent's max_steps is ended by the server, and run.signal says why", async () => {
      const agent = `budgeted-${newId()}`;
      const put = await fetch(`${server.url}/api/v1/agents/${agent}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ max_steps: 3 }),
      });
      expect(put.status).toBe(200);
      let steps = 0;
      const done = runlog.run(agent, async (run) => {
        // a runaway loop: a step every 20 ms until told to stop
        while (!run.signal.aborted) {
          await run.tool(`t${steps}`, {}, () => new Promise((r) => setTimeout(r, 20)));
          steps++;
          await runlog.flush();
        }
        return String(run.signal.reason);
      });
      const reason = await done;
      expect(reason).toMatch(
        /already ended failed on the server: stopped: \d+ steps passed the agent's max_steps \(3 steps\)/,
      );
      expect(steps).toBeGreaterThan(3);
    }, 20_000);
  });

  it("reads back every step of a long run, past the server's page of 1,000", async () => {
    let runId = '';
    await runlog.run('long-agent', async (run) => {
      runId = run.id;
      for (let i = 0; i < 1_234; i++) await run.step('tool', `t${i}`, () => i);
    });
    expect(await runlog.flush()).toBe(true);
    const steps = await runlog.runs.steps(runId);
    expect(steps.map((s) => s.name)).toEqual(Array.from({ length: 1_234 }, (_, i) => `t${i}`));
    const run = await runlog.runs.get(runId, { include: 'steps' });
    expect(run.steps.map((s) => s.id)).toEqual(steps.map((s) => s.id));
    expect(run).not.toHaveProperty('steps_next_cursor');
  });
});
