import { useState } from 'react';
import {
  MAX_METADATA_FILTERS,
  METADATA_KEY_MAX,
  METADATA_VALUE_MAX,
  filterableMetadata,
  parseMetadataPair,
} from '@runlog/core';

/**
 * The filter value that finds a run by a top-level metadata value: a string as it is, a number
 * or a boolean as JSON writes it; `undefined` for an object, an array, null, or a value
 * `GET /runs` cannot filter on (`filterableMetadata`).
 * @example metadataFilterValue('pr', 42) // '42'
 */
export function metadataFilterValue(key: string, value: unknown): string | undefined {
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : undefined;
  return text !== undefined && filterableMetadata(key, text) ? text : undefined;
}

/**
 * A metadata filter as typed in the Runs page's field (`env=prod`) to add to those it has:
 * the key ends at the first `=`, so a value may hold one; spaces around the `=` and the ends
 * are dropped (`env = prod` is env=prod, as people write it). The reason it cannot be added
 * otherwise, said so that the person can fix it.
 * @example readMetadataFilter('env=prod', {}) // { key: 'env', value: 'prod' }
 */
export function readMetadataFilter(
  text: string,
  current: Readonly<Record<string, string>>,
): { key: string; value: string } | { error: string } {
  const pair = parseMetadataPair(text.trim());
  if (!text.includes('=')) return { error: 'Write it as key=value, e.g. env=prod' };
  const key = pair?.[0].trimEnd() ?? '';
  const value = pair?.[1].trimStart() ?? '';
  if (!key) return { error: 'A key goes before the =, e.g. env=prod' };
  if (!value) return { error: `Give ${key} a value after the =, e.g. ${key}=prod` };
  if (key.length > METADATA_KEY_MAX)
    return { error: `A key is at most ${METADATA_KEY_MAX} characters` };
  if (value.length > METADATA_VALUE_MAX)
    return { error: `A value is at most ${METADATA_VALUE_MAX} characters` };
  if (!filterableMetadata(key, value)) return { error: 'This key or value cannot be filtered on' };
  if (Object.hasOwn(current, key))
    return {
      error:
        current[key] === value
          ? `${key} = ${value} is a filter already`
          : `${key} is a filter already (= ${current[key]}): remove that chip first`,
    };
  if (Object.keys(current).length >= MAX_METADATA_FILTERS)
    return { error: `At most ${MAX_METADATA_FILTERS} metadata filters: remove one first` };
  return { key, value };
}

/**
 * The Runs page's Metadata field: `key=value` and Enter adds the filter (a chip); what cannot
 * be added is said under the field and stays to be fixed.
 */
export function MetadataFilterField({
  id,
  filter,
  onAdd,
}: {
  id: string;
  filter: Readonly<Record<string, string>>;
  onAdd: (key: string, value: string) => void;
}) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const add = () => {
    if (!text.trim()) return setError(undefined);
    const read = readMetadataFilter(text, filter);
    if ('error' in read) return setError(read.error);
    setError(undefined);
    setText('');
    onAdd(read.key, read.value);
  };
  return (
    <div className="field metadata-field">
      <label htmlFor={id}>Metadata</label>
      <input
        id={id}
        type="text"
        placeholder="e.g. env=prod"
        title="key=value; Enter adds it"
        autoComplete="off"
        spellCheck={false}
        enterKeyHint="done"
        value={text}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-${error ? 'error' : 'hint'}`}
        onChange={(e) => {
          setText(e.target.value);
          setError(undefined);
        }}
        onKeyDown={(e) => {
          if (e.key !== 'Enter') return;
          // the filter bar is a form: Enter adds a chip, it does not submit
          e.preventDefault();
          add();
        }}
      />
      {error ? (
        <p id={`${id}-error`} className="field-error" role="alert">
          {error}
        </p>
      ) : (
        <span id={`${id}-hint`} className="sr-only">
          Runs whose metadata holds a key with a value, written key=value; Enter adds it.
        </span>
      )}
    </div>
  );
}
