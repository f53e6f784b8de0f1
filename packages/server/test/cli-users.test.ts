import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IngestEvent, RunList, UserList, UserSummary } from '@runlog/core';
import { runCli } from './cli-fixtures.js';
import { describeEachDb, startTestServer, TEST_ADMIN_KEY } from './harness.js';

let n = 0;
const uniq = (base: string) => `${base}-${Date.now().toString(36)}-${n++}`;
const MIN = 60_000;

describeEachDb('runlog users', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;

  beforeAll(async () => {
    server = await startTestServer(dialect, { background: false });
  });
  afterAll(() => server.close());

  /**
   * A project of its own (its runs are the only ones its key sees), with `events` recorded:
   * `cli` runs the CLI with its key, `get` reads the API with it.
   */
  const project = async (events: IngestEvent[]) => {
    const id = uniq('users');
    const created = await fetch(`${server.url}/api/v1/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: id }),
    });
    expect(created.status).toBe(201);
    const key = ((await created.json()) as { admin_key: { key: string } }).admin_key.key;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    if (events.length > 0) {
      const res = await fetch(`${server.url}/api/v1/ingest`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ events }),
      });
      expect(await res.json()).toEqual({ accepted: events.length, rejected: 0 });
    }
    return {
      cli: (args: string[], env: NodeJS.ProcessEnv = {}) =>
        runCli(args, { env: { RUNLOG_URL: server.url, RUNLOG_API_KEY: key, ...env } }),
      get: async <T>(path: string) => {
        const res = await fetch(`${server.url}${path}`, { headers });
        expect(res.status).toBe(200);
        return (await res.json()) as T;
      },
    };
  };

  /**
   * alice: three runs in two threads by two agents, two failed (the latest too), 2.5k tokens
   * and $0.0175; bob: one failed run and one running, the latest of all; carol (a name a shell
   * must quote): one run three days ago; and a run for no user, in no one's sums.
   */
  const history = (now: number): IngestEvent[] => {
    const at = (minutesAgo: number) => now - minutesAgo * MIN;
    const ended = (
      id: string,
      user: string | null,
      agent: string,
      minutesAgo: number,
      extra: Record<string, unknown>,
    ): IngestEvent => ({
      type: 'run.end',
      run: {
        id,
        agent_id: agent,
        ...(user !== null ? { user_id: user } : {}),
        status: 'succeeded',
        started_at: at(minutesAgo),
        ended_at: at(minutesAgo) + 1000,
        ...extra,
      },
    });
    const usage = (runId: string, input: number, output: number, cost: number): IngestEvent => ({
      type: 'step.end',
      step: {
        id: `${runId}-llm`,
        run_id: runId,
        type: 'llm',
        model: 'house',
        input_tokens: input,
        output_tokens: output,
        cost_usd: cost,
      },
    });
    return [
      ended('a1', 'alice', 'support-bot', 300, {
        thread_id: 'conv-1',
        input: 'My order is late',
        output: 'Sorry to hear that.',
      }),
      ended('a2', 'alice', 'support-bot', 290, {
        thread_id: 'conv-1',
        status: 'failed',
        input: 'Where is it now?',
        error: { message: 'tool timeout', type: 'Timeout' },
      }),
      ended('a3', 'alice', 'refund-agent', 30, {
        thread_id: 'conv-2',
        status: 'failed',
        input: { order: 1234 },
        error: { message: 'refund refused', type: 'PolicyError' },
      }),
      usage('a1', 1200, 300, 0.0125),
      usage('a3', 800, 200, 0.005),
      ended('b1', 'bob', 'support-bot', 120, {
        status: 'failed',
        input: 'Cancel my plan',
        error: { message: 'rate limited' },
      }),
      usage('b1', 50, 0, 0.0004),
      {
        type: 'run.start',
        run: {
          id: 'b2',
          agent_id: 'support-bot',
          user_id: 'bob',
          thread_id: 'conv-9',
          input: 'Hello again',
          started_at: at(2),
        },
      },
      ended('c1', "carol o'neil", 'summarizer', 3 * 24 * 60, { input: 'Summarize this' }),
      ended('n1', null, 'summarizer', 10, {}),
    ];
  };

  it('lists users the latest active first, with their runs, failures, threads, agents, tokens and cost', async () => {
    const now = Date.now();
    const { cli, get } = await project(history(now));
    const res = await cli(['users', 'list']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')).toEqual([
      expect.stringMatching(
        /^USER\s+RUNS\s+FAILED\s+THREADS\s+AGENTS\s+TOKENS\s+COST\s+LAST ACTIVE\s+LATEST RUN$/,
      ),
      expect.stringMatching(
        /^bob\s+2\s+1\s+1\s+support-bot\s+50\s+\$0\.0004\s+[23]m ago\s+running$/,
      ),
      expect.stringMatching(
        /^alice\s+3\s+2\s+2\s+refund-agent,support-bot\s+2\.5k\s+\$0\.0175\s+3[01]m ago\s+failed$/,
      ),
      expect.stringMatching(
        /^carol o'neil\s+1\s+0\s+0\s+summarizer\s+0\s+\$0\s+3d ago\s+succeeded$/,
      ),
      '3 users',
      '',
    ]);

    // --json: the API's answer as it is
    const json = await cli(['users', 'list', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as UserList;
    expect(listed).toEqual(await get<UserList>('/api/v1/users?limit=20'));
    expect(listed).toMatchObject({ has_more: false, next_cursor: null });
    expect(listed.users[1]).toEqual({
      user_id: 'alice',
      runs: 3,
      failed: 2,
      active: 0,
      threads: 2,
      agent_ids: ['refund-agent', 'support-bot'],
      first_at: new Date(now - 300 * MIN).toISOString(),
      last_at: new Date(now - 30 * MIN).toISOString(),
      total_tokens: 2500,
      cost_usd: 0.0175,
      last_run: { id: 'a3', status: 'failed', agent_id: 'refund-agent', error: 'refund refused' },
    });

    // a narrow terminal: the least needed columns go (the cost stays), one line a user
    const narrow = await cli(['users', 'list'], { COLUMNS: '60' });
    const lines = narrow.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(60);
    expect(lines[2]).toMatch(/^alice\s+3\s+2\s+\$0\.0175\s+3[01]m ago\s+failed$/);
  });

  it('narrows the sums with --agent, --since and --until', async () => {
    const { cli } = await project(history(Date.now()));
    const agent = await cli(['users', 'list', '--agent', 'refund-agent']);
    expect(agent.code, agent.stderr).toBe(0);
    expect(agent.stdout.split('\n').slice(1)).toEqual([
      expect.stringMatching(
        /^alice\s+1\s+1\s+1\s+refund-agent\s+1k\s+\$0\.005\s+3[01]m ago\s+failed$/,
      ),
      '1 user',
      '',
    ]);

    const sums = async (...args: string[]) => {
      const res = await cli(['users', 'list', ...args, '--json']);
      expect(res.code, res.stderr).toBe(0);
      return (JSON.parse(res.stdout) as UserList).users.map((u) => [
        u.user_id,
        u.runs,
        u.failed,
        u.total_tokens,
      ]);
    };
    expect(await sums('--agent', 'support-bot,summarizer')).toEqual([
      ['bob', 2, 1, 50],
      ['alice', 2, 1, 1500],
      ["carol o'neil", 1, 0, 0],
    ]);
    // the run for no user is the summarizer's latest: no user is made of it
    expect(await sums('--agent', 'summarizer')).toEqual([["carol o'neil", 1, 0, 0]]);
    expect(await sums('--since', '1h')).toEqual([
      ['bob', 1, 0, 0],
      ['alice', 1, 1, 1000],
    ]);
    expect(await sums('--until', '1h')).toEqual([
      ['bob', 1, 1, 50],
      ['alice', 2, 1, 1500],
      ["carol o'neil", 1, 0, 0],
    ]);
    expect(await sums('--since', '4h', '--until', '1h')).toEqual([['bob', 1, 1, 50]]);
    // a search of the ids, any case: each user still summed over all its runs
    expect(await sums('--search', "O'NEIL")).toEqual([["carol o'neil", 1, 0, 0]]);
    expect(await sums('--search', 'LI', '--agent', 'refund-agent')).toEqual([
      ['alice', 1, 1, 1000],
    ]);
    expect(await cli(['users', 'list', '--agent', 'nobody'])).toMatchObject({
      code: 0,
      stdout: 'no users match\n',
    });
    expect(await cli(['users', 'list', '--search', 'nobody'])).toMatchObject({
      code: 0,
      stdout: 'no users match\n',
    });
  });

  it('shows --limit users a page, the footer naming the next page', async () => {
    const { cli } = await project(history(Date.now()));
    const names = (out: string) =>
      out
        .split('\n')
        .slice(1, -2)
        .map((l) => l.split(/\s{2,}/)[0]);
    const first = await cli(['users', 'list', '--limit', '2']);
    expect(first.code, first.stderr).toBe(0);
    expect(names(first.stdout)).toEqual(['bob', 'alice']);
    const cursor = /^2 users; the next page: --cursor (\S+)\n$/m.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const next = await cli(['users', 'list', '--limit', '2', '--cursor', cursor!]);
    expect(names(next.stdout)).toEqual(["carol o'neil"]);
    expect(next.stdout).toMatch(/\n1 user\n$/);
    const json = JSON.parse(
      (await cli(['users', 'list', '--limit', '1', '--json'])).stdout,
    ) as UserList;
    expect(json.users.map((u) => u.user_id)).toEqual(['bob']);
    expect(json).toMatchObject({ has_more: true, next_cursor: expect.any(String) });
  });

  it('says how runs get a user when no run names one', async () => {
    const { cli } = await project([
      {
        type: 'run.end',
        run: { id: 'r1', agent_id: 'anon', status: 'succeeded', started_at: Date.now() - MIN },
      },
    ]);
    expect(await cli(['users', 'list'])).toMatchObject({
      code: 0,
      stdout:
        "no users yet: runs name the user they are made for with the SDK's userId option\n" +
        "(runlog.run(agent, fn, { userId })), the API's user_id or runlog agents run --user <id>\n",
    });
    expect(JSON.parse((await cli(['users', 'list', '--json'])).stdout)).toEqual({
      users: [],
      next_cursor: null,
      has_more: false,
    });
  });

  it("shows a user: its totals and latest run's error, then its latest runs oldest first", async () => {
    const now = Date.now();
    const { cli, get } = await project(history(now));
    const res = await cli(['users', 'show', 'alice']);
    expect(res.code, res.stderr).toBe(0);
    const [summary, runs] = res.stdout.split('\n\n');
    expect(summary!.split('\n')).toEqual([
      'User alice',
      '  runs        3 (2 failed)',
      '  threads     2',
      '  agents      refund-agent, support-bot',
      '  tokens      2.5k',
      '  cost        $0.0175',
      `  first seen  ${new Date(now - 300 * MIN).toISOString()} (5h ago)`,
      expect.stringMatching(
        new RegExp(`^ {2}last active ${new Date(now - 30 * MIN).toISOString()} \\(3[01]m ago\\)$`),
      ),
      '  latest run  a3 failed (refund-agent)',
      '  its error   refund refused',
    ]);
    expect(runs!.split('\n')).toEqual([
      'Latest runs',
      expect.stringMatching(/^ {2}WHEN\s+RUN\s+STATUS\s+AGENT\s+THREAD\s+INPUT → OUTPUT$/),
      expect.stringMatching(
        /^ {2}5h ago\s+a1\s+succeeded\s+support-bot\s+conv-1\s+My order is late → Sorry to hear that\.$/,
      ),
      expect.stringMatching(
        /^ {2}4h ago\s+a2\s+failed\s+support-bot\s+conv-1\s+Where is it now\? → tool timeout$/,
      ),
      expect.stringMatching(
        /^ {2}3[01]m ago\s+a3\s+failed\s+refund-agent\s+conv-2\s+\{"order":1234\} → refund refused$/,
      ),
      'its runs: runlog runs list --user alice; its threads: runlog threads list --user alice',
      '',
    ]);
    // the command it names lists them all
    const listed = await cli(['runs', 'list', '--user', 'alice', '--json']);
    expect((JSON.parse(listed.stdout) as RunList).runs.map((r) => r.id)).toEqual([
      'a3',
      'a2',
      'a1',
    ]);

    // --limit: the latest, the earlier ones counted
    const latest = await cli(['users', 'show', 'alice', '--limit', '1']);
    expect(latest.stdout).toContain(
      '\nLatest runs (2 earlier runs not shown; --limit 3 shows all)\n',
    );
    expect(latest.stdout).toMatch(/\n {2}3[01]m ago\s+a3\s/);
    expect(latest.stdout).not.toMatch(/\ba[12]\b/);

    // --json: the API's summary as it is (`get` by the name other CLIs use)
    const json = await cli(['users', 'get', 'alice', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await get<UserSummary>('/api/v1/users/alice'));
    expect(JSON.parse(json.stdout)).toMatchObject({ user_id: 'alice', runs: 3, failed: 2 });
  });

  it('shows a running user, and quotes a name in the commands it names', async () => {
    const { cli } = await project(history(Date.now()));
    const bob = await cli(['users', 'show', 'bob']);
    expect(bob.code, bob.stderr).toBe(0);
    expect(bob.stdout).toMatch(
      /^User bob\n {2}runs {8}2 \(1 failed, 1 active\)\n {2}threads {5}1\n/,
    );
    expect(bob.stdout).toContain('\n  latest run  b2 running (support-bot)\n\nLatest runs\n');
    expect(bob.stdout).not.toContain('its error');
    // a run of no thread says so
    expect(bob.stdout).toMatch(
      /\n {2}2h ago\s+b1\s+failed\s+support-bot\s+-\s+Cancel my plan → rate limited\n/,
    );
    expect(bob.stdout).toMatch(
      /\n {2}[23]m ago\s+b2\s+running\s+support-bot\s+conv-9\s+Hello again\n/,
    );

    // no thread: no THREAD column, no threads command; the name quoted for a shell
    const carol = await cli(['users', 'show', "carol o'neil"]);
    expect(carol.code, carol.stderr).toBe(0);
    expect(carol.stdout).toMatch(/\n {2}WHEN\s+RUN\s+STATUS\s+AGENT\s+INPUT → OUTPUT\n/);
    expect(carol.stdout).toMatch(/\nits runs: runlog runs list --user 'carol o'\\''neil'\n$/);
  });

  it('says a user no run names is not found (exit 1), and refuses bad usage (exit 2)', async () => {
    const { cli } = await project(history(Date.now()));
    expect(await cli(['users', 'show', 'nobody'])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'runlog: user nobody not found\n',
    });
    const json = await cli(['users', 'show', 'nobody', '--json']);
    expect(json).toMatchObject({ code: 1, stdout: '' });
    expect(JSON.parse(json.stderr)).toEqual({
      error: { message: 'user nobody not found', exit_code: 1, status: 404, code: 'not_found' },
    });

    expect(await cli(['users', 'list', '--limit', '0'])).toMatchObject({
      code: 2,
      stdout: '',
      stderr: "runlog: option '--limit <n>' argument '0' is invalid. --limit must be 1 to 200\n",
    });
    expect(await cli(['users', 'list', '--limit', '201'])).toMatchObject({ code: 2 });
    expect(await cli(['users', 'list', '--search', 'x'.repeat(201)])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--search must be 1 to 200 characters'),
    });
    expect(await cli(['users', 'show', 'alice', '--limit', '0'])).toMatchObject({
      code: 2,
      stderr: "runlog: option '--limit <n>' argument '0' is invalid. --limit must be 1 to 500\n",
    });
    const agent = await cli(['users', 'list', '--agent', 'ok,not ok']);
    expect(agent.code).toBe(2);
    expect(agent.stderr).toContain('--agent must be 1-128 characters of A-Za-z0-9._:-');
    expect(
      await cli(['users', 'list', '--since', '2026-02-02', '--until', '2026-02-01']),
    ).toMatchObject({ code: 2, stderr: 'runlog: --since must not be after --until\n' });
    expect(await cli(['users', 'show'])).toMatchObject({
      code: 2,
      stderr: "runlog: missing required argument 'user-id'\n",
    });
    // a URL's path takes `..` for a step up: said, not asked of the wrong route
    expect(await cli(['users', 'show', '..'])).toMatchObject({
      code: 2,
      stderr:
        'runlog: user .. cannot be named in a URL; runlog runs list --user .. lists its runs\n',
    });
  });
});
