import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, startBind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { Rfc2136Dns } from '../../src/dns/providers/rfc2136/rfc2136.js';
import { type TsigKey, verifyAnswer } from '../../src/dns/providers/rfc2136/tsig.js';
import { createLogger } from '../../src/log.js';
import { logsWith, runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { rfc2136Env } from '../helpers/rfc2136-env.js';

/**
 * DNS-01 over RFC 2136 against a real BIND 9: named checks every signature mailcerts makes and
 * signs every answer it checks; Pebble resolves the challenge records through the same BIND.
 */
const work = join(inject('workDir'), 'rfc2136');
const KEY = 'mailcerts-test';
const secret = tsigKeygen(KEY);
const otherSecret = tsigKeygen('other');
const key: TsigKey = { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') };
const log = createLogger('silent');
const run = promisify(execFile);

let bind: Bind;
let pebble: Pebble;

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  const [dnsPort, acmePort, mgmtPort, httpPort] = await freePorts(4);
  bind = await startBind({
    dir: join(work, 'bind'),
    port: dnsPort!,
    keys: [
      { name: KEY, secret },
      { name: 'sha512-key', algorithm: 'hmac-sha512', secret: otherSecret },
    ],
    zones: [
      { name: 'mail.test' },
      { name: 'sub.mail.test', policy: `grant ${KEY} zonesub TXT;` },
      { name: 'locked.test', update: 'none' },
      // Another key may write here; ours may not: BIND says so only per record, not for the zone.
      { name: 'policy.test', policy: 'grant sha512-key zonesub TXT;' },
    ],
  });
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer: bind.address, acmePort, mgmtPort, httpPort });
});
afterAll(async () => {
  await pebble?.stop();
  await bind?.stop();
});

const provider = (k: TsigKey = key) => new Rfc2136Dns({ server: { host: '127.0.0.1', port: bind.port }, key: k, log });

