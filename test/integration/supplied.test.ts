import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import { type CliRun, logsWith, runCli } from '../helpers/cli.js';
import { makeChain } from '../helpers/pki.js';

const dir = join(inject('workDir'), 'supplied');
const custom = join(dir, 'custom');
const certs = join(dir, 'certs');
const env = {
  ACME_DOMAINS: 'mail.corp.example',
  CUSTOM_CERTS_DIR: custom,
  CERTS_DIR: certs,
  STATE_DIR: join(dir, 'state'),
  DOCKER_RELOAD: 'false',
};

/** Runs the daemon while `act` drives it; stops it with SIGTERM afterwards. */
async function withDaemon(act: (lines: Record<string, unknown>[]) => Promise<void>): Promise<CliRun> {
  const lines: Record<string, unknown>[] = [];
  let pid = 0;
  const running = runCli(['run'], env, {
    onLine: (l, p) => {
      lines.push(l);
      pid = p;
    },
  });
  while (!lines.some((l) => l.msg === 'waiting for the next pass')) await delay(50);
  await act(lines);
  process.kill(pid, 'SIGTERM');
  return running;
}

async function until(
  lines: Record<string, unknown>[],
  pred: (l: Record<string, unknown>) => boolean,
  ms = 15_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!lines.some(pred)) {
    if (Date.now() > end) throw new Error('timed out');
    await delay(50);
  }
}

describe('certificates supplied by the user (CUSTOM_CERTS_DIR, watched)', () => {
  it('a pair dropped by a slow writer (key last, in chunks) is published once, after it settled', async () => {
    mkdirSync(custom, { recursive: true });
    const chain = makeChain(['mail.corp.example']);
    const r = await withDaemon(async (lines) => {
      writeFileSync(join(custom, 'fullchain.pem'), chain.fullchain);
      const key = chain.key;
      const step = Math.ceil(key.length / 4);
      for (let i = 0; i < key.length; i += step) {
        appendFileSync(join(custom, 'privkey.pem'), key.slice(i, i + step));
        await delay(400);
      }
      await until(lines, (l) => l.msg === 'published the supplied certificate');
      await delay(3_000); // any late duplicate would show up here
    });
    expect(r.code).toBe(0);
    expect(logsWith(r, { msg: 'published the supplied certificate' })).toHaveLength(1);
    // The only refusal is the start-up pass over the still empty folder; the half-written pair never is.
    expect(logsWith(r, { msg: 'supplied certificate refused' }).map((l) => l.error)).toEqual([
      `no certificate yet: drop fullchain.pem and privkey.pem into ${custom}`,
    ]);
    expect(new X509Certificate(readFileSync(join(certs, 'cert.pem'))).serialNumber).toBe(
      new X509Certificate(chain.leaf).serialNumber,
    );
  });

  it('a mismatched pair or a certificate for other names is refused, reported, never published', async () => {
    const before = readFileSync(join(certs, 'fullchain.pem'), 'utf8');
    const a = makeChain(['mail.corp.example']);
    const other = makeChain(['elsewhere.example']);
    const r = await withDaemon(async (lines) => {
      writeFileSync(join(custom, 'fullchain.pem'), a.fullchain);
      writeFileSync(join(custom, 'privkey.pem'), a.otherKey);
      await until(lines, (l) => l.msg === 'supplied certificate refused');
      writeFileSync(join(custom, 'fullchain.pem'), other.fullchain);
      writeFileSync(join(custom, 'privkey.pem'), other.key);
      await until(lines, (l) => l.msg === 'supplied certificate refused' && String(l.error).includes('does not cover'));
    });
    const refused = logsWith(r, { msg: 'supplied certificate refused' }).map((l) => l.error);
    expect(refused[0]).toMatch(/the private key does not match the certificate; nothing was published$/);
    expect(refused.at(-1)).toMatch(
      /does not cover mail.corp.example \(it has elsewhere.example\); nothing was published$/,
    );
    expect(logsWith(r, { step: 'publish' })).toHaveLength(0);
    expect(readFileSync(join(certs, 'fullchain.pem'), 'utf8')).toBe(before);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout)[0];
    expect(status.lastError).toMatch(/does not cover/);
  });
});
