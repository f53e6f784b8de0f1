import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  MAX_JSON_DEPTH,
  eventRunId,
  nestsWithin,
  type ApiErrorBody,
  type IngestEvent,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError, fieldIssues } from '../http/errors.js';
import { routeDocs } from '../http/route.js';
import type { RunRow } from '../db/schema.js';
import { validateEvents } from '../ingest/ingest.service.js';
import { UNKNOWN_AGENT, parseObject } from '../ingest/apply.js';
import { applyEvents } from '../ingest/writer.js';
import type { UnitOfWork } from '../ingest/unit-of-work.js';
import {
  AGENT_FROM_SERVICE_KEY,
  ExportTraceServiceRequest,
  ROOT_SPAN_KEY,
  RUN_SOURCES,
  SPAN_NAME_KEY,
  STAND_IN_KEY,
  TRACE_ID_KEY,
  mapTraces,
  type MappedRun,
  type RunSource,
} from './otlp.mapper.js';
import { decodeTraceRequest, ProtobufError, ProtobufTooLarge } from './otlp.protobuf.js';
import {
  MAX_JSON_CONTAINERS,
  jsonContainersWithin,
  tooManyContainers,
} from '../http/json-containers.js';

const JSON_TYPE = 'application/json';
const PROTOBUF_TYPE = 'application/x-protobuf';
const gunzipAsync = promisify(gunzip);

/** ExportTraceServiceResponse as OTLP JSON has it: `{}` when every span was taken. */
const ExportTraceServiceResponse = z.object({
  partialSuccess: z
    .object({ rejectedSpans: z.number().int(), errorMessage: z.string() })
    .optional(),
});
/**
 * How deep a decoded request may nest: an attribute value takes four request levels per
 * level of its own (key, value, kvlistValue, values), and is stored cut at MAX_JSON_DEPTH
 * levels; twice that is accepted (and cut), deeper is refused before the schema's
 * recursion walks it.
 */
const MAX_REQUEST_DEPTH = 8 * MAX_JSON_DEPTH;
/**
 * Most spans one export may carry. The write path takes a request in one transaction on the
 * event loop: 100,000 spans (17 MB of JSON) held every other request, of every project, for
 * seconds, and past about 120,000 the request failed with a 500 after holding it half a
 * minute. An SDK's batch is 512 spans; a Collector's is 8192 unless told otherwise.
 */
export const MAX_OTLP_SPANS = 10_000;
/**
 * Most objects (protobuf messages) one export may decode to: every attribute is two, and a
 * body at the limit of real attributes (some 60 bytes each) holds about a million of them.
 */
export const MAX_OTLP_OBJECTS = 2 * MAX_JSON_CONTAINERS;

/**
 * `POST /v1/traces`: OTLP/HTTP trace export (JSON or protobuf, optionally gzip). Spans become
 * runs and steps through the one write path.
 */
