import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ServerConfig, type ServerConfigInput } from './config.js';
import { openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { EventHub } from './realtime/hub.js';
import { AuthService } from './auth/auth.service.js';
import { IngestWriter } from './ingest/writer.js';
import { PriceBook } from './ingest/prices.js';
import { Metrics } from './metrics/metrics.js';
import { WebhookEndpoints } from './webhooks/webhook-endpoints.js';
import { WebhookDeliverer } from './webhooks/webhook-deliverer.js';
import type { AppContext } from './context.js';
import { buildApp } from './app.js';
import { startBackground } from './control/background.js';
import { startHubBridge } from './realtime/pg-bridge.js';

/** Where `npm run build` puts the dashboard, relative to this file in dist/. */
export const DEFAULT_WEB_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../web/dist');

export interface RunningServer {
  ctx: AppContext;
  app: FastifyInstance;
  /** The printed first-start admin key, when this start created one. */
  bootstrapKey: string | undefined;
  /** The project that key is for, when the database had projects but no key (an import). */
  bootstrapProject?: string | undefined;
  url: string;
  close(): Promise<void>;
}

/** Opens the database, migrates, wires the services; does not listen. */
export async function createContext(input: ServerConfigInput): Promise<{
  ctx: AppContext;
  bootstrapKey: string | undefined;
  bootstrapProject: string | undefined;
}> {
  const config = ServerConfig.parse(input);
  const db = await openDatabase(config.db);
  try {
    await migrateToLatest(db);
    const hub = new EventHub();
    const metrics = new Metrics();
    const auth = new AuthService(db);
    const prices = new PriceBook(db);
    const webhooks = new WebhookEndpoints(db);
    const deliverer = new WebhookDeliverer(db, metrics, {
      ...(config.webhookRetryDelaysMs ? { retryDelaysMs: config.webhookRetryDelaysMs } : {}),
      timeoutMs: config.webhookTimeoutMs,
    });
    const writer = new IngestWriter(db, hub, prices, metrics, {
      maxFieldBytes: config.maxFieldBytes,
      maxQueuedEvents: config.maxQueuedEvents,
      outbox: {
        enqueue: (trx, runs, retryOf) => webhooks.enqueueEnded(trx, runs, retryOf),
        written: () => deliverer.kick(),
      },
    });
    const ctx: AppContext = {
      config,
      db,
      hub,
      auth,
      writer,
      prices,
      metrics,
      webhooks,
      deliverer,
      onClose: [],
      onDrained: [],
    };
    const boot = await auth.bootstrap({
      retentionDays: config.retentionDays,
      ...(config.adminKey ? { adminKey: config.adminKey } : {}),
    });
    return {
      ctx,
      bootstrapKey: boot.created ? boot.key : undefined,
      bootstrapProject: boot.created && !boot.newProject ? boot.projectId : undefined,
    };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

/** Starts a whole server instance: context, HTTP app, background jobs, listening socket. */
export async function startServer(input: ServerConfigInput): Promise<RunningServer> {
  const { ctx, bootstrapKey, bootstrapProject } = await createContext(input);
  let app: FastifyInstance | undefined;
  try {
    app = await buildApp(ctx);
    await startHubBridge(ctx);
    if (ctx.config.background) startBackground(ctx);
    await app.listen({ port: ctx.config.port, host: ctx.config.host });
  } catch (err) {
    await closeContext(ctx, app);
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : ctx.config.port;
  const host = ctx.config.host.includes(':') ? `[${ctx.config.host}]` : ctx.config.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const started = app;
  return {
    ctx,
    app: started,
    bootstrapKey,
    bootstrapProject,
    url,
    close: () => closeContext(ctx, started),
  };
}

export async function closeContext(ctx: AppContext, app?: FastifyInstance): Promise<void> {
  await stopAll(ctx.onClose);
  if (app) await app.close();
  await ctx.writer.close();
  await stopAll(ctx.onDrained);
  await ctx.db.close();
}

/** Runs and empties a list of stops, the last added first; one that fails stops no other. */
async function stopAll(stops: (() => Promise<void> | void)[]): Promise<void> {
  for (const stop of stops.splice(0).reverse()) {
    try {
      await stop();
    } catch {
      // keep closing the rest
    }
  }
}
