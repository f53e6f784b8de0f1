import { findPrice, type Price } from '@runlog/core';
import type { Db } from '../db/database.js';

const TTL_MS = 30_000;

interface Entry {
  overrides: Map<string, Price>;
  /** Each model's resolved price, so a priced step does not match names against the tables. */
  resolved: Map<string, Price | null>;
  expires: number;
}

/**
 * Model prices per project: the project's overrides over the built-in table. Overrides are
 * cached for a short while so the write path reads them once per batch, not per step, and
 * each model's price is resolved once per load.
 */
export class PriceBook {
  private readonly cache = new Map<string, Entry>();

  constructor(private readonly db: Db) {}

  /** Loads (or reuses) a project's overrides; call before `price` on the write path. */
  async load(projectId: string): Promise<Map<string, Price>> {
    const hit = this.cache.get(projectId);
    if (hit && hit.expires > Date.now()) return hit.overrides;
    const rows = await this.db.kysely
      .selectFrom('model_prices')
      .selectAll()
      .where('project_id', '=', projectId)
      // two spellings of one model (stored before PUT replaced the other): the newest wins
      .orderBy('updated_at')
      .execute();
    const overrides = new Map<string, Price>(
      rows.map((r) => [
        r.model,
        {
          input: r.input_per_mtok,
          output: r.output_per_mtok,
          cachedInput: r.cached_input_per_mtok,
        },
      ]),
    );
    this.cache.set(projectId, { overrides, resolved: new Map(), expires: Date.now() + TTL_MS });
    return overrides;
  }

  /** The price for a model in a project whose overrides are loaded. */
  price(projectId: string, model: string): Price | undefined {
    const entry = this.cache.get(projectId);
    if (!entry) return findPrice(model);
    let price = entry.resolved.get(model);
    if (price === undefined) {
      price = findPrice(model, entry.overrides) ?? null;
      if (entry.resolved.size > 1_000) entry.resolved.clear();
      entry.resolved.set(model, price);
    }
    return price ?? undefined;
  }

  private readonly listeners = new Set<(projectId: string) => void>();

  /**
   * Drops a project's cached prices after its overrides changed. A change made here
   * (`origin` 'local') is told to `onChange` listeners: on PostgreSQL, the bridge passes it
   * to the other instances, which drop theirs ('remote') instead of pricing with the old
   * ones for up to TTL_MS.
   */
  invalidate(projectId: string, origin: 'local' | 'remote' = 'local'): void {
    // read again at the next `load`; a group commit that loaded them already prices its steps
    // with them to its end, as if the change came just after it (dropped, its steps were
    // priced by the built-in table alone, every other override of the project ignored)
    const entry = this.cache.get(projectId);
    if (entry) entry.expires = 0;
    if (origin === 'local') for (const listener of this.listeners) listener(projectId);
  }

  /** Calls `listener` with each project whose prices change here; returns the unsubscribe. */
  onChange(listener: (projectId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
