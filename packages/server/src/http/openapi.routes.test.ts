import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, describeEachDb, json, type TestApp } from '../../test/harness.js';
import { Health, Readiness } from '../metrics/service.routes.js';

interface Answer {
  description: string;
  content?: Record<string, { schema?: Record<string, unknown> }>;
}
type Paths = Record<string, Record<string, { responses: Record<string, Answer> }>>;

describeEachDb('openapi.json on the service endpoints', (dialect) => {
  let t: TestApp;
  let paths: Paths;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    paths = json<{ paths: Paths }>(
      await t.request('GET', '/api/v1/openapi.json', undefined, null),
    ).paths;
  });
  afterAll(() => t.close());

  const schemaOf = (path: string, status: string, type = 'application/json') =>
    paths[path]?.get?.responses[status]?.content?.[type]?.schema;

  it('gives the body of /healthz and /readyz, as they answer it', async () => {
    const health = await t.request('GET', '/healthz', undefined, null);
    expect(Health.parse(health.json())).toEqual({ status: 'ok' });
    expect(schemaOf('/healthz', '200')).toMatchObject({
      type: 'object',
      properties: { status: { const: 'ok' } },
      required: ['status'],
    });
    const ready = await t.request('GET', '/readyz', undefined, null);
    expect(Readiness.parse(ready.json())).toEqual({ status: 'ready', database: dialect });
    expect(schemaOf('/readyz', '200')).toMatchObject({
      properties: { status: { const: 'ready' }, database: { enum: ['sqlite', 'postgres'] } },
      required: ['status', 'database'],
    });
    expect(schemaOf('/metrics', '200', 'text/plain')).toEqual({ type: 'string' });
    expect(schemaOf('/api/v1/openapi.json', '200')).toMatchObject({
      required: ['openapi', 'info', 'paths'],
    });
  });

  it('gives every service endpoint the 503 of a server shutting down, in the error shape', () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/api/v1/openapi.json'])
      expect(schemaOf(path, '503'), path).toEqual({ $ref: '#/components/schemas/Error' });
  });
});
