import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiErrorBody } from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError, fieldIssues } from '../http/errors.js';
import { routeDocs } from '../http/route.js';
import type { RunRow } from '../db/schema.js';
import { validateEvents } from '../ingest/ingest.service.js';
import { parseObject } from '../ingest/apply.js';
import { applyEvents } from '../ingest/writer.js';
import type { UnitOfWork } from '../ingest/unit-of-work.js';
import { ExportTraceServiceRequest, STAND_IN_KEY, mapTraces } from './otlp.mapper.js';
import { decodeTraceRequest, ProtobufError } from './otlp.protobuf.js';

const JSON_TYPE = 'application/json';
const PROTOBUF_TYPE = 'application/x-protobuf';
const gunzipAsync = promisify(gunzip);

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
        "a trace's root or invoke_agent span is the run",
      body: ExportTraceServiceRequest,
      status: 200,
    });
  }
  // a plugin, so the raw-body parsers below apply to this route only
  await app.register(async (sub) => {
    sub.removeAllContentTypeParsers();
    sub.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
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
      if (mapped.tops.length === 0) await ctx.writer.submit(projectId, valid);
      else {
        await ctx.writer.transact(
          async (uow, env) => {
            // a root that comes after the invoke_agent span standing in for it is the run: what
            // the stand-in ended it with (its outcome, times, input) gives way to the root's
            await uow.loadRuns(projectId, mapped.rooted);
            for (const id of mapped.rooted) {
              const run = uow.getRun(projectId, id);
              const open = run && reopened(run);
              if (open) uow.putRun(open);
            }
            await applyEvents(uow, projectId, valid, env);
            await detachFromRun(uow, projectId, mapped.tops, env.now);
          },
          { events: valid.length, projectId },
        );
      }

      const invalid = results.filter((r) => !r.ok);
      const rejected = mapped.rejected + invalid.length;
      const message = mapped.firstProblem ?? invalid[0]?.error?.message ?? '';
      return answer(reply, contentType, rejected, message);
    });
  });
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
    throw new AppError('invalid_input', `unsupported Content-Encoding ${encoding}; send gzip`);
  }
  try {
    return await gunzipAsync(body, { maxOutputLength });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new AppError('payload_too_large', 'the inflated body is over the size limit');
    }
    throw new AppError('invalid_input', 'body: not valid gzip');
  }
}

function decode(raw: Buffer, contentType: string): unknown {
  if (contentType === JSON_TYPE) {
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch {
      throw new AppError('invalid_input', 'body: not valid JSON');
    }
  }
  try {
    return decodeTraceRequest(raw);
  } catch (err) {
    if (err instanceof ProtobufError) {
      throw new AppError(
        'invalid_input',
        `body: not a protobuf ExportTraceServiceRequest (${err.message})`,
      );
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
 * Steps recorded under a span that has turned out to be their run (its root, or the absent
 * root an `invoke_agent` stand-in replaces) are top-level steps: exporters send children
 * before their parents, so these came before anyone knew their parent was not a step. Steps
 * of this batch are mapped so already; this moves the stored ones.
 */
async function detachFromRun(
  uow: UnitOfWork,
  projectId: string,
  tops: readonly { runId: string; spanId: string }[],
  now: number,
): Promise<void> {
  await uow.loadRuns(
    projectId,
    tops.map((t) => t.runId),
  );
  for (const { runId, spanId } of tops) {
    const under = await uow.trx
      .selectFrom('steps')
      .select(['run_id', 'id'])
      .where('project_id', '=', projectId)
      .where('run_id', '=', runId)
      .where('parent_step_id', '=', spanId)
      .execute();
    if (under.length === 0) continue;
    await uow.loadSteps(projectId, under);
    let run = uow.getRun(projectId, runId);
    for (const { id } of under) {
      const step = uow.getStep(projectId, runId, id);
      if (!run || step?.parent_step_id !== spanId) continue;
      run = uow.putStep({ ...step, parent_step_id: null, updated_at: now }, run);
    }
  }
}

/**
 * A run recorded from an `invoke_agent` span standing in for its root, open again for the
 * root's events: running, without what the stand-in set. Any other run: `undefined`.
 */
function reopened(run: RunRow): RunRow | undefined {
  const { [STAND_IN_KEY]: standIn, ...metadata } = parseObject(run.metadata);
  if (standIn !== true) return undefined;
  return {
    ...run,
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
