import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeChain } from '../helpers/pki.js';

const dir = join(inject('workDir'), 'crash');
const custom = join(dir, 'custom');
const certs = join(dir, 'certs');
const env = {
  ACME_DOMAINS: 'crash.example.test',
  CUSTOM_CERTS_DIR: custom,
  CERTS_DIR: certs,
  STATE_DIR: join(dir, 'state'),
  DOCKER_RELOAD: 'false',
  LOG_LEVEL: 'warn',
};
const STABLE = ['fullchain.pem', 'cert.pem', 'chain.pem', 'privkey.pem', 'privkey-fullchain.pem'];
/** What the runs must reach: kills that landed mid-publish (before and after the ..data swap), publishes, kills. */
const WANTED = { midPublish: 40, beforeSwap: 15, afterSwap: 10, publishes: 40, killed: 50 };
/** One run in this many is killed at a random moment of the whole run (start-up included), as a first pass would be. */
const RANDOM_EVERY = 5;

function matches(certPem: string, keyPem: string): boolean {
  return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
}

function drop(pair: { fullchain: string; key: string }) {
  for (const [name, data] of [
    ['fullchain.pem', pair.fullchain],
    ['privkey.pem', pair.key],
  ] as const) {
    writeFileSync(join(custom, `.${name}.tmp`), data);
    renameSync(join(custom, `.${name}.tmp`), join(custom, name));
  }
}

const isVersion = (entry: string) => /^\.\.\d{8}_\d{6}\.\d{3}_[0-9a-f]{6}$/.test(entry);
type Snapshot = { data: string; versions: string[]; tmp: string[] };
function snapshot(): Snapshot {
  const entries = readdirSync(certs);
  return {
    data: readlinkSync(join(certs, '..data')),
    versions: entries.filter(isVersion),
    tmp: entries.filter((e) => e.startsWith('..tmp_')),
  };
}
/**
 * Where in its publish a killed run was, from what it left in CERTS_DIR: nothing yet; its version
 * written (or being written) but ..data not swapped; swapped but the old version and temp links not
 * yet pruned; or the whole publish done (exactly the new and the previous version left).
 */
