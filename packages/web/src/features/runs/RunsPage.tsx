import { useEffect, useMemo, useRef, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import {
  RUN_SORTS,
  metadataParam,
  type RunList,
  type RunSort,
  type RunStatus,
  type RunTrigger,
} from '@runlog/core';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { TextFilter } from '../../components/TextFilter';
import { StatusGlyph } from '../../components/Status';
import { RUN_STATUS_META, RUN_STATUS_LIST, TRIGGER_LABELS, TRIGGER_LIST } from '../../lib/format';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { listParam, paramsWith, searchText } from '../../lib/params';
import { agentsQuery } from '../agents/agents.queries';
import { AgentSelect } from '../agents/AgentSelect';
import { threadPath } from '../threads/threads.queries';
import { userPath } from '../users/users.queries';
import { RunRow, RunTableHead } from './RunRows';
import {
  metadataFromParams,
  PAGE_SIZE,
  runListQuery,
  SORT_LABELS,
  viewFilters,
  type RunsView,
} from './runs.queries';
import { MetadataFilterField } from './MetadataFilter';
import { RunsExportMenu } from './RunsExport';
import { TimeRangeFields } from './TimeRangeFields';
import { BulkBar } from './BulkBar';
import { fetchMatching, plural } from './bulk';
import { useRunSelection } from './useRunSelection';

/** A number from the URL as written, or '' when there is none to read. */
const bound = (v: string | null) => (v && v.trim() && Number.isFinite(Number(v)) ? v.trim() : '');

/** The view from the URL: filters are kept there so a view can be shared. */
export function viewFromParams(p: URLSearchParams): RunsView {
  return {
    // `agent_id` is the name `GET /runs` gives this filter: a link written with it works too
    agent: listParam(p.get('agent') ?? p.get('agent_id')),
    status: listParam(p.get('status')).filter((s): s is RunStatus => s in RUN_STATUS_META),
    trigger: listParam(p.get('trigger')).filter((t): t is RunTrigger => t in TRIGGER_LABELS),
    source: p.get('source') ?? '',
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
    q: p.get('q') ?? '',
    thread: p.get('thread_id') ?? '',
    user: p.get('user_id') ?? '',
    tag: p.get('tag') ?? '',
    parent: p.get('parent_run_id') ?? '',
    model: p.get('model') ?? '',
    score: p.get('score') ?? '',
    scoreMin: bound(p.get('score_min')),
    scoreMax: bound(p.get('score_max')),
    scoreLabel: p.get('score_label') ?? '',
    retried: p.get('retried') === 'true' ? 'true' : p.get('retried') === 'false' ? 'false' : '',
    metadata: metadataFromParams(p),
    sort: (RUN_SORTS as readonly string[]).includes(p.get('sort') ?? '')
      ? (p.get('sort') as RunSort)
      : 'newest',
    page: Math.max(0, Number(p.get('page') ?? '1') - 1) || 0,
  };
}

/** The exact-match filters a link sets (a run page's Thread, User, Tag, Sub-runs), as chips. */
const EXACT_FILTERS = [
  { param: 'thread_id', field: 'thread', label: 'Thread' },
  { param: 'user_id', field: 'user', label: 'User' },
  { param: 'tag', field: 'tag', label: 'Tag' },
  { param: 'parent_run_id', field: 'parent', label: 'Sub-runs of' },
  { param: 'model', field: 'model', label: 'Model' },
] as const;

/** The score filter as its chip says it: "feedback ≤ 0", "helpfulness 0.5 to 0.9", "topic = billing". */
export function scoreFilterText(
  view: Pick<RunsView, 'score' | 'scoreMin' | 'scoreMax' | 'scoreLabel'>,
): string {
  const { scoreMin: min, scoreMax: max } = view;
  const range =
    min && max
      ? min === max
        ? `= ${min}`
        : `${min} to ${max}`
      : min
        ? `≥ ${min}`
        : max
          ? `≤ ${max}`
          : '';
  return [view.score, range, view.scoreLabel ? `= ${view.scoreLabel}` : '']
    .filter(Boolean)
    .join(' ');
}

/**
 * The Runs page showing the runs that match `filters` (URL names, as the API takes them).
 * @example runsPath({ thread_id: 't-1' }) // '/runs?thread_id=t-1'
 * @example runsPath(metadataQuery({ env: 'prod' })) // '/runs?metadata[env]=prod'
 */
export function runsPath(filters: Record<string, string>): string {
  return `/runs?${searchText(new URLSearchParams(filters))}`;
}

// a text search or another filter the rollups cannot count stops counting at 10,000
const CAPPED_NOTE = 'More than this match; counting stops here for this filter';

/** "1,234", or "10,000+" when the server stopped counting. */
function totalText(data: RunList): string {
  return `${data.total.toLocaleString()}${data.total_capped ? '+' : ''}`;
}

/** Every run, newest first or sorted, filtered by what the URL says, paginated and live. */
export function RunsPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  // the router's setter writes `metadata%5Benv%5D`: the address bar keeps the API's brackets
  const setParams = useMemo(
    () => (next: URLSearchParams, options?: { replace?: boolean }) =>
      void navigate({ search: searchText(next) }, options),
    [navigate],
  );
  const view = useMemo(() => viewFromParams(params), [params]);
  const runs = useQuery(runListQuery(view));
  const agents = useQuery(agentsQuery());
  useTopics(['runs']);
  useDocumentTitle('Runs');
  // the page keeps the agent as `agent`: an `agent_id` left beside it would come back as the
  // filter once the agent picker cleared `agent`
  useEffect(() => {
    const alias = params.get('agent_id');
    if (alias === null) return;
    const next = new URLSearchParams(params);
    if (!next.has('agent')) next.set('agent', alias);
    next.delete('agent_id');
    setParams(next, { replace: true });
  }, [params, setParams]);

  const set = useMemo(
    () =>
      (changes: Record<string, string | null>, keepPage = false) => {
        const next = paramsWith(changes);
        if (!keepPage) next.delete('page');
        setParams(next, { replace: !keepPage });
      },
    [setParams],
  );
  const onSearch = useMemo(() => (q: string) => set({ q }), [set]);
  const onSource = useMemo(() => (source: string) => set({ source }), [set]);
  // bumped by "Clear filters": the text fields start again empty, dropping typing not yet applied
  const [cleared, setCleared] = useState(0);

  const toggleStatus = (s: RunStatus) => {
    const has = view.status.includes(s);
    set({ status: (has ? view.status.filter((x) => x !== s) : [...view.status, s]).join(',') });
  };

  const exact = EXACT_FILTERS.filter((f) => view[f.field]);
  const scoreFilter = scoreFilterText(view);
  const metadata = Object.entries(view.metadata);
  const filtered =
    view.agent.length + view.status.length + view.trigger.length + exact.length > 0 ||
    metadata.length > 0 ||
    Boolean(view.source || view.from || view.to || view.q || scoreFilter || view.retried);
  // a chip goes: the keyboard goes on from the filters beside it
  const chipGone = () => document.getElementById('runs-agent')?.focus();
  const data = runs.data;
  const first = view.page * PAGE_SIZE;
  // the selection belongs to the filters: another page or order keeps it, another filter clears it
  const scope = useMemo(() => JSON.stringify(viewFilters(view)), [view]);
  const shown = useMemo(() => data?.runs ?? [], [data]);
  const selection = useRunSelection(scope, shown);
  const table = useRef<HTMLTableElement>(null);
  /** Another page, read from its top: the pager sits below the list it turns. */
  const turnTo = (page: number) => {
    set({ page: page > 0 ? String(page + 1) : null }, true);
    table.current?.scrollIntoView({ block: 'start' });
    table.current?.focus({ preventScroll: true });
  };

  return (
    <div>
      <div className="page-head">
        <h1 tabIndex={-1}>Runs</h1>
        {data ? (
          <span className="count muted" title={data.total_capped ? CAPPED_NOTE : undefined}>
            {totalText(data)}
          </span>
        ) : null}
        <div className="page-head-end">
          {/* the count of a list still loading its new filters is the old filters' */}
          <RunsExportMenu view={view} list={runs.isPlaceholderData ? undefined : data} />
        </div>
      </div>
      <form
        className="filters"
        role="search"
        aria-label="Filter runs"
        onSubmit={(e) => e.preventDefault()}
      >
        {exact.length > 0 || scoreFilter || metadata.length > 0 ? (
          <ul className="exact-filters" aria-label="Also filtered by">
            {exact.map((f) => (
              <li key={f.param}>
                <span className="chip exact-chip">
                  {f.label}:{' '}
                  {f.param === 'thread_id' ? (
                    // the thread's runs read as a conversation on its own page
                    <Link
                      className="truncate mono"
                      to={threadPath(view.thread)}
                      title="Open the conversation"
                    >
                      {view.thread}
                    </Link>
                  ) : f.param === 'user_id' ? (
                    // and the user's sums on theirs
                    <Link
                      className="truncate mono"
                      to={userPath(view.user)}
                      title="Open the user's page"
                    >
                      {view.user}
                    </Link>
                  ) : (
                    <span className="truncate mono">{view[f.field]}</span>
                  )}
                  <button
                    type="button"
                    className="chip-remove"
                    aria-label={`Remove filter ${f.label}: ${view[f.field]}`}
                    title="Remove this filter"
                    onClick={() => {
                      set({ [f.param]: null });
                      chipGone();
                    }}
                  >
                    <span aria-hidden="true">✕</span>
                  </button>
                </span>
              </li>
            ))}
            {scoreFilter ? (
              <li>
                <span
                  className="chip exact-chip"
                  title={
                    view.scoreMin || view.scoreMax
                      ? 'Runs with such a score in this range (true counts as 1, false as 0)'
                      : undefined
                  }
                >
                  Score: <span className="truncate mono">{scoreFilter}</span>
                  <button
                    type="button"
                    className="chip-remove"
                    aria-label={`Remove filter Score: ${scoreFilter}`}
                    title="Remove this filter"
                    onClick={() => {
                      set({ score: null, score_min: null, score_max: null, score_label: null });
                      chipGone();
                    }}
                  >
                    <span aria-hidden="true">✕</span>
                  </button>
                </span>
              </li>
            ) : null}
            {metadata.map(([key, value]) => (
              <li key={`metadata-${key}`}>
                <span
                  className="chip exact-chip metadata-chip"
                  title={`Runs whose metadata holds ${key} = ${value}`}
                >
                  <span className="truncate mono">
                    <span className="sr-only">Metadata: </span>
                    {key} <span className="muted">=</span> {value}
                  </span>
                  <button
                    type="button"
                    className="chip-remove"
                    aria-label={`Remove filter Metadata: ${key} = ${value}`}
                    title="Remove this filter"
                    onClick={() => {
                      set({ [metadataParam(key)]: null });
                      // the keyboard goes on where metadata filters are added
                      document.getElementById('runs-metadata')?.focus();
                    }}
                  >
                    <span aria-hidden="true">✕</span>
                  </button>
                </span>
              </li>
            ))}
          </ul>
        ) : null}
        <AgentSelect
          id="runs-agent"
          agents={agents.data}
          value={view.agent}
          onChange={(agent) => set({ agent })}
        />
        <div className="field">
          <label htmlFor="runs-trigger">Trigger</label>
          <select
            id="runs-trigger"
            value={view.trigger.join(',')}
            onChange={(e) => set({ trigger: e.target.value })}
          >
            <option value="">Any trigger</option>
            {TRIGGER_LIST.map((t) => (
              <option key={t} value={t}>
                {TRIGGER_LABELS[t]}
              </option>
            ))}
            {/* a link's `trigger=manual,retry` filters on both: the choice says both */}
            {view.trigger.length > 1 ? (
              <option value={view.trigger.join(',')}>
                {view.trigger.map((t) => TRIGGER_LABELS[t]).join(', ')}
              </option>
            ) : null}
          </select>
        </div>
        <div className="field">
          <label htmlFor="runs-retried">Retried</label>
          <select
            id="runs-retried"
            value={view.retried}
            onChange={(e) => set({ retried: e.target.value || null })}
          >
            <option value="">Either</option>
            <option value="false">Not retried yet</option>
            <option value="true">Retried already</option>
          </select>
        </div>
        <TextFilter
          key={`source-${cleared}`}
          id="runs-source"
          label="Source"
          placeholder="e.g. n8n"
          value={view.source}
          onCommit={onSource}
        />
        <MetadataFilterField
          key={`metadata-${cleared}`}
          id="runs-metadata"
          filter={view.metadata}
          onAdd={(key, value) => set({ [metadataParam(key)]: value })}
        />
        <TimeRangeFields idPrefix="runs" from={view.from} to={view.to} onChange={set} />
        <div className="field">
          <label htmlFor="runs-sort">Sort</label>
          <select
            id="runs-sort"
            value={view.sort}
            onChange={(e) => set({ sort: e.target.value === 'newest' ? null : e.target.value })}
          >
            {RUN_SORTS.map((o) => (
              <option key={o} value={o}>
                {SORT_LABELS[o]}
              </option>
            ))}
          </select>
        </div>
        <TextFilter
          key={`q-${cleared}`}
          id="runs-q"
          label="Search"
          placeholder="Input, output or error text"
          value={view.q}
          onCommit={onSearch}
          grow
        />
        <fieldset className="status-filter">
          <legend>Status</legend>
          {RUN_STATUS_LIST.map((s) => (
            <button
              key={s}
              type="button"
              className={`chip s-${s}`}
              aria-pressed={view.status.includes(s)}
              onClick={() => toggleStatus(s)}
            >
              <StatusGlyph status={s} /> {RUN_STATUS_META[s].label}
            </button>
          ))}
        </fieldset>
        {filtered ? (
          <button
            type="button"
            className="btn btn-small btn-ghost clear"
            onClick={() => {
              setCleared((n) => n + 1);
              setParams(new URLSearchParams());
            }}
          >
            Clear filters
          </button>
        ) : null}
      </form>

      <RefreshFailed query={runs} />

      {data ? (
        // above the list, not in it: a Stop of the queued runs of a "queued" filter empties
        // the list as it goes, and the pass's progress and Cancel must stay until it is over
        <BulkBar
          selection={selection}
          where="on other pages"
          matching={{
            total: data.total,
            capped: data.total_capped === true,
            fetch: (cap, onProgress, signal) => fetchMatching(view, cap, onProgress, signal),
          }}
        />
      ) : null}
      {runs.isPending ? (
        <Loading label="Loading runs…" rows={8} />
      ) : runs.isError && runs.data === undefined ? (
        <ErrorBox error={runs.error} onRetry={() => void runs.refetch()} />
      ) : data && data.runs.length === 0 && view.page > 0 && data.total > 0 ? (
        // past the last page (an old link, runs deleted since): there are runs, just not here
        <Empty title="No runs on this page">
          {totalText(data)} runs in all.{' '}
          <button type="button" className="link-btn" onClick={() => set({ page: null }, true)}>
            Go to the first page
          </button>
        </Empty>
      ) : data && data.runs.length === 0 ? (
        <Empty title={filtered ? 'No runs match these filters' : 'No runs yet'}>
          {filtered ? 'Change or clear the filters.' : 'Runs appear here as agents record them.'}
        </Empty>
      ) : data ? (
        <>
          <div
            className={`table-wrap${runs.isPlaceholderData ? ' stale' : ''}`}
            aria-busy={runs.isFetching}
          >
            <table className="runs-table" ref={table} tabIndex={-1}>
              <caption className="sr-only">Runs, {SORT_LABELS[view.sort].toLowerCase()}</caption>
              <RunTableHead
                showAgent
                select={selection.head(
                  `Select the ${plural(data.runs.length, 'run')} on this page`,
                )}
              />
              <tbody>
                {data.runs.map((run) => (
                  <RunRow key={run.id} run={run} showAgent select={selection.row(run)} />
                ))}
              </tbody>
            </table>
          </div>
          <nav className="pager" aria-label="Pages">
            <span className="muted">
              {(first + 1).toLocaleString()}–{(first + data.runs.length).toLocaleString()} of{' '}
              {totalText(data)}
            </span>
            <button
              type="button"
              className="btn btn-small"
              disabled={view.page === 0}
              onClick={() => turnTo(view.page - 1)}
            >
              {view.sort === 'newest' ? '← Newer' : '← Previous'}
            </button>
            <button
              type="button"
              className="btn btn-small"
              disabled={!data.has_more && first + data.runs.length >= data.total}
              onClick={() => turnTo(view.page + 1)}
            >
              {view.sort === 'newest' ? 'Older →' : 'Next →'}
            </button>
          </nav>
        </>
      ) : null}
    </div>
  );
}
