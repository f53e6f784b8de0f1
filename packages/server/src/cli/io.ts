import type { Writable } from 'node:stream';

/** Where a command writes and what it reads from its surroundings; tests pass their own. */
export interface CliIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Ends long-running commands (`runs tail`); SIGINT does when absent. */
  signal?: AbortSignal;
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
    issues?: { path: PropertyKey[]; message: string }[];
  };
  if (e.issues) {
    return `invalid configuration: ${e.issues.map((i) => `${i.path.join('.') || 'value'} ${i.message}`).join('; ')}`;
  }
  if (e.code === 'EADDRINUSE')
    return `port ${cfg.port} on ${cfg.host} is already in use (set --port or RUNLOG_PORT)`;
  if (e.code === 'EADDRNOTAVAIL' || (e.code === 'ENOTFOUND' && /listen/i.test(e.message ?? '')))
    return `cannot listen on ${cfg.host}:${cfg.port}: ${e.message}`;
  if (e.code === 'EACCES' && cfg.host) return `not allowed to listen on ${cfg.host}:${cfg.port}`;
  if (
    e.code === 'ECONNREFUSED' ||
    e.code === 'ENOTFOUND' ||
    e.code === 'ETIMEDOUT' ||
    e.code === '28P01' ||
    e.code === '3D000' ||
    /timeout/i.test(e.message ?? '')
  ) {
    return `cannot connect to the database ${redact(cfg.db)}: ${e.message ?? e.code}`;
  }
  if (
    e.code === 'SQLITE_CANTOPEN' ||
    e.code === 'SQLITE_NOTADB' ||
    e.code === 'EACCES' ||
    e.code === 'ENOTDIR'
  ) {
    return `cannot open the database file ${cfg.db}: ${e.message ?? e.code}`;
  }
  return e.message ?? String(err);
}

/** A database URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
