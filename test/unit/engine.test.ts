import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectStatus } from '../../src/report/status.js';
import { certStatePath, pendingPath } from '../../src/state/cert-state.js';
import { readContainers } from '../../src/state/containers.js';
import { DnsJournal } from '../../src/state/dns-journal.js';
import { registerSecrets } from '../../src/util/redact.js';
import { MAX_SMALL_FILE_BYTES } from '../../src/util/small-file.js';
import { captureLog, engineWith, FakeDeployer, FakeIssuer, testConfig } from '../helpers/fakes.js';
import { makeChain } from '../helpers/pki.js';
import { CONFIG_PARTS } from '../../src/parts.js';

/**
 * The engine's rules, in process, against a fake CA and a fake Docker side: what is kept, published
 * again, rolled back, and to which certificate a container's problem is attributed.
 */
const state = (dir: string, name: string) => JSON.parse(readFileSync(certStatePath(join(dir, 'state'), name), 'utf8'));
/** Time passes: the backoff of a certificate has run out. */
function backoffOver(dir: string, name: string) {
  const s = state(dir, name);
  const past = new Date(Date.now() - 1000).toISOString();
  writeFileSync(certStatePath(join(dir, 'state'), name), JSON.stringify({ ...s, nextAttemptAt: past, failedAt: past }));
}
const servedSerial = (certsDir: string) => new X509Certificate(readFileSync(join(certsDir, 'cert.pem'))).serialNumber;
const chattr = (flag: '+i' | '-i', path: string) => execFileSync('chattr', [flag, path]);

describe('a certificate that was issued is never thrown away', () => {
  it('a publish that fails keeps the new certificate in STATE_DIR; the next attempt publishes it without a new order', async () => {
    const { config, dir } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }]);
    const issuer = new FakeIssuer();
    const { log, lines } = captureLog();
    const engine = engineWith(config, issuer, new FakeDeployer([{ name: 'postfix', certs: ['mail'] }]), log);
    mkdirSync(config.certsDir, { recursive: true });
    chattr('+i', config.certsDir); // nothing can be created in it, not even by root
    let first: Awaited<ReturnType<typeof engine.pass>>;
    try {
      first = await engine.pass();
    } finally {
      chattr('-i', config.certsDir);
    }
    expect(first.certs[0]).toMatchObject({ ok: false, issued: true, published: false });
    expect(first.certs[0]!.error).toMatch(
      /cannot write into CERTS_DIR .* \(EPERM on mkdir\).*; the new certificate \(serial [0-9A-F]+\) is kept in STATE_DIR and published at the next attempt$/,
    );
    expect(existsSync(pendingPath(config.stateDir, 'mail'))).toBe(true);
    const kept = state(dir, 'mail');
    expect(kept).toMatchObject({ failedStep: 'publish', failures: 1, pending: { serial: expect.any(String) } });

    backoffOver(dir, 'mail');
    const second = await engine.pass();
    expect(issuer.orders).toHaveLength(1); // no second order
    expect(second.certs[0]).toMatchObject({ ok: true, decision: 'republish', issued: false, published: true });
    expect(servedSerial(config.certsDir)).toBe(kept.pending.serial);
    expect(existsSync(pendingPath(config.stateDir, 'mail'))).toBe(false); // deployed: nothing left to keep
    expect(lines.find((l) => l.msg === 'plan: republish')?.reason).toMatch(
      /^publishing again the certificate issued earlier \(serial [0-9A-F]+, not published\) instead of ordering a new one$/,
    );
  });
});