describe('TSIG interoperates with BIND', () => {
  it("a query that dig signs verifies with mailcerts' TSIG code (the known answer RFC 8945 does not give)", async () => {
    for (const [name, algorithm, s] of [
      [KEY, 'hmac-sha256', secret],
      ['sha512-key', 'hmac-sha512', otherSecret],
    ] as const) {
      const captured = await new Promise<Buffer>((resolve, reject) => {
        const server: Server = createServer((socket) => {
          let got = Buffer.alloc(0);
          socket.on('data', (d) => {
            got = Buffer.concat([got, d]);
            if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
              socket.destroy();
              server.close();
              resolve(got.subarray(2, 2 + got.readUInt16BE(0)));
            }
          });
        });
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as { port: number }).port;
          run('dig', [
            '+tcp',
            '+tries=1',
            '+time=2',
            '-p',
            String(port),
            '@127.0.0.1',
            '-y',
            `${algorithm}:${name}:${s}`,
            'mail.test',
            'SOA',
          ]).catch(() => undefined);
        });
        server.on('error', reject);
      });
      const k: TsigKey = { name, algorithm, secret: Buffer.from(s, 'base64') };
      expect(verifyAnswer(captured, k, undefined), algorithm).toEqual({ ok: true });
      expect(
        verifyAnswer(captured, { ...k, secret: Buffer.from(secret === s ? otherSecret : secret, 'base64') }, undefined)
          .ok,
      ).toBe(false);
    }
  });

  it('creates, lists and deletes TXT and TLSA records; BIND serves them, a repeat is harmless, the answers are signed', async () => {
    const dns = provider();
    const pre = await dns.preflight(['mail.test', '*.mail.test', 'x.sub.mail.test']);
    expect(pre.proven).toBe(
      `key "${KEY}" accepted by 127.0.0.1:${bind.port}; TXT updates allowed in mail.test, sub.mail.test`,
    );
    // The check wrote and removed one record in the same update: the zone is as it was.
    expect(bind.dig('mail.test', 'SOA')[0]).toMatch(/ 1 60 60 600 2$/);
    expect(bind.dig('_acme-challenge.x.sub.mail.test', 'TXT')).toEqual([]);
    const zone = await dns.zoneFor('x.sub.mail.test');
    expect(zone.name).toBe('sub.mail.test');
    const apex = await dns.zoneFor('mail.test');
    const txt = { type: 'TXT' as const, name: '_acme-challenge.mail.test', value: 'abc-DEF_123', ttl: 60 };
    const id = await dns.create(apex, txt);
    expect(await dns.create(apex, txt)).toBe(id);
    await dns.create(apex, { ...txt, value: 'second value' });
    expect(bind.dig('_acme-challenge.mail.test', 'TXT').sort()).toEqual(['"abc-DEF_123"', '"second value"']);
    expect((await dns.list(apex, 'TXT', '_acme-challenge.mail.test')).map((r) => r.record.value).sort()).toEqual([
      'abc-DEF_123',
      'second value',
    ]);
    const digest = 'a'.repeat(64);
    const tlsa = { type: 'TLSA' as const, name: '_25._tcp.mx.mail.test', value: `3 1 1 ${digest}`, ttl: 3600 };
    const tlsaId = await dns.create(apex, tlsa);
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).toEqual([
      `3 1 1 ${digest.toUpperCase().replace(/(.{56})/, '$1 ')}`,
    ]);
    expect(await dns.list(apex, 'TLSA', '_25._tcp.mx.mail.test')).toEqual([
      { id: tlsaId, record: { ...tlsa, value: `3 1 1 ${digest}` } },
    ]);
    await dns.delete(apex, id);
    await dns.delete(apex, id); // already gone: no error
    await dns.delete(apex, tlsaId);
    expect(bind.dig('_acme-challenge.mail.test', 'TXT')).toEqual(['"second value"']);
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).toEqual([]);
    await dns.delete(apex, (await dns.list(apex, 'TXT', '_acme-challenge.mail.test'))[0]!.id);
  });

  it('says what is wrong: another secret (BADSIG), an unknown key (BADKEY), a zone it may not update (REFUSED), a name in no zone', async () => {
    const wrong = provider({ ...key, secret: Buffer.from(otherSecret, 'base64') });
    await expect(wrong.preflight(['mail.test'])).rejects.toThrow(
      new RegExp(
        `^RFC 2136: finding the zone of mail.test: 127.0.0.1:${bind.port} did not accept the key "${KEY}" \\(hmac-sha256\\): BADSIG: .*RFC2136_TSIG_SECRET`,
      ),
    );
    const unknown = provider({ ...key, name: 'nobody' });
    await expect(unknown.preflight(['mail.test'])).rejects.toThrow(
      /did not accept the key "nobody" \(hmac-sha256\): BADKEY: the server knows no key of this name and algorithm/,
    );
    await expect(provider().preflight(['mx.locked.test'])).rejects.toThrow(
      `RFC 2136: checking the right to update _acme-challenge.mx.locked.test in locked.test: 127.0.0.1:${bind.port} answered REFUSED: allow the key "${KEY}" to write TXT records in the zone (BIND: update-policy { grant ${KEY} zonesub TXT; }; or allow-update { key ${KEY}; };)`,
    );
    await expect(provider().preflight(['mx.policy.test'])).rejects.toThrow(
      `RFC 2136: checking the right to update _acme-challenge.mx.policy.test in policy.test: 127.0.0.1:${bind.port} answered REFUSED`,
    );
    const sub = await provider().zoneFor('sub.mail.test');
    await expect(
      provider().create(sub, {
        type: 'TLSA',
        name: '_25._tcp.mx.sub.mail.test',
        value: `3 1 1 ${'b'.repeat(64)}`,
        ttl: 60,
      }),
    ).rejects.toThrow(
      `answered REFUSED: allow the key "${KEY}" to write TLSA records in the zone (BIND: update-policy { grant ${KEY} zonesub TLSA; }`,
    );
    await expect(provider().preflight(['mail.elsewhere.test'])).rejects.toThrow(
      `RFC 2136: 127.0.0.1:${bind.port} serves no zone that holds mail.elsewhere.test (REFUSED); point RFC2136_SERVER at the primary server of that zone`,
    );
    const closed = (await freePorts(1))[0]!;
    await expect(
      new Rfc2136Dns({ server: { host: '127.0.0.1', port: closed }, key, log }).preflight(['mail.test']),
    ).rejects.toThrow(
      `RFC 2136: finding the zone of mail.test: cannot reach 127.0.0.1:${closed} (ECONNREFUSED); check RFC2136_SERVER`,
    );
  });

  it('a clock more than 5 minutes off is refused by BIND (BADTIME), and the error says to fix the time', async () => {
    const skewed = new Rfc2136Dns({
      server: { host: '127.0.0.1', port: bind.port },
      key,
      log,
      now: () => Date.now() - 3_600_000,
    });
    await expect(skewed.preflight(['mail.test'])).rejects.toThrow(
      /BADTIME: the clocks of this host and the server differ/,
    );
  });
});

