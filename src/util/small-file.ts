import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';

/** Larger than this is not a certificate, a key or a state file: refused, not read into memory. */
export const MAX_SMALL_FILE_BYTES = 1_048_576;

/**
 * Reads a certificate, a key or a state file, synchronously. Each is a few KB, and a pass over 500
 * certificates reads about 2,000 of them: readFileSync takes about 15 µs a file here, the promise
 * API about 150 µs (open, fstat, read and close are four trips through the thread pool, which two
 * cores share with everything else). The event loop is held for one small file at a time.
 * Throws ENOENT and the like as fs does, and EFBIG for a file over MAX_SMALL_FILE_BYTES.
 */
export function readSmallFile(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size > MAX_SMALL_FILE_BYTES) {
      throw Object.assign(new Error(`${path} holds ${size} bytes, more than the ${MAX_SMALL_FILE_BYTES} a certificate, key or state file may; remove or replace it`), { code: 'EFBIG' });
    }
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

