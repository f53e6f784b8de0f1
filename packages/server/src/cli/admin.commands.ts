import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import type { Command } from 'commander';
import { KEY_SCOPES, toIso, type KeyScope } from '@runlog/core';
import { DEFAULT_DB } from '../config.js';
import { AuthService } from '../auth/auth.service.js';
import { isPostgresUrl, openDatabase, type Db } from '../db/database.js';
import { migrateToLatest } from '../db/migrate.js';
import { countExport, exportRuns, EXPORT_FORMATS, type ExportFormat } from '../export/export.js';
import { importRuns } from '../export/import.js';
import { purgeEndedBefore } from '../retention/purge.js';
import { DAY_MS } from '../stats/rollup.js';
import { CliError } from './client.js';
import {
  Palette,
  Progress,
  countOf,
  formatCount,
  formatRelative,
  printable,
  table,
} from './format.js';
import { checkedDbUrl, describeStartError, redact, type CliIo } from './io.js';
import { openOutputFile } from './output-file.js';
import { idArg, intArg, oneOf, parseWhen, textArg, withJson } from './options.js';
import { announceDeletedRuns, announceRevocation } from '../realtime/pg-bridge.js';

interface DbFlags {
  db?: string;
  project: string;
  json?: boolean;
}

/** `--db`, `--project` and `--json`: what every command on the database takes. */
function withDb(cmd: Command): Command {
  return withJson(
    cmd
      .option(
        '--db <path|url>',
        `SQLite file or postgres:// URL (env RUNLOG_DB, default ${DEFAULT_DB})`,
      )
      .option('--project <id>', 'project', idArg('--project'), 'default'),
  );
}

/**
 * Opens and migrates the database for an admin command and closes it after. Unless
 * `create`, a SQLite file that does not exist is an error rather than a new empty database.
 */
