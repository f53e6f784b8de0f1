import { describe, expect } from 'vitest';
import type { AgentSummary, RunList } from '@runlog/core';
import { json, pgIt, withOwnPgDatabase } from '../../test/harness.js';

describe('id order on a PostgreSQL database with a language collation', () => {
  pgIt('lists runs tied on their time and agents in byte order, as SQLite does [postgres]', () =>
    // en-US sorts case and punctuation unlike bytes: "tie-a" < "Tie-A" < "tie_c" there
    withOwnPgDatabase(
      'rt_icu',
      async (t) => {
        const ids = [
          'Tie-A',
          'tie-b',
          'tie_c',
          'tie.d',
          'TIE-E',
          'tie-10',
          'tie-9',
          'tie:z',
          'tieA',
        ];
        const res = await t.request('POST', '/api/v1/ingest', {
          events: ids.map((id) => ({
            type: 'run.start',
            run: { id, agent_id: id, started_at: 1e12 },
          })),
        });
        expect(res.statusCode).toBe(200);
        const byBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
        const list = json<RunList>(await t.request('GET', '/api/v1/runs?limit=50'));
        expect(list.runs.map((r) => r.id)).toEqual([...ids].sort(byBytes).reverse());
        // keyset paging walks the same order
        const first = json<RunList>(await t.request('GET', '/api/v1/runs?limit=4'));
        const rest = json<RunList>(
          await t.request('GET', `/api/v1/runs?limit=50&cursor=${first.next_cursor!}`),
        );
        expect([...first.runs, ...rest.runs].map((r) => r.id)).toEqual(list.runs.map((r) => r.id));
        const agents = json<{ agents: AgentSummary[] }>(await t.request('GET', '/api/v1/agents'));
        const agentIds = agents.agents.map((a) => a.id);
        expect(agentIds).toEqual([...agentIds].sort(byBytes));
      },
      "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
    ),
  );
});
