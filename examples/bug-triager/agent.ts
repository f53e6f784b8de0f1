/**
 * A runnable Runlog example: a bug-triager agent with a fake LLM and a real tool (it reads
 * files from this repository). It shows recording, a worker, Stop, Retry, automatic
 * retries, and a sub-agent on a worker (a duplicate finder the triager asks and waits for).
 *
 *   npm start                                     # in another terminal: the server
 *   export RUNLOG_API_KEY=...                     # the key the server printed
 *   npx tsx examples/bug-triager/agent.ts record  # record one run directly
 *   npx tsx examples/bug-triager/agent.ts worker  # execute queued runs (Ctrl-C drains)
 *   npx tsx examples/bug-triager/agent.ts demo    # queue (one for later, started now), a sub-agent, Stop, Retry, automatic retry
 */
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Runlog, readableError, type RunContext } from '../../packages/sdk/src/index.js';

const AGENT = 'bug-triager';
/** A sub-agent the triager hands a report to, on a worker, when asked to look for duplicates. */
const FINDER = 'duplicate-finder';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
if (!process.env.RUNLOG_API_KEY) {
  console.error(
    'Set RUNLOG_API_KEY to the key the server printed (npm start), then run this again.',
  );
  process.exit(1);
}
const runlog = new Runlog({ onError: (e) => console.error(`[runlog] ${e.message}`) });

interface Report {
  title: string;
  /** A run that should fail the first time, to show Retry. */
  flaky?: boolean;
  /** How long the agent "thinks", to show Stop. */
  slowMs?: number;
  /** Ask the duplicate finder (a sub-run on a worker) for earlier mentions of the title. */
  checkDuplicates?: boolean;
}

/** A fake LLM: answers from the prompt, with token counts like a real provider. */
async function fakeLlm(prompt: string, signal: AbortSignal, delayMs = 200) {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, delayMs);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });
  const verdict = /crash|error|fail/i.test(prompt) ? 'bug' : 'question';
  return {
    text: `verdict: ${verdict}`,
    usage: { prompt_tokens: Math.ceil(prompt.length / 4), completion_tokens: 12 },
  };
}

/** The agent: the same function whether recorded directly or executed by a worker. */
async function triage(
  run: RunContext,
): Promise<{ verdict: string; files: string[]; duplicates?: string[] }> {
  // a run queued by hand or by a schedule may come without a report
  const report = (run.input ?? { title: 'untitled report' }) as Report;
  // a real tool: list and read files of this repository
  const files = await run.tool('list_files', { dir: 'packages' }, async (a) =>
    (await readdir(REPO + a.dir)).sort(),
  );
  const readme = await run.tool('read_file', { path: 'README.md' }, async (a) =>
    (await readFile(REPO + a.path, 'utf8')).slice(0, 500),
  );
  const prompt = `Triage this report: ${report.title}\nContext: ${readme}`;
  const answer = await run.llm(
    { model: 'gpt-4o-mini', provider: 'openai', messages: [{ role: 'user', content: prompt }] },
    async (step) => {
      const res = await fakeLlm(prompt, run.signal, report.slowMs ?? 200);
      step.set({
        input_tokens: res.usage.prompt_tokens,
        output_tokens: res.usage.completion_tokens,
      });
      return res.text;
    },
  );
  const info = run.info;
  if (report.flaky && (info?.attempt ?? 1) === 1) throw new Error('GitHub API answered 502');
  const verdict = answer.replace('verdict: ', '');
  if (!report.checkDuplicates) return { verdict, files };
  // queued inside this run: its sub-run, stopped with it; waiting ends on this run's Stop
  const asked = await runlog.runs.enqueue(FINDER, { input: { title: report.title } });
  const found = await runlog.runs.wait(asked.id);
  return { verdict, files, duplicates: found.output as string[] };
}

/** The sub-agent: the CHANGELOG lines that share a word of five letters or more with a title. */
async function findDuplicates(run: RunContext): Promise<string[]> {
  const { title } = (run.input ?? { title: '' }) as { title: string };
  const words = title.toLowerCase().match(/[a-z]{5,}/g) ?? [];
  const changelog = await run.tool('read_file', { path: 'CHANGELOG.md' }, async (a) =>
    readFile(REPO + a.path, 'utf8'),
  );
  return changelog
    .split('\n')
    .filter((line) => line.startsWith('- ') && words.some((w) => line.toLowerCase().includes(w)))
    .map((line) => line.slice(2, 82))
    .slice(0, 3);
}

