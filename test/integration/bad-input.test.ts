import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const work = join(inject('workDir'), 'bad-input');
const pebble = inject('pebble');
/** Where mailcerts listens when the CA's HTTP-01 connections (to pebble.httpPort) do not reach it. */
const elsewhere = await freePort();

describe('bad input changes nothing', () => {
  it('a bad configuration names each wrong variable, exits 78 and writes nothing', async () => {
    const certs = join(work, 'certs');
    const state = join(work, 'state');
    const r = await runCli(['run', '--once'], {
      ACME_DOMAINS: 'mail.example.com,no_good',
      HTTP01_PORT: '0',
      KEY_FILE_MODE: '0666',
      CERTS_DIR: certs,
      STATE_DIR: state,
    });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('ACME_DOMAINS: "no_good" is not a valid DNS name');
    expect(r.stderr).toContain('HTTP01_PORT: use a port number between 1 and 65535');
    expect(r.stderr).toContain('KEY_FILE_MODE: 0666 lets every local user read the private key');
    expect(r.stderr).toContain('Nothing was changed.');
    expect(existsSync(certs) || existsSync(state)).toBe(false);
  });

  it('a failed validation: the error names the certificate, the domain, the step and what the CA said; nothing is published', async () => {
    const certs = join(work, 'refused', 'certs');
    mkdirSync(certs, { recursive: true });
    // mailcerts listens on another port than the one the CA connects to, as when port 80 does not reach it.
    const env = pebbleEnv(join(work, 'refused'), {
      HTTP01_PORT: String(elsewhere),
      DOCKER_RELOAD: 'false',
      ACME_DOMAINS: 'unreachable.example.test',
    });
    const r = await runCli(['run', '--once'], env);
    expect(r.code).toBe(1);
    const failed = r.logs.find((l) => l.msg === 'issuance failed');
    expect(failed?.error, r.stdout).toMatch(
      /^certificate "unreachable.example.test", domain unreachable.example.test: authorization failed: the CA said: .+ \(connection\)\. The CA could not fetch http:\/\/unreachable.example.test\/.well-known\/acme-challenge\/…: make sure the name resolves to this host and that port 80 reaches mailcerts/,
    );
    expect(readdirSync(certs)).toEqual([]);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout)[0];
    expect(status.failures).toBe(1);
    expect(status.nextReason).toMatch(/backing off after 1 failure\(s\), next try in (59|60)s/);
  });

  it('never more than 3 failed validations per name and hour, even with renew --force', async () => {
    const env = pebbleEnv(join(work, 'limit'), {
      HTTP01_PORT: String(elsewhere),
      DOCKER_RELOAD: 'false',
      ACME_DOMAINS: 'limited.example.test',
    });
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['renew', '--force'], env);
      expect(logsWith(r, { step: 'order', msg: 'order created' }), `run ${i + 1}`).toHaveLength(1);
    }
    const fourth = await runCli(['renew', '--force'], env);
    expect(fourth.code).toBe(1);
    expect(logsWith(fourth, { step: 'order' })).toHaveLength(0);
    expect(logsWith(fourth, { msg: 'certificate failed' })[0]?.error).toMatch(
      /^3 failed validations of limited.example.test in the last hour; no new order before \S+ \(the CA's limit is per name\)$/,
    );
    const recorded = JSON.parse(readFileSync(join(work, 'limit', 'state', 'identifiers.json'), 'utf8'));
    expect(recorded['limited.example.test']).toHaveLength(3);
  });

  it('an unreachable CA: a clear error with a hint, and the backoff is recorded', async () => {
    const dir = join(work, 'unreachable');
    const r = await runCli(['run', '--once'], {
      ACME_DOMAINS: 'mail.example.test',
      ACME_DIRECTORY: 'https://127.0.0.1:1/dir',
      CERTS_DIR: join(dir, 'certs'),
      STATE_DIR: join(dir, 'state'),
      DOCKER_RELOAD: 'false',
      ACME_TIMEOUT: '2s',
    });
    expect(r.code).toBe(1);
    const failed = r.logs.find((l) => l.msg === 'issuance failed');
    expect(failed?.error).toMatch(
      /^the ACME account: account failed: no answer from the CA \(ECONNREFUSED\)\. Check that ACME_DIRECTORY is right and that this host can reach it/,
    );
    expect(existsSync(join(dir, 'certs', '..data'))).toBe(false);
  });

  it('a broken published file is reported and replaced by a fresh certificate', async () => {
    const dir = join(work, 'broken-published');
    const env = pebbleEnv(dir, { DOCKER_RELOAD: 'false', ACME_DOMAINS: 'fix.example.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const { readlinkSync } = await import('node:fs');
    const version = readlinkSync(join(dir, 'certs', '..data'));
    writeFileSync(
      join(dir, 'certs', version, 'privkey.pem'),
      '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n',
    );
    const r = await runCli(['run', '--once'], env);
    expect(r.code).toBe(0);
    expect(r.logs.find((l) => l.msg === 'published certificate is unusable')?.error, r.stdout).toMatch(
      /the private key cannot be parsed/,
    );
    expect(r.logs.find((l) => l.step === 'plan' && l.decision)?.reason).toMatch(/^the published files are unusable/);
    expect(readlinkSync(join(dir, 'certs', '..data'))).not.toBe(version);
  });

  it("a truncated ACME account key is reported as such, with what to do; it is not replaced behind the admin's back", async () => {
    const dir = join(work, 'account-key');
    const env = pebbleEnv(dir, { DOCKER_RELOAD: 'false', ACME_DOMAINS: 'account.example.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const keyPath = join(dir, 'state', 'accounts', `127.0.0.1_${new URL(pebble.directoryUrl).port}`, 'account.key');
    const key = readFileSync(keyPath, 'utf8');
    writeFileSync(keyPath, key.slice(0, 60)); // a disk that filled up, a copy that stopped
    const r = await runCli(['renew', '--force'], env);
    expect(r.code).toBe(1);
    expect(logsWith(r, { msg: 'issuance failed' })[0]?.error).toBe(
      `the ACME account key ${keyPath} is damaged (60 bytes, not a PEM private key); restore it from a backup of STATE_DIR, or move it away so that mailcerts registers a new account`,
    );
    expect(readFileSync(keyPath, 'utf8')).toBe(key.slice(0, 60));
  });

  it('damaged derived state (the DNS journal, containers.json) is moved aside by the pass, read around by status; the pass goes on', async () => {
    const dir = join(work, 'damaged-state');
    const env = pebbleEnv(dir, { DOCKER_RELOAD: 'false', ACME_DOMAINS: 'damaged.example.test' });
    mkdirSync(join(dir, 'state'), { recursive: true });
    writeFileSync(join(dir, 'state', 'containers.json'), '{"mail-postfix-1": {"at": "2026-');
    writeFileSync(join(dir, 'state', 'dns-records.json'), 'not json at all');
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'state' }).map((l) => String(l.file).split('/').pop())).toEqual(['dns-records.json']);
    // status only reads: it shows what it can and leaves the damaged file to the next deploy, which replaces it.
    const status = await runCli(['status', '--json'], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)[0].containers).toEqual({});
    expect(
      readdirSync(join(dir, 'state'))
        .filter((f) => f.includes('.corrupt-'))
        .map((f) => f.split('.corrupt-')[0]),
    ).toEqual(['dns-records.json']);
    expect(readFileSync(join(dir, 'state', 'containers.json'), 'utf8')).toBe('{"mail-postfix-1": {"at": "2026-');
  });
});
