import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeNewFile } from '../state/files.js';

export interface PublishFile {
  name: string;
  data: string | Buffer;
  mode: number;
  /** Owner and group for this file (key files), when configured. */
  owner?: number;
  group?: number;
}

const DATA = '..data';

function isVersion(entry: string): boolean {
  return /^\.\.\d{8}_\d{6}\.\d{3}_[0-9a-f]{6}$/.test(entry);
}

function versionName(now = new Date()): string {
  return `..${now.toISOString().replace(/[-:]/g, '').replace('T', '_').replace('Z', '')}_${randomBytes(3).toString('hex')}`;
}

/**
 * Publishes a set of files so that readers see either the whole old set or the whole new one
 * (the Kubernetes AtomicWriter scheme):
 *   DIR/..20261122_031000.123_ab12cd/   the files of one version
 *   DIR/..data -> ..20261122_031000.123_ab12cd   swapped by rename(2)
 *   DIR/fullchain.pem -> ..data/fullchain.pem    stable names
 */
export class AtomicDir {
  readonly dir: string;
  private readonly keep: number;

  constructor(dir: string, opts: { keep?: number } = {}) {
    this.dir = dir;
    this.keep = opts.keep ?? 2;
  }

  /** The version directory ..data points at, if any. */
  async currentVersion(): Promise<string | undefined> {
    try {
      return await readlink(join(this.dir, DATA));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The published files of the current version, read through one resolved version path. */
  async read(names: string[]): Promise<Map<string, Buffer> | undefined> {
    const version = await this.currentVersion();
    if (!version) return undefined;
    const out = new Map<string, Buffer>();
    for (const name of names) {
      try {
        out.set(name, await readFile(join(this.dir, version, name)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }
    return out;
  }

  /** Version directories, oldest first. */
  async versions(): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries.filter(isVersion).sort();
  }

  /** Publishes the files unless the current version holds exactly these bytes. */
  async publish(files: PublishFile[]): Promise<{ changed: boolean; version: string }> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const current = await this.currentVersion();
    if (current) {
      const existing = await this.read(files.map((f) => f.name));
      const same = existing && files.every((f) => existing.get(f.name)?.equals(Buffer.from(f.data)));
      const extra = (await readdir(join(this.dir, current)).catch(() => [])).length !== files.length;
      if (same && !extra) return { changed: false, version: current };
    }

    const version = versionName();
    const versionDir = join(this.dir, version);
    await mkdir(versionDir, { mode: 0o755 });
    await chmod(versionDir, 0o755);
    try {
      for (const f of files) {
        const path = join(versionDir, f.name);
        await writeNewFile(path, f.data, f.mode);
        if (f.owner !== undefined || f.group !== undefined) await chown(path, f.owner ?? -1, f.group ?? -1);
      }
      await fsyncDir(versionDir);
    } catch (err) {
      await rm(versionDir, { recursive: true, force: true });
      throw err;
    }

    await this.swapLink(DATA, version);
    for (const f of files) await this.ensureStableLink(f.name);
    await this.removeStaleLinks(new Set(files.map((f) => f.name)));
    await fsyncDir(this.dir);
    await this.prune(version);
    return { changed: true, version };
  }

  /** Points ..data at an existing version (rollback). */
  async activate(version: string): Promise<void> {
    await this.swapLink(DATA, version);
    await fsyncDir(this.dir);
  }

  private async swapLink(name: string, target: string): Promise<void> {
    const tmp = join(this.dir, `..tmp_${randomBytes(6).toString('hex')}`);
    await symlink(target, tmp);
    try {
      await rename(tmp, join(this.dir, name));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** NAME -> ..data/NAME; replaces a plain file left by another tool in one rename. */
  private async ensureStableLink(name: string): Promise<void> {
    const path = join(this.dir, name);
    const target = `${DATA}/${name}`;
    const st = await lstat(path).catch(() => undefined);
    if (st?.isSymbolicLink() && (await readlink(path)) === target) return;
    if (st?.isDirectory()) throw new Error(`${path} is a directory; remove it so mailcerts can publish ${name} there`);
    await this.swapLink(name, target);
  }

  private async removeStaleLinks(keep: Set<string>): Promise<void> {
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('..') || keep.has(entry)) continue;
      const path = join(this.dir, entry);
      const st = await lstat(path);
      if (st.isSymbolicLink() && (await readlink(path)).startsWith(`${DATA}/`)) await rm(path);
    }
  }

  /** Keeps the current version and the newest older ones (for rollback); removes the rest and stray temp links. */
  private async prune(current: string): Promise<void> {
    const older = (await this.versions()).filter((v) => v !== current);
    for (const v of older.slice(0, Math.max(0, older.length - (this.keep - 1)))) {
      await rm(join(this.dir, v), { recursive: true, force: true });
    }
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('..tmp_')) await rm(join(this.dir, entry), { force: true });
    }
  }
}
