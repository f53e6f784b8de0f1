/**
 * OTLP traces -> Runlog ingest events. Pure: no I/O.
 *
 * A trace is one run, `otel-<traceId>`. Its root span (no parent) is the run; without the
 * root in the batch, the outermost `invoke_agent` span is, and is a step as well; with neither,
 * the batch's spans start it (`RUN_SOURCES`). Every other span is a complete step whose id is
 * the span id. GenAI semantic conventions, OpenInference, OpenLLMetry (Traceloop) and the
 * Vercel AI SDK's attribute names are all read.
 */
import { z } from 'zod';
import {
  ID_PATTERN,
  cutText,
  type IngestEvent,
  type RunFields,
  type StepFields,
} from '@runlog/core';

// ---------------------------------------------------------------------------
// The request, as OTLP JSON has it (the protobuf decoder yields the same shape)

type AnyValueT = {
  stringValue?: string | undefined;
  boolValue?: boolean | undefined;
  intValue?: string | number | undefined;
  doubleValue?: number | string | undefined;
  bytesValue?: string | undefined;
  arrayValue?: { values?: AnyValueT[] | undefined } | undefined;
  kvlistValue?: { values?: KeyValueT[] | undefined } | undefined;
};
type KeyValueT = { key: string; value?: AnyValueT | undefined };

const AnyValue: z.ZodType<AnyValueT> = z.lazy(() =>
  z.object({
    stringValue: z.string().optional(),
    boolValue: z.boolean().optional(),
    intValue: z.union([z.string().regex(/^-?\d+$/), z.number().int()]).optional(),
    doubleValue: z.union([z.number(), z.string()]).optional(),
    bytesValue: z.string().optional(),
    arrayValue: z.object({ values: z.array(AnyValue).optional() }).optional(),
    kvlistValue: z.object({ values: z.array(KeyValue).optional() }).optional(),
  }),
);
const KeyValue: z.ZodType<KeyValueT> = z.lazy(() =>
  z.object({ key: z.string(), value: AnyValue.optional() }),
);
const Attributes = z.array(KeyValue).optional();

const Nanos = z.union([z.string().regex(/^\d{1,20}$/), z.number().int().min(0)]);

const SpanEvent = z.object({
  timeUnixNano: Nanos.optional(),
  name: z.string().default(''),
  attributes: Attributes,
  droppedAttributesCount: z.number().int().min(0).optional(),
});

export const OtlpSpan = z.object({
  // an id left out is empty (protobuf and OTLP JSON leave out a field at its default): the
  // span is rejected as a partial success, not its whole export with a 400
  traceId: z.string().default(''),
  spanId: z.string().default(''),
  parentSpanId: z.string().optional(),
  name: z.string().default(''),
  kind: z.union([z.number(), z.string()]).optional(),
  startTimeUnixNano: Nanos.optional(),
  endTimeUnixNano: Nanos.optional(),
  attributes: Attributes,
  events: z.array(SpanEvent).optional(),
  status: z
    .object({
      code: z.union([z.number(), z.string()]).optional(),
      message: z.string().optional(),
    })
    .optional(),
});
export type OtlpSpan = z.infer<typeof OtlpSpan>;

export const ExportTraceServiceRequest = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: Attributes }).optional(),
        scopeSpans: z
          .array(
            z.object({
              scope: z.object({ name: z.string().optional() }).optional(),
              spans: z.array(OtlpSpan).optional(),
            }),
          )
          .optional(),
      }),
    )
    .optional(),
});
export type ExportTraceServiceRequest = z.infer<typeof ExportTraceServiceRequest>;

// ---------------------------------------------------------------------------
// Attribute values

type Attrs = Record<string, unknown>;

/**
 * Text a program captured (attribute values, span names): a NUL, which no text column takes,
 * becomes U+FFFD rather than losing the event that carries it.
 */
function captured(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\ufffd') : text;
}

function plain(value: AnyValueT | undefined): unknown {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return captured(value.stringValue);
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (value.bytesValue !== undefined) return value.bytesValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(plain);
  if (value.kvlistValue) return toAttrs(value.kvlistValue.values);
  return undefined;
}

function toAttrs(list: KeyValueT[] | undefined): Attrs {
  const out: Attrs = {};
  for (const kv of list ?? []) out[kv.key] = plain(kv.value);
  return out;
}

