import { useLayoutEffect, useState, type RefObject } from 'react';

/**
 * How far the element sits below the top of the document: a window-scrolled virtual list's
 * `scrollMargin`. Measured again whenever the page changes size, because what is above the
 * list may come after it (a run's scores load after its timeline): a margin measured once
 * then points the list at rows off screen, and the rows in sight are not drawn.
 * @example const top = useDocumentTop(listRef); useWindowVirtualizer({ scrollMargin: top, ... })
 */
export function useDocumentTop(ref: RefObject<HTMLElement | null>): number {
  const [top, setTop] = useState(0);
  useLayoutEffect(() => {
    const measure = () => {
      const el = ref.current;
      if (el) setTop(Math.round(el.getBoundingClientRect().top + window.scrollY));
    };
    measure();
    if (typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(measure);
    observer.observe(document.body);
    return () => observer.disconnect();
  }, [ref]);
  return top;
}
