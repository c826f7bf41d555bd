import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ContainerView } from '../../src/deploy/docker.js';
import { addressOf, probeAddress } from '../../src/deploy/scope.js';
import { MAX_ENDPOINTS, parseVerifyLabel, verifyServed } from '../../src/deploy/verify.js';
import { WebrootHttp01 } from '../../src/obtain/solvers/http01-webroot.js';
import { failedPassDelay } from '../../src/run/daemon.js';
import { readContainers, recordContainers } from '../../src/state/containers.js';
import { captureLog } from '../helpers/fakes.js';
import { makeChain } from '../helpers/pki.js';
import { X509Certificate } from 'node:crypto';
import { monotonicMs } from '../../src/util/clock.js';

const view = (over: Partial<ContainerView>): ContainerView => ({
  id: 'c1',
  name: 'postfix',
  labels: {},
  networkMode: 'mail_default',
  networks: [],
  ...over,
});
const tmp = () => mkdtempSync(join(tmpdir(), 'mailcerts-untrusted-'));
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

describe('mailcerts.verify: a label decides nothing about where mailcerts connects', () => {
  it('caps the endpoints a label may list', () => {
    const many = Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => `smtp://:${1000 + i}`).join(',');
    expect(parseVerifyLabel(many)).toEqual({
      error: `lists ${MAX_ENDPOINTS + 1} endpoints; at most ${MAX_ENDPOINTS} are checked per container`,
    });
  });

  it("probes only the container's own addresses, unless the admin listed the host in VERIFY_HOSTS", async () => {
    const t = view({ networks: [{ name: 'mail', id: 'n1', ip: '198.18.0.5' }] });
    expect(await probeAddress('198.18.0.5', t, [])).toEqual({ address: '198.18.0.5' });
    expect(await probeAddress('10.0.0.1', t, [])).toEqual({
      problem:
        "mailcerts.verify names 10.0.0.1, which is not an address of postfix; mailcerts only probes a container's own addresses unless the host is listed in VERIFY_HOSTS",
    });
    expect(await probeAddress('127.0.0.1', t, [])).toMatchObject({
      problem: expect.stringMatching(/not an address of postfix/),
    }); // its loopback is not mailcerts' loopback
    expect(await probeAddress('localhost', t, [])).toMatchObject({
      problem: expect.stringMatching(/not an address of postfix/),
    });
    expect(await probeAddress('10.0.0.1', t, ['10.0.0.1'])).toEqual({ address: '10.0.0.1' });
    expect(await probeAddress('anything.example', t, '*')).toEqual({ address: 'anything.example' });
    expect(await probeAddress('127.0.0.1', view({ networkMode: 'host' }), [])).toEqual({ address: '127.0.0.1' }); // host networking: loopback is its own
    // A name that resolves to the container's own address is probed at that address, not looked up again.
    expect(await probeAddress('localhost', view({ networks: [{ name: 'm', id: 'm', ip: '127.0.0.1' }] }), [])).toEqual({
      address: '127.0.0.1',
    });
  });

  it('reaches a container on a network it shares with mailcerts, never on one it is not on', () => {
    const self = view({
      id: 'me',
      name: 'mailcerts',
      networks: [
        { name: 'stack_mail', id: 'm', ip: '198.18.1.2' },
        { name: 'stack_docker-api', id: 'd', ip: '198.18.2.2' },
      ],
    });
    const target = view({
      networks: [
        { name: 'a_first', id: 'x', ip: '198.18.9.9' },
        { name: 'stack_mail', id: 'm', ip: '198.18.1.5' },
      ],
    });
    expect(addressOf(target, self)).toEqual({ host: '198.18.1.5' }); // not the alphabetically first network
    expect(addressOf(view({ networks: [{ name: 'other', id: 'o', ip: '198.18.5.5' }] }), self)).toEqual({
      unreachable: expect.stringMatching(
        /^mailcerts shares no network with postfix \(it is on other; mailcerts on stack_mail, stack_docker-api\); add mailcerts to one of its networks$/,
      ),
    });
    expect(addressOf(view({ networkMode: 'host' }), self)).toEqual({
      unreachable: expect.stringMatching(/uses host networking/),
    });
    expect(addressOf(view({ networkMode: 'host' }), undefined)).toEqual({ host: '127.0.0.1' });
    expect(addressOf(view({ networkMode: 'none' }), self)).toEqual({
      none: expect.stringMatching(/no network address/),
    });
  });

  it('a port that accepts but never answers holds verification for its time budget only, and a stop ends it at once', async () => {
    const silent = createServer((s: Socket) => s.on('error', () => undefined)); // accepts, says nothing
    servers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const leaf = new X509Certificate(makeChain(['mail.example.test']).leaf);
    const endpoints = Array.from({ length: 4 }, () => ({ protocol: 'smtp' as const, host: '127.0.0.1', port }));
    const expected = [{ cert: 'mail', name: 'mail.example.test', servername: 'mail.example.test', leaf }];
    const { log } = captureLog();
    let t0 = performance.now();
    const out = await verifyServed(endpoints, expected, {
      waits: [250, 500, 1000],
      log,
      container: 'x',
      deadline: monotonicMs() + 3_000,
    });
    // A server that never greets is not the certificate's fault: unreachable, never "broken" (no rollback).
    expect(out).toMatchObject({ ok: false, kind: 'unreachable' });
    expect(performance.now() - t0).toBeLessThan(4_500);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    t0 = performance.now();
    await verifyServed(endpoints, expected, {
      waits: [250, 500, 1000],
      log,
      container: 'x',
      deadline: monotonicMs() + 60_000,
      signal: stop.signal,
    });
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});

describe('whose fault a failed probe is', () => {
  const smtpServer = async (script: (s: Socket) => void) => {
    const server = createServer((s: Socket) => {
      s.on('error', () => undefined);
      script(s);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as { port: number }).port;
  };
  const leaf = new X509Certificate(makeChain(['mail.example.test']).leaf);
  const verify = async (port: number) =>
    verifyServed(
      [{ protocol: 'smtp', host: '127.0.0.1', port }],
      [{ cert: 'mail', name: 'mail.example.test', servername: 'mail.example.test', leaf }],
      { waits: [], log: captureLog().log, container: 'x', deadline: monotonicMs() + 5_000 },
    );

  it("a 421 greeting (postscreen, a rate limit) is the server's state, not the certificate: unreachable", async () => {
    const port = await smtpServer((s) =>
      s.end('421 4.7.0 mail.example.test Error: too many connections from 127.0.0.1\r\n'),
    );
    expect(await verify(port)).toMatchObject({
      ok: false,
      kind: 'unreachable',
      detail: expect.stringMatching(/no 220 greeting; the server said: 421 4\.7\.0/),
    });
  });

  it('STARTTLS missing after a good greeting is what a server that cannot load its certificate does: broken', async () => {
    const port = await smtpServer((s) => {
      s.write('220 mail.example.test ESMTP\r\n');
      s.on('data', () => s.write('250-mail.example.test\r\n250 8BITMIME\r\n'));
    });
    expect(await verify(port)).toMatchObject({
      ok: false,
      kind: 'broken',
      detail: expect.stringMatching(/STARTTLS is not offered/),
    });
  });
});

describe('what a container must serve, name by name', () => {
  it('each covered name by SNI (a wildcard under a made-up label, reported as configured), and the first certificate without SNI', async () => {
    const { expectationsFor } = await import('../../src/deploy/deployer.js');
    const a = makeChain(['mail.a.test']);
    const w = makeChain(['c.test', '*.c.test']);
    const certs = [
      { name: 'a', domains: ['mail.a.test'], leaf: new X509Certificate(a.leaf) },
      { name: 'w', domains: ['c.test', '*.c.test'], leaf: new X509Certificate(w.leaf) },
    ];
    const pick = (labels: Record<string, string>) =>
      expectationsFor({ labels }, certs).map((x) => [x.cert, x.name, x.servername ?? null]);
    expect(pick({})).toEqual([
      ['a', 'mail.a.test', 'mail.a.test'],
      ['a', '(no SNI)', null],
    ]);
    expect(pick({ 'mailcerts.certificates': '*' })).toEqual([
      ['a', 'mail.a.test', 'mail.a.test'],
      ['w', 'c.test', 'c.test'],
      ['w', '*.c.test', 'mailcerts-probe.c.test'],
      ['a', '(no SNI)', null],
    ]);
    expect(pick({ 'mailcerts.certificates': 'w' })).toEqual([
      ['w', 'c.test', 'c.test'],
      ['w', '*.c.test', 'mailcerts-probe.c.test'],
    ]); // not the default: no "no SNI" check
  });

  it('another current certificate served for a name is a wrong SNI setup ("mismatch"), not an old certificate', async () => {
    const { createServer: tlsServer } = await import('node:tls');
    const a = makeChain(['mail.a.test']);
    const b = makeChain(['mail.b.test']);
    const server = tlsServer({ key: a.key, cert: a.fullchain }, (s) => s.end()); // no SNI setup: a for every name
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const expected = [
        { cert: 'a', name: 'mail.a.test', servername: 'mail.a.test', leaf: new X509Certificate(a.leaf) },
        { cert: 'b', name: 'mail.b.test', servername: 'mail.b.test', leaf: new X509Certificate(b.leaf) },
      ];
      const out = await verifyServed([{ protocol: 'smtps', host: '127.0.0.1', port }], expected, {
        waits: [],
        log: captureLog().log,
        container: 'x',
        deadline: monotonicMs() + 5_000,
      });
      expect(out).toMatchObject({
        ok: false,
        kind: 'mismatch',
        certs: ['b'],
        names: { 'mail.a.test': true, 'mail.b.test': false },
      });
      expect(out.ok || out.detail).toMatch(
        new RegExp(
          `serves certificate a \\(serial ${new X509Certificate(a.leaf).serialNumber}, SHA-256 [0-9A-F:]+\\) instead of b \\(serial ${new X509Certificate(b.leaf).serialNumber}\\) for mail\\.b\\.test: its SNI setup does not pick the certificate by name`,
        ),
      );
    } finally {
      server.close();
    }
  });
});

describe('other untrusted places', () => {
  it('a planted symbolic link in a shared webroot is refused, and nothing is written through it', async () => {
    const webroot = tmp();
    const elsewhere = tmp();
    symlinkSync(elsewhere, join(webroot, '.well-known'));
    const solver = new WebrootHttp01({ webroot, log: captureLog().log });
    await expect(solver.begin()).rejects.toThrow(
      `${join(webroot, '.well-known')} is a symbolic link; mailcerts writes challenge tokens only into real directories of HTTP01_WEBROOT: remove it`,
    );
    const root2 = tmp();
    mkdirSync(join(root2, '.well-known'));
    symlinkSync(elsewhere, join(root2, '.well-known', 'acme-challenge'));
    const second = new WebrootHttp01({ webroot: root2, log: captureLog().log });
    await expect(
      second.prepare([{ domain: 'x.test', wildcard: false, token: 'tok', keyAuthorization: 'tok.k' }]),
    ).rejects.toThrow(/acme-challenge is a symbolic link/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('container records are a snapshot of the last deploy: containers that are gone drop out of status and metrics', async () => {
    const dir = tmp();
    await recordContainers(dir, [{ container: 'old', ok: true, reloaded: true, verified: true }], true);
    await recordContainers(dir, [{ container: 'new', ok: true, reloaded: true, verified: true }], true);
    expect(Object.keys(await readContainers(dir))).toEqual(['new']);
    // Docker unreachable: what was known is kept beside the error.
    await recordContainers(dir, [{ container: '(docker)', ok: false, error: 'cannot reach the Docker API' }], false);
    expect(Object.keys(await readContainers(dir)).sort()).toEqual(['(docker)', 'new']);
  });

  it('a pass that fails as a whole is retried after 1, 2, 4… minutes, at most an hour', () => {
    expect([1, 2, 3, 4, 7, 20].map((n) => failedPassDelay(n, 12 * 3_600_000))).toEqual([
      60_000, 120_000, 240_000, 480_000, 3_600_000, 3_600_000,
    ]);
    expect(failedPassDelay(9, 600_000)).toBe(600_000); // never beyond the check interval
  });

  it('the dns journal of an HTTP-01-only setup may be damaged without stopping anything', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'dns-records.json'), '{"records": [{"provider": 1}]}');
    const { DnsJournal } = await import('../../src/state/dns-journal.js');
    expect(await new DnsJournal(dir, captureLog().log).list()).toEqual([]);
  });
});
