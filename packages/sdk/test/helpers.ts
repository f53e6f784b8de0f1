// Shared by the SDK's in-process tests: a real server, a pass-through proxy that can fail on
// demand (to see every request the SDK makes and to simulate outages), and small waits.
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { DialectName } from '../../server/src/db/database.js';
import { startTestServer } from '../../server/test/harness.js';

export { waitFor } from '../../server/test/harness.js';
import { Runlog, type RunlogOptions } from '../src/index.js';

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

/** One request the proxy saw and what it did with it. */
export interface SeenRequest {
  method: string;
  path: string;
  /** For `POST /ingest`: how many events the body held. */
  events: number;
  /** The event ids (run, step or score ids) in an ingest body. */
  ids: string[];
  /** The body's size in bytes. */
  bytes: number;
  /** `forwarded` to the real server (with its status), or the fault it answered. */
  outcome: 'forwarded' | 'refused' | 'faulted' | 'hung' | 'lost';
  status: number;
  /** When the proxy got the request (`Date.now()`). */
  at: number;
}

/** What the proxy does with the next matching request instead of forwarding it. */
export type Fault =
  | { status: number; retryAfter?: string; body?: string }
  | { refuse: true }
  | { hang: true }
  /** Forwarded, then the connection dropped before the answer: the SDK sends it again. */
  | { loseAnswer: true };

/**
 * A node:http proxy in front of the real server. It forwards by default; `down()` makes it
 * drop every connection (the SDK sees a network error), `failNext()` answers the next
 * requests with given statuses.
 */
export class FaultProxy {
  readonly requests: SeenRequest[] = [];
  private faults: Fault[] = [];
  /** Faults for the next requests to other paths than `/ingest`, by path. */
  private readonly pathFaults = new Map<string, Fault[]>();
  private isDown = false;
  /** Paths answered 404, as a server that predates them answers. */
  readonly missing = new Set<string>();
  /** Paths answered with this status until removed, as a proxy in front of a server away. */
  readonly failing = new Map<string, number>();
  /** How long the 404 of a `missing` path takes: requests sent meanwhile overlap it. */
  missingDelayMs = 0;
  private readonly hung: ServerResponse[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private target: string,
  ) {}

