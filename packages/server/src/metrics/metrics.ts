/**
 * Prometheus labels as a series writes them, values escaped (`\\`, `"`, a line break):
 * `{code="503"}`; nothing for none.
 * @example labelSet({ agent: 'a"b' }) === '{agent="a\\"b"}'
 */
export function labelSet(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries
    .map(([k, v]) => `${k}="${v.replace(/[\\"\n]/g, (ch) => (ch === '\n' ? '\\n' : `\\${ch}`))}"`)
    .join(',')}}`;
}

/** Counters and gauges for `GET /metrics` in Prometheus text format. */
export class Metrics {
  /** By metric name: its help and its series, by rendered label set ('' for none). */
  private readonly counters = new Map<
    string,
    { help: string; series: Map<string, { value: number }> }
  >();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  /**
   * A counter, or one series of it when `labels` are given (`code="503"`): label values here
   * come from the server itself, never from a request, so each name keeps a few series.
   */
  counter(name: string, help: string, labels?: Record<string, string>): (by?: number) => void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help, series: new Map() };
      this.counters.set(name, c);
    }
    const key = labels ? labelSet(labels) : '';
    let series = c.series.get(key);
    if (!series) {
      series = { value: 0 };
      c.series.set(key, series);
    }
    const counter = series;
    return (by = 1) => {
      counter.value += by;
    };
  }

  gauge(name: string, help: string, read: () => number): void {
    this.gauges.set(name, { help, read });
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, c] of this.counters) {
      lines.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [labels, { value }] of c.series) lines.push(`${name}${labels} ${value}`);
    }
    for (const [name, g] of this.gauges) {
      lines.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.read()}`);
    }
    return lines.join('\n') + '\n';
  }
}
