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

/**
 * A comma list kept in the address bar (`agent=a,b`) as its items; none for a missing one.
 * @example listParam(new URLSearchParams('agent=a,b').get('agent')) // ['a', 'b']
 */
export function listParam(value: string | null): string[] {
  return value ? value.split(',').filter(Boolean) : [];
}

/**
 * The dashboard's page of one item of a section named by any text (a thread, a user): the id
 * is percent-encoded into one path segment.
 * @example itemPath('/users', 'dana/ops') // '/users/dana%2Fops'
 */
export function itemPath(section: string, id: string): string {
  return `${section}/${encodeURIComponent(id)}`;
}

/**
 * The id an `itemPath` names, read from the path as the address bar has it: the router's
 * params turn an encoded `%2F` into `/` a second time, which would misread an id that itself
 * holds "%2F". `undefined` for another path or a malformed encoding.
 * @example itemIdFromPath('/users', '/users/dana%2Fops') // 'dana/ops'
 */
export function itemIdFromPath(section: string, pathname: string): string | undefined {
  if (!pathname.startsWith(`${section}/`)) return undefined;
  const match = /^([^/]+)\/?$/.exec(pathname.slice(section.length + 1));
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
}

/**
 * A query string as links and the address bar show it: `[` and `]` as written, the way the
 * API documents `metadata[env]=prod`, not `%5B`/`%5D`. Both read back the same (a bracket is
 * no separator in a query), so a link copied from the address bar is the API's form.
 * @example searchText(new URLSearchParams({ 'metadata[env]': 'prod' })) // 'metadata[env]=prod'
 */
export function searchText(params: URLSearchParams): string {
  return params.toString().replace(/%5B/gi, '[').replace(/%5D/gi, ']');
}
