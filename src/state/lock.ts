import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { UserError } from '../util/errors.js';
import { processAlive as alive } from '../util/process.js';
import { type Clock, preciseWallMs, systemClock } from '../util/clock.js';
import { every, poll } from '../util/retry.js';
import { Cancelled } from '../util/error-codes.js';

/**
 * One pass at a time per STATE_DIR, across processes, containers and hosts that share the volume.
 *
 * STATE_DIR/pass.lock is created exclusively, complete (written aside, then hard-linked into place),
 * and names its holder: a random owner id, the host, the pid and the pid namespace. The holder rewrites it every HEARTBEAT_MS. A waiter breaks
 * the lock when:
 *   - the holder is in the waiter's own pid namespace and that pid is gone (a crash on this host);
 *   - or the file has not changed for STALE_MS while the waiter watched it (a holder on another
 *     host or in another container that died). Only change is compared, never clocks, so hosts
 *     whose clocks differ still agree.
 * Two containers are both PID 1 in their own namespaces: the pid alone proves nothing, which is why
 * the namespace is part of the identity. A holder that finds its file taken over stops before it
 * publishes (check).
 */
export const HEARTBEAT_MS = 2_000;
export const STALE_MS = 30_000;
const RECORD_SIZE = 320; // fixed, so a heartbeat rewrites the file in place in one write

interface Holder {
  owner: string;
  host: string;
  pid: number;
  /** boot id and pid namespace: where a pid means something. */
  ns: string;
  since: string;
  beat: number;
}

export interface PassLock {
  /**
   * Reads the lock file now and throws when another process took it over (this one looked dead):
   * called right before every publish, rollback and state write, so a holder that stalled for
   * longer than STALE_MS writes nothing once it wakes.
   */
  check(what: string): Promise<void>;
  release(): Promise<void>;
}

function localNamespace(): string {
  const read = (f: () => string) => {
    try {
      return f().trim();
    } catch {
      return '?';
    }
  };
  return `${read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'))}/${read(() => readlinkSync('/proc/self/ns/pid'))}`;
}

function encode(h: Holder): string {
  const json = JSON.stringify(h);
  return json.length >= RECORD_SIZE ? `${json}\n` : `${json}${' '.repeat(RECORD_SIZE - json.length - 1)}\n`;
}

function decode(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Holder;
    return typeof h.owner === 'string' && typeof h.pid === 'number' ? h : undefined;
  } catch {
    return undefined;
  }
}

const describeHolder = (h: Holder | undefined) =>
  h ? `host ${h.host}, pid ${h.pid}, since ${h.since}` : 'unknown holder';

export interface LockOptions {
  /** How long to wait for a live holder before giving up. */
  waitMs: number;
  log?: Logger;
  signal?: AbortSignal;
  staleMs?: number;
  heartbeatMs?: number;
  /** How the waiter reads time and sleeps (a test's fake clock). */
  clock?: Clock;
}

/** Takes STATE_DIR/pass.lock, waiting up to waitMs for another live holder. */
export async function acquireLock(stateDir: string, opts: LockOptions): Promise<PassLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'pass.lock');
  const clock = opts.clock ?? systemClock;
  const me: Holder = {
    owner: randomUUID(),
    host: hostname(),
    pid: process.pid,
    ns: localNamespace(),
    since: new Date().toISOString(),
    beat: 0,
  };
  const deadline = clock.now() + opts.waitMs;
  await sweepTempFiles(stateDir, me.ns);
  let announced = false;
  const r = await poll(lockTaker(path, me, opts, clock), {
    until: (t) => 'taken' in t,
    backoff: every(250),
    deadline,
    signal: opts.signal,
    clock,
    onWait: (t) => {
      if (announced || !t || !('holder' in t)) return;
      announced = true;
      opts.log?.info(
        { step: 'lock', holder: describeHolder(t.holder) },
        'waiting for another mailcerts to finish its pass',
      );
    },
  });
  if (r.value && 'taken' in r.value) return r.value.taken;
  if (!r.ok && r.stopped === 'aborted') throw new Cancelled('waiting for the pass lock');
  const holder = r.value && 'holder' in r.value ? r.value.holder : undefined;
  throw new UserError(
    `another mailcerts (${describeHolder(holder)}) is working on ${stateDir}; try again when it has finished`,
  );
}

/**
 * One look at the lock: takes it, breaking it first when its holder died or stopped beating (the
 * file unchanged for staleMs across looks), or names the live holder.
 */
