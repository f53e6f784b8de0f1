import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { isDatabaseUnavailable } from '../db/database.js';

/**
 * How long `/readyz` waits for the database. A PostgreSQL connection whose peer went silent
 * (a dropped route, a stalled proxy) never answers its query: without a bound the probe hung
 * as long as TCP retransmits (a quarter of an hour), each one holding a pooled connection,
 * instead of telling the load balancer to send requests elsewhere. As long as a request waits
 * for a pooled connection or a lock (5 s): a busy pool is not yet an instance to leave out.
 */
const READY_TIMEOUT_MS = 5000;

/** What `GET /healthz` answers: the process is up. */
export const Health = z.object({ status: z.literal('ok') });
export type Health = z.infer<typeof Health>;

/** What `GET /readyz` answers when the database answered it. */
export const Readiness = z.object({
  status: z.literal('ready'),
  database: z.enum(['sqlite', 'postgres']).describe('the database the server runs on'),
});
export type Readiness = z.infer<typeof Readiness>;

/** `/healthz` (the process answers), `/readyz` (the database answers), `/metrics`. */
export async function serviceRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const startedAt = Date.now();
  ctx.metrics.gauge('runlog_uptime_seconds', 'Seconds since this server started', () =>
    Math.round((Date.now() - startedAt) / 1000),
  );
  ctx.metrics.gauge(
    'runlog_process_resident_memory_bytes',
    'Resident set size of the server process',
    () => process.memoryUsage.rss(),
  );
  app.get('/healthz', { config: { scope: 'public' } }, (): Health => ({ status: 'ok' }));
  app.get('/readyz', { config: { scope: 'public' } }, async (): Promise<Readiness> => {
    let timer: NodeJS.Timeout | undefined;
    // ETIMEDOUT makes it a database outage to the error handler, as a refused connection is
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`the database did not answer within ${READY_TIMEOUT_MS} ms`), {
              code: 'ETIMEDOUT',
            }),
          ),
        READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([sql`SELECT 1`.execute(ctx.db.kysely), silent]);
    } catch (err) {
      // an outage goes to the error handler as it is: a 503 with Retry-After, logged with its
      // cause once per window however often probes ask, not one stack per probe
      if (isDatabaseUnavailable(err)) throw err;
      throw new AppError('unavailable', 'the database does not answer');
    } finally {
      clearTimeout(timer);
    }
    return { status: 'ready', database: ctx.db.dialect };
  });
  app.get('/metrics', { config: { scope: 'public' } }, (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(ctx.metrics.render()),
  );
}
