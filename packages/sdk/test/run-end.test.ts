// How a run ends, recorded the same way whether its code runs in `runlog.run` or in a worker.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId, readableError, type Run } from '@runlog/core';
import { startTestServer } from '../../server/test/harness.js';
import type { AgentHandler, Runlog, Worker } from '../src/index.js';
import { clientFactory, waitFor, type TestServer } from './helpers.js';

let server: TestServer;
const clients = clientFactory(() => ({
  url: server.url,
  apiKey: server.adminKey,
  flushIntervalMs: 20,
  heartbeatIntervalMs: 50,
  onError: () => {},
}));
let runlog: Runlog;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startTestServer('sqlite');
  runlog = clients.make();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await clients.shutdownAll();
  await server.close();
});

async function waitForStatus(id: string, status: Run['status']): Promise<Run> {
  let run: Run | undefined;
  await waitFor(async () => {
    run = await runlog.runs.get(id);
    return run.status === status;
  }, `run ${id} to be ${status}`);
  return run!;
}

/** Starts `code` as a run of a fresh agent; resolves with the run's id once the code runs. */
type Start = (code: AgentHandler) => Promise<string>;

const starts: Record<string, Start> = {
  'runlog.run': async (code) => {
    const id = newId();
    let started = false;
    // what the code throws is rethrown here; the tests read the recorded run instead
    void runlog
      .run(
        `end-recorded-${newId().slice(-8)}`,
        (run) => {
          started = true;
          return code(run);
        },
        { id },
      )
      .catch(() => {});
    await waitFor(() => started, 'the code to start');
    // the server knows the run from its events only: send them before asking for it
    expect(await runlog.flush()).toBe(true);
    return id;
  },
  'a worker': async (code) => {
    const agent = `end-claimed-${newId().slice(-8)}`;
    let started = false;
    const agents = {
      [agent]: (run: Parameters<AgentHandler>[0]) => {
        started = true;
        return code(run);
      },
    };
    workers.push(
      runlog.worker({ leaseMs: 3_000, heartbeatIntervalMs: 50, pollWaitMs: 300, agents }),
    );
    const queued = await runlog.runs.enqueue(agent);
    await waitFor(() => started, 'the handler to start');
    return queued.id;
  },
};

describe.each(Object.keys(starts))('a run executed by %s', (by) => {
  const start = starts[by]!;

  it('ends succeeded with what the code returned, and no error', async () => {
    const id = await start(() => ({ answer: 42 }));
    const run = await waitForStatus(id, 'succeeded');
    expect(run.output).toEqual({ answer: 42 });
    expect(run.error).toBeNull();
  });

  it('ends failed with what the code threw, stack included', async () => {
    const id = await start(() => {
      throw new TypeError('kaboom');
    });
    const run = await waitForStatus(id, 'failed');
    expect(run.error).toMatchObject({ message: 'kaboom', type: 'TypeError' });
    expect(readableError(run.error!).stack).toMatch(/^TypeError: kaboom\n\s+at /);
  });

  it('ends failed with a readable error when the code throws what JSON cannot hold', async () => {
    const circular: Record<string, unknown> = { reason: 'bad' };
    circular.self = circular;
    const objectId = await start(() => {
      throw circular;
    });
    const bigintId = await start(() => {
      throw 5n;
    });
    const object = await waitForStatus(objectId, 'failed');
    expect(object.error).toEqual({ message: '{"reason":"bad","self":"[Circular]"}' });
    const bigint = await waitForStatus(bigintId, 'failed');
    expect(bigint.error).toEqual({ message: '5' });
  });

  it('records what the code returned as it was when it returned, JSON-safe', async () => {
    const output: Record<string, unknown> = { n: 10n, list: [1] };
    output.self = output;
    const id = await start(() => {
      // mutated after the end was recorded: the recorded output must not follow
      setImmediate(() => (output.list as number[]).push(2));
      return output;
    });
    const run = await waitForStatus(id, 'succeeded');
    expect(run.output).toEqual({ n: '10', list: [1], self: '[Circular]' });
  });

  it('records an Error inside what the code returned with its type and message, not as {}', async () => {
    const failure = Object.assign(new TypeError('no such issue'), { code: 404 });
    const id = await start(() => ({ ok: false, error: failure }));
    const run = await waitForStatus(id, 'succeeded');
    expect(run.output).toMatchObject({
      ok: false,
      error: { type: 'TypeError', message: 'no such issue', code: 404 },
    });
    expect((run.output as { error: { stack: string } }).error.stack).toMatch(/^TypeError: no such/);
    // on the slow path (a value JSON refuses beside it) as well
    const slow = await start(() => ({ n: 1n, error: new RangeError('out') }));
    expect((await waitForStatus(slow, 'succeeded')).output).toMatchObject({
      n: '1',
      error: { type: 'RangeError', message: 'out' },
    });
  });

  it('records an Error inside what the code returned without the request its fields hold', async () => {
    // an HTTP client's error, as axios makes them: the request's config (headers included)
    // as an own field, and a toJSON that writes it out
    const config = { url: 'https://api.example/v1', headers: { Authorization: 'Bearer sk-1' } };
    const failure = Object.assign(new Error('Request failed with status code 401'), {
      name: 'HttpError',
      code: 'ERR_BAD_REQUEST',
      status: 401,
      config,
    });
    const withToJSON = Object.assign(new Error('timeout of 1000ms exceeded'), {
      config,
      toJSON: () => ({ message: 'timeout of 1000ms exceeded', config }),
    });
    const id = await start(() =>
      Promise.allSettled([Promise.reject(failure), Promise.reject(withToJSON)]),
    );
    const run = await waitForStatus(id, 'succeeded');
    expect(JSON.stringify(run.output)).not.toContain('sk-1');
    expect(run.output).toMatchObject([
      {
        status: 'rejected',
        reason: {
          type: 'HttpError',
          message: failure.message,
          code: 'ERR_BAD_REQUEST',
          status: 401,
        },
      },
      { status: 'rejected', reason: { type: 'Error', message: withToJSON.message } },
    ]);
    // on the slow path (a value JSON refuses beside it) as well
    const slow = await start(() => ({ n: 1n, errors: [failure, withToJSON] }));
    const output = (await waitForStatus(slow, 'succeeded')).output;
    expect(JSON.stringify(output)).not.toContain('sk-1');
    expect(output).toMatchObject({ n: '1', errors: [{ status: 401 }, { type: 'Error' }] });
  });

  it('ends cancelled with the Stop as its error when the code throws because Stop fired', async () => {
    const id = await start(
      (run) =>
        new Promise((_, reject) => {
          // what fetch or an LLM client does with the signal
          run.signal.addEventListener('abort', () => reject(run.signal.reason as Error));
        }),
    );
    await waitForStatus(id, 'running');
    await runlog.runs.cancel(id);
    const run = await waitForStatus(id, 'cancelled');
    expect(run.error).toEqual({
      message: 'stopped from Runlog; the agent stopped',
      type: 'Cancelled',
    });
  });
});
