import { connect } from 'node:net';
import { expect, it } from 'vitest';
import { describeEachDb, startTestServer, waitFor } from '../../test/harness.js';

type ErrorBody = { error: { code: string; message: string } };

describeEachDb('a server shutting down', (dialect) => {
  it('refuses a request arriving while it shuts down in the API error shape, with Retry-After', async () => {
    const server = await startTestServer(dialect);
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    try {
      let answers = '';
      socket.on('data', (chunk: Buffer) => (answers += chunk.toString()));
      const socketClosed = new Promise((resolve) => socket.once('close', resolve));
      await new Promise((resolve) => socket.once('connect', resolve));
      const request = (path: string, body: unknown) => {
        const text = JSON.stringify(body);
        return (
          `POST ${path} HTTP/1.1\r\nHost: runlog\r\nAuthorization: Bearer ${server.adminKey}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
        );
      };
      // a long poll keeps the connection busy, so closing does not cut it as idle; the next
      // request on it comes once the HTTP server is closing
      socket.write(request('/api/v1/workers/claim', { agents: ['a'], wait_ms: 1000 }));
      await waitFor(
        () => server.ctx.db.kysely.selectFrom('workers').select('id').executeTakeFirst(),
        'the long poll',
      );
      const closed = server.app.close();
      const late = { events: [{ type: 'run.start', run: { id: 'late', agent_id: 'a' } }] };
      socket.write(request('/api/v1/ingest', late));
      await socketClosed;
      await closed;
      // the long poll's 204 (no body), then the answer to the late request
      expect(answers).toMatch(/^HTTP\/1\.1 204 /);
      const refused = answers.slice(answers.indexOf('\r\n\r\n') + 4);
      expect(refused).toMatch(/^\s*HTTP\/1\.1 503 /);
      expect(refused).toMatch(/\r\nretry-after: 1\r\n/i);
      const body = JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)) as ErrorBody;
      expect(body.error.code).toBe('unavailable');
    } finally {
      socket.destroy();
      await server.close();
    }
  });
});
