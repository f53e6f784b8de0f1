import { toIso, type Agent } from '@runlog/core';
import type { AgentRow } from '../db/schema.js';
import { fromJson } from '../runs/runs.mapper.js';

/** The one mapping from a stored agent row to the API's `Agent`. */
export function toAgent(row: AgentRow): Agent {
  const metadata = fromJson(row.metadata);
  return {
    id: row.id,
    project_id: row.project_id,
    name: row.name,
    description: row.description,
    schedule:
      row.schedule_cron !== null
        ? { cron: row.schedule_cron, timezone: row.schedule_tz ?? 'UTC' }
        : null,
    timeout_ms: row.timeout_ms,
    metadata:
      metadata && typeof metadata === 'object' && !Array.isArray(metadata)
        ? (metadata as Record<string, unknown>)
        : {},
    // the slot the scheduler will queue next (past, after downtime, until it catches up)
    next_run_at:
      row.schedule_cron !== null && row.schedule_next_at !== null
        ? toIso(row.schedule_next_at)
        : null,
    worker_seen_at: toIso(row.worker_seen_at),
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}
