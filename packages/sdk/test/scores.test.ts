import { describe, expect, it } from 'vitest';
import { newId } from '@runlog/core';
import { describeEachDb } from '../../server/test/harness.js';
import { type Runlog, RunlogApiError } from '../src/index.js';
import { FaultProxy, sdkOnServer } from './helpers.js';

// against a real server on each database: scores go through its ingest, routes and queries
describeEachDb('SDK scores', (dialect) => {
  const t = sdkOnServer(dialect);

  describe('run.score', () => {
    it('records scores of the run and of its steps, summed up on the run', async () => {
      let toolStep = '';
      let judged = '';
      const runId = await t.runlog.run('scored-agent', async (run) => {
        await run.tool('search', { q: 'login' }, (_args, step) => {
          toolStep = step.id;
          expect(step.score('found', true)).toEqual(expect.any(String));
          return ['hit'];
        });
        judged = run.score('relevance', 0.75, {
          source: 'llm-judge',
          comment: 'on topic',
          metadata: { judge: 'gpt-4o', n: 10n },
        });
        run.score('relevance', 0.25);
        run.score('tone', 'polite', { step_id: toolStep });
        run.score('tone', 'polite');
        run.score('tone', 'curt');
        return run.id;
      });
      expect(await t.runlog.flush()).toBe(true);
      const scores = await t.runlog.scores.list(runId);
      expect(scores.map((s) => [s.name, s.type, s.value, s.step_id])).toEqual([
        ['found', 'boolean', true, toolStep],
        ['relevance', 'numeric', 0.75, null],
        ['relevance', 'numeric', 0.25, null],
        ['tone', 'categorical', 'polite', toolStep],
        ['tone', 'categorical', 'polite', null],
        ['tone', 'categorical', 'curt', null],
      ]);
      expect(scores.find((s) => s.id === judged)).toMatchObject({
        run_id: runId,
        source: 'llm-judge',
        comment: 'on topic',
        // recorded as a JSON-safe copy, as metadata always is
        metadata: { judge: 'gpt-4o', n: '10' },
      });
      // the source says the SDK gave it unless the code said who
      expect(scores.filter((s) => s.source === 'sdk')).toHaveLength(5);
      const run = await t.runlog.runs.get(runId);
      expect(run.status).toBe('succeeded');
      expect(run.scores).toEqual({
        found: { type: 'boolean', n: 1, avg: 1, labels: {} },
        relevance: { type: 'numeric', n: 2, avg: 0.5, labels: {} },
        tone: { type: 'categorical', n: 3, avg: null, labels: { polite: 2, curt: 1 } },
      });
      expect(t.errors).toEqual([]);
    });

    it('replaces a score given again with its id, and records a resent batch once', async () => {
      const proxy = await FaultProxy.start(t.server.url);
      try {
        const viaProxy = t.clients.make({ url: proxy.url });
        const runId = newId();
        const scoreId = newId();
        // the first request reaches the server, its answer is lost: the SDK sends it again
        proxy.failNext({ loseAnswer: true });
        await viaProxy.run(
          'resend-agent',
          (run) => {
            run.score('verdict', 'duplicate', { id: scoreId });
            run.score('quality', 3);
          },
          { id: runId },
        );
        expect(await viaProxy.flush()).toBe(true);
        const sent = proxy.requests.filter((r) => r.path === '/api/v1/ingest');
        expect(sent.map((r) => r.outcome)).toEqual(['lost', 'forwarded']);
        expect(sent[1]!.ids).toEqual(sent[0]!.ids);
        const once = await t.runlog.scores.list(runId);
        expect(once.map((s) => [s.name, s.value])).toEqual([
          ['verdict', 'duplicate'],
          ['quality', 3],
        ]);
        // the verdict revised by a later run of the evaluator, under the same id
        await viaProxy.run(
          'resend-agent',
          (run) => void run.score('verdict', 'new', { id: scoreId }),
          {
            id: runId,
          },
        );
        expect(await viaProxy.flush()).toBe(true);
        const revised = await t.runlog.scores.list(runId);
        expect(revised.map((s) => [s.id, s.value])).toEqual([
          [scoreId, 'new'],
          [once[1]!.id, 3],
        ]);
        expect((await t.runlog.runs.get(runId)).scores.verdict).toMatchObject({
          n: 1,
          labels: { new: 1 },
        });
      } finally {
        await proxy.close();
      }
    });

    it('drops a score whose name, value or step the server would refuse, and says so', async () => {
      const proxy = await FaultProxy.start(t.server.url);
      try {
        const viaProxy = t.clients.make({ url: proxy.url });
        const kept: string[] = [];
        const result = await viaProxy.run('bad-score-agent', (run) => {
          const dropped = [
            run.score('', 1),
            run.score('n'.repeat(201), 1),
            run.score(42 as never, 1),
            run.score('nan', Number.NaN),
            run.score('infinite', Number.POSITIVE_INFINITY),
            run.score('huge', 1e16),
            run.score('empty-label', ''),
            run.score('long-label', 'x'.repeat(201)),
            run.score('object', { up: true } as never),
            run.score('bad-step', 1, { step_id: 'not an id' }),
            run.score('bad-id', 1, { id: 'not an id' }),
          ];
          // a comment it cannot take is left out: the score itself is recorded
          kept.push(run.score('kept', -2, { comment: 'a\u0000b' }));
          return { runId: run.id, dropped };
        });
        expect(await viaProxy.flush()).toBe(true);
        const sentIds = proxy.forwardedIngests().flatMap((r) => r.ids);
        for (const id of result.dropped) expect(sentIds).not.toContain(id);
        expect(sentIds).toContain(kept[0]);
        const scores = await t.runlog.scores.list(result.runId);
        expect(scores.map((s) => [s.id, s.name, s.value, s.comment])).toEqual([
          [kept[0], 'kept', -2, null],
        ]);
        const messages = t.errors.map((e) => e.message);
        expect(messages.filter((m) => / not recorded: /.test(m))).toHaveLength(11);
        expect(messages).toContainEqual(
          expect.stringMatching(/^score nan of run .* not recorded: score\.value/),
        );
        expect(messages).toContainEqual(
          expect.stringMatching(/^score kept of run .*: left out comment /),
        );
        // nothing reached the server for it to refuse
        expect(messages.filter((m) => /rejected/.test(m))).toEqual([]);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('t.runlog.scores', () => {
    it('creates, lists and deletes the scores of a run that ended', async () => {
      const runId = await t.runlog.run('feedback-agent', (run) => run.id);
      expect(await t.runlog.flush()).toBe(true);
      const up = await t.runlog.scores.create(runId, {
        name: 'feedback',
        value: true,
        source: 'user',
        comment: 'exactly right',
        metadata: { user_id: 'u-1' },
      });
      expect(up).toMatchObject({
        run_id: runId,
        step_id: null,
        name: 'feedback',
        type: 'boolean',
        value: true,
        comment: 'exactly right',
        source: 'user',
        metadata: { user_id: 'u-1' },
      });
      const review = await t.runlog.scores.create(runId, { name: 'review', value: 'approved' });
      expect(review).toMatchObject({ type: 'categorical', source: 'sdk', comment: null });
      // the user changes their mind: the same id keeps one score
      const down = await t.runlog.scores.create(runId, {
        id: up.id,
        name: 'feedback',
        value: false,
        source: 'user',
      });
      expect(down).toMatchObject({ id: up.id, value: false, created_at: up.created_at });
      expect((await t.runlog.scores.list(runId)).map((s) => [s.id, s.value])).toEqual([
        [up.id, false],
        [review.id, 'approved'],
      ]);
      expect((await t.runlog.runs.get(runId)).scores.feedback).toEqual({
        type: 'boolean',
        n: 1,
        avg: 0,
        labels: {},
      });
      await t.runlog.scores.delete(runId, review.id);
      expect((await t.runlog.scores.list(runId)).map((s) => s.id)).toEqual([up.id]);
      expect((await t.runlog.runs.get(runId)).scores).not.toHaveProperty('review');
    });

    it('scores a run this process just recorded, its events still on their way', async () => {
      // the README's feedback: a run, then its score at once, without a flush() between
      const reply = await t.runlog.run('fresh-feedback-agent', (run) => ({ runId: run.id }));
      const up = await t.runlog.scores.create(reply.runId, { name: 'feedback', value: true });
      expect(up).toMatchObject({ run_id: reply.runId, value: true });
      expect((await t.runlog.runs.get(reply.runId)).status).toBe('succeeded');
      // a run still running, its start waiting for the flush interval: scored all the same
      const live = await t.runlog.run('fresh-feedback-agent', async (run) => {
        await t.runlog.scores.create(run.id, { name: 'review', value: 'started' });
        return run.id;
      });
      expect(await t.runlog.flush()).toBe(true);
      expect((await t.runlog.scores.list(live)).map((s) => s.value)).toEqual(['started']);
      expect(t.errors).toEqual([]);
    });

    it('throws RunlogApiError for a score the server refuses or cannot find', async () => {
      const runId = await t.runlog.run('refused-score-agent', (run) => run.id);
      expect(await t.runlog.flush()).toBe(true);
      const bad = await t.runlog.scores
        .create(runId, { name: 'quality', value: 'x'.repeat(201) })
        .catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(RunlogApiError);
      expect(bad).toMatchObject({ status: 400, code: 'invalid_input' });
      expect(JSON.stringify((bad as RunlogApiError).details)).toContain('value');
      await expect(t.runlog.scores.delete(runId, newId())).rejects.toMatchObject({
        status: 404,
        code: 'not_found',
      });
      await expect(t.runlog.scores.list(newId())).rejects.toMatchObject({ status: 404 });
      await expect(
        t.runlog.scores.create(newId(), { name: 'feedback', value: true }),
      ).rejects.toMatchObject({ status: 404, code: 'not_found' });
    });

    it('runs.list finds the runs by a score: its name, a range of values, a label', async () => {
      const agent = `list-score-agent-${newId().slice(-6)}`;
      const ids = { up: newId(), down: newId(), mixed: newId(), none: newId() };
      for (const id of Object.values(ids)) await t.runlog.run(agent, () => 'ok', { id });
      expect(await t.runlog.flush()).toBe(true);
      await t.runlog.scores.create(ids.up, { name: 'feedback', value: true });
      await t.runlog.scores.create(ids.down, { name: 'feedback', value: false });
      await t.runlog.scores.create(ids.down, { name: 'reason', value: 'wrong-answer' });
      await t.runlog.scores.create(ids.mixed, { name: 'feedback', value: 0.5 });
      const found = async (params: Parameters<Runlog['runs']['list']>[0]) =>
        (await t.runlog.runs.list({ agent_id: agent, ...params })).runs.map((r) => r.id).sort();
      expect(await found({ score: 'feedback' })).toEqual([ids.up, ids.down, ids.mixed].sort());
      // the thumbs down
      expect(await found({ score: 'feedback', score_max: 0 })).toEqual([ids.down]);
      expect(await found({ score: 'feedback', score_min: 0.5 })).toEqual(
        [ids.up, ids.mixed].sort(),
      );
      expect(await found({ score: 'feedback', score_min: 0.25, score_max: 0.75 })).toEqual([
        ids.mixed,
      ]);
      expect(await found({ score: 'reason', score_label: 'wrong-answer' })).toEqual([ids.down]);
      expect(await found({ score: 'reason', score_label: 'other' })).toEqual([]);
      expect(await found({ score: 'no-such-score' })).toEqual([]);
    });
  });
});
