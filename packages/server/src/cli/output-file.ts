import { createWriteStream, unlinkSync, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { CliError } from './client.js';

/**
 * A file an export writes whole or not at all. The data goes to a hidden file beside `path`
 * and takes its name only once every byte is written, so an export cut off (a server gone, a
 * full disk, Ctrl-C) never leaves a short file that looks like a whole one, and never spoils
 * the file an earlier export wrote there.
 */
export interface OutputFile {
  stream: WriteStream;
  /** Flushes the data and gives it its name. */
  commit(): Promise<void>;
  /** Throws away what was written; `path` is left as it was. */
  discard(): Promise<void>;
}

/**
 * Opens `path` for an export: its owner's only (`0600`: exports hold users' prompts and
 * data), failing with one line that names the file.
 */
export async function openOutputFile(path: string): Promise<OutputFile> {
  const partial = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  // Ctrl-C (or a kill) while writing: the hidden file goes too, then the process ends as the
  // signal would have ended it. Listening before the file is made: a signal as it appears
  // must not leave it behind.
  const onSignal = (signal: NodeJS.Signals) => {
    try {
      unlinkSync(partial);
    } catch {
      // not made yet, or gone already
    }
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let settled = false;
  const settle = () => {
    settled = true;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
  const stream = createWriteStream(partial, { mode: 0o600 });
  // a failed write (a full disk) is said when the export ends, as one line naming the file
  let failure: Error | undefined;
  stream.on('error', (err) => (failure ??= err));
  // once() rejects with the stream's error: said as one line, not Node's message
  await once(stream, 'open').catch((err: unknown) => {
    settle();
    throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
  });
  return {
    stream,
    async commit() {
      settle();
      try {
        if (!stream.writableFinished && !failure) {
          stream.end();
          await once(stream, 'finish');
        }
        if (failure) throw failure;
        await rename(partial, path);
      } catch (err) {
        await unlink(partial).catch(() => undefined);
        throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
      }
    },
    async discard() {
      if (settled) return;
      settle();
      if (!stream.closed) {
        stream.destroy();
        await once(stream, 'close').catch(() => undefined);
      }
      await unlink(partial).catch(() => undefined);
    },
  };
}
