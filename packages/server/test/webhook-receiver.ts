import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Run } from '@runlog/core';

/** A request the receiver took. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: {
    id: string;
    type: string;
    created_at: string;
    data: { run?: Run; retry?: unknown; webhook?: unknown; [key: string]: unknown };
  };
}

/**
 * A real HTTP endpoint on a free port: records what it is sent and answers the next of
 * `statuses` (the last one over and over), or never answers while `hang` is set.
 */
export class Receiver {
  readonly received: Received[] = [];
  statuses: number[] = [200];
  hang = false;
  private server!: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        this.received.push({
          headers: req.headers,
          body,
          json: JSON.parse(body) as Received['json'],
        });
        if (this.hang) return;
        const status = this.statuses.length > 1 ? this.statuses.shift()! : this.statuses[0]!;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`answered ${status}`);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  reset(): void {
    this.received.length = 0;
    this.statuses = [200];
    this.hang = false;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Checks a `Runlog-Signature` header as a receiver would. */
export function validSignature(secret: string, header: string | undefined, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const want = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(want, Buffer.from(m[2]!, 'hex'));
}
