import { uuidv7 } from 'uuidv7';

/**
 * A new time-sortable id (UUIDv7), generated in code so both databases agree.
 * @example newId() // '01933b7e-...'
 */
export function newId(): string {
  return uuidv7();
}
