import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRefusedFile, MAX_SMALL_FILE_BYTES, readSmallFile } from '../../src/util/small-file.js';

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'read';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
};

describe('reading a certificate, key or state file that may be hostile', () => {
  it('reads a small file whole, and one of exactly the limit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-small-'));
    writeFileSync(join(dir, 'a.pem'), 'PEM\n');
    expect(readSmallFile(join(dir, 'a.pem')).toString()).toBe('PEM\n');
    writeFileSync(join(dir, 'max'), Buffer.alloc(MAX_SMALL_FILE_BYTES, 0x41));
    expect(readSmallFile(join(dir, 'max')).length).toBe(MAX_SMALL_FILE_BYTES);
  });

  it('refuses, without waiting and without reading it into memory: a FIFO, a device, a file over 1 MiB; a directory is EISDIR', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-small-'));
    execFileSync('mkfifo', [join(dir, 'fifo.pem')]); // nobody writes to it: an open that waited would hang this test
    symlinkSync('/dev/zero', join(dir, 'zero.pem')); // endless, and fstat says 0 bytes
    writeFileSync(join(dir, 'big.pem'), Buffer.alloc(MAX_SMALL_FILE_BYTES + 1));
    expect(code(() => readSmallFile(join(dir, 'fifo.pem')))).toBe('ENOTFILE');
    expect(code(() => readSmallFile(join(dir, 'zero.pem')))).toBe('ENOTFILE');
    expect(code(() => readSmallFile(join(dir, 'big.pem')))).toBe('EFBIG');
    expect(code(() => readSmallFile(dir))).toBe('EISDIR');
    expect(code(() => readSmallFile(join(dir, 'missing.pem')))).toBe('ENOENT');
    expect(() => readSmallFile(join(dir, 'fifo.pem'))).toThrow(
      /fifo\.pem is not a regular file \(a FIFO, a device or a socket\); put the file itself there/,
    );
    expect(isRefusedFile(Object.assign(new Error(), { code: 'EFBIG' }))).toBe(true);
    expect(isRefusedFile(Object.assign(new Error(), { code: 'ENOENT' }))).toBe(false);
  });

  it('reads a file whose size fstat does not know (/proc says 0), up to the limit', () => {
    expect(readSmallFile('/proc/self/status').toString()).toMatch(/^Name:/);
  });
});
