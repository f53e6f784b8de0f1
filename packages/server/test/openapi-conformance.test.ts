import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
// a CommonJS module: its function is the default export's `default` as TypeScript reads it
import addFormats from 'ajv-formats';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, describeEachDb, json, type TestApp } from './harness.js';

/**
 * `GET /api/v1/openapi.json` is generated from the schemas the routes validate with
 * (DESIGN.md), so it cannot drift from the code: this holds the server to it. Every
 * documented operation is called with realistic data, each answer's status must be one the
 * document gives the operation and its body must match that answer's schema (a JSON Schema
 * 2020-12 validator, formats included), and the routes the server registers and the paths
 * the document lists must be the same.
 */

interface MediaType {
  schema?: Record<string, unknown>;
}
interface Response {
  description: string;
  content?: Record<string, MediaType>;
}
interface Operation {
  responses: Record<string, Response>;
  requestBody?: { content: Record<string, MediaType> };
  security?: Record<string, string[]>[];
}
interface SecurityScheme {
  type: string;
  scheme?: string;
  in?: string;
  name?: string;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  security: Record<string, string[]>[];
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, SecurityScheme> };
}

/** An HTTP answer as the checks read it: from `inject`, or from a refused WebSocket upgrade. */
interface Answer {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

const COMPONENTS = 'urn:runlog:openapi:components';

/** A schema of the document whose `#/components/schemas/...` references name `COMPONENTS`. */
function rebased(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebased);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')
        ? `${COMPONENTS}#/$defs/${v.slice('#/components/schemas/'.length)}`
        : rebased(v),
    ]),
  );
}

/** `/api/v1/runs/{run_id}` as the pattern a request's path matches. */
function pathPattern(template: string): RegExp {
  const parts = template
    .split('/')
    .map((p) => (/^\{.+\}$/.test(p) ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}

/**
 * The routes of `app.printRoutes({ commonPrefix: false })`: a tree whose nodes extend their
 * parent's path, each with the methods it takes, e.g. `│   └── /:key_id (DELETE)`.
 */
function registeredRoutes(tree: string): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const url = (stack[depth - 1] ?? '') + m[2]!;
    stack.push(url);
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()))
      if (method) routes.push({ method, url });
  }
  return routes;
}

/** An API key to send as the bearer, or null to send none. */
type Key = string | null;

/** The paths of the service, outside the API's prefixes: probes and scrapers call them. */
const SERVICE_PATHS = ['/healthz', '/readyz', '/metrics'];

