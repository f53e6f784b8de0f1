import type { Agent, Run, RunStatus, Step } from '@runlog/core';

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
  | {
      /** A run and its steps deleted (`DELETE /runs/:id`, with its agent). */
      kind: 'run_deleted';
      projectId: string;
      runId: string;
      agentId: string;
    }
  | {
      kind: 'step';
      projectId: string;
      runId: string;
      stepId: string;
      /** Epoch ms of the row's `updated_at`. */
      updatedAt: number;
      step: Step;
    }
  | {
      /** An agent's settings changed (`PUT /agents/:id`); `agent` null: it was deleted. */
      kind: 'agent';
      projectId: string;
      agentId: string;
      agent: Agent | null;
    };

export type HubListener = (event: HubEvent) => void;

/** What a change announced by another server instance is about, before it is read back. */
export type HubTarget =
  | {
      kind: 'run' | 'step';
      projectId: string;
      runId: string;
      /** The run's agent; undefined for steps (they go to `run:<id>` only) and when not announced. */
      agentId: string | undefined;
    }
  | { kind: 'agent'; projectId: string; agentId: string };

/**
 * Whether a listener would act on a change about `target`. The PostgreSQL bridge reads
 * another instance's change back only when some local listener wants it.
 */
export type HubInterest = (target: HubTarget) => boolean;

/**
 * The in-process event hub. The write path publishes here only after commit; WebSocket
 * connections and other listeners (on PostgreSQL, the LISTEN/NOTIFY bridge) subscribe.
 */
export class EventHub {
  /** Each listener with its interest; one without takes every change, local or remote. */
  private readonly listeners = new Map<HubListener, HubInterest | undefined>();

  /**
   * `interest` narrows which other instances' changes this listener needs read back (it
   * still receives every local publish).
   * @example hub.subscribe(onEvent, (t) => t.kind === 'run' && t.agentId === 'bug-triager')
   */
  subscribe(listener: HubListener, interest?: HubInterest): () => void {
    this.listeners.set(listener, interest);
    return () => this.listeners.delete(listener);
  }

  /** Whether some local listener wants a change about `target` (see `HubInterest`). */
  wants(target: HubTarget): boolean {
    for (const interest of this.listeners.values()) {
      try {
        if (!interest || interest(target)) return true;
      } catch {
        return true; // a broken interest must not cost its listener the change
      }
    }
    return false;
  }

  /** Delivers to local listeners only. */
  deliver(event: HubEvent): void {
    for (const listener of this.listeners.keys()) {
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
