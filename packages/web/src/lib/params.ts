/**
 * The address bar's query with `changes` made: a value set, an empty one or `null` removed.
 * Read from the address bar, not the router's `params`: the router renders a change in a
 * transition, so a second change before that render (a text field's blur, then a chip
 * click) would otherwise start from the params without the first one and drop it.
 * @example setParams(paramsWith({ agent: 'bug-triager', q: null }), { replace: true })
 */
export function paramsWith(changes: Record<string, string | null>): URLSearchParams {
  const next = new URLSearchParams(window.location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v) next.set(k, v);
    else next.delete(k);
  }
  return next;
}
