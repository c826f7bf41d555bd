import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeChain } from '../helpers/pki.js';

const dir = join(inject('workDir'), 'crash');
const custom = join(dir, 'custom');
const certs = join(dir, 'certs');
const env = { ACME_DOMAINS: 'crash.example.test', CUSTOM_CERTS_DIR: custom, CERTS_DIR: certs, STATE_DIR: join(dir, 'state'), DOCKER_RELOAD: 'false', LOG_LEVEL: 'warn' };
const STABLE = ['fullchain.pem', 'cert.pem', 'chain.pem', 'privkey.pem', 'privkey-fullchain.pem'];
const WANTED_PUBLISHES = 200;

function matches(certPem: string, keyPem: string): boolean {
  return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
}

function drop(pair: { fullchain: string; key: string }) {
  for (const [name, data] of [['fullchain.pem', pair.fullchain], ['privkey.pem', pair.key]] as const) {
    writeFileSync(join(custom, `.${name}.tmp`), data);
    renameSync(join(custom, `.${name}.tmp`), join(custom, name));
  }
}

describe('crash safety of the published set', () => {
  it(`SIGKILL at random moments during ${WANTED_PUBLISHES}+ publishes: a reader never sees a mismatched or missing pair`, { timeout: 600_000 }, async () => {
    mkdirSync(custom, { recursive: true });
    const pairs = Array.from({ length: 5 }, () => makeChain(['crash.example.test']));
    drop(pairs[0]!);
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    // How long a whole run takes here (the slowest of three): kills are spread over that window, so
    // many land mid-publish. The estimate grows when too few runs get as far as a publish (a loaded machine).
    let runMs = 0;
    for (const pair of [pairs[1]!, pairs[2]!, pairs[3]!]) {
      drop(pair);
      const t0 = Date.now();
      expect((await runCli(['run', '--once'], env)).code).toBe(0);
      runMs = Math.max(runMs, Date.now() - t0);
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

    let publishes = 0;
    let killed = 0;
    let runs = 0;
    for (let i = 2; publishes < WANTED_PUBLISHES && runs < 1_000; i++) {
      drop(pairs[i % pairs.length]!);
      const before = readlinkSync(join(certs, '..data'));
      const killAfter = runMs * (0.5 + Math.random() * 0.9); // from the middle of start-up to past the end
      const r = await runCli(['run', '--once'], env, { onStart: (pid) => setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }, killAfter) });
      runs++;
      if (r.code === null) killed++;
      if (readlinkSync(join(certs, '..data')) !== before) publishes++;
      if (runs % 25 === 0 && publishes < runs / 4) runMs = Math.round(runMs * 1.2);
    }
    stop = true;
    await reader;

    expect(publishes).toBeGreaterThanOrEqual(WANTED_PUBLISHES);
    expect(killed).toBeGreaterThan(WANTED_PUBLISHES / 4); // many runs really were killed, some of them mid-publish
    expect(seen.reads).toBeGreaterThan(1_000);
    expect(seen.mismatched).toEqual([]);
    expect(seen.missing).toEqual([]);
    console.log(`crash safety: ${runs} runs (a whole run takes ${measuredMs} ms; kills spread over ${runMs} ms), ${killed} killed by SIGKILL, ${publishes} publishes, ${seen.reads} reads, 0 mismatched, 0 missing`);

    // A clean run afterwards tidies what the killed ones left (versions, temp links, the lock).
    drop(pairs[(runs + 1) % pairs.length]!);
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    expect(readdirSync(certs).filter((e) => /^\.\.\d{8}_/.test(e))).toHaveLength(2);
    expect(readdirSync(certs).filter((e) => e.startsWith('..tmp'))).toEqual([]);
    // No lock, complete or half-written, is left behind by the killed runs.
    expect(readdirSync(join(dir, 'state')).filter((e) => e.startsWith('pass.lock'))).toEqual([]);
  });
});
