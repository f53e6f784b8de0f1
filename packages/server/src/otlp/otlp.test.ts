import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readableError, type ApiErrorBody } from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';
import { findRun, listSteps } from '../runs/runs.repository.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import { ExportTraceServiceRequest, mapTraces, sanitizeId } from './otlp.mapper.js';
import { decodeTraceRequest } from './otlp.protobuf.js';
import { MAX_OTLP_OBJECTS, MAX_OTLP_SPANS } from './otlp.routes.js';
import { sweepOnce } from '../control/sweeper.js';

const T0 = BigInt(Date.parse('2026-03-01T10:00:00.000Z')) * 1_000_000n;
const at = (msOffset: number) => (T0 + BigInt(msOffset) * 1_000_000n).toString();

type Value = string | number | boolean;
const attr = (key: string, value: Value) => ({
  key,
  value:
    typeof value === 'string'
      ? { stringValue: value }
      : typeof value === 'boolean'
        ? { boolValue: value }
        : Number.isInteger(value)
          ? { intValue: String(value) }
          : { doubleValue: value },
});

interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  start: number;
  end: number;
  attrs?: Record<string, Value>;
  status?: { code: number; message?: string };
  events?: { name: string; at: number; attrs?: Record<string, Value> }[];
}

function span(s: SpanSpec) {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
    name: s.name,
    kind: 1,
    startTimeUnixNano: at(s.start),
    endTimeUnixNano: at(s.end),
    attributes: Object.entries(s.attrs ?? {}).map(([k, v]) => attr(k, v)),
    ...(s.status ? { status: s.status } : {}),
    ...(s.events
      ? {
          events: s.events.map((e) => ({
            timeUnixNano: at(e.at),
            name: e.name,
            attributes: Object.entries(e.attrs ?? {}).map(([k, v]) => attr(k, v)),
          })),
        }
      : {}),
  };
}

function request(spans: SpanSpec[], service = 'my-service') {
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', service)] },
        scopeSpans: [{ scope: { name: 'test' }, spans: spans.map(span) }],
      },
    ],
  };
}

/** The HTTP span a service's trace starts with (it names no agent): `POST /triage`, 0–1100 ms. */
function httpRoot(traceId: string, over: Partial<SpanSpec> = {}): SpanSpec {
  return {
    traceId,
    spanId: 'f000000000000001',
    name: 'POST /triage',
    start: 0,
    end: 1100,
    ...over,
  };
}

/** An invoke_agent root, a chat span under it and a tool call under the chat. */
function agentTrace(traceId: string, opts: { error?: string } = {}): SpanSpec[] {
  return [
    {
      traceId,
      spanId: 'a000000000000001',
      name: 'invoke_agent bug triager',
      start: 0,
      end: 1000,
      attrs: {
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.agent.name': 'bug triager',
        'gen_ai.input.messages': '[{"role":"user","content":"triage #42"}]',
        'gen_ai.output.messages': '[{"role":"assistant","content":"done"}]',
      },
      ...(opts.error ? { status: { code: 2, message: opts.error } } : { status: { code: 1 } }),
    },
    {
      traceId,
      spanId: 'a000000000000002',
      parentSpanId: 'a000000000000001',
      name: 'chat gpt-4o-mini',
      start: 10,
      end: 510,
      attrs: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 1200,
        'gen_ai.usage.output_tokens': 300,
      },
    },
    {
      traceId,
      spanId: 'a000000000000003',
      parentSpanId: 'a000000000000002',
      name: 'execute_tool search',
      start: 600,
      end: 900,
      attrs: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'search',
        'gen_ai.tool.call.arguments': '{"q":"bug"}',
      },
    },
  ];
}

// ---------------------------------------------------------------------------
// A tiny protobuf encoder for the test payloads