describe("a container's problem falls on the certificates it serves, and only on those", () => {
  it('TLS breaking in one container rolls back only its certificate; the kept one is retried later, not ordered again', async () => {
    const { config, dir } = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    const issuer = new FakeIssuer();
    const x = {
      name: 'x',
      certs: ['a'],
      answer: (_: unknown, call: number) =>
        call === 2
          ? {
              ok: false,
              problem: 'broken' as const,
              error: 'TLS fails with the published certificate after reload: imaps://x:993: handshake failure',
            }
          : { ok: true },
    };
    const deployer = new FakeDeployer([x, { name: 'y', certs: ['b'] }]);
    const engine = engineWith(config, issuer, deployer, captureLog().log);
    const aDir = join(config.certsDir, 'a');
    const bDir = join(config.certsDir, 'b');

    expect((await engine.pass()).ok).toBe(true);
    const v1 = { a: servedSerial(aDir), version: readlinkSync(join(aDir, '..data')) };
    const forced = await engine.pass({ force: true });
    expect(issuer.orders).toHaveLength(4);
    const [a, b] = forced.certs;
    expect(a).toMatchObject({ ok: false, issued: true });
    expect(a!.error).toMatch(
      /^serial [0-9A-F]+ was rolled back to [0-9A-F]+ because container x: TLS fails .*; the previous certificate is served again$/,
    );
    expect(b).toMatchObject({ ok: true, issued: true });
    expect(readlinkSync(join(aDir, '..data'))).toBe(v1.version);
    expect(servedSerial(aDir)).toBe(v1.a);
    expect(servedSerial(bDir)).toBe(deployer.calls[1]!.find((c) => c.name === 'b')!.leaf!.serialNumber);
    // After the rollback, the containers were asked to serve the old certificate of a and the new one of b.
    expect(deployer.calls[2]!.map((c) => [c.name, c.leaf?.serialNumber])).toEqual([
      ['a', v1.a],
      ['b', servedSerial(bDir)],
    ]);
    const rolled = state(dir, 'a');
    expect(rolled).toMatchObject({ failedStep: 'verify', failures: 1 });
    expect(existsSync(pendingPath(config.stateDir, 'a'))).toBe(true);

    backoffOver(dir, 'a');
    const retry = await engine.pass();
    expect(issuer.orders).toHaveLength(4); // the kept certificate, not a new order
    expect(retry.certs[0]).toMatchObject({ ok: true, decision: 'republish', published: true });
    expect(servedSerial(aDir)).toBe(rolled.pending.serial);
    expect(existsSync(pendingPath(config.stateDir, 'a'))).toBe(false);
  });

  it('an unreachable container rolls nothing back: the certificate stays published and is reported', async () => {
    const { config, dir } = testConfig([{ name: 'a', domains: ['mail.a.test'] }]);
    const x = {
      name: 'x',
      certs: ['a'],
      answer: (_: unknown, call: number) =>
        call === 2
          ? {
              ok: false,
              problem: 'unreachable' as const,
              error:
                "unreachable after reload, so not verified (not the certificate's fault): smtps://x:465: the TCP connection did not complete within 5s",
            }
          : { ok: true },
    };
    const deployer = new FakeDeployer([x]);
    const engine = engineWith(config, new FakeIssuer(), deployer, captureLog().log);
    await engine.pass();
    const r = await engine.pass({ force: true });
    const fresh = readlinkSync(join(config.certsDir, '..data'));
    expect(r.certs[0]).toMatchObject({ ok: false, published: true });
    expect(r.certs[0]!.error).toMatch(/^container x: unreachable after reload/);
    expect(deployer.calls).toHaveLength(2); // no second deploy of a rolled-back set
    expect(state(dir, 'a')).toMatchObject({ failedStep: 'deploy' });
    expect(readlinkSync(join(config.certsDir, '..data'))).toBe(fresh);
  });

  it("one certificate whose files cannot be read does not stop the others, orders nothing, and does not become another's default", async () => {
    const { config } = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    mkdirSync(join(config.certsDir, 'a', '..data'), { recursive: true });
    const issuer = new FakeIssuer();
    const deployer = new FakeDeployer([{ name: 'x', certs: ['a'] }]);
    const r = await engineWith(config, issuer, deployer, captureLog().log).pass();
    expect(r.certs[0]!.error).toMatch(/a\/\.\.data is not a symbolic link/);
    expect(r.certs[1]).toMatchObject({ ok: true, issued: true });
    expect(issuer.orders.map((o) => o.spec.name)).toEqual(['b']);
    // The containers are still told about a (unpublished: no leaf), so a container serving the
    // first certificate by default is not asked to serve b instead.
    expect(deployer.calls[0]!.map((c) => [c.name, c.leaf !== undefined])).toEqual([
      ['a', false],
      ['b', true],
    ]);
  });

  it('a handshake that fails for one name only rolls back that certificate, though the container serves both', async () => {
    const { config } = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    const x = {
      name: 'x',
      certs: ['a', 'b'],
      answer: (_: unknown, call: number) =>
        call === 2
          ? {
              ok: false,
              problem: 'broken' as const,
              blame: ['b'],
              error:
                'TLS fails with the published certificate after reload: imaps://x:993: handshake failure (for mail.b.test)',
            }
          : { ok: true },
    };
    const engine = engineWith(config, new FakeIssuer(), new FakeDeployer([x]), captureLog().log);
    await engine.pass();
    const before = { a: servedSerial(join(config.certsDir, 'a')), b: servedSerial(join(config.certsDir, 'b')) };
    const r = await engine.pass({ force: true });
    expect(r.certs[0]).toMatchObject({ ok: true });
    expect(r.certs[1]!.error).toMatch(/was rolled back/);
    expect(servedSerial(join(config.certsDir, 'a'))).not.toBe(before.a);
    expect(servedSerial(join(config.certsDir, 'b'))).toBe(before.b);
  });

  it('never rolls back to a certificate that has expired: a wrong verdict must not put an expired one back', async () => {
    const { config } = testConfig([{ name: 'a', domains: ['mail.a.test'] }]);
    const x = {
      name: 'x',
      certs: ['a'],
      answer: (_: unknown, call: number) =>
        call === 1
          ? {
              ok: false,
              problem: 'broken' as const,
              error: 'TLS fails with the published certificate after reload: smtps://x:465: handshake failure',
            }
          : { ok: true },
    };
    const { log, lines } = captureLog();
    const issuer = new FakeIssuer();
    const engine = engineWith(config, issuer, new FakeDeployer([x]), log);
    // The previous certificate, as another tool left it: expired.
    const { makeExpired } = await import('../helpers/pki.js');
    const old = makeExpired('mail.a.test');
    mkdirSync(config.certsDir, { recursive: true });
    writeFileSync(join(config.certsDir, 'fullchain.pem'), old.cert);
    writeFileSync(join(config.certsDir, 'privkey.pem'), old.key);
    const r = await engine.pass();
    expect(r.certs[0]).toMatchObject({ issued: true, published: true });
    expect(lines.find((l) => l.step === 'rollback')?.msg).toBe(
      'not rolled back: the previous certificate expired on 2020-01-02T00:00:00.000Z',
    );
    expect(r.certs[0]!.error).toMatch(/^container x: TLS fails with the published certificate/);
    expect(new X509Certificate(readFileSync(join(config.certsDir, 'cert.pem'))).validTo).not.toMatch(/2020/);
  });
});