export async function otlpRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // not a defineRoute (it takes protobuf and gzip too), so it is described here for openapi.json
  if (!routeDocs.some((d) => d.url === '/v1/traces')) {
    routeDocs.push({
      method: 'POST',
      url: '/v1/traces',
      scope: 'write',
      tag: 'opentelemetry',
      summary:
        'OTLP/HTTP trace export (application/json or application/x-protobuf, optionally gzip): ' +
        'GenAI, OpenInference, OpenLLMetry and Vercel AI SDK spans become runs and steps; ' +
        "a trace's root or invoke_agent span is the run. A protobuf request is answered in " +
        'protobuf: an ExportTraceServiceResponse, or a google.rpc.Status for an error',
      body: ExportTraceServiceRequest,
      alsoTakes: [PROTOBUF_TYPE],
      response: ExportTraceServiceResponse,
      status: 200,
      answers: {
        413: `Over ${MAX_OTLP_SPANS} spans or ${MAX_OTLP_OBJECTS} objects, or a gzip body that inflates past the body limit`,
        415: 'Neither application/json nor application/x-protobuf',
        429: 'The write path is behind: retry',
      },
    });
  }
  // a plugin, so the raw-body parsers below apply to this route only
  await app.register(async (sub) => {
    sub.removeAllContentTypeParsers();
    sub.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
    });
    // OTLP/HTTP answers in the request's encoding, errors too: a failed protobuf export gets a
    // protobuf google.rpc.Status, which the Collector's exporter decodes (a JSON body it cannot
    // read, and it reported only the status code, not what was wrong)
    sub.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode < 400 || mediaType(request) !== PROTOBUF_TYPE) return payload;
      void reply.type(PROTOBUF_TYPE);
      return status(reply.statusCode, errorMessage(payload));
    });

    sub.post('/v1/traces', { config: { scope: 'write' } }, async (request, reply) => {
      const contentType = mediaType(request);
      if (contentType !== JSON_TYPE && contentType !== PROTOBUF_TYPE) {
        const body: ApiErrorBody = {
          error: {
            code: 'invalid_input',
            message: `unsupported content type ${contentType || '(none)'}; send ${JSON_TYPE} or ${PROTOBUF_TYPE}`,
            details: [
              { field: 'headers.content-type', message: `send ${JSON_TYPE} or ${PROTOBUF_TYPE}` },
            ],
          },
        };
        return reply.status(415).send(body);
      }
      // inflated no larger than a plain body may be: a small gzip must not buy a huge one
      const raw = await inflate(request, ctx.config.bodyLimit);
      const decoded = decode(raw, contentType);
      // the schema of attribute values is recursive: a request nested far deeper than any
      // stored value may be (they are cut at MAX_JSON_DEPTH) is refused before it is walked
      if (!nestsWithin(decoded, MAX_REQUEST_DEPTH)) {
        const message = `nested deeper than ${MAX_REQUEST_DEPTH} levels`;
        throw new AppError('invalid_input', `body: ${message}`, [{ field: 'body', message }]);
      }
      const spans = spanCount(decoded);
      if (spans > MAX_OTLP_SPANS) {
        const message = `${spans} spans, over ${MAX_OTLP_SPANS} in one export: send smaller batches`;
        throw new AppError('payload_too_large', `body: ${message}`, [{ field: 'body', message }]);
      }
      const parsed = ExportTraceServiceRequest.safeParse(decoded);
      if (!parsed.success) {
        const details = fieldIssues(parsed.error, 'body');
        const first = details[0];
        throw new AppError(
          'invalid_input',
          first ? `${first.field}: ${first.message}` : 'not an ExportTraceServiceRequest',
          details,
        );
      }

      const mapped = mapTraces(parsed.data);
      const { valid, results } = validateEvents(mapped.events);
      const projectId = request.auth!.projectId;
      // events of runs deleted lately are refused: spans still arriving must not bring them
      // back; the answer counts their traces' spans
      let deleted = 0;
      if (mapped.runs.length === 0) await ctx.writer.submit(projectId, valid);
      else {
        await ctx.writer.transact(
          async (uow, env) => {
            const ignored = await settleSources(uow, projectId, mapped.runs);
            const created = new Set(
              mapped.runs.filter((r) => !uow.getRun(projectId, r.runId)).map((r) => r.runId),
            );
            const events = valid.filter((e) => !('run' in e && ignored.has(e.run.id)));
            underStoredRoot(uow, projectId, mapped.runs, events);
            const refused = await applyEvents(uow, projectId, events, env);
            const gone = new Set(refused.map((r) => eventRunId(events[r.index]!)));
            deleted = mapped.runs.reduce((n, r) => n + (gone.has(r.runId) ? r.spans : 0), 0);
            const tops = mapped.runs.filter((r) => !ignored.has(r.runId));
            await detachFromRun(uow, projectId, tops, env.now);
            nameAgents(uow, projectId, mapped.runs, created, env.now);
          },
          { events: valid.length, projectId },
        );
      }

      const invalid = results.filter((r) => !r.ok);
      const rejected = mapped.rejected + invalid.length + deleted;
      const message =
        mapped.firstProblem ??
        invalid[0]?.error?.message ??
        (deleted > 0 ? 'spans of a deleted run are not recorded' : '');
      return answer(reply, contentType, rejected, message);
    });
  });
}

/** The spans a decoded request carries, counted before the schema walks them. */
function spanCount(decoded: unknown): number {
  const list = (value: unknown, key: string): unknown[] => {
    const items = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : [];
    return Array.isArray(items) ? items : [];
  };
  let n = 0;
  for (const rs of list(decoded, 'resourceSpans'))
    for (const ss of list(rs, 'scopeSpans')) n += list(ss, 'spans').length;
  return n;
}

