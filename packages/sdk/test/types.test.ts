import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SDK_ROOT = new URL('..', import.meta.url).pathname;

describe('the published types', () => {
  it('type-check in a project without @types/node (its default libraries only)', () => {
    // a consumer beside the package, so '@runlog/sdk' resolves through the workspace
    const dir = mkdtempSync(join(SDK_ROOT, 'test', '.consumer-'));
    try {
      expect(typeProblems(join(dir, 'agent.ts'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('take possibly undefined values for optional fields under exactOptionalPropertyTypes', () => {
    const dir = mkdtempSync(join(SDK_ROOT, 'test', '.consumer-'));
    try {
      // the README's patterns: a usage that may be missing, a request's optional thread
      const source = [
        "import { Runlog } from '@runlog/sdk';",
        'declare const env: { url?: string; key: string | undefined };',
        'declare const usage: { prompt_tokens: number } | undefined;',
        'declare const req: { threadId?: string; userId: string | undefined; note?: string };',
        'const runlog = new Runlog({ url: env.url, apiKey: env.key, spoolDir: undefined });',
        'export const done: Promise<string> = runlog.run(',
        "  'agent',",
        '  async (run) => {',
        "    await run.llm({ model: 'm', provider: req.note }, async (step) => {",
        '      step.set({ input_tokens: usage?.prompt_tokens, output_tokens: undefined });',
        "      return 'hi';",
        '    });',
        "    await run.step('tool', 't', () => 1, { input: 1, id: req.note });",
        "    run.score('ok', true, { comment: req.note, source: req.note });",
        "    return 'ok';",
        '  },',
        '  { threadId: req.threadId, userId: req.userId, source: req.note },',
        ');',
        'runlog.worker({ agents: { a: () => 1 }, workerId: req.note, concurrency: undefined });',
        'export const list = runlog.runs.list({ thread_id: req.threadId, user_id: req.userId });',
        'export const threads = runlog.threads.list({ user_id: req.userId });',
        "export const later = runlog.runs.enqueue('a', { run_at: new Date(), thread_id: req.threadId });",
        "export const delayed = runlog.runs.enqueue('a', { delay_ms: 60_000, run_at: undefined });",
      ].join('\n');
      expect(
        typeProblems(join(dir, 'agent.ts'), source, { exactOptionalPropertyTypes: true }),
      ).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** What tsc says of an agent file using the SDK, compiled as a project without Node's types. */
function typeProblems(
  file: string,
  source = [
    "import { Runlog } from '@runlog/sdk';",
    "const runlog = new Runlog({ url: 'http://127.0.0.1:4680', apiKey: 'rl_x' });",
    "export const done: Promise<string> = runlog.run('agent', async (run) => {",
    "  await run.step('tool', 'search', async () => 1);",
    "  return 'ok';",
    '});',
    // what the read API answers can be named, to pass a run or its steps around
    "import type { Run, RunList, RunStatus, RunWithSteps, Step } from '@runlog/sdk';",
    'export const failed = async (): Promise<Run[]> => {',
    "  const status: RunStatus[] = ['failed'];",
    '  const list: RunList = await runlog.runs.list({ status });',
    '  return list.runs;',
    '};',
    'export const stepsOf = async (id: string): Promise<Step[]> => {',
    "  const run: RunWithSteps = await runlog.runs.get(id, { include: 'steps' });",
    '  return run.steps;',
    '};',
  ].join('\n'),
  options: ts.CompilerOptions = {},
): string[] {
  writeFileSync(file, source);
  const program = ts.createProgram([file], {
    ...options,
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    // what a project gets without naming its libraries: the language and the DOM's globals
    // (URL, AbortSignal), not Node's namespace
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
    skipLibCheck: false,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}
