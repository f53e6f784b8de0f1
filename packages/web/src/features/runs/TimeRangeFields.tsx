import { localInput, urlInstant } from './runs.queries';

/**
 * From and To as local date-times, each kept in the URL as an instant (`urlInstant`);
 * `onChange` gets the changed one, null when emptied.
 */
export function TimeRangeFields({
  idPrefix,
  from,
  to,
  onChange,
}: {
  idPrefix: string;
  from: string;
  to: string;
  onChange: (changes: { from: string | null } | { to: string | null }) => void;
}) {
  return (
    <>
      <div className="field">
        <label htmlFor={`${idPrefix}-from`}>From</label>
        <input
          id={`${idPrefix}-from`}
          type="datetime-local"
          value={localInput(from)}
          onChange={(e) => onChange({ from: urlInstant(e.target.value) ?? null })}
        />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-to`}>To</label>
        <input
          id={`${idPrefix}-to`}
          type="datetime-local"
          value={localInput(to)}
          onChange={(e) => onChange({ to: urlInstant(e.target.value) ?? null })}
        />
      </div>
    </>
  );
}
