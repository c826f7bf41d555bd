import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Larger than this is not a certificate, a key or a state file: refused, not read into memory. */
export const MAX_SMALL_FILE_BYTES = 1_048_576;

/** A file readSmallFile refused (too large, or not a regular file): damaged input, not an I/O error. */
export const isRefusedFile = (err: unknown): boolean =>
  ['EFBIG', 'ENOTFILE'].includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * Reads a certificate, a key or a state file, synchronously. Each is a few KB, and a pass over 500
 * certificates reads about 2,000 of them: a synchronous read takes about 15 µs a file here, the
 * promise API about 150 µs (open, fstat, read and close are four trips through the thread pool,
 * which two cores share with everything else). The event loop is held for one small file at a time,
 * so nothing that could hold it longer is read: the open does not wait (O_NONBLOCK: a FIFO put in
 * place of a certificate would block it), anything but a regular file is refused (ENOTFILE; a
 * directory: EISDIR, as fs says), and at most MAX_SMALL_FILE_BYTES are read (EFBIG beyond, whatever
 * the size fstat claims: /proc files say 0). Throws ENOENT and the like as fs does.
 */
export function readSmallFile(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory())
      throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), { code: 'EISDIR' });
    if (!st.isFile())
      throw Object.assign(
        new Error(`${path} is not a regular file (a FIFO, a device or a socket); put the file itself there`),
        { code: 'ENOTFILE' },
      );
    const limit = MAX_SMALL_FILE_BYTES + 1;
    let buf = Buffer.allocUnsafe(Math.min(limit, Math.max(st.size + 1, 4096)));
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (buf.length >= limit) break;
        const larger = Buffer.allocUnsafe(limit);
        buf.copy(larger, 0, 0, length);
        buf = larger;
      }
      const read = readSync(fd, buf, length, buf.length - length, null);
      if (read === 0) break;
      length += read;
    }
    if (length > MAX_SMALL_FILE_BYTES) {
      throw Object.assign(
        new Error(
          `${path} holds more than the ${MAX_SMALL_FILE_BYTES} bytes a certificate, key or state file may; remove or replace it`,
        ),
        { code: 'EFBIG' },
      );
    }
    return Buffer.from(buf.subarray(0, length));
  } finally {
    closeSync(fd);
  }
}
