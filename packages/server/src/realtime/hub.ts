import type { Run, RunStatus, Step } from '@runlog/core';

/**
 * A committed change, as the hub carries it between the write path and subscribers. `run`
 * and `step` may be getters that shape the API object on first read, so a listener that
 * routes by ids, agent and status (the claim waiters, the PostgreSQL bridge, WebSocket
 * topics nobody subscribed to) costs the write path nothing more.
 */
export type HubEvent =
  | {
      kind: 'run';
      projectId: string;
      runId: string;
      agentId: string;
      status: RunStatus;
      /** Epoch ms of the row's `updated_at`. */
      updatedAt: number;
      run: Run;
    }
  | { kind: 'step'; projectId: string; runId: string; stepId: string; step: Step };

export type HubListener = (event: HubEvent) => void;

/**
 * The in-process event hub. The write path publishes here only after commit; WebSocket
 * connections and other listeners (on PostgreSQL, the LISTEN/NOTIFY bridge) subscribe.
 */
export class EventHub {
  private readonly listeners = new Set<HubListener>();

  subscribe(listener: HubListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delivers to local listeners only. */
  deliver(event: HubEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // a failing subscriber must never break the write path that published
      }
    }
  }

  /** Publishes a committed change: to local listeners and, when bridged, to other instances. */
  publish(event: HubEvent): void {
    this.deliver(event);
    this.onPublish?.(event);
  }

  /** Whether anyone listens: the write path skips shaping events nobody would receive. */
  get active(): boolean {
    return this.listeners.size > 0 || this.onPublish !== undefined;
  }

  /** Set by a cross-instance bridge (PostgreSQL NOTIFY). */
  onPublish: ((event: HubEvent) => void) | undefined;
}
