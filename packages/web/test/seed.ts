// Test data for the dashboard's browser tests, recorded through the real HTTP API.

export interface Api {
  url: string;
  key: string;
}

export async function call<T = unknown>(
  api: Api,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${api.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${api.key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export async function ingest(api: Api, events: unknown[]): Promise<void> {
  const res = await call(api, 'POST', '/ingest', { events });
  if (res.status !== 200)
    throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
}

type Status = 'succeeded' | 'failed' | 'running' | 'cancelled' | 'timed_out';

export interface SeedRun {
  id: string;
  agent: string;
  status: Status;
  /** Start, in ms before now. */
  ago: number;
  durationMs: number;
  trigger?: 'manual' | 'schedule' | 'api' | 'retry';
  source?: string;
  error?: string;
  input?: unknown;
  output?: unknown;
  steps?: number;
  model?: string;
}

/** Records finished (or running) runs with a few nested LLM and tool steps each. */
export async function seedRuns(api: Api, runs: SeedRun[]): Promise<void> {
  const now = Date.now();
  const events: unknown[] = [];
  for (const r of runs) {
    const start = now - r.ago;
    const end = start + r.durationMs;
    events.push({
      type: 'run.start',
      run: {
        id: r.id,
        agent_id: r.agent,
        trigger: r.trigger ?? 'api',
        source: r.source ?? 'sdk',
        started_at: start,
        input: r.input ?? { ticket: r.id },
        model: r.model ?? 'gpt-4o-mini',
        thread_id: `thread-${r.agent}`,
        user_id: 'dana@example.com',
      },
    });
    const n = r.steps ?? 3;
    const slice = r.durationMs / (n + 1);
    const parent = `${r.id}-s0`;
    for (let i = 0; i < n; i++) {
      const s0 = start + slice * i;
      const isLlm = i % 2 === 0;
      const running = r.status === 'running' && i === n - 1;
      const failed = r.status === 'failed' && i === n - 1;
      events.push({
        type: running ? 'step.start' : 'step.end',
        step: {
          id: `${r.id}-s${i}`,
          run_id: r.id,
          seq: i,
          parent_step_id: i === 0 ? null : parent,
          type: i === 0 ? 'agent' : isLlm ? 'llm' : 'tool',
          name: i === 0 ? 'plan' : isLlm ? 'draft reply' : 'search_issues',
          started_at: Math.round(s0),
          ...(running
            ? {}
            : {
                ended_at: Math.round(i === 0 ? end - 5 : s0 + slice * 0.9),
                status: failed ? 'failed' : 'succeeded',
              }),
          ...(isLlm && i > 0
            ? {
                model: r.model ?? 'gpt-4o-mini',
                input_tokens: 1200 + i * 40,
                output_tokens: 300 + i * 7,
                // streamed: the first token 420 ms in
                ...(running ? {} : { first_token_at: Math.round(s0) + 420 }),
              }
            : {}),
          input: { query: `step ${i} of ${r.id}` },
          output: running ? undefined : { ok: !failed, items: [i, i + 1] },
          ...(failed ? { error: { message: r.error ?? 'tool failed', type: 'ToolError' } } : {}),
        },
      });
    }
    if (r.status !== 'running') {
      events.push({
        type: 'run.end',
        run: {
          id: r.id,
          status: r.status,
          ended_at: end,
          ...(r.error
            ? {
                error: {
                  message: r.error,
                  type: 'AgentError',
                  stack: `AgentError: ${r.error}\n    at triage (agent.ts:42:11)`,
                },
              }
            : {}),
          ...(r.status === 'succeeded' ? { output: r.output ?? { verdict: 'ok' } } : {}),
        },
      });
    }
  }
  for (let i = 0; i < events.length; i += 500) await ingest(api, events.slice(i, i + 500));
}
