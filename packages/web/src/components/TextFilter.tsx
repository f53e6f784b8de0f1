import { useEffect, useState } from 'react';

/** How long a text filter waits after the last key before it applies what was typed. */
export const TEXT_FILTER_DELAY_MS = 350;

/**
 * A text filter of a page's filter bar (a search, a source, a user), applied as the user
 * pauses typing or presses Enter, not on every key; what it applies is trimmed. To drop typing
 * not yet applied (a "Clear filters"), give it a new `key`.
 * @example <TextFilter id="users-q" label="Search" placeholder="Part of a user id" value={view.q} onCommit={(q) => set({ q })} grow />
 */
export function TextFilter({
  id,
  label,
  placeholder,
  value,
  onCommit,
  grow = false,
  maxLength,
}: {
  id: string;
  label: string;
  placeholder: string;
  value: string;
  onCommit: (v: string) => void;
  grow?: boolean;
  /** The most characters the API takes for this filter. */
  maxLength?: number;
}) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  useEffect(() => {
    if (text.trim() === value) return;
    const t = setTimeout(() => onCommit(text.trim()), TEXT_FILTER_DELAY_MS);
    return () => clearTimeout(t);
  }, [text, value, onCommit]);
  return (
    <div className={grow ? 'field field-grow' : 'field'}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="search"
        placeholder={placeholder}
        value={text}
        maxLength={maxLength}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') onCommit(text.trim());
        }}
      />
    </div>
  );
}
