import {
  costUnknown,
  type Agent,
  type Run,
  type RunStatus,
  type RunTrigger,
  type Step,
  type StepType,
} from '@runlog/core';

/** Display metadata per run status; typed as a full Record so a new status fails the build. */
/** Icons are drawn in components/Status.tsx. */
export const RUN_STATUS_META: Record<RunStatus, { label: string }> = {
  queued: { label: 'Queued' },
  running: { label: 'Running' },
  succeeded: { label: 'Succeeded' },
  failed: { label: 'Failed' },
  cancelled: { label: 'Cancelled' },
  timed_out: { label: 'Timed out' },
};
export const RUN_STATUS_LIST = Object.keys(RUN_STATUS_META) as RunStatus[];

export const TRIGGER_LABELS: Record<RunTrigger, string> = {
  manual: 'Manual',
  schedule: 'Schedule',
  api: 'API',
  retry: 'Retry',
};
export const TRIGGER_LIST = Object.keys(TRIGGER_LABELS) as RunTrigger[];

export const STEP_TYPE_LABELS: Record<StepType, string> = {
  llm: 'LLM',
  tool: 'Tool',
  agent: 'Agent',
  think: 'Think',
  action: 'Action',
  evaluator: 'Evaluator',
  embedding: 'Embedding',
  retrieval: 'Retrieval',
  response: 'Response',
  custom: 'Custom',
};

/** Whether a run can still change state (Stop applies). */
export function isActive(status: RunStatus): boolean {
  return status === 'queued' || status === 'running';
}

/**
 * Whether a run ended without ever starting or using anything (cancelled while queued): its
 * tokens and cost are none at all, which 0 and $0 would not say. A run recorded by its end
 * alone (no start) with steps or usage is not one: its tokens and cost are shown.
 */
export function usedNothing(
  run: Pick<Run, 'status' | 'started_at' | 'step_count' | 'total_tokens' | 'cost_usd'>,
): boolean {
  return (
    !isActive(run.status) &&
    run.started_at === null &&
    run.step_count === 0 &&
    run.total_tokens === 0 &&
    run.cost_usd === 0
  );
}

/**
 * Whether a run waits queued and has recorded nothing yet: its tokens, cost and steps are not
 * known until it starts, which 0, $0 and 0 steps would read as measured. One that recorded
 * steps or usage while queued shows them.
 * @example notStartedYet({ ...run, status: 'queued', started_at: null }) // true (nothing recorded)
 */
export function notStartedYet(
  run: Pick<Run, 'status' | 'started_at' | 'step_count' | 'total_tokens' | 'cost_usd'>,
): boolean {
  return (
    run.status === 'queued' &&
    run.started_at === null &&
    run.step_count === 0 &&
    run.total_tokens === 0 &&
    run.cost_usd === 0
  );
}

/**
 * A run's duration in ms at `now`: the recorded one once it ends, else the time since it
 * started (ticking); null while queued.
 * @example runDuration({ ...run, status: 'running', started_at: iso(now - 1500) }, now) // 1500
 */
export function runDuration(
  run: Pick<Run, 'status' | 'started_at' | 'ended_at' | 'duration_ms'>,
  now: number,
): number | null {
  if (run.duration_ms !== null && !isActive(run.status)) return run.duration_ms;
  if (!run.started_at) return null;
  const start = Date.parse(run.started_at);
  const end = run.ended_at ? Date.parse(run.ended_at) : isActive(run.status) ? now : null;
  if (end === null) return run.duration_ms;
  return Math.max(0, end - start);
}

type Moments = Pick<Run, 'started_at' | 'ended_at'>;

/**
 * The "now" a live duration is measured to: the shared clock, but never before the latest
 * moment the run or its steps record. The clock ticks once a second, and the server's clock
 * may be ahead of this one: a step recorded since the last tick would otherwise run for
 * "-436 ms", and a running run would read shorter than a step inside it that has ended.
 * @example liveNow(tick, run, run.steps) // >= every started_at and ended_at in them
 */
export function liveNow(tick: number, run: Moments, steps: readonly Moments[] = []): number {
  const later = (now: number, iso: string | null) => {
    const t = iso ? Date.parse(iso) : NaN;
    return t > now ? t : now;
  };
  let now = later(later(tick, run.started_at), run.ended_at);
  for (const s of steps) now = later(later(now, s.started_at), s.ended_at);
  return now;
}

