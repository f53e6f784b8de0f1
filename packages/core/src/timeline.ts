import type { Run, Step, Timeline, TimelineEvent } from './schemas.js';
import { toIso } from './time.js';
import type { TimelineEventType } from './enums.js';

// Events at the same instant keep lifecycle order: a run starts before its steps and ends
// after them; steps among themselves go in tree order (`stepTour`).
const ORDER: Record<TimelineEventType, number> = {
  RUN_QUEUED: 0,
  RUN_STARTED: 1,
  STEP_ENDED: 2,
  STEP_STARTED: 2,
  CANCEL_REQUESTED: 3,
  RUN_ENDED: 4,
};

function ms(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}

/**
 * Shapes a run and its steps into time-ordered start/end events. Nested steps carry their
 * parent and depth; a step or run still in progress is measured up to `now`.
 * @example buildTimeline(run, steps, Date.now()).events[0]?.type // 'RUN_QUEUED' or 'RUN_STARTED'
 */
export function buildTimeline(run: Run, steps: readonly Step[], now: number): Timeline {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const tour = stepTour(steps);
  const depthOf = new Map<string, number>();
  const depth = (step: Step): number => {
    const known = depthOf.get(step.id);
    if (known !== undefined) return known;
    // walk up to the top or to an ancestor whose depth is known, then give every step on
    // the way its depth: each step is walked once, not once per descendant (a chain of
    // 5,000 nested steps took 1.5 s). A parent cycle in caller data ends the walk.
    const path: Step[] = [];
    const onPath = new Set<string>();
    let base = -1;
    for (let cur: Step | undefined = step; cur && !onPath.has(cur.id);) {
      const d = depthOf.get(cur.id);
      if (d !== undefined) {
        base = d;
        break;
      }
      onPath.add(cur.id);
      path.push(cur);
      cur = cur.parent_step_id ? byId.get(cur.parent_step_id) : undefined;
    }
    for (let k = path.length - 1; k >= 0; k--) depthOf.set(path[k]!.id, base + path.length - k);
    return depthOf.get(step.id)!;
  };

  const events: (TimelineEvent & {
    at: number;
    order: number;
    nest: number;
    seq: number;
    phase: number;
  })[] = [];
  const push = (
    type: TimelineEventType,
    at: number,
    data: Record<string, unknown>,
    seq = 0,
    order: number = ORDER[type],
    nest = 0,
  ) =>
    events.push({
      type,
      timestamp: toIso(at),
      data,
      at,
      order,
      nest,
      seq,
      // a step's own start before its end, should both share an instant and an order
      phase: type === 'STEP_ENDED' ? 1 : 0,
    });

  const runStart = ms(run.started_at);
  const runEnd = ms(run.ended_at);
  const queued = ms(run.queued_at);
  if (queued !== null) push('RUN_QUEUED', queued, { run_id: run.id, trigger: run.trigger });
  if (runStart !== null)
    push('RUN_STARTED', runStart, { run_id: run.id, agent_id: run.agent_id, input: run.input });

  let maxDepth = 0;
  for (const step of steps) {
    const start = ms(step.started_at) ?? ms(step.ended_at);
    if (start === null) continue;
    // a step that only reported its end is placed there, and its duration stays unknown
    const startKnown = step.started_at !== null;
    const end = ms(step.ended_at);
    const d = depth(step);
    maxDepth = Math.max(maxDepth, d);
    const inProgress = step.status === 'running' && end === null;
    // a step left running in a finished run is measured up to the run's end
    const until = inProgress ? (runEnd ?? now) : (end ?? start);
    push(
      'STEP_STARTED',
      start,
      // written out, not spread from a shared part: 10,000 spread objects cost 50 ms
      {
        step_id: step.id,
        parent_step_id: step.parent_step_id,
        depth: d,
        type: step.type,
        name: step.name,
        model: step.model,
        in_progress: inProgress,
        duration_ms: startKnown ? Math.max(0, until - start) : null,
      },
      step.seq,
      ORDER.STEP_STARTED,
      // steps in the same instant: a parent's start before its children's
      tour.get(step.id)!.enter,
    );
    if (!inProgress) {
      const endAt = end ?? start;
      push(
        'STEP_ENDED',
        endAt,
        {
          step_id: step.id,
          parent_step_id: step.parent_step_id,
          depth: d,
          type: step.type,
          name: step.name,
          status: step.status,
          duration_ms:
            step.duration_ms ?? (startKnown ? Math.max(0, (end ?? start) - start) : null),
          input_tokens: step.input_tokens,
          output_tokens: step.output_tokens,
          cost_usd: step.cost_usd,
          error: step.error,
        },
        step.seq,
        ORDER.STEP_ENDED,
        // steps in the same instant (nested SDK steps are): a parent's end after its
        // children's, a step's end before the start of a sibling after it
        tour.get(step.id)!.exit,
      );
    }
  }
  const cancel = ms(run.cancel_requested_at);
  if (cancel !== null) push('CANCEL_REQUESTED', cancel, { run_id: run.id });
  if (runEnd !== null)
    push('RUN_ENDED', runEnd, {
      run_id: run.id,
      status: run.status,
      duration_ms: run.duration_ms,
      output: run.output,
      error: run.error,
    });

  events.sort(
    (a, b) =>
      a.at - b.at || a.order - b.order || a.nest - b.nest || a.seq - b.seq || a.phase - b.phase,
  );
  const inProgress = runEnd === null;
  const duration =
    run.duration_ms ?? (runStart !== null ? Math.max(0, (runEnd ?? now) - runStart) : null);
  return {
    summary: {
      run_id: run.id,
      status: run.status,
      started_at: run.started_at,
      ended_at: run.ended_at,
      duration_ms: duration,
      in_progress: inProgress,
      step_count: run.step_count,
      error_count: run.error_count,
      max_depth: maxDepth,
      total_tokens: run.total_tokens,
      cost_usd: run.cost_usd,
    },
    events: events.map(({ type, timestamp, data }) => ({ type, timestamp, data })),
  };
}

