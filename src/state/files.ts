import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as z from 'zod/mini';
import type { Logger } from '../log.js';
import { redact } from '../util/redact.js';
import { MAX_SMALL_FILE_BYTES, readSmallFile } from '../util/small-file.js';

/** Writes a new file with the mode, fsyncs it; fails if it exists. */
export async function writeNewFile(path: string, data: string | Buffer, mode: number): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await fh.chmod(mode); // umask must not widen or narrow the mode
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces a file atomically: temp file in the same folder, fsync, rename, fsync the folder. */
export async function replaceFile(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeNewFile(tmp, data, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * Reads a JSON state file that mailcerts derives itself (it can always start afresh). A file that
 * does not parse, or does not have the expected shape, is moved aside to NAME.corrupt-<time> with
 * a warning, and the caller starts empty: a damaged file must not stop every pass.
 */
export async function readStateFile<T>(
  path: string,
  schema: z.ZodMiniType<T>,
  log?: Logger,
  opts: { readOnly?: boolean } = {},
): Promise<T | undefined> {
  let text = '';
  let problem: string | undefined;
  try {
    text = readSmallFile(path).toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR') problem = 'a directory, not a file';
    else if (code === 'EFBIG') problem = `larger than ${MAX_SMALL_FILE_BYTES} bytes`;
    else if (code === 'ENOTFILE') problem = 'not a regular file';
    else throw new Error(`cannot read ${path}: ${(err as Error).message}; check the permissions of STATE_DIR`);
  }
  if (problem === undefined) {
    try {
      if (text === '') throw new Error('an empty file');
      const parsed = schema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
      problem = `unexpected content at ${parsed.error.issues[0]?.path.join('.') || 'the top'}: ${parsed.error.issues[0]?.message}`;
    } catch (err) {
      problem = `not valid JSON (${(err as Error).message})`;
    }
  }
  // Readers outside a pass (status) only look: the pass, under the lock, moves the file aside.
  if (opts.readOnly) return undefined;
  const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '')}`;
  await rename(path, aside).catch(() => rm(path, { recursive: true, force: true }));
  const fields = { step: 'state', file: path, movedTo: aside, problem };
  if (log) log.warn(fields, 'a state file was damaged; it was moved aside and mailcerts starts afresh for it');
  else process.emitWarning(`${path} was damaged (${problem}); moved to ${aside}`);
  return undefined;
}

/** Writes a state file atomically; registered secrets never reach the disk. */
export async function writeJson(path: string, value: unknown, mode = 0o600): Promise<void> {
  await replaceFile(path, redact(`${JSON.stringify(value, null, 2)}\n`), mode);
}
