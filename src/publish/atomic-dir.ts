import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { chown, lstat, mkdir, readdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeNewFile } from '../state/files.js';
import { UserError } from '../util/errors.js';
import { isRefusedFile, readSmallFile } from '../util/small-file.js';
import {
  DATA,
  ensureStableLink,
  isVersion,
  PREVIOUS,
  type PublishFile,
  refuseDirectoryAt,
  removeStaleLinks,
  swapLink,
  writeVersion,
} from './versions.js';

export type { PublishFile } from './versions.js';

/**
 * Publishes a set of files so that readers see either the whole old set or the whole new one
 * (the Kubernetes AtomicWriter scheme):
 *   DIR/..20261122_031000.123_ab12cd/   the files of one version
 *   DIR/..data -> ..20261122_031000.123_ab12cd   swapped by rename(2)
 *   DIR/fullchain.pem -> ..data/fullchain.pem    stable names
 */
export class AtomicDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  /** The version directory ..data points at, if any. */
  async currentVersion(): Promise<string | undefined> {
    return this.linkTarget(DATA);
  }

  // The reads a pass makes for every certificate (the link, the listing, the files) are
  // synchronous, each one system call of microseconds: see readSmallFile.
  private async linkTarget(name: string): Promise<string | undefined> {
    try {
      return readlinkSync(join(this.dir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'EINVAL') {
        throw new UserError(
          `${join(this.dir, name)} is not a symbolic link (a directory or file put there by hand or by another tool); mailcerts publishes by swapping that link: move it out of ${this.dir}`,
        );
      }
      throw err;
    }
  }

  /**
   * The published files of the current version, read through one resolved version path; before the
   * first publish, plain files left at the stable names by another tool. Undefined when one of
   * `names` is missing; `optional` ones are left out of the map when missing.
   */
  async read(names: string[], optional: string[] = []): Promise<Map<string, Buffer> | undefined> {
    const version = await this.currentVersion();
    const from = version ? join(this.dir, version) : this.dir;
    const out = new Map<string, Buffer>();
    for (const name of names) {
      try {
        out.set(name, readSmallFile(join(from, name)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }
    if (optional.length === 0) return out;
    // One listing instead of a failed open per missing name: each failure costs an exception.
    const present = new Set(readdirSync(from));
    for (const name of optional) if (present.has(name)) out.set(name, readSmallFile(join(from, name)));
    return out;
  }

  /** The current version holds these files (by name), and with `exactly`, no others: one listing. */
  async holds(names: readonly string[], exactly = false): Promise<boolean> {
    const current = await this.currentVersion();
    if (!current) return false;
    let entries: string[];
    try {
      entries = readdirSync(join(this.dir, current));
    } catch (err) {
      // Gone: not held. Unreadable (EACCES, EIO): said, so that no caller takes it for "not published".
      if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return false;
      throw err;
    }
    if (!((!exactly || entries.length === names.length) && names.every((n) => entries.includes(n)))) return false;
    // The stable names too: an interrupted publish or rollback can leave one missing.
    const top = new Set(readdirSync(this.dir));
    return names.every((n) => top.has(n));
  }

  /** The version a rollback would restore: kept, and not the live one. */
  async rollbackTarget(): Promise<string | undefined> {
    const [current, previous] = [await this.currentVersion(), await this.previousVersion()];
    return previous && previous !== current && (await this.versions()).includes(previous) ? previous : undefined;
  }

  /** The files of the version a rollback would restore, or undefined; `optional` ones as in read(). */
  async readPrevious(names: string[], optional: string[] = []): Promise<Map<string, Buffer> | undefined> {
    const previous = await this.rollbackTarget();
    if (!previous) return undefined;
    const out = new Map<string, Buffer>();
    for (const name of [...names, ...optional]) {
      const data = await readFile(join(this.dir, previous, name)).catch(() => undefined);
      if (data) out.set(name, data);
      else if (!optional.includes(name)) return undefined;
    }
    return out;
  }

  /** Version directories, oldest first. */
  async versions(): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries.filter(isVersion).sort();
  }

  /** The version that was live before the current one, if it is still kept. */
  async previousVersion(): Promise<string | undefined> {
    const current = await this.currentVersion();
    const previous = await this.linkTarget(PREVIOUS).catch(() => undefined);
    return previous || (await this.versions()).filter((v) => v < (current ?? '')).at(-1);
  }

  /**
   * Plain files left at the stable names by another tool become a version of their own, so that
   * the first publish can be rolled back to them. They take the modes (and owner) of the files
   * that replace them: a world-readable key adopted as it was would become live again on rollback.
   */
  private async adoptPlainFiles(files: PublishFile[]): Promise<string | undefined> {
    const found: PublishFile[] = [];
    for (const f of files) {
      const st = await lstat(join(this.dir, f.name)).catch(() => undefined);
      if (st?.isFile()) found.push({ ...f, data: await readFile(join(this.dir, f.name)) });
    }
    if (found.length === 0) return undefined;
    const version = await writeVersion(this.dir, found);
    await swapLink(this.dir, DATA, version); // the stable names are still the plain files: readers see no change
    return version;
  }

  /**
   * Proves that a publish can succeed here, before anything is ordered: the directory can be
   * created, a file written with the key's mode and given the key's owner and group. Throws the
   * system error (EACCES, EPERM, EROFS) for the caller to explain.
   */
  async checkWritable(mode: number, owner?: number, group?: number): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    await this.currentVersion();
    const probe = join(this.dir, `..tmp_check_${randomBytes(6).toString('hex')}`);
    try {
      await writeNewFile(probe, '', mode);
      if (owner !== undefined || group !== undefined) await chown(probe, owner ?? -1, group ?? -1);
      // A publish swaps links by rename: some file systems (and mounts) refuse links.
      await symlink(probe, `${probe}.link`);
      await rename(`${probe}.link`, `${probe}.swapped`);
    } finally {
      for (const f of [probe, `${probe}.link`, `${probe}.swapped`]) await rm(f, { force: true });
    }
  }

  /** This directory exists (made if missing) and this process may create files in it. */
  async checkWritableHere(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    accessSync(this.dir, constants.W_OK | constants.X_OK);
  }

  /** Publishes the files unless the current version holds exactly these bytes. */
  async publish(files: PublishFile[]): Promise<{ changed: boolean; version: string }> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const current = (await this.currentVersion()) ?? (await this.adoptPlainFiles(files));
    if (current) {
      // A file swollen past what a certificate can be, or not a file at all, is not the same one:
      // the new set replaces it.
      const existing = await this.read(files.map((f) => f.name)).catch((err: unknown) =>
        isRefusedFile(err) ? undefined : Promise.reject(err),
      );
      const same = existing && files.every((f) => existing.get(f.name)?.equals(Buffer.from(f.data)));
      const extra = (await readdir(join(this.dir, current)).catch(() => [])).length !== files.length;
      if (same && !extra) {
        // Same bytes: only the stable names may need mending (after an interrupted rollback).
        for (const f of files) await ensureStableLink(this.dir, f.name);
        await removeStaleLinks(this.dir, new Set(files.map((f) => f.name)));
        return { changed: false, version: current };
      }
    }

    // 1. Nothing can stop the stable links once the new set is live: check them first.
    for (const f of files) await refuseDirectoryAt(this.dir, f.name);
    // 2. The new version, written and fsynced beside the live one.
    const version = await writeVersion(this.dir, files);
    // 3. ..previous names the live version before ..data moves: a crash between the two leaves
    //    ..previous equal to ..data, which a rollback treats as "nothing to go back to".
    await this.setPrevious(current);
    // 4. The swap: one rename(2).
    await swapLink(this.dir, DATA, version);
    // 5. Stable names, links of files no longer published, then the directory entry itself.
    for (const f of files) await ensureStableLink(this.dir, f.name);
    await removeStaleLinks(this.dir, new Set(files.map((f) => f.name)));
    await fsyncDir(this.dir);
    // 6. Older versions go; never the live one or the one before it.
    await this.prune([version, current]);
    return { changed: true, version };
  }

  /** Points ..data back at the version that was live before (rollback); returns it, or undefined if none is kept. */
  async rollback(): Promise<string | undefined> {
    const current = await this.currentVersion();
    const previous = await this.rollbackTarget();
    if (!previous) return undefined;
    await swapLink(this.dir, DATA, previous);
    await this.setPrevious(current);
    // Versions may name different files (a key type added or removed): the stable names follow.
    const names = (await readdir(join(this.dir, previous))).filter((n) => !n.startsWith('.'));
    for (const name of names) await ensureStableLink(this.dir, name);
    await removeStaleLinks(this.dir, new Set(names));
    await fsyncDir(this.dir);
    return previous;
  }

  private async setPrevious(version: string | undefined): Promise<void> {
    if (version) await swapLink(this.dir, PREVIOUS, version);
    else await rm(join(this.dir, PREVIOUS), { force: true });
  }

  /**
   * Keeps the live version and the one live before it (for rollback); removes the rest and stray
   * temp links. The links are read again right before removing anything, and versions newer than
   * this publish are left alone, so that even a second writer (which the pass lock prevents) never
   * leaves ..data pointing at a removed version.
   */
  private async prune(keep: (string | undefined)[]): Promise<void> {
    const ours = keep[0]!;
    for (const v of await this.versions()) {
      if (keep.includes(v) || v > ours) continue;
      if (v === (await this.currentVersion()) || v === (await this.linkTarget(PREVIOUS).catch(() => undefined)))
        continue;
      await rm(join(this.dir, v), { recursive: true, force: true });
    }
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('..tmp_')) await rm(join(this.dir, entry), { force: true });
    }
  }
}
