import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { StatsQuery, StatsResponse } from '@runlog/core';
import type { AppContext } from '../context.js';
import { defineRoute } from '../http/route.js';
import { agentMetrics } from '../metrics/agent-metrics.js';
import { computeStats } from './stats.service.js';

/** `GET /runs/stats`: analytics from the hourly rollups; `GET /metrics`: agents for Prometheus. */
export async function statsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/runs/stats',
    scope: 'read',
    tag: 'stats',
    summary:
      'Run analytics: totals, by_agent (runs desc) and a zero-filled series. ' +
      'Whole buckets: from (default now - 30 d) is floored and to (default now) ceiled to the ' +
      'bucket (a UTC hour, or a day of tz: UTC by default; the answer says which range it ' +
      'read); bucket defaults to day over ranges longer than 2 days, else hour. A day of a ' +
      'zone starts at its local midnight (23 or 25 hours across a change of clocks); in a ' +
      'zone off UTC by a part of an hour (Asia/Kolkata, Asia/Kathmandu) it holds the runs of ' +
      'the UTC hours starting within it, so its edges are off by up to 45 min. fail_rate is ' +
      'failed + timed_out over finished runs; p50/p95 come from a log-scale histogram (±5%)',
    query: StatsQuery,
    response: StatsResponse,
    handler: ({ auth, query }) => computeStats(ctx.db, auth.projectId, query, Date.now()),
  });
  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/metrics',
    scope: 'read',
    tag: 'stats',
    summary:
      "The key's project's agents in Prometheus text format, for a scrape with the key as its " +
      "bearer token: runs queued (and the oldest one's wait), delayed and running now; the " +
      "last 24 hours' runs by status, fail rate, failures no run retries, tokens and cost. " +
      'Gauges read from the ' +
      'database, the same from every server instance; every agent has every series. ' +
      "(The server's own /metrics, without a key, counts HTTP answers and the write path.)",
    response: z.string().describe('Prometheus text exposition format 0.0.4'),
    responseType: 'text/plain',
    handler: async ({ auth, reply }) => {
      const text = await agentMetrics(ctx.db, auth.projectId, Date.now());
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
    },
  });
}
