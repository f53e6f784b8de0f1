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
});

/** What tsc says of an agent file using the SDK, compiled as a project without Node's types. */
function typeProblems(file: string): string[] {
  writeFileSync(
    file,
    [
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
  );
  const program = ts.createProgram([file], {
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
