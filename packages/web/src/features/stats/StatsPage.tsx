import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router-dom';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { LineChart, Legend, StackedBars } from '../../components/Charts';
import {
  RUN_STATUS_LIST,
  RUN_STATUS_META,
  formatCost,
  formatCostTick,
  formatDuration,
  formatPercent,
  formatPercentTick,
  formatTokens,
} from '../../lib/format';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { agentsQuery } from '../agents/agents.queries';
import { agentChoices } from '../agents/AgentSelect';
import { runsPath } from '../runs/RunsPage';
import { RANGES, refusedStatsZone, statsQuery, statsZone, type RangeKey } from './stats.queries';
import {
  costUnknown,
  localDate,
  localDayOf,
  systemZone,
  type StatsResponse,
  type StatsScore,
} from '@runlog/core';
import { booleanText, formatScoreNumber } from '../scores/scoreText';
import { ThumbIcon } from '../scores/ScoreChips';

function Card({
  label,
  value,
  hint,
  title,
}: {
  label: string;
  value: string;
  hint?: string;
  title?: string;
}) {
  return (
    <div className="card stat-card" title={title}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
      {hint ? <div className="stat-hint muted">{hint}</div> : null}
    </div>
  );
}

const AGENT_ROWS = 20;

// the server reads percentiles off a log-scale duration histogram, not the exact durations
const ESTIMATE_NOTE = 'Estimated from a duration histogram, within 5%';

/** A p50/p95 duration, marked as the estimate it is: "≈ 4.2 s". */
function estimate(ms: number | null): string {
  return ms === null ? formatDuration(ms) : `≈ ${formatDuration(ms)}`;
}

const STACKS = RUN_STATUS_LIST.map((s) => ({
  key: s,
  label: RUN_STATUS_META[s].label,
  className: `fill-${s}`,
}));

