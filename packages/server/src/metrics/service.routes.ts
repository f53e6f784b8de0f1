import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';

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
  app.get('/healthz', { config: { scope: 'public' } }, () => ({ status: 'ok' }));
  app.get('/readyz', { config: { scope: 'public' } }, async () => {
    try {
      await sql`SELECT 1`.execute(ctx.db.kysely);
    } catch {
      throw new AppError('unavailable', 'the database does not answer');
    }
    return { status: 'ready', database: ctx.db.dialect };
  });
  app.get('/metrics', { config: { scope: 'public' } }, (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(ctx.metrics.render()),
  );
}
