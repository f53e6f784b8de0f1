import { describe, expect, it } from 'vitest';
import {
  IngestEvent,
  MAX_JSON_DEPTH,
  RunListQuery,
  TOO_DEEP,
  Id,
  TimeInput,
  storedDepth,
} from './schemas.js';
import { parseDuration, toIso } from './time.js';

describe('wire schemas', () => {
  it('accepts times as ISO strings or epoch milliseconds', () => {
    expect(TimeInput.parse('2026-01-02T03:04:05.678Z')).toBe(
      Date.parse('2026-01-02T03:04:05.678Z'),
    );
    expect(TimeInput.parse('2026-01-02T04:04:05.678+01:00')).toBe(
      Date.parse('2026-01-02T03:04:05.678Z'),
    );
    expect(TimeInput.parse(1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(TimeInput.safeParse('yesterday').success).toBe(false);
    // as a number or as text, up to the end of the year 9999, the last the ISO form names
    // as YYYY (past it, +YYYYYY, which no ISO input of the API takes back)
    expect(TimeInput.parse('9999-12-31T23:59:59.999Z')).toBe(253_402_300_799_999);
    expect(TimeInput.parse(253_402_300_799_999)).toBe(253_402_300_799_999);
    for (const past of [253_402_300_800_000, '253402300800000', 999_999_999_999_999])
      expect(TimeInput.safeParse(past).error?.issues[0]?.message, String(past)).toBe(
        'must be before 10000-01-01T00:00:00Z',
      );
    expect(TimeInput.safeParse('8640000000000001').success).toBe(false);
    expect(TimeInput.safeParse('9999999999999999').success).toBe(false);
    // before 1970 as an ISO string too, as epoch milliseconds below 0 are
    for (const before of ['1969-12-31T23:59:59.999Z', '0001-01-01T00:00:00Z'])
      expect(TimeInput.safeParse(before).error?.issues[0]?.message, before).toBe(
        'must not be before 1970-01-01T00:00:00Z',
      );
    expect(TimeInput.parse('1970-01-01T00:00:00Z')).toBe(0);
  });

  it('refuses the ids . and .., which a URL path cannot carry, and takes other dotted ids', () => {
    for (const id of ['.', '..'])
      expect(Id.safeParse(id).error?.issues[0]?.message).toBe(
        'must be 1-128 characters of A-Za-z0-9._:-, other than . and ..',
      );
    for (const id of ['...', '.a', 'a.', '..b', 'v1.2']) expect(Id.parse(id)).toBe(id);
  });

  it('refuses epoch seconds, which as milliseconds would land in 1970', () => {
    const refused = TimeInput.safeParse(1_764_900_000);
    expect(refused.error?.issues[0]?.message).toBe(
      '1764900000 is 1970-01-21T10:15:00.000Z as milliseconds: it looks like epoch seconds (multiply by 1000)',
    );
    expect(TimeInput.safeParse('1764900000').success).toBe(false);
    expect(TimeInput.safeParse('1970-01-21T10:15:00Z').success).toBe(false);
    // small numbers stay times near the epoch (a query's lower bound, a test's clock)
    expect(TimeInput.parse(0)).toBe(0);
    expect(TimeInput.parse(999_999_999)).toBe(999_999_999);
    expect(TimeInput.parse(10_000_000_000)).toBe(10_000_000_000);
  });

  it('refuses epoch microseconds, which as milliseconds would land past the year 9999', () => {
    for (const micros of [1_796_545_155_164_489, '1796545155164489'])
      expect(TimeInput.safeParse(micros).error?.issues[0]?.message).toBe(
        '1796545155164489 is +058900-04-01T16:52:44.489Z as milliseconds: it looks like epoch microseconds (divide by 1000)',
      );
  });

  it('maps status aliases while parsing events', () => {
    const e = IngestEvent.parse({ type: 'run.end', run: { id: 'r', status: 'completed' } });
    expect(e.type === 'run.end' && e.run.status).toBe('succeeded');
  });

  it('takes an error as a message string', () => {
    const e = IngestEvent.parse({
      type: 'step.end',
      step: { id: 's', run_id: 'r', error: 'boom' },
    });
    expect(e.type === 'step.end' && e.step.error).toEqual({ message: 'boom' });
  });

  it('parses comma lists in queries and names the bad field', () => {
    expect(RunListQuery.parse({ status: 'failed,timed_out', agent_id: 'a,b' })).toMatchObject({
      status: ['failed', 'timed_out'],
      agent_id: ['a', 'b'],
      limit: 50,
    });
    const bad = RunListQuery.safeParse({ status: 'failed,nope' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['status', 1]);
  });

  it('formats and parses durations', () => {
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('soon')).toBeUndefined();
    expect(toIso(0)).toBe('1970-01-01T00:00:00.000Z');
    // the same text as toISOString, across days, years and the edges of the plain-year range
    const samples = [
      1, 999, 1000, 59_999, 86_399_999, 86_400_000, 951_782_400_000, 1_772_359_200_123,
    ];
    for (let i = 0; i < 20_000; i++) samples.push(Math.floor(Math.random() * 4_102_444_800_000));
    samples.push(253_402_300_799_999, 253_402_300_800_000, -1, -86_400_001, 1.5);
    for (const ms of samples) expect(toIso(ms)).toBe(new Date(ms).toISOString());
    expect(toIso(null)).toBeNull();
  });
});

describe('storedDepth', () => {
  const nest = (levels: number, leaf: unknown = 'leaf') => {
    let value: unknown = leaf;
    for (let i = 0; i < levels; i++) value = i % 2 ? { k: value } : [value];
    return value;
  };
  it('keeps a value within the depth as it is, and cuts only the part below it', () => {
    const within = nest(MAX_JSON_DEPTH);
    expect(storedDepth(within)).toBe(within);
    expect(storedDepth(null)).toBeNull();
    // one level too deep: the innermost array gives way to the marker, the rest is kept
    expect(storedDepth(nest(MAX_JSON_DEPTH + 1))).toEqual(
      (() => {
        let value: unknown = TOO_DEEP;
        for (let i = 1; i <= MAX_JSON_DEPTH; i++) value = i % 2 ? { k: value } : [value];
        return value;
      })(),
    );
  });
});
