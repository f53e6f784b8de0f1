import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createTestApp,
  describeEachDb,
  ingestOk,
  json,
  pgIt,
  startTestServer,
  waitFor,
  withOwnPgDatabase,
  type TestApp,
} from '../../test/harness.js';
import { apiRoutePath, otherMethods, type ApiRoute } from '../app.js';
import { isDatabaseUnavailable } from '../db/database.js';
import { outageLogger } from './errors.js';
import { PUBLIC_BODY_LIMIT } from './route.js';
import { MAX_JSON_CONTAINERS } from './json-containers.js';
import { findRun } from '../runs/runs.repository.js';
import SQLite from 'better-sqlite3';

type ErrorBody = {
  error: { code: string; message: string; details?: { field: string; message?: string }[] };
};

describeEachDb('the HTTP error boundary', (dialect) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answers 413 for a body over the limit and writes nothing', async () => {
    t = await createTestApp(dialect, { bodyLimit: 4096 });
    const events = [
      {
        type: 'run.start',
        run: { id: 'too-big', agent_id: 'a', input: { text: 'x'.repeat(5000) } },
      },
    ];
    const res = await t.request('POST', '/api/v1/ingest', { events });
    expect(res.statusCode).toBe(413);
    expect(json<ErrorBody>(res).error.code).toBe('payload_too_large');
    expect(await findRun(t.ctx.db, 'default', 'too-big')).toBeUndefined();
  });

  it('answers 413 for a body of more objects and arrays than MAX_JSON_CONTAINERS and writes nothing', async () => {
    t = await createTestApp(dialect);
    // 3 MB of empty objects; at the 64 MiB body limit they held the event loop for 20 s
    const input = Array.from({ length: MAX_JSON_CONTAINERS }, () => ({}));
    const events = [{ type: 'run.start', run: { id: 'many-objects', agent_id: 'a', input } }];
    const res = await t.request('POST', '/api/v1/ingest', { events });
    expect(res.statusCode).toBe(413);
    expect(json<ErrorBody>(res).error).toMatchObject({
      code: 'payload_too_large',
      message: expect.stringContaining('objects and arrays'),
    });
    expect(await findRun(t.ctx.db, 'default', 'many-objects')).toBeUndefined();
    // text of that size is taken, braces and all
    const text = `{[${'"\\{'.repeat(MAX_JSON_CONTAINERS)}`;
    const prose = [{ type: 'run.start', run: { id: 'much-text', agent_id: 'a', input: text } }];
    expect((await t.request('POST', '/api/v1/ingest', { events: prose })).statusCode).toBe(200);
  });

  it('answers 500 without the internal message when the database fails', async () => {
    t = await createTestApp(dialect);
    await t.ctx.db.kysely.destroy();
    const res = await t.request('GET', '/api/v1/runs');
    expect(res.statusCode).toBe(500);
    expect(json<ErrorBody>(res)).toEqual({
      error: { code: 'internal', message: 'internal error', details: [] },
    });
  });

  if (dialect === 'sqlite')
    it('answers 503 with Retry-After while the disk is full, and writes again once there is room', async () => {
      t = await createTestApp(dialect);
      await ingestOk(t, [{ type: 'run.start', run: { id: 'before', agent_id: 'a' } }]);
      const sqlite = t.ctx.db.sqlite!;
      // the file may not grow: a write needing a page fails as on a full disk, and SQLite
      // rolls the whole transaction back itself
      sqlite.pragma(`max_page_count = ${String(sqlite.pragma('page_count', { simple: true }))}`);
      const input = { text: 'x'.repeat(200_000) };
      const run = { type: 'run.start', run: { id: 'full', agent_id: 'a', input } };
      for (const [path, body] of [
        ['/api/v1/ingest', { events: [run] }],
        ['/api/v1/agents/a/runs', { input }],
      ] as const) {
        const res = await t.request('POST', path, body);
        expect(res.statusCode, path).toBe(503);
        expect(res.headers['retry-after']).toBe('5');
        expect(json<ErrorBody>(res).error.code).toBe('unavailable');
      }
      sqlite.pragma('max_page_count = 1073741823');
      expect((await t.request('POST', '/api/v1/ingest', { events: [run] })).statusCode).toBe(200);
      expect((await findRun(t.ctx.db, 'default', 'full'))?.status).toBe('running');
    });

  it('fails a whole group commit at once while the database is away, not its jobs one wait after another', async () => {
    t = await createTestApp(dialect);
    const away = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
    });
    // each try waits as long as the database makes it (a connection timeout, a busy timeout)
    let tries = 0;
    const transaction = vi.spyOn(t.ctx.db.kysely, 'transaction').mockImplementation(
      () =>
        ({
          execute: () => {
            tries++;
            return Promise.reject(away);
          },
        }) as never,
    );
    const writes = Array.from({ length: 10 }, (_, i) =>
      t!.ctx.writer.submit('default', [
        { type: 'run.start', run: { id: `away-${i}`, agent_id: 'a' } },
      ]),
    );
    const answers = await Promise.allSettled(writes);
    for (const answer of answers) {
      expect(answer.status).toBe('rejected');
      expect(isDatabaseUnavailable((answer as PromiseRejectedResult).reason)).toBe(true);
    }
    // one group, one try: each job alone would have waited again, ten times over
    expect(tries).toBe(1);
    transaction.mockRestore();
    await ingestOk(t, [{ type: 'run.start', run: { id: 'back', agent_id: 'a' } }]);
  });

  it('names what is wrong with a body that is not JSON', async () => {
    t = await createTestApp(dialect);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/ingest',
      headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'text/plain' },
      payload: 'events',
    });
    expect(res.statusCode).toBe(400);
    expect(json<ErrorBody>(res).error).toMatchObject({ code: 'invalid_input' });
    expect(json<ErrorBody>(res).error.message).toContain('application/json');
  });

  it('gives every error its details list, naming the body when it is not valid JSON', async () => {
    t = await createTestApp(dialect);
    const malformed = await t.app.inject({
      method: 'POST',
      url: '/api/v1/ingest',
      headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json' },
      payload: '{"events": [',
    });
    expect(malformed.statusCode).toBe(400);
    expect(json<ErrorBody>(malformed).error.details).toEqual([
      { field: 'body', message: expect.any(String) },
    ]);
    // a body of a type the API does not read (a form, as curl -d sends by default): the
    // header is the field at fault
    const form = await t.app.inject({
      method: 'POST',
      url: '/api/v1/ingest',
      headers: {
        authorization: `Bearer ${t.adminKey}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: '{"events":[]}',
    });
    expect(form.statusCode).toBe(400);
    expect(json<ErrorBody>(form).error.details).toEqual([
      { field: 'headers.content-type', message: 'send application/json' },
    ]);
    for (const res of [
      await t.request('GET', '/api/v1/runs', undefined, null),
      await t.request('GET', '/api/v1/runs/nope'),
      await t.request('GET', '/api/v1/keys', undefined, 'rl_not_a_key_of_this_server_000000'),
    ]) {
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(json<ErrorBody>(res).error.details).toEqual([]);
    }
  });

  if (dialect === 'sqlite')
    it("keeps serving while another process holds the file's write lock, and writes once it is let go", async () => {
      t = await createTestApp(dialect);
      // another process in a write transaction (a sqlite3 shell, a backup, the CLI)
      const other = new SQLite(t.ctx.db.sqlite!.name);
      other.exec('BEGIN IMMEDIATE');
      try {
        const write = ingestOk(t, [{ type: 'run.start', run: { id: 'waited', agent_id: 'a' } }]);
        // the write waits for the lock without holding the event loop: a timer fires on time
        const asked = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(Date.now() - asked).toBeLessThan(1500);
        expect((await t.request('GET', '/healthz', undefined, null)).statusCode).toBe(200);
        other.exec('COMMIT');
        await write;
      } finally {
        if (other.inTransaction) other.exec('ROLLBACK');
        other.close();
      }
      expect((await findRun(t.ctx.db, 'default', 'waited'))?.status).toBe('running');
    });

  it('answers an unknown route with a JSON 404', async () => {
    t = await createTestApp(dialect);
    const res = await t.request('GET', '/api/v1/nothing-here');
    expect(res.statusCode).toBe(404);
    expect(json<ErrorBody>(res).error.code).toBe('not_found');
  });

  it('answers a request no route takes, sent without a key, before reading its body', async () => {
    t = await createTestApp(dialect);
    // not JSON: read, it answered 400; read at 64 MiB, it held the server for 20 s
    const body = '[{},'.repeat(1000);
    const unknown = await t.request('POST', '/api/v1/nothing-here', body, null);
    expect(unknown.statusCode).toBe(404);
    expect(json<ErrorBody>(unknown).error.code).toBe('not_found');
    const wrongMethod = await t.request('PUT', '/api/v1/ingest', body, null);
    expect(wrongMethod.statusCode).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
  });

  it('reads at most PUBLIC_BODY_LIMIT of a body sent to a route that takes no key', async () => {
    t = await createTestApp(dialect);
    const padded = { key: t.adminKey, pad: 'x'.repeat(PUBLIC_BODY_LIMIT) };
    const refused = await t.request('POST', '/api/v1/session', padded, null);
    expect(refused.statusCode).toBe(413);
    expect(json<ErrorBody>(refused).error.code).toBe('payload_too_large');
    // a login as the dashboard sends it is taken
    const login = await t.request('POST', '/api/v1/session', { key: t.adminKey }, null);
    expect(login.statusCode).toBe(200);
  });

  it('answers a known path with the wrong method 405, saying which methods it takes', async () => {
    t = await createTestApp(dialect);
    const ingest = await t.request('GET', '/api/v1/ingest');
    expect(ingest.statusCode).toBe(405);
    expect(ingest.headers.allow).toBe('POST');
    expect(json<ErrorBody>(ingest).error).toMatchObject({
      code: 'method_not_allowed',
      message: 'GET is not allowed on /api/v1/ingest, which takes POST',
      details: [{ field: 'method', message: 'must be one of POST' }],
    });
    const run = await t.request('PUT', '/api/v1/runs/some-run');
    expect(run.statusCode).toBe(405);
    expect(run.headers.allow).toBe('DELETE, GET, HEAD, PATCH');
    // the path as the router reads it: decoded, an empty segment a parameter's
    expect((await t.request('GET', '/api/v1/%69ngest')).headers.allow).toBe('POST');
    expect((await t.request('PUT', '/api/v1/runs/')).statusCode).toBe(405);
    expect((await t.request('PUT', '/v1/traces')).headers.allow).toBe('POST');
    // a path whose method the request has is one the router did not take, not a wrong method
    const long = await t.request('GET', `/api/v1/runs/${'a'.repeat(1001)}`);
    expect(long.statusCode).not.toBe(405);
    expect(long.headers.allow).toBeUndefined();
    // a path no method takes is still a 404, and a wrong method writes nothing
    expect((await t.request('DELETE', '/api/v1/nothing-here')).statusCode).toBe(404);
    expect((await t.request('POST', '/api/v1/runs/some-run/steps/x')).statusCode).toBe(404);
  });

  if (dialect === 'sqlite')
    it('answers 503 with Retry-After once the database file can no longer be written', async () => {
      t = await createTestApp(dialect);
      await ingestOk(t, [{ type: 'run.start', run: { id: 'before', agent_id: 'a' } }]);
      // the file read-only for this process (its mode or owner changed, a read-only mount):
      // every write fails with SQLITE_READONLY, as it does under query_only
      const sqlite = t.ctx.db.sqlite!;
      sqlite.pragma('query_only = 1');
      const run = { type: 'run.start', run: { id: 'after', agent_id: 'a' } };
      const res = await t.request('POST', '/api/v1/ingest', { events: [run] });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(json<ErrorBody>(res).error.code).toBe('unavailable');
      sqlite.pragma('query_only = 0');
      expect((await t.request('POST', '/api/v1/ingest', { events: [run] })).statusCode).toBe(200);
    });

  it('keeps text and tag search working beside a run whose payload holds a NUL', async () => {
    t = await createTestApp(dialect);
    const events = [
      {
        type: 'run.end',
        run: {
          id: 'nul-1',
          agent_id: 'a',
          status: 'failed',
          error: { message: 'bad\u0000byte' },
          output: { text: 'x\u0000y' },
        },
      },
      { type: 'run.start', run: { id: 'hay-1', agent_id: 'a', input: { q: 'needle' } } },
    ];
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    const found = await t.request('GET', '/api/v1/runs?q=needle');
    expect(found.statusCode).toBe(200);
    expect(json<{ runs: { id: string }[] }>(found).runs.map((r) => r.id)).toEqual(['hay-1']);
    expect((await t.request('GET', '/api/v1/runs?q=byte')).statusCode).toBe(200);
    expect((await t.request('GET', '/api/v1/runs?tag=x')).statusCode).toBe(200);
    const nul = await t.request('GET', '/api/v1/runs?q=%00');
    expect(nul.statusCode).toBe(400);
    expect(json<ErrorBody>(nul).error.details?.[0]?.field).toBe('query.q');
  });

  it('refuses a query parameter the route does not read, naming it', async () => {
    t = await createTestApp(dialect);
    const typo = await t.request('GET', '/api/v1/runs?stauts=failed');
    expect(typo.statusCode).toBe(400);
    const err = json<ErrorBody>(typo).error;
    expect(err.message).toBe('query.stauts: unknown parameter');
    expect(err.details?.[0]?.message).toContain('status');
    const none = await t.request('GET', '/api/v1/agents?status=failed');
    expect(none.statusCode).toBe(400);
    expect(json<ErrorBody>(none).error.details?.[0]?.field).toBe('query.status');
    expect((await t.request('GET', '/api/v1/runs?status=failed&limit=5')).statusCode).toBe(200);
    // a repeated parameter is its comma list
    const repeated = await t.request('GET', '/api/v1/runs?status=failed&status=succeeded');
    expect(repeated.statusCode).toBe(200);
    // one that takes one value, given twice, would match nothing: refused, not an empty list
    for (const key of ['source', 'tag', 'q', 'limit']) {
      const twice = await t.request('GET', `/api/v1/runs?${key}=1&${key}=2`);
      expect(twice.statusCode).toBe(400);
      expect(json<ErrorBody>(twice).error.details?.[0]).toEqual({
        field: `query.${key}`,
        message: 'given more than once; it takes one value',
      });
    }
  });

  it('answers a path it cannot decode in the API error shape', async () => {
    t = await createTestApp(dialect);
    const res = await t.request('GET', '/api/v1/runs/a%ZZ');
    expect(res.statusCode).toBe(400);
    expect(json<ErrorBody>(res).error).toMatchObject({
      code: 'invalid_input',
      details: [{ field: 'path' }],
    });
  });

  it('answers an unknown API route with the JSON 404 while serving the dashboard', async () => {
    const webRoot = mkdtempSync(join(tmpdir(), 'runlog-web-'));
    writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>Runlog</title>');
    t = await createTestApp(dialect, { webRoot });
    const missing = await t.request('GET', '/api/v1/nothing-here');
    expect(missing.statusCode).toBe(404);
    expect(json<ErrorBody>(missing).error).toEqual({
      code: 'not_found',
      message: 'no route GET /api/v1/nothing-here',
      details: [],
    });
    // any other path is a client-side route of the dashboard
    const page = await t.request('GET', '/agents/x/runs/y', undefined, null);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<title>Runlog</title>');
  });

  it("sends the dashboard's files compressed when the browser takes it, its hashed assets kept for good", async () => {
    const webRoot = mkdtempSync(join(tmpdir(), 'runlog-web-'));
    const script = 'console.log("runlog");\n'.repeat(200);
    writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>Runlog</title>');
    mkdirSync(join(webRoot, 'assets'));
    writeFileSync(join(webRoot, 'assets', 'index-abc123.js'), script);
    writeFileSync(join(webRoot, 'assets', 'index-abc123.js.br'), brotliCompressSync(script));
    writeFileSync(join(webRoot, 'assets', 'index-abc123.js.gz'), gzipSync(script));
    const { app } = (t = await createTestApp(dialect, { webRoot }));
    const asset = (encoding?: string) =>
      app.inject({
        method: 'GET',
        url: '/assets/index-abc123.js',
        headers: encoding ? { 'accept-encoding': encoding } : {},
      });
    const br = await asset('gzip, deflate, br');
    expect(br.headers).toMatchObject({
      'content-encoding': 'br',
      'content-type': expect.stringContaining('javascript'),
      'cache-control': 'public, max-age=31536000, immutable',
      vary: 'accept-encoding',
    });
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(script);
    const gz = await asset('gzip');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).toString()).toBe(script);
    const plain = await asset();
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(script);
    // a build written while the server runs: its new assets are served, a missing one is a 404
    writeFileSync(join(webRoot, 'assets', 'index-def456.js'), script);
    const rebuilt = await app.inject({ method: 'GET', url: '/assets/index-def456.js' });
    expect(rebuilt.statusCode).toBe(200);
    expect(rebuilt.headers['content-type']).toContain('javascript');
    expect(rebuilt.body).toBe(script);
    const gone = await app.inject({ method: 'GET', url: '/assets/index-gone.js' });
    expect(gone.statusCode).toBe(404);
    // a path out of the dashboard's folder is the router's to resolve: at most the page
    const out = await app.inject({ method: 'GET', url: '/assets/%2e%2e/%2e%2e/etc/passwd' });
    expect(out.body).not.toContain('root:');
    // one the router keeps under assets/ (an encoded slash) is no file either, never a 500
    for (const url of [
      '/assets/..%2f..%2fetc%2fpasswd',
      '/assets/..%5c..%5cindex.html',
      '/assets/x%00.js',
    ]) {
      const refused = await app.inject({ method: 'GET', url });
      expect(refused.statusCode, url).toBe(404);
      expect(refused.body).not.toContain('root:');
    }
    // a page is asked for again each time: it names the assets of the build being served
    for (const url of ['/', '/agents/x/runs/y']) {
      const page = await app.inject({ method: 'GET', url });
      expect(page.statusCode).toBe(200);
      expect(page.headers['cache-control']).toBe('no-cache');
    }
  });

  it('answers headers over the size limit in the API error shape', async () => {
    const server = await startTestServer(dialect);
    try {
      const res = await fetch(`${server.url}/api/v1/runs?q=${'x'.repeat(20_000)}`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
      expect(res.status).toBe(431);
      expect(((await res.json()) as ErrorBody).error).toMatchObject({
        code: 'payload_too_large',
        details: [{ field: 'headers' }],
      });
    } finally {
      await server.close();
    }
  });

  it("keeps the dashboard out of other pages' frames and its pages to its own scripts", async () => {
    const webRoot = mkdtempSync(join(tmpdir(), 'runlog-web-'));
    writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>Runlog</title>');
    t = await createTestApp(dialect, { webRoot });
    for (const path of ['/', '/agents/x/runs/y', '/login']) {
      const page = await t.request('GET', path, undefined, null);
      expect(page.headers).toMatchObject({
        'x-frame-options': 'DENY',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      const csp = String(page.headers['content-security-policy']);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
    }
    const api = await t.request('GET', '/api/v1/runs');
    expect(api.headers).toMatchObject({
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "frame-ancestors 'none'",
    });
    // a project's data stays out of the browser's disk cache, answers and errors alike
    for (const answer of [
      api,
      await t.request('GET', '/api/v1/session'),
      await t.request('GET', '/api/v1/runs/nope'),
      await t.request('POST', '/v1/traces', {}),
    ])
      expect(answer.headers['cache-control']).toBe('no-store');
    // the pages keep their own rule (asked for again each time)
    expect((await t.request('GET', '/', undefined, null)).headers['cache-control']).toBe(
      'no-cache',
    );
  });

  it('describes every route in openapi.json from the schemas that validate them', async () => {
    t = await createTestApp(dialect);
    const res = await t.request('GET', '/api/v1/openapi.json', undefined, null);
    expect(res.statusCode).toBe(200);
    const doc = json<{
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              required: boolean;
              content: Record<string, { schema: { properties?: Record<string, unknown> } }>;
            };
          }
        >
      >;
    }>(res);
    expect(doc.openapi).toBe('3.1.0');
    const ingest = doc.paths['/api/v1/ingest']?.post;
    expect(
      Object.keys(ingest?.requestBody?.content['application/json']?.schema.properties ?? {}),
    ).toEqual(['events']);
    // a body that may be left out (every field optional) is not required
    expect(ingest?.requestBody?.required).toBe(true);
    // each event is checked on its own (one cannot refuse the others), by the schema of events
    // the description gives each item: a client generated from it knows their shapes
    const events = ingest?.requestBody?.content['application/json']?.schema.properties?.events as {
      items: { oneOf?: { properties: { type: { const: string } } }[] };
    };
    expect(events.items.oneOf?.map((e) => e.properties.type.const)).toEqual([
      'run.start',
      'run.update',
      'run.end',
      'run.heartbeat',
      'step.start',
      'step.end',
      'score',
    ]);
    expect(doc.paths['/api/v1/runs/{run_id}/retry']?.post?.requestBody?.required).toBe(false);
    expect(doc.paths['/v1/traces']?.post, 'OTLP').toBeDefined();
    for (const path of [
      '/api/v1/runs',
      '/api/v1/runs/{run_id}',
      '/api/v1/runs/stats',
      '/api/v1/agents',
      '/api/v1/workers/claim',
      '/api/v1/keys',
      '/healthz',
      '/readyz',
      '/metrics',
      '/api/v1/openapi.json',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(
      Object.keys(
        json<{ paths: Record<string, { post: { responses: object } }> }>(res).paths[
          '/api/v1/ingest'
        ]!.post.responses,
      ),
    ).toEqual(expect.arrayContaining(['200', '207', '400', '401', '403', '413', '429']));
    // the answers besides the success one say what they carry, as the server answers them
    const responses = (path: string, method: string) =>
      json<{ paths: Record<string, Record<string, { responses: Record<string, object> }>> }>(res)
        .paths[path]![method]!.responses;
    expect(responses('/api/v1/ingest', 'post')['207']).toMatchObject({
      content: { 'application/json': { schema: expect.any(Object) } },
    });
    expect(responses('/api/v1/session', 'post')).toHaveProperty('401');
    expect(responses('/v1/traces', 'post')).toHaveProperty('415');
    expect(responses('/v1/traces', 'post')['200']).toHaveProperty('content');
    expect(responses('/readyz', 'get')).toHaveProperty('503');
    // every route of the API answers 503 while its database is down or the server stops
    for (const [path, methods] of Object.entries(
      json<{ paths: Record<string, Record<string, { responses: object }>> }>(res).paths,
    ))
      if (path.startsWith('/api/v1/') && path !== '/api/v1/openapi.json')
        for (const method of Object.keys(methods))
          expect(responses(path, method), `${method} ${path}`).toHaveProperty('503');
    // every route that can answer 409 says so, as the server answers it
    for (const [path, method] of [
      ['/api/v1/runs', 'post'],
      ['/api/v1/runs/{run_id}', 'patch'],
      ['/api/v1/runs/{run_id}/cancel', 'post'],
      ['/api/v1/runs/{run_id}/retry', 'post'],
      ['/api/v1/runs/{run_id}/heartbeat', 'post'],
      ['/api/v1/runs/{run_id}/release', 'post'],
      ['/api/v1/runs/{run_id}/scores', 'post'],
      ['/api/v1/runs/enqueue', 'post'],
      ['/api/v1/agents/{agent_id}/runs', 'post'],
      ['/api/v1/projects', 'post'],
      ['/api/v1/keys/{key_id}', 'delete'],
    ] as const) {
      expect(responses(path, method), `${method} ${path}`).toHaveProperty('409');
    }
    // so does every route that takes a key, which X-Runlog-Project can name another project to
    const named = await t.app.inject({
      method: 'GET',
      url: '/api/v1/runs',
      headers: { authorization: `Bearer ${t.adminKey}`, 'x-runlog-project': 'another' },
    });
    expect(named.statusCode).toBe(409);
    const operations = json<{
      paths: Record<
        string,
        Record<string, { security?: unknown[]; parameters: { name: string; in: string }[] }>
      >;
    }>(res).paths;
    for (const [path, methods] of Object.entries(operations))
      for (const [method, op] of Object.entries(methods)) {
        if (op.security) continue; // public: no key, no project to name
        expect(responses(path, method), `${method} ${path}`).toHaveProperty('409');
        expect(op.parameters, `${method} ${path}`).toContainEqual(
          expect.objectContaining({ name: 'x-runlog-project', in: 'header' }),
        );
      }
    expect(JSON.stringify(responses('/api/v1/runs/{run_id}/cancel', 'post')['409'])).toContain(
      'The run already ended',
    );
    expect(responses('/api/v1/ws', 'get')).toMatchObject({
      101: expect.any(Object),
      429: expect.any(Object),
    });
    // every reference resolves inside the document (recursive schemas included)
    const refs = [...res.body.matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    const whole = json<Record<string, unknown>>(res);
    for (const ref of new Set(refs)) {
      expect(ref, ref).toMatch(/^#\//);
      const target = ref
        .slice(2)
        .split('/')
        .reduce<unknown>(
          (node, key) => (node as Record<string, unknown> | undefined)?.[key],
          whole,
        );
      expect(target, ref).toBeDefined();
    }
  });
});

describeEachDb('a 429 in openapi.json', (dialect) => {
  it('is declared by every route that answers it when the write path is behind', async () => {
    const t = await createTestApp(dialect, { maxQueuedEvents: 1000 });
    let open: () => void = () => {};
    try {
      await ingestOk(t, [{ type: 'run.start', run: { id: 'r1', agent_id: 'a' } }]);
      const doc = json<{ paths: Record<string, Record<string, { responses: object }>> }>(
        await t.request('GET', '/api/v1/openapi.json', undefined, null),
      );
      // hold the write path with a change, and fill its queue behind it
      const gate = new Promise<void>((resolve) => (open = resolve));
      const held = t.ctx.writer.transact(() => gate);
      const steps = Array.from({ length: 1000 }, (_, i) => ({
        type: 'step.end',
        step: { id: `s${i}`, run_id: 'r1', type: 'tool' },
      }));
      const first = t.request('POST', '/api/v1/ingest', { events: steps });
      await waitFor(
        async () => /^runlog_writer_queue_jobs 1$/m.test((await t.request('GET', '/metrics')).body),
        'the batch to wait',
      );
      const span = {
        traceId: '5b8efff798038103d269b633813fc60c',
        spanId: 'eee19b7ec3c1b174',
        name: 'invoke_agent a',
        startTimeUnixNano: '1700000000000000000',
        endTimeUnixNano: '1700000001000000000',
      };
      for (const [method, url, path, body] of [
        ['POST', '/api/v1/runs/r1/scores', '/api/v1/runs/{run_id}/scores', { name: 'q', value: 1 }],
        [
          'POST',
          '/v1/traces',
          '/v1/traces',
          { resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] },
        ],
      ] as const) {
        const res = await t.request(method, url, body);
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(429);
        expect(
          doc.paths[path]![method.toLowerCase()]!.responses,
          `${method} ${path}`,
        ).toHaveProperty('429');
      }
      open();
      await held;
      expect((await first).statusCode).toBe(200);
    } finally {
      open();
      await t.close();
    }
  });
});

describeEachDb('a 413 in openapi.json', (dialect) => {
  it('is declared by every route that reads a body, with a schema for it or not', async () => {
    const t = await createTestApp(dialect, { bodyLimit: 1024 });
    try {
      const doc = json<{ paths: Record<string, Record<string, { responses: object }>> }>(
        await t.request('GET', '/api/v1/openapi.json', undefined, null),
      );
      const over = { pad: 'x'.repeat(2000) };
      for (const [method, url, path] of [
        ['POST', '/api/v1/runs/r1/cancel', '/api/v1/runs/{run_id}/cancel'],
        ['DELETE', '/api/v1/runs/r1', '/api/v1/runs/{run_id}'],
        ['DELETE', '/api/v1/session', '/api/v1/session'],
      ] as const) {
        const res = await t.request(method, url, over);
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(413);
        expect(
          doc.paths[path]![method.toLowerCase()]!.responses,
          `${method} ${path}`,
        ).toHaveProperty('413');
      }
      // a GET's body is not read
      expect((await t.request('GET', '/api/v1/runs', over)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('a database that cannot be used', () => {
  it('is told from a bad request by its error codes', () => {
    const coded = (code: string) => Object.assign(new Error('x'), { code });
    for (const code of [
      'ECONNREFUSED',
      '08006',
      '57P01',
      '3D000',
      '53300',
      'SQLITE_BUSY',
      'SQLITE_READONLY',
      'SQLITE_READONLY_DBMOVED',
    ])
      expect(isDatabaseUnavailable(coded(code))).toBe(true);
    for (const code of ['42601', '23505', 'SQLITE_CONSTRAINT_PRIMARYKEY', 'ERR_X'])
      expect(isDatabaseUnavailable(coded(code))).toBe(false);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    // a pooled client whose connection broke between two statements
    const broken = 'Client has encountered a connection error and is not queryable';
    expect(isDatabaseUnavailable(new Error(broken))).toBe(true);
    // pg-pool with every connection busy past connectionTimeoutMillis
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
    // a session the server ended, whatever its code
    const fatal = Object.assign(new Error('not accepting connections'), {
      code: '55000',
      severity: 'FATAL',
    });
    expect(isDatabaseUnavailable(fatal)).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('x'), { code: '55000' }))).toBe(false);
  });

  pgIt(
    'answers 503 with Retry-After while its PostgreSQL database refuses connections [postgres]',
    () =>
      withOwnPgDatabase('rt_closed', async (t, admin, name) => {
        const ingest = {
          events: [{ type: 'run.start', run: { id: 'r', agent_id: 'a' } }],
        };
        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        for (let i = 0; i < 3; i++) {
          const res = await t.request('POST', '/api/v1/ingest', ingest);
          expect(res.statusCode).toBe(503);
          expect(res.headers['retry-after']).toBe('5');
        }
        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
        expect((await t.request('POST', '/api/v1/ingest', ingest)).statusCode).toBe(200);
      }),
  );

  pgIt(
    'answers 503 with Retry-After while another session holds a lock on its tables, and writes once it is let go [postgres]',
    () =>
      withOwnPgDatabase('rt_locked', async (t) => {
        const other = await t.ctx.db.pgPool!.connect();
        try {
          // a maintenance session (LOCK TABLE, VACUUM FULL, ALTER TABLE) holding runs
          await other.query('BEGIN');
          await other.query('LOCK TABLE runs IN ACCESS EXCLUSIVE MODE');
          const asked = Date.now();
          const [write, read] = await Promise.all([
            t.request('POST', '/api/v1/ingest', {
              events: [{ type: 'run.start', run: { id: 'locked', agent_id: 'a' } }],
            }),
            t.request('GET', '/api/v1/runs'),
          ]);
          // answered within the lock timeout, not held for as long as the lock is
          expect(Date.now() - asked).toBeLessThan(15_000);
          for (const res of [write, read]) {
            expect(res.statusCode).toBe(503);
            expect(res.headers['retry-after']).toBe('5');
          }
          await other.query('COMMIT');
        } finally {
          other.release();
        }
        const again = await t.request('POST', '/api/v1/ingest', {
          events: [{ type: 'run.start', run: { id: 'locked', agent_id: 'a' } }],
        });
        expect(again.statusCode).toBe(200);
      }),
    40_000,
  );

  pgIt('answers 503 with Retry-After once its PostgreSQL database is gone [postgres]', () =>
    withOwnPgDatabase('rt_gone', async (t, admin, name) => {
      expect((await t.request('GET', '/api/v1/runs')).statusCode).toBe(200);
      await admin.query(`DROP DATABASE "${name}" WITH (FORCE)`);
      for (const [method, path, body] of [
        ['GET', '/api/v1/runs', undefined],
        [
          'POST',
          '/api/v1/ingest',
          { events: [{ type: 'run.start', run: { id: 'r', agent_id: 'a' } }] },
        ],
      ] as const) {
        const res = await t.request(method, path, body);
        expect(res.statusCode).toBe(503);
        expect(res.headers['retry-after']).toBe('5');
        expect(json<ErrorBody>(res).error.code).toBe('unavailable');
      }
    }),
  );

  pgIt(
    'lives through its PostgreSQL connections being killed mid-write, and loses nothing acknowledged [postgres]',
    () =>
      withOwnPgDatabase('rt_killed', async (t, admin, name) => {
        const acked: string[] = [];
        let writing = true;
        let n = 0;
        // writers keep pooled connections lent out between the statements of each commit
        const writers = Array.from({ length: 8 }, async () => {
          while (writing) {
            const id = `k-${n++}`;
            const res = await t.request('POST', '/api/v1/ingest', {
              events: [
                { type: 'run.start', run: { id, agent_id: 'a' } },
                { type: 'step.end', step: { id: 's', run_id: id, type: 'tool' } },
                { type: 'run.end', run: { id, status: 'succeeded' } },
              ],
            });
            if (res.statusCode === 200) acked.push(id);
            // before the fix the process died here; now a lost connection is a 503
            else expect(res.statusCode).toBe(503);
          }
        });
        for (let kill = 0; kill < 5; kill++) {
          await new Promise((r) => setTimeout(r, 150));
          await admin.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [name],
          );
        }
        await new Promise((r) => setTimeout(r, 300));
        writing = false;
        await Promise.all(writers);
        // the pool has replaced its connections: reads and writes go through again
        const after = await t.request('POST', '/api/v1/ingest', {
          events: [{ type: 'run.start', run: { id: 'after', agent_id: 'a' } }],
        });
        expect(after.statusCode).toBe(200);
        const stored = await t.ctx.db.kysely
          .selectFrom('runs')
          .select(['id', 'step_count'])
          .where('id', 'in', acked)
          .execute();
        expect(acked.length).toBeGreaterThan(0);
        expect(stored).toHaveLength(acked.length);
        expect(stored.every((r) => r.step_count === 1)).toBe(true);
      }),
  );
});

describe('the log of a database outage', () => {
  it('logs the first 503 with its error, then one line per window counting the rest', () => {
    const lines: [object, string][] = [];
    const log = { error: (fields: object, message: string) => lines.push([fields, message]) };
    const logOutage = outageLogger(10_000);
    const err = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    // an outage answers every request 503: 500 of them in 9 s
    for (let i = 0; i < 500; i++) logOutage(log, err, 1_000_000 + i * 18);
    expect(lines).toEqual([[{ err }, 'database unavailable: request answered 503']]);
    logOutage(log, err, 1_010_000);
    expect(lines[1]).toEqual([
      { err, more_503_since_last_line: 499 },
      'database unavailable: request answered 503 (and 499 more since the last such line)',
    ]);
    expect(lines).toHaveLength(2);
  });
});

describe('the methods a path takes (405)', () => {
  const routes: ApiRoute[] = [
    ['GET', '/api/v1/runs/:run_id'],
    ['HEAD', '/api/v1/runs/:run_id'],
    ['DELETE', '/api/v1/runs/:run_id'],
    ['GET', '/api/v1/runs/stats'],
    ['POST', '/api/v1/ingest'],
  ].map(([method, url]) => ({ method: method!, path: apiRoutePath(url!)! }));

  it('names the others when the method is not one of them, sorted', () => {
    expect(otherMethods(routes, 'PUT', '/api/v1/runs/r1')).toEqual(['DELETE', 'GET', 'HEAD']);
    expect(otherMethods(routes, 'GET', '/api/v1/%69ngest')).toEqual(['POST']);
    expect(otherMethods(routes, 'PUT', '/api/v1/runs/')).toEqual(['DELETE', 'GET', 'HEAD']);
  });

  it('names the methods of the route with the fewest parameters that takes the path', () => {
    // /runs/stats is its own route: the methods of /runs/:run_id are not its
    expect(otherMethods(routes, 'POST', '/api/v1/runs/stats')).toEqual(['GET']);
  });

  it('is no route when no path matches, or when one takes the very method asked', () => {
    expect(otherMethods(routes, 'GET', '/api/v1/nothing')).toBeUndefined();
    // the router did not take it (a parameter past its length limit): not a wrong method
    expect(otherMethods(routes, 'GET', `/api/v1/runs/${'a'.repeat(2000)}`)).toBeUndefined();
    expect(otherMethods(routes, 'HEAD', '/api/v1/runs/r1')).toBeUndefined();
    expect(apiRoutePath('/login')).toBeUndefined();
  });
});
