import { describe, expect, it } from 'vitest';
import type { Run, RunStatus } from '@runlog/core';
import { noSelection, refreshSelected, toggleRun, toggleShown } from './useRunSelection';

const run = (id: string, status: RunStatus = 'failed', updated = '2026-12-06T10:00:00.000Z') =>
  ({ id, status, updated_at: updated }) as Run;
const picked = (s: ReturnType<typeof noSelection>) => [...s.runs.keys()].sort();

describe('selecting runs in a live list', () => {
  const a = run('a');
  const b = run('b');
  const c = run('c');
  const d = run('d');

  it('picks a range with Shift from the run last picked, by id, after rows arrived above', () => {
    let s = toggleRun(noSelection('f'), [a, b, c, d], b, true, false);
    // a new run arrives at the top: b is now the third row, not the second
    const shown = [run('new'), a, b, c, d];
    s = toggleRun(s, shown, d, true, true);
    expect(picked(s)).toEqual(['b', 'c', 'd']);
    // and Shift on a row above drops that range the same way
    s = toggleRun(s, shown, c, false, true);
    expect(picked(s)).toEqual(['b']);
  });

  it('picks a single run when Shift has no earlier pick to start from', () => {
    expect(picked(toggleRun(noSelection('f'), [a, b, c], c, true, true))).toEqual(['c']);
  });

  it('selects the rows shown with the header checkbox, keeping picks from other pages', () => {
    let s = toggleRun(noSelection('f'), [run('p2')], run('p2'), true, false);
    s = toggleShown(s, [a, b], true);
    expect(picked(s)).toEqual(['a', 'b', 'p2']);
    expect(picked(toggleShown(s, [a, b], false))).toEqual(['p2']);
  });

  it('keeps the newest state of a selected run the list shows, and nothing new', () => {
    const s = toggleShown(noSelection('f'), [run('q', 'queued')], true);
    const ended = run('q', 'cancelled', '2026-12-06T10:05:00.000Z');
    const next = refreshSelected(s, [ended, run('other')]);
    expect(next.runs.get('q')?.status).toBe('cancelled');
    expect(picked(next)).toEqual(['q']);
    // an older state heard late does not undo it, and nothing changed answers the same state
    expect(refreshSelected(next, [run('q', 'queued')])).toBe(next);
  });
});
