import { cutText } from './schemas.js';

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
 * A payload (a run's input or output) as one line of at most `max` characters: its text
 * when it is a string or holds one under a field such as `query`, `message` or `content`
 * (a chat payload's last message), else its JSON. `null` for no payload.
 * @example previewText({ messages: [{ role: 'user', content: 'Hi\nthere' }] }, 50) // 'Hi there'
 */
export function previewText(value: unknown, max: number): string | null {
  if (value === null || value === undefined) return null;
  const text = textOf(value) ?? JSON.stringify(value);
  return cutText(text.replace(/\s+/g, ' ').trim(), max);
}

/**
 * A payload's JSON text, perhaps cut short (a stored payload's first characters, or a
 * truncated payload's preview), as `previewText` says it: cut inside the JSON, its text
 * as it reads, a string without its opening quote.
 * @example previewJsonText('"Where is my ord', 50) // 'Where is my ord'
 */
export function previewJsonText(text: string, max: number): string | null {
  try {
    return previewText(JSON.parse(text) as unknown, max);
  } catch {
    return previewText(text.startsWith('"') ? text.slice(1) : text, max);
  }
}
