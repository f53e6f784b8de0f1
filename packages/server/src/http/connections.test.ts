import { connect, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { describeEachDb, startTestServer } from '../../test/harness.js';

/** 'closed' once the server ends the connection, 'open' if it still holds it after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

describeEachDb('connections to the server', (dialect) => {
  it('ends a connection that never sends a request, as one whose request stalls', async () => {
    const server = await startTestServer(dialect, { requestTimeoutMs: 1000 });
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.on('error', () => {});
    try {
      await new Promise((resolve) => socket.once('connect', resolve));
      // before, it stayed open for as long as the server ran: a client gone without a word
      // after connecting held a socket each
      expect(await closedWithin(socket, 5000)).toBe('closed');
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  it('keeps a connection whose request is answered after a long silence', async () => {
    const server = await startTestServer(dialect, { requestTimeoutMs: 1000 });
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.on('error', () => {});
    try {
      let answers = '';
      socket.on('data', (chunk: Buffer) => (answers += chunk.toString()));
      await new Promise((resolve) => socket.once('connect', resolve));
      const body = JSON.stringify({ agents: ['nobody'], wait_ms: 2500 });
      socket.write(
        `POST /api/v1/workers/claim HTTP/1.1\r\nHost: runlog\r\nAuthorization: Bearer ${server.adminKey}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      // the long poll says nothing for longer than a request has to arrive, then answers
      await new Promise((resolve) => setTimeout(resolve, 3500));
      expect(answers).toMatch(/^HTTP\/1\.1 204 /);
      expect(socket.destroyed).toBe(false);
    } finally {
      socket.destroy();
      await server.close();
    }
  });
});
