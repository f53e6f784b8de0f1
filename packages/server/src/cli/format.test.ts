import { describe, expect, it } from 'vitest';
import { redact } from './io.js';
import {
  Palette,
  Progress,
  bar,
  cutToWidth,
  formatDuration,
  formatMoney,
  formatRelative,
  formatSpan,
  formatTokens,
  sparkline,
  table,
  visibleWidth,
  wrapList,
} from './format.js';

describe('CLI formatting', () => {
  it('formats durations, money and tokens for people', () => {
    expect([350, 1234, 184_000, 7_500_000, 273_600_000].map(formatDuration)).toEqual([
      '350ms',
      '1.2s',
      '3m 04s',
      '2h 05m',
      '3d 4h',
    ]);
    expect(formatDuration(null)).toBe('-');
    expect([0, 0.01234, 12.345].map(formatMoney)).toEqual(['$0', '$0.0123', '$12.35']);
    // one small LLM call: fractions of a cent keep two significant digits, not $0.0000
    expect([0.0000279, 0.00036].map(formatMoney)).toEqual(['$0.000028', '$0.00036']);
    expect([950, 12_345, 123_456, 4_500_000].map(formatTokens)).toEqual([
      '950',
      '12.3k',
      '123k',
      '4.5M',
    ]);
  });

  it("writes a setting's span exactly, in the units it is typed in", () => {
    expect(
      [500, 1000, 1500, 90_000, 300_000, 5_400_000, 7_200_000, 604_800_000].map(formatSpan),
    ).toEqual(['500ms', '1s', '1.5s', '1m 30s', '5m', '1h 30m', '2h', '7d']);
    // nothing rounded away, where formatDuration says `1d 0h`
    expect(formatSpan(86_400_000 + 1500)).toBe('1d 1.5s');
  });

  it('says how long ago a time was', () => {
    const now = Date.parse('2026-03-10T12:00:00Z');
    expect(formatRelative('2026-03-10T11:59:30Z', now)).toBe('30s ago');
    expect(formatRelative('2026-03-10T09:00:00Z', now)).toBe('3h ago');
    expect(formatRelative('2026-03-06T12:00:00Z', now)).toBe('4d ago');
    expect(formatRelative('2025-01-01T00:00:00Z', now)).toBe('2025-01-01');
    expect(formatRelative('2026-03-10T12:05:00Z', now)).toBe('in 5m');
    expect(formatRelative('2026-03-12T12:00:00Z', now)).toBe('in 2d');
    // time passed in whole units; a time to come to the nearest, the next unit from 59.5
    expect(formatRelative('2026-03-10T09:01:00Z', now)).toBe('2h ago');
    expect(formatRelative('2026-03-10T14:59:00Z', now)).toBe('in 3h');
    expect(formatRelative('2026-03-10T12:59:40Z', now)).toBe('in 1h');
    expect(formatRelative('2026-03-10T12:00:59.6Z', now)).toBe('in 1m');
    expect(formatRelative('2026-03-11T11:45:00Z', now)).toBe('in 1d');
  });

  it('aligns table columns by visible width, colours only when enabled', () => {
    const colour = new Palette(true);
    const text = table(
      [{ header: 'NAME' }, { header: 'N', align: 'right' }],
      [
        [colour.status('failed'), '5'],
        ['ok', '123'],
      ],
      colour,
    );
    // eslint-disable-next-line no-control-regex -- stripping ANSI escapes is the point
    const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).toBe('NAME      N\nfailed    5\nok      123\n');
    expect(text).toContain('\u001b[31mfailed\u001b[39m');
    expect(Palette.for({ isTTY: true }, { NO_COLOR: '1' }).enabled).toBe(false);
    expect(Palette.for({ isTTY: false }, {}).enabled).toBe(false);
    expect(Palette.for({ isTTY: true }, {}).enabled).toBe(true);
  });

  it('cuts the widest text columns of a table to the terminal width, never the numbers', () => {
    const rows = [
      ['agent-with-a-very-long-name-indeed', 'A long description of what it does', '1,234'],
      ['short', 'x', '5'],
    ];
    const cols = [
      { header: 'AGENT' },
      { header: 'NOTE' },
      { header: 'RUNS', align: 'right' as const },
    ];
    const narrow = table(cols, rows, new Palette(false, 40)).split('\n').filter(Boolean);
    for (const line of narrow) expect(line.length).toBeLessThanOrEqual(40);
    expect(narrow[1]).toBe('agent-w…  A long description of …  1,234');
    expect(narrow[2]).toMatch(/ 5$/);
    // no width known (a pipe without COLUMNS): nothing is cut
    expect(table(cols, rows, new Palette(false))).toContain('agent-with-a-very-long-name-indeed');
    expect(Palette.for({ isTTY: false }, { COLUMNS: '60' }).width).toBe(60);
    expect(Palette.for({ isTTY: true, columns: 100 }, {}).width).toBe(100);
  });

  it('aligns and cuts wide characters (CJK, emoji) by the columns a terminal gives them', () => {
    expect(['漢字', 'スレッド-🚀', 'e\u0301', 'a\u200db', 'ｶﾀｶﾅ'].map(visibleWidth)).toEqual([
      4, 11, 1, 2, 4,
    ]);
    expect(cutToWidth('漢字テキスト', 6)).toBe('漢字…');
    expect(cutToWidth('漢字', 4)).toBe('漢字');
    // an emoji of several code points is kept whole or left out, never cut inside
    const family = '\u{1f469}\u200d\u{1f469}\u200d\u{1f467}';
    expect(visibleWidth(family)).toBe(2);
    expect(cutToWidth(family + family, 3)).toBe(`${family}…`);
    const cols = [{ header: 'THREAD' }, { header: 'RUNS', align: 'right' as const }];
    const rows = [
      ['漢字スレッド-🚀', '37'],
      ['t-0', '19'],
    ];
    // each row's RUNS ends in the same column
    const lines = table(cols, rows, new Palette(false)).trimEnd().split('\n');
    expect(lines.map(visibleWidth)).toEqual([21, 21, 21]);
    expect(lines[1]).toBe('漢字スレッド-🚀    37');
    // cut to a width, a cell takes no more columns than it has
    const cut = table(cols, rows, new Palette(false, 16)).trimEnd().split('\n');
    expect(cut[1]).toBe('漢字スレ…     37');
    for (const line of cut) expect(visibleWidth(line)).toBeLessThanOrEqual(16);
  });

  it('never cuts an id: it leaves out the least needed columns first', () => {
    const id = '01a241c5-2c01-7890-b123-456789abcdef';
    const cols = [
      { header: 'ID', whole: true },
      { header: 'STATUS', whole: true },
      { header: 'TRIGGER', optional: 1 },
      { header: 'STARTED' },
      { header: 'TOKENS', align: 'right' as const, optional: 2 },
    ];
    const rows = [[id, 'succeeded', 'schedule', 'queued 3 min ago', '12.3k']];
    const at = (width: number) =>
      table(cols, rows, new Palette(false, width)).split('\n').filter(Boolean);
    // wide enough: everything, whole
    expect(at(90)[1]).toBe(`${id}  succeeded  schedule  queued 3 min ago   12.3k`);
    // 80: a text column is cut, never the id or the status
    expect(at(80)[1]).toBe(`${id}  succeeded  schedule  queued 3 min…   12.3k`);
    // narrower: TRIGGER goes, then TOKENS
    expect(at(70)[0]).not.toContain('TRIGGER');
    expect(at(70)[1]).toBe(`${id}  succeeded  queued 3 min…   12.3k`);
    expect(at(60)[1]).toBe(`${id}  succeeded  queued 3 m…`);
    // too narrow for even the whole columns: they stay whole, past the width
    expect(at(30)[1]).toBe(`${id}  succeeded  queued …`);
  });

  it('wraps a list to the width, continuation lines indented, colour codes not counted', () => {
    const items = ['(1,234 succeeded', '56 \u001b[31mfailed\u001b[39m', '7 cancelled', '8 queued)'];
    expect(wrapList(items, 20, 21)).toBe(items.join(', '));
    const lines = wrapList(items, 20, 21, 50).split('\n');
    expect(lines).toEqual([
      '(1,234 succeeded, 56 \u001b[31mfailed\u001b[39m,',
      ' '.repeat(21) + '7 cancelled, 8 queued)',
    ]);
    // a single item wider than the width stays whole on its line
    expect(wrapList(['a'.repeat(60)], 20, 21, 50)).toBe('a'.repeat(60));
  });

  it('draws sparklines and bars scaled to the largest value', () => {
    expect(sparkline([0, 5, 10, null])).toBe('▁▄█ ');
    // a year of days in 40 characters: neighbours share one, a lone spike still shows
    const year = Array.from({ length: 366 }, (_, i) => (i === 200 ? 50 : 1));
    const fitted = sparkline(year, 40);
    expect(fitted.length).toBeLessThanOrEqual(40);
    expect(fitted.match(/█/g)).toHaveLength(1);
    expect(sparkline([null, null, 4, 2], 2)).toBe(' █');
    expect(bar(5, 10, 20)).toBe('█'.repeat(10));
    expect(bar(0, 10, 20)).toBe('');
  });

  it('draws progress only on a TTY', () => {
    let written = '';
    const tty = new Progress({ isTTY: true, write: (t: string) => (written += t) }, 'import', 10);
    tty.done(5);
    expect(written).toMatch(/^\rimport \[#{12}-{12}\] 5\/10 50% /);
    let silent = '';
    new Progress({ isTTY: false, write: (t: string) => (silent += t) }, 'import').done(5);
    expect(silent).toBe('');
  });
});

describe('redact', () => {
  it('masks a PostgreSQL password in the URL and in its query', () => {
    expect(redact('postgres://app:S3cret@db:5432/runlog?schema=x&password=S3cret2')).toBe(
      'postgres://app:***@db:5432/runlog?schema=x&password=***',
    );
    expect(redact('postgres://db/runlog?PASSWORD=p&sslmode=require')).toBe(
      'postgres://db/runlog?PASSWORD=***&sslmode=require',
    );
    // the passphrase of the client's TLS key (pg's sslpassword) is as secret
    expect(redact('postgres://db/runlog?sslkey=/k.pem&sslpassword=pass&x=1')).toBe(
      'postgres://db/runlog?sslkey=/k.pem&sslpassword=***&x=1',
    );
    // a password holding an @ or a / as typed, not percent-encoded: none of it shows
    expect(redact('postgres://app:p@ss@db:5432/runlog')).toBe('postgres://app:***@db:5432/runlog');
    expect(redact('postgres://app:pa/ss@db/runlog')).toBe('postgres://app:***@db/runlog');
    expect(redact('postgres://app@db/runlog')).toBe('postgres://app@db/runlog');
    expect(redact('./.runlog/runlog.db')).toBe('./.runlog/runlog.db');
  });
});
