import type { Db } from './db/database.js';
import type { ServerConfig } from './config.js';
import type { EventHub } from './realtime/hub.js';
import type { AuthService } from './auth/auth.service.js';
import type { IngestWriter } from './ingest/writer.js';
import type { PriceBook } from './ingest/prices.js';
import type { Metrics } from './metrics/metrics.js';
import type { WebhookEndpoints } from './webhooks/webhook-endpoints.js';
import type { WebhookDeliverer } from './webhooks/webhook-deliverer.js';

/** The services one server instance shares between its routes and background jobs. */
export interface AppContext {
  config: ServerConfig;
  db: Db;
  hub: EventHub;
  auth: AuthService;
  /** The one write path for runs and steps. */
  writer: IngestWriter;
  prices: PriceBook;
  metrics: Metrics;
  /** The project's webhook endpoints, cached for the write path. */
  webhooks: WebhookEndpoints;
  /** Sends webhook deliveries (started with the background jobs). */
  deliverer: WebhookDeliverer;
  /** Stops background work; set by the pieces that start some. */
  onClose: (() => Promise<void> | void)[];
  /**
   * Stopped last, once the HTTP server and the write path have drained: what still carries
   * their last commits elsewhere (the PostgreSQL bridge tells the other instances).
   */
  onDrained: (() => Promise<void> | void)[];
}
