import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../../../util/errors.js';

/** acme.json with a few hundred certificates is well under this; a larger file is refused unread. */
const MAX_BYTES = 32 * 1024 * 1024;

/** The uid mailcerts runs as (10001 in the image). */
const ownUid = (): number => process.getuid?.() ?? 0;

/**
 * Why the file or a directory above it must not be trusted, or undefined: whoever can write it, or
 * replace it, could make mailcerts publish a certificate of their choosing to the mail servers.
 */
function writableByOthers(path: string, st: Stats, what: 'file' | 'directory'): string | undefined {
  const uid = ownUid();
  if (st.uid !== 0 && st.uid !== uid) {
    return `${what} ${path} is owned by uid ${st.uid}, neither root nor mailcerts (uid ${uid}); its owner could put any certificate there: make root its owner (chown root ${path})`;
  }
  // A root-owned sticky directory (/tmp): others may add entries, but never rename or remove one
  // they do not own, and what lies below it is checked in turn.
  if (what === 'directory' && st.uid === 0 && st.mode & 0o1000) return undefined;
  const by = [st.mode & 0o020 && 'group', st.mode & 0o002 && 'others'].filter(Boolean).join(' and ');
  if (by)
    return `${what} ${path} is writable by ${by} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); anyone who can write it could put any certificate there: chmod go-w ${path}`;
  return undefined;
}

/** The hint for a file that cannot be opened, by errno code. */
function cannotRead(file: string, code: string): UserError {
  const uid = ownUid();
  const fix =
    code === 'EACCES' || code === 'EPERM'
      ? `make it readable by uid ${uid} (mailcerts), for example a read-only bind mount with an ACL (setfacl -m u:${uid}:r on the file, u:${uid}:x on the directories above it), or a copy job that copies it into a file mailcerts can read`
      : 'mount it read-only there, or fix TRAEFIK_ACME_JSON';
  return new UserError(`cannot read Traefik's acme.json at ${file} (${code}); ${fix}`);
}

const refused = (file: string, why: string) =>
  new UserError(
    `Traefik's acme.json at ${file} is refused: ${why}; nothing was published, the current certificate is kept`,
  );

/**
 * Checks the directories above `file`, from the root down: each a real directory (not a link),
 * owned by root or mailcerts, writable by its owner only. In that order no one else can swap one
 * of them between this check and the open.
 */
function checkDirectoriesAbove(file: string): void {
  const dirs: string[] = [];
  for (let d = dirname(file); ; d = dirname(d)) {
    dirs.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const dir of dirs) {
    let st: Stats;
    try {
      st = lstatSync(dir);
    } catch (err) {
      throw cannotRead(file, (err as NodeJS.ErrnoException).code ?? 'error');
    }
    if (st.isSymbolicLink())
      throw refused(
        file,
        `${dir} is a symbolic link, which mailcerts does not follow there; mount acme.json at a path without links`,
      );
    if (!st.isDirectory()) throw cannotRead(file, 'ENOTDIR');
    const problem = writableByOthers(dir, st, 'directory');
    if (problem) throw refused(file, problem);
  }
}

/**
 * Reads acme.json once: the directories above it checked, the file opened without following a
 * link (O_NOFOLLOW) and without waiting (a FIFO would block), then checked on its descriptor: a
 * regular file, owned by root or mailcerts, writable by its owner only, not over the size cap.
 */
export function readAcmeJsonOnce(file: string): string {
  checkDirectoriesAbove(file);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ELOOP')
      throw refused(file, 'it is a symbolic link, which mailcerts does not follow; mount the file itself there');
    throw cannotRead(file, code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UserError(`${file} is not a regular file; mount Traefik's acme.json there`);
    const problem = writableByOthers(file, st, 'file');
    if (problem) throw refused(file, problem);
    if (st.size > MAX_BYTES)
      throw new UserError(`${file} is larger than ${MAX_BYTES / 1024 / 1024} MiB; that is not an acme.json`);
    const buf = Buffer.alloc(st.size + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, Math.min(n, st.size)).toString('utf8');
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw cannotRead(file, (err as NodeJS.ErrnoException).code ?? 'error');
  } finally {
    closeSync(fd);
  }
}
