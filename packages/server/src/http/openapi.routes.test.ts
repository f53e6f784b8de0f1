import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, describeEachDb, json, type TestApp } from '../../test/harness.js';
import { RunWithSteps, StoredError } from '@runlog/core';
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

describeEachDb('openapi.json on OTLP', (dialect) => {
  it('gives /v1/traces protobuf bodies, as it takes them and answers in them', async () => {
    const t = await createTestApp(dialect);
    try {
      const doc = json<{
        paths: Record<
          string,
          Record<string, { requestBody: Answer; responses: Record<string, Answer> }>
        >;
      }>(await t.request('GET', '/api/v1/openapi.json', undefined, null));
      const op = doc.paths['/v1/traces']!.post!;
      const protobuf = 'application/x-protobuf';
      const send = (payload: Buffer) =>
        t.app.inject({
          method: 'POST',
          url: '/v1/traces',
          headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': protobuf },
          payload,
        });
      // an empty ExportTraceServiceRequest, then one cut off inside its first field
      for (const [payload, status] of [
        [Buffer.alloc(0), 200],
        [Buffer.from([0x0a, 0xff, 0xff, 0xff]), 400],
      ] as const) {
        const res = await send(payload);
        expect(res.statusCode).toBe(status);
        expect(res.headers['content-type']).toBe(protobuf);
        expect(Object.keys(op.responses[String(status)]?.content ?? {})).toEqual([
          'application/json',
          protobuf,
        ]);
      }
      expect(Object.keys(op.requestBody.content ?? {})).toEqual(['application/json', protobuf]);
      // the other routes take and answer JSON only
      expect(
        Object.keys(doc.paths['/api/v1/ingest']!.post!.responses['200']!.content ?? {}),
      ).toEqual(['application/json']);
    } finally {
      await t.close();
    }
  });
});

describeEachDb('openapi.json on credentials', (dialect) => {
  it("gives the dashboard's session cookie as a way to authenticate, as the server takes it", async () => {
    const t = await createTestApp(dialect);
    try {
      const doc = json<{
        security: Record<string, string[]>[];
        components: {
          securitySchemes: Record<string, { type: string; in?: string; name?: string }>;
        };
      }>(await t.request('GET', '/api/v1/openapi.json', undefined, null));
      const login = await t.request('POST', '/api/v1/session', { key: t.adminKey }, null);
      const [cookie] = String(login.headers['set-cookie']).split(';');
      const [name] = cookie!.split('=');
      const runs = await t.app.inject({ method: 'GET', url: '/api/v1/runs', headers: { cookie } });
      expect(runs.statusCode, runs.body).toBe(200);
      const schemes = Object.entries(doc.components.securitySchemes)
        .filter(([, s]) => s.type === 'apiKey' && s.in === 'cookie' && s.name === name)
        .map(([id]) => id);
      expect(schemes).toHaveLength(1);
      expect(doc.security).toContainEqual({ [schemes[0]!]: [] });
      expect(doc.security).toContainEqual({ bearer: [] });
    } finally {
      await t.close();
    }
  });
});

describeEachDb('openapi.json on errors stored truncated', (dialect) => {
  it("gives a run's and a step's error as the server answers one over the size limit", async () => {
    const t = await createTestApp(dialect, { maxFieldBytes: 4096 });
    try {
      const stack = 'at f()\n'.repeat(2000);
      const events = [
        {
          type: 'run.end',
          run: {
            id: 'crash',
            agent_id: 'a',
            error: { message: 'overflow', type: 'RangeError', stack },
          },
        },
        {
          type: 'step.end',
          step: {
            id: 's',
            run_id: 'crash',
            type: 'tool',
            status: 'failed',
            error: 'e'.repeat(9000),
          },
        },
      ];
      expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
      const run = json<{ error: unknown; steps: { error: unknown }[] }>(
        await t.request('GET', '/api/v1/runs/crash?include=steps'),
      );
      expect(run.error).toMatchObject({ __runlog_truncated__: true });
      // the schema openapi.json is made from takes what the server answers
      expect(RunWithSteps.safeParse(run).error).toBeUndefined();
      expect(StoredError.safeParse(run.steps[0]!.error).success).toBe(true);
    } finally {
      await t.close();
    }
  });
});
