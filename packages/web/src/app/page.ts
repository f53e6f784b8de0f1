import { useEffect } from 'react';

/**
 * Names the tab after the page: "<title> · Runlog".
 * @example useDocumentTitle('Runs') // the tab reads "Runs · Runlog"
 */
export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Runlog` : 'Runlog';
  }, [title]);
}

/**
 * After an in-app navigation to another path (not the first load, not a filter change in the
 * query string), moves focus to the new page's h1, so a keyboard or screen-reader user starts
 * on the new page rather than on whatever link led there (or on the body, once that link is
 * gone). A page still loading draws its h1 when its data comes: focus waits for it, unless
 * the user has meanwhile focused something on the page.
 */
export function useFocusHeadingOnNavigate(pathname: string, replaced: boolean): void {
  useEffect(() => {
    const from = shownPath;
    shownPath = pathname;
    // a redirect (to a run's own address, to where a login was headed) is not the user's move
    if (from === undefined || from === pathname || replaced) return;
    const main = document.getElementById('main');
    if (!main) return;
    const focus = (): boolean => {
      const active = document.activeElement;
      // the user went on to something on the new page: theirs, not ours
      if (active && active !== main && main.contains(active)) return true;
      const h1 = main.querySelector<HTMLElement>('h1[tabindex="-1"]');
      if (!h1) return false;
      h1.focus();
      return true;
    };
    if (focus()) return;
    const observer = new MutationObserver(() => {
      if (focus()) stop();
    });
    const timer = setTimeout(() => stop(), 15_000);
    const stop = () => {
      observer.disconnect();
      clearTimeout(timer);
    };
    observer.observe(main, { childList: true, subtree: true });
    return stop;
  }, [pathname, replaced]);
}

// the path last shown: none yet means the first load, which is no navigation (kept outside
// the component so React's development double effects do not count as one)
let shownPath: string | undefined;