function mediaType(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The body, gunzipped off the event loop (zlib's thread pool) when it is gzip. */
async function inflate(request: FastifyRequest, maxOutputLength: number): Promise<Buffer> {
  const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  const encoding = (request.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return body;
  if (encoding !== 'gzip') {
    throw AppError.invalid(
      'headers.content-encoding',
      `unsupported Content-Encoding ${encoding.slice(0, 100)}; send gzip`,
    );
  }
  try {
    return await gunzipAsync(body, { maxOutputLength });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new AppError('payload_too_large', 'the inflated body is over the size limit');
    }
    throw AppError.invalid('body', 'not valid gzip');
  }
}

function decode(raw: Buffer, contentType: string): unknown {
  if (contentType === JSON_TYPE) {
    const text = raw.toString('utf8');
    if (!jsonContainersWithin(text, MAX_OTLP_OBJECTS)) throw tooManyContainers(MAX_OTLP_OBJECTS);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw AppError.invalid('body', 'not valid JSON');
    }
  }
  try {
    return decodeTraceRequest(raw, MAX_OTLP_OBJECTS);
  } catch (err) {
    if (err instanceof ProtobufTooLarge) throw tooManyContainers(MAX_OTLP_OBJECTS);
    if (err instanceof ProtobufError) {
      throw AppError.invalid('body', `not a protobuf ExportTraceServiceRequest (${err.message})`);
    }
    throw err;
  }
}

/** ExportTraceServiceResponse, in the request's encoding. */
function answer(
  reply: FastifyReply,
  contentType: string,
  rejected: number,
  message: string,
): FastifyReply {
  if (contentType === JSON_TYPE) {
    return reply
      .status(200)
      .send(
        rejected === 0
          ? {}
          : { partialSuccess: { rejectedSpans: rejected, errorMessage: message } },
      );
  }
  let body = Buffer.alloc(0);
  if (rejected > 0) {
    const text = Buffer.from(message, 'utf8');
    const partial = Buffer.concat([
      Buffer.from([0x08]),
      varint(rejected),
      Buffer.from([0x12]),
      varint(text.length),
      text,
    ]);
    body = Buffer.concat([Buffer.from([0x0a]), varint(partial.length), partial]);
  }
  return reply.status(200).type(PROTOBUF_TYPE).send(body);
}

/** The gRPC code of an HTTP error status (OTLP lets clients only log it). */
const GRPC_CODES: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  404: 5, // NOT_FOUND
  409: 6, // ALREADY_EXISTS
  413: 8, // RESOURCE_EXHAUSTED
  415: 3, // INVALID_ARGUMENT
  429: 8, // RESOURCE_EXHAUSTED
  503: 14, // UNAVAILABLE
};

/** The message of an error answer (`{"error": {message}}`), whatever sent it. */
function errorMessage(payload: unknown): string {
  const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload;
  if (typeof text !== 'string') return '';
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? message : '';
  } catch {
    return '';
  }
}

