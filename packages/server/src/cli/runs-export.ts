import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Transform, type TransformCallback } from 'node:stream';
import type { Command } from 'commander';
import {
  MAX_EXPORTED_RUNS,
  RUN_EXPORT_FORMATS,
  RUN_SORTS,
  type RunExportFormat,
  type RunSort,
} from '@runlog/core';
import { clientFor, withClient, type ClientFlags } from './data.commands.js';
import type { CliIo } from './io.js';
import { intArg, oneOf } from './options.js';
import { openOutputFile } from './output-file.js';
import { runFilterQuery, withRunFilters, type RunFilterFlags } from './run-filters.js';

/**
 * `runs export`: the runs a filter keeps, as the dashboard's Export downloads them (the
 * API's `GET /runs.csv` or `/runs.jsonl`), to a file or standard output.
 */
export function registerRunsExport(program: Command, io: CliIo): void {
  const runs = program.commands.find((c) => c.name() === 'runs');
  if (!runs) throw new Error('runs export goes under the runs command: register that first');
  const cmd = withRunFilters(
    runs
      .command('export')
      .description(
        'write the runs a filter keeps to a CSV or JSON Lines file, newest first (or --sort)',
      ),
  )
    .option(
      '--sort <order>',
      `newest first, or the most cost, longest duration or most tokens first (${RUN_SORTS.join(', ')})`,
      oneOf('--sort', RUN_SORTS),
    )
    .option(
      '--limit <n>',
      `at most this many runs (1-${MAX_EXPORTED_RUNS})`,
      intArg('--limit', 1, MAX_EXPORTED_RUNS),
      10_000,
    )
    .option(
      '--format <format>',
      'csv or jsonl (default: the --output file name says, else csv)',
      oneOf('--format', RUN_EXPORT_FORMATS),
    )
    .option('-o, --output <file>', 'write to this file instead of stdout (- for stdout)');
  // --url, --api-key and --json as every data command has them: with --json, what was
  // written is said as {"runs", "file"} (and a failure as JSON), as `runlog export` says it
  withClient(cmd)
    .addHelpText(
      'after',
      '\nThe file holds what `runs list` would list for the same filters: for a spreadsheet\n' +
        '(CSV: a row a run, its input and output as text) or for a program (JSON Lines: a run a\n' +
        'line, as the API answers it). `runlog export` is the whole database, for a backup.',
    )
    .action(
      async (
        flags: ClientFlags &
          RunFilterFlags & {
            sort?: RunSort;
            limit: number;
            format?: RunExportFormat;
            output?: string;
          },
      ) => {
        // `-o -` is standard output, as `runlog export -o -` has it (not a file named `-`)
        if (flags.output === '-') delete flags.output;
        const format =
          flags.format ?? (flags.output && /\.jsonl?$/i.test(flags.output) ? 'jsonl' : 'csv');
        const client = clientFor(flags, io);
        const query = { ...runFilterQuery(flags), sort: flags.sort, limit: flags.limit };
        const counter = new RowCounter(format);
        if (!flags.output) {
          counter.pipe(io.stdout, { end: false });
          await client.download(`/api/v1/runs.${format}`, query, counter);
          counter.end();
          await once(counter, 'end');
          // stdout carries the data: the summary goes to stderr
          if (flags.json)
            io.stderr.write(JSON.stringify({ runs: counter.rows, file: null }) + '\n');
          return;
        }
        // written whole or not at all, its owner's only (the runs' inputs and outputs)
        const file = await openOutputFile(flags.output);
        const written = pipeline(counter, file.stream);
        try {
          await client.download(`/api/v1/runs.${format}`, query, counter);
          counter.end();
          await written;
          await file.commit();
        } catch (err) {
          counter.destroy();
          await written.catch(() => undefined);
          await file.discard();
          throw err;
        }
        const n = counter.rows;
        if (flags.json) {
          io.stdout.write(JSON.stringify({ runs: n, file: flags.output }) + '\n');
          return;
        }
        io.stderr.write(
          `wrote ${n.toLocaleString('en-US')} run${n === 1 ? '' : 's'} to ${flags.output}\n`,
        );
      },
    );
}

/**
 * Passes an export through, counting its runs: JSON lines, or CSV rows after the header (a
 * row ends at a line break outside quotes; a cell's own line breaks are quoted).
 */
class RowCounter extends Transform {
  rows = 0;
  private quoted = false;
  private header: boolean;

  constructor(private readonly format: RunExportFormat) {
    super();
    this.header = format === 'csv';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.format === 'jsonl') {
      for (const byte of chunk) if (byte === 10) this.rows++;
    } else {
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i];
        if (byte === 34) this.quoted = !this.quoted;
        else if (byte === 10 && !this.quoted) {
          if (this.header) this.header = false;
          else this.rows++;
        }
      }
    }
    done(null, chunk);
  }
}
