/**
 * A minimal protobuf wire decoder for the OTLP trace messages
 * (opentelemetry/proto/collector/trace/v1 ExportTraceServiceRequest). It yields the same
 * shape as OTLP JSON (lowerCamelCase, ids as hex, int64 as decimal strings), so one zod
 * schema validates both encodings. Unknown fields are skipped, as protobuf requires.
 */

type Fields = Record<string, unknown>;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export class ProtobufError extends Error {}

/** A request of more messages than `decodeTraceRequest` was allowed to decode. */
export class ProtobufTooLarge extends ProtobufError {}

/**
 * The messages the decoding under way may still read. Each becomes an object: two bytes make
 * an empty one, so a 64 MiB body could have made 32 million of them before its spans were
 * counted.
 */
let messagesLeft = 0;

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly end = buf.length,
  ) {}

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint');
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new ProtobufError('varint too long');
    }
  }

  bytes(): Buffer {
    const len = Number(this.varint());
    if (len < 0 || this.pos + len > this.end) throw new ProtobufError('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  fixed(size: 4 | 8): Buffer {
    if (this.pos + size > this.end) throw new ProtobufError('truncated fixed field');
    const out = this.buf.subarray(this.pos, this.pos + size);
    this.pos += size;
    return out;
  }
}

/** Field handlers of one message: field number -> (value reader, wire type) -> void. */
type Handler = (r: Reader, wire: number) => void;

function readMessage(buf: Buffer, handlers: Record<number, Handler>): void {
  if (--messagesLeft < 0) throw new ProtobufTooLarge('too many messages');
  const r = new Reader(buf);
  while (r.pos < r.end) {
    const tag = Number(r.varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new ProtobufError('field number 0');
    const handler = handlers[field];
    if (handler) {
      handler(r, wire);
      continue;
    }
    if (wire === WIRE_VARINT) r.varint();
    else if (wire === WIRE_I64) r.fixed(8);
    else if (wire === WIRE_LEN) r.bytes();
    else if (wire === WIRE_I32) r.fixed(4);
    else throw new ProtobufError(`unsupported wire type ${wire}`);
  }
}

function expectWire(wire: number, want: number): void {
  if (wire !== want) throw new ProtobufError(`wire type ${wire}, expected ${want}`);
}

const len =
  (fn: (b: Buffer) => void): Handler =>
  (r, wire) => {
    expectWire(wire, WIRE_LEN);
    fn(r.bytes());
  };

function push(target: Fields, key: string, value: unknown): void {
  const list = (target[key] ??= []) as unknown[];
  list.push(value);
}

/**
 * How deep attribute values may nest in a protobuf request: deeper is refused before the
 * decoder's recursion can run out of stack (a 6 KB body can nest thousands of levels).
 */
const MAX_VALUE_NESTING = 256;

function anyValue(buf: Buffer, depth = 0): Fields {
  if (depth > MAX_VALUE_NESTING)
    throw new ProtobufError(`attribute values nest deeper than ${MAX_VALUE_NESTING} levels`);
  const out: Fields = {};
  readMessage(buf, {
    1: len((b) => (out.stringValue = b.toString('utf8'))),
    2: (r, wire) => {
      expectWire(wire, WIRE_VARINT);
      out.boolValue = r.varint() !== 0n;
    },
    3: (r, wire) => {
      expectWire(wire, WIRE_VARINT);
      out.intValue = BigInt.asIntN(64, r.varint()).toString();
    },
    4: (r, wire) => {
      expectWire(wire, WIRE_I64);
      out.doubleValue = r.fixed(8).readDoubleLE(0);
    },
    5: len((b) => {
      const values: unknown[] = [];
      readMessage(b, { 1: len((v) => values.push(anyValue(v, depth + 1))) });
      out.arrayValue = { values };
    }),
    6: len((b) => {
      const values: unknown[] = [];
      readMessage(b, { 1: len((v) => values.push(keyValue(v, depth + 1))) });
      out.kvlistValue = { values };
    }),
    7: len((b) => (out.bytesValue = b.toString('base64'))),
  });
  return out;
}

function keyValue(buf: Buffer, depth = 0): Fields {
  const out: Fields = { key: '' };
  readMessage(buf, {
    1: len((b) => (out.key = b.toString('utf8'))),
    2: len((b) => (out.value = anyValue(b, depth))),
  });
  return out;
}

function fixed64String(r: Reader, wire: number): string {
  expectWire(wire, WIRE_I64);
  return r.fixed(8).readBigUInt64LE(0).toString();
}

function spanEvent(buf: Buffer): Fields {
  const out: Fields = { name: '' };
  readMessage(buf, {
    1: (r, wire) => (out.timeUnixNano = fixed64String(r, wire)),
    2: len((b) => (out.name = b.toString('utf8'))),
    3: len((b) => push(out, 'attributes', keyValue(b))),
    4: (r, wire) => {
      expectWire(wire, WIRE_VARINT);
      out.droppedAttributesCount = Number(r.varint());
    },
  });
  return out;
}

function span(buf: Buffer): Fields {
  const out: Fields = {};
  readMessage(buf, {
    1: len((b) => (out.traceId = b.toString('hex'))),
    2: len((b) => (out.spanId = b.toString('hex'))),
    4: len((b) => (out.parentSpanId = b.toString('hex'))),
    5: len((b) => (out.name = b.toString('utf8'))),
    6: (r, wire) => {
      expectWire(wire, WIRE_VARINT);
      out.kind = Number(r.varint());
    },
    7: (r, wire) => (out.startTimeUnixNano = fixed64String(r, wire)),
    8: (r, wire) => (out.endTimeUnixNano = fixed64String(r, wire)),
    9: len((b) => push(out, 'attributes', keyValue(b))),
    11: len((b) => push(out, 'events', spanEvent(b))),
    15: len((b) => {
      const status: Fields = {};
      readMessage(b, {
        2: len((m) => (status.message = m.toString('utf8'))),
        3: (r, wire) => {
          expectWire(wire, WIRE_VARINT);
          status.code = Number(r.varint());
        },
      });
      out.status = status;
    }),
  });
  return out;
}

function resource(buf: Buffer): Fields {
  const out: Fields = {};
  readMessage(buf, { 1: len((b) => push(out, 'attributes', keyValue(b))) });
  return out;
}

/**
 * Decodes an ExportTraceServiceRequest; throws ProtobufError on a malformed payload, and
 * ProtobufTooLarge past `maxMessages` messages (each one an object decoded).
 */
export function decodeTraceRequest(buf: Buffer, maxMessages = Infinity): Fields {
  messagesLeft = maxMessages;
  const out: Fields = { resourceSpans: [] };
  readMessage(buf, {
    1: len((rs) => {
      const resourceSpans: Fields = { scopeSpans: [] };
      readMessage(rs, {
        1: len((b) => (resourceSpans.resource = resource(b))),
        2: len((ss) => {
          const scopeSpans: Fields = { spans: [] };
          readMessage(ss, {
            1: len((b) => {
              const scope: Fields = {};
              readMessage(b, {
                1: len((n) => (scope.name = n.toString('utf8'))),
                2: len((v) => (scope.version = v.toString('utf8'))),
                3: len((a) => push(scope, 'attributes', keyValue(a))),
              });
              scopeSpans.scope = scope;
            }),
            2: len((b) => push(scopeSpans, 'spans', span(b))),
          });
          push(resourceSpans, 'scopeSpans', scopeSpans);
        }),
      });
      push(out, 'resourceSpans', resourceSpans);
    }),
  });
  return out;
}