/**
 * A step's duration in ms at `now`: the recorded one once it ends, else (running) the time
 * since it started, never below 0; null when unknown.
 * @example stepDuration({ ...step, status: 'running', duration_ms: null, started_at: iso(now - 800) }, now) // 800
 */
export function stepDuration(
  step: Pick<Step, 'status' | 'started_at' | 'duration_ms'>,
  now: number,
): number | null {
  if (step.duration_ms !== null) return step.duration_ms;
  if (step.status !== 'running' || !step.started_at) return null;
  return Math.max(0, now - Date.parse(step.started_at));
}

/** 850 ms, 4.2 s, 3 m 05 s, 2 h 04 m. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  // each unit's range as its rounding shows it: 999.7 ms read "1000 ms", 9.97 s "10.0 s"
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 9.95) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.max(10, Math.floor(s))} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/**
 * "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago"; a future time reads "in ...", to
 * the nearest unit (a run starting in 2 h 59 min is "in 3 h"), where a time passed reads
 * whole units.
 */
export function formatRelative(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const diff = now - Date.parse(iso);
  const future = diff < 0;
  const a = Math.abs(diff) / 1000;
  if (a < 5) return 'just now';
  const count = future ? Math.round : Math.floor;
  for (const [unit, size, below] of RELATIVE_UNITS) {
    const n = count(a / size);
    if (n < below) return future ? `in ${n} ${unit}` : `${n} ${unit} ago`;
  }
  return new Date(iso).toLocaleDateString();
}

/** `formatRelative`'s units, in seconds: each up to the count where the next takes over. */
const RELATIVE_UNITS: readonly [string, number, number][] = [
  ['s', 1, 60],
  ['min', 60, 60],
  ['h', 3600, 24],
  ['d', 86_400, 60],
];

/**
 * The exact local time to the millisecond with its zone, for tooltips and run details. The
 * locale places the milliseconds, so a 12-hour clock reads "9:09:16.583 PM", not
 * "09:09:16 PM.583"; the zone ("GMT+1", "PST") says which clock it is, as the CLI and API
 * speak UTC and a screenshot travels.
 * @example formatExact('2026-12-05T20:19:13.423Z', 'en-US', 'Europe/Paris') // 'Dec 5, 2026, 9:19:13.423 PM GMT+1'
 */
export function formatExact(
  iso: string | null | undefined,
  locale?: string,
  timeZone?: string,
): string {
  if (!iso) return '';
  return new Date(iso).toLocaleString(locale, {
    timeZone,
    timeZoneName: 'short',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 3,
  });
}

/** 950, 12.3k, 4.5M. */
export function formatTokens(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  if (n < 1000) return String(n);
  // 999,600 rounds up to a million: "1.0M", not "1000k"
  if (n < 999_500) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/**
 * A cost: under $1 with three significant digits (trailing zeros dropped, at least two
 * decimals), so $0.013 and $0.0133 read apart; two decimals from $1; whole dollars from $100.
 * @example [0.0133, 0.0044, 0.25, 0.5, 1.234, 1234].map(formatCost) // ['$0.0133', '$0.0044', '$0.25', '$0.50', '$1.23', '$1,234']
 */
export function formatCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return '—';
  if (usd === 0) return '$0';
  if (usd < 0) return `-${formatCost(-usd)}`;
  if (usd < 1) {
    // toFixed, not toPrecision: that writes a millionth of a dollar as 1.00e-7
    const decimals = Math.min(12, Math.max(2, 2 - Math.floor(Math.log10(usd))));
    const text = usd.toFixed(decimals).replace(/0+$/, '');
    const [whole = '0', frac = ''] = text.split('.');
    return `$${whole}.${frac.padEnd(2, '0')}`;
  }
  if (usd < 100) return `$${usd.toFixed(2)}`;
  return `$${Math.round(usd).toLocaleString('en-US')}`;
}

/**
 * A limit in US dollars as it was set, exact: whole dollars without cents, so a budget of 20
 * reads "$20", not the "$20.00" of a measured cost; any cents to the digit set.
 * @example [20, 0.5, 0.125, 1250.5, 1e9].map(formatUsdLimit) // ['$20', '$0.50', '$0.125', '$1,250.50', '$1,000,000,000']
 */