describe('configuration changes', () => {
  it('adding a second certificate neither re-orders the first nor loses its rollback target', async () => {
    const one = testConfig([{ name: 'a', domains: ['mail.a.test'] }]);
    const issuer = new FakeIssuer();
    const quiet = captureLog().log;
    await engineWith(one.config, issuer, new FakeDeployer([]), quiet).pass();
    await engineWith(one.config, issuer, new FakeDeployer([]), quiet).pass({ force: true }); // the top now has a previous version
    const top = servedSerial(one.config.certsDir);
    // The admin adds a second certificate: the first one's own directory does not exist yet.
    const file = join(one.dir, 'mailcerts.json');
    writeFileSync(
      file,
      JSON.stringify({
        certificates: [
          { name: 'a', domains: ['mail.a.test'] },
          { name: 'b', domains: ['mail.b.test'] },
        ],
      }),
    );
    const { loadConfig } = await import('../../src/config/load.js');
    const two = loadConfig(
      { MAILCERTS_CONFIG: file, CERTS_DIR: one.config.certsDir, STATE_DIR: one.config.stateDir, DOCKER_SCOPE: 'test' },
      { inContainer: false, parts: CONFIG_PARTS },
    );
    const r = await engineWith(two, issuer, new FakeDeployer([]), quiet).pass();
    expect(r.certs[0]).toMatchObject({ ok: true, decision: 'keep', issued: false });
    expect(issuer.orders.map((o) => o.spec.name)).toEqual(['a', 'a', 'b']);
    expect(servedSerial(join(two.certsDir, 'a'))).toBe(top); // its own copy, filled from the top
    // A rollback restores the top's previous version, and gives the own copy the same files.
    const { rollbackPublished } = await import('../../src/publish/publisher.js');
    const back = await rollbackPublished(two, two.certificates[0]!, new Date());
    expect('published' in back && back.published?.bundle.serial).toBe(servedSerial(two.certsDir));
    expect(servedSerial(join(two.certsDir, 'a'))).toBe(servedSerial(two.certsDir));
    expect(servedSerial(two.certsDir)).not.toBe(top);
  });
});

