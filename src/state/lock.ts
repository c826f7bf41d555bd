import { open, readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One pass at a time per STATE_DIR (the daemon and a manual `renew` must not publish together). */
export async function acquireLock(stateDir: string): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'pass.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (holder && holder !== process.pid && alive(holder)) {
        throw new UserError(`another mailcerts process (pid ${holder}) is working on ${stateDir}; wait for it to finish`);
      }
      await rm(path, { force: true }); // left by a process that died
    }
  }
  throw new UserError(`cannot take the lock ${path}; remove it if no mailcerts process is running`);
}