function varint(n: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const tag = (field: number, wire: number) => varint(BigInt((field << 3) | wire));
const lenField = (field: number, body: Buffer) =>
  Buffer.concat([tag(field, 2), varint(BigInt(body.length)), body]);
const strField = (field: number, s: string) => lenField(field, Buffer.from(s, 'utf8'));
const fixed64 = (field: number, v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return Buffer.concat([tag(field, 1), b]);
};

function pbAnyValue(v: Value): Buffer {
  if (typeof v === 'string') return strField(1, v);
  if (typeof v === 'boolean') return Buffer.concat([tag(2, 0), varint(v ? 1n : 0n)]);
  if (Number.isInteger(v)) return Buffer.concat([tag(3, 0), varint(BigInt(v))]);
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return Buffer.concat([tag(4, 1), b]);
}
const pbKeyValue = (k: string, v: Value) =>
  Buffer.concat([strField(1, k), lenField(2, pbAnyValue(v))]);

function pbSpan(s: SpanSpec): Buffer {
  const parts = [
    // an empty id is left out, as protobuf encoders leave out every field at its default
    ...(s.traceId ? [lenField(1, Buffer.from(s.traceId, 'hex'))] : []),
    ...(s.spanId ? [lenField(2, Buffer.from(s.spanId, 'hex'))] : []),
    ...(s.parentSpanId ? [lenField(4, Buffer.from(s.parentSpanId, 'hex'))] : []),
    strField(5, s.name),
    Buffer.concat([tag(6, 0), varint(1n)]),
    fixed64(7, BigInt(at(s.start))),
    fixed64(8, BigInt(at(s.end))),
    ...Object.entries(s.attrs ?? {}).map(([k, v]) => lenField(9, pbKeyValue(k, v))),
    ...(s.events ?? []).map((e) =>
      lenField(
        11,
        Buffer.concat([
          fixed64(1, BigInt(at(e.at))),
          strField(2, e.name),
          ...Object.entries(e.attrs ?? {}).map(([k, v]) => lenField(3, pbKeyValue(k, v))),
          Buffer.concat([tag(4, 0), varint(0n)]),
        ]),
      ),
    ),
    ...(s.status
      ? [
          lenField(
            15,
            Buffer.concat([
              ...(s.status.message ? [strField(2, s.status.message)] : []),
              tag(3, 0),
              varint(BigInt(s.status.code)),
            ]),
          ),
        ]
      : []),
  ];
  return Buffer.concat(parts);
}

function pbRequest(spans: SpanSpec[], service = 'my-service'): Buffer {
  const resource = lenField(1, pbKeyValue('service.name', service));
  const scopeSpans = Buffer.concat([
    lenField(1, strField(1, 'test')),
    ...spans.map((s) => lenField(2, pbSpan(s))),
  ]);
  return lenField(1, Buffer.concat([lenField(1, resource), lenField(2, scopeSpans)]));
}

/** An OTLP error answer: google.rpc.Status { int32 code = 1; string message = 2 }. */
function readStatus(body: Buffer) {
  const fields = new Map<number, number | string>();
  for (let pos = 0; pos < body.length;) {
    const tag = body[pos++]!;
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = body[pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    if ((tag & 7) === 2) {
      fields.set(tag >> 3, body.subarray(pos, pos + value).toString('utf8'));
      pos += value;
    } else fields.set(tag >> 3, value);
  }
  return { code: fields.get(1), message: fields.get(2) };
}

// ---------------------------------------------------------------------------

describe('OTLP mapping', () => {
  it('decodes protobuf into the same shape as OTLP JSON', () => {
    const spans = agentTrace('0af7651916cd43dd8448eb211c80319c');
    const fromPb = ExportTraceServiceRequest.parse(decodeTraceRequest(pbRequest(spans)));
    const fromJson = ExportTraceServiceRequest.parse(request(spans));
    expect(mapTraces(fromPb)).toEqual(mapTraces(fromJson));
    expect(mapTraces(fromPb).events).toHaveLength(4);
  });

  it('makes a run of a trace whose root is missing from the batch and keeps its spans as steps', () => {
    const [, chat, tool] = agentTrace('1af7651916cd43dd8448eb211c80319c');
    const { events } = mapTraces(ExportTraceServiceRequest.parse(request([chat!, tool!])));
    expect(events.map((e) => e.type)).toEqual(['run.start', 'step.end', 'step.end']);
    expect(events[0]).toMatchObject({
      run: { agent_id: 'my-service', metadata: { otel_stand_in: 'spans' } },
    });
    expect(events[1]).toMatchObject({
      step: { run_id: 'otel-1af7651916cd43dd8448eb211c80319c', parent_step_id: 'a000000000000001' },
    });
  });

  it('decodes every attribute value kind and skips unknown fields', () => {
    const arrayValue = lenField(
      5,
      Buffer.concat([lenField(1, strField(1, 'a')), lenField(1, pbAnyValue(2))]),
    );
    const spanBody = Buffer.concat([
      pbSpan({
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'a000000000000009',
        name: 'x',
        start: 0,
        end: 1,
        attrs: { neg: -5, ok: true, ratio: 0.5 },
      }),
      lenField(9, Buffer.concat([strField(1, 'list'), lenField(2, arrayValue)])),
      strField(3, 'tracestate=1'), // trace_state: not read
      lenField(12, strField(2, 'a link')), // links: skipped
      Buffer.concat([tag(16, 5), Buffer.alloc(4)]), // flags (fixed32): skipped
    ]);
    const decoded = ExportTraceServiceRequest.parse(
      decodeTraceRequest(lenField(1, lenField(2, lenField(2, spanBody)))),
    );
    const attrs = decoded.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[0]?.attributes;
    expect(attrs).toEqual([
      { key: 'neg', value: { intValue: '-5' } },
      { key: 'ok', value: { boolValue: true } },
      { key: 'ratio', value: { doubleValue: 0.5 } },
      { key: 'list', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }] } } },
    ]);
  });

  it('decodes span events from protobuf as OTLP JSON has them', () => {
    const [root, chat] = agentTrace('0af7651916cd43dd8448eb211c80319c');
    const spans: SpanSpec[] = [
      root!,
      {
        ...chat!,
        events: [
          { name: 'gen_ai.user.message', at: 20, attrs: { content: 'hi' } },
          { name: 'exception', at: 30, attrs: { 'exception.type': 'Error', n: 2 } },
        ],
      },
    ];
    const fromPb = ExportTraceServiceRequest.parse(decodeTraceRequest(pbRequest(spans)));
    const fromJson = ExportTraceServiceRequest.parse(request(spans));
    expect(fromPb.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[1]?.events).toEqual([
      {
        timeUnixNano: at(20),
        name: 'gen_ai.user.message',
        attributes: [attr('content', 'hi')],
        droppedAttributesCount: 0,
      },
      {
        timeUnixNano: at(30),
        name: 'exception',
        attributes: [attr('exception.type', 'Error'), attr('n', 2)],
        droppedAttributesCount: 0,
      },
    ]);
    expect(mapTraces(fromPb)).toEqual(mapTraces(fromJson));
  });

  it('refuses an id padded with a long run of = in linear time', () => {
    // 16 bytes of base64, then 100,000 `=`: the padding check took 25 s of the event loop
    const padded = `${'A'.repeat(21)}Q${'='.repeat(100_000)}x`;
    const started = performance.now();
    const mapped = mapTraces(
      ExportTraceServiceRequest.parse({
        resourceSpans: [
          { scopeSpans: [{ spans: [{ traceId: padded, spanId: 'a000000000000001', name: 'x' }] }] },
        ],
      }),
    );
    expect(mapped).toMatchObject({ events: [], rejected: 1 });
    expect(mapped.firstProblem).toMatch(/^span x: traceId /);
    // a guard against quadratic time, not a speed goal: linear is a few ms, quadratic 10 s
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("takes hex ids, and base64 ids only of a trace or span id's length", () => {
    const traceHex = '0af7651916cd43dd8448eb211c80319c';
    const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
    const base: SpanSpec = {
      traceId: traceHex,
      spanId: 'a000000000000001',
      name: 'x',
      start: 0,
      end: 1,
    };
    const mapOne = (over: Record<string, unknown>) =>
      mapTraces(
        ExportTraceServiceRequest.parse({
          resourceSpans: [{ scopeSpans: [{ spans: [{ ...span(base), ...over }] }] }],
        }),
      );
    expect(mapOne({ traceId: b64(traceHex), spanId: b64('a000000000000001') })).toEqual(mapOne({}));
    expect(mapOne({ parentSpanId: '' }).runs).toMatchObject([{ from: 'root' }]);
    expect(mapOne({ parentSpanId: b64('0000000000000000') }).runs).toMatchObject([
      { from: 'root' },
    ]);
    for (const bad of [
      { traceId: 'not a trace id!!' },
      { traceId: b64('0af7651916cd43dd8448eb21') }, // 12 bytes
      { spanId: b64('a0000000000000') }, // 7 bytes
      { spanId: 'oops' },
      { parentSpanId: 'not a parent' },
    ]) {
      const mapped = mapOne(bad);
      expect(mapped, JSON.stringify(bad)).toMatchObject({ events: [], rejected: 1 });
      expect(mapped.firstProblem).toMatch(/^span x: (traceId|spanId|parentSpanId) /);
    }
  });

  it('rejects a truncated protobuf payload', () => {
    const whole = pbRequest(agentTrace('0af7651916cd43dd8448eb211c80319c'));
    expect(() => decodeTraceRequest(whole.subarray(0, whole.length - 3))).toThrow(/truncated/);
  });

  it('sanitizes agent names to the id charset', () => {
    expect(sanitizeId('bug triager / v2')).toBe('bug-triager-v2');
    expect(sanitizeId('***')).toBeUndefined();
    expect(sanitizeId(' -a b- ')).toBe('a-b');
  });

  it('sanitizes a name with a long run of dashes in linear time', () => {
    // a span's service.name or gen_ai.agent.name of 100,000 dashes took 15 s of the event loop
    const dashes = '-'.repeat(100_000);
    const started = performance.now();
    expect(sanitizeId(`a${dashes}x`)).toBe(`a${dashes.slice(0, 127)}`);
    expect(sanitizeId(`${dashes}x`)).toBe('x');
    expect(sanitizeId(dashes)).toBeUndefined();
    // a guard against quadratic time, not a speed goal: linear is a few ms, quadratic 10 s
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describeEachDb('POST /v1/traces', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  const post = (
    payload: Buffer | string,
    headers: Record<string, string>,
    key: string | null = t.adminKey,
  ) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      payload,
    });

  async function snapshot(runId: string) {
    const run = await findRun(t.ctx.db, 'default', runId);
    const steps = await listSteps(t.ctx.db, 'default', runId);
    if (!run) return undefined;
    const { created_at: _c, updated_at: _u, lease_expires_at: _l, ...stable } = toRun(run);
    return {
      run: stable,
      steps: steps.map((s) => toStep(s)).sort((a, b) => a.id.localeCompare(b.id)),
    };
  }

  const TRACE = '5b8efff798038103d269b633813fc60c';

  it('turns an invoke_agent trace into one run with its steps, tokens and computed cost', async () => {
    const res = await t.request('POST', '/v1/traces', request(agentTrace(TRACE)));
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({});
    const snap = await snapshot(`otel-${TRACE}`);
    expect(snap?.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:01.000Z',
      duration_ms: 1000,
      input: [{ role: 'user', content: 'triage #42' }],
      output: [{ role: 'assistant', content: 'done' }],
      step_count: 2,
      llm_calls: 1,
      tool_calls: 1,
      input_tokens: 1200,
      output_tokens: 300,
      model: 'gpt-4o-mini',
    });
    expect(snap?.run.cost_usd).toBeCloseTo(0.00036, 9);
    expect(snap?.steps).toHaveLength(2);
    expect(snap?.steps[0]).toMatchObject({
      id: 'a000000000000002',
      type: 'llm',
      parent_step_id: null,
      status: 'succeeded',
      model: 'gpt-4o-mini',
      provider: 'openai',
      input_tokens: 1200,
      output_tokens: 300,
      duration_ms: 500,
    });
    expect(snap?.steps[1]).toMatchObject({
      id: 'a000000000000003',
      type: 'tool',
      name: 'search',
      parent_step_id: 'a000000000000002',
      input: { q: 'bug' },
    });
  });

  it('keeps the tokens and cost of a trace that is one model call, its root', async () => {
    const trace = '5b8efff798038103d269b633813fc601';
    const chat: SpanSpec = {
      traceId: trace,
      spanId: 'c000000000000001',
      name: 'chat gpt-4o',
      start: 0,
      end: 1000,
      attrs: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 100,
      },
    };
    // a plain root (an HTTP request) stays the run alone, as before, also when it carries
    // the usage of the calls under it (as Pydantic AI's "agent run" span does)
    const http = httpRoot('5b8efff798038103d269b633813fc602', {
      attrs: { 'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.output_tokens': 100 },
    });
    expect((await t.request('POST', '/v1/traces', request([chat, http]))).statusCode).toBe(200);
    const snap = await snapshot(`otel-${trace}`);
    // before, the run had no step, so no llm call, no tokens and no cost
    expect(snap?.run).toMatchObject({
      model: 'gpt-4o',
      step_count: 1,
      llm_calls: 1,
      input_tokens: 1000,
      output_tokens: 100,
    });
    expect(snap?.run.cost_usd).toBeGreaterThan(0);
    expect(snap?.steps).toEqual([
      expect.objectContaining({ id: 'c000000000000001', type: 'llm', parent_step_id: null }),
    ]);
    expect((await snapshot('otel-5b8efff798038103d269b633813fc602'))?.steps).toEqual([]);
    // the same export again changes nothing
    await t.request('POST', '/v1/traces', request([chat]));
    expect((await snapshot(`otel-${trace}`))?.run.step_count).toBe(1);
  });

  it('keeps an invoke_agent span as a step with its children under it when its root comes later', async () => {
    const tree = async (trace: string) =>
      (await snapshot(`otel-${trace}`))?.steps.map((s) => `${s.id}<${s.parent_step_id}:${s.type}`);
    // a root span (an HTTP handler) above the agent, sent in the same export or after it
    const withRoot = (trace: string): [SpanSpec, SpanSpec[]] => {
      const [agent, ...rest] = agentTrace(trace);
      const root = httpRoot(trace);
      return [root, [{ ...agent!, parentSpanId: root.spanId }, ...rest]];
    };
    const together = '7c8efff798038103d269b633813fc60c';
    const [rootA, spansA] = withRoot(together);
    await t.request('POST', '/v1/traces', request([rootA, ...spansA]));
    const split = '8c8efff798038103d269b633813fc60c';
    const [rootB, spansB] = withRoot(split);
    await t.request('POST', '/v1/traces', request(spansB));
    await t.request('POST', '/v1/traces', request([rootB]));
    const expected = [
      'a000000000000001<null:agent',
      'a000000000000002<a000000000000001:llm',
      'a000000000000003<a000000000000002:tool',
    ];
    expect(await tree(together)).toEqual(expected);
    expect(await tree(split)).toEqual(expected);
    expect((await snapshot(`otel-${split}`))?.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      step_count: 3,
      llm_calls: 1,
      tool_calls: 1,
    });
    // the same with a failing root: once it comes, the run is the root's, as if sent together
    const failing = '9c8efff798038103d269b633813fc60c';
    const [rootC, spansC] = withRoot(failing);
    const failedRoot = { ...rootC, status: { code: 2, message: 'http 500' } };
    await t.request('POST', '/v1/traces', request(spansC));
    expect((await snapshot(`otel-${failing}`))?.run.metadata).toMatchObject({
      otel_stand_in: true,
    });
    await t.request('POST', '/v1/traces', request([failedRoot]));
    const late = (await snapshot(`otel-${failing}`))!.run;
    expect(late).toMatchObject({
      status: 'failed',
      error: { message: 'http 500' },
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:01.100Z',
      duration_ms: 1100,
      step_count: 3,
    });
    expect(late.metadata).not.toHaveProperty('otel_stand_in');
    // named by the root's span, not the stand-in's
    expect(late.metadata).toMatchObject({
      otel_span_name: 'POST /triage',
      otel_span_id: 'f000000000000001',
    });
    // the rollups moved with it: the stats count it failed, not succeeded as well
    const range = `from=${Date.parse('2026-03-01T00:00:00Z')}&to=${Date.parse('2026-03-02T00:00:00Z')}`;
    const stats = json<{ totals: { by_status: Record<string, number> } }>(
      await t.request('GET', `/api/v1/runs/stats?agent_id=bug-triager&${range}`),
    ).totals.by_status;
    for (const status of ['succeeded', 'failed']) {
      const listed = json<{ total: number }>(
        await t.request('GET', `/api/v1/runs?agent_id=bug-triager&status=${status}&${range}`),
      ).total;
      expect(stats[status]).toBe(listed);
    }
  });

  it('puts the steps sent before their root at the top once the root comes', async () => {
    const tree = async (trace: string) =>
      (await snapshot(`otel-${trace}`))?.steps.map((s) => `${s.id}<${s.parent_step_id}`);
    // the usual exporter order: children end, and are sent, before their root
    const trace = 'e1c0000000000000000000000000000e';
    const [, chat, tool] = agentTrace(trace);
    const children = [
      { ...chat!, parentSpanId: 'a000000000000001' },
      { ...tool!, parentSpanId: 'a000000000000001' },
    ];
    const root: SpanSpec = { ...agentTrace(trace)[0]! };
    await t.request('POST', '/v1/traces', request(children));
    // a sibling of theirs comes with the root, and one of them is sent again
    const sibling: SpanSpec = { ...children[1]!, spanId: 'a000000000000004', start: 910, end: 950 };
    await t.request('POST', '/v1/traces', request([root, sibling, children[1]!]));
    expect(await tree(trace)).toEqual([
      'a000000000000002<null',
      'a000000000000003<null',
      'a000000000000004<null',
    ]);
    expect((await snapshot(`otel-${trace}`))?.run).toMatchObject({
      step_count: 3,
      tool_calls: 2,
      llm_calls: 1,
    });

    // an invoke_agent standing in for an absent root keeps its parent (it may be a span still
    // to come, not the root); when the root comes, what hung under it goes to the top
    const standIn = 'e2c0000000000000000000000000000e';
    const [agent, agentChat] = agentTrace(standIn);
    const early: SpanSpec = {
      traceId: standIn,
      spanId: 'a000000000000005',
      parentSpanId: 'f000000000000001',
      name: 'load context',
      start: 1,
      end: 5,
    };
    await t.request('POST', '/v1/traces', request([early]));
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...agent!, parentSpanId: 'f000000000000001' }, agentChat!]),
    );
    const before = [
      'a000000000000001<f000000000000001',
      'a000000000000002<a000000000000001',
      'a000000000000005<f000000000000001',
    ];
    expect(await tree(standIn)).toEqual(before);
    // sent again, nothing moves
    await t.request('POST', '/v1/traces', request([early]));
    expect(await tree(standIn)).toEqual(before);
    const absentRoot = httpRoot(standIn);
    await t.request('POST', '/v1/traces', request([absentRoot]));
    expect(await tree(standIn)).toEqual([
      'a000000000000001<null',
      'a000000000000002<a000000000000001',
      'a000000000000005<null',
    ]);
  });

  it('puts the early steps of several traces at the top when their roots come in one export', async () => {
    const traces = ['e1f0000000000000000000000000000e', 'e1f1000000000000000000000000000e'];
    const spans = traces.map((trace) => agentTrace(trace));
    // children first, for both traces; then both roots together
    await t.request(
      'POST',
      '/v1/traces',
      request(spans.flatMap(([, chat, tool]) => [chat!, tool!])),
    );
    await t.request('POST', '/v1/traces', request(spans.map(([root]) => root!)));
    for (const trace of traces) {
      const steps = (await snapshot(`otel-${trace}`))!.steps.map(
        (s) => `${s.id}<${s.parent_step_id}`,
      );
      expect(steps).toEqual(['a000000000000002<null', 'a000000000000003<a000000000000002']);
    }
  });

  it('puts a step sent after its root, under the root, at the top too', async () => {
    // a stream's span ends after the route's span that started it
    const trace = 'e1d0000000000000000000000000000e';
    const root = httpRoot(trace, { name: 'POST /chat', end: 100 });
    const [, chat, tool] = agentTrace(trace);
    await t.request('POST', '/v1/traces', request([root]));
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...chat!, parentSpanId: root.spanId }, tool!]),
    );
    const steps = (await snapshot(`otel-${trace}`))!.steps.map(
      (s) => `${s.id}<${s.parent_step_id}`,
    );
    expect(steps).toEqual(['a000000000000002<null', 'a000000000000003<a000000000000002']);
  });

  it('keeps the agent an invoke_agent span named when a root that names none comes last', async () => {
    // the usual order: the HTTP root ends, and is sent, after everything under it
    const trace = 'e1e0000000000000000000000000000e';
    const [agent, chat] = agentTrace(trace);
    const root = httpRoot(trace);
    const handler: SpanSpec = {
      traceId: trace,
      spanId: 'f000000000000002',
      parentSpanId: root.spanId,
      name: 'triage',
      start: 0,
      end: 1050,
    };
    await t.request(
      'POST',
      '/v1/traces',
      request([chat!, { ...agent!, parentSpanId: handler.spanId }, handler], 'web-app'),
    );
    expect((await snapshot(`otel-${trace}`))!.run.agent_id).toBe('bug-triager');
    await t.request('POST', '/v1/traces', request([root], 'web-app'));
    expect((await snapshot(`otel-${trace}`))!.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:01.100Z',
    });
  });

  it('names the run by an invoke_agent span sent after a root that names no agent', async () => {
    // a gateway's root exported before the agent service's spans (two processes, two batches)
    const trace = 'e1e0000000000000000000000000001e';
    const [agent, chat] = agentTrace(trace);
    const root = httpRoot(trace);
    await t.request('POST', '/v1/traces', request([root], 'gateway'));
    expect((await snapshot(`otel-${trace}`))!.run).toMatchObject({
      agent_id: 'gateway',
      metadata: { otel_agent_from_service: true },
    });
    await t.request(
      'POST',
      '/v1/traces',
      request([chat!, { ...agent!, parentSpanId: root.spanId }], 'agent-service'),
    );
    const run = (await snapshot(`otel-${trace}`))!.run;
    // as when the root comes last: the agent is the invoke_agent span's, the outcome the root's
    expect(run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      ended_at: '2026-03-01T10:00:01.100Z',
      step_count: 2,
    });
    expect(run.metadata).not.toHaveProperty('otel_agent_from_service');
    // the first agent named stays: a sub-agent's span sent later does not rename the run
    await t.request(
      'POST',
      '/v1/traces',
      request([
        {
          traceId: trace,
          spanId: 'a000000000000009',
          parentSpanId: agent!.spanId,
          name: 'invoke_agent helper',
          start: 700,
          end: 800,
          attrs: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'helper' },
        },
      ]),
    );
    expect((await snapshot(`otel-${trace}`))!.run).toMatchObject({
      agent_id: 'bug-triager',
      step_count: 3,
    });
  });

  it('names the run of a multi-agent trace by its outermost agent, in any batches', async () => {
    const spans = (trace: string): SpanSpec[] => {
      const root = httpRoot(trace);
      const agent = (
        spanId: string,
        parentSpanId: string,
        name: string,
        start: number,
        end: number,
      ) => ({
        traceId: trace,
        spanId,
        parentSpanId,
        name: `invoke_agent ${name}`,
        start,
        end,
        attrs: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': name },
      });
      const planner = agent('a000000000000001', root.spanId, 'planner', 10, 1000);
      const researcher = agent('a000000000000002', planner.spanId, 'researcher', 100, 800);
      const chat = {
        ...agentTrace(trace)[1]!,
        spanId: 'a000000000000003',
        parentSpanId: researcher.spanId,
        start: 110,
        end: 700,
      };
      // in the order they end, as exporters send them
      return [chat, researcher, planner, root];
    };
    const together = 'e1e0000000000000000000000000002e';
    await t.request('POST', '/v1/traces', request(spans(together)));
    expect((await snapshot(`otel-${together}`))!.run.agent_id).toBe('planner');

    const apart = 'e1e0000000000000000000000000003e';
    const [chat, researcher, planner, root] = spans(apart);
    await t.request('POST', '/v1/traces', request([chat!, researcher!]));
    expect((await snapshot(`otel-${apart}`))!.run.agent_id).toBe('researcher');
    await t.request('POST', '/v1/traces', request([planner!]));
    // the agent that called the sub-agent stands in for the root: its name, its times
    expect((await snapshot(`otel-${apart}`))!.run).toMatchObject({
      agent_id: 'planner',
      status: 'succeeded',
      started_at: '2026-03-01T10:00:00.010Z',
      ended_at: '2026-03-01T10:00:01.000Z',
      metadata: { otel_stand_in: true, otel_span_name: 'invoke_agent planner' },
    });
    // the sub-agent's span sent again changes nothing
    await t.request('POST', '/v1/traces', request([researcher!]));
    expect((await snapshot(`otel-${apart}`))!.run.agent_id).toBe('planner');
    await t.request('POST', '/v1/traces', request([root!]));
    expect((await snapshot(`otel-${apart}`))!.run).toMatchObject({
      agent_id: 'planner',
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:01.100Z',
      step_count: 3,
    });
  });

  it('names and starts the run of a trace whose root never comes, from its spans', async () => {
    // a service continuing an upstream traceparent: its top span's parent is never sent
    const trace = 'e9c0000000000000000000000000000e';
    const upstream = 'ffff000000000001';
    const [, chat, tool] = agentTrace(trace);
    const top: SpanSpec = {
      traceId: trace,
      spanId: 'a000000000000001',
      parentSpanId: upstream,
      name: 'handle job',
      start: 0,
      end: 1000,
    };
    // children end first, so they are sent first
    await t.request('POST', '/v1/traces', request([tool!], 'worker'));
    const first = (await snapshot(`otel-${trace}`))!.run;
    expect(first).toMatchObject({
      agent_id: 'worker',
      status: 'running',
      started_at: '2026-03-01T10:00:00.600Z',
      metadata: { otel_stand_in: 'spans' },
    });
    await t.request('POST', '/v1/traces', request([chat!, top], 'worker'));
    const snap = await snapshot(`otel-${trace}`);
    // the earliest start of the spans seen so far
    expect(snap?.run).toMatchObject({
      agent_id: 'worker',
      status: 'running',
      started_at: '2026-03-01T10:00:00.000Z',
      step_count: 3,
      metadata: { otel_stand_in: 'spans', otel_trace_id: trace },
    });

    // an invoke_agent span among the spans names the run, though it does not stand in for it
    const named = 'eac0000000000000000000000000000e';
    const [agent, agentChat] = agentTrace(named);
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...top, traceId: named }, { ...agent!, parentSpanId: top.spanId }, agentChat!]),
    );
    expect((await snapshot(`otel-${named}`))?.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'running',
      metadata: { otel_stand_in: 'spans' },
    });
  });

  it('cuts attribute text to what its field holds instead of losing the event', async () => {
    const trace = 'e9f0000000000000000000000000000e';
    const [root, chat] = agentTrace(trace);
    const long = 'x'.repeat(1000);
    await t.request(
      'POST',
      '/v1/traces',
      request([
        { ...root!, attrs: { ...root!.attrs, 'user.id': long, 'session.id': long } },
        { ...chat!, name: long, attrs: { ...chat!.attrs, 'gen_ai.request.model': long } },
      ]),
    );
    const snap = (await snapshot(`otel-${trace}`))!;
    expect(snap.run.user_id).toBe(`${'x'.repeat(199)}…`);
    expect(snap.run.thread_id).toHaveLength(200);
    const step = snap.steps.find((s) => s.id === chat!.spanId)!;
    expect(step.name).toBe(`${'x'.repeat(499)}…`);
    expect(step.model).toHaveLength(200);
  });

  it('reads the messages azure-ai-inference puts in gen_ai.event.content', async () => {
    const trace = 'e9a1000000000000000000000000000e';
    const [root, chat] = agentTrace(trace);
    const events: NonNullable<SpanSpec['events']> = [
      {
        name: 'gen_ai.user.message',
        at: 11,
        attrs: { 'gen_ai.event.content': '{"role":"user","content":"triage #42"}' },
      },
      {
        name: 'gen_ai.choice',
        at: 500,
        attrs: { 'gen_ai.event.content': '{"index":0,"message":{"content":"a bug"}}' },
      },
    ];
    await t.request('POST', '/v1/traces', request([root!, { ...chat!, events }]));
    const step = (await snapshot(`otel-${trace}`))!.steps.find((s) => s.id === chat!.spanId)!;
    expect(step.input).toEqual([{ role: 'user', content: 'triage #42' }]);
    expect(step.output).toMatchObject([{ role: 'assistant', content: 'a bug' }]);
  });

  it('keeps a run ended by a huge exception, and a Stop, against what spans send later', async () => {
    // a stack over what an error holds is cut, not a reason to lose the run's end
    const huge = 'e9a0000000000000000000000000000e';
    const root = httpRoot(huge, {
      status: { code: 2, message: 'boom' },
      events: [
        {
          name: 'exception',
          at: 1000,
          attrs: {
            'exception.type': 'StackOverflowError',
            'exception.stacktrace': 'x'.repeat(120_000),
          },
        },
      ],
    });
    expect((await t.request('POST', '/v1/traces', request([root]))).json()).toEqual({});
    const ended = (await snapshot(`otel-${huge}`))!.run;
    expect(ended).toMatchObject({
      status: 'failed',
      error: { message: 'boom', type: 'StackOverflowError' },
    });
    expect(readableError(ended.error!).stack).toHaveLength(100_000);

    // a root-less run stopped from the dashboard stays stopped when its root comes after all
    const stopped = 'e9b0000000000000000000000000000e';
    const [, chat] = agentTrace(stopped);
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...chat!, parentSpanId: 'f000000000000001' }]),
    );
    const cancel = await t.request('POST', `/api/v1/runs/otel-${stopped}/cancel`);
    expect(cancel.statusCode).toBe(200);
    await sweepOnce(t.ctx, Date.now() + t.ctx.config.cancelGraceMs + 1000);
    expect((await snapshot(`otel-${stopped}`))!.run.status).toBe('cancelled');
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...root, traceId: stopped, status: { code: 1 }, events: [] }]),
    );
    expect((await snapshot(`otel-${stopped}`))!.run).toMatchObject({
      status: 'cancelled',
      error: { type: 'Cancelled' },
    });
  });

  it('ends the run of a trace whose root never comes when its spans stop, not as timed out', async () => {
    const upstream = 'ffff000000000002';
    const ok = 'e9d0000000000000000000000000000e';
    const bad = 'e9e0000000000000000000000000000e';
    const [, chat, tool] = agentTrace(ok);
    const under = (s: SpanSpec, traceId: string) => ({ ...s, traceId, parentSpanId: upstream });
    await t.request('POST', '/v1/traces', request([under(chat!, ok), tool!], 'worker'));
    const failedTool = { ...tool!, traceId: bad, status: { code: 2, message: 'search failed' } };
    await t.request('POST', '/v1/traces', request([under(chat!, bad), failedTool], 'worker'));
    // no span for a whole lease: the sweeper ends them
    await sweepOnce(t.ctx, Date.now() + t.ctx.writer.runLeaseMs + 1000);
    const ended = (await snapshot(`otel-${ok}`))!.run;
    expect(ended).toMatchObject({
      agent_id: 'worker',
      status: 'succeeded',
      error: null,
      metadata: { otel_stand_in: 'spans' },
    });
    // at its last span's end, not at the sweep
    const lastEnd = Math.max(...[chat!, tool!].map((s) => s.end));
    expect(ended.ended_at).toBe(
      new Date(Date.parse('2026-03-01T10:00:00.000Z') + lastEnd).toISOString(),
    );
    expect((await snapshot(`otel-${bad}`))!.run).toMatchObject({
      status: 'failed',
      error: { type: 'SpanFailed' },
    });
  });

  it('lets a stand-in made of spans give way to an invoke_agent span or the root, never the reverse', async () => {
    const trace = 'ebc0000000000000000000000000000e';
    const [agent, chat, tool] = agentTrace(trace);
    const root = httpRoot(trace);
    const underRoot = { ...agent!, parentSpanId: root.spanId };
    await t.request('POST', '/v1/traces', request([tool!], 'api'));
    expect((await snapshot(`otel-${trace}`))?.run.agent_id).toBe('api');
    // the invoke_agent span stands in: its agent, times and outcome
    await t.request('POST', '/v1/traces', request([underRoot, chat!], 'api'));
    expect((await snapshot(`otel-${trace}`))?.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:01.000Z',
      metadata: { otel_stand_in: true },
    });
    // spans sent after it change nothing of the run
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...tool!, spanId: 'a000000000000009' }], 'api'),
    );
    expect((await snapshot(`otel-${trace}`))?.run).toMatchObject({
      agent_id: 'bug-triager',
      metadata: { otel_stand_in: true },
    });
    await t.request('POST', '/v1/traces', request([root], 'api'));
    const rooted = (await snapshot(`otel-${trace}`))!.run;
    expect(rooted).toMatchObject({ agent_id: 'bug-triager', ended_at: '2026-03-01T10:00:01.100Z' });
    expect(rooted.metadata).not.toHaveProperty('otel_stand_in');
    // a stand-in, of either kind, sent after the root leaves the root's run as it is
    await t.request('POST', '/v1/traces', request([underRoot], 'api'));
    await t.request(
      'POST',
      '/v1/traces',
      request([{ ...tool!, spanId: 'a00000000000000a' }], 'api'),
    );
    const after = (await snapshot(`otel-${trace}`))!.run;
    expect(after.metadata).not.toHaveProperty('otel_stand_in');
    expect(after).toMatchObject({ agent_id: 'bug-triager', status: 'succeeded', step_count: 5 });

    // the root replaces a stand-in made of spans, agent included
    const direct = 'ecc0000000000000000000000000000e';
    await t.request('POST', '/v1/traces', request([{ ...chat!, traceId: direct }], 'api'));
    await t.request('POST', '/v1/traces', request([{ ...agent!, traceId: direct }], 'api'));
    const replaced = (await snapshot(`otel-${direct}`))!.run;
    expect(replaced).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      started_at: '2026-03-01T10:00:00.000Z',
    });
    expect(replaced.metadata).not.toHaveProperty('otel_stand_in');
  });

  it('changes nothing when the same export is sent twice', async () => {
    const first = await snapshot(`otel-${TRACE}`);
    const again = await t.request('POST', '/v1/traces', request(agentTrace(TRACE)));
    expect(again.statusCode).toBe(200);
    expect(await snapshot(`otel-${TRACE}`)).toEqual(first);
  });

  it('accepts a gzip JSON body', async () => {
    const trace = '6b8efff798038103d269b633813fc60c';
    const body = gzipSync(Buffer.from(JSON.stringify(request(agentTrace(trace)))));
    const res = await post(body, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(res.statusCode).toBe(200);
    expect((await snapshot(`otel-${trace}`))?.run.step_count).toBe(2);
  });

  it('refuses with 413 a gzip body that inflates past the body limit', async () => {
    // half a megabyte of gzip that would be a valid export of over 64 MiB
    const filler = Buffer.alloc(t.ctx.config.bodyLimit + 1024, ' ');
    const bomb = gzipSync(
      Buffer.concat([Buffer.from('{"resourceSpans":['), filler, Buffer.from(']}')]),
    );
    expect(bomb.length).toBeLessThan(t.ctx.config.bodyLimit / 64);
    const res = await post(bomb, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(res.statusCode).toBe(413);
    expect(json<{ error: { code: string } }>(res).error.code).toBe('payload_too_large');
  });

  it('refuses with 413 an export of more spans than one request takes, writing none', async () => {
    // each span its own trace: past the bound the write path held the event loop for seconds
    // and, past about 120,000 spans, answered a 500 after half a minute
    const trace = (i: number) => `7d${i.toString(16).padStart(30, '0')}`;
    const spans = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        traceId: trace(i),
        spanId: 'b000000000000001',
        name: 'invoke_agent many',
        start: 0,
        end: 10,
      }));
    const over = await t.request('POST', '/v1/traces', request(spans(MAX_OTLP_SPANS + 1)));
    expect(over.statusCode).toBe(413);
    expect(json<ApiErrorBody>(over).error).toMatchObject({
      code: 'payload_too_large',
      message: expect.stringContaining(`over ${MAX_OTLP_SPANS}`),
    });
    expect(await snapshot(`otel-${trace(0)}`)).toBeUndefined();
    // protobuf counts the same
    const pb = await post(pbRequest(spans(MAX_OTLP_SPANS + 1)), {
      'content-type': 'application/x-protobuf',
    });
    expect(pb.statusCode).toBe(413);
  });

  it('refuses with 413 an export of more objects than MAX_OTLP_OBJECTS, JSON or protobuf', async () => {
    // empty resourceSpans, 2 bytes each in protobuf and 3 in JSON: 64 MiB of them decoded to
    // tens of millions of objects before a span was counted
    const pb = await post(
      Buffer.concat(Array(MAX_OTLP_OBJECTS + 1).fill(lenField(1, Buffer.alloc(0)))),
      {
        'content-type': 'application/x-protobuf',
      },
    );
    expect(pb.statusCode).toBe(413);
    const body = `{"resourceSpans":[${'{},'.repeat(MAX_OTLP_OBJECTS)}{}]}`;
    const res = await post(body, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(413);
    expect(json<ApiErrorBody>(res).error).toMatchObject({
      code: 'payload_too_large',
      message: expect.stringContaining('objects and arrays'),
    });
  });

  it('refuses with 400 an attribute nested thousands of levels deep, JSON or protobuf', async () => {
    // as text: JSON.stringify itself runs out of stack on such a value
    const nestedJson = (levels: number) => {
      const value =
        '{"kvlistValue":{"values":[{"key":"k","value":'.repeat(levels) +
        '{"stringValue":"bottom"}' +
        '}]}}'.repeat(levels);
      const body = request(agentTrace('8c8efff798038103d269b633813fc60c'));
      body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes.push(attr('deep', 'DEEP'));
      return JSON.stringify(body).replace('{"stringValue":"DEEP"}', value);
    };
    const nestedPb = (levels: number) => {
      let value = strField(1, 'bottom');
      for (let i = 0; i < levels; i++)
        value = lenField(6, lenField(1, Buffer.concat([strField(1, 'k'), lenField(2, value)])));
      const [first, ...rest] = agentTrace('9c8efff798038103d269b633813fc60c');
      const deep = lenField(9, Buffer.concat([strField(1, 'deep'), lenField(2, value)]));
      const scopeSpans = Buffer.concat([
        lenField(1, strField(1, 'test')),
        lenField(2, Buffer.concat([pbSpan(first!), deep])),
        ...rest.map((s) => lenField(2, pbSpan(s))),
      ]);
      return lenField(1, lenField(2, scopeSpans));
    };
    // before, the schema's recursion ran out of stack: a 500 and a stack trace in the log
    const tooDeep = await t.request('POST', '/v1/traces', nestedJson(2000));
    expect(tooDeep.statusCode).toBe(400);
    expect(json<ApiErrorBody>(tooDeep).error.details).toEqual([
      { field: 'body', message: 'nested deeper than 1024 levels' },
    ]);
    const pb = await post(nestedPb(2000), { 'content-type': 'application/x-protobuf' });
    expect(pb.statusCode).toBe(400);
    expect(readStatus(pb.rawPayload).message).toMatch(/nest deeper than 256 levels/);
    // nested as deep as a value is stored, it is taken
    expect((await t.request('POST', '/v1/traces', nestedJson(100))).statusCode).toBe(200);
    const ok = await post(nestedPb(100), { 'content-type': 'application/x-protobuf' });
    expect(ok.statusCode).toBe(200);
  });

  it('accepts a protobuf body, plain and gzip, and answers in protobuf', async () => {
    const trace = '7b8efff798038103d269b633813fc60c';
    const res = await post(pbRequest(agentTrace(trace)), {
      'content-type': 'application/x-protobuf',
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-protobuf');
    expect(res.rawPayload.length).toBe(0);
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      input_tokens: 1200,
    });
    expect(snap?.steps.map((s) => s.type)).toEqual(['llm', 'tool']);

    const trace2 = '8b8efff798038103d269b633813fc60c';
    const gz = await post(gzipSync(pbRequest(agentTrace(trace2))), {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    expect(gz.statusCode).toBe(200);
    expect((await snapshot(`otel-${trace2}`))?.run.step_count).toBe(2);
  });

  it('gives a failed run with the message for an ERROR root span', async () => {
    const trace = '9b8efff798038103d269b633813fc60c';
    await t.request(
      'POST',
      '/v1/traces',
      request(agentTrace(trace, { error: 'rate limited by GitHub' })),
    );
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run.status).toBe('failed');
    expect(snap?.run.error).toMatchObject({ message: 'rate limited by GitHub' });
  });

  it("gives an error the type, message and stack of the span's exception event", async () => {
    const trace = 'e3c0000000000000000000000000000e';
    const stack = 'TypeError: fetch failed\n    at fetch (node:internal/deps/undici:1:1)';
    const exception = {
      name: 'exception',
      at: 400,
      attrs: {
        'exception.type': 'TypeError',
        'exception.message': 'fetch failed',
        'exception.stacktrace': stack,
      },
    };
    const [root, chat] = agentTrace(trace, { error: 'agent gave up' });
    await t.request(
      'POST',
      '/v1/traces',
      request([
        {
          ...root!,
          events: [{ ...exception, attrs: { ...exception.attrs, 'exception.type': 'GaveUp' } }],
        },
        { ...chat!, status: { code: 2 }, events: [exception] },
      ]),
    );
    const snap = await snapshot(`otel-${trace}`);
    // the status message, when the span has one, stays the message
    expect(snap?.run.error).toEqual({
      message: 'agent gave up',
      type: 'GaveUp',
      stack,
    });
    expect(snap?.steps[0]).toMatchObject({
      status: 'failed',
      error: { message: 'fetch failed', type: 'TypeError', stack },
    });
  });

  it("reads GenAI message events as a span's input and output when it has no attributes for them", async () => {
    const trace = 'e4c0000000000000000000000000000e';
    const [root, chat] = agentTrace(trace);
    const events: NonNullable<SpanSpec['events']> = [
      { name: 'gen_ai.system.message', at: 11, attrs: { content: 'be brief' } },
      { name: 'gen_ai.user.message', at: 12, attrs: { content: 'triage #42' } },
      {
        name: 'gen_ai.tool.message',
        at: 13,
        attrs: { body: '{"content":"42 is a crash","id":"call_1"}' },
      },
      {
        name: 'gen_ai.choice',
        at: 500,
        attrs: { body: '{"index":0,"finish_reason":"stop","message":{"content":"a bug"}}' },
      },
    ];
    await t.request(
      'POST',
      '/v1/traces',
      // the root has message attributes of its own: those are its input and output
      request([
        { ...root!, events },
        { ...chat!, events },
      ]),
    );
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run).toMatchObject({
      input: [{ role: 'user', content: 'triage #42' }],
      output: [{ role: 'assistant', content: 'done' }],
    });
    expect(snap?.steps[0]).toMatchObject({
      input: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'triage #42' },
        { role: 'tool', content: '42 is a crash', id: 'call_1' },
      ],
      output: [{ role: 'assistant', content: 'a bug', finish_reason: 'stop' }],
    });
  });

  it('reads the system instructions and the inference details event of the current GenAI conventions', async () => {
    const trace = 'e4c0000000000000000000000000001e';
    const [, chat] = agentTrace(trace);
    const instructions = JSON.stringify([{ type: 'text', content: 'you triage bugs' }]);
    const user = [{ role: 'user', parts: [{ type: 'text', content: 'triage #42' }] }];
    const answer = [{ role: 'assistant', parts: [{ type: 'text', content: 'a bug' }] }];
    await t.request(
      'POST',
      '/v1/traces',
      request([
        // on the span's attributes
        {
          ...chat!,
          parentSpanId: undefined,
          attrs: {
            ...chat!.attrs,
            'gen_ai.system_instructions': instructions,
            'gen_ai.input.messages': JSON.stringify(user),
          },
        },
        // on the event that carries them when the span does not
        {
          ...chat!,
          spanId: 'a000000000000005',
          parentSpanId: chat!.spanId,
          events: [
            {
              name: 'gen_ai.client.inference.operation.details',
              at: 500,
              attrs: {
                'gen_ai.system_instructions': instructions,
                'gen_ai.input.messages': JSON.stringify(user),
                'gen_ai.output.messages': JSON.stringify(answer),
              },
            },
          ],
        },
      ]),
    );
    const steps = (await snapshot(`otel-${trace}`))!.steps;
    const told = [
      { role: 'system', parts: [{ type: 'text', content: 'you triage bugs' }] },
      ...user,
    ];
    expect(steps.map((s) => [s.id, s.input])).toEqual([
      ['a000000000000002', told],
      ['a000000000000005', told],
    ]);
    expect(steps[1]?.output).toEqual(answer);
  });

  it('maps OpenInference attributes to step types, models and tokens', async () => {
    const trace = 'ab8efff798038103d269b633813fc60c';
    const spans: SpanSpec[] = [
      {
        traceId: trace,
        spanId: 'b000000000000001',
        name: 'agent',
        start: 0,
        end: 800,
        attrs: { 'openinference.span.kind': 'CHAIN', 'input.value': 'hi' },
      },
      {
        traceId: trace,
        spanId: 'b000000000000002',
        parentSpanId: 'b000000000000001',
        name: 'ChatOpenAI',
        start: 10,
        end: 300,
        attrs: {
          'openinference.span.kind': 'LLM',
          'llm.model_name': 'gpt-4o',
          'llm.token_count.prompt': 100,
          'llm.token_count.completion': 20,
          'output.value': 'hello',
        },
      },
      {
        traceId: trace,
        spanId: 'b000000000000003',
        parentSpanId: 'b000000000000001',
        name: 'retrieve',
        start: 300,
        end: 400,
        attrs: { 'openinference.span.kind': 'RETRIEVER' },
      },
      {
        traceId: trace,
        spanId: 'b000000000000004',
        parentSpanId: 'b000000000000001',
        name: 'lookup',
        start: 400,
        end: 500,
        attrs: { 'openinference.span.kind': 'TOOL', 'tool.name': 'lookup' },
      },
    ];
    expect((await t.request('POST', '/v1/traces', request(spans, 'oi-app'))).statusCode).toBe(200);
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run).toMatchObject({
      agent_id: 'oi-app',
      input: 'hi',
      input_tokens: 100,
      output_tokens: 20,
    });
    expect(snap?.steps.map((s) => [s.type, s.model, s.input_tokens])).toEqual([
      ['llm', 'gpt-4o', 100],
      ['retrieval', null, null],
      ['tool', null, null],
    ]);
    expect(snap?.steps[0]?.output).toBe('hello');
  });

  it('maps Vercel AI SDK spans to step types, models and tokens', async () => {
    const trace = 'bb8efff798038103d269b633813fc60c';
    const spans: SpanSpec[] = [
      {
        traceId: trace,
        spanId: 'c000000000000001',
        name: 'ai.generateText',
        start: 0,
        end: 900,
        attrs: {
          'ai.operationId': 'ai.generateText',
          'ai.model.id': 'gpt-4o-mini',
          'ai.response.text': 'sunny in Oslo',
        },
      },
      {
        traceId: trace,
        spanId: 'c000000000000002',
        parentSpanId: 'c000000000000001',
        name: 'ai.generateText.doGenerate',
        start: 10,
        end: 400,
        attrs: {
          'ai.operationId': 'ai.generateText.doGenerate',
          'ai.model.id': 'gpt-4o-mini',
          'ai.model.provider': 'openai.chat',
          'ai.usage.promptTokens': 50,
          'ai.usage.completionTokens': 5,
          // a model that only calls a tool answers no text
          'ai.response.finishReason': 'tool-calls',
          'ai.response.toolCalls':
            '[{"toolCallType":"function","toolCallId":"call_1","toolName":"weather","args":"{\\"city\\":\\"Oslo\\"}"}]',
        },
      },
      {
        traceId: trace,
        spanId: 'c000000000000003',
        parentSpanId: 'c000000000000001',
        name: 'ai.toolCall',
        start: 400,
        end: 500,
        attrs: {
          'ai.operationId': 'ai.toolCall',
          'ai.toolCall.name': 'weather',
          'ai.toolCall.args': '{"city":"Oslo"}',
        },
      },
    ];
    expect((await t.request('POST', '/v1/traces', request(spans, 'next-app'))).statusCode).toBe(
      200,
    );
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run).toMatchObject({
      agent_id: 'next-app',
      status: 'succeeded',
      output: 'sunny in Oslo',
      input_tokens: 50,
      output_tokens: 5,
    });
    expect(snap?.steps.map((s) => [s.type, s.name, s.model, s.provider, s.input_tokens])).toEqual([
      ['llm', 'ai.generateText.doGenerate', 'gpt-4o-mini', 'openai.chat', 50],
      ['tool', 'weather', null, null, null],
    ]);
    expect(snap?.steps[1]?.input).toEqual({ city: 'Oslo' });
    expect(snap?.steps[0]?.output).toEqual({
      toolCalls: [
        {
          toolCallType: 'function',
          toolCallId: 'call_1',
          toolName: 'weather',
          args: '{"city":"Oslo"}',
        },
      ],
    });
  });

  it("reads a streamed model call's time to first token from each convention that reports it", async () => {
    const trace = 'bb8efff798038103d269b633813fc60d';
    const llm = (spanId: string, attrs: Record<string, Value>, more: Partial<SpanSpec> = {}) => ({
      traceId: trace,
      spanId,
      parentSpanId: 'd000000000000001',
      name: spanId,
      start: 100,
      end: 1100,
      attrs: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o-mini', ...attrs },
      ...more,
    });
    const spans: SpanSpec[] = [
      { traceId: trace, spanId: 'd000000000000001', name: 'invoke_agent', start: 0, end: 2000 },
      // Vercel AI SDK: ms, on the doStream span and on its ai.stream.firstChunk event
      llm('d000000000000002', { 'ai.response.msToFirstChunk': 312.4 }),
      llm(
        'd000000000000003',
        {},
        {
          events: [
            { name: 'ai.stream.firstChunk', at: 140, attrs: { 'ai.response.msToFirstChunk': 40 } },
          ],
        },
      ),
      // the GenAI conventions and Sentry: seconds
      llm('d000000000000004', { 'gen_ai.response.time_to_first_chunk': 0.25 }),
      llm('d000000000000005', { 'gen_ai.response.time_to_first_token': 0.5 }),
      // Langfuse: a time
      llm('d000000000000006', {
        'langfuse.observation.completion_start_time': '2026-03-01T10:00:00.900Z',
      }),
      llm('d000000000000007', {}),
      // Langfuse's SDKs send it JSON-encoded (a quoted string: a JS Date, a Python datetime
      // with microseconds), and a time without an offset is UTC to Langfuse
      llm('d000000000000008', {
        'langfuse.observation.completion_start_time': '"2026-03-01T10:00:00.700Z"',
      }),
      llm('d000000000000009', {
        'langfuse.observation.completion_start_time': '"2026-03-01T10:00:00.650000+00:00"',
      }),
      llm('d00000000000000a', {
        'langfuse.observation.completion_start_time': '2026-03-01T10:00:00.450',
      }),
      // OpenLIT: seconds, also on a call it says was not streamed (its whole time): not kept
      llm('d00000000000000b', {
        'gen_ai.server.time_to_first_token': 0.125,
        'gen_ai.request.is_stream': true,
      }),
      llm('d00000000000000c', {
        'gen_ai.server.time_to_first_token': 0.9,
        'gen_ai.request.is_stream': false,
      }),
    ];
    expect((await t.request('POST', '/v1/traces', request(spans, 'stream-app'))).statusCode).toBe(
      200,
    );
    const snap = await snapshot(`otel-${trace}`);
    expect(Object.fromEntries(snap!.steps.map((s) => [s.id, s.time_to_first_token_ms]))).toEqual({
      d000000000000002: 312,
      d000000000000003: 40,
      d000000000000004: 250,
      d000000000000005: 500,
      d000000000000006: 800,
      d000000000000007: null,
      d000000000000008: 600,
      d000000000000009: 550,
      d00000000000000a: 350,
      d00000000000000b: 125,
      d00000000000000c: null,
    });
    expect(snap!.steps.find((s) => s.id === 'd000000000000002')?.first_token_at).toBe(
      '2026-03-01T10:00:00.412Z',
    );
  });

  it('counts the tokens of an agent span with usage over its model calls once', async () => {
    const root = (trace: string) => httpRoot(trace, { name: 'POST /chat', end: 1000 });
    // Vercel AI SDK: ai.generateText reports the sum of its doGenerate calls
    const vercel = 'a1c0000000000000000000000000000a';
    const generate: SpanSpec = {
      traceId: vercel,
      spanId: 'c100000000000001',
      parentSpanId: 'f000000000000001',
      name: 'ai.generateText',
      start: 0,
      end: 900,
      attrs: {
        'ai.operationId': 'ai.generateText',
        'ai.model.id': 'gpt-4o-mini',
        'ai.usage.promptTokens': 300,
        'ai.usage.completionTokens': 40,
      },
    };
    const doGenerate = (spanId: string, prompt: number): SpanSpec => ({
      traceId: vercel,
      spanId,
      parentSpanId: generate.spanId,
      name: 'ai.generateText.doGenerate',
      start: 10,
      end: 400,
      attrs: {
        'ai.operationId': 'ai.generateText.doGenerate',
        'ai.model.id': 'gpt-4o-mini',
        'ai.usage.promptTokens': prompt,
        'ai.usage.completionTokens': 20,
      },
    });
    await t.request(
      'POST',
      '/v1/traces',
      request([
        root(vercel),
        generate,
        doGenerate('c100000000000002', 100),
        doGenerate('c100000000000003', 200),
      ]),
    );
    const v = await snapshot(`otel-${vercel}`);
    expect(v?.run).toMatchObject({ input_tokens: 300, output_tokens: 40, llm_calls: 2 });
    const agentStep = v?.steps.find((s) => s.id === generate.spanId);
    expect(agentStep).toMatchObject({ type: 'agent', input_tokens: null, output_tokens: null });
    expect(agentStep?.metadata).toMatchObject({
      otel_usage: { input_tokens: 300, output_tokens: 40 },
    });

    // GenAI semantic conventions: an invoke_agent span with usage over its chat span, both
    // with the root sent and with the invoke_agent standing in for a root never sent
    const agent = (trace: string): SpanSpec[] => [
      {
        traceId: trace,
        spanId: 'c200000000000001',
        parentSpanId: 'f000000000000001',
        name: 'invoke_agent helper',
        start: 0,
        end: 900,
        attrs: {
          'gen_ai.operation.name': 'invoke_agent',
          'gen_ai.agent.name': 'helper',
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 1000,
          'gen_ai.usage.output_tokens': 100,
          'gen_ai.usage.cache_read_input_tokens': 400,
        },
      },
      {
        traceId: trace,
        spanId: 'c200000000000002',
        parentSpanId: 'c200000000000001',
        name: 'chat gpt-4o-mini',
        start: 10,
        end: 800,
        attrs: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': 1000,
          'gen_ai.usage.output_tokens': 100,
          'gen_ai.usage.cache_read_input_tokens': 400,
          // the semantic conventions' current name
          'gen_ai.usage.reasoning.output_tokens': 60,
        },
      },
    ];
    const rooted = 'a2c0000000000000000000000000000a';
    const standIn = 'a3c0000000000000000000000000000a';
    await t.request('POST', '/v1/traces', request([root(rooted), ...agent(rooted)]));
    await t.request('POST', '/v1/traces', request(agent(standIn)));
    for (const trace of [rooted, standIn]) {
      const snap = await snapshot(`otel-${trace}`);
      expect(snap?.run).toMatchObject({ input_tokens: 1000, output_tokens: 100, llm_calls: 1 });
      const chat = snap?.steps.find((s) => s.type === 'llm');
      expect(chat).toMatchObject({ cached_input_tokens: 400, reasoning_tokens: 60 });
      expect(snap?.run.cost_usd).toBeCloseTo(chat!.cost_usd!, 12);
      const step = snap?.steps.find((s) => s.type === 'agent');
      expect(step).toMatchObject({ input_tokens: null, cached_input_tokens: null, cost_usd: null });
      expect(step?.metadata).toMatchObject({
        otel_usage: { input_tokens: 1000, output_tokens: 100, cached_input_tokens: 400 },
      });
    }
  });

  it('maps OpenLLMetry (Traceloop) LangChain spans to step types, messages and tokens', async () => {
    const trace = 'e5c0000000000000000000000000000e';
    const entity = (kind: string, name: string, input: unknown, output: unknown) => ({
      'traceloop.span.kind': kind,
      'traceloop.entity.name': name,
      'traceloop.entity.input': JSON.stringify(input),
      'traceloop.entity.output': JSON.stringify(output),
    });
    const spans: SpanSpec[] = [
      {
        traceId: trace,
        spanId: 'd000000000000001',
        name: 'LangGraph.workflow',
        start: 0,
        end: 1000,
        attrs: entity('workflow', 'LangGraph', { inputs: { q: 'weather?' } }, { answer: 'sunny' }),
      },
      {
        traceId: trace,
        spanId: 'd000000000000002',
        parentSpanId: 'd000000000000001',
        name: 'agent.task',
        start: 10,
        end: 600,
        attrs: entity('task', 'agent', { step: 1 }, { step: 2 }),
      },
      {
        traceId: trace,
        spanId: 'd000000000000003',
        parentSpanId: 'd000000000000002',
        name: 'ChatOpenAI.chat',
        start: 20,
        end: 400,
        // the indexed attributes in no particular order, as exporters may list them
        attrs: {
          'llm.request.type': 'chat',
          'gen_ai.system': 'openai',
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.prompt_tokens': 100,
          'gen_ai.usage.completion_tokens': 20,
          'gen_ai.prompt.1.content': 'weather?',
          'gen_ai.prompt.0.role': 'system',
          'gen_ai.prompt.0.content': 'you forecast',
          'gen_ai.prompt.1.role': 'user',
          'gen_ai.completion.0.role': 'assistant',
          'gen_ai.completion.0.content': 'sunny',
        },
      },
      {
        traceId: trace,
        spanId: 'd000000000000004',
        parentSpanId: 'd000000000000002',
        name: 'get_weather.tool',
        start: 400,
        end: 500,
        attrs: entity('tool', 'get_weather', { inputs: { city: 'Oslo' } }, { output: 'sunny' }),
      },
      {
        traceId: trace,
        spanId: 'd000000000000005',
        parentSpanId: 'd000000000000001',
        name: 'OpenAI.embeddings',
        start: 600,
        end: 650,
        attrs: { 'llm.request.type': 'embedding', 'llm.usage.prompt_tokens': 8 },
      },
      {
        traceId: trace,
        spanId: 'd000000000000006',
        parentSpanId: 'd000000000000001',
        name: 'Cohere.rerank',
        start: 650,
        end: 700,
        attrs: { 'llm.request.type': 'rerank' },
      },
      {
        traceId: trace,
        spanId: 'd000000000000007',
        parentSpanId: 'd000000000000001',
        name: 'researcher.agent',
        start: 700,
        end: 900,
        attrs: entity('agent', 'researcher', {}, {}),
      },
    ];
    await t.request('POST', '/v1/traces', request(spans, 'lg-app'));
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run).toMatchObject({
      agent_id: 'lg-app',
      input: { inputs: { q: 'weather?' } },
      output: { answer: 'sunny' },
      llm_calls: 1,
      tool_calls: 1,
      input_tokens: 108,
      output_tokens: 20,
    });
    expect(snap?.steps.map((s) => [s.type, s.name, s.input_tokens])).toEqual([
      ['custom', 'agent.task', null],
      ['llm', 'ChatOpenAI.chat', 100],
      ['tool', 'get_weather', null],
      ['embedding', 'OpenAI.embeddings', 8],
      ['retrieval', 'Cohere.rerank', null],
      ['agent', 'researcher.agent', null],
    ]);
    expect(snap?.steps[0]).toMatchObject({ input: { step: 1 }, output: { step: 2 } });
    expect(snap?.steps[1]).toMatchObject({
      model: 'gpt-4o-mini',
      provider: 'openai',
      output_tokens: 20,
      input: [
        { role: 'system', content: 'you forecast' },
        { role: 'user', content: 'weather?' },
      ],
      output: [{ role: 'assistant', content: 'sunny' }],
    });
    expect(snap?.steps[2]).toMatchObject({
      input: { inputs: { city: 'Oslo' } },
      output: { output: 'sunny' },
    });
  });

  it("keeps the tool calls and finish reasons of OpenLLMetry's indexed messages", async () => {
    const trace = 'e5c0000000000000000000000000001e';
    await t.request(
      'POST',
      '/v1/traces',
      request([
        {
          traceId: trace,
          spanId: 'd000000000000011',
          name: 'openai.chat',
          start: 0,
          end: 400,
          attrs: {
            'llm.request.type': 'chat',
            'gen_ai.request.model': 'gpt-4o-mini',
            'gen_ai.prompt.0.role': 'user',
            'gen_ai.prompt.0.content': 'weather in Oslo and Bergen?',
            'gen_ai.prompt.1.role': 'assistant',
            'gen_ai.prompt.1.tool_calls.0.id': 'call_0',
            'gen_ai.prompt.1.tool_calls.0.name': 'get_weather',
            'gen_ai.prompt.1.tool_calls.0.arguments': '{"city":"Oslo"}',
            'gen_ai.prompt.2.role': 'tool',
            'gen_ai.prompt.2.tool_call_id': 'call_0',
            // a tool's JSON answer, whose keys look like indexes, stays as it is
            'gen_ai.prompt.2.content': '{"1":"sunny"}',
            // the calls listed out of order, and past index 9, as exporters may
            'gen_ai.completion.0.tool_calls.10.name': 'get_time',
            'gen_ai.completion.0.role': 'assistant',
            'gen_ai.completion.0.finish_reason': 'tool_calls',
            'gen_ai.completion.0.tool_calls.2.id': 'call_2',
            'gen_ai.completion.0.tool_calls.2.name': 'get_weather',
            'gen_ai.completion.0.tool_calls.2.arguments': '{"city":"Bergen"}',
            'gen_ai.completion.0.__proto__': 'kept as a field',
          },
        },
      ]),
    );
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.steps[0]?.input).toEqual([
      { role: 'user', content: 'weather in Oslo and Bergen?' },
      {
        role: 'assistant',
        tool_calls: [{ id: 'call_0', name: 'get_weather', arguments: { city: 'Oslo' } }],
      },
      { role: 'tool', tool_call_id: 'call_0', content: { 1: 'sunny' } },
    ]);
    expect(snap?.steps[0]?.output).toEqual([
      {
        role: 'assistant',
        finish_reason: 'tool_calls',
        tool_calls: [
          { id: 'call_2', name: 'get_weather', arguments: { city: 'Bergen' } },
          { name: 'get_time' },
        ],
        ['__proto__']: 'kept as a field',
      },
    ]);
  });

  it('keeps a run whose attributes or names hold a NUL character, with U+FFFD in its place', async () => {
    const trace = 'e6c0000000000000000000000000000e';
    const [root, chat, tool] = agentTrace(trace);
    const res = await t.request(
      'POST',
      '/v1/traces',
      request([
        { ...root!, attrs: { ...root!.attrs, 'user.id': 'u\u0000' } },
        { ...chat!, attrs: { ...chat!.attrs, 'gen_ai.request.model': 'gpt-4o-mini\u0000' } },
        {
          ...tool!,
          name: 'execute_tool\u0000',
          attrs: { 'gen_ai.operation.name': 'execute_tool' },
        },
      ]),
    );
    expect(json(res)).toEqual({});
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run).toMatchObject({
      agent_id: 'bug-triager',
      status: 'succeeded',
      user_id: 'u\ufffd',
      step_count: 2,
    });
    expect(snap?.steps.map((s) => [s.model, s.name])).toEqual([
      ['gpt-4o-mini\ufffd', 'chat gpt-4o-mini'],
      [null, 'execute_tool\ufffd'],
    ]);
  });

  it('keeps a span whose kind or event is named like an Object property, as a custom step', async () => {
    const trace = 'e6c0000000000000000000000000000f';
    const [root, chat] = agentTrace(trace);
    const res = await t.request(
      'POST',
      '/v1/traces',
      request([
        root!,
        {
          ...chat!,
          attrs: { 'gen_ai.operation.name': 'constructor', 'traceloop.span.kind': 'toString' },
          events: [{ name: 'constructor', at: 20, attrs: { content: 'hi' } }],
        },
      ]),
    );
    // before: the span was refused (`events.2.step.type: ... received function`)
    expect(json(res)).toEqual({});
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.steps.map((s) => [s.name, s.type, s.input])).toEqual([
      ['chat gpt-4o-mini', 'custom', null],
    ]);
  });

  it('refuses the spans of a run deleted lately, counting spans, not the events they make', async () => {
    const trace = 'de1e7ed0000000000000000000000001';
    const body = request(agentTrace(trace));
    // a run that ended days ago is nobody's to record any more: deleted, it is not held
    const spanList = body.resourceSpans[0]!.scopeSpans[0]!.spans;
    const shift = BigInt(Date.now()) * 1_000_000n - T0 - 60_000_000_000n;
    for (const sp of spanList as { startTimeUnixNano: string; endTimeUnixNano: string }[]) {
      sp.startTimeUnixNano = (BigInt(sp.startTimeUnixNano) + shift).toString();
      sp.endTimeUnixNano = (BigInt(sp.endTimeUnixNano) + shift).toString();
    }
    const spans = spanList.length;
    expect((await t.request('POST', '/v1/traces', body)).statusCode).toBe(200);
    expect((await t.request('DELETE', `/api/v1/runs/otel-${trace}`)).statusCode).toBe(204);
    const again = await t.request('POST', '/v1/traces', body);
    expect(json(again)).toEqual({
      partialSuccess: {
        rejectedSpans: spans,
        errorMessage: 'spans of a deleted run are not recorded',
      },
    });
    expect(await findRun(t.ctx.db, 'default', `otel-${trace}`)).toBeUndefined();
  });

  it('rejects a span whose times cannot be, and keeps the rest of its export', async () => {
    const trace = 'e7c0000000000000000000000000000e';
    const [root, chat, tool] = agentTrace(trace);
    const body = request([root!, chat!, tool!]);
    const spans = body.resourceSpans[0]!.scopeSpans[0]!.spans;
    // past the uint64 nanoseconds OTLP times are; the run would end in the year 5138
    spans[0] = { ...spans[0]!, endTimeUnixNano: '99999999999999999999' };
    // a step that ends before it starts
    spans[2] = { ...spans[2]!, endTimeUnixNano: at(500) };
    const res = await t.request('POST', '/v1/traces', body);
    expect(res.statusCode).toBe(200);
    const answer = json<{ partialSuccess: { rejectedSpans: number; errorMessage: string } }>(res);
    expect(answer.partialSuccess.rejectedSpans).toBe(2);
    expect(answer.partialSuccess.errorMessage).toMatch(
      /^span invoke_agent bug triager: endTimeUnixNano /,
    );
    const snap = await snapshot(`otel-${trace}`);
    expect(snap?.run.ended_at).toBeNull();
    expect(snap?.steps.map((s) => s.id)).toEqual(['a000000000000002']);
  });

  it('requires a write key', async () => {
    const trace = 'cb8efff798038103d269b633813fc60c';
    const body = JSON.stringify(request(agentTrace(trace)));
    expect((await post(body, { 'content-type': 'application/json' }, null)).statusCode).toBe(401);
    const created = json<{ key: string }>(
      await t.request('POST', '/api/v1/keys', { scope: 'read' }),
    );
    const res = await post(body, { 'content-type': 'application/json' }, created.key);
    expect(res.statusCode).toBe(403);
    expect(await findRun(t.ctx.db, 'default', `otel-${trace}`)).toBeUndefined();
  });

  it('answers 400 for an undecodable payload and 415 for other content types', async () => {
    const bad = await post('{not json', { 'content-type': 'application/json' });
    expect(bad.statusCode).toBe(400);
    expect(json<{ error: { code: string } }>(bad).error.code).toBe('invalid_input');
    const wrongShape = await post('{"resourceSpans": 3}', { 'content-type': 'application/json' });
    expect(wrongShape.statusCode).toBe(400);
    const badPb = await post(Buffer.from([0x0a, 0xff, 0xff]), {
      'content-type': 'application/x-protobuf',
    });
    expect(badPb.statusCode).toBe(400);
    const badGzip = await post('not gzip', {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(badGzip.statusCode).toBe(400);
    // each names what was wrong with it
    const deflated = await post('x', {
      'content-type': 'application/json',
      'content-encoding': 'deflate',
    });
    for (const [res, field] of [
      [bad, 'body'],
      [badGzip, 'body'],
      [deflated, 'headers.content-encoding'],
    ] as const) {
      expect(res.statusCode, field).toBe(400);
      expect(json<{ error: { details: { field: string }[] } }>(res).error.details).toEqual([
        { field, message: expect.any(String) },
      ]);
    }
    const text = await post('hello', { 'content-type': 'text/plain' });
    expect(text.statusCode).toBe(415);
    expect(JSON.parse(text.body)).toMatchObject({
      error: { code: 'invalid_input', details: [{ field: 'headers.content-type' }] },
    });
  });

  it('answers a failed protobuf export with a protobuf Status naming what was wrong', async () => {
    const protobuf = { 'content-type': 'application/x-protobuf' };
    const badPb = await post(Buffer.from([0x0a, 0xff, 0xff]), protobuf);
    expect(badPb.statusCode).toBe(400);
    expect(badPb.headers['content-type']).toBe('application/x-protobuf');
    expect(readStatus(badPb.rawPayload)).toEqual({
      code: 3,
      message: 'body: not a protobuf ExportTraceServiceRequest (truncated varint)',
    });

    const trace = 'cc8efff798038103d269b633813fc60c';
    const unauthorized = await post(pbRequest(agentTrace(trace)), protobuf, null);
    expect(unauthorized.statusCode).toBe(401);
    expect(unauthorized.headers['content-type']).toBe('application/x-protobuf');
    expect(readStatus(unauthorized.rawPayload)).toEqual({
      code: 16,
      message: 'a valid API key is required (Authorization: Bearer <key>)',
    });
    expect(await findRun(t.ctx.db, 'default', `otel-${trace}`)).toBeUndefined();

    const tooBig = await post(gzipSync(Buffer.alloc(t.ctx.config.bodyLimit + 1)), {
      ...protobuf,
      'content-encoding': 'gzip',
    });
    expect(tooBig.statusCode).toBe(413);
    expect(readStatus(tooBig.rawPayload)).toEqual({
      code: 8,
      message: 'the inflated body is over the size limit',
    });
  });

  it('reports spans without ids as a partial success and keeps the rest', async () => {
    const trace = 'db8efff798038103d269b633813fc60c';
    const body = request(agentTrace(trace));
    body.resourceSpans[0]!.scopeSpans[0]!.spans.push({
      ...span(agentTrace(trace)[1]!),
      spanId: '',
    });
    // and one whose id is left out, as OTLP JSON leaves out a field at its default
    const { spanId: _spanId, ...withoutId } = span({ ...agentTrace(trace)[1]!, spanId: 'b0' });
    (body.resourceSpans[0]!.scopeSpans[0]!.spans as unknown[]).push(withoutId);
    const res = await t.request('POST', '/v1/traces', body);
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({ partialSuccess: { rejectedSpans: 2 } });
    expect((await snapshot(`otel-${trace}`))?.run.step_count).toBe(2);

    const pb = await post(pbRequest([{ ...agentTrace(trace)[1]!, spanId: '' }]), {
      'content-type': 'application/x-protobuf',
    });
    expect(pb.statusCode).toBe(200);
    // ExportTraceServiceResponse { partial_success { rejected_spans: 1, error_message } }
    expect([...pb.rawPayload.subarray(0, 5)]).toEqual([
      0x0a,
      pb.rawPayload.length - 2,
      0x08,
      1,
      0x12,
    ]);
  });
});
