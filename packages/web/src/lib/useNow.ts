import { useMemo, useSyncExternalStore } from 'react';
import type { Run, Step } from '@runlog/core';
import { liveNow } from './format';

// One interval per period, shared by every component that ticks at that period.
const tickers = new Map<
  number,
  { now: number; listeners: Set<() => void>; timer?: ReturnType<typeof setInterval> }
>();

function ticker(period: number) {
  let t = tickers.get(period);
  if (!t) {
    t = { now: Date.now(), listeners: new Set() };
    tickers.set(period, t);
  }
  return t;
}

function subscribeTo(period: number) {
  return (listener: () => void) => {
    const t = ticker(period);
    t.listeners.add(listener);
    if (!t.timer) {
      t.now = Date.now();
      t.timer = setInterval(() => {
        t.now = Date.now();
        for (const l of t.listeners) l();
      }, period);
    }
    return () => {
      t.listeners.delete(listener);
      if (t.listeners.size === 0) {
        clearInterval(t.timer);
        t.timer = undefined;
      }
    };
  };
}

const subscribers = new Map<number, (l: () => void) => () => void>();
const noSubscribe = () => () => {};

/**
 * The current time, re-rendering every `period` ms while `enabled` (a finished run's
 * duration does not tick, so it does not re-render).
 */
export function useNow(period = 1000, enabled = true): number {
  let sub = subscribers.get(period);
  if (!sub) {
    sub = subscribeTo(period);
    subscribers.set(period, sub);
  }
  return (
    useSyncExternalStore(enabled ? sub : noSubscribe, () => (enabled ? ticker(period).now : 0)) ||
    Date.now()
  );
}

type Moments = Pick<Run | Step, 'started_at' | 'ended_at'>;

/**
 * The "now" a run's live durations are measured to: `useNow(1000, live)`, never before the
 * latest moment the run or its steps record (see `liveNow`). That moment is worked out when
 * they change, not on every tick.
 * @example const now = useLiveNow(isActive(run.status), run, steps);
 */
export function useLiveNow(live: boolean, run: Moments, steps?: readonly Moments[]): number {
  const tick = useNow(1000, live);
  const known = useMemo(() => liveNow(-Infinity, run, steps), [run, steps]);
  return Math.max(tick, known);
}