async function usingDb<T>(
  flags: DbFlags,
  io: CliIo,
  fn: (db: Db) => Promise<T>,
  create = false,
): Promise<T> {
  const url = checkedDbUrl(flags.db ?? io.env.RUNLOG_DB ?? DEFAULT_DB);
  if (!create && !isPostgresUrl(url) && url !== ':memory:' && !existsSync(url))
    throw new CliError(`no database at ${url} (set --db or RUNLOG_DB)`);
  let db: Db;
  try {
    db = await openDatabase(url, { poolSize: 2, createSchema: create });
    await migrateToLatest(db);
  } catch (err) {
    throw new CliError(describeStartError(err, { db: redact(url), host: '', port: '' }));
  }
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** The project's retention in days; a missing project is the error. */
async function requireProject(db: Db, id: string): Promise<number> {
  const row = await db.kysely
    .selectFrom('projects')
    .select('retention_days')
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw new CliError(`no project ${id} in this database (set --project)`);
  return row.retention_days;
}

/** `cleanup`, `export`, `import`, `keys`: admin work straight on the database. */
export function registerAdminCommands(program: Command, io: CliIo): void {
  const stderrTTY = () => io.stderr;

  withDb(
    program
      .command('cleanup')
      .description('delete runs (and their steps) that ended more than N days ago')
      .option(
        '--days <n>',
        "keep runs that ended in the last N days (default: the project's retention)",
        intArg('--days', 0, 36500),
      )
      .option('--dry-run', 'count what would be deleted; delete nothing')
      .option('-y, --yes', 'with --days 0: delete every run that has ended, without asking')
      .option('--all-projects', 'every project, not only --project')
      .option('--batch-size <n>', 'runs per transaction', intArg('--batch-size', 1, 10_000), 500),
  ).action(
    async (
      flags: DbFlags & {
        days?: number;
        dryRun?: boolean;
        yes?: boolean;
        allProjects?: boolean;
        batchSize: number;
      },
    ) => {
      if (flags.days === undefined && flags.allProjects)
        throw new CliError(
          '--all-projects needs --days: each project otherwise keeps its own retention',
          2,
        );
      // the whole history of a project (or of every one) in one go: said, not assumed
      if (flags.days === 0 && !flags.dryRun && !flags.yes)
        throw new CliError(
          `--days 0 deletes every run that has ended, of ${flags.allProjects ? 'every project' : `project ${flags.project}`}: add --yes to do it, or --dry-run to count them`,
          2,
        );
      let before = 0;
      const result = await usingDb(flags, io, async (db) => {
        const projectId = flags.allProjects ? undefined : flags.project;
        const retention = projectId !== undefined ? await requireProject(db, projectId) : 0;
        before = Date.now() - (flags.days ?? retention) * DAY_MS;
        const scope = { before, ...(projectId !== undefined ? { projectId } : {}) };
        const planned = await purgeEndedBefore(db, { ...scope, dryRun: true });
        if (flags.dryRun) return planned;
        const progress = new Progress(stderrTTY(), 'deleting runs', planned.runs);
        // running servers on PostgreSQL tell their dashboards, batch by batch
        let announcing = Promise.resolve();
        const done = await purgeEndedBefore(db, {
          ...scope,
          batchSize: flags.batchSize,
          onBatch: (p) => progress.update(p.runs),
          onDeleted: (runs) => {
            announcing = announcing.then(() => announceDeletedRuns(db, runs)).catch(() => {});
          },
        });
        await announcing;
        progress.done(done.runs);
        return done;
      });
      // the project it cleaned (`default` unless --project): null with --all-projects
      const projectId = flags.allProjects ? null : flags.project;
      const summary = {
        dry_run: Boolean(flags.dryRun),
        project_id: projectId,
        ended_before: toIso(before),
        deleted_runs: result.runs,
        deleted_steps: result.steps,
      };
      if (flags.json) {
        io.stdout.write(JSON.stringify(summary) + '\n');
        return;
      }
      io.stdout.write(
        `${flags.dryRun ? 'would delete' : 'deleted'} ${countOf(result.runs, 'run')} and ` +
          `${countOf(result.steps, 'step')} ` +
          `${projectId === null ? 'of every project' : `of project ${projectId}`} ` +
          `that ended before ${summary.ended_before}\n`,
      );
    },
  );

  withDb(
    program
      .command('export')
      .description('stream runs (with their steps) as JSONL or CSV, oldest first')
      .option('--agent <id>', 'only this agent', idArg('--agent'))
      .option('--since <when>', 'runs since: 24h, 7d or a date', parseWhen('--since'))
      .option('--until <when>', 'runs before: 24h, 7d or a date', parseWhen('--until'))
      .option(
        '--format <format>',
        'jsonl (runs with steps) or csv (run fields)',
        oneOf('--format', EXPORT_FORMATS),
        'jsonl',
      )
      .option('-o, --output <file>', 'write to this file instead of stdout (- for stdout)'),
  ).action(
    async (
      flags: DbFlags & {
        agent?: string;
        since?: number;
        until?: number;
        format: ExportFormat;
        output?: string;
      },
    ) => {
      if (flags.since !== undefined && flags.until !== undefined && flags.since >= flags.until)
        throw new CliError('--since must be before --until: no run can match', 2);
      // `-o -` is standard output, as for most tools that take a file
      if (flags.output === '-') delete flags.output;
      const result = await usingDb(flags, io, async (db) => {
        await requireProject(db, flags.project);
        // a misspelt agent is an error, as in `runlog stats`, not an empty export
        if (flags.agent !== undefined) {
          const agent = await db.kysely
            .selectFrom('agents')
            .select('id')
            .where('project_id', '=', flags.project)
            .where('id', '=', flags.agent)
            .executeTakeFirst();
          if (!agent) throw new CliError(`no agent ${flags.agent} in project ${flags.project}`);
        }
        const opts = {
          projectId: flags.project,
          format: flags.format,
          ...(flags.agent !== undefined ? { agentId: flags.agent } : {}),
          ...(flags.since !== undefined ? { since: flags.since } : {}),
          ...(flags.until !== undefined ? { until: flags.until } : {}),
        };
        // the file holds what the database does (prompts, users' data, tool output): its
        // owner's only, as a new database file is, and written whole or not at all (a
        // backup cut short must not look like one)
        const file = flags.output ? await openOutputFile(flags.output) : undefined;
        try {
          const progress = new Progress(stderrTTY(), 'exporting runs', await countExport(db, opts));
          const counts = await exportRuns(
            db,
            { ...opts, onProgress: (n) => progress.update(n) },
            file?.stream ?? io.stdout,
          );
          progress.done(counts.runs);
          await file?.commit();
          return counts;
        } catch (err) {
          await file?.discard();
          throw err;
        }
      });
      const summary = {
        runs: result.runs,
        steps: result.steps,
        ...(flags.format === 'jsonl' ? { agents: result.agents, prices: result.prices } : {}),
        file: flags.output ?? null,
      };
      // with no -o, stdout carries the data: the summary goes to stderr
      const target = flags.output ? io.stdout : io.stderr;
      if (flags.json) target.write(JSON.stringify(summary) + '\n');
      else if (flags.output || io.stderr.isTTY)
        target.write(
          `exported ${countOf(result.runs, 'run')}` +
            (flags.format === 'jsonl'
              ? ` (${countOf(result.steps, 'step')})` + settingsCounts(result)
              : '') +
            (flags.output ? ` to ${flags.output}` : '') +
            '\n',
        );
    },
  );

  withJson(
    program
      .command('import')
      .description('import a JSONL export; importing the same file again changes nothing')
      .argument(
        '<file>',
        'a file written by `runlog export --format jsonl`; - reads standard input',
      )
      .option(
        '--db <path|url>',
        `SQLite file or postgres:// URL (env RUNLOG_DB, default ${DEFAULT_DB})`,
      )
      .option(
        '--project <id>',
        "import into this project instead of each run's own",
        idArg('--project'),
      ),
  ).action(async (file: string, flags: { db?: string; project?: string; json?: boolean }) => {
    const fromStdin = file === '-';
    let size = 0;
    // `runlog export -o - | runlog import -`: the lines as they come, counted as they pass;
    // opened once the database is, so a refused --db leaves the input alone
    const open: () => Readable = fromStdin
      ? () =>
          (io.stdin ?? process.stdin).pipe(
            new Transform({
              transform(chunk: Buffer, _encoding, done) {
                size += chunk.length;
                done(null, chunk);
              },
            }),
          )
      : checkImportFile(file, (bytes) => (size = bytes));
    const source = fromStdin ? 'standard input' : file;
    const MAX_SHOWN = 20;
    let rejected = 0;
    // with --json, the first rejections go in the summary, and stderr holds only JSON
    const rejections: { line: number; reason: string }[] = [];
    const result = await usingDb(
      { ...flags, project: flags.project ?? 'default' },
      io,
      async (db) => {
        const progress = new Progress(stderrTTY(), 'importing runs');
        const res = await importRuns(db, open(), {
          ...(flags.project !== undefined ? { projectId: flags.project } : {}),
          onReject: (line, reason) => {
            rejected += 1;
            if (rejected > MAX_SHOWN) return;
            if (flags.json) {
              rejections.push({ line, reason });
              return;
            }
            if (progress.active) io.stderr.write('\r\u001b[K');
            io.stderr.write(`runlog: ${source}:${line}: ${reason}\n`);
          },
          onProgress: (p) => progress.update(p.runs),
        });
        progress.done(res.runs);
        return res;
      },
      true,
    );
    if (rejected > MAX_SHOWN && !flags.json)
      io.stderr.write(`runlog: ... and ${formatCount(rejected - MAX_SHOWN)} more rejected lines\n`);
    // a project the import created (a misspelt --project, or a restore) no key reaches yet
    for (const id of flags.json ? [] : result.created)
      io.stderr.write(
        `runlog: note: created project ${id}, which no key reaches yet: add one with \`runlog keys create --scope admin --project ${id}\`\n`,
      );
    for (const e of flags.json ? [] : (result.expiring ?? []))
      io.stderr.write(
        `runlog: note: ${countOf(e.runs, 'imported run')} of project ${e.projectId} ended more than its retention (${countOf(e.retentionDays, 'day')}) ago, and retention deletes them on its next pass; raise retention_days first (Settings, or PATCH /api/v1/settings) to keep them\n`,
      );
    const summary = {
      file,
      bytes: size,
      runs: result.runs,
      steps: result.steps,
      agents: result.agents,
      prices: result.prices,
      existing: result.existing,
      rejected: result.rejected,
      projects: result.projects,
      created_projects: result.created,
      // the first rejected lines, each with its number and why
      ...(rejections.length > 0 ? { rejections } : {}),
      ...(result.expiring
        ? {
            expiring: result.expiring.map((e) => ({
              project_id: e.projectId,
              runs: e.runs,
              retention_days: e.retentionDays,
            })),
          }
        : {}),
    };
    if (flags.json) io.stdout.write(JSON.stringify(summary) + '\n');
    else
      io.stdout.write(
        `imported ${countOf(result.runs, 'run')} (${countOf(result.steps, 'step')})` +
          settingsCounts(result) +
          ` from ${source}` +
          // which project took them: --project, or those the file names
          (result.projects.length > 0
            ? ` into ${result.projects.length === 1 ? 'project' : 'projects'} ${result.projects.join(', ')}`
            : '') +
          // an import again changes nothing: say which runs were there already
          (result.existing
            ? `; ${formatCount(result.existing)} of them were already there, now as in the file`
            : '') +
          (result.rejected ? `; ${countOf(result.rejected, 'line')} rejected` : '') +
          '\n',
      );
    if (result.rejected > 0)
      throw new CliError(
        `${countOf(result.rejected, 'line')} of ${source} ${result.rejected === 1 ? 'was' : 'were'} not imported`,
      );
  });

  const keys = program.command('keys').description('API keys: create, list, revoke');
  withDb(
    keys
      .command('create')
      .description('create an API key (shown once)')
      .requiredOption(
        '--scope <scope>',
        'read, write (ingest and control) or admin',
        oneOf('--scope', KEY_SCOPES),
      )
      .option('--name <name>', 'what the key is for', textArg('--name', 200)),
  ).action(async (flags: DbFlags & { scope: KeyScope; name?: string }) => {
    const created = await usingDb(flags, io, async (db) => {
      await requireProject(db, flags.project);
      return new AuthService(db).createKey(flags.project, flags.scope, flags.name);
    });
    if (flags.json) {
      io.stdout.write(JSON.stringify(created, null, 2) + '\n');
      return;
    }
    io.stdout.write(
      `created ${created.scope} key ${created.id}${created.name ? ` (${created.name})` : ''} ` +
        `in project ${created.project_id}; it is shown only now:\n${created.key}\n`,
    );
  });

  withDb(keys.command('list').description("the project's API keys (never their secrets)")).action(
    async (flags: DbFlags) => {
      const list = await usingDb(flags, io, async (db) => {
        await requireProject(db, flags.project);
        return new AuthService(db).listKeys(flags.project);
      });
      if (flags.json) {
        io.stdout.write(JSON.stringify({ keys: list }, null, 2) + '\n');
        return;
      }
      const p = Palette.for(io.stdout, io.env);
      io.stdout.write(
        table(
          [
            { header: 'ID', whole: true },
            { header: 'PREFIX', whole: true },
            { header: 'SCOPE', whole: true },
            { header: 'NAME' },
            { header: 'CREATED' },
            { header: 'LAST USED' },
            { header: 'STATE' },
          ],
          list.map((k) => [
            k.id,
            k.prefix,
            k.scope,
            printable(k.name ?? ''),
            formatRelative(k.created_at),
            k.last_used_at ? formatRelative(k.last_used_at) : 'never',
            k.revoked_at ? p.paint('red', 'revoked') : p.paint('green', 'active'),
          ]),
          p,
        ),
      );
    },
  );

  withDb(
    keys
      .command('revoke')
      .description('revoke a key: requests and sessions using it stop working')
      .argument('<id>', 'key id (from keys list)', idArg('<id>')),
  ).action(async (id: string, flags: DbFlags) => {
    const key = await usingDb(flags, io, async (db) => {
      const revoked = await new AuthService(db).revokeKey(flags.project, id);
      // running servers keep keys cached for seconds: on PostgreSQL, tell them now
      if (revoked) await announceRevocation(db);
      return revoked;
    });
    if (!key) throw new CliError(`no key ${id} in project ${flags.project}`);
    if (flags.json) {
      io.stdout.write(JSON.stringify(key, null, 2) + '\n');
      return;
    }
    io.stdout.write(`revoked key ${key.id} (${key.prefix}…, ${key.scope})\n`);
  });
}

/** The first 4 KiB of a file, as text. */
/**
 * Checks that `file` is an export to import, and answers how to open it; `sized` hears its
 * size. Fails with one line for a missing file, a folder, or a file of another format.
 */
function checkImportFile(file: string, sized: (bytes: number) => void): () => Readable {
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new CliError(`${file} is not a file`);
    sized(st.size);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  // a CSV export (or any other file) would be rejected line by line: say what import takes
  const head = readFileHead(file);
  const firstLine = head.split('\n').find((l) => l.trim() !== '');
  if (firstLine !== undefined && !firstLine.trimStart().startsWith('{'))
    throw new CliError(
      `${file} is not a JSONL export: import takes what 'runlog export' writes in its default format (jsonl), a JSON object per line`,
    );
  return () => createReadStream(file);
}

function readFileHead(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** ", 3 agents and 1 price override": the settings lines an export or import carried. */
function settingsCounts(counts: { agents: number; prices: number }): string {
  const parts = [];
  if (counts.agents > 0) parts.push(countOf(counts.agents, 'agent'));
  if (counts.prices > 0) parts.push(countOf(counts.prices, 'price override'));
  return parts.length > 0 ? `, ${parts.join(' and ')}` : '';
}