  static async start(target: string): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const proxy = new FaultProxy(server, `http://127.0.0.1:${port}`, target);
    server.on(
      'request',
      (req: IncomingMessage, res: ServerResponse) =>
        // a request cut short while forwarded (the SDK gave up, the test ended) ends here
        void proxy.handle(req, res).catch(() => res.destroy()),
    );
    return proxy;
  }

  /** Every request fails at the network level until `up()`. */
  down(): void {
    this.isDown = true;
  }

  up(): void {
    this.isDown = false;
  }

  /** Forwards to `target` from now on: the server came back elsewhere (a restart on port 0). */
  retarget(target: string): void {
    this.target = target;
  }

  /** The next requests to `/ingest` get these answers, in order, instead of the server's. */
  failNext(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  /** The next requests to `path` (not `/ingest`) get these answers, in order. */
  failNextOn(path: string, ...faults: Fault[]): void {
    this.pathFaults.set(path, [...(this.pathFaults.get(path) ?? []), ...faults]);
  }

  /** Forgets the faults not yet used: requests go through again. */
  clearFaults(): void {
    this.faults = [];
    this.pathFaults.clear();
  }

  /** Ingest requests the real server answered. */
  forwardedIngests(): SeenRequest[] {
    return this.requests.filter((r) => r.path === '/api/v1/ingest' && r.outcome === 'forwarded');
  }

  /** Events the real server received, over all forwarded ingest requests. */
  forwardedEvents(): number {
    return this.forwardedIngests().reduce((n, r) => n + r.events, 0);
  }

  async close(): Promise<void> {
    for (const res of this.hung.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path,
      events: 0,
      ids: [],
      bytes: 0,
      outcome: 'forwarded',
      status: 0,
      at: Date.now(),
    };
    if (this.isDown) {
      seen.outcome = 'refused';
      this.requests.push(seen);
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    seen.bytes = body.length;
    if (path === '/api/v1/ingest' && body.length > 0) {
      const parsed = JSON.parse(body.toString('utf8')) as {
        events: { run?: { id: string }; step?: { id: string }; score?: { id: string } }[];
      };
      seen.events = parsed.events.length;
      seen.ids = parsed.events.map((e) => (e.run ?? e.step ?? e.score)!.id);
    }
    this.requests.push(seen);
    const fault: Fault | undefined = this.missing.has(path)
      ? {
          status: 404,
          body: JSON.stringify({
            error: { code: 'not_found', message: `Route ${seen.method}:${path} not found` },
          }),
        }
      : this.failing.has(path)
        ? { status: this.failing.get(path)!, body: 'proxy: upstream away' }
        : path === '/api/v1/ingest'
          ? this.faults.shift()
          : this.pathFaults.get(path)?.shift();
    if (fault && 'refuse' in fault) {
      seen.outcome = 'refused';
      req.socket.destroy();
      return;
    }
    if (fault && 'hang' in fault) {
      seen.outcome = 'hung';
      this.hung.push(res);
      return;
    }
    if (fault && 'status' in fault) {
      if (this.missing.has(path) && this.missingDelayMs > 0)
        await new Promise((resolve) => setTimeout(resolve, this.missingDelayMs));
      seen.outcome = 'faulted';
      seen.status = fault.status;
      res.writeHead(fault.status, {
        ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}),
        'content-type': 'text/plain',
      });
      res.end(fault.body ?? '');
      return;
    }
    // one connection per request (no keep-alive): none stays open to the server after the
    // proxy closes, holding up the server's own close
    const upstream = await new Promise<{ status: number; contentType?: string; text: string }>(
      (resolve, reject) => {
        const out = httpRequest(
          this.target + path,
          {
            method: req.method,
            agent: false,
            headers: {
              ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
              ...(req.headers['content-type']
                ? { 'content-type': req.headers['content-type'] }
                : {}),
            },
          },
          (answer) => {
            const parts: Buffer[] = [];
            answer.on('data', (c: Buffer) => parts.push(c));
            answer.on('end', () =>
              resolve({
                status: answer.statusCode ?? 502,
                contentType: answer.headers['content-type'],
                text: Buffer.concat(parts).toString('utf8'),
              }),
            );
            answer.on('error', reject);
          },
        );
        out.on('error', reject);
        out.end(body.length > 0 ? body : undefined);
      },
    );
    seen.status = upstream.status;
    const text = upstream.text;
    if (fault && 'loseAnswer' in fault) {
      seen.outcome = 'lost';
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, {
      'content-type': upstream.contentType ?? 'application/json',
    });
    res.end(text);
  }
}

/** A URL where nothing listens (a port just freed). */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** `runlog_ingest_events_total` of the server: events it committed. */
export function committedEvents(server: TestServer): number {
  const m = /^runlog_ingest_events_total (\d+)$/m.exec(server.ctx.metrics.render());
  return m ? Number(m[1]) : 0;
}

/** Creates Runlog clients for one test file and shuts them all down at the end. */
export function clientFactory(defaults: () => RunlogOptions) {
  const made: Runlog[] = [];
  return {
    make(extra: RunlogOptions = {}): Runlog {
      const r = new Runlog({ handleSignals: false, ...defaults(), ...extra });
      made.push(r);
      return r;
    },
    async shutdownAll(): Promise<void> {
      await Promise.allSettled(made.splice(0).map((r) => r.shutdown(200)));
    },
  };
}

/**
 * For a `describeEachDb` block: a real server on `dialect` and a client on it for the whole
 * block (more from `clients`), both closed after it. `errors` holds what the clients
 * reported to `onError`, emptied after each test.
 * @example const t = sdkOnServer(dialect); it('...', async () => { await t.runlog.run(...) })
 */
export function sdkOnServer(dialect: DialectName, options: RunlogOptions = {}) {
  let server: TestServer | undefined;
  let runlog: Runlog | undefined;
  const errors: Error[] = [];
  const clients = clientFactory(() => ({
    url: server!.url,
    apiKey: server!.adminKey,
    flushIntervalMs: 20,
    heartbeatIntervalMs: 60_000,
    onError: (e) => errors.push(e),
    ...options,
  }));
  beforeAll(async () => {
    server = await startTestServer(dialect);
    runlog = clients.make();
  });
  afterEach(() => {
    errors.length = 0;
  });
  afterAll(async () => {
    await clients.shutdownAll();
    await server?.close();
  });
  return {
    get server(): TestServer {
      return server!;
    },
    get runlog(): Runlog {
      return runlog!;
    },
    errors,
    clients,
  };
}