function killedAt(
  before: Snapshot,
  after: Snapshot,
): 'before the publish' | 'before the swap' | 'after the swap' | 'after the publish' {
  if (after.data === before.data)
    return after.versions.some((v) => !before.versions.includes(v)) ? 'before the swap' : 'before the publish';
  const tidy = after.versions.length === 2 && after.versions.includes(before.data) && after.tmp.length === 0;
  return tidy ? 'after the publish' : 'after the swap';
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('crash safety of the published set', () => {
  it(`SIGKILL mid-publish (${WANTED.midPublish}+ times) and at random moments: a reader never sees a mismatched or missing pair`, {
    timeout: 600_000,
  }, async () => {
    mkdirSync(custom, { recursive: true });
    const pairs = Array.from({ length: 5 }, () => makeChain(['crash.example.test']));
    drop(pairs[0]!);
    expect((await runCli(['run', '--once'], env)).code).toBe(0);

    // Every change in CERTS_DIR, timed from the start of the current run. The publish of a run
    // begins when its version directory appears and ends with the last change (the old version pruned).
    let run:
      | { t0: number; before: Snapshot; events: { ms: number; name: string }[]; onPublish?: () => void }
      | undefined;
    const watcher = watch(certs, (_type, name) => {
      if (!run || !name) return;
      run.events.push({ ms: performance.now() - run.t0, name });
      if (run.onPublish && isVersion(name) && !run.before.versions.includes(name)) {
        run.onPublish();
        run.onPublish = undefined;
      }
    });
    const publishTimes = () => {
      const events = run!.events;
      const begin = events.find((e) => isVersion(e.name) && !run!.before.versions.includes(e.name));
      return begin ? { begins: begin.ms, takes: events.at(-1)!.ms - begin.ms } : undefined;
    };
    const runOnce = async (kill?: (pid: number) => void) => {
      run = { t0: 0, before: snapshot(), events: [] };
      const current = run;
      const r = await runCli(['run', '--once'], env, {
        onStart: (pid) => {
          current.t0 = performance.now();
          kill?.(pid);
        },
      });
      await new Promise((res) => setTimeout(res, 5)); // the last change events
      return {
        ...r,
        ms: performance.now() - current.t0,
        before: current.before,
        after: snapshot(),
        publish: publishTimes(),
      };
    };
    const sigkill = (pid: number) => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };

    // How long a whole run takes here (the slowest of three), when its publish begins and how long it takes.
    let runMs = 0;
    const begins: number[] = [];
    const takes: number[] = [];
    for (const pair of [pairs[1]!, pairs[2]!, pairs[3]!]) {
      drop(pair);
      const r = await runOnce();
      expect(r.code).toBe(0);
      expect(r.publish, 'each calibration run publishes').toBeDefined();
      runMs = Math.max(runMs, Math.round(r.ms));
      begins.push(r.publish!.begins);
      takes.push(r.publish!.takes);
    }
    const measuredMs = runMs;

    const seen = { reads: 0, mismatched: [] as string[], missing: [] as string[] };
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        try {
          // 1. What a careful reader does: resolve ..data once, read the pair from that version.
          const version = readlinkSync(join(certs, '..data'));
          const chain = readFileSync(join(certs, version, 'fullchain.pem'), 'utf8');
          const key = readFileSync(join(certs, version, 'privkey.pem'), 'utf8');
          if (!matches(chain, key)) seen.mismatched.push(`..data -> ${version}`);
          // 2. What Postfix reads: the one combined file.
          const combined = readFileSync(join(certs, 'privkey-fullchain.pem'), 'utf8');
          const combinedKey = combined.slice(0, combined.indexOf('-----BEGIN CERTIFICATE-----'));
          if (!matches(combined.slice(combinedKey.length), combinedKey)) seen.mismatched.push('privkey-fullchain.pem');
          // 3. Every stable name is always there.
          for (const name of STABLE) readFileSync(join(certs, name));
        } catch (err) {
          seen.missing.push((err as Error).message);
        }
        seen.reads++;
        await new Promise((r) => setTimeout(r, 0));
      }
    })();

    // Most runs are killed while they publish: 0 to (the publish's measured duration + 10 ms) after
    // their version directory appears. The others at a random moment, from the middle of start-up to past the end.
    const count = { 'before the publish': 0, 'before the swap': 0, 'after the swap': 0, 'after the publish': 0 };
    let publishes = 0;
    let killed = 0;
    let runs = 0;
    let windowMs = 0;
    const mid = () => count['before the swap'] + count['after the swap'];
    const enough = () =>
      mid() >= WANTED.midPublish &&
      count['before the swap'] >= WANTED.beforeSwap &&
      count['after the swap'] >= WANTED.afterSwap &&
      publishes >= WANTED.publishes &&
      killed > WANTED.killed;
    for (let i = 4; !enough() && runs < 400; i++) {
      drop(pairs[i % pairs.length]!);
      const atRandom = runs % RANDOM_EVERY === RANDOM_EVERY - 1;
      windowMs = Math.round(median(takes)) + 10;
      const r = await runOnce((pid) => {
        if (atRandom) setTimeout(() => sigkill(pid), runMs * (0.5 + Math.random() * 0.9));
        else run!.onPublish = () => setTimeout(() => sigkill(pid), Math.random() * windowMs);
      });
      runs++;
      if (r.after.data !== r.before.data) publishes++;
      if (r.code === null) {
        killed++;
        count[killedAt(r.before, r.after)]++;
      }
      // A publish seen whole (not killed, or killed after it) refines the estimate: a loaded machine publishes slower.
      if (r.publish && (r.code !== null || killedAt(r.before, r.after) === 'after the publish')) {
        begins.push(r.publish.begins);
        takes.push(r.publish.takes);
      }
    }
    watcher.close();
    stop = true;
    await reader;

    console.log(
      `crash safety: ${runs} runs (a whole run takes ${measuredMs} ms, its publish begins ${Math.round(median(begins))} ms in and takes ${Math.round(median(takes))} ms; ` +
        `kills 0-${windowMs} ms after a publish began, 1 run in ${RANDOM_EVERY} at random over ${runMs} ms), ${killed} killed by SIGKILL ` +
        `(${mid()} mid-publish: ${count['before the swap']} before the ..data swap, ${count['after the swap']} after it; ${count['before the publish']} before a publish, ${count['after the publish']} after one), ` +
        `${publishes} publishes, ${seen.reads} reads, ${seen.mismatched.length} mismatched, ${seen.missing.length} missing`,
    );
    expect(mid()).toBeGreaterThanOrEqual(WANTED.midPublish);
    expect(count['before the swap']).toBeGreaterThanOrEqual(WANTED.beforeSwap);
    expect(count['after the swap']).toBeGreaterThanOrEqual(WANTED.afterSwap);
    expect(publishes).toBeGreaterThanOrEqual(WANTED.publishes);
    expect(killed).toBeGreaterThan(WANTED.killed);
    expect(seen.reads).toBeGreaterThan(1_000);
    expect(seen.mismatched).toEqual([]);
    expect(seen.missing).toEqual([]);

    // A clean run afterwards tidies what the killed ones left (versions, temp links, the lock). Its
    // pair is a new one: with the live pair it would publish nothing, and so prune nothing.
    drop(makeChain(['crash.example.test']));
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    expect(readdirSync(certs).filter((e) => /^\.\.\d{8}_/.test(e))).toHaveLength(2);
    expect(readdirSync(certs).filter((e) => e.startsWith('..tmp'))).toEqual([]);
    // No lock, complete or half-written, is left behind by the killed runs.
    expect(readdirSync(join(dir, 'state')).filter((e) => e.startsWith('pass.lock'))).toEqual([]);
  });
});
