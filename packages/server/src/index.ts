export { startServer, createContext, closeContext, type RunningServer } from './server.js';
export { buildApp } from './app.js';
export type { AppContext } from './context.js';
export { ServerConfig, configFromEnv } from './config.js';
export { openDatabase, type Db } from './db/database.js';
export { migrateToLatest } from './db/migrate.js';