function lockTaker(
  path: string,
  me: Holder,
  opts: LockOptions,
  clock: Clock,
): () => Promise<{ taken: PassLock } | { holder: Holder | undefined }> {
  const staleMs = opts.staleMs ?? STALE_MS;
  let watched: { text: string; since: number } | undefined;
  return async () => {
    for (;;) {
      if (await createComplete(path, me)) {
        opts.log?.debug({ step: 'lock', owner: me.owner, at: preciseWallMs() }, 'pass lock taken');
        return { taken: holdLock(path, me, opts) };
      }
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw new UserError(
          `cannot read the pass lock ${path} (${(err as NodeJS.ErrnoException).code}); if no mailcerts is running, remove it`,
        );
      }
      const holder = decode(text);
      const now = clock.now();
      if (holder && holder.ns === me.ns && !alive(holder.pid)) {
        opts.log?.warn(
          { step: 'lock', holder: describeHolder(holder) },
          'taking over the pass lock of a process that died',
        );
        await breakLock(path, text, me);
        continue;
      }
      if (!watched || watched.text !== text) watched = { text, since: now };
      else if (now - watched.since >= staleMs) {
        opts.log?.warn(
          {
            step: 'lock',
            holder: describeHolder(holder),
            unchangedFor: `${Math.round((now - watched.since) / 1000)}s`,
          },
          'taking over a pass lock whose holder stopped its heartbeat',
        );
        await breakLock(path, text, me);
        watched = undefined;
        continue;
      }
      return { holder };
    }
  };
}

/**
 * Creates the lock file with its whole content, or returns false when it exists. The content is
 * written to a temp file first and hard-linked into place (link(2) fails if the name exists, on
 * NFS too): a process killed half-way never leaves an empty lock that others would have to wait
 * out.
 */
async function createComplete(path: string, me: Holder): Promise<boolean> {
  const tmp = `${path}.${tempTag(me.ns)}.${me.pid}.${me.owner}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(encode(me));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** A short tag of a pid namespace, so that temp files of dead processes here can be told apart. */
function tempTag(ns: string): string {
  let h = 0;
  for (const c of ns) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(16);
}

/**
 * Removes temp files left by processes of this pid namespace that were killed between write and
 * link, or while breaking a stale lock (the renamed-aside file).
 */
async function sweepTempFiles(stateDir: string, ns: string): Promise<void> {
  const tag = tempTag(ns);
  for (const f of await readdir(stateDir).catch(() => [] as string[])) {
    const m = f.match(/^pass\.lock\.(?:broken\.)?([0-9a-f]+)\.(\d+)\.[0-9a-f-]+\.tmp$/);
    if (m && m[1] === tag && !alive(Number(m[2]))) await rm(join(stateDir, f), { force: true });
  }
}

/**
 * Removes the lock file only if it still holds what was judged stale: it is renamed aside first
 * (one rename wins), and put back if a new holder had taken it in between.
 */
async function breakLock(path: string, staleText: string, me: Holder): Promise<void> {
  const aside = `${path}.broken.${tempTag(me.ns)}.${me.pid}.${randomUUID()}.tmp`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else broke or released it
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== staleText) await link(aside, path).catch(() => undefined); // a live holder's file: restore it
  await rm(aside, { force: true });
}

function holdLock(path: string, me: Holder, opts: LockOptions): PassLock {
  let lost: string | undefined;
  let beating = Promise.resolve();
  const beat = async () => {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (decode(text)?.owner !== me.owner) {
      lost = decode(text) ? `taken over by ${describeHolder(decode(text))}` : 'the lock file is gone';
      clearInterval(timer);
      opts.log?.error({ step: 'lock', problem: lost }, 'lost the pass lock; stopping before any publish');
      return;
    }
    me.beat++;
    const fh = await open(path, 'r+');
    try {
      await fh.write(encode(me), 0);
    } finally {
      await fh.close();
    }
  };
  const timer = setInterval(() => {
    beating = beating.then(beat).catch(() => undefined);
  }, opts.heartbeatMs ?? HEARTBEAT_MS);
  timer.unref();
  return {
    async check(what: string) {
      if (!lost) {
        const text = await readFile(path, 'utf8').catch(() => '');
        const holder = decode(text);
        if (holder?.owner !== me.owner)
          lost = holder ? `taken over by ${describeHolder(holder)}` : 'the lock file is gone';
      }
      if (lost)
        throw new UserError(
          `the pass lock was ${lost}, so this process no longer owns STATE_DIR; ${what} was not done`,
        );
    },
    async release() {
      clearInterval(timer);
      await beating;
      const text = await readFile(path, 'utf8').catch(() => '');
      if (decode(text)?.owner === me.owner) {
        opts.log?.debug({ step: 'lock', owner: me.owner, at: preciseWallMs() }, 'pass lock released');
        await rm(path, { force: true });
      }
    },
  };
}
