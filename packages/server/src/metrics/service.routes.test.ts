import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, expect, vi } from 'vitest';
import {
  createTestApp,
  PG_BASE_URL,
  pgIt,
  silenceableRelay,
  type TestApp,
} from '../../test/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

pgIt(
  'answers /readyz 503 within 5 s when its PostgreSQL connections go silent, logging the outage once [postgres]',
  async () => {
    const relay = await silenceableRelay();
    const schema = `rt_ready_${randomBytes(4).toString('hex')}`;
    cleanups.push(async () => {
      const admin = new pg.Client({ connectionString: PG_BASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    const sep = relay.url.includes('?') ? '&' : '?';
    const t: TestApp = await createTestApp('postgres', {
      db: `${relay.url}${sep}schema=${schema}`,
    });
    cleanups.push(async () => {
      // cut the silent connections first: a query on one would hold the pool's close forever
      relay.close();
      await t.close().catch(() => {});
    });
    expect((await t.request('GET', '/readyz', undefined, null)).statusCode).toBe(200);

    relay.silence();
    const logged = vi.spyOn(t.app.log, 'error');
    for (let probe = 0; probe < 2; probe++) {
      const res = await t.request('GET', '/readyz', undefined, null);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect((res.json() as { error: { code: string } }).error.code).toBe('unavailable');
    }
    // a load balancer probing every few seconds during an outage gets one line, with its cause
    expect(logged).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(logged.mock.calls[0]?.[0])).toContain('ETIMEDOUT');
  },
  30_000,
);
