import type { Db } from './db/database.js';
import type { ServerConfig } from './config.js';
import type { EventHub } from './realtime/hub.js';
import type { AuthService } from './auth/auth.service.js';
import type { IngestWriter } from './ingest/writer.js';
import type { PriceBook } from './ingest/prices.js';
import type { Metrics } from './metrics/metrics.js';

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
  /** Stops background work; set by the pieces that start some. */
  onClose: (() => Promise<void> | void)[];
  /**
   * Stopped last, once the HTTP server and the write path have drained: what still carries
   * their last commits elsewhere (the PostgreSQL bridge tells the other instances).
   */
  onDrained: (() => Promise<void> | void)[];
}
