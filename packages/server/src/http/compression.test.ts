import { request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunList } from '@runlog/core';
import { describeEachDb, startTestServer } from '../../test/harness.js';

/** An answer as it came over the wire: no client decompressing it on the way. */
function raw(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describeEachDb('compressed answers', (dialect) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer(dialect);
    const events = Array.from({ length: 40 }, (_, i) => ({
      type: 'run.end',
      run: {
        id: `gz-${i}`,
        agent_id: 'gz',
        status: 'succeeded',
        input: { prompt: `summarise ticket ${i}: the printer on floor ${i} is jammed again` },
        output: 'The printer is jammed; a technician is on the way.'.repeat(20),
      },
    }));
    const res = await fetch(`${server.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await server.close();
  });

  it('gzips a large answer for a client that accepts it, and only then', async () => {
    const auth = { authorization: `Bearer ${server.adminKey}` };
    const plain = await raw(`${server.url}/api/v1/runs?limit=40`, auth);
    expect(plain.headers['content-encoding']).toBeUndefined();
    const list = JSON.parse(plain.body.toString('utf8')) as RunList;
    expect(list.runs).toHaveLength(40);

    const zipped = await raw(`${server.url}/api/v1/runs?limit=40`, {
      ...auth,
      'accept-encoding': 'gzip',
    });
    expect(zipped.status).toBe(200);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers['cache-control']).toBe('no-store');
    expect(zipped.body.length).toBeLessThan(plain.body.length / 5);
    expect(JSON.parse(gunzipSync(zipped.body).toString('utf8'))).toEqual(list);
  });

  it('leaves a small answer as it is', async () => {
    const res = await raw(`${server.url}/api/v1/runs/gz-1`, {
      authorization: `Bearer ${server.adminKey}`,
      'accept-encoding': 'gzip',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(res.body.toString('utf8'))).toMatchObject({ id: 'gz-1' });
  });
});
