/**
 * A JSON-safe copy of `value` as it is now: what the agent mutates later does not change what
 * was recorded, and nothing the agent hands us can make a request fail later. The plain
 * JSON round trip is the fast path; a value JSON refuses (a BigInt, a cycle, a throwing
 * `toJSON`) is copied with BigInts as strings and cycles as "[Circular]". Never throws.
 * @example snapshot({ n: 1n, f() {} }) // { n: '1' }
 */
export function snapshot(value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  try {
    const text = JSON.stringify(value, keepErrors);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return safeCopy(value);
  }
}

/**
 * An Error inside a recorded value (`{ ok: false, error }`): JSON writes it as `{}`, its
 * message and stack being no own enumerable properties; it is kept as the API stores errors.
 */
function keepErrors(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const { name, message, stack } = value;
  return { ...value, type: name, message, ...(stack ? { stack } : {}) };
}

/** The fields of an event that hold the agent's own values, copied by `snapshotFields`. */
interface AgentValues {
  input?: unknown;
  output?: unknown;
  metadata?: unknown;
  tags?: unknown;
}

/**
 * `fields` (an event's, built just now) with the agent's own values replaced by snapshots.
 * Only those: the rest is ours (ids, times, statuses, errors from `toRunError`), and copying
 * whole events would cost several times more per step.
 */
export function snapshotFields<T extends AgentValues>(fields: T): T {
  if (fields.input !== undefined) fields.input = snapshot(fields.input);
  if (fields.output !== undefined) fields.output = snapshot(fields.output);
  if (fields.metadata !== undefined) fields.metadata = snapshot(fields.metadata);
  if (fields.tags !== undefined) fields.tags = snapshot(fields.tags);
  return fields;
}

/**
 * The slow path of `snapshot`, what `JSON.stringify` would keep: BigInt becomes its decimal
 * string, an object met again inside itself "[Circular]" (a shared, non-circular one is
 * copied), functions and symbols are left out, and a `toJSON` or getter that throws, or a
 * value nested too deep, becomes "[Unserializable]".
 */
function safeCopy(value: unknown, ancestors: object[] = []): unknown {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'string':
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      return undefined; // functions, symbols, undefined
  }
  if (value === null) return null;
  if (ancestors.includes(value)) return '[Circular]';
  ancestors.push(value);
  try {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return safeCopy(toJSON.call(value), ancestors);
    if (value instanceof Error) return safeCopy(keepErrors('', value), ancestors);
    if (Array.isArray(value)) return value.map((v) => safeCopy(v, ancestors) ?? null);
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v = safeCopy((value as Record<string, unknown>)[key], ancestors);
      if (v !== undefined) copy[key] = v;
    }
    return copy;
  } catch {
    return '[Unserializable]';
  } finally {
    ancestors.pop();
  }
}
