import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { TEST_MARKER } from '../helpers/mailstack.js';
import { makeChain } from '../helpers/pki.js';

const run = promisify(execFile);
const work = join(inject('workDir'), 'publish-failures');

describe('a publish that cannot work is found before anything is ordered', () => {
  it('the image as its non-root user with KEY_FILE_GROUP=101: exit 78 naming group_add; with group_add the key is published to that group', async () => {
    const certs = join(work, 'image', 'certs');
    const custom = join(work, 'image', 'custom');
    mkdirSync(certs, { recursive: true });
    mkdirSync(custom, { recursive: true });
    chownSync(certs, 10001, 10001); // as a named volume would be for the image's user
    const chain = makeChain(['mail.example.test'], { days: 30 });
    writeFileSync(join(custom, 'fullchain.pem'), chain.fullchain);
    writeFileSync(join(custom, 'privkey.pem'), chain.key);
    const mailcerts = (extra: string[], command: string[]) =>
      run('docker', [
        'run',
        '--rm',
        '--network',
        'none',
        '--label',
        'mailcerts.test=1',
        '--label',
        TEST_MARKER,
        ...extra,
        '-v',
        `${certs}:/etc/ssl/mail`,
        '-v',
        `${custom}:/custom:ro`,
        '-e',
        'ACME_DOMAINS=mail.example.test',
        '-e',
        'CUSTOM_CERTS_DIR=/custom',
        '-e',
        'KEY_FILE_GROUP=101',
        '-e',
        'KEY_FILE_MODE=0640',
        '-e',
        'DOCKER_RELOAD=false',
        inject('mailcertsImage'),
        ...command,
      ]).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );

    const refused = await mailcerts([], ['run', '--once']);
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain(
      'mailcerts (uid 10001) cannot give the key files to group 101 (KEY_FILE_GROUP): a process that is not root can only use groups it belongs to; add group_add: ["101"] to the mailcerts service, or unset KEY_FILE_GROUP',
    );
    expect(refused.stderr).toContain('Nothing was ordered or published.');
    expect(existsSync(join(certs, '..data'))).toBe(false);
    const check = await mailcerts([], ['check']);
    expect(check.stdout).toMatch(/^CERTS_DIR: FAILED: mailcerts \(uid 10001\) cannot give the key files to group 101/m);

    const allowed = await mailcerts(['--group-add', '101'], ['run', '--once']);
    expect(allowed.code, allowed.stderr).toBe(0);
    const key = statSync(join(certs, 'privkey.pem'));
    expect([key.gid, key.mode & 0o777]).toEqual([101, 0o640]);
  });
});

describe('an issued certificate is kept when its publish fails', () => {
  it('the publish fails after the order (CERTS_DIR made immutable): the certificate is kept, and the next attempt publishes it without ordering again', async () => {
    const dir = join(work, 'kept');
    const env = pebbleEnv(dir, { ACME_DOMAINS: 'kept.example.test', DOCKER_RELOAD: 'false' });
    mkdirSync(env.CERTS_DIR!, { recursive: true });
    let locked = false;
    let first: Awaited<ReturnType<typeof runCli>>;
    try {
      first = await runCli(['run', '--once'], env, {
        onLine: (l) => {
          if (l.msg === 'order created' && !locked) {
            locked = true;
            execFileSync('chattr', ['+i', env.CERTS_DIR!]); // the volume turns unwritable mid-order
          }
        },
      });
    } finally {
      execFileSync('chattr', ['-i', env.CERTS_DIR!]);
    }
    expect(first.code).toBe(1);
    const failure = logsWith(first, { msg: 'publish failed' })[0];
    expect(failure?.error).toMatch(
      /cannot write into CERTS_DIR .*EPERM.*; the new certificate \(serial ([0-9A-F]+)\) is kept in STATE_DIR and published at the next attempt$/,
    );
    const keptSerial = String(failure!.error).match(/serial ([0-9A-F]+)\)/)![1];
    expect(existsSync(join(env.STATE_DIR!, 'certificates', 'kept.example.test', 'pending.pem'))).toBe(true);

    // The backoff runs out (time passes): the next run publishes what was kept.
    const statePath = join(env.STATE_DIR!, 'certificates', 'kept.example.test', 'state.json');
    const s = JSON.parse(readFileSync(statePath, 'utf8'));
    writeFileSync(
      statePath,
      JSON.stringify({
        ...s,
        nextAttemptAt: new Date(Date.now() - 1000).toISOString(),
        failedAt: new Date(Date.now() - 61_000).toISOString(),
      }),
    );
    const second = await runCli(['run', '--once'], env);
    expect(second.code, second.stdout).toBe(0);
    expect(logsWith(second, { step: 'order' })).toHaveLength(0);
    expect(logsWith(second, { step: 'plan', decision: 'republish' })).toHaveLength(1);
    expect(new X509Certificate(readFileSync(join(env.CERTS_DIR!, 'cert.pem'))).serialNumber).toBe(keptSerial);
    expect(existsSync(join(env.STATE_DIR!, 'certificates', 'kept.example.test', 'pending.pem'))).toBe(false);
  });
});
