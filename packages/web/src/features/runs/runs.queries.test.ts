import { describe, expect, it } from 'vitest';
import { metadataParam, metadataQuery, truncatedJson } from '@runlog/core';
import {
  localInput,
  metadataFromParams,
  runListParams,
  runsExportPath,
  urlInstant,
  viewFilters,
  type RunsView,
} from './runs.queries';
import { runMatches } from './runs.cache';
import { runsPath, viewFromParams } from './RunsPage';
import { runFixture } from '../../../../core/test/fixtures';

const run = runFixture({ id: 'r-1', status: 'failed' });

const view = (over: Partial<RunsView>): RunsView => ({
  agent: [],
  status: [],
  trigger: [],
  source: '',
  from: '',
  to: '',
  q: '',
  thread: '',
  user: '',
  tag: '',
  parent: '',
  model: '',
  score: '',
  scoreMin: '',
  scoreMax: '',
  scoreLabel: '',
  retried: '',
  metadata: {},
  sort: 'newest',
  page: 0,
  ...over,
});

describe('the Retried filter', () => {
  it('goes to the API as retried=true or false, and not at all for either', () => {
    expect(runListParams(view({ retried: 'false' })).retried).toBe('false');
    expect(runListParams(view({ retried: 'true' })).retried).toBe('true');
    expect(runListParams(view({})).retried).toBeUndefined();
  });

  it('leaves live updates of a list it filters to the server: a retry changes no field of the run it retries', () => {
    const f = viewFilters(view({ retried: 'false' }));
    expect(f.retried).toBe(false);
    expect(runMatches(run, f)).toBeUndefined();
    expect(runMatches(run, viewFilters(view({})))).toBe(true);
    // a new retry, whatever else the filter asks, moves the run it retries out of the list
    const retry = runFixture({ id: 'r-2', status: 'queued', retry_of: 'r-1' });
    const failedOnly = viewFilters(view({ retried: 'false', status: ['failed'] }));
    expect(runMatches(retry, failedOnly)).toBeUndefined();
    expect(runMatches(runFixture({ id: 'r-3', status: 'queued' }), failedOnly)).toBe(false);
  });
});

describe('exact-match filters in the URL', () => {
  it('go to the API as thread_id, user_id, tag and parent_run_id', () => {
    const f = viewFilters(view({ thread: 't-1', user: 'dana', tag: 'prod', parent: 'p-1' }));
    expect(f).toMatchObject({
      thread_id: 't-1',
      user_id: 'dana',
      tag: 'prod',
      parent_run_id: 'p-1',
    });
    expect(viewFilters(view({})).thread_id).toBeUndefined();
  });

  it('go to the API as score, score_min, score_max and score_label, the bounds as numbers', () => {
    const f = viewFilters(view({ score: 'feedback', scoreMax: '0', scoreLabel: 'billing' }));
    expect(f).toMatchObject({ score: 'feedback', score_max: 0, score_label: 'billing' });
    expect(f.score_min).toBeUndefined();
    expect(viewFilters(view({})).score).toBeUndefined();
  });
});

describe('date filters in the URL', () => {
  it('keep the instant in UTC, shown back in local time', () => {
    const url = urlInstant('2026-12-04T09:30');
    expect(url).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000Z$/);
    expect(Date.parse(url!)).toBe(new Date('2026-12-04T09:30').getTime());
    expect(localInput(url!)).toBe('2026-12-04T09:30');
    expect(urlInstant('')).toBeUndefined();
    expect(localInput('not a date')).toBe('');
    // a year on its way to four digits as it is typed stays what was typed
    expect(localInput(urlInstant('0002-12-04T09:30')!)).toBe('0002-12-04T09:30');
  });

  it('mean the same instant wherever the link is opened', () => {
    const f = viewFilters(
      view({ from: '2026-12-04T00:00:00.000Z', to: '2026-12-05T00:00:00.000Z' }),
    );
    expect(f.from).toBe(Date.UTC(2026, 11, 4));
    expect(f.to).toBe(Date.UTC(2026, 11, 5, 0, 0, 59, 999));
  });

  it('take To as the whole minute the input picks, a time with seconds as it is', () => {
    const to = (value: string) => viewFilters(view({ to: value })).to;
    expect(to('2026-12-04T09:30:00.000Z')).toBe(Date.UTC(2026, 11, 4, 9, 30, 59, 999));
    expect(to('2026-12-04T09:30:15.000Z')).toBe(Date.UTC(2026, 11, 4, 9, 30, 15));
    expect(viewFilters(view({ from: '2026-12-04T09:30:00.000Z' })).from).toBe(
      Date.UTC(2026, 11, 4, 9, 30),
    );
  });

  it('still read a link from before, without a zone, as local time', () => {
    expect(viewFilters(view({ from: '2026-12-04T00:00' })).from).toBe(
      new Date(2026, 11, 4).getTime(),
    );
  });
});