/** A step placed in its run's tree. */
export interface PlacedStep {
  step: Step;
  /** 0 at the top level. */
  depth: number;
  hasChildren: boolean;
  /** The last of its siblings (where a tree drawing turns the corner). */
  last: boolean;
}

/**
 * Where a step's bar starts, epoch ms: its start, else its end (a step recorded only by its
 * end is drawn there, and the server lists it there), else `Infinity`.
 */
export function stepPlace(step: Pick<Step, 'started_at' | 'ended_at'>): number {
  const at = step.started_at ?? step.ended_at;
  return at ? Date.parse(at) : Infinity;
}

/** Siblings by where their bars start, then `seq`. */
function byStart(a: Step, b: Step): number {
  // two unknown places give NaN, which falls through to seq like a tie
  return stepPlace(a) - stepPlace(b) || a.seq - b.seq;
}

/**
 * The steps under each parent id, in the given order; `null` holds the top level: steps
 * without a parent, with one not among `steps`, or their own parent.
 */
function stepChildren(steps: readonly Step[]): Map<string | null, Step[]> {
  const ids = new Set(steps.map((s) => s.id));
  const children = new Map<string | null, Step[]>();
  for (const s of steps) {
    const parent =
      s.parent_step_id && ids.has(s.parent_step_id) && s.parent_step_id !== s.id
        ? s.parent_step_id
        : null;
    const list = children.get(parent);
    if (list) list.push(s);
    else children.set(parent, [s]);
  }
  return children;
}

/**
 * Each step's place in a walk of the step tree (siblings in `orderStepTree`'s order): `enter`
 * when the walk reaches it, `exit` once it is through its children. Events of one instant in
 * this order nest: a parent starts before its children start and ends after they end, and a
 * step ends before a later sibling starts. Steps reachable only through a parent cycle are
 * walked last, each from itself.
 */
function stepTour(steps: readonly Step[]): Map<string, { enter: number; exit: number }> {
  const children = stepChildren(steps);
  const tour = new Map<string, { enter: number; exit: number }>();
  let tick = 0;
  // an explicit stack, not recursion: deep nesting must not overflow the call stack
  const stack: { step: Step; done: boolean }[] = [];
  const walk = (kids: readonly Step[]) => {
    for (let k = kids.length - 1; k >= 0; k--) stack.push({ step: kids[k]!, done: false });
    while (stack.length > 0) {
      const top = stack.pop()!;
      if (top.done) {
        tour.get(top.step.id)!.exit = tick++;
        continue;
      }
      if (tour.has(top.step.id)) continue;
      tour.set(top.step.id, { enter: tick++, exit: 0 });
      stack.push({ step: top.step, done: true });
      const own = [...(children.get(top.step.id) ?? [])].sort(byStart);
      for (let k = own.length - 1; k >= 0; k--) stack.push({ step: own[k]!, done: false });
    }
  };
  walk([...(children.get(null) ?? [])].sort(byStart));
  for (const s of steps) if (!tour.has(s.id)) walk([s]);
  return tour;
}

/**
 * Steps in tree order (each parent followed by its children), siblings by start time (or
 * end time for a step recorded only by its end; one with neither last), then `seq`, then the
 * given order. A step whose parent is unknown, or
 * itself, sits at the top level; steps reachable only through a parent cycle come last, at
 * the top level. The dashboard's timeline and `runlog runs show` both draw this order.
 * @example orderStepTree(steps).map((p) => `${'  '.repeat(p.depth)}${p.step.name}`)
 */
export function orderStepTree(steps: readonly Step[]): PlacedStep[] {
  const children = stepChildren(steps);
  const out: PlacedStep[] = [];
  const seen = new Set<string>();
  // an explicit stack, not recursion: deep nesting must not overflow the call stack
  const stack: { step: Step; depth: number; last: boolean }[] = [];
  const pushChildren = (parent: string | null, depth: number): boolean => {
    const kids = (children.get(parent) ?? []).sort(byStart);
    for (let k = kids.length - 1; k >= 0; k--)
      stack.push({ step: kids[k]!, depth, last: k === kids.length - 1 });
    return kids.length > 0;
  };
  pushChildren(null, 0);
  while (stack.length > 0) {
    const { step, depth, last } = stack.pop()!;
    if (seen.has(step.id)) continue;
    seen.add(step.id);
    const placed: PlacedStep = { step, depth, hasChildren: false, last };
    out.push(placed);
    placed.hasChildren = pushChildren(step.id, depth + 1);
  }
  for (const s of steps)
    if (!seen.has(s.id)) out.push({ step: s, depth: 0, hasChildren: false, last: true });
  return out;
}
