import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { Metrics } from './metrics.js';

describe('metrics', () => {
  it('renders a counter once with each of its series, label values escaped', () => {
    const metrics = new Metrics();
    const ok = metrics.counter('x_total', 'things', { code: '200' });
    const odd = metrics.counter('x_total', 'things', { code: 'a"b\\c\nd' });
    metrics.counter('y_total', 'plain')(3);
    ok();
    ok(2);
    odd();
    // the same series asked for again counts on from where it is
    metrics.counter('x_total', 'things', { code: '200' })();
    expect(metrics.render()).toBe(
      [
        '# HELP x_total things',
        '# TYPE x_total counter',
        'x_total{code="200"} 4',
        'x_total{code="a\\"b\\\\c\\nd"} 1',
        '# HELP y_total plain',
        '# TYPE y_total counter',
        'y_total 3',
        '',
      ].join('\n'),
    );
  });

  describe('of HTTP answers', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp('sqlite');
    });
    afterAll(() => t.close());

    it('counts answers by status code, the failed ones too', async () => {
      const scrape = async () => (await t.request('GET', '/metrics', undefined, null)).body;
      const count = (text: string, code: number) =>
        Number(
          new RegExp(`^runlog_http_responses_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(
            text,
          )?.[1] ?? 0,
        );
      const before = await scrape();
      expect((await t.request('GET', '/api/v1/runs')).statusCode).toBe(200);
      expect((await t.request('GET', '/api/v1/runs')).statusCode).toBe(200);
      expect((await t.request('GET', '/api/v1/runs', undefined, null)).statusCode).toBe(401);
      expect((await t.request('GET', '/api/v1/runs/nowhere')).statusCode).toBe(404);
      const after = await scrape();
      expect(after).toContain('# TYPE runlog_http_responses_total counter');
      // the scrape before this one is counted too: it was answered 200
      expect(count(after, 200) - count(before, 200)).toBe(3);
      expect(count(after, 401) - count(before, 401)).toBe(1);
      expect(count(after, 404) - count(before, 404)).toBe(1);
    });
  });
});