describe('the export of a view', () => {
  /** Every filter the Runs page has, set, on a later page. */
  const everything = view({
    agent: ['triager', 'billing-bot'],
    status: ['failed', 'timed_out'],
    trigger: ['schedule'],
    source: 'n8n',
    from: '2026-12-04T00:00:00.000Z',
    to: '2026-12-05T09:30:00.000Z',
    q: 'refund & "invoice"',
    thread: 't 1',
    user: 'dana@example.com',
    tag: 'prod',
    parent: 'p-1',
    model: 'gpt-4o',
    score: 'feedback',
    scoreMin: '0.5',
    scoreMax: '1',
    scoreLabel: 'good',
    retried: 'false',
    metadata: { env: 'prod', 'a.b': 'x=y,z' },
    sort: 'cost',
    page: 3,
  });
  const parse = (path: string) => new URL(path, 'http://runlog.test');

  it('downloads GET /runs.csv with every filter and the order the list sends', () => {
    const url = parse(runsExportPath(everything, 'csv'));
    expect(url.pathname).toBe('/api/v1/runs.csv');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      agent_id: 'triager,billing-bot',
      status: 'failed,timed_out',
      trigger: 'schedule',
      source: 'n8n',
      from: String(Date.UTC(2026, 11, 4)),
      to: String(Date.UTC(2026, 11, 5, 9, 30, 59, 999)),
      q: 'refund & "invoice"',
      thread_id: 't 1',
      user_id: 'dana@example.com',
      tag: 'prod',
      parent_run_id: 'p-1',
      model: 'gpt-4o',
      score: 'feedback',
      score_min: '0.5',
      score_max: '1',
      score_label: 'good',
      retried: 'false',
      sort: 'cost',
      'metadata[env]': 'prod',
      'metadata[a.b]': 'x=y,z',
      limit: '100000',
    });
  });

  it('sends what the list sends for any view, without its page, the format in the path', () => {
    for (const v of [everything, view({}), view({ agent: ['a'], sort: 'newest', page: 2 })]) {
      const url = parse(runsExportPath(v, 'jsonl'));
      expect(url.pathname).toBe('/api/v1/runs.jsonl');
      const { limit, ...filters } = Object.fromEntries(url.searchParams);
      // as the list's request has them: an empty list of agents is no agent filter
      const listed = Object.fromEntries(
        Object.entries(runListParams(v))
          .filter(([, value]) => value !== undefined && value !== '')
          .map(([k, value]) => [k, String(value)]),
      );
      // and nothing else: the server refuses a page (offset, cursor) or a format parameter
      expect(filters).toEqual(listed);
      expect(limit).toBe('100000');
    }
  });

  it('asks for every run of an unfiltered list, newest first, by leaving both out', () => {
    expect(runsExportPath(view({ page: 5 }), 'csv')).toBe('/api/v1/runs.csv?limit=100000');
    expect(runsExportPath(view({}), 'jsonl')).toBe('/api/v1/runs.jsonl?limit=100000');
  });
});

