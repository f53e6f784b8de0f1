/**
 * Each agent as a choice names it: by its name, with its id beside a name that another agent
 * also has (`Support Bot (support-bot-staging)`), so two choices never read the same.
 * @example agentChoices([{ id: 'a', name: 'Bot' }, { id: 'b', name: 'Bot' }]) // [{ id: 'a', label: 'Bot (a)' }, { id: 'b', label: 'Bot (b)' }]
 */
export function agentChoices(
  agents: readonly { id: string; name: string }[],
): { id: string; label: string }[] {
  const named = new Map<string, number>();
  for (const a of agents) named.set(a.name, (named.get(a.name) ?? 0) + 1);
  return agents.map((a) => ({
    id: a.id,
    label: (named.get(a.name) ?? 0) > 1 && a.name !== a.id ? `${a.name} (${a.id})` : a.name,
  }));
}

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
        {agentChoices(agents ?? []).map((a) => (
          <option key={a.id} value={a.id}>
            {a.label}
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
