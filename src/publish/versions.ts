import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeNewFile } from '../state/files.js';
import { UserError } from '../util/errors.js';

/*
 * The pieces of an AtomicDir (atomic-dir.ts): its version directories, and the links that point at
 * them (..data, ..previous, and a stable name per file).
 */

export interface PublishFile {
  name: string;
  data: string | Buffer;
  mode: number;
  /** Owner and group for this file (key files), when configured. */
  owner?: number;
  group?: number;
}

export const DATA = '..data';
/** A link naming the version that was live before ..data's (what a rollback restores). */
export const PREVIOUS = '..previous';

export function isVersion(entry: string): boolean {
  return /^\.\.\d{8}_\d{6}\.\d{3}_[0-9a-f]{6}$/.test(entry);
}

function versionName(now = new Date()): string {
  return `..${now.toISOString().replace(/[-:]/g, '').replace('T', '_').replace('Z', '')}_${randomBytes(3).toString('hex')}`;
}

/** A new version directory holding the files, written and fsynced; nothing points at it yet. */
export async function writeVersion(dir: string, files: PublishFile[]): Promise<string> {
  const version = versionName();
  const versionDir = join(dir, version);
  await mkdir(versionDir, { mode: 0o755 });
  await chmod(versionDir, 0o755);
  try {
    // Written and synced side by side (the file system batches the syncs); nothing points at
    // the version before all of them and the folder are on disk.
    const written = await Promise.allSettled(
      files.map(async (f) => {
        const path = join(versionDir, f.name);
        await writeNewFile(path, f.data, f.mode);
        if (f.owner !== undefined || f.group !== undefined) await chown(path, f.owner ?? -1, f.group ?? -1);
      }),
    );
    const failed = written.find((w) => w.status === 'rejected');
    if (failed) throw failed.reason;
    await fsyncDir(versionDir);
  } catch (err) {
    await rm(versionDir, { recursive: true, force: true });
    throw err;
  }
  return version;
}

/** Points the link `name` at `target` in one rename(2). */
export async function swapLink(dir: string, name: string, target: string): Promise<void> {
  const tmp = join(dir, `..tmp_${randomBytes(6).toString('hex')}`);
  await symlink(target, tmp);
  try {
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function refuseDirectoryAt(dir: string, name: string): Promise<void> {
  const path = join(dir, name);
  if ((await lstat(path).catch(() => undefined))?.isDirectory())
    throw new UserError(`${path} is a directory; remove it so mailcerts can publish ${name} there`);
}

/** NAME -> ..data/NAME; replaces a plain file left by another tool in one rename. */
export async function ensureStableLink(dir: string, name: string): Promise<void> {
  const path = join(dir, name);
  const target = `${DATA}/${name}`;
  const st = await lstat(path).catch(() => undefined);
  if (st?.isSymbolicLink() && (await readlink(path)) === target) return;
  await refuseDirectoryAt(dir, name);
  await swapLink(dir, name, target);
}

/** Removes the stable links of files no longer published. */
export async function removeStaleLinks(dir: string, keep: Set<string>): Promise<void> {
  for (const entry of await readdir(dir)) {
    if (entry.startsWith('..') || keep.has(entry)) continue;
    const path = join(dir, entry);
    const st = await lstat(path);
    if (st.isSymbolicLink() && (await readlink(path)).startsWith(`${DATA}/`)) await rm(path);
  }
}
