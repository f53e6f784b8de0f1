import { MAX_EXPORTED_RUNS, type RunList, type RunSort } from '@runlog/core';
import { MenuButton } from '../../components/Menu';
import { runsExportPath, SORT_LABELS, type RunsView } from './runs.queries';

const most = MAX_EXPORTED_RUNS.toLocaleString('en-US');

/**
 * What an export of the Runs list holds, as its menu says: every run the filters match, or
 * the first `MAX_EXPORTED_RUNS` of them in the list's order when more match. `list` is the
 * list's count (undefined while it loads).
 * @example exportContents({ total: 120_000 }, 'newest') // 'The newest 100,000 of the 120,000 matching runs.'
 */
export function exportContents(
  list: Pick<RunList, 'total' | 'total_capped'> | undefined,
  sort: RunSort,
): string {
  const order = SORT_LABELS[sort].toLowerCase();
  if (!list) return `The matching runs, ${order}, at most ${most}.`;
  const total = list.total.toLocaleString('en-US');
  // the server stopped counting (a text search): more may match than it says
  if (list.total_capped) return `The ${total}+ matching runs, ${order}, at most ${most}.`;
  if (list.total > MAX_EXPORTED_RUNS)
    return sort === 'newest'
      ? `The newest ${most} of the ${total} matching runs.`
      : `The first ${most} of the ${total} matching runs, ${order}.`;
  if (list.total === 0) return 'No runs match these filters.';
  if (list.total === 1) return 'The one matching run.';
  return `All ${total} matching runs, ${order}.`;
}

/**
 * The Runs page's Export menu: the runs the list shows (its filters and order, every page) as
 * a CSV or JSON Lines download, and what the file holds.
 */
export function RunsExportMenu({ view, list }: { view: RunsView; list: RunList | undefined }) {
  const none = list !== undefined && list.total === 0 && !list.total_capped;
  return (
    <MenuButton
      label="Export runs"
      className="btn btn-small"
      note={exportContents(list, view.sort)}
      disabled={none}
      title={none ? 'No runs match these filters: nothing to export' : undefined}
      items={[
        { label: 'CSV', href: runsExportPath(view, 'csv'), download: true },
        { label: 'JSON Lines', href: runsExportPath(view, 'jsonl'), download: true },
      ]}
    >
      Export <span aria-hidden="true">▾</span>
    </MenuButton>
  );
}
