import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, describeEachDb, type TestApp } from '../../test/harness.js';

describeEachDb('request ids', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  it('answers every request with an x-request-id of its own, unique across processes', async () => {
    const other = await createTestApp(dialect);
    try {
      // two servers behind one load balancer: a counter (req-1) named two requests alike
      const ids = [
        (await t.request('GET', '/healthz', undefined, null)).headers['x-request-id'],
        (await other.request('GET', '/healthz', undefined, null)).headers['x-request-id'],
        (await t.request('GET', '/api/v1/runs', undefined, null)).headers['x-request-id'],
        (await t.request('GET', '/api/v1/nowhere')).headers['x-request-id'],
        (await t.request('POST', '/api/v1/ingest', '{"events": [')).headers['x-request-id'],
      ];
      for (const id of ids)
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await other.close();
    }
  });

  it("keeps a proxy's X-Request-Id, and replaces one that is too long or not plain text", async () => {
    const given = (id: string) =>
      t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': id } });
    expect((await given('lb-7f3a:91.2')).headers['x-request-id']).toBe('lb-7f3a:91.2');
    for (const bad of ['a b', 'x'.repeat(129), 'é', '']) {
      const id = (await given(bad)).headers['x-request-id'];
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