/** Stats for all agents or one over a chosen range: volume, failures, latency, usage. */
export function StatsPage() {
  const [params, setParams] = useSearchParams();
  const agentId = params.get('agent') ?? '';
  const range = (params.get('range') ?? '7d') as RangeKey;
  const safeRange: RangeKey = range in RANGES ? range : '7d';
  const stats = useQuery(statsQuery(agentId, safeRange));
  // a run appearing, starting or ending refreshes the figures (at most every 5 s)
  useTopics(['runs']);
  useDocumentTitle('Stats');
  const [allAgents, setAllAgents] = useState(false);
  const agents = useQuery(agentsQuery());
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  const d = stats.data;
  const times = d?.series.map((p) => p.t) ?? [];

  return (
    <div className="stats-page">
      <div className="page-head">
        <h1 tabIndex={-1}>Stats</h1>
        <div className="page-head-end filters-inline">
          <label className="sr-only" htmlFor="stats-agent">
            Agent
          </label>
          <select id="stats-agent" value={agentId} onChange={(e) => set('agent', e.target.value)}>
            <option value="">All agents</option>
            {agentChoices(agents.data ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.label}
              </option>
            ))}
            {/* an agent from the link that is not (or no longer) listed still shows as chosen */}
            {agentId && agents.data && !agents.data.some((a) => a.id === agentId) ? (
              <option value={agentId}>{agentId}</option>
            ) : null}
          </select>
          <div className="segmented" role="group" aria-label="Time range">
            {(Object.keys(RANGES) as RangeKey[]).map((r) => (
              <button
                key={r}
                type="button"
                aria-pressed={safeRange === r}
                onClick={() => set('range', r)}
              >
                {r}
              </button>
            ))}
          </div>
        </div>
      </div>
      <RefreshFailed query={stats} />
      {refusedStatsZone() !== undefined ? (
        <p className="muted stats-zone-note" role="note">
          Days are UTC days: this server does not know your time zone ({refusedStatsZone()}).
        </p>
      ) : null}
      {stats.isPending ? (
        <Loading label="Loading stats…" rows={6} />
      ) : stats.isError && stats.data === undefined ? (
        <ErrorBox error={stats.error} onRetry={() => void stats.refetch()} />
      ) : d && d.totals.runs === 0 ? (
        <Empty title="No runs in this range">
          {RANGES[safeRange].label} had no runs{agentId ? ` of ${agentId}` : ''}.
        </Empty>
      ) : d ? (
        <>
          <div className="cards">
            <Card
              label="Runs"
              value={d.totals.runs.toLocaleString()}
              hint={
                // the range's start as the answer gives it, not while the last range's shows
                stats.isPlaceholderData
                  ? RANGES[safeRange].label
                  : `${RANGES[safeRange].label}, since ${sinceText(d.from, d.bucket)}`
              }
            />
            <Card
              label="Fail rate"
              value={formatPercent(d.totals.fail_rate)}
              hint={`${(d.totals.by_status.failed + d.totals.by_status.timed_out).toLocaleString()} failed or timed out`}
            />
            <Card
              label="p50 duration"
              value={estimate(d.totals.p50_duration_ms)}
              hint="estimate, within 5%"
              title={ESTIMATE_NOTE}
            />
            <Card
              label="p95 duration"
              value={estimate(d.totals.p95_duration_ms)}
              hint="estimate, within 5%"
              title={ESTIMATE_NOTE}
            />
            <Card label="Tokens" value={formatTokens(d.totals.total_tokens)} />
            <Card label="Cost" value={formatCost(d.totals.cost_usd)} />
          </div>
          <div className="chart-grid">
            <section className="card chart-card wide" aria-labelledby="c-runs">
              <h2 id="c-runs">Runs by status</h2>
              <StackedBars
                label={`Runs per ${d.bucket} stacked by status`}
                times={times}
                bucket={d.bucket}
                stacks={STACKS}
                values={d.series.map((p) => p.by_status)}
                wide
              />
              <Legend items={STACKS} />
            </section>
            <section className="card chart-card" aria-labelledby="c-fail">
              <h2 id="c-fail">Fail rate</h2>
              <LineChart
                label={`Fail rate per ${d.bucket}`}
                times={times}
                bucket={d.bucket}
                format={formatPercent}
                tickFormat={formatPercentTick}
                scale="decimal"
                lines={[
                  {
                    label: 'Fail rate',
                    className: 'line-bad',
                    values: d.series.map((p) => p.fail_rate),
                  },
                ]}
              />
            </section>
            <section className="card chart-card" aria-labelledby="c-dur">
              <h2 id="c-dur">Duration</h2>
              <LineChart
                label={`p50 and p95 duration per ${d.bucket}`}
                times={times}
                bucket={d.bucket}
                format={formatDuration}
                scale="duration"
                lines={[
                  {
                    label: 'p50',
                    className: 'line-a',
                    values: d.series.map((p) => p.p50_duration_ms),
                  },
                  {
                    label: 'p95',
                    className: 'line-b',
                    values: d.series.map((p) => p.p95_duration_ms),
                  },
                ]}
              />
              <Legend
                items={[
                  { label: 'p50', className: 'line-a' },
                  { label: 'p95', className: 'line-b' },
                ]}
              />
            </section>
            <section className="card chart-card" aria-labelledby="c-tokens">
              <h2 id="c-tokens">Tokens</h2>
              <StackedBars
                label={`Tokens per ${d.bucket}`}
                times={times}
                bucket={d.bucket}
                format={formatTokens}
                stacks={[
                  { key: 'input_tokens', label: 'Input tokens', className: 'fill-in' },
                  { key: 'output_tokens', label: 'Output tokens', className: 'fill-out' },
                ]}
                values={d.series.map((p) => ({
                  input_tokens: p.input_tokens,
                  output_tokens: p.output_tokens,
                }))}
              />
              <Legend
                items={[
                  { label: 'Input', className: 'fill-in' },
                  { label: 'Output', className: 'fill-out' },
                ]}
              />
            </section>
            <section className="card chart-card" aria-labelledby="c-cost">
              <h2 id="c-cost">Cost</h2>
              <StackedBars
                label={`Cost per ${d.bucket}`}
                times={times}
                bucket={d.bucket}
                format={formatCostTick}
                scale="decimal"
                stacks={[{ key: 'cost', label: 'Cost', className: 'fill-cost' }]}
                values={d.series.map((p) => ({ cost: p.cost_usd }))}
              />
            </section>
          </div>
          <ByModel models={d.by_model} range={d} agentId={agentId} />
          <ByScore scores={d.by_score} range={d} agentId={agentId} />
          <section className="section" aria-labelledby="by-agent">
            <h2 id="by-agent">By agent</h2>
            <div className="table-wrap">
              <table className="data-table">
                <thead>
                  <tr>
                    <th scope="col">Agent</th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    {/* a phone keeps runs, fail rate and p95: the rest scrolled off-screen */}
                    <th scope="col" className="num hide-narrow">
                      Failed
                    </th>
                    <th scope="col" className="num">
                      Fail rate
                    </th>
                    <th scope="col" className="num hide-narrow" title={ESTIMATE_NOTE}>
                      p50
                    </th>
                    <th scope="col" className="num" title={ESTIMATE_NOTE}>
                      p95
                    </th>
                    <th scope="col" className="num col-usage">
                      Tokens
                    </th>
                    <th scope="col" className="num col-usage">
                      Cost
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {[...d.by_agent]
                    .sort((a, b) => b.runs - a.runs)
                    .slice(0, allAgents ? undefined : AGENT_ROWS)
                    .map((a) => (
                      <tr key={a.agent_id}>
                        <td className="stats-agent" title={a.agent_id}>
                          <Link
                            to={`/stats?agent=${encodeURIComponent(a.agent_id)}&range=${safeRange}`}
                          >
                            {a.agent_id}
                          </Link>
                        </td>
                        <td className="num">{a.runs.toLocaleString()}</td>
                        <td className="num hide-narrow">
                          {(a.by_status.failed + a.by_status.timed_out).toLocaleString()}
                        </td>
                        <td className={`num${a.fail_rate ? ' bad' : ''}`}>
                          {formatPercent(a.fail_rate)}
                        </td>
                        <td className="num hide-narrow" title={ESTIMATE_NOTE}>
                          {estimate(a.p50_duration_ms)}
                        </td>
                        <td className="num" title={ESTIMATE_NOTE}>
                          {estimate(a.p95_duration_ms)}
                        </td>
                        <td className="num col-usage">{formatTokens(a.total_tokens)}</td>
                        <td className="num col-usage">{formatCost(a.cost_usd)}</td>
                      </tr>
                    ))}
                </tbody>
              </table>
            </div>
            {d.by_agent.length > AGENT_ROWS ? (
              <button
                type="button"
                className="link-btn show-all"
                aria-expanded={allAgents}
                onClick={() => setAllAgents((v) => !v)}
              >
                {allAgents ? 'Show the busiest 20' : `Show all ${d.by_agent.length} agents`}
              </button>
            ) : null}
          </section>
        </>
      ) : null}
    </div>
  );
}