/** google.rpc.Status { code = 1; message = 2 }, the body of an OTLP/HTTP protobuf error. */
function status(httpStatus: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  return Buffer.concat([
    Buffer.from([0x08]),
    varint(GRPC_CODES[httpStatus] ?? (httpStatus >= 500 ? 13 : 2)),
    Buffer.from([0x12]),
    varint(text.length),
    text,
  ]);
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/**
 * Weighs this batch's run events against what started the stored run (`RUN_SOURCES`): a
 * stronger source reopens it for its own events (a root replaces a stand-in; an invoke_agent
 * span, a stand-in made of spans, agent included), a weaker one is ignored, so a stand-in sent
 * after the root does not mark the run a stand-in again. Returns the runs whose run events
 * this batch must not apply; their steps still count.
 */
async function settleSources(
  uow: UnitOfWork,
  projectId: string,
  runs: readonly MappedRun[],
): Promise<Set<string>> {
  const ignored = new Set<string>();
  await uow.loadRuns(
    projectId,
    runs.map((r) => r.runId),
  );
  for (const { runId, from, startedAt, agent } of runs) {
    const run = uow.getRun(projectId, runId);
    const stored = run && sourceOf(run);
    if (!run || !stored) continue;
    const stronger = RUN_SOURCES.indexOf(from) - RUN_SOURCES.indexOf(stored);
    // a run the control plane ended (Stop, its agent's timeout) stays ended: spans never
    // end a run cancelled or timed out, so such an end is not a stand-in's guess
    if (stronger < 0 || run.status === 'cancelled' || run.status === 'timed_out')
      ignored.add(runId);
    else if (stronger > 0) uow.putRun(reopened(run, stored === 'spans' && agent !== undefined));
    else if (
      from === 'invoke_agent' &&
      startedAt !== undefined &&
      run.started_at !== null &&
      startedAt < run.started_at
    ) {
      // an invoke_agent span that started before the one standing in is the agent that
      // called it (a sub-agent ends, and is sent, first): it stands in for the root instead
      uow.putRun(reopened(run, agent !== undefined));
    } else if (
      from === 'spans' &&
      run.status === 'running' &&
      startedAt !== undefined &&
      run.started_at !== null &&
      startedAt < run.started_at
    ) {
      // parents end, and are sent, after their children: a later export may start earlier
      uow.putRun({ ...run, started_at: null });
    }
  }
  return ignored;
}

/**
 * Steps of this batch whose parent is their run's stored root span (sent after the root: a
 * span that ends after its parent, such as a stream) are top-level steps, as they are when
 * the root comes after them (`detachFromRun`).
 */
function underStoredRoot(
  uow: UnitOfWork,
  projectId: string,
  runs: readonly MappedRun[],
  events: IngestEvent[],
): void {
  const roots = new Map<string, string>();
  for (const { runId } of runs) {
    const run = uow.getRun(projectId, runId);
    const root = run && parseObject(run.metadata)[ROOT_SPAN_KEY];
    if (typeof root === 'string') roots.set(runId, root);
  }
  if (roots.size === 0) return;
  for (const event of events) {
    if ('step' in event && event.step.parent_step_id === roots.get(event.step.run_id))
      event.step.parent_step_id = null;
  }
}

/** What started a run recorded from OTLP spans; undefined for a run no span started. */
function sourceOf(run: RunRow): RunSource | undefined {
  const metadata = parseObject(run.metadata);
  if (!(TRACE_ID_KEY in metadata)) return undefined;
  const standIn = metadata[STAND_IN_KEY];
  return standIn === 'spans' ? 'spans' : standIn === true ? 'invoke_agent' : 'root';
}

/**
 * Steps recorded under a span that has turned out to be their run (its root) are top-level
 * steps: exporters send children before their parents, so these came before anyone knew
 * their parent was not a step. Steps of this batch are mapped so already; this moves the
 * stored ones, looked up for all the batch's roots at once.
 */
async function detachFromRun(
  uow: UnitOfWork,
  projectId: string,
  tops: readonly { runId: string; top?: string }[],
  now: number,
): Promise<void> {
  const topOf = new Map<string, string>();
  for (const { runId, top } of tops) if (top !== undefined) topOf.set(runId, top);
  if (topOf.size === 0) return;
  const under = (
    await uow.trx
      .selectFrom('steps')
      .select(['run_id', 'id', 'parent_step_id'])
      .where('project_id', '=', projectId)
      .where('run_id', 'in', [...topOf.keys()])
      .where('parent_step_id', 'in', [...new Set(topOf.values())])
      .execute()
  ).filter((s) => s.parent_step_id === topOf.get(s.run_id));
  if (under.length === 0) return;
  await uow.loadSteps(projectId, under);
  for (const { run_id: runId, id } of under) {
    const step = uow.getStep(projectId, runId, id);
    const run = uow.getRun(projectId, runId);
    if (!run || !step || step.parent_step_id !== topOf.get(runId)) continue;
    uow.putStep({ ...step, parent_step_id: null, updated_at: now }, run);
  }
}

/**
 * A run's agent is the first `gen_ai.agent.name` of its trace, else its service, whatever
 * order the spans come in: a run this batch created without a name is marked as its
 * service's, and the first batch that names an agent (an `invoke_agent` span sent after the
 * root, which the run does not take its outcome from) gives it that agent.
 */
function nameAgents(
  uow: UnitOfWork,
  projectId: string,
  runs: readonly MappedRun[],
  created: ReadonlySet<string>,
  now: number,
): void {
  for (const { runId, agent } of runs) {
    const run = uow.getRun(projectId, runId);
    if (!run) continue;
    const { [AGENT_FROM_SERVICE_KEY]: fromService, ...metadata } = parseObject(run.metadata);
    if (agent === undefined) {
      if (created.has(runId) && fromService === undefined)
        uow.putRun({
          ...run,
          metadata: JSON.stringify({ ...metadata, [AGENT_FROM_SERVICE_KEY]: true }),
          updated_at: now,
        });
    } else if (fromService === true) {
      uow.putRun({ ...run, agent_id: agent, metadata: JSON.stringify(metadata), updated_at: now });
    }
  }
}

/**
 * A run a stand-in recorded, open again for the events of a stronger source: running, without
 * what the stand-in set. A stand-in made of spans, or a sub-agent's invoke_agent span, guessed
 * the agent: it gives way when the stronger source names one (`takesAgent`), and stays when
 * that would only know the service (a root HTTP span arriving last, after the invoke_agent
 * span that named the run).
 */
function reopened(run: RunRow, takesAgent: boolean): RunRow {
  // the span name goes with the stand-in: the run is the stronger source's span now
  const {
    [STAND_IN_KEY]: _standIn,
    [SPAN_NAME_KEY]: _spanName,
    ...metadata
  } = parseObject(run.metadata);
  return {
    ...run,
    agent_id: takesAgent ? UNKNOWN_AGENT : run.agent_id,
    status: 'running',
    started_at: null,
    ended_at: null,
    duration_ms: null,
    input: null,
    output: null,
    error: null,
    metadata: JSON.stringify(metadata),
  };
}