describe('the SNI files', () => {
  it('list the published certificates only: one that fails to issue leaves the others and the map as they were', async () => {
    const { config } = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    const issuer = new FakeIssuer();
    issuer.failWith = new Error('the CA said no');
    issuer.failFor = ['b'];
    const engine = engineWith(config, issuer, new FakeDeployer([]), captureLog().log);
    const r = await engine.pass();
    expect(r.certs.map((c) => c.ok)).toEqual([true, false]);
    const map = () =>
      readFileSync(join(config.certsDir, 'sni', 'postfix.map'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'));
    expect(map()).toEqual(['mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem']);
    const version = readlinkSync(join(config.certsDir, 'sni', '..data'));
    backoffOver(join(config.stateDir, '..'), 'b');
    await engine.pass(); // b fails again: nothing of the set changes
    expect(readlinkSync(join(config.certsDir, 'sni', '..data'))).toBe(version);
    issuer.failWith = undefined;
    backoffOver(join(config.stateDir, '..'), 'b');
    await engine.pass();
    expect(map()).toEqual([
      'mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem',
    ]);
  });
});

describe('the SNI files follow what is published', () => {
  it('a name added to a certificate whose reissue fails is neither in the map nor probed', async () => {
    const one = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    const issuer = new FakeIssuer();
    await engineWith(one.config, issuer, new FakeDeployer([]), captureLog().log).pass();
    const file = join(one.dir, 'mailcerts.json');
    writeFileSync(
      file,
      JSON.stringify({
        certificates: [
          { name: 'a', domains: ['mail.a.test', 'mail2.a.test'] },
          { name: 'b', domains: ['mail.b.test'] },
        ],
      }),
    );
    const { loadConfig } = await import('../../src/config/load.js');
    const grown = loadConfig(
      { MAILCERTS_CONFIG: file, CERTS_DIR: one.config.certsDir, STATE_DIR: one.config.stateDir, DOCKER_SCOPE: 'test' },
      { inContainer: false, parts: CONFIG_PARTS },
    );
    issuer.failWith = new Error('the CA said no');
    const deployer = new FakeDeployer([{ name: 'x', certs: ['a', 'b'] }]);
    const r = await engineWith(grown, issuer, deployer, captureLog().log).pass({ force: true });
    expect(r.certs.map((c) => c.ok)).toEqual([false, false]);
    const map = readFileSync(join(grown.certsDir, 'sni', 'postfix.map'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(map).toEqual([
      'mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem',
    ]);
    const { expectationsFor } = await import('../../src/deploy/deployer.js');
    const served = [
      {
        name: 'a',
        domains: grown.certificates[0]!.domains,
        leaf: new X509Certificate(readFileSync(join(grown.certsDir, 'a', 'cert.pem'))),
      },
    ];
    expect(expectationsFor({ labels: { 'mailcerts.certificates': '*' } }, served).map((x) => x.name)).toEqual([
      'mail.a.test',
      '(no SNI)',
    ]);
  });

  it('a rolled-back certificate takes its names out of the map again', async () => {
    const one = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    const issuer = new FakeIssuer();
    const x = {
      name: 'x',
      certs: ['a', 'b'],
      answer: (_: unknown, call: number) =>
        call === 1
          ? {
              ok: false,
              problem: 'broken' as const,
              blame: ['a'],
              error:
                'TLS fails with the published certificate after reload: imaps://x:993: handshake failure (SNI mail2.a.test)',
            }
          : { ok: true },
    };
    await engineWith(one.config, issuer, new FakeDeployer([]), captureLog().log).pass();
    const file = join(one.dir, 'mailcerts.json');
    writeFileSync(
      file,
      JSON.stringify({
        certificates: [
          { name: 'a', domains: ['mail.a.test', 'mail2.a.test'] },
          { name: 'b', domains: ['mail.b.test'] },
        ],
      }),
    );
    const { loadConfig } = await import('../../src/config/load.js');
    const grown = loadConfig(
      { MAILCERTS_CONFIG: file, CERTS_DIR: one.config.certsDir, STATE_DIR: one.config.stateDir, DOCKER_SCOPE: 'test' },
      { inContainer: false, parts: CONFIG_PARTS },
    );
    const deployer = new FakeDeployer([x]);
    const r = await engineWith(grown, issuer, deployer, captureLog().log).pass();
    expect(r.certs[0]!.error).toMatch(/was rolled back/);
    const map = readFileSync(join(grown.certsDir, 'sni', 'postfix.map'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(map).toEqual([
      'mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem',
    ]);
  });
});

describe('checks that fail for a certificate that is not due', () => {
  it('a failed DNS preflight on the first pass is reported, and does not mark the certificate failed', async () => {
    const { config, dir } = testConfig(
      [{ name: 'w', domains: ['example.test', '*.example.test'], challenge: 'dns-01' }],
      { ACME_CHALLENGE: 'dns-01' },
    );
    const issuer = new FakeIssuer();
    await engineWith(config, issuer, new FakeDeployer([]), captureLog().log).pass();
    issuer.preflightError = new Error('Cloudflare: the API token is not valid (code 1000: Invalid API Token)');
    const { log, lines } = captureLog();
    const r = await engineWith(config, issuer, new FakeDeployer([]), log).pass(); // a restart: the first pass checks DNS credentials
    expect(r.certs[0]).toMatchObject({ ok: true, decision: 'keep' });
    expect(state(dir, 'w').failures).toBe(0);
    expect(lines.find((l) => l.step === 'preflight')).toMatchObject({
      level: 'warn',
      error: expect.stringMatching(/Invalid API Token/),
    });
  });
});

describe('damaged state never stops mailcerts', () => {
  it('a damaged certificate state, containers.json or DNS journal is moved aside with a warning, and the pass goes on', async () => {
    const { config } = testConfig([
      { name: 'a', domains: ['mail.a.test'] },
      { name: 'b', domains: ['mail.b.test'] },
    ]);
    const issuer = new FakeIssuer();
    const engine = engineWith(config, issuer, new FakeDeployer([{ name: 'x', certs: ['a', 'b'] }]), captureLog().log);
    expect((await engine.pass()).ok).toBe(true);
    writeFileSync(certStatePath(config.stateDir, 'a'), '{"failures": 1, "deployedDig'); // truncated
    writeFileSync(join(config.stateDir, 'containers.json'), '{"x": {"at": 5}}'); // not the expected shape
    writeFileSync(join(config.stateDir, 'dns-records.json'), '\0\0\0'); // an HTTP-01-only setup
    const { log, lines } = captureLog();
    const r = await engineWith(config, issuer, new FakeDeployer([{ name: 'x', certs: ['a', 'b'] }]), log).pass();
    expect(r.certs.map((c) => c.ok)).toEqual([true, true]);
    expect(issuer.orders).toHaveLength(2); // nothing re-ordered: the published files are what counts
    const damaged = lines
      .filter((l) => l.msg === 'a state file was damaged; it was moved aside and mailcerts starts afresh for it')
      .map((l) => String(l.file));
    expect(damaged).toEqual([certStatePath(config.stateDir, 'a')]);
    expect(
      readdirSync(join(config.stateDir, 'certificates', 'a')).some((f) => f.startsWith('state.json.corrupt-')),
    ).toBe(true);
    // The deploy that followed wrote a complete containers.json over the damaged one.
    expect(JSON.parse(readFileSync(join(config.stateDir, 'containers.json'), 'utf8')).x).toMatchObject({
      reloaded: true,
      serves: true,
    });
    // The readers of the other derived files recover the same way (status, the DNS-01 sweep).
    writeFileSync(join(config.stateDir, 'containers.json'), '{"x": {"at": 5}}');
    expect(await readContainers(config.stateDir, log)).toEqual({});
    expect(await new DnsJournal(config.stateDir, log).list()).toEqual([]);
    expect(
      readdirSync(config.stateDir)
        .filter((f) => f.includes('.corrupt-'))
        .map((f) => f.split('.corrupt-')[0])
        .sort(),
    ).toEqual(['containers.json', 'dns-records.json']);
  });
  it('published files still holding the deployed set are not checked again; a key swapped since is found', async () => {
    const { config } = testConfig([{ name: 'a', domains: ['mail.a.test'] }]);
    const issuer = new FakeIssuer();
    expect((await engineWith(config, issuer, new FakeDeployer([]), captureLog().log).pass()).ok).toBe(true);
    const kept = await engineWith(config, issuer, new FakeDeployer([]), captureLog().log).pass();
    expect(kept.certs[0]).toMatchObject({ ok: true, decision: 'keep' });
    // A valid key, but not the certificate's: the bytes differ from the deployed set, so the full check runs.
    const version = join(config.certsDir, readlinkSync(join(config.certsDir, '..data')));
    writeFileSync(join(version, 'privkey.pem'), makeChain(['other.test']).key);
    const { log, lines } = captureLog();
    const r = await engineWith(config, issuer, new FakeDeployer([]), log).pass();
    expect(lines.find((l) => l.msg === 'published certificate is unusable')?.error).toMatch(
      /the private key does not match the certificate/,
    );
    expect(r.certs[0]).toMatchObject({ ok: true, decision: 'issue' });
    expect(issuer.orders).toHaveLength(2);
  });

  it('a state file or a published file swollen past 1 MiB is not read into memory: the state is moved aside, the certificate is published again', async () => {
    const { config, dir } = testConfig([{ name: 'a', domains: ['mail.a.test'] }]);
    const issuer = new FakeIssuer();
    expect((await engineWith(config, issuer, new FakeDeployer([]), captureLog().log).pass()).ok).toBe(true);
    const serial = servedSerial(config.certsDir);
    writeFileSync(certStatePath(config.stateDir, 'a'), `{${' '.repeat(MAX_SMALL_FILE_BYTES)}}`);
    const chain = join(config.certsDir, readlinkSync(join(config.certsDir, '..data')), 'fullchain.pem');
    writeFileSync(
      chain,
      readFileSync(chain, 'utf8').repeat(1 + Math.ceil(MAX_SMALL_FILE_BYTES / readFileSync(chain).length)),
    );
    const { log, lines } = captureLog();
    const r = await engineWith(config, issuer, new FakeDeployer([]), log).pass();
    expect(r.certs[0], JSON.stringify(r.certs[0])).toMatchObject({ ok: true });
    expect(
      lines.find((l) => l.msg === 'a state file was damaged; it was moved aside and mailcerts starts afresh for it'),
    ).toMatchObject({ problem: `larger than ${MAX_SMALL_FILE_BYTES} bytes` });
    expect(JSON.stringify(lines)).toMatch(
      /fullchain\.pem holds more than the 1048576 bytes a certificate, key or state file may/,
    );
    expect(issuer.orders).toHaveLength(2); // what was published cannot be read: a new one replaces it
    expect(servedSerial(config.certsDir)).not.toBe(serial);
    expect(state(dir, 'a').failures).toBe(0);
  });
});

describe('one redaction for logs, state and status', () => {
  it('an error that echoes a secret is stored and shown with the secret replaced', async () => {
    const secret = 'cf-token-echoed-back-0123456789';
    registerSecrets([secret]);
    const { config, dir } = testConfig([{ name: 'a', domains: ['mail.a.test'] }]);
    const issuer = new FakeIssuer();
    issuer.failWith = new Error(
      `Cloudflare: listing zones: code 6003: Invalid request headers (Authorization: Bearer ${secret})`,
    );
    const { log, lines } = captureLog();
    const r = await engineWith(config, issuer, new FakeDeployer([]), log).pass();
    expect(r.certs[0]!.ok).toBe(false);
    const stored = readFileSync(certStatePath(config.stateDir, 'a'), 'utf8');
    expect(stored).not.toContain(secret);
    expect(state(dir, 'a').lastError).toContain('Bearer [redacted]');
    expect(JSON.stringify(await collectStatus(config))).not.toContain(secret);
    expect(JSON.stringify(lines)).not.toContain(secret);
  });
});

describe('dual certificates: a changed list of key types', () => {
  /** One certificate, mail, with these key types. */
  const certs = (keyType: string[]) => [{ name: 'mail', domains: ['mail.example.test'], keyType }];
  const files = (dir: string) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.pem'))
      .sort();
  const keyTypeOf = (path: string) => new X509Certificate(readFileSync(path)).publicKey.asymmetricKeyType;

  it('each variant keeps its own state when the list is reordered: the backing-off one still waits, the other is not held', async () => {
    const { config, dir } = testConfig(certs(['ec-256', 'rsa-2048']));
    const issuer = new FakeIssuer();
    const deployer = new FakeDeployer([{ name: 'postfix', certs: ['mail'] }]);
    expect((await engineWith(config, issuer, deployer, captureLog().log).pass()).ok).toBe(true);
    issuer.failWith = new Error('the CA said no');
    issuer.failKeyTypes = ['rsa-2048'];
    const forced = await engineWith(config, issuer, deployer, captureLog().log).pass({
      force: true,
      forceKeyType: 'rsa-2048',
    });
    expect(forced.certs.map((c) => `${c.keyType} ${c.ok}`)).toEqual(['ec-256 true', 'rsa-2048 false']);
    expect(state(dir, 'mail')).toMatchObject({ keyType: 'ec-256', failures: 0 });
    expect(state(dir, 'mail/rsa-2048')).toMatchObject({ keyType: 'rsa-2048', failures: 1 });

    const reordered = testConfig(certs(['rsa-2048', 'ec-256']), {}, dir).config;
    const orders = issuer.orders.length;
    const after = await engineWith(reordered, issuer, deployer, captureLog().log).pass();
    expect(after.certs.map((c) => `${c.keyType} ${c.decision}`)).toEqual(['rsa-2048 wait', 'ec-256 keep']);
    expect(issuer.orders).toHaveLength(orders);
    expect(state(dir, 'mail')).toMatchObject({ keyType: 'ec-256', failures: 0 });
    expect(state(dir, 'mail/rsa-2048')).toMatchObject({ failures: 1 });
  });

  it("a key type removed from the list takes its state with it; the first one moves into the certificate's folder", async () => {
    const { config, dir } = testConfig(certs(['ec-256', 'rsa-2048']));
    const issuer = new FakeIssuer();
    const deployer = new FakeDeployer([{ name: 'postfix', certs: ['mail'] }]);
    expect((await engineWith(config, issuer, deployer, captureLog().log).pass()).ok).toBe(true);
    const rsaOnly = testConfig(certs(['rsa-2048']), {}, dir).config;
    const after = await engineWith(rsaOnly, issuer, deployer, captureLog().log).pass();
    expect(after.ok).toBe(true);
    expect(issuer.orders).toHaveLength(2); // no new order: the RSA certificate it had
    expect(state(dir, 'mail')).toMatchObject({ keyType: 'rsa-2048' });
    expect(existsSync(join(config.stateDir, 'certificates', 'mail', 'rsa-2048'))).toBe(false);
    expect(keyTypeOf(join(config.certsDir, 'fullchain.pem'))).toBe('rsa');
    expect(files(config.certsDir)).toEqual([
      'cert.pem',
      'chain.pem',
      'fullchain.pem',
      'privkey-fullchain.pem',
      'privkey.pem',
    ]);
  });

  it('a single key type that changes (ec-256 → rsa-2048) keeps its state: the failures count on', async () => {
    const { config, dir } = testConfig(certs(['ec-256']));
    const issuer = new FakeIssuer();
    const deployer = new FakeDeployer([{ name: 'postfix', certs: ['mail'] }]);
    expect((await engineWith(config, issuer, deployer, captureLog().log).pass()).ok).toBe(true);
    issuer.failWith = new Error('the CA said no');
    await engineWith(config, issuer, deployer, captureLog().log).pass({ force: true });
    expect(state(dir, 'mail')).toMatchObject({ keyType: 'ec-256', failures: 1 });
    backoffOver(dir, 'mail');
    await engineWith(testConfig(certs(['rsa-2048']), {}, dir).config, issuer, deployer, captureLog().log).pass();
    expect(state(dir, 'mail')).toMatchObject({ keyType: 'rsa-2048', failures: 2 });
  });

  it('adding a key type whose first order fails publishes nothing new: no half of a dual set', async () => {
    const { config, dir } = testConfig(certs(['ec-256']));
    const issuer = new FakeIssuer();
    const deployer = new FakeDeployer([{ name: 'postfix', certs: ['mail'] }]);
    expect((await engineWith(config, issuer, deployer, captureLog().log).pass()).ok).toBe(true);
    const version = readlinkSync(join(config.certsDir, '..data'));
    issuer.failWith = new Error('the CA said no');
    issuer.failKeyTypes = ['rsa-2048'];
    const dual = testConfig(certs(['ec-256', 'rsa-2048']), {}, dir).config;
    const after = await engineWith(dual, issuer, deployer, captureLog().log).pass();
    expect(after.certs.map((c) => `${c.keyType} ${c.ok} ${c.published}`)).toEqual([
      'ec-256 true false',
      'rsa-2048 false false',
    ]);
    expect(readlinkSync(join(config.certsDir, '..data'))).toBe(version);
    expect(files(config.certsDir)).toEqual([
      'cert.pem',
      'chain.pem',
      'fullchain.pem',
      'privkey-fullchain.pem',
      'privkey.pem',
    ]);
    expect(deployer.calls).toHaveLength(1);
  });

  it('a set whose removed key type broke TLS is rolled back with all its files, and retried after the backoff without an order', async () => {
    const { config, dir } = testConfig(certs(['ec-256', 'rsa-2048']));
    const issuer = new FakeIssuer();
    let broken = true;
    const deployer = new FakeDeployer([
      {
        name: 'postfix',
        certs: ['mail'],
        answer: (served, call) =>
          call > 1 && broken && served[0]!.variants === undefined
            ? { ok: false, problem: 'broken', error: 'TLS fails: rsa-privkey-fullchain.pem is missing' }
            : { ok: true },
      },
    ]);
    expect((await engineWith(config, issuer, deployer, captureLog().log).pass()).ok).toBe(true);
    const dualFiles = files(config.certsDir);
    expect(dualFiles).toContain('rsa-privkey-fullchain.pem');

    const ecOnly = testConfig(certs(['ec-256']), {}, dir).config;
    const after = await engineWith(ecOnly, issuer, deployer, captureLog().log).pass();
    expect(after.certs[0]).toMatchObject({ ok: false });
    expect(after.certs[0]!.error).toMatch(
      /^the files for key types ec-256 broke TLS and were rolled back to those for ec-256, rsa-2048 because container postfix: TLS fails/,
    );
    // Every file of the restored version is back at its stable name, the RSA ones too.
    expect(files(config.certsDir)).toEqual(dualFiles);
    expect(keyTypeOf(join(config.certsDir, 'rsa-fullchain.pem'))).toBe('rsa');
    expect(state(dir, 'mail')).toMatchObject({ failedStep: 'deploy', failures: 1 });

    broken = false;
    backoffOver(dir, 'mail');
    const retried = await engineWith(ecOnly, issuer, deployer, captureLog().log).pass();
    expect(retried.ok).toBe(true);
    expect(issuer.orders).toHaveLength(2); // the set was published again; nothing was ordered
    expect(files(config.certsDir)).toEqual([
      'cert.pem',
      'chain.pem',
      'fullchain.pem',
      'privkey-fullchain.pem',
      'privkey.pem',
    ]);
  });
});
