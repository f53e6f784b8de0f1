/**
 * A list page's Agent filter: every agent by name, and the agents a link named that the
 * list does not hold (`agent=a,b`, or one not there) as one more choice.
 */
export function AgentSelect({
  id,
  agents,
  value,
  onChange,
}: {
  id: string;
  agents: readonly { id: string; name: string }[] | undefined;
  value: readonly string[];
  onChange: (agent: string) => void;
}) {
  const [only] = value;
  return (
    <div className="field">
      <label htmlFor={id}>Agent</label>
      <select
        id={id}
        className="agent-select"
        value={value.join(',')}
        onChange={(e) => onChange(e.target.value)}
      >
        <option value="">All agents</option>
        {(agents ?? []).map((a) => (
          <option key={a.id} value={a.id}>
            {a.name}
          </option>
        ))}
        {value.length > 1 ? (
          <option value={value.join(',')}>{value.join(', ')}</option>
        ) : only && !agents?.some((a) => a.id === only) ? (
          <option value={only}>{only}</option>
        ) : null}
      </select>
    </div>
  );
}
