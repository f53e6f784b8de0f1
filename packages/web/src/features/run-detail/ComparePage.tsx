import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router-dom';
import type { RunWithSteps, Step } from '@runlog/core';
import { Empty, ErrorBox, Loading } from '../../components/States';
import { ApiError } from '../../lib/api';
import { StatusBadge } from '../../components/Status';
import { JsonViewer } from '../../components/JsonViewer';
import { useDocumentTitle } from '../../app/page';
import { useTopics } from '../../app/live';
import { formatCost, formatDuration, formatExact, formatTokens, shortId } from '../../lib/format';
import { runPath } from '../runs/RunActions';
import { runDetailQuery } from './runDetail.queries';

/** Steps compared side by side; a longer run's others are on its own page. */
const STEPS_COMPARED = 300;

/** A retry and the run it retried, side by side: where they went apart. */
export function comparePath(original: string, retry: string): string {
  return `/compare/${encodeURIComponent(original)}/${encodeURIComponent(retry)}`;
}

/** JSON text to compare values by (undefined and null alike). */
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function stepText(s: Step | undefined): string {
  if (!s) return '';
  return `${s.type} · ${s.name ?? '(unnamed)'}${s.model ? ` · ${s.model}` : ''}`;
}

/** One fact of both runs, marked when they differ. */
function Row({
  label,
  a,
  b,
  differ,
}: {
  label: string;
  a: React.ReactNode;
  b: React.ReactNode;
  differ: boolean;
}) {
  return (
    <tr className={differ ? 'differs' : undefined}>
      <th scope="row">
        {label}
        {differ ? <span className="sr-only"> (differs)</span> : null}
      </th>
      <td>{a}</td>
      <td>{b}</td>
    </tr>
  );
}

/** When a run started, or that it has not. */
function started(r: RunWithSteps): React.ReactNode {
  return r.started_at ? formatExact(r.started_at) : <span className="muted">not started</span>;
}

function Compared({ a, b }: { a: RunWithSteps; b: RunWithSteps }) {
  const stepsA = a.steps.slice(0, STEPS_COMPARED);
  const stepsB = b.steps.slice(0, STEPS_COMPARED);
  const rows = Math.max(stepsA.length, stepsB.length);
  // the first step where the two runs went apart: another step, or the same one ending otherwise
  const split = Array.from({ length: rows }, (_, i) => i).find(
    (i) => stepText(stepsA[i]) !== stepText(stepsB[i]) || stepsA[i]?.status !== stepsB[i]?.status,
  );
  const error = (r: RunWithSteps) =>
    r.error ? (
      // the message whole on the run's own page: here its first lines, beside the other's
      <span className="error-text compare-error" title={String(r.error.message ?? '')}>
        {String(r.error.message ?? '')}
      </span>
    ) : (
      <span className="muted">—</span>
    );
  return (
    <>
      <div className="table-wrap">
        <table className="data-table compare-table">
          <caption className="sr-only">The two runs' facts; rows that differ are marked</caption>
          <thead>
            <tr>
              <th scope="col" />
              <th scope="col">Original</th>
              <th scope="col">Retry</th>
            </tr>
          </thead>
          <tbody>
            <Row
              label="Run"
              a={
                <Link className="mono" to={runPath(a)} title={a.id}>
                  {shortId(a.id)}
                </Link>
              }
              b={
                <Link className="mono" to={runPath(b)} title={b.id}>
                  {shortId(b.id)}
                </Link>
              }
              differ={false}
            />
            <Row
              label="Status"
              a={<StatusBadge status={a.status} />}
              b={<StatusBadge status={b.status} />}
              differ={a.status !== b.status}
            />
            <Row label="Attempt" a={a.attempt} b={b.attempt} differ={false} />
            <Row label="Started" a={started(a)} b={started(b)} differ={false} />
            <Row
              label="Duration"
              a={formatDuration(a.duration_ms)}
              b={formatDuration(b.duration_ms)}
              differ={a.duration_ms !== b.duration_ms}
            />
            <Row
              label="Steps"
              a={a.step_count}
              b={b.step_count}
              differ={a.step_count !== b.step_count}
            />
            <Row
              label="Tokens"
              a={formatTokens(a.total_tokens)}
              b={formatTokens(b.total_tokens)}
              differ={a.total_tokens !== b.total_tokens}
            />
            <Row
              label="Cost"
              a={formatCost(a.cost_usd)}
              b={formatCost(b.cost_usd)}
              differ={a.cost_usd !== b.cost_usd}
            />
            <Row label="Error" a={error(a)} b={error(b)} differ={!same(a.error, b.error)} />
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
              label="Original input"
              value={a.input}
              defaultOpen={!same(a.input, b.input)}
            />
            <JsonViewer label="Original output" value={a.output} />
          </div>
          <div>
            <JsonViewer label="Retry input" value={b.input} defaultOpen={!same(a.input, b.input)} />
            <JsonViewer label="Retry output" value={b.output} />
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
                  <th scope="col">Original</th>
                  <th scope="col">Retry</th>
                </tr>
              </thead>
              <tbody>
                {Array.from({ length: rows }, (_, i) => {
                  const sa = stepsA[i];
                  const sb = stepsB[i];
                  const differ = stepText(sa) !== stepText(sb) || sa?.status !== sb?.status;
                  const cell = (s: Step | undefined) =>
                    s ? (
                      <>
                        <span className={s.status === 'failed' ? 'bad' : undefined}>
                          {stepText(s)}
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

/** `/compare/:original/:retry`: the Run page's "Compare with the original" of a retry. */
export function ComparePage() {
  const { original = '', retry = '' } = useParams();
  const a = useQuery(runDetailQuery(original));
  const b = useQuery(runDetailQuery(retry));
  // both runs' updates, as their own pages hear them: a retry still running goes on here
  useTopics([`run:${original}`, `run:${retry}`]);
  useDocumentTitle('Compare runs');
  return (
    <div>
      <div className="page-head">
        <h1 tabIndex={-1}>Compare runs</h1>
      </div>
      {a.isPending || b.isPending ? (
        <Loading label="Loading the two runs…" rows={6} />
      ) : a.isError && a.error instanceof ApiError && a.error.status === 404 && b.data ? (
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
