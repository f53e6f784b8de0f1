import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router-dom';
import { readableError, type Run, type RunWithSteps, type Step } from '@runlog/core';
import { Empty, ErrorBox, Loading } from '../../components/States';
import { ApiError } from '../../lib/api';
import { StatusBadge } from '../../components/Status';
import { JsonViewer } from '../../components/JsonViewer';
import { useDocumentTitle } from '../../app/page';
import { useTopics } from '../../app/live';
import {
  TRIGGER_LABELS,
  formatCost,
  formatDuration,
  formatExact,
  formatTokens,
  shortId,
} from '../../lib/format';
import { runPath } from '../runs/RunActions';
import { runHeadQuery } from './runDetail.queries';

/**
 * Steps compared side by side; a longer run's others are on its own page. Within the steps the
 * server answers inline (`runHeadQuery`): only those are read.
 */
const STEPS_COMPARED = 300;

/**
 * Two runs side by side, where they went apart: a retry and the run it retried, or any two
 * runs selected in a list (the older first).
 */
export function comparePath(a: string, b: string): string {
  return `/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
}

/** The two runs in the order `comparePath` wants them: a retried run before its retry, else the older first. */
export function compareOrder<R extends Pick<Run, 'id' | 'retry_of' | 'started_at' | 'created_at'>>(
  x: R,
  y: R,
): [R, R] {
  if (x.retry_of === y.id) return [y, x];
  if (y.retry_of === x.id) return [x, y];
  return madeAt(y) < madeAt(x) ? [y, x] : [x, y];
}

/** When a run began: its start, or for one not started, when it was queued. */
const madeAt = (r: Pick<Run, 'started_at' | 'created_at'>) =>
  Date.parse(r.started_at ?? r.created_at);

/**
 * What the two columns are called: Original and Retry for a retry and the run it retried,
 * else Earlier and Later by when they began, or A and B.
 */
export function columnNames(a: RunWithSteps, b: RunWithSteps): [string, string] {
  if (b.retry_of === a.id) return ['Original', 'Retry'];
  if (a.retry_of === b.id) return ['Retry', 'Original'];
  if (madeAt(a) < madeAt(b)) return ['Earlier', 'Later'];
  if (madeAt(b) < madeAt(a)) return ['Later', 'Earlier'];
  return ['Run A', 'Run B'];
}

/** JSON text to compare values by (undefined and null alike). */
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function stepText(s: Step | undefined): string {
  if (!s) return '';
  return `${s.type} · ${s.name ?? '(unnamed)'}${s.model ? ` · ${s.model}` : ''}`;
}

/** A step as the table shows it: its model said once when the step is named after it. */
function stepLabel(s: Step): string {
  const model = s.model && s.model !== s.name ? ` · ${s.model}` : '';
  return `${s.type} · ${s.name ?? '(unnamed)'}${model}`;
}

/** The two steps at one place differ: another step, or the same one ending otherwise. */
function stepsDiffer(a: Step | undefined, b: Step | undefined): boolean {
  return stepText(a) !== stepText(b) || a?.status !== b?.status;
}

/** When a run started, or that it has not. */
function started(r: RunWithSteps): React.ReactNode {
  return r.started_at ? formatExact(r.started_at) : <span className="muted">not started</span>;
}

/** A run's error: its message's first lines (whole in the tooltip and on the run's page). */
function errorOf(r: RunWithSteps): React.ReactNode {
  if (!r.error) return <span className="muted">—</span>;
  const message = readableError(r.error).message;
  return (
    <span className="error-text compare-error" title={message}>
      {message}
    </span>
  );
}

/**
 * A fact shown for both runs: `value` is what is compared (rows whose values differ are
 * marked, unless `compared` is false) and `show` how it reads (the value by default).
 */
interface Fact {
  label: string;
  value: (r: RunWithSteps) => unknown;
  show?: (r: RunWithSteps) => React.ReactNode;
  compared?: false;
}

const FACTS: Fact[] = [
  {
    label: 'Run',
    value: (r) => r.id,
    show: (r) => (
      <Link className="mono" to={runPath(r)} title={r.id}>
        {shortId(r.id)}
      </Link>
    ),
    compared: false,
  },
  { label: 'Agent', value: (r) => r.agent_id },
  { label: 'Status', value: (r) => r.status, show: (r) => <StatusBadge status={r.status} /> },
  { label: 'Trigger', value: (r) => r.trigger, show: (r) => TRIGGER_LABELS[r.trigger] },
  { label: 'Attempt', value: (r) => r.attempt, compared: false },
  { label: 'Started', value: (r) => r.started_at, show: started, compared: false },
  { label: 'Duration', value: (r) => r.duration_ms, show: (r) => formatDuration(r.duration_ms) },
  { label: 'Steps', value: (r) => r.step_count },
  { label: 'Tokens', value: (r) => r.total_tokens, show: (r) => formatTokens(r.total_tokens) },
  { label: 'Cost', value: (r) => r.cost_usd, show: (r) => formatCost(r.cost_usd) },
  { label: 'Error', value: (r) => r.error, show: errorOf },
];

function Compared({ a, b }: { a: RunWithSteps; b: RunWithSteps }) {
  const stepsA = a.steps.slice(0, STEPS_COMPARED);
  const stepsB = b.steps.slice(0, STEPS_COMPARED);
  const rows = Math.max(stepsA.length, stepsB.length);
  const [nameA, nameB] = columnNames(a, b);
  // the first step where the two runs went apart
  const split = Array.from({ length: rows }, (_, i) => i).find((i) =>
    stepsDiffer(stepsA[i], stepsB[i]),
  );
  return (
    <>
      <div className="table-wrap">
        <table className="data-table compare-table">
          <caption className="sr-only">The two runs' facts; rows that differ are marked</caption>
          <thead>
            <tr>
              <th scope="col" />
              <th scope="col">{nameA}</th>
              <th scope="col">{nameB}</th>
            </tr>
          </thead>
          <tbody>
            {FACTS.map((f) => {
              const differ = f.compared !== false && !same(f.value(a), f.value(b));
              const show = f.show ?? ((r: RunWithSteps) => f.value(r) as React.ReactNode);
              return (
                <tr key={f.label} className={differ ? 'differs' : undefined}>
                  <th scope="row">
                    {f.label}
                    {differ ? <span className="sr-only"> (differs)</span> : null}
                  </th>
                  <td>{show(a)}</td>
                  <td>{show(b)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <section className="section" aria-labelledby="cmp-io">
        <h2 id="cmp-io">Input and output</h2>
        <p className="muted">
          {same(a.input, b.input) ? 'Same input.' : 'The input differs.'}{' '}
          {same(a.output, b.output) ? 'Same output.' : 'The output differs.'}
        </p>
        <div className="compare-cols">
          <div>
            <JsonViewer
              label={`${nameA} input`}
              value={a.input}
              defaultOpen={!same(a.input, b.input)}
            />
            <JsonViewer label={`${nameA} output`} value={a.output} />
          </div>
          <div>
            <JsonViewer
              label={`${nameB} input`}
              value={b.input}
              defaultOpen={!same(a.input, b.input)}
            />
            <JsonViewer label={`${nameB} output`} value={b.output} />
          </div>
        </div>
      </section>
      <section className="section" aria-labelledby="cmp-steps">
        <h2 id="cmp-steps">Steps</h2>
        <p className="muted" data-testid="compare-split">
          {rows === 0
            ? 'Neither run recorded a step.'
            : split === undefined
              ? 'The same steps, ending alike.'
              : `They went apart at step ${split + 1}.`}
          {a.steps.length > STEPS_COMPARED || b.steps.length > STEPS_COMPARED
            ? ` The first ${STEPS_COMPARED} steps are compared.`
            : ''}
        </p>
        {rows > 0 ? (
          <div className="table-wrap">
            <table className="data-table compare-table compare-steps">
              <thead>
                <tr>
                  <th scope="col" className="num">
                    #
                  </th>
                  <th scope="col">{nameA}</th>
                  <th scope="col">{nameB}</th>
                </tr>
              </thead>
              <tbody>
                {Array.from({ length: rows }, (_, i) => {
                  const sa = stepsA[i];
                  const sb = stepsB[i];
                  const differ = stepsDiffer(sa, sb);
                  const cell = (s: Step | undefined) =>
                    s ? (
                      <>
                        <span className={s.status === 'failed' ? 'bad' : undefined}>
                          {stepLabel(s)}
                        </span>{' '}
                        <span className="muted">
                          {s.status} · {formatDuration(s.duration_ms)}
                        </span>
                      </>
                    ) : (
                      <span className="muted">—</span>
                    );
                  return (
                    <tr key={i} className={differ ? 'differs' : undefined}>
                      <td className="num">{i + 1}</td>
                      <td>{cell(sa)}</td>
                      <td>{cell(sb)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : null}
      </section>
    </>
  );
}

/**
 * `/compare/:a/:b`: the Run page's "Compare with the original" of a retry, and a run list's
 * Compare of two selected runs.
 */
export function ComparePage() {
  const { a: original = '', b: retry = '' } = useParams();
  const a = useQuery(runHeadQuery(original));
  const b = useQuery(runHeadQuery(retry));
  // both runs' updates, as their own pages hear them: a run still running goes on here
  useTopics([`run:${original}`, `run:${retry}`]);
  useDocumentTitle('Compare runs');
  return (
    <div>
      <div className="page-head">
        <h1 tabIndex={-1}>Compare runs</h1>
      </div>
      {a.isPending || b.isPending ? (
        <Loading label="Loading the two runs…" rows={6} />
      ) : a.isError &&
        a.error instanceof ApiError &&
        a.error.status === 404 &&
        b.data?.retry_of === original ? (
        // the original was deleted (retention, by hand): say so, and lead to the retry
        <Empty title="The original run is gone">
          Run <span className="mono">{original}</span> no longer exists, so there is nothing to
          compare its retry with. <Link to={runPath(b.data)}>Open the retry</Link>
        </Empty>
      ) : a.isError ? (
        <ErrorBox error={a.error} onRetry={() => void a.refetch()} />
      ) : b.isError ? (
        <ErrorBox error={b.error} onRetry={() => void b.refetch()} />
      ) : (
        <Compared a={a.data} b={b.data} />
      )}
    </div>
  );
}
