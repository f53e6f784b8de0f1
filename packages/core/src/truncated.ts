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

/** Whether a stored JSON value is the marker of a truncated one. */
export function isTruncatedJson(value: unknown): value is TruncatedJson {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Partial<TruncatedJson>)[TRUNCATED_MARKER] === true
  );
}