const UNPRICED_TITLE =
  'These tokens have no known price, so the cost leaves them out: add one under Settings → Model prices';

/**
 * What the range's runs spent on each model, most cost first: the runs that called it, its
 * calls, tokens and cost, and its share of the cost. Steps that name no model show as one row.
 */
function ByModel({
  models,
  range,
  agentId,
}: {
  models: StatsResponse['by_model'];
  /** The stats' range, for the link to a model's runs. */
  range: { from: string; to: string };
  agentId: string;
}) {
  const runsOf = (model: string) =>
    runsPath({
      model,
      from: range.from,
      to: range.to,
      ...(agentId ? { agent: agentId } : {}),
    });
  if (models.length === 0) return null;
  const total = models.reduce((sum, m) => sum + m.cost_usd, 0);
  return (
    <section className="section" aria-labelledby="by-model">
      <h2 id="by-model">By model</h2>
      <div className="table-wrap">
        <table className="data-table by-model">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" className="num hide-narrow">
                Runs
              </th>
              <th scope="col" className="num">
                Calls
              </th>
              <th scope="col" className="num hide-narrow">
                Input
              </th>
              <th scope="col" className="num hide-narrow">
                Output
              </th>
              <th scope="col" className="num">
                Tokens
              </th>
              <th scope="col" className="num">
                Cost
              </th>
              <th scope="col" className="share-col hide-narrow">
                Share of cost
              </th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => {
              // a model at no known price has no share to show, not 0%
              const share = total > 0 && !costUnknown(m) ? m.cost_usd / total : null;
              return (
                <tr key={m.model ?? ''}>
                  <td className="stats-agent" title={m.model ?? 'Steps that name no model'}>
                    {m.model ? (
                      <Link to={runsOf(m.model)} title={`The runs that called ${m.model}`}>
                        {m.model}
                      </Link>
                    ) : (
                      <span className="muted">(no model)</span>
                    )}
                  </td>
                  <td className="num hide-narrow">{m.runs.toLocaleString()}</td>
                  <td className="num">{m.calls.toLocaleString()}</td>
                  <td className="num hide-narrow">{formatTokens(m.input_tokens)}</td>
                  <td className="num hide-narrow">{formatTokens(m.output_tokens)}</td>
                  <td className="num">{formatTokens(m.total_tokens)}</td>
                  <td className="num">
                    {costUnknown(m) ? (
                      <Link to="/settings" className="muted" title={UNPRICED_TITLE}>
                        no price
                      </Link>
                    ) : (
                      formatCost(m.cost_usd)
                    )}
                  </td>
                  <td className="share-col hide-narrow">
                    {share === null ? (
                      <span className="muted">—</span>
                    ) : (
                      <span className="share">
                        <span className="share-bar" aria-hidden="true">
                          <span style={{ width: `${Math.max(share * 100, share > 0 ? 1 : 0)}%` }} />
                        </span>
                        <span className="share-pct">{formatPercent(share)}</span>
                      </span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

const SCORE_TYPE_LABELS: Record<StatsScore['type'], string> = {
  numeric: 'Number',
  boolean: 'Yes / no',
  categorical: 'Label',
};

/** How many of a name's labels its row shows, most given first. */
const TOP_LABELS = 3;

/** A name's mean: the share of yes for a yes/no score ("75%" and a thumb up), else the number. */
function ScoreAverage({ score }: { score: StatsScore }) {
  if (score.avg === null) return <span className="muted">—</span>;
  if (score.type !== 'boolean') return <>{formatScoreNumber(score.avg)}</>;
  const yes = booleanText(score.name, true);
  return (
    <span title={`${formatPercent(score.avg)} of the values are ${yes.text}`}>
      {formatPercent(score.avg)}{' '}
      {yes.thumb ? <ThumbIcon dir={yes.thumb} label={yes.text} /> : yes.text}
    </span>
  );
}

/**
 * The scores given in the range, by name, most given first: how many, on how many runs, their
 * mean (the share of yes for a yes/no score), range and most given labels. A name leads to the
 * runs with such a score. Nothing when no run was scored.
 */
function ByScore({
  scores,
  range,
  agentId,
}: {
  scores: StatsResponse['by_score'];
  range: { from: string; to: string };
  agentId: string;
}) {
  if (scores.length === 0) return null;
  const runsOf = (score: string) =>
    runsPath({
      score,
      from: range.from,
      to: range.to,
      ...(agentId ? { agent: agentId } : {}),
    });
  return (
    <section className="section" aria-labelledby="by-score">
      <h2 id="by-score">Scores</h2>
      <div className="table-wrap">
        <table className="data-table by-score">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col" className="hide-narrow">
                Type
              </th>
              <th scope="col" className="num">
                Scores
              </th>
              <th scope="col" className="num hide-narrow">
                Runs
              </th>
              <th scope="col" className="num">
                Average
              </th>
              <th scope="col" className="num hide-narrow">
                Min – max
              </th>
              <th scope="col">Top labels</th>
            </tr>
          </thead>
          <tbody>
            {scores.map((s) => {
              const labels = Object.entries(s.labels).sort((a, b) => b[1] - a[1]);
              return (
                <tr key={s.name}>
                  <td className="stats-agent" title={s.name}>
                    <Link to={runsOf(s.name)} title={`The runs scored ${s.name}`}>
                      {s.name}
                    </Link>
                  </td>
                  <td className="hide-narrow">{SCORE_TYPE_LABELS[s.type]}</td>
                  <td className="num">{s.n.toLocaleString()}</td>
                  <td className="num hide-narrow">{s.runs.toLocaleString()}</td>
                  <td className="num">
                    <ScoreAverage score={s} />
                  </td>
                  <td className="num hide-narrow">
                    {s.min === null || s.max === null || s.type === 'boolean' ? (
                      <span className="muted">—</span>
                    ) : s.min === s.max ? (
                      formatScoreNumber(s.min)
                    ) : (
                      `${formatScoreNumber(s.min)} – ${formatScoreNumber(s.max)}`
                    )}
                  </td>
                  <td className="score-labels">
                    {labels.length === 0 ? (
                      <span className="muted">—</span>
                    ) : (
                      <>
                        {labels.slice(0, TOP_LABELS).map(([label, n]) => (
                          <span key={label} className="score-label" title={`${label}: ${n}`}>
                            {label} <span className="muted">{n.toLocaleString()}</span>
                          </span>
                        ))}
                        {labels.length > TOP_LABELS ? (
                          <span
                            className="muted"
                            title={labels
                              .slice(TOP_LABELS)
                              .map(([l, n]) => `${l}: ${n}`)
                              .join('\n')}
                          >
                            +{labels.length - TOP_LABELS} more
                          </span>
                        ) : null}
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/**
 * Where a range's first whole bucket starts, so its total reads against another count of "the
 * last 24 hours" (the Agents page's, which runs back from now): an hour, or a day by its date,
 * in the viewer's time (the days the page asks for are the browser's zone's), as the charts
 * name them. An hour on an earlier day than `now` says which: at 7:25 AM the last 24 hours
 * start at 8:00 AM yesterday, and "since 8:00 AM" alone read as an hour still to come.
 * @example sinceText('2026-12-06T08:00:00.000Z', 'hour', { now: Date.parse('2026-12-07T07:25:00.000Z'), zone: 'UTC', locale: 'en-US' }) // 'yesterday 8:00 AM'
 */
export function sinceText(
  from: string,
  bucket: StatsResponse['bucket'],
  { now = Date.now(), zone, locale }: { now?: number; zone?: string; locale?: string } = {},
): string {
  const at = Date.parse(from);
  if (bucket === 'day') return localDate(zone ?? statsZone(), at);
  // an hour reads in the browser's zone, as the charts' hours do
  const timeZone = zone ?? systemZone();
  const time = new Date(at).toLocaleTimeString(locale, {
    timeZone,
    hour: 'numeric',
    minute: '2-digit',
  });
  const daysBack = localDayOf(timeZone, now) - localDayOf(timeZone, at);
  if (daysBack <= 0) return time;
  if (daysBack === 1) return `yesterday ${time}`;
  return new Date(at).toLocaleString(locale, {
    timeZone,
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
  });
}