const mode = process.argv[2] ?? 'record';
if (mode === 'record') {
  const out = await runlog.run(AGENT, triage, {
    input: { title: 'App crashes on login' },
    trigger: 'manual',
    source: 'example',
  });
  console.log('recorded:', out);
  await runlog.shutdown();
} else if (mode === 'worker') {
  // three slots: a triager waiting for its duplicate finder holds one
  const worker = runlog.worker({
    agents: { [AGENT]: triage, [FINDER]: findDuplicates },
    concurrency: 3,
    leaseMs: 10_000,
  });
  console.log(`worker ${worker.id} waiting for ${AGENT} runs (Ctrl-C stops and drains)`);
  // the SDK drains on Ctrl-C (up to drainTimeoutMs, 30 s): said, so the wait is not silent
  process.once('SIGINT', () =>
    console.log(
      worker.active > 0
        ? `stopping: letting ${worker.active} running run(s) finish (up to ${worker.drainTimeoutMs / 1000} s), then giving the rest back to the queue; Ctrl-C again to stop now`
        : 'stopping: no run in hand',
    ),
  );
} else if (mode === 'demo') {
  const wait = async (id: string) => {
    const since = Date.now();
    let told = false;
    for (;;) {
      const r = await runlog.runs.get(id);
      if (!['queued', 'running'].includes(r.status)) return r;
      // a queued run needs a worker: without one it would wait here in silence
      if (r.status === 'queued' && !told && Date.now() - since > 3_000) {
        // or its agent holds it: paused, or over its budget over 24 hours
        const agent = await runlog.agents.get(r.agent_id);
        const why = agent.paused_at
          ? `its agent is paused (npx runlog agents resume ${agent.id})`
          : agent.over_budget_since
            ? `its agent is over its budget over 24 hours (npx runlog agents show ${agent.id})`
            : 'is a worker running? (agent.ts worker)';
        console.log(`run ${id} is still queued: ${why}`);
        told = true;
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  };
  const ok = await runlog.runs.enqueue(AGENT, { input: { title: 'Login fails with error 500' } });
  console.log('queued', ok.id, '->', (await wait(ok.id)).status);

  // queued to start in an hour: no worker takes it before then, unless it is started now
  const later = await runlog.runs.enqueue(AGENT, {
    input: { title: 'Nightly digest' },
    delay_ms: 3_600_000,
  });
  await runlog.runs.startNow(later.id);
  console.log('queued for later', later.id, '-> started now ->', (await wait(later.id)).status);

  // a sub-agent: the triager queues a duplicate-finder run as its sub-run and waits for it
  const checked = await runlog.runs.enqueue(AGENT, {
    input: { title: 'Retry queues a second run', checkDuplicates: true },
  });
  const triaged = await wait(checked.id);
  const [sub] = (await runlog.runs.list({ parent_run_id: checked.id })).runs;
  console.log(
    'with a sub-agent',
    checked.id,
    '->',
    triaged.status,
    `(sub-run ${sub?.id} of ${sub?.agent_id} -> ${sub?.status})`,
  );

  const slow = await runlog.runs.enqueue(AGENT, { input: { title: 'Slow one', slowMs: 60_000 } });
  while ((await runlog.runs.get(slow.id)).status === 'queued')
    await new Promise((r) => setTimeout(r, 200));
  await runlog.runs.cancel(slow.id);
  console.log('stopped', slow.id, '->', (await wait(slow.id)).status);

  const flaky = await runlog.runs.enqueue(AGENT, { input: { title: 'Flaky crash', flaky: true } });
  const failed = await wait(flaky.id);
  console.log(
    'flaky',
    flaky.id,
    '->',
    failed.status,
    failed.error && readableError(failed.error).message,
  );
  const retry = await runlog.runs.retry(flaky.id);
  const retried = await wait(retry.id);
  console.log(
    'retry',
    retry.id,
    `(retry_of ${retried.retry_of}, attempt ${retried.attempt}) ->`,
    retried.status,
  );

  // automatic retries: the agent's retry policy queues a failed run again on its own
  const before = await runlog.agents.get(AGENT);
  await runlog.agents.update(AGENT, { retry: { max_attempts: 2, delay_ms: 1_000 } });
  try {
    const auto = await runlog.runs.enqueue(AGENT, { input: { title: 'Flaky again', flaky: true } });
    console.log('flaky', auto.id, '->', (await wait(auto.id)).status);
    let next: { id: string } | undefined;
    while (!next) {
      next = (await runlog.runs.list({ retry_of: auto.id })).runs[0];
      if (!next) await new Promise((r) => setTimeout(r, 200));
    }
    const again = await wait(next.id);
    console.log(
      'retried on its own',
      again.id,
      `(${again.triggered_by}, attempt ${again.attempt}) ->`,
      again.status,
    );
  } finally {
    await runlog.agents.update(AGENT, { retry: before.retry });
  }
  await runlog.shutdown();
} else {
  console.error('usage: agent.ts record | worker | demo');
  process.exitCode = 2;
}