function str(attrs: Attrs, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const v = attrs[key];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

function int(attrs: Attrs, ...keys: string[]): number | undefined {
  for (const key of keys) {
    const v = attrs[key];
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) return n;
  }
  return undefined;
}

/** A JSON-looking string (messages, tool arguments) parsed; anything else as it is. */
function parsed(v: unknown): unknown {
  if (typeof v !== 'string' || !/^\s*[[{]/.test(v)) return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

/** The first of `keys` set (and not empty), a JSON-looking string parsed. */
function payload(attrs: Attrs, ...keys: string[]): unknown {
  for (const key of keys) {
    const v = attrs[key];
    if (v !== undefined && v !== '') return parsed(v);
  }
  return undefined;
}

/** `gen_ai.prompt.N.<field>`, the field a path such as `role` or `tool_calls.0.name`. */
const INDEXED_MESSAGE = /^gen_ai\.(prompt|completion)\.(\d{1,9})\.(\w+(?:\.\w+)*)$/;

/** The fields OpenLLMetry sends as JSON text: read as the objects they hold. */
const JSON_FIELDS = new Set(['content', 'arguments']);

/**
 * OpenLLMetry's messages, one flat attribute per field (`gen_ai.prompt.0.role`,
 * `gen_ai.prompt.0.content`, `gen_ai.completion.0.finish_reason`,
 * `gen_ai.completion.0.tool_calls.1.name`, ...), as a messages array in index order: an
 * assistant message that only calls tools has no content, its calls are what it says.
 */
function indexedMessages(attrs: Attrs, side: 'prompt' | 'completion'): unknown[] | undefined {
  const byIndex = new Map<number, Record<string, unknown>>();
  // the objects the paths made: only these are listed, never a value a field holds
  const made = new WeakSet<object>();
  for (const [key, value] of Object.entries(attrs)) {
    const match = INDEXED_MESSAGE.exec(key);
    if (!match || match[1] !== side || value === undefined || value === '') continue;
    const index = Number(match[2]);
    let message = byIndex.get(index);
    if (!message) made.add((message = {}));
    const path = match[3]!.split('.');
    setPath(message, path, JSON_FIELDS.has(path.at(-1)!) ? parsed(value) : value, made);
    byIndex.set(index, message);
  }
  if (byIndex.size === 0) return undefined;
  return [...byIndex].sort(([a], [b]) => a - b).map(([, message]) => listed(message, made));
}

/** Sets `path` in `target`, making the objects on the way (own keys: `__proto__` is a field). */
function setPath(
  target: Record<string, unknown>,
  path: string[],
  value: unknown,
  made: WeakSet<object>,
): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next && typeof next === 'object' && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
      continue;
    }
    const child: Record<string, unknown> = {};
    made.add(child);
    Object.defineProperty(node, key, {
      value: child,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    node = child;
  }
  Object.defineProperty(node, path.at(-1)!, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Objects made by `setPath` whose keys are all indexes (`tool_calls.0`) as arrays, in order. */
function listed(value: unknown, made: WeakSet<object>): unknown {
  if (!value || typeof value !== 'object' || !made.has(value)) return value;
  const entries = Object.entries(value);
  if (entries.length > 0 && entries.every(([key]) => /^\d{1,9}$/.test(key))) {
    return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => listed(v, made));
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of entries)
    Object.defineProperty(out, key, {
      value: listed(v, made),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Epoch ms from OTLP's unsigned 64-bit nanoseconds: undefined for an unset (0) time, null for
 * one past 2^64-1, which no OTLP time is. (That bound is in the year 2554: no valid time is
 * past the year 9999 the API's times end at.)
 */
function ms(nanos: string | number | undefined): number | null | undefined {
  if (nanos === undefined) return undefined;
  const value = typeof nanos === 'number' ? BigInt(Math.trunc(nanos)) : BigInt(nanos);
  if (value > MAX_UINT64) return null;
  if (value === 0n) return undefined;
  return Number(value / 1_000_000n);
}

/**
 * An id as lowercase hex. OTLP JSON sends hex; the protobuf JSON mapping, base64 (standard or
 * URL-safe), taken only when it decodes to exactly `bytes` bytes. `undefined` for an unset id
 * (empty or all zeros), `null` for one that is neither hex nor such base64.
 */
function readId(id: string | undefined, bytes: 8 | 16): string | null | undefined {
  if (!id) return undefined;
  // no id is longer, and /=+$/ below is tried from every `=` of a long run of them: time
  // quadratic in its length (one span of 100,000 held the server 25 s)
  if (id.length > 64) return null;
  let hex: string;
  if (/^[0-9a-fA-F]{1,64}$/.test(id)) hex = id.toLowerCase();
  else {
    const standard = id.replaceAll('-', '+').replaceAll('_', '/');
    const decoded = Buffer.from(standard, 'base64');
    // Buffer skips what is not base64: a round trip tells a real encoding from any text
    const canonical = decoded.toString('base64').replace(/=+$/, '');
    if (decoded.length !== bytes || canonical !== standard.replace(/=+$/, '')) return null;
    hex = decoded.toString('hex');
  }
  return /^0+$/.test(hex) ? undefined : hex;
}

const ID_HELP = { 8: 'hex, or base64 of 8 bytes', 16: 'hex, or base64 of 16 bytes' };

/** A span's ids (hex) and times (epoch ms, absent when unset). */
interface SpanKeys {
  traceId: string;
  spanId: string;
  parentId: string | undefined;
  startedAt?: number | undefined;
  endedAt?: number | undefined;
}

/** A span's ids and times, or what makes it unusable. */
function readSpan(span: OtlpSpan): SpanKeys | { problem: string } {
  const traceId = readId(span.traceId, 16);
  if (!traceId) return { problem: `traceId must be a non-zero id (${ID_HELP[16]})` };
  const spanId = readId(span.spanId, 8);
  if (!spanId) return { problem: `spanId must be a non-zero id (${ID_HELP[8]})` };
  const parentId = readId(span.parentSpanId, 8);
  if (parentId === null) return { problem: `parentSpanId must be empty or an id (${ID_HELP[8]})` };
  const startedAt = ms(span.startTimeUnixNano);
  if (startedAt === null) return { problem: 'startTimeUnixNano is past 2^64-1 nanoseconds' };
  const endedAt = ms(span.endTimeUnixNano);
  if (endedAt === null) return { problem: 'endTimeUnixNano is past 2^64-1 nanoseconds' };
  if (startedAt !== undefined && endedAt !== undefined && endedAt < startedAt)
    return { problem: 'endTimeUnixNano is before startTimeUnixNano' };
  return strip({ traceId, spanId, parentId, startedAt, endedAt });
}

/** Makes a free-form name fit the Id charset. */
export function sanitizeId(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const dashed = value.trim().replace(/[^A-Za-z0-9._:-]+/g, '-');
  // the dashes at either end cut by hand: /-+$/ is tried from every dash of a run of them,
  // time quadratic in its length (a service.name of 100,000 dashes held the server 15 s)
  let start = 0;
  let end = dashed.length;
  while (start < end && dashed[start] === '-') start++;
  while (end > start && dashed[end - 1] === '-') end--;
  const id = dashed.slice(start, Math.min(end, start + 128));
  return ID_PATTERN.test(id) ? id : undefined;
}

// ---------------------------------------------------------------------------
// Mapping

const OPERATION_TYPES: Record<string, string> = {
  chat: 'llm',
  text_completion: 'llm',
  generate_content: 'llm',
  execute_tool: 'tool',
  embeddings: 'embedding',
  invoke_agent: 'agent',
  create_agent: 'agent',
};

const OPENINFERENCE_TYPES: Record<string, string> = {
  LLM: 'llm',
  TOOL: 'tool',
  CHAIN: 'agent',
  AGENT: 'agent',
  RETRIEVER: 'retrieval',
  EMBEDDING: 'embedding',
  RERANKER: 'retrieval',
  GUARDRAIL: 'evaluator',
  EVALUATOR: 'evaluator',
};

/** OpenLLMetry (Traceloop): `llm.request.type` of a model call. */
const LLM_REQUEST_TYPES: Record<string, string> = {
  chat: 'llm',
  completion: 'llm',
  embedding: 'embedding',
  rerank: 'retrieval',
};

/** OpenLLMetry (Traceloop): `traceloop.span.kind` of a framework span (`task` stays custom). */
const TRACELOOP_KINDS: Record<string, string> = {
  workflow: 'agent',
  agent: 'agent',
  tool: 'tool',
};

const VERCEL_LLM = /^ai\.\w+\.do(Generate|Stream)$/;

/** `table`'s own entry for `key`: a name such as `constructor` must not find Object.prototype. */
function own(table: Record<string, string>, key: string | undefined): string | undefined {
  return key !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;
}

function stepType(name: string, attrs: Attrs): string {
  const type =
    own(OPERATION_TYPES, str(attrs, 'gen_ai.operation.name')) ??
    own(OPENINFERENCE_TYPES, str(attrs, 'openinference.span.kind')?.toUpperCase()) ??
    own(LLM_REQUEST_TYPES, str(attrs, 'llm.request.type')) ??
    own(TRACELOOP_KINDS, str(attrs, 'traceloop.span.kind'));
  if (type) return type;
  const vercel = str(attrs, 'ai.operationId') ?? name;
  if (VERCEL_LLM.test(vercel)) return vercel.startsWith('ai.embed') ? 'embedding' : 'llm';
  if (vercel === 'ai.toolCall') return 'tool';
  if (/^ai\.embed(Many)?\.doEmbed$/.test(vercel)) return 'embedding';
  if (/^ai\.(generateText|streamText|generateObject|streamObject)$/.test(vercel)) return 'agent';
  return 'custom';
}

interface SpanView extends SpanKeys {
  span: OtlpSpan;
  /** The span's name, NUL-free. */
  name: string;
  attrs: Attrs;
  /** The span's events, in the order sent, with their attributes read. */
  events: { name: string; attrs: Attrs }[];
  resource: Attrs;
}

function failed(span: OtlpSpan): boolean {
  const code = span.status?.code;
  return code === 2 || code === 'STATUS_CODE_ERROR' || code === '2';
}

function errorOf(view: SpanView): { message: string; type?: string; stack?: string } | undefined {
  if (!failed(view.span)) return undefined;
  // the exception recorded last is the one that ended the span
  const exception = view.events.findLast((e) => e.name === 'exception')?.attrs ?? {};
  const message =
    view.span.status?.message ||
    str(exception, 'exception.message') ||
    str(view.attrs, 'exception.message', 'error.message') ||
    'span ended with status ERROR';
  // cut to what an error holds: a huge stack must not cost the run its end
  return strip({
    message: cut(message, 100_000)!,
    type: cut(
      str(exception, 'exception.type') ?? str(view.attrs, 'error.type', 'exception.type'),
      500,
    ),
    stack: cut(
      str(exception, 'exception.stacktrace') ?? str(view.attrs, 'exception.stacktrace'),
      100_000,
    ),
  });
}

/** GenAI semantic conventions' message events, by the role of the message each carries. */
const MESSAGE_EVENT_ROLES: Record<string, string> = {
  'gen_ai.system.message': 'system',
  'gen_ai.user.message': 'user',
  'gen_ai.assistant.message': 'assistant',
  'gen_ai.tool.message': 'tool',
};

/**
 * A message from a GenAI event: its `content` attribute, or its body (the event as a log
 * record carries it; on a span event, a `body` attribute), which may hold more fields.
 */
function eventMessage(role: string, attrs: Attrs): Record<string, unknown> {
  // azure-ai-inference sends the message as a JSON string in gen_ai.event.content
  const body = payload(attrs, 'content', 'gen_ai.event.content', 'body', 'event.body');
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const { message, ...rest } = body as Record<string, unknown>;
    // gen_ai.choice: {index, finish_reason, message: {role, content, tool_calls}}
    if (message && typeof message === 'object' && !Array.isArray(message)) {
      const { index: _index, ...choice } = rest;
      return { role, ...(message as Record<string, unknown>), ...choice };
    }
    return { role, ...rest };
  }
  return body === undefined ? { role } : { role, content: body };
}

/** The input and output messages a span's GenAI events carry, if any. */
function eventMessages(view: SpanView): { input?: unknown; output?: unknown } {
  const input: unknown[] = [];
  const output: unknown[] = [];
  let prompt: unknown;
  let completion: unknown;
  const details: { input?: unknown; output?: unknown } = {};
  for (const e of view.events) {
    const role = own(MESSAGE_EVENT_ROLES, e.name);
    if (role) input.push(eventMessage(role, e.attrs));
    // the current conventions' one event, with the attributes a span would carry
    else if (e.name === 'gen_ai.client.inference.operation.details') {
      details.input ??= genAiInput(e.attrs);
      details.output ??= payload(e.attrs, 'gen_ai.output.messages');
    } else if (e.name === 'gen_ai.choice') output.push(eventMessage('assistant', e.attrs));
    // the earlier conventions' events, whose one attribute holds all the messages
    else if (e.name === 'gen_ai.content.prompt') prompt ??= payload(e.attrs, 'gen_ai.prompt');
    else if (e.name === 'gen_ai.content.completion')
      completion ??= payload(e.attrs, 'gen_ai.completion');
  }
  return {
    input: details.input ?? (input.length > 0 ? input : prompt),
    output: details.output ?? (output.length > 0 ? output : completion),
  };
}

/**
 * A GenAI call's input messages, led by the system instructions given apart from them
 * (`gen_ai.system_instructions`, a list of parts, as Anthropic's and Gemini's APIs take them)
 * as a system message: without it, a run showed the chat but not what the model was told.
 */
function genAiInput(attrs: Attrs): unknown {
  const messages = payload(attrs, 'gen_ai.input.messages');
  const instructions = payload(attrs, 'gen_ai.system_instructions');
  if (instructions === undefined) return messages;
  const system = Array.isArray(instructions)
    ? { role: 'system', parts: instructions }
    : { role: 'system', content: instructions };
  if (messages === undefined) return [system];
  return [system, ...(Array.isArray(messages) ? messages : [messages])];
}

function inputOf(view: SpanView): unknown {
  return (
    attrInputOf(view.attrs) ??
    indexedMessages(view.attrs, 'prompt') ??
    payload(view.attrs, 'traceloop.entity.input') ??
    eventMessages(view).input
  );
}

function outputOf(view: SpanView): unknown {
  return (
    attrOutputOf(view.attrs) ??
    indexedMessages(view.attrs, 'completion') ??
    payload(view.attrs, 'traceloop.entity.output') ??
    eventMessages(view).output
  );
}

function attrInputOf(attrs: Attrs): unknown {
  return (
    genAiInput(attrs) ??
    payload(
      attrs,
      'input.value',
      'gen_ai.tool.call.arguments',
      'ai.prompt.messages',
      'ai.prompt',
      'ai.toolCall.args',
    )
  );
}

function attrOutputOf(attrs: Attrs): unknown {
  return (
    payload(attrs, 'gen_ai.output.messages', 'output.value', 'gen_ai.tool.call.result') ??
    vercelResponse(attrs) ??
    payload(attrs, 'ai.toolCall.result')
  );
}

/**
 * What a Vercel AI SDK call answered: its text (or object), and the tools it called
 * (`ai.response.toolCalls`), which are all a model that only calls tools answers.
 */
function vercelResponse(attrs: Attrs): unknown {
  const response = payload(attrs, 'ai.response.text', 'ai.response.object');
  const toolCalls = payload(attrs, 'ai.response.toolCalls');
  if (toolCalls === undefined) return response;
  return response === undefined ? { toolCalls } : { text: response, toolCalls };
}

function modelOf(attrs: Attrs): string | undefined {
  return cut(
    str(
      attrs,
      'gen_ai.response.model',
      'gen_ai.request.model',
      'llm.model_name',
      'ai.response.model',
      'ai.model.id',
    ),
    200,
  );
}

/**
 * Text cut to what its field holds: span attributes are program output of any length, and a
 * field refused for its length would lose its whole event (a run's start, with its end
 * kept), where the REST API refuses the request instead.
 */
function cut(text: string | undefined, max: number): string | undefined {
  return text === undefined ? text : cutText(text, max);
}

/**
 * Set in the metadata of a run whose root span has not come: `true` while an `invoke_agent`
 * span stands in for it, `'spans'` while only spans under it have (neither root nor stand-in).
 */
export const STAND_IN_KEY = 'otel_stand_in';

/** Set in the metadata of a run its root span recorded: that span's id. */
export const ROOT_SPAN_KEY = 'otel_span_id';
/** Set in the metadata of a run (and step) a span recorded: that span's name. */
export const SPAN_NAME_KEY = 'otel_span_name';
/**
 * Set in the metadata of a run whose agent is its service (`service.name`), no span having
 * named one yet: the first `gen_ai.agent.name` to come names it, whatever span it is on.
 */
export const AGENT_FROM_SERVICE_KEY = 'otel_agent_from_service';
/** Set in the metadata of every run a trace's spans started. */
export const TRACE_ID_KEY = 'otel_trace_id';

/**
 * What a batch's run events come from, weakest first: the spans alone (no root, no stand-in),
 * an `invoke_agent` span standing in for the root, the root. A stronger one replaces what a
 * weaker one recorded of the run; a weaker one changes nothing of what a stronger one did.
 */
export const RUN_SOURCES = ['spans', 'invoke_agent', 'root'] as const;
export type RunSource = (typeof RUN_SOURCES)[number];

export interface MappedRun {
  runId: string;
  from: RunSource;
  /** Spans of this batch in the run's trace. */
  spans: number;
  /**
   * The span that is the run, not a step: the root. Steps stored under it go to the top.
   * None for a stand-in (its parent may be a span still to come) or `spans`.
   */
  top?: string;
  /** The run's start in this batch. */
  startedAt?: number;
  /**
   * The agent this batch names by a `gen_ai.agent.name` (not only the service): a run it
   * replaces gives up its agent only then, and a run whose agent is its service's takes it.
   */
  agent?: string;
}

/** The agent of a run: the span's own, else the trace's first invoke_agent's, else the service. */
function agentOf(view: SpanView, agentHint: string | undefined): string {
  return (
    sanitizeId(str(view.attrs, 'gen_ai.agent.name', 'gen_ai.agent.id')) ??
    agentHint ??
    sanitizeId(str(view.resource, 'service.name')) ??
    'otel'
  );
}

/**
 * The start of a run none of whose spans in this batch is the root or stands in for it (a
 * service continuing an upstream trace, whose root is never sent; or a root still to come):
 * named as the root would name it, starting with the earliest span, marked a stand-in.
 */
function spansRunStart(views: SpanView[], agentHint: string | undefined): RunFields {
  const first = views.reduce((a, b) =>
    (b.startedAt ?? Infinity) < (a.startedAt ?? Infinity) ? b : a,
  );
  return strip({
    id: `otel-${first.traceId}`,
    agent_id: agentHint ?? sanitizeId(str(first.resource, 'service.name')) ?? 'otel',
    started_at: first.startedAt,
    metadata: { [TRACE_ID_KEY]: first.traceId, [STAND_IN_KEY]: 'spans' },
  });
}

function runEventsOf(view: SpanView, agentHint: string | undefined): IngestEvent[] {
  const { attrs } = view;
  const runId = `otel-${view.traceId}`;
  const start: RunFields = {
    id: runId,
    agent_id: agentOf(view, agentHint),
    started_at: view.startedAt,
    input: inputOf(view),
    model: modelOf(attrs),
    user_id: cut(str(attrs, 'user.id', 'enduser.id'), 200),
    thread_id: cut(str(attrs, 'gen_ai.conversation.id', 'session.id'), 200),
    metadata: {
      [TRACE_ID_KEY]: view.traceId,
      [SPAN_NAME_KEY]: view.name,
      // the root's span id: a child sent after it (under it) is a top-level step
      ...(view.parentId !== undefined
        ? { [STAND_IN_KEY]: true }
        : { [ROOT_SPAN_KEY]: view.spanId }),
    },
  };
  const events: IngestEvent[] = [{ type: 'run.start', run: strip(start) }];
  const endedAt = view.endedAt;
  if (endedAt !== undefined) {
    const error = errorOf(view);
    const end: RunFields = {
      id: runId,
      status: error ? 'failed' : 'succeeded',
      ended_at: endedAt,
      output: outputOf(view),
      error,
    };
    events.push({ type: 'run.end', run: strip(end) });
  }
  return events;
}

/** The token counts a span reports, by the step field each goes to. */
function usageOf(attrs: Attrs) {
  return strip({
    input_tokens: int(
      attrs,
      'gen_ai.usage.input_tokens',
      'gen_ai.usage.prompt_tokens',
      'llm.usage.prompt_tokens',
      'llm.token_count.prompt',
      'ai.usage.promptTokens',
      'ai.usage.inputTokens',
    ),
    output_tokens: int(
      attrs,
      'gen_ai.usage.output_tokens',
      'gen_ai.usage.completion_tokens',
      'llm.usage.completion_tokens',
      'llm.token_count.completion',
      'ai.usage.completionTokens',
      'ai.usage.outputTokens',
    ),
    cached_input_tokens: int(
      attrs,
      'gen_ai.usage.cache_read_input_tokens',
      'gen_ai.usage.cache_read.input_tokens',
      'llm.token_count.prompt_details.cache_read',
      'ai.usage.cachedInputTokens',
    ),
    reasoning_tokens: int(
      attrs,
      'gen_ai.usage.reasoning.output_tokens',
      'gen_ai.usage.reasoning_tokens',
      'llm.token_count.completion_details.reasoning',
      'ai.usage.reasoningTokens',
    ),
  });
}

/**
 * When a streamed answer's first chunk came, from the time to it a span reports: the Vercel
 * AI SDK's `ai.response.msToFirstChunk` (ms), the GenAI conventions', Sentry's and OpenLIT's
 * seconds, or Langfuse's `completion_start_time` (an ISO time). OpenLIT sets its
 * `gen_ai.server.time_to_first_token` on calls it says were not streamed too (the whole
 * call's time, the answer coming in one piece): those have no first token to show.
 */
function firstTokenAt(view: SpanView): number | undefined {
  const { attrs, startedAt } = view;
  if (startedAt === undefined) return undefined;
  const after = (ms: unknown): number | undefined => {
    const n = typeof ms === 'string' ? Number(ms) : ms;
    return typeof n === 'number' && Number.isFinite(n) && n >= 0
      ? startedAt + Math.round(n)
      : undefined;
  };
  const seconds = (key: string): number | undefined => {
    const n = Number(attrs[key] ?? NaN);
    return after(n * 1000);
  };
  const parsedAt = langfuseTime(str(attrs, 'langfuse.observation.completion_start_time'));
  return (
    after(attrs['ai.response.msToFirstChunk']) ??
    after(
      view.events.find((e) => e.name === 'ai.stream.firstChunk')?.attrs[
        'ai.response.msToFirstChunk'
      ],
    ) ??
    seconds('gen_ai.response.time_to_first_chunk') ??
    seconds('gen_ai.response.time_to_first_token') ??
    (attrs['gen_ai.request.is_stream'] === false
      ? undefined
      : seconds('gen_ai.server.time_to_first_token')) ??
    (Number.isFinite(parsedAt) && parsedAt >= startedAt ? parsedAt : undefined)
  );
}

/**
 * A time as Langfuse's SDKs set it on a span: JSON-encoded (`"2026-03-01T10:00:00.700Z"`,
 * quotes included, from a JS Date or a Python datetime), or bare; one without an offset is
 * UTC, as Langfuse reads it (not the server's local time). NaN when it is not such a time.
 */
function langfuseTime(value: string | undefined): number {
  if (value === undefined) return NaN;
  const text =
    value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text)) return NaN;
  return Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : `${text}Z`);
}

function stepEvent(view: SpanView, runSpanId: string | undefined): IngestEvent {
  const { attrs } = view;
  const type = stepType(view.name, attrs);
  const error = errorOf(view);
  const usage = usageOf(attrs);
  // an agent span's usage is the sum of the model calls under it, which are steps too: counted
  // there, and kept here in metadata only, or the run's tokens and cost would count it twice
  const aggregate = type === 'agent' && Object.keys(usage).length > 0;
  const step: StepFields = {
    id: view.spanId,
    run_id: `otel-${view.traceId}`,
    parent_step_id: view.parentId && view.parentId !== runSpanId ? view.parentId : undefined,
    type,
    name: cut(
      str(attrs, 'gen_ai.tool.name', 'tool.name', 'ai.toolCall.name') ??
        (type === 'tool' ? str(attrs, 'traceloop.entity.name') : undefined) ??
        (view.name || undefined),
      500,
    ),
    status: error ? 'failed' : 'succeeded',
    started_at: view.startedAt,
    ended_at: view.endedAt,
    input: inputOf(view),
    output: outputOf(view),
    error,
    model: modelOf(attrs),
    provider: cut(
      str(
        attrs,
        'gen_ai.provider.name',
        'gen_ai.system',
        'llm.provider',
        'llm.system',
        'ai.model.provider',
      ),
      200,
    ),
    ...(aggregate ? {} : usage),
    first_token_at: firstTokenAt(view),
    metadata: strip({
      [SPAN_NAME_KEY]: view.name || undefined,
      otel_usage: aggregate ? usage : undefined,
    }),
  };
  return { type: 'step.end', step: strip(step) };
}

/** Drops undefined fields so fill-mode merges never see them. */
function strip<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

export interface MappedTraces {
  events: IngestEvent[];
  /** The runs this batch has spans of, and what their run events come from. */
  runs: MappedRun[];
  /** Spans that could not become events (bad ids or times), with the reason of the first. */
  rejected: number;
  firstProblem?: string;
}

/** Maps a validated export request to ingest events: the run events first, then the steps. */
export function mapTraces(request: ExportTraceServiceRequest): MappedTraces {
  const byTrace = new Map<string, SpanView[]>();
  let rejected = 0;
  let firstProblem: string | undefined;
  for (const rs of request.resourceSpans ?? []) {
    const resource = toAttrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        const name = captured(span.name);
        const read = readSpan(span);
        if ('problem' in read) {
          rejected++;
          firstProblem ??= `span ${name || '(unnamed)'}: ${read.problem}`;
          continue;
        }
        const { traceId } = read;
        const view: SpanView = {
          ...read,
          span,
          name,
          attrs: toAttrs(span.attributes),
          events: (span.events ?? []).map((e) => ({ name: e.name, attrs: toAttrs(e.attributes) })),
          resource,
        };
        const list = byTrace.get(traceId) ?? [];
        list.push(view);
        byTrace.set(traceId, list);
      }
    }
  }

  const runEvents: IngestEvent[] = [];
  const stepEvents: IngestEvent[] = [];
  const runs: MappedRun[] = [];
  for (const [traceId, views] of byTrace) {
    const ids = new Set(views.map((v) => v.spanId));
    const isAgent = (v: SpanView) => str(v.attrs, 'gen_ai.operation.name') === 'invoke_agent';
    const runView =
      views.find((v) => !v.parentId) ??
      views.find((v) => isAgent(v) && !(v.parentId && ids.has(v.parentId)));
    // the run's agent: the root's own, else the name of the invoke_agent span that started
    // first, the outermost: a sub-agent ends, and is listed, before the agent that called it
    let agentHint: string | undefined;
    let agentStart = Infinity;
    for (const v of views.filter(isAgent)) {
      const id = sanitizeId(str(v.attrs, 'gen_ai.agent.name', 'gen_ai.agent.id'));
      if (id === undefined || (agentHint !== undefined && (v.startedAt ?? Infinity) >= agentStart))
        continue;
      agentHint = id;
      agentStart = v.startedAt ?? Infinity;
    }
    const runId = `otel-${traceId}`;
    if (!runView) {
      const start = spansRunStart(views, agentHint);
      runEvents.push({ type: 'run.start', run: start });
      runs.push(
        strip({
          runId,
          from: 'spans',
          spans: views.length,
          startedAt: start.started_at,
          agent: agentHint,
        }),
      );
      for (const view of views) stepEvents.push(stepEvent(view, undefined));
      continue;
    }
    runEvents.push(...runEventsOf(runView, agentHint));
    // an invoke_agent span standing in for a root that is not in this batch is a step too, as
    // it is when its root comes with it, and it and its children keep their parents
    const standIn = runView.parentId !== undefined;
    // only a root is known to be the run: a stand-in's parent may be a span sent later
    const top = standIn ? undefined : runView.spanId;
    runs.push(
      strip({
        runId,
        from: standIn ? 'invoke_agent' : 'root',
        spans: views.length,
        top,
        startedAt: runView.startedAt,
        agent: sanitizeId(str(runView.attrs, 'gen_ai.agent.name', 'gen_ai.agent.id')) ?? agentHint,
      }),
    );
    // a root that is itself a call (a lone chat span, as most LLM instrumentation sends
    // with no agent span around it) is the run and also its step: its tokens and cost live
    // on steps, so without one they were lost. An agent span or an untyped one is the run
    // alone: the usage such a span carries is the sum of the calls under it.
    const rootType = standIn ? 'agent' : stepType(runView.name, runView.attrs);
    const rootIsCall = rootType !== 'agent' && rootType !== 'custom';
    for (const view of views) {
      if (view !== runView || standIn || rootIsCall) stepEvents.push(stepEvent(view, top));
    }
  }
  return {
    events: [...runEvents, ...stepEvents],
    runs,
    rejected,
    ...(firstProblem ? { firstProblem } : {}),
  };
}
