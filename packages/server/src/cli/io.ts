import type { Readable, Writable } from 'node:stream';
import { ServerConfig } from '../config.js';
import { CliError } from './client.js';

/** Where a command writes and what it reads from its surroundings; tests pass their own. */
export interface CliIo {
  /** What `runlog import -` reads; the process's standard input when absent. */
  stdin?: Readable;
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Ends long-running commands (`runs tail`); SIGINT does when absent. */
  signal?: AbortSignal;
  /** How often `runs tail` checks that its connection still answers; 30 s when absent. */
  heartbeatMs?: number;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** One clear line for a failed start or database open: no stack traces for configuration problems. */
export function describeStartError(
  err: unknown,
  cfg: { db: string; host: string; port: number | string },
): string {
  const e = err as {
    code?: string;
    message?: string;
    syscall?: string;
    hostname?: string;
    path?: string;
    issues?: { path: PropertyKey[]; message: string }[];
  };
  if (e.issues) {
    const named = e.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      return `${SETTING_NAMES[key] ?? (key || 'value')} ${i.message}`;
    });
    return `invalid configuration: ${named.join('; ')}`;
  }
  // a bind address that does not resolve fails in getaddrinfo, naming the host, not `listen`
  const bindHostUnknown = e.syscall === 'getaddrinfo' && cfg.host !== '' && e.hostname === cfg.host;
  const listening =
    e.syscall === 'listen' || bindHostUnknown || /\blisten\b/i.test(e.message ?? '');
  if (e.code === 'EADDRINUSE')
    return `port ${cfg.port} on ${cfg.host} is already in use (set --port or RUNLOG_PORT)`;
  if (bindHostUnknown)
    return `cannot listen on ${cfg.host}:${cfg.port}: the host does not resolve (set --host or RUNLOG_HOST)`;
  if (e.code === 'EADDRNOTAVAIL' || (e.code === 'ENOTFOUND' && listening))
    return `cannot listen on ${cfg.host}:${cfg.port}: ${e.message}`;
  if (e.code === 'EACCES' && listening) return `not allowed to listen on ${cfg.host}:${cfg.port}`;
  if (
    e.code === 'ECONNREFUSED' ||
    e.code === 'ENOTFOUND' ||
    e.code === 'ETIMEDOUT' ||
    e.code === 'ECONNRESET' ||
    // PostgreSQL: who may connect (28xxx: an unknown role, a wrong password), the connection
    // itself (08xxx), a database that does not exist
    /^(28|08)[0-9A-Z]{3}$/.test(e.code ?? '') ||
    e.code === '3D000' ||
    // a database starting up or shutting down, or with all its connections taken
    e.code === '57P03' ||
    e.code === '53300' ||
    /timeout|connection terminated/i.test(e.message ?? '') ||
    // TLS as the URL's sslmode asks for it: a server without SSL, a certificate refused
    /\bSSL\b|certificate/i.test(e.message ?? '')
  ) {
    return `cannot connect to the database ${redact(cfg.db)}: ${e.message ?? e.code}`;
  }
  if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS')
    return `cannot create or open the database file ${cfg.db}: no permission to write ${e.path ?? 'there'}`;
  if (e.code === 'ENOENT' && e.syscall === 'mkdir')
    return `cannot create or open the database file ${cfg.db}: the folder ${e.path ?? 'it needs'} cannot be made there`;
  if (e.code === 'ENOTDIR' || e.code === 'EEXIST')
    return `cannot create or open the database file ${cfg.db}: ${e.path ?? 'a part of its path'} is a file, not a directory`;
  if (e.code === 'SQLITE_CANTOPEN' || e.code === 'SQLITE_NOTADB') {
    return `cannot open the database file ${cfg.db}: ${e.message ?? e.code}`;
  }
  return e.message ?? String(err);
}

/**
 * `--db` (or RUNLOG_DB) checked as `serve` checks it, for the commands that open the database:
 * a URL that is not `postgres://` (`postgress://`, `mysql://`) would open, or create, a SQLite
 * file of that name.
 */
export function checkedDbUrl(url: string): string {
  const checked = ServerConfig.pick({ db: true }).safeParse({ db: url });
  if (!checked.success)
    throw new CliError(describeStartError(checked.error, { db: url, host: '', port: '' }), 2);
  return url;
}

/** The flag or variable a user sets for each configuration field, for messages. */
const SETTING_NAMES: Record<string, string> = {
  db: '--db (RUNLOG_DB)',
  port: '--port (RUNLOG_PORT)',
  host: '--host (RUNLOG_HOST)',
  adminKey: 'RUNLOG_ADMIN_KEY',
  retentionDays: '--retention-days (RUNLOG_RETENTION_DAYS)',
  maxFieldBytes: '--max-field-bytes (RUNLOG_MAX_FIELD_BYTES)',
  logLevel: 'RUNLOG_LOG_LEVEL',
};

/** A database URL without its password (nor its TLS key's), for messages. */
export function redact(url: string): string {
  return (
    url
      // to the last @: a password may hold one unencoded (pg reads `p@ss` whole, as URLs do), or
      // a `/` that makes the URL one pg refuses, in a message that shows it
      .replace(/\/\/([^:@/?#]+):.*@/, '//$1:***@')
      .replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1***')
  );
}