export function formatUsdLimit(usd: number): string {
  return `$${usd.toLocaleString('en-US', {
    minimumFractionDigits: Number.isInteger(usd) ? 0 : 2,
    // a nano-dollar is the finest a limit is kept to
    maximumFractionDigits: 9,
  })}`;
}

/** Why a run with tokens shows no cost. */
export const UNPRICED_NOTE = 'No price known for its model: add one under Settings → Model prices';

/**
 * A run's cost: `$0` only when it was free; a run that used tokens at no recorded cost used a
 * model with no known price, which reads "—", not "$0".
 * @example runCost({ cost_usd: 0, total_tokens: 5200 }) // { text: '—', unpriced: true }
 */
export function runCost(run: Pick<Run, 'cost_usd' | 'total_tokens'>): {
  text: string;
  unpriced: boolean;
} {
  const unpriced = costUnknown(run);
  return { text: unpriced ? '—' : formatCost(run.cost_usd), unpriced };
}

/**
 * A cost on a chart's axis: like `formatCost`, but under $1 with the digits a tick needs, so
 * ticks at $0.005 steps do not all read "$0.01"; never fewer than cents, so a $0.50 tick
 * reads as the $1.00 one above it does.
 * @example [0.015, 0.5].map(formatCostTick) // ["$0.015", "$0.50"]
 */
export function formatCostTick(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || usd === 0 || usd >= 1) return formatCost(usd);
  const rounded = Number(usd.toPrecision(3));
  if (rounded >= 1) return formatCost(rounded);
  // toFixed, not String: a ten-millionth of a dollar would read "1e-7"
  const [, frac = ''] = rounded.toFixed(12).replace(/0+$/, '').split('.');
  return `$0.${frac.padEnd(2, '0')}`;
}

/**
 * 0.123 -> "12.3%"; null -> "—". A rate is never rounded to what it is not: some failures
 * are not "0.0%", and not all of them "100%" (1 in 5,000 reads "<0.1%", 4,999 ">99%").
 * @example [0, 0.0002, 0.05, 0.123, 0.996, 1].map(formatPercent) // ['0%', '<0.1%', '5.0%', '12%', '>99%', '100%']
 */
export function formatPercent(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return '—';
  const p = rate * 100;
  const text = p === 0 || p >= 10 ? p.toFixed(0) : p.toFixed(1);
  if (p > 0 && Number(text) === 0) return '<0.1%';
  if (p < 100 && Number(text) === 100) return '>99%';
  return `${text}%`;
}

/**
 * A rate on a chart's axis: with the digits its tick needs, so ticks at 0.02% steps do not
 * read "0.0%", "0.0%", "0.1%" (the last one 0.06%).
 * @example [0, 0.0002, 0.0006, 0.2].map(formatPercentTick) // ['0%', '0.02%', '0.06%', '20%']
 */
export function formatPercentTick(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return '—';
  // toPrecision drops float noise (0.2 * 100 = 20.000000000000004)
  return `${Number((rate * 100).toPrecision(3))}%`;
}

/** Short id for display: the last 8 characters of a UUID, or the caller's id as given. */
export function shortId(id: string): string {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(id) ? id.slice(-8) : id;
}

/** An agent's limits on one run, as `$1, 100k tokens, 50 steps`; null without any. */
export function limitsText(
  agent: Pick<Agent, 'max_cost_usd' | 'max_tokens' | 'max_steps'>,
): string | null {
  const parts = [
    agent.max_cost_usd !== null ? formatCost(agent.max_cost_usd) : null,
    agent.max_tokens !== null ? `${formatTokens(agent.max_tokens)} tokens` : null,
    agent.max_steps !== null ? `${agent.max_steps.toLocaleString('en-US')} steps` : null,
  ].filter((part) => part !== null);
  return parts.length > 0 ? parts.join(', ') : null;
}

/**
 * What a list searched by id says when nothing matches: the search in the title, what it
 * looked for and the way out in the body; `narrowed` when other filters narrow the runs too.
 * @example searchEmptyText({ one: 'user', many: 'users' }, 'dana', false).title // 'No users match “dana”'
 */
export function searchEmptyText(
  noun: { one: string; many: string },
  q: string,
  narrowed: boolean,
): { title: string; body: string } {
  return {
    title: `No ${noun.many} match “${q}”`,
    body: narrowed
      ? `No ${noun.one} whose id holds this text has runs these filters keep. Change or clear the search or the filters.`
      : `No ${noun.one} id holds this text, in any case. Change or clear the search.`,
  };
}
