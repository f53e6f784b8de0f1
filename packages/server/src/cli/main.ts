import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { configFromEnv, type ServerConfigInput } from '../config.js';
import { DEFAULT_WEB_ROOT, startServer } from '../server.js';
import { openDatabase } from '../db/database.js';
import { migrateToLatest } from '../db/migrate.js';

function intArg(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return Number(value);
  };
}

/** One clear line for a failed start: no stack traces for configuration problems. */
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
  if (e.code === 'EACCES') return `not allowed to listen on ${cfg.host}:${cfg.port}`;
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

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('start the server and dashboard')
    .option('--db <path|url>', 'SQLite file or postgres:// URL (env RUNLOG_DB)')
    .option('--port <port>', 'port to listen on (env RUNLOG_PORT)', intArg('--port'))
    .option('--host <host>', 'address to bind (env RUNLOG_HOST)')
    .option(
      '--retention-days <days>',
      'days to keep finished runs (env RUNLOG_RETENTION_DAYS)',
      intArg('--retention-days'),
    )
    .action(async (opts: { db?: string; port?: number; host?: string; retentionDays?: number }) => {
      const cfg: ServerConfigInput = {
        ...configFromEnv(),
        webRoot: DEFAULT_WEB_ROOT,
        ...(opts.db !== undefined ? { db: opts.db } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        ...(opts.retentionDays !== undefined ? { retentionDays: opts.retentionDays } : {}),
      };
      let server;
      try {
        server = await startServer(cfg);
      } catch (err) {
        console.error(
          `runlog: ${describeStartError(err, { db: String(cfg.db), host: String(cfg.host), port: String(cfg.port) })}`,
        );
        process.exit(1);
      }
      const db = server.ctx.db.dialect === 'sqlite' ? String(cfg.db) : redact(String(cfg.db));
      console.log(`Runlog listening on ${server.url} (database: ${db})`);
      if (server.bootstrapKey) {
        console.log('');
        console.log('Created the default project and an admin API key (shown once):');
        console.log(`  ${server.bootstrapKey}`);
        console.log('Open the dashboard:');
        console.log(`  ${server.url}/login#key=${server.bootstrapKey}`);
        console.log('');
      }
      let closing = false;
      const stop = (signal: string) => {
        if (closing) return;
        closing = true;
        console.log(`runlog: ${signal}, shutting down`);
        void server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('bring the database schema up to date and exit')
    .option('--db <path|url>', 'SQLite file or postgres:// URL (env RUNLOG_DB)')
    .action(async (opts: { db?: string }) => {
      const url = opts.db ?? configFromEnv().db;
      const db = await openDatabase(url).catch((err: unknown) => {
        console.error(`runlog: ${describeStartError(err, { db: url, host: '', port: '' })}`);
        process.exit(1);
      });
      try {
        const result = await migrateToLatest(db);
        const applied =
          result.results?.filter((r) => r.status === 'Success').map((r) => r.migrationName) ?? [];
        console.log(
          applied.length ? `applied ${applied.join(', ')}` : 'the database is up to date',
        );
      } finally {
        await db.close();
      }
    });
}

/** Builds the `runlog` command tree; other commands register here. */
export function buildProgram(): Command {
  const program = new Command('runlog')
    .description('Runlog: the run history and control plane for AI agents')
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(serveCommand());
  program.addCommand(migrateCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    throw err;
  }
}
