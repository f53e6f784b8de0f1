import { useMemo, useRef, type FocusEvent } from 'react';

/**
 * For a control that can leave the page while it has the keyboard focus (Stop as its run
 * ends): spread `props` on it, and call `handOff(...candidates)` once it may be gone. If it
 * had the focus and the focus fell to the page's body, the first candidate that can take it
 * gets it, rather than the user starting over from the top of the page.
 * @example const stop = useFocusHandoff(); useEffect(() => { if (!active) stop.handOff(retry.current) }, [active]);
 */
export function useFocusHandoff() {
  const had = useRef(false);
  return useMemo(
    () => ({
      props: {
        onFocus: () => {
          had.current = true;
        },
        onBlur: (e: FocusEvent<HTMLElement>) => {
          const el = e.currentTarget;
          // a control taken off the page may be blurred as it goes: it is gone by the next
          // microtask, and then it still counts as having had the focus
          queueMicrotask(() => {
            if (el.isConnected) had.current = false;
          });
        },
      },
      handOff: (...candidates: (HTMLElement | null | undefined)[]) => {
        if (!had.current) return;
        had.current = false;
        const active = document.activeElement;
        if (active && active !== document.body) return;
        candidates.find((c) => c?.isConnected && !c.matches(':disabled'))?.focus();
      },
    }),
    [],
  );
}

/** Focuses `el` if the focus is nowhere (on the body): for a status that replaced a control. */
export function focusIfLost(el: HTMLElement | null): void {
  const active = document.activeElement;
  if (el && (!active || active === document.body)) el.focus();
}
