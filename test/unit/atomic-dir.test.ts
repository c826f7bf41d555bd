import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AtomicDir } from '../../src/publish/atomic-dir.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'mailcerts-atomic-'));
const files = (tag: string) => [
  { name: 'fullchain.pem', data: `chain ${tag}\n`, mode: 0o644 },
  { name: 'privkey.pem', data: `key ${tag}\n`, mode: 0o600 },
];
const versions = (dir: string) => readdirSync(dir).filter((e) => /^\.\.\d{8}_/.test(e));

describe('AtomicDir: the ..data symlink swap', () => {
  it('publishes a version directory, one ..data link and stable links through it, with the modes asked for', async () => {
    const dir = fresh();
    const out = await new AtomicDir(dir).publish(files('1'));
    expect(out.changed).toBe(true);
    expect(readlinkSync(join(dir, '..data'))).toBe(out.version);
    expect(readlinkSync(join(dir, 'privkey.pem'))).toBe('..data/privkey.pem');
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe('key 1\n');
    expect(statSync(join(dir, 'privkey.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'fullchain.pem')).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir).filter((e) => e.startsWith('..tmp'))).toEqual([]);
  });

  it('gives key files the configured owner and group (e.g. a Dovecot that reads as a group)', async () => {
    const dir = fresh();
    await new AtomicDir(dir).publish([
      { name: 'privkey.pem', data: 'key', mode: 0o640, owner: 0, group: 4321 },
      { name: 'fullchain.pem', data: 'chain', mode: 0o644 },
    ]);
    const st = statSync(join(dir, 'privkey.pem'));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, 4321, 0o640]);
  });

  it('identical bytes publish nothing', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    const first = await a.publish(files('1'));
    const again = await a.publish(files('1'));
    expect(again).toEqual({ changed: false, version: first.version });
    expect(versions(dir)).toHaveLength(1);
  });

  it('keeps the previous version for rollback, prunes older ones, and rolls back', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    const v1 = (await a.publish(files('1'))).version;
    const v2 = (await a.publish(files('2'))).version;
    const v3 = (await a.publish(files('3'))).version;
    expect(versions(dir)).toEqual([v2, v3]);
    expect(v1 < v2 && v2 < v3).toBe(true);
    expect(await a.rollback()).toBe(v2);
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe('key 2\n');
    // After a rollback, the next publish keeps the good version (v2), not the rolled-back one (v3).
    const v4 = (await a.publish(files('4'))).version;
    expect(versions(dir)).toEqual([v2, v4]);
    expect(await a.rollback()).toBe(v2);
  });

  it('the first publish over plain files can be rolled back to them', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'fullchain.pem'), 'chain seed\n');
    writeFileSync(join(dir, 'privkey.pem'), 'key seed\n', { mode: 0o600 });
    const a = new AtomicDir(dir);
    await a.publish(files('1'));
    expect(versions(dir)).toHaveLength(2);
    await a.rollback();
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe('key seed\n');
    expect(readFileSync(join(dir, 'fullchain.pem'), 'utf8')).toBe('chain seed\n');
    expect(statSync(join(dir, 'privkey.pem')).mode & 0o777).toBe(0o600);
  });

  it('a rollback with nothing to go back to changes nothing', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    const v1 = (await a.publish(files('1'))).version;
    expect(await a.rollback()).toBeUndefined();
    expect(readlinkSync(join(dir, '..data'))).toBe(v1);
  });

  it('adopts plain files left by another tool (acme.sh, certbot copies) by replacing them with links', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'fullchain.pem'), 'old chain');
    writeFileSync(join(dir, 'privkey.pem'), 'old key');
    writeFileSync(join(dir, 'unrelated.txt'), 'keep me');
    await new AtomicDir(dir).publish(files('1'));
    expect(lstatSync(join(dir, 'fullchain.pem')).isSymbolicLink()).toBe(true);
    expect(versions(dir)).toHaveLength(2); // the adopted files are kept as the previous version
    expect(readFileSync(join(dir, 'fullchain.pem'), 'utf8')).toBe('chain 1\n');
    expect(readFileSync(join(dir, 'unrelated.txt'), 'utf8')).toBe('keep me');
  });

  it('removes stable links of files no longer published, and leaves sub-directories alone', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    await a.publish([...files('1'), { name: 'extra.pem', data: 'x', mode: 0o644 }]);
    mkdirSync(join(dir, 'other-cert'));
    await a.publish(files('2'));
    expect(readdirSync(dir).includes('extra.pem')).toBe(false);
    expect(readdirSync(dir).includes('other-cert')).toBe(true);
  });

  it('refuses to replace a directory standing where a file goes, before anything goes live', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    const v1 = (await a.publish(files('1'))).version;
    mkdirSync(join(dir, 'cert.pem'));
    await expect(a.publish([...files('2'), { name: 'cert.pem', data: 'c', mode: 0o644 }])).rejects.toThrow(
      /cert.pem is a directory; remove it/,
    );
    expect(readlinkSync(join(dir, '..data'))).toBe(v1); // the failed publish changed nothing
  });

  it('names the live version in ..previous before ..data moves: a crash between them never skips a generation', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    const v1 = (await a.publish(files('1'))).version;
    const v2 = (await a.publish(files('2'))).version;
    expect(readlinkSync(join(dir, '..previous'))).toBe(v1);
    // As a crash right after step 3 leaves it: ..previous already names the live version.
    symlinkSync(v2, join(dir, '..prev-tmp'));
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, '..prev-tmp'), join(dir, '..previous'));
    expect(await a.rollback()).toBeUndefined(); // nothing to go back to, rather than a wrong generation
    expect(readlinkSync(join(dir, '..data'))).toBe(v2);
  });

  it('a reader that resolves ..data once always sees a matching pair while versions swap', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    await a.publish(files('0'));
    let stop = false;
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        const v = readlinkSync(join(dir, '..data'));
        const chain = readFileSync(join(dir, v, 'fullchain.pem'), 'utf8');
        const key = readFileSync(join(dir, v, 'privkey.pem'), 'utf8');
        expect(chain.split(' ')[1]).toBe(key.split(' ')[1]);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 1; i <= 50; i++) await a.publish(files(String(i)));
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(10);
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe('key 50\n');
  });

  it('a dangling ..data (version removed by hand) reads as nothing published', async () => {
    const dir = fresh();
    symlinkSync('..gone', join(dir, '..data'));
    expect(await new AtomicDir(dir).read(['privkey.pem'])).toBeUndefined();
  });

  it('an adopted key takes the key mode: a world-readable key left by another tool is not live again after a rollback', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'fullchain.pem'), 'chain seed\n', { mode: 0o644 });
    writeFileSync(join(dir, 'privkey.pem'), 'key seed\n', { mode: 0o644 });
    const a = new AtomicDir(dir);
    await a.publish(files('1'));
    await a.rollback();
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe('key seed\n');
    expect(statSync(join(dir, 'privkey.pem')).mode & 0o777).toBe(0o600);
  });

  it('a ..data that is a directory is reported with what to do, and nothing is published', async () => {
    const dir = fresh();
    mkdirSync(join(dir, '..data'));
    const a = new AtomicDir(dir);
    await expect(a.read(['privkey.pem'])).rejects.toThrow(
      /\.\.data is not a symbolic link \(a directory or file put there by hand or by another tool\); mailcerts publishes by swapping that link: move it out of/,
    );
    await expect(a.publish(files('1'))).rejects.toThrow(/is not a symbolic link/);
    expect(versions(dir)).toEqual([]);
    expect(lstatSync(join(dir, '..data')).isDirectory()).toBe(true); // left as it was
    expect(readdirSync(dir).filter((e) => !e.startsWith('..data'))).toEqual([]);
  });

  it('never prunes the version ..data points at, even when a second writer swapped it in between', async () => {
    const dir = fresh();
    const a = new AtomicDir(dir);
    const b = new AtomicDir(dir);
    await a.publish(files('1'));
    // Two publishes interleaved as two unlocked processes would: B's version goes live last.
    const [ra, rb] = await Promise.all([a.publish(files('2')), b.publish(files('3'))]);
    const live = readlinkSync(join(dir, '..data'));
    expect([ra.version, rb.version]).toContain(live);
    expect(versions(dir)).toContain(live);
    const key = readFileSync(join(dir, 'privkey.pem'), 'utf8');
    expect(['key 2\n', 'key 3\n']).toContain(key);
  });
});
