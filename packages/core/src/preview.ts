import { cutText, type RunError } from './schemas.js';
import { isTruncatedJson, type TruncatedJson } from './truncated.js';

/** Fields whose text is what a payload says, looked for in this order. */
const TEXT_FIELDS = [
  'input',
  'query',
  'question',
  'prompt',
  'message',
  'content',
  'text',
  'output',
  'answer',
  'reply',
  'response',
  'completion',
  'result',
] as const;

/** The text a JSON value says, when it says one: a string, or a string under a known field. */
function textOf(value: unknown, depth = 0): string | undefined {
  if (typeof value === 'string') return value;
  if (depth > 2 || value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  for (const field of TEXT_FIELDS) {
    const found = textOf(record[field], depth + 1);
    if (found !== undefined) return found;
  }
  // a chat payload: its last message says what this turn is about
  const { messages } = record;
  if (Array.isArray(messages) && messages.length > 0)
    return textOf(messages[messages.length - 1], depth + 1);
  return undefined;
}

/**
 * A text's lines as a conversation shows them: line breaks kept (a paragraph, a list, a code
 * block read as written), blank lines between paragraphs at most one, no trailing spaces.
 * @example keptLines('Steps:\r\n1. Restart  \n\n\n2. Retry\n') // 'Steps:\n1. Restart\n\n2. Retry'
 */
function keptLines(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map(withoutTrailingBlanks)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * `line` without the spaces and tabs it ends with, cut by hand: /[ \t]+$/m is tried from
 * every space of a long run of them, time quadratic in its length (50,000 held a page 3 s).
 */
function withoutTrailingBlanks(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  return line.slice(0, end);
}

/**
 * A payload (a run's input or output) as one line of at most `max` characters: its text
 * when it is a string or holds one under a field such as `query`, `message` or `content`
 * (a chat payload's last message), else its JSON. A payload stored truncated is said by
 * the start it kept. `null` for no payload. With `lines`, the text keeps its line breaks
 * (a conversation's turn), instead of running together as one line (a list's cell).
 * @example previewText({ messages: [{ role: 'user', content: 'Hi\nthere' }] }, 50) // 'Hi there'
 * @example previewText('Hi\nthere', 50, { lines: true }) // 'Hi\nthere'
 */
export function previewText(
  value: unknown,
  max: number,
  { lines = false }: { lines?: boolean } = {},
): string | null {
  if (value === null || value === undefined) return null;
  if (isTruncatedJson(value)) return previewJsonText(value.preview, max, { lines });
  const text = textOf(value) ?? JSON.stringify(value);
  return cutText(lines ? keptLines(text) : text.replace(/\s+/g, ' ').trim(), max);
}

/**
 * The value a JSON text cut short most likely began with: the text closed where it was
 * cut (an open string, arrays and objects), or else at an earlier comma between values;
 * `undefined` when no such reading parses.
 * @example parseJsonPrefix('{"q":"where is my ord') // { q: 'where is my ord' }
 */
export function parseJsonPrefix(text: string): unknown {
  const closers: string[] = [];
  /** Places just before a comma outside strings: a cut there ends a whole value. */
  const cuts: { at: number; closers: string }[] = [];
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') closers.push('}');
    else if (c === '[') closers.push(']');
    else if (c === '}' || c === ']') closers.pop();
    else if (c === ',') cuts.push({ at: i, closers: closers.join('') });
  }
  const tries: string[] = [];
  if (inString) {
    // an escape cut in half (`\`, `\u00`) is left out
    const open = text.replace(/\\(u[0-9a-fA-F]{0,3})?$/, '');
    tries.push(`${open}"${[...closers].reverse().join('')}`);
  } else tries.push(`${text}${[...closers].reverse().join('')}`);
  for (const cut of cuts.slice(-20).reverse())
    tries.push(`${text.slice(0, cut.at)}${[...cut.closers].reverse().join('')}`);
  for (const attempt of tries) {
    try {
      return JSON.parse(attempt) as unknown;
    } catch {
      // the next, shorter reading
    }
  }
  return undefined;
}

/**
 * A payload's JSON text, perhaps cut short (a stored payload's first characters, or a
 * truncated payload's kept start), as `previewText` says it: cut inside the JSON, as the
 * value it most likely began with (`parseJsonPrefix`), else as its text.
 * @example previewJsonText('"Where is my ord', 50) // 'Where is my ord'
 */
export function previewJsonText(
  text: string,
  max: number,
  options: { lines?: boolean } = {},
): string | null {
  try {
    return previewText(JSON.parse(text) as unknown, max, options);
  } catch {
    const value = parseJsonPrefix(text);
    return value !== undefined
      ? previewText(value, max, options)
      : previewText(text.startsWith('"') ? text.slice(1) : text, max, options);
  }
}

/**
 * A run's or a step's error as readers show it: `{message, type?, stack?}` as given, or, for
 * one given as a truncated value (over the size limit, or cut in a list), what its kept
 * start says, its message ending with a note of the error's whole size.
 * @example readableError({ __runlog_truncated__: true, original_size: 20000, preview: '{"message":"boom","stack":"at f' })
 * // { message: 'boom [cut: the error was 20,000 bytes]', stack: 'at f' }
 */
export function readableError(error: RunError | TruncatedJson): RunError {
  if (!isTruncatedJson(error)) return error;
  const value = parseJsonPrefix(error.preview);
  const kept = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const note = `[cut: the error was ${error.original_size.toLocaleString('en-US')} bytes]`;
  const message = text(kept.message);
  const type = text(kept.type);
  const stack = text(kept.stack);
  return {
    message: message ? `${message} ${note}` : note,
    ...(type !== undefined ? { type } : {}),
    ...(stack !== undefined ? { stack } : {}),
  };
}
