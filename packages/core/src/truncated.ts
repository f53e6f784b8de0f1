/**
 * The stored form of a JSON field over the size limit. Its own module, free of zod, so the
 * dashboard can check for it without bundling the schemas.
 */

/** The key that marks a JSON field stored truncated because it was over the size limit. */
export const TRUNCATED_MARKER = '__runlog_truncated__';

/** What a JSON field over the size limit reads as: its size and the start of its text. */
export interface TruncatedJson {
  [TRUNCATED_MARKER]: true;
  /** Bytes of the JSON text as sent. */
  original_size: number;
  /** The first part of that text. */
  preview: string;
}

/**
 * The JSON fields of runs and steps: each may be stored truncated, and lists and list topics
 * may carry a large one as a preview.
 */
export const PAYLOAD_FIELDS = ['input', 'output', 'error', 'metadata'] as const;

/** Whether a stored JSON value is the marker of a truncated one. */
export function isTruncatedJson(value: unknown): value is TruncatedJson {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Partial<TruncatedJson>)[TRUNCATED_MARKER] === true
  );
}

/**
 * The marker of a JSON text of `originalSize` bytes, its first `chars` UTF-16 units as the
 * preview, never ending in half a surrogate pair (half an emoji is not valid Unicode).
 * @example truncatedJson('"abc"', 5, 3) // { __runlog_truncated__: true, original_size: 5, preview: '"ab' }
 */
export function truncatedJson(text: string, originalSize: number, chars: number): TruncatedJson {
  let keep = Math.max(0, Math.min(chars, text.length));
  const last = text.charCodeAt(keep - 1);
  if (keep < text.length && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return { [TRUNCATED_MARKER]: true, original_size: originalSize, preview: text.slice(0, keep) };
}