describe('the metadata filter', () => {
  /** Keys and values a URL must carry through unchanged. */
  const ODD: Record<string, string> = {
    env: 'prod',
    'a.b': 'dot',
    'x]y': 'bracket',
    '[': 'open',
    'a]=b': 'c',
    ключ: 'значение',
    'team 🚀': 'ops & co',
    'q?#/%': '50% off',
    expr: 'a=b=c',
    region: 'eu,west',
    literal: '%5Bnot a bracket%5D',
    plus: '1+1',
  };
  /** What a request's query string says, as the server's parser reads it. */
  const sent = (qs: string) => [...new URLSearchParams(qs)];

  it('round-trips odd keys and values: a link, the page, the list request and the export', () => {
    for (const [key, value] of Object.entries(ODD)) {
      const filter = { [key]: value };
      const path = runsPath(metadataQuery(filter));
      const search = path.slice('/runs?'.length);
      const page = viewFromParams(new URLSearchParams(search));
      expect(page.metadata, key).toEqual(filter);
      expect(runListParams(page), key).toMatchObject({ [`metadata[${key}]`]: value });
      const exported = new URL(runsExportPath(page, 'csv'), 'http://runlog.test');
      expect(sent(exported.search.slice(1)), key).toEqual([
        [`metadata[${key}]`, value],
        ['limit', '100000'],
      ]);
    }
  });

  it('keeps the brackets as the API writes them in links and exports', () => {
    expect(runsPath(metadataQuery({ env: 'prod', pr: '42' }))).toBe(
      '/runs?metadata[env]=prod&metadata[pr]=42',
    );
    expect(runsExportPath(view({ metadata: { env: 'prod' } }), 'jsonl')).toBe(
      '/api/v1/runs.jsonl?metadata[env]=prod&limit=100000',
    );
    // text that only looks like an encoded bracket stays that text
    expect(runsPath(metadataQuery({ k: '%5B' }))).toBe('/runs?metadata[k]=%255B');
  });

  it('reads every metadata key of a URL with the other filters, as the server reads them', () => {
    const all = new URLSearchParams();
    for (const [key, value] of Object.entries(ODD)) all.append(`metadata[${key}]`, value);
    all.append('status', 'failed');
    const page = viewFromParams(all);
    expect(page.metadata).toEqual(ODD);
    expect(page.status).toEqual(['failed']);
    expect(viewFilters(page).metadata).toEqual(ODD);
  });

  it('leaves out empty values, empty keys and other parameters; a key twice counts once', () => {
    const read = (qs: string) => metadataFromParams(new URLSearchParams(qs));
    expect(read('metadata[env]=&metadata[]=x&metadata=y&metadatas[a]=b&meta[a]=b')).toEqual({});
    expect(read('metadata[env]=prod&metadata[env]=staging')).toEqual({ env: 'prod' });
    expect(read('metadata[__proto__]=x&metadata[constructor]=y')).toEqual({ constructor: 'y' });
    expect(Object.getPrototypeOf(read('metadata[__proto__]=x'))).toBe(Object.prototype);
    expect(viewFilters(view({})).metadata).toBeUndefined();
    expect(Object.keys(runListParams(view({}))).some((k) => k.startsWith('metadata'))).toBe(false);
  });

  it('names a key as metadataQuery does, to add or remove it, and reads it back', () => {
    for (const key of Object.keys(ODD)) {
      expect(metadataParam(key)).toBe(Object.keys(metadataQuery({ [key]: 'v' }))[0]);
      expect(metadataFromParams(new URLSearchParams([[metadataParam(key), 'v']]))).toEqual({
        [key]: 'v',
      });
    }
  });

  it('checks a live run with the server’s predicate', () => {
    const f = viewFilters(view({ metadata: { env: 'prod', pr: '42' } }));
    const runWith = (metadata: Record<string, unknown>) =>
      runFixture({ id: 'm-1', status: 'running', metadata });
    expect(runMatches(runWith({ env: 'prod', pr: 42 }), f)).toBe(true);
    expect(runMatches(runWith({ env: 'prod', pr: '42', other: 1 }), f)).toBe(true);
    expect(runMatches(runWith({ env: 'prod', pr: 43 }), f)).toBe(false);
    expect(runMatches(runWith({ env: 'prod' }), f)).toBe(false);
    expect(runMatches(runWith({ env: { x: 'prod' }, pr: 42 }), f)).toBe(false);
    expect(runMatches(runWith({}), f)).toBe(false);
    const flags = viewFilters(view({ metadata: { ok: 'true' } }));
    expect(runMatches(runWith({ ok: true }), flags)).toBe(true);
    expect(runMatches(runWith({ ok: 1 }), flags)).toBe(false);
    // and with the other filters: each must hold
    const failedProd = viewFilters(view({ metadata: { env: 'prod' }, status: ['failed'] }));
    expect(runMatches(runWith({ env: 'prod' }), failedProd)).toBe(false);
  });

  it('leaves a run whose metadata came as a preview to the server', () => {
    const f = viewFilters(view({ metadata: { env: 'prod' } }));
    const text = JSON.stringify({ env: 'prod', blob: 'x'.repeat(5000) });
    const previewed = runFixture({
      id: 'm-2',
      metadata: truncatedJson(text, text.length, 200) as unknown as Record<string, unknown>,
    });
    expect(runMatches(previewed, f)).toBeUndefined();
    // unless another filter already rules it out
    expect(
      runMatches(previewed, viewFilters(view({ metadata: { env: 'prod' }, agent: ['x'] }))),
    ).toBe(false);
  });
});