describeEachDb('openapi.json against the server', (dialect) => {
  let t: TestApp;
  let doc: Document;
  let ajv: Ajv2020;
  const templates: { template: string; pattern: RegExp }[] = [];
  const validators = new Map<string, ValidateFunction>();
  /** `METHOD /template STATUS` of every answer the test saw. */
  const seen = new Set<string>();

  beforeAll(async () => {
    // a small body limit and field limit, so that the 413s answer without megabytes of body
    t = await createTestApp(dialect, { bodyLimit: 256 * 1024, maxFieldBytes: 8 * 1024 });
    const res = await t.request('GET', '/api/v1/openapi.json', undefined, null);
    expect(res.statusCode).toBe(200);
    doc = json<Document>(res);
    expect(doc.openapi).toBe('3.1.0');
    // strict: a keyword the validator does not know (a typo, OpenAPI 3.0's `nullable`) fails;
    // `type: [a, b]` is JSON Schema 2020-12 (and zod's), not a mistake
    ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: COMPONENTS, $defs: rebased(doc.components.schemas) });
    // the most specific template first: `/runs/stats` before `/runs/{run_id}`
    for (const template of Object.keys(doc.paths).sort(
      (a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0),
    ))
      templates.push({ template, pattern: pathPattern(template) });
  });
  afterAll(() => t?.close());

  /** The documented path template a request's path falls under. */
  function templateOf(method: string, url: string): string {
    const path = url.split('?')[0]!;
    const found = templates.find(
      (c) => c.pattern.test(path) && doc.paths[c.template]?.[method.toLowerCase()],
    );
    if (!found) throw new Error(`${method} ${path} is not in openapi.json`);
    return found.template;
  }

  /** Errors of `value` against a schema of the document; none when it matches. */
  function mismatches(key: string, schema: Record<string, unknown>, value: unknown): string[] {
    let validate = validators.get(key);
    if (!validate) {
      validate = ajv.compile(rebased(schema) as Record<string, unknown>);
      validators.set(key, validate);
    }
    return validate(value)
      ? []
      : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
  }

  /** Whether the request's credentials are a way in the document lets the operation take. */
  function authorizedAsDocumented(op: Operation, headers: Record<string, string>): boolean {
    const holds = (id: string) => {
      const scheme = doc.components.securitySchemes[id];
      if (scheme?.type === 'http' && scheme.scheme === 'bearer')
        return /^Bearer \S+$/.test(headers.authorization ?? '');
      if (scheme?.type === 'apiKey' && scheme.in === 'cookie')
        return (headers.cookie ?? '').split(/;\s*/).some((c) => c.startsWith(`${scheme.name}=`));
      return false;
    };
    const requirements = op.security ?? doc.security;
    return (
      requirements.length === 0 ||
      requirements.some((r) => Object.keys(r).length === 0 || Object.keys(r).every(holds))
    );
  }

  /**
   * Holds one exchange to the document: the answer's status is documented for the operation
   * and its body has that answer's media type and schema; a request the server took was one
   * the document allows (its JSON body, its credentials).
   */
  function conforms(
    method: string,
    url: string,
    request: { headers: Record<string, string>; body?: unknown },
    res: Answer,
  ): void {
    const template = templateOf(method, url);
    const what = `${method} ${url} → ${res.statusCode}`;
    const op = doc.paths[template]![method.toLowerCase()]!;
    const status = String(res.statusCode);
    seen.add(`${method} ${template} ${status}`);
    if (res.statusCode < 400) {
      expect.soft(authorizedAsDocumented(op, request.headers), `${what}: credentials`).toBe(true);
      const schema = op.requestBody?.content['application/json']?.schema;
      // a 207 took some of a batch: the document may refuse the rest
      if (schema && request.body !== undefined && res.statusCode !== 207)
        expect
          .soft(
            mismatches(`${method} ${template} body`, schema, request.body),
            `${what}: request body`,
          )
          .toEqual([]);
    }
    const answer = op.responses[status];
    if (!answer) {
      expect
        .soft(Object.keys(op.responses), `${what} is not documented: ${res.body}`)
        .toContain(status);
      return;
    }
    if (!answer.content) {
      expect.soft(res.body, `${what}: documented without a body`).toBe('');
      return;
    }
    const type = String(res.headers['content-type'] ?? '').split(';')[0]!;
    const media = answer.content[type];
    if (!media) {
      expect.soft(Object.keys(answer.content), `${what}: content type`).toContain(type);
      return;
    }
    // JSON has a schema; a binary body (OTLP's protobuf) is documented by its type alone
    if (type === 'application/json')
      expect.soft(media.schema, `${what}: no schema for its JSON`).toBeDefined();
    if (!media.schema) return;
    const body: unknown = type === 'application/json' ? JSON.parse(res.body) : res.body;
    const errors = mismatches(`${method} ${template} ${status} ${type}`, media.schema, body);
    expect
      .soft(errors, `${what}: ${errors.slice(0, 8).join('; ')} in ${res.body.slice(0, 500)}`)
      .toEqual([]);
  }

  /** Sends a request (the admin key unless told), holds the exchange to the document. */
  async function call(
    method: string,
    url: string,
    opts: {
      body?: unknown;
      key?: Key;
      headers?: Record<string, string>;
      payload?: string | Buffer;
    } = {},
  ): Promise<LightMyRequestResponse> {
    const key = opts.key === undefined ? t.adminKey : opts.key;
    const headers: Record<string, string> = {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    };
    const res = await t.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : {}),
      ...(opts.payload !== undefined ? { payload: opts.payload } : {}),
    });
    conforms(method, url, { headers, body: opts.body }, res);
    return res;
  }

  /** `call`, failing unless the answer has `status`; its JSON body. */
  async function expectStatus<T = Record<string, unknown>>(
    status: number,
    method: string,
    url: string,
    opts: Parameters<typeof call>[2] = {},
  ): Promise<T> {
    const res = await call(method, url, opts);
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(status);
    const type = String(res.headers['content-type'] ?? '');
    return (type.startsWith('application/json') ? res.json() : undefined) as T;
  }

  /**
   * Opens a WebSocket to the listening app and holds the upgrade's answer to the document: a
   * 101, or a refusal in the error shape.
   */
  async function upgrade(
    base: string,
    headers: Record<string, string>,
    query = '',
  ): Promise<number> {
    const url = `/api/v1/ws${query}`;
    const answer = await new Promise<Answer>((resolve, reject) => {
      const socket = new WebSocket(`${base.replace(/^http/, 'ws')}${url}`, { headers });
      socket.on('upgrade', (res) => {
        resolve({ statusCode: res.statusCode ?? 0, headers: {}, body: '' });
        socket.close();
      });
      socket.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }),
        );
      });
      socket.on('error', reject);
    });
    conforms('GET', url, { headers }, answer);
    return answer.statusCode;
  }

  const T0 = Date.now() - 3 * 3600_000;
  const iso = (ms: number) => new Date(ms).toISOString();

  it('answers every documented operation as the document describes it', async () => {
    // ---- service
    for (const url of [...SERVICE_PATHS, '/api/v1/openapi.json'])
      await expectStatus(200, 'GET', url, { key: null });

    // ---- auth: keys and the dashboard's session
    const session = await call('POST', '/api/v1/session', {
      body: { key: t.adminKey },
      key: null,
    });
    expect(session.statusCode).toBe(200);
    const cookie = String(session.headers['set-cookie']).split(';')[0]!;
    await expectStatus(200, 'GET', '/api/v1/session', { key: null, headers: { cookie } });
    await expectStatus(401, 'POST', '/api/v1/session', { body: { key: 'rl_nope' }, key: null });
    await expectStatus(400, 'POST', '/api/v1/session', { body: {}, key: null });
    await expectStatus(204, 'DELETE', '/api/v1/session', { key: null, headers: { cookie } });
    await expectStatus(401, 'GET', '/api/v1/session', { key: null });
    await expectStatus(401, 'GET', '/api/v1/runs', { key: 'rl_not_a_key_at_all_0123456789' });

    const reader = await expectStatus<{ key: string; id: string }>(201, 'POST', '/api/v1/keys', {
      body: { scope: 'read', name: 'dashboard viewer' },
    });
    const writer = await expectStatus<{ key: string; id: string }>(201, 'POST', '/api/v1/keys', {
      body: { scope: 'write', name: 'worker fleet' },
    });
    const doomed = await expectStatus<{ id: string }>(201, 'POST', '/api/v1/keys', {
      body: { scope: 'write' },
    });
    const keys = await expectStatus<{ keys: { id: string; scope: string }[] }>(
      200,
      'GET',
      '/api/v1/keys',
    );
    const adminKeyId = keys.keys.find((k) => k.scope === 'admin')!.id;
    await expectStatus(200, 'DELETE', `/api/v1/keys/${doomed.id}`);
    await expectStatus(404, 'DELETE', `/api/v1/keys/${doomed.id}-gone`);
    // the project's last admin key stays
    await expectStatus(409, 'DELETE', `/api/v1/keys/${adminKeyId}`);
    await expectStatus(403, 'GET', '/api/v1/keys', { key: reader.key });
    await expectStatus(403, 'POST', '/api/v1/ingest', { key: reader.key, body: { events: [] } });
    await expectStatus(400, 'POST', '/api/v1/keys', { body: { scope: 'root' } });

    // ---- projects, settings, prices
    await expectStatus(200, 'GET', '/api/v1/projects');
    const other = `proj-${dialect}`;
    await expectStatus(201, 'POST', '/api/v1/projects', {
      body: { id: other, name: 'Support bots', retention_days: 60 },
    });
    await expectStatus(409, 'POST', '/api/v1/projects', { body: { id: other, name: 'Again' } });
    await expectStatus(200, 'PATCH', '/api/v1/projects/default', {
      body: { name: 'Default project', retention_days: 45 },
    });
    await expectStatus(404, 'PATCH', `/api/v1/projects/${other}`, { body: { name: 'Mine' } });
    await expectStatus(200, 'GET', '/api/v1/settings', { key: reader.key });
    await expectStatus(200, 'PATCH', '/api/v1/settings', { body: { retention_days: 30 } });
    await expectStatus(400, 'PATCH', '/api/v1/settings', { body: { retention_days: 0 } });
    await expectStatus(200, 'GET', '/api/v1/prices');
    await expectStatus(200, 'PUT', '/api/v1/prices/acme-large-2', {
      body: { input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3 },
    });
    await expectStatus(200, 'PUT', '/api/v1/prices/acme-small', {
      body: { input_per_mtok: 0.1, output_per_mtok: 0.4 },
    });
    await expectStatus(204, 'DELETE', '/api/v1/prices/acme-small');
    await expectStatus(404, 'DELETE', '/api/v1/prices/acme-small');
    // a request naming another project than its key's
    await expectStatus(409, 'GET', '/api/v1/runs', { headers: { 'x-runlog-project': other } });

    // ---- webhooks: an endpoint on a real local receiver, a delivery, a ping
    const hooked = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((resolve) => hooked.listen(0, '127.0.0.1', resolve));
    try {
      const hookUrl = `http://127.0.0.1:${(hooked.address() as AddressInfo).port}/runlog`;
      const hook = await expectStatus<{ id: string }>(201, 'POST', '/api/v1/webhooks', {
        body: {
          url: hookUrl,
          events: ['run.failed', 'run.timed_out'],
          agent_ids: ['hooked-agent'],
          description: 'pager relay',
        },
      });
      await expectStatus(400, 'POST', '/api/v1/webhooks', { body: { url: 'ftp://x.example' } });
      await expectStatus(403, 'GET', '/api/v1/webhooks', { key: reader.key });
      await expectStatus(200, 'POST', '/api/v1/ingest', {
        body: {
          events: [
            {
              type: 'run.end',
              run: { id: 'hooked-run', agent_id: 'hooked-agent', status: 'failed' },
            },
          ],
        },
      });
      expect(await t.ctx.deliverer.deliverDue()).toBe(1);
      await expectStatus(200, 'GET', '/api/v1/webhooks');
      await expectStatus(200, 'GET', `/api/v1/webhooks/${hook.id}`);
      await expectStatus(404, 'GET', '/api/v1/webhooks/nope');
      await expectStatus(200, 'PATCH', `/api/v1/webhooks/${hook.id}`, {
        body: { enabled: false, agent_ids: null },
      });
      await expectStatus(400, 'PATCH', `/api/v1/webhooks/${hook.id}`, { body: { events: [] } });
      await expectStatus(404, 'PATCH', '/api/v1/webhooks/nope', { body: { enabled: true } });
      await expectStatus(200, 'POST', `/api/v1/webhooks/${hook.id}/test`);
      await expectStatus(404, 'POST', '/api/v1/webhooks/nope/test');
      const listed = await expectStatus<{ deliveries: { id: string }[] }>(
        200,
        'GET',
        `/api/v1/webhooks/${hook.id}/deliveries?limit=10`,
      );
      await expectStatus(
        200,
        'POST',
        `/api/v1/webhooks/${hook.id}/deliveries/${listed.deliveries[0]!.id}/retry`,
      );
      await expectStatus(404, 'POST', `/api/v1/webhooks/${hook.id}/deliveries/nope/retry`);
      await expectStatus(200, 'GET', `/api/v1/webhooks/${hook.id}/deliveries?status=failed`);
      await expectStatus(400, 'GET', `/api/v1/webhooks/${hook.id}/deliveries?limit=0`);
      await expectStatus(404, 'GET', '/api/v1/webhooks/nope/deliveries');
      await expectStatus(204, 'DELETE', `/api/v1/webhooks/${hook.id}`);
      await expectStatus(404, 'DELETE', `/api/v1/webhooks/${hook.id}`);
    } finally {
      hooked.closeAllConnections();
      await new Promise((resolve) => hooked.close(resolve));
    }

    // ---- agents with schedules and limits
    await expectStatus(200, 'PUT', '/api/v1/agents/bug-triager', {
      body: {
        name: 'Bug triager',
        description: 'Labels and routes new issues',
        schedule: { cron: '0 * * * *', timezone: 'Europe/Paris' },
        timeout_ms: 600_000,
        max_cost_usd: 2.5,
        max_tokens: 200_000,
        max_steps: 200,
        metadata: { team: 'platform', owners: ['ana', 'li'] },
      },
    });
    await expectStatus(200, 'PUT', '/api/v1/agents/summarizer', {
      body: { name: 'Summarizer', schedule: null, max_cost_usd: null },
    });
    await expectStatus(400, 'PUT', '/api/v1/agents/bug-triager', {
      body: { schedule: { cron: 'every minute' } },
    });
    await expectStatus(400, 'PUT', '/api/v1/agents/bad%20id', { body: {} });

    // ---- recording: /ingest with nested steps, errors, scores, threads
    const runA = `run-a-${dialect}`;
    const runB = `run-b-${dialect}`;
    const ingest = await call('POST', '/api/v1/ingest', {
      body: {
        events: [
          {
            type: 'run.start',
            run: {
              id: runA,
              agent_id: 'bug-triager',
              trigger: 'api',
              source: 'n8n',
              triggered_by: 'workflow-17',
              user_id: 'user-42',
              thread_id: 'thread-1',
              input: { issue: 4211, title: 'Crash on save', body: 'x'.repeat(9000) },
              model: 'gpt-4o-mini',
              tags: ['triage', 'prod'],
              metadata: { repo: 'acme/web' },
              started_at: iso(T0),
            },
          },
          {
            type: 'step.start',
            step: {
              id: 'plan',
              run_id: runA,
              type: 'llm',
              name: 'plan',
              model: 'gpt-4o-mini',
              provider: 'openai',
              started_at: T0 + 10,
              input: [{ role: 'user', content: 'Triage issue 4211' }],
            },
          },
          {
            type: 'step.end',
            step: {
              id: 'plan',
              run_id: runA,
              status: 'succeeded',
              ended_at: T0 + 900,
              input_tokens: 1200,
              output_tokens: 300,
              cached_input_tokens: 200,
              output: { plan: ['search', 'label'] },
            },
          },
          {
            type: 'step.end',
            step: {
              id: 'search',
              run_id: runA,
              parent_step_id: 'plan',
              type: 'tool',
              name: 'search_issues',
              status: 'failed',
              started_at: T0 + 1000,
              ended_at: T0 + 1400,
              input: { q: 'crash on save' },
              error: { message: 'rate limited', type: 'HTTPError' },
            },
          },
          {
            type: 'step.end',
            step: {
              id: 'sub',
              run_id: runA,
              parent_step_id: 'plan',
              type: 'agent',
              name: 'labeler',
              started_at: T0 + 1500,
              ended_at: T0 + 2500,
            },
          },
          {
            type: 'step.end',
            step: {
              id: 'emb',
              run_id: runA,
              parent_step_id: 'sub',
              type: 'embedding',
              model: 'text-embedding-3-small',
              started_at: T0 + 1600,
              ended_at: T0 + 1700,
              input_tokens: 40,
            },
          },
          {
            type: 'score',
            score: { id: 'helpful', run_id: runA, name: 'helpfulness', value: 0.8 },
          },
          {
            type: 'run.end',
            run: {
              id: runA,
              status: 'completed',
              ended_at: iso(T0 + 3000),
              output: { labels: ['bug', 'p1'] },
            },
          },
          {
            type: 'run.end',
            run: {
              id: runB,
              agent_id: 'bug-triager',
              status: 'error',
              thread_id: 'thread-1',
              user_id: 'user-42',
              started_at: T0 + 3600_000,
              ended_at: T0 + 3600_000 + 1200,
              error: { message: 'model refused', type: 'RefusalError', stack: 'at plan()' },
            },
          },
          {
            type: 'run.start',
            run: {
              id: `run-child-${dialect}`,
              agent_id: 'labeler',
              parent_run_id: runA,
              started_at: T0 + 1500,
            },
          },
          { type: 'run.heartbeat', run: { id: `run-child-${dialect}` } },
          // a crash whose stack is over the field limit: stored truncated, with a marker
          {
            type: 'run.end',
            run: {
              id: `run-crash-${dialect}`,
              agent_id: 'crasher',
              status: 'failed',
              thread_id: 'thread-3',
              started_at: T0 + 100,
              ended_at: T0 + 200,
              error: {
                message: 'stack overflow',
                type: 'RangeError',
                stack: 'at f()\n'.repeat(3000),
              },
              metadata: { trace: 'm'.repeat(9000) },
            },
          },
          {
            type: 'step.end',
            step: {
              id: 'deep',
              run_id: `run-crash-${dialect}`,
              type: 'tool',
              status: 'failed',
              error: 'e'.repeat(9000),
            },
          },
        ],
      },
    });
    expect(ingest.statusCode, ingest.body).toBe(200);
    const partial = await call('POST', '/api/v1/ingest', {
      body: {
        events: [
          { type: 'run.update', run: { id: runA, metadata: { reviewed: true } } },
          { type: 'step.start', step: { id: 's', run_id: runA, type: 'teleport' } },
          { type: 'run.start', run: { id: '..' } },
        ],
      },
    });
    expect(partial.statusCode, partial.body).toBe(207);
    await expectStatus(400, 'POST', '/api/v1/ingest', { body: {} });
    await expectStatus(400, 'POST', '/api/v1/ingest', {
      payload: '{"events": [',
      headers: { 'content-type': 'application/json' },
    });
    await expectStatus(400, 'POST', '/api/v1/ingest', {
      payload: 'not json',
      headers: { 'content-type': 'text/plain' },
    });
    await expectStatus(401, 'POST', '/api/v1/ingest', { key: null, body: { events: [] } });

    // REST sugar over the same write path
    const restRun = `rest-${dialect}`;
    await expectStatus(201, 'POST', '/api/v1/runs', {
      body: {
        id: restRun,
        agent_id: 'summarizer',
        trigger: 'manual',
        thread_id: 'thread-2',
        input: 'Summarize the standup notes',
        tags: ['daily'],
      },
    });
    await expectStatus(409, 'POST', '/api/v1/runs', {
      body: { id: restRun, agent_id: 'bug-triager' },
    });
    await expectStatus(400, 'POST', '/api/v1/runs', { body: { agent_id: '' } });
    await expectStatus(201, 'POST', `/api/v1/runs/${restRun}/steps`, {
      body: {
        id: 'draft',
        type: 'llm',
        name: 'draft',
        model: 'claude-3-5-sonnet',
        status: 'succeeded',
        input_tokens: 800,
        output_tokens: 200,
        duration_ms: 1500,
        output: 'Done: 3 items',
      },
    });
    await expectStatus(201, 'POST', `/api/v1/runs/${restRun}/steps`, {
      body: { type: 'think', name: 'reflect' },
    });
    await expectStatus(404, 'POST', '/api/v1/runs/no-such-run/steps', { body: { type: 'tool' } });
    await expectStatus(200, 'PATCH', `/api/v1/runs/${restRun}`, {
      body: { metadata: { note: 'halfway' } },
    });
    await expectStatus(409, 'PATCH', `/api/v1/runs/${restRun}`, {
      body: { agent_id: 'bug-triager' },
    });
    await expectStatus(200, 'PATCH', `/api/v1/runs/${restRun}`, {
      body: { status: 'succeeded', output: { summary: '3 items' } },
    });
    await expectStatus(404, 'PATCH', '/api/v1/runs/no-such-run', { body: { status: 'failed' } });

    // scores
    await expectStatus(201, 'POST', `/api/v1/runs/${runA}/scores`, {
      body: { id: 'verdict', name: 'correct', value: true, source: 'reviewer', comment: 'ok' },
    });
    await expectStatus(200, 'POST', `/api/v1/runs/${runA}/scores`, {
      body: { id: 'verdict', name: 'correct', value: false },
    });
    await expectStatus(201, 'POST', `/api/v1/runs/${runA}/scores`, {
      body: { name: 'category', value: 'regression', step_id: 'plan', metadata: { by: 'llm' } },
    });
    await expectStatus(400, 'POST', `/api/v1/runs/${runA}/scores`, {
      body: { name: 'x', value: 1, step_id: 'no-such-step' },
    });
    await expectStatus(404, 'POST', '/api/v1/runs/no-such-run/scores', {
      body: { name: 'x', value: 1 },
    });
    await expectStatus(200, 'GET', `/api/v1/runs/${runA}/scores`);
    await expectStatus(404, 'GET', '/api/v1/runs/no-such-run/scores');
    await expectStatus(204, 'DELETE', `/api/v1/runs/${runA}/scores/verdict`);
    await expectStatus(404, 'DELETE', `/api/v1/runs/${runA}/scores/verdict`);

    // ---- reading runs
    const list = await expectStatus<{ next_cursor: string | null }>(
      200,
      'GET',
      '/api/v1/runs?limit=2',
    );
    expect(list.next_cursor).not.toBeNull();
    await expectStatus(200, 'GET', `/api/v1/runs?limit=2&cursor=${list.next_cursor}`);
    await expectStatus(
      200,
      'GET',
      `/api/v1/runs?agent_id=bug-triager,summarizer&status=succeeded,failed&trigger=api&` +
        `user_id=user-42&thread_id=thread-1&tag=triage&source=n8n&model=gpt-4o-mini&` +
        `from=${iso(T0 - 1000)}&to=${iso(Date.now())}&q=crash&offset=0&sort=cost`,
    );
    await expectStatus(
      200,
      'GET',
      `/api/v1/runs?score=helpfulness&score_min=0.5&score_max=1&parent_run_id=${runA}`,
    );
    await expectStatus(200, 'GET', `/api/v1/runs?retry_of=${runB}&sort=duration`);
    await expectStatus(400, 'GET', '/api/v1/runs?status=exploded');
    await expectStatus(400, 'GET', '/api/v1/runs?stauts=failed');
    await expectStatus(400, 'GET', `/api/v1/runs?from=${iso(T0)}&to=${iso(T0 - 1)}`);
    await expectStatus(200, 'GET', `/api/v1/runs/${runA}`, { key: reader.key });
    await expectStatus(200, 'GET', `/api/v1/runs/${runA}?include=steps`);
    await expectStatus(404, 'GET', '/api/v1/runs/no-such-run');
    const steps = await expectStatus<{ next_cursor: string | null }>(
      200,
      'GET',
      `/api/v1/runs/${runA}/steps?limit=2`,
    );
    await expectStatus(200, 'GET', `/api/v1/runs/${runA}/steps?cursor=${steps.next_cursor}`);
    await expectStatus(400, 'GET', `/api/v1/runs/${runA}/steps?cursor=garbage`);
    await expectStatus(404, 'GET', '/api/v1/runs/no-such-run/steps');
    await expectStatus(200, 'GET', `/api/v1/runs/${runA}/timeline`);
    await expectStatus(200, 'GET', `/api/v1/runs/run-child-${dialect}/timeline`);
    await expectStatus(404, 'GET', '/api/v1/runs/no-such-run/timeline');
    for (const url of [
      `/api/v1/runs/run-crash-${dialect}?include=steps`,
      `/api/v1/runs/run-crash-${dialect}/steps`,
      `/api/v1/runs/run-crash-${dialect}/timeline`,
      '/api/v1/runs?agent_id=crasher',
      '/api/v1/agents/crasher',
      '/api/v1/threads/thread-3',
    ])
      await expectStatus(200, 'GET', url);

    // ---- threads
    const threads = await expectStatus<{ next_cursor: string | null }>(
      200,
      'GET',
      '/api/v1/threads?limit=1',
    );
    await expectStatus(200, 'GET', `/api/v1/threads?limit=1&cursor=${threads.next_cursor}`);
    await expectStatus(
      200,
      'GET',
      `/api/v1/threads?agent_id=bug-triager&user_id=user-42&from=${T0 - 1000}`,
    );
    await expectStatus(200, 'GET', '/api/v1/threads/thread-1');
    await expectStatus(404, 'GET', '/api/v1/threads/thread-none');
    await expectStatus(400, 'GET', '/api/v1/threads?limit=0');

    // ---- users
    const users = await expectStatus<{ next_cursor: string | null }>(
      200,
      'GET',
      '/api/v1/users?limit=1',
    );
    await expectStatus(
      200,
      'GET',
      `/api/v1/users?limit=1${users.next_cursor ? `&cursor=${users.next_cursor}` : ''}`,
    );
    await expectStatus(200, 'GET', `/api/v1/users?agent_id=bug-triager&from=${T0 - 1000}`);
    await expectStatus(200, 'GET', '/api/v1/users/user-42');
    await expectStatus(404, 'GET', '/api/v1/users/user-none');
    await expectStatus(400, 'GET', '/api/v1/users?limit=0');

    // ---- exports: CSV and JSON Lines, not JSON
    await expectStatus(200, 'GET', '/api/v1/runs.csv?agent_id=bug-triager&limit=5');
    await expectStatus(200, 'GET', '/api/v1/runs.jsonl?status=failed,succeeded&sort=cost');
    await expectStatus(400, 'GET', '/api/v1/runs.csv?limit=0');
    await expectStatus(400, 'GET', '/api/v1/runs.jsonl?cursor=abc');

    // ---- stats with buckets
    await expectStatus(200, 'GET', '/api/v1/runs/stats');
    await expectStatus(
      200,
      'GET',
      `/api/v1/runs/stats?bucket=hour&from=${iso(T0 - 3600_000)}&to=${iso(Date.now())}`,
    );
    await expectStatus(200, 'GET', '/api/v1/runs/stats?bucket=day&agent_id=bug-triager,summarizer');
    await expectStatus(400, 'GET', '/api/v1/runs/stats?bucket=week');
    // Prometheus text, not JSON
    await expectStatus(200, 'GET', '/api/v1/metrics');
    // days of a zone: the same answer's shape, read from the hourly rollups
    await expectStatus(200, 'GET', '/api/v1/runs/stats?bucket=day&tz=America/Los_Angeles');
    await expectStatus(400, 'GET', '/api/v1/runs/stats?tz=Mars/Olympus');

    // ---- agents: list, detail, runs, enqueue
    await expectStatus(200, 'GET', '/api/v1/agents');
    await expectStatus(200, 'GET', '/api/v1/agents/bug-triager');
    await expectStatus(200, 'GET', '/api/v1/agents/bug-triager?include=runs');
    await expectStatus(404, 'GET', '/api/v1/agents/nobody');
    await expectStatus(
      200,
      'GET',
      '/api/v1/agents/bug-triager/runs?limit=1&status=failed,succeeded',
    );
    await expectStatus(404, 'GET', '/api/v1/agents/nobody/runs');
    const queued = await expectStatus<{ id: string }>(
      202,
      'POST',
      '/api/v1/agents/summarizer/runs',
      {
        body: {
          input: { notes: 'standup 2026-12-06' },
          trigger: 'manual',
          source: 'dashboard',
          thread_id: 'thread-2',
          metadata: { requested_by: 'ana' },
        },
      },
    );
    await expectStatus(409, 'POST', '/api/v1/agents/bug-triager/runs', {
      body: { id: queued.id },
    });
    await expectStatus(413, 'POST', '/api/v1/agents/summarizer/runs', {
      body: { input: 'y'.repeat(20_000) },
    });
    await expectStatus(202, 'POST', '/api/v1/runs/enqueue', {
      body: {
        runs: [
          { agent_id: 'summarizer', input: { doc: 1 } },
          { agent_id: 'bug-triager', input: { issue: 4300 }, tags: ['batch'] },
        ],
      },
    });
    await expectStatus(409, 'POST', '/api/v1/runs/enqueue', {
      body: { runs: [{ agent_id: 'bug-triager', id: queued.id }] },
    });
    await expectStatus(400, 'POST', '/api/v1/runs/enqueue', { body: { runs: [] } });

    // ---- workers: claims, heartbeats, release, stop
    const claimed = await expectStatus<{ id: string }>(200, 'POST', '/api/v1/workers/claim', {
      key: writer.key,
      body: { agents: ['summarizer'], lease_ms: 60_000, worker_id: 'worker-1' },
    });
    const batch = await expectStatus<{ runs: { id: string }[] }>(
      200,
      'POST',
      '/api/v1/workers/claim',
      { key: writer.key, body: { agents: ['summarizer', 'bug-triager'], max: 5, worker_id: 'w2' } },
    );
    expect(batch.runs.length).toBeGreaterThan(0);
    await expectStatus(204, 'POST', '/api/v1/workers/claim', {
      key: writer.key,
      body: { agents: ['summarizer'], wait_ms: 0 },
    });
    await expectStatus(400, 'POST', '/api/v1/workers/claim', { body: { agents: [] } });
    await expectStatus(200, 'POST', `/api/v1/runs/${claimed.id}/heartbeat`, {
      body: { lease_ms: 60_000, worker_id: 'worker-1' },
    });
    await expectStatus(409, 'POST', `/api/v1/runs/${claimed.id}/heartbeat`, {
      body: { worker_id: 'someone-else' },
    });
    await expectStatus(404, 'POST', '/api/v1/runs/no-such-run/heartbeat', { body: {} });
    await expectStatus(200, 'POST', '/api/v1/runs/heartbeat', {
      body: { runs: [claimed.id, 'no-such-run', batch.runs[0]!.id], worker_id: 'worker-1' },
    });
    await expectStatus(200, 'GET', '/api/v1/workers');
    await expectStatus(409, 'POST', `/api/v1/runs/${claimed.id}/release`, {
      body: { worker_id: 'someone-else' },
    });
    await expectStatus(200, 'POST', `/api/v1/runs/${claimed.id}/release`, {
      body: { worker_id: 'worker-1' },
    });
    await expectStatus(409, 'POST', `/api/v1/runs/run-child-${dialect}/release`, { body: {} });
    await expectStatus(204, 'DELETE', '/api/v1/workers/w2?release=true');
    await expectStatus(400, 'DELETE', '/api/v1/workers/w2?release=maybe');

    // ---- Stop, Retry, Delete
    await expectStatus(200, 'POST', `/api/v1/runs/${claimed.id}/cancel`);
    await expectStatus(200, 'POST', `/api/v1/runs/run-child-${dialect}/cancel`);
    await expectStatus(409, 'POST', `/api/v1/runs/${runA}/cancel`);
    await expectStatus(404, 'POST', '/api/v1/runs/no-such-run/cancel');
    const retry = await expectStatus<{ id: string }>(201, 'POST', `/api/v1/runs/${runB}/retry`, {
      body: { id: `retry-${dialect}` },
    });
    expect(retry.id).toBe(`retry-${dialect}`);
    await expectStatus(201, 'POST', `/api/v1/runs/${runB}/retry`);
    // once: retried already, so the newest retry comes back (200) and nothing is queued
    await expectStatus(200, 'POST', `/api/v1/runs/${runB}/retry`, { body: { once: true } });
    await expectStatus(409, 'POST', `/api/v1/runs/${retry.id}/retry`);
    // Start now: the queued retry (due already, answered as it is); an ended run is a 409
    await expectStatus(200, 'POST', `/api/v1/runs/${retry.id}/start-now`);
    await expectStatus(409, 'POST', `/api/v1/runs/${runA}/start-now`);
    await expectStatus(404, 'POST', '/api/v1/runs/no-such-run/start-now');
    await expectStatus(204, 'DELETE', `/api/v1/runs/${restRun}`);
    await expectStatus(404, 'DELETE', `/api/v1/runs/${restRun}`);
    await expectStatus(204, 'DELETE', '/api/v1/agents/summarizer');
    await expectStatus(404, 'DELETE', '/api/v1/agents/summarizer');

    // ---- OpenTelemetry
    const traceId = dialect === 'sqlite' ? '0af7651916cd43dd8448eb211c80319c' : 'b'.repeat(32);
    const attr = (key: string, value: string | number) => ({
      key,
      value: typeof value === 'string' ? { stringValue: value } : { intValue: String(value) },
    });
    const ns = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
    const traces = {
      resourceSpans: [
        {
          resource: { attributes: [attr('service.name', 'support-bot')] },
          scopeSpans: [
            {
              scope: { name: 'ai' },
              spans: [
                {
                  traceId,
                  spanId: 'a000000000000001',
                  name: 'invoke_agent support',
                  kind: 1,
                  startTimeUnixNano: ns(T0),
                  endTimeUnixNano: ns(T0 + 2000),
                  attributes: [
                    attr('gen_ai.operation.name', 'invoke_agent'),
                    attr('gen_ai.agent.name', 'support'),
                  ],
                  status: { code: 1 },
                },
                {
                  traceId,
                  spanId: 'a000000000000002',
                  parentSpanId: 'a000000000000001',
                  name: 'chat gpt-4o',
                  kind: 3,
                  startTimeUnixNano: ns(T0 + 10),
                  endTimeUnixNano: ns(T0 + 900),
                  attributes: [
                    attr('gen_ai.operation.name', 'chat'),
                    attr('gen_ai.request.model', 'gpt-4o'),
                    attr('gen_ai.usage.input_tokens', 500),
                    attr('gen_ai.usage.output_tokens', 120),
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    await expectStatus(200, 'POST', '/v1/traces', { body: traces });
    await expectStatus(200, 'POST', '/v1/traces', {
      payload: gzipSync(JSON.stringify(traces)),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    await expectStatus(200, 'POST', '/v1/traces', {
      body: {
        resourceSpans: [
          { scopeSpans: [{ spans: [{ traceId: 'nope', spanId: 'x', name: 'broken' }] }] },
        ],
      },
    });
    await expectStatus(400, 'POST', '/v1/traces', { body: { resourceSpans: 'many' } });
    await expectStatus(415, 'POST', '/v1/traces', {
      payload: 'spans',
      headers: { 'content-type': 'text/plain' },
    });
    await expectStatus(401, 'POST', '/v1/traces', { key: null, body: traces });
    // protobuf, as the Collector sends it: answered in protobuf, errors too
    await expectStatus(200, 'POST', '/v1/traces', {
      payload: Buffer.alloc(0),
      headers: { 'content-type': 'application/x-protobuf' },
    });
    await expectStatus(400, 'POST', '/v1/traces', {
      payload: Buffer.from([0x0a, 0xff, 0xff, 0xff]),
      headers: { 'content-type': 'application/x-protobuf' },
    });

    // ---- bodies over the limits
    const over = {
      events: [{ type: 'run.start', run: { id: 'big', input: 'z'.repeat(300_000) } }],
    };
    await expectStatus(413, 'POST', '/api/v1/ingest', { body: over });
    await expectStatus(413, 'POST', '/api/v1/session', {
      key: null,
      body: { key: 'k'.repeat(20_000) },
    });

    // ---- realtime: a plain GET is told to upgrade; an upgrade is taken over a real socket
    await expectStatus(400, 'GET', '/api/v1/ws');
    await expectStatus(401, 'GET', '/api/v1/ws', { key: null });
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    expect(await upgrade(address, { authorization: `Bearer ${reader.key}` })).toBe(101);
    // the dashboard's way: its session cookie (the one above has ended)
    expect(await upgrade(address, { cookie })).toBe(401);
    const again = await call('POST', '/api/v1/session', { body: { key: reader.key }, key: null });
    const live = String(again.headers['set-cookie']).split(';')[0]!;
    expect(await upgrade(address, { cookie: live })).toBe(101);
    expect(await upgrade(address, {})).toBe(401);
    expect(
      await upgrade(address, { authorization: `Bearer ${reader.key}` }, `?project=${other}`),
    ).toBe(401);
    expect(
      await upgrade(address, {
        authorization: `Bearer ${reader.key}`,
        'x-runlog-project': other,
      }),
    ).toBe(409);

    // ---- every answer an operation documents besides its errors was seen
    const unseen: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(methods))
        for (const status of Object.keys(op.responses))
          if (Number(status) < 400 && !seen.has(`${method.toUpperCase()} ${path} ${status}`))
            unseen.push(`${method.toUpperCase()} ${path} ${status}`);
    expect(unseen).toEqual([]);
  });

  it('lists exactly the routes the server registers', () => {
    const registered = registeredRoutes(t.app.printRoutes({ commonPrefix: false }))
      // the API and the service, not the dashboard's pages and files; HEAD answers for every
      // GET (Fastify's exposeHeadRoutes) and is not an operation of its own
      .filter(
        (r) =>
          (/^\/(api|v1)\//.test(r.url) || SERVICE_PATHS.includes(r.url)) && r.method !== 'HEAD',
      )
      .map((r) => `${r.method} ${r.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(registered.length).toBeGreaterThan(40);
    expect([...registered].sort()).toEqual([...documented].sort());
  });
});
