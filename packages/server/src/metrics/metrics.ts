/** Counters and gauges for `GET /metrics` in Prometheus text format, without labels. */
export class Metrics {
  private readonly counters = new Map<string, { help: string; value: number }>();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  counter(name: string, help: string): (by?: number) => void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help, value: 0 };
      this.counters.set(name, c);
    }
    const counter = c;
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
      lines.push(`${name} ${c.value}`);
    }
    for (const [name, g] of this.gauges) {
      lines.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.read()}`);
    }
    return lines.join('\n') + '\n';
  }
}