describe('mailcerts run with ACME_DNS_PROVIDER=rfc2136', () => {
  const envFor = (name: string, extra: Record<string, string> = {}) => {
    const dir = join(work, name);
    return {
      dir,
      env: rfc2136Env(
        { pebble, bind, key: KEY, secret, certsDir: join(dir, 'certs'), stateDir: join(dir, 'state') },
        { DOCKER_RELOAD: 'false', ...extra },
      ),
    };
  };

  it('issues mail.test + *.mail.test, validated by Pebble through BIND; no challenge record remains; the secret is nowhere', async () => {
    const { dir, env } = envFor('issue', { ACME_DOMAINS: 'mail.test,*.mail.test,smtp.sub.mail.test' });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const leaf = new X509Certificate(readFileSync(join(dir, 'certs', 'cert.pem')));
    expect(leaf.subjectAltName).toBe('DNS:mail.test, DNS:*.mail.test, DNS:smtp.sub.mail.test');
    expect(
      logsWith(r, { step: 'dns-01', msg: 'TXT record created' })
        .map((l) => `${l.record} ${l.zone}`)
        .sort(),
    ).toEqual([
      '_acme-challenge.mail.test mail.test',
      '_acme-challenge.mail.test mail.test',
      '_acme-challenge.smtp.sub.mail.test sub.mail.test',
    ]);
    expect(logsWith(r, { step: 'dns-01', msg: 'TXT record deleted' })).toHaveLength(3);
    expect(bind.dig('_acme-challenge.mail.test', 'TXT')).toEqual([]);
    expect(bind.dig('_acme-challenge.smtp.sub.mail.test', 'TXT')).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'state', 'dns-records.json'), 'utf8'))).toEqual({ records: [] });
    for (const out of [r.stdout, r.stderr]) expect(out.includes(secret)).toBe(false);
    const files = readdirSync(join(dir, 'state'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    for (const f of files)
      expect(readFileSync(join(f.parentPath, f.name), 'utf8').includes(secret), f.name).toBe(false);

    const check = await runCli(['check'], env);
    expect(check.stdout + check.stderr).toContain(
      `key "${KEY}" accepted by ${bind.address}; TXT updates allowed in mail.test, sub.mail.test`,
    );
  });

  it('a wrong secret fails before any order with the key named; nothing is published', async () => {
    const { dir, env } = envFor('badsig', { ACME_DOMAINS: 'mail.test', RFC2136_TSIG_SECRET: otherSecret });
    const r = await runCli(['run', '--once'], env);
    expect(r.code).toBe(1);
    expect(r.logs.find((l) => l.msg === 'issuance failed')?.error).toMatch(
      /^RFC 2136: finding the zone of mail.test: 127\.0\.0\.1:\d+ did not accept the key "mailcerts-test" \(hmac-sha256\): BADSIG/,
    );
    expect(logsWith(r, { step: 'order' })).toHaveLength(0);
    expect(existsSync(join(dir, 'certs', 'cert.pem'))).toBe(false);
    expect(r.stdout.includes(otherSecret)).toBe(false);
  });

  it('bad settings are refused before anything runs: a secret that is not base64, a missing key, an unknown algorithm', async () => {
    const cases: [Record<string, string>, string][] = [
      [
        { RFC2136_TSIG_SECRET: 'not base64!' },
        'RFC2136_TSIG_SECRET: is not base64; use the secret line of the key as tsig-keygen prints it',
      ],
      [
        { RFC2136_TSIG_KEY: '' },
        'RFC2136_TSIG_KEY: RFC 2136 updates need RFC2136_SERVER, RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET (or _FILE) together; missing: RFC2136_TSIG_KEY',
      ],
      [
        { RFC2136_TSIG_ALGORITHM: 'hmac-sha3' },
        'RFC2136_TSIG_ALGORITHM: use one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5',
      ],
      [{ RFC2136_SERVER: 'ns1 example' }, 'RFC2136_SERVER: "ns1 example" is not host[:port]'],
    ];
    for (const [extra, message] of cases) {
      const { dir, env } = envFor('bad-settings', { ACME_DOMAINS: 'mail.test', ...extra });
      const r = await runCli(['run', '--once'], env);
      expect(r.code, message).toBe(78);
      expect(r.stderr).toContain(message);
      expect(r.stderr).toContain('Nothing was changed.');
      expect(r.stderr.includes(secret)).toBe(false);
      expect(r.stderr.includes('not base64!'), 'a bad secret is not echoed').toBe(false);
      expect(existsSync(join(dir, 'state'))).toBe(false);
    }
  });
});
