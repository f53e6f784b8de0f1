import { AppError } from './errors.js';

/**
 * The most objects and arrays one request body may hold. Parsed, each takes some 100 bytes of
 * heap: 64 MiB of `[{},{},...]` (22 million) held the event loop for 20 s and the process at
 * 2 GB, where a million take a quarter of a second. Recorded payloads are text, whatever their
 * size: a batch of a thousand events, each with a conversation of a hundred messages, holds
 * some 300,000.
 */
export const MAX_JSON_CONTAINERS = 1_000_000;

/** `{`, `[` and the start of a string, whose text is skipped. */
const STRUCTURE = /["[{]/g;

/**
 * Whether JSON text holds at most `max` objects and arrays, counted before it is parsed (a
 * body too short to hold more is not read). Text that is not JSON is left to the parser.
 * @example jsonContainersWithin('{"a":[1,{}]}', 2) // false
 */
export function jsonContainersWithin(text: string, max = MAX_JSON_CONTAINERS): boolean {
  // an array at least is one character (`[[[...]]]`)
  if (text.length <= max) return true;
  let n = 0;
  STRUCTURE.lastIndex = 0;
  for (let m = STRUCTURE.exec(text); m !== null; m = STRUCTURE.exec(text)) {
    if (m[0] !== '"') {
      if (++n > max) return false;
      continue;
    }
    // past the string's closing quote: the first not escaped by an odd run of backslashes
    let end = STRUCTURE.lastIndex;
    for (;;) {
      end = text.indexOf('"', end);
      if (end < 0) return true;
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
      end++;
      if (slashes % 2 === 0) break;
    }
    STRUCTURE.lastIndex = end;
  }
  return true;
}

/** The 413 for a body of more than `max` objects and arrays. */
export function tooManyContainers(max = MAX_JSON_CONTAINERS): AppError {
  const message = `over ${max.toLocaleString('en-US')} objects and arrays in one request: send smaller batches`;
  return new AppError('payload_too_large', `body: ${message}`, [{ field: 'body', message }]);
}
