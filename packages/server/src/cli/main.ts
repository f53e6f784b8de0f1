import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { MAX_FIELD_BYTES, configFromEnv, type ServerConfigInput } from '../config.js';
import { DEFAULT_WEB_ROOT, startServer } from '../server.js';
import { openDatabase, othersMayRead } from '../db/database.js';
import { migrateToLatest } from '../db/migrate.js';
import { registerAdminCommands } from './admin.commands.js';
import { CliError } from './client.js';
import { registerDataCommands } from './data.commands.js';
import { registerRunsExport } from './runs-export.js';
import { registerWebhookCommands } from './webhooks.commands.js';
import { checkedDbUrl, describeStartError, processIo, redact, type CliIo } from './io.js';
import { ZodError } from 'zod';
import { intArg } from './options.js';
import { boundHeapGrowth } from '../memory.js';

export { describeStartError } from './io.js';

/** The flags of `runlog serve` as commander hands them over (each with its variable). */
interface ServeFlags {
  db?: string;
  port?: number;
  host?: string;
  retentionDays?: number;
  maxFieldBytes?: number;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('start the server and dashboard')
    .option(
      '--db <path|url>',
      'SQLite file or postgres:// URL (env RUNLOG_DB; default ./.runlog/runlog.db)',
    )
    .option(
      '--port <port>',
      'port to listen on (env RUNLOG_PORT; default 4680)',
      intArg('--port', 0, 65535),
    )
    .option('--host <host>', 'address to bind (env RUNLOG_HOST; default 127.0.0.1)')
    .option(
      '--retention-days <days>',
      'days new projects keep finished runs (env RUNLOG_RETENTION_DAYS; default 30)',
      intArg('--retention-days', 1, 3650),
    )
    .option(
      '--max-field-bytes <bytes>',
      'JSON fields (input, output, error, metadata) longer than this are stored truncated (env RUNLOG_MAX_FIELD_BYTES; default 1048576)',
      intArg('--max-field-bytes', 1024, MAX_FIELD_BYTES),
    )
    .addHelpText(
      'after',
      '\nAlso read from the environment: RUNLOG_ADMIN_KEY (the admin key of a new database,\n' +
        'for scripted setups) and RUNLOG_LOG_LEVEL (default warn). See the README.',
    )
    .action(async (opts: ServeFlags) => {
      const cfg: ServerConfigInput = {
        ...configFromEnv(),
        webRoot: DEFAULT_WEB_ROOT,
        ...(opts.db !== undefined ? { db: opts.db } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        ...(opts.retentionDays !== undefined ? { retentionDays: opts.retentionDays } : {}),
        ...(opts.maxFieldBytes !== undefined ? { maxFieldBytes: opts.maxFieldBytes } : {}),
      };
      boundHeapGrowth();
      let server;
      try {
        server = await startServer(cfg);
      } catch (err) {
        console.error(
          `runlog: ${describeStartError(err, { db: String(cfg.db), host: String(cfg.host), port: String(cfg.port) })}`,
        );
        // a setting out of its bounds (RUNLOG_PORT=abc) is bad usage, as the same flag is
        process.exit(err instanceof ZodError ? 2 : 1);
      }
      const db = server.ctx.db.dialect === 'sqlite' ? String(cfg.db) : redact(String(cfg.db));
      // the banner goes out in one write: a pipe reading it (a supervisor, a test) gets the
      // key and its link together with the 'listening' line
      const banner = [`Runlog listening on ${server.url} (database: ${db})`];
      const created = server.bootstrapProject
        ? `This database had no API key: added an admin key for project ${server.bootstrapProject}`
        : 'Created the default project';
      if (server.bootstrapKey && cfg.adminKey) {
        // a scripted setup knows its key: it does not belong in the server's output
        banner.push(
          '',
          `${created} with the admin key from RUNLOG_ADMIN_KEY.`,
          `Open the dashboard: ${server.url}/login`,
          '',
        );
      } else if (server.bootstrapKey) {
        banner.push(
          '',
          server.bootstrapProject
            ? `${created} (shown once):`
            : 'Created the default project and an admin API key (shown once):',
          `  ${server.bootstrapKey}`,
          'Open the dashboard:',
          `  ${server.url}/login#key=${server.bootstrapKey}`,
          '',
        );
      }
      console.log(banner.join('\n'));
      const readable =
        server.ctx.db.dialect === 'sqlite' ? othersMayRead(String(cfg.db)) : undefined;
      if (readable) console.error(`runlog: warning: ${readable}`);
      let closing = false;
      const stop = (signal: string) => {
        if (closing) {
          // a second signal is an operator (or a supervisor) done waiting: the shutdown may be
          // held by a database that stopped answering, which nothing else would ever end
          console.error(`runlog: ${signal} again, exiting without finishing the shutdown`);
          process.exit(1);
        }
        closing = true;
        console.log(`runlog: ${signal}, shutting down`);
        // requests under way are answered first; one that takes longer (a body trickling in)
        // is cut off after a while
        setTimeout(() => server.app.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
        // then what is left is the write path's last commit and the database's connections: a
        // database that stopped answering (a dropped route, a stalled proxy) held them, and the
        // process, for as long as TCP retransmits. Nothing acknowledged is lost: a write is
        // answered only once committed.
        setTimeout(() => {
          const seconds = (SHUTDOWN_GRACE_MS + SHUTDOWN_FLUSH_MS) / 1000;
          console.error(
            `runlog: the shutdown did not finish within ${seconds} s (the database does not answer); exiting`,
          );
          process.exit(1);
        }, SHUTDOWN_GRACE_MS + SHUTDOWN_FLUSH_MS).unref();
        void server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}

export function migrateCommand(io: CliIo): Command {
  return new Command('migrate')
    .description('bring the database schema up to date and exit')
    .option('--db <path|url>', 'SQLite file or postgres:// URL (env RUNLOG_DB)')
    .option('--json', 'print {"applied": [...]} instead of text')
    .action(async (opts: { db?: string; json?: boolean }) => {
      const url = checkedDbUrl(opts.db ?? configFromEnv(io.env).db);
      const where = { db: redact(url), host: '', port: '' };
      const db = await openDatabase(url).catch((err: unknown) => {
        throw new CliError(describeStartError(err, where));
      });
      try {
        const result = await migrateToLatest(db).catch((err: unknown) => {
          throw new CliError(describeStartError(err, where));
        });
        const applied =
          result.results?.filter((r) => r.status === 'Success').map((r) => r.migrationName) ?? [];
        io.stdout.write(
          opts.json
            ? JSON.stringify({ applied }) + '\n'
            : applied.length
              ? `applied ${applied.join(', ')}\n`
              : 'the database is up to date\n',
        );
      } finally {
        await db.close();
      }
    });
}

/** The package's version (src/cli and dist/cli both sit two levels under it). */
const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

/** Builds the `runlog` command tree, writing to `io`. */
export function buildProgram(io: CliIo = processIo(), json = false): Command {
  const program = new Command('runlog')
    .description('Runlog: the run history and control plane for AI agents')
    .version(VERSION, '-v, --version', 'print the version')
    .addHelpText(
      'after',
      '\nData commands talk to a server (--url / RUNLOG_URL, --api-key / RUNLOG_API_KEY);\n' +
        'admin commands (migrate, cleanup, export, import, keys) open the database (--db / RUNLOG_DB).\n' +
        'Exit codes: 0 ok, 1 failure, 2 bad usage. Every command takes --help.',
    );
  program.addCommand(serveCommand());
  program.addCommand(migrateCommand(io));
  registerDataCommands(program, io);
  registerRunsExport(program, io);
  registerWebhookCommands(program, io);
  registerAdminCommands(program, io);
  configure(program, io, json);
  return program;
}

/**
 * Every level: errors as one `runlog: ...` line (with `json`, as `{"error": ...}` like every
 * other failure of a command asked for JSON), output to `io`, no process.exit.
 */
function configure(cmd: Command, io: CliIo, json: boolean): void {
  cmd
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => {
        const message = text.replace(/^error: /, '').trimEnd();
        write(
          json
            ? JSON.stringify({ error: { message, exit_code: 2 } }) + '\n'
            : `runlog: ${message}\n`,
        );
      },
    })
    .helpCommand(false);
  for (const sub of cmd.commands) configure(sub, io, json);
}

/**
 * Runs one command line; resolves to its exit code (0 ok, 1 failure, 2 bad usage), or
 * `'serving'` when it started a server that keeps the process alive.
 * @example process.exitCode = await run(['runs', 'list', '--json'], processIo()) as number
 */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number | 'serving'> {
  const program = buildProgram(io, argv.includes('--json'));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      // a script asking for JSON gets its failures as JSON too, on stderr
      io.stderr.write(
        argv.includes('--json')
          ? JSON.stringify({
              error: {
                message: err.message,
                exit_code: err.exitCode,
                // the server's own answer, when it refused: a script tells a run not found
                // from a key refused without reading the message
                ...(err.status !== undefined ? { status: err.status } : {}),
                ...(err.code !== undefined ? { code: err.code } : {}),
              },
            }) + '\n'
          : `runlog: ${err.message}\n`,
      );
      return err.exitCode;
    }
    // anything else (a full disk, a database gone mid-export) is a failure all the same
    const message = describeStartError(err, { db: '', host: '', port: '' });
    io.stderr.write(
      argv.includes('--json')
        ? JSON.stringify({ error: { message, exit_code: 1 } }) + '\n'
        : `runlog: ${message}\n`,
    );
    return 1;
  }
  return program.args[0] === 'serve' ? 'serving' : 0;
}

/** How long a shutdown waits for requests under way before cutting them off. */
const SHUTDOWN_GRACE_MS = 10_000;
/** How long after that the write path and the database get to close before the process exits. */
const SHUTDOWN_FLUSH_MS = 10_000;

export async function main(argv: string[]): Promise<void> {
  // a reader that stops early (`runlog runs tail --json | head -1`) ends a command quietly;
  // a server's output going nowhere is no reason to stop serving
  const serving = argv.find((a) => !a.startsWith('-')) === 'serve';
  // any other failure to write (a full disk) lost the output: no script may take it as done
  let lost: Error | undefined;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' && !serving) process.exit(0);
    lost ??= err;
  });
  let code = await run(argv);
  if (code === 'serving') return;
  // a pipe takes writes asynchronously: exiting before it has them cut `--json` output at 64 KiB
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  if (lost && code === 0) {
    const message = `cannot write the output: ${lost.message}`;
    process.stderr.write(
      argv.includes('--json')
        ? JSON.stringify({ error: { message, exit_code: 1 } }) + '\n'
        : `runlog: ${message}\n`,
    );
    await drained(process.stderr);
    code = 1;
  }
  // open keep-alive sockets would hold the process for seconds after the work is done
  process.exit(code);
}

/**
 * Resolves once everything written to `stream` so far is out, or the stream failed: a reader
 * that stopped early (`| head`) is no error of ours.
 */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.once('error', () => resolve());
    // writes are handed on in order: this one's callback comes after every earlier one's
    stream.write('', () => resolve());
  });
}
