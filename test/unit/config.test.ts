import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as yaml from 'yaml';
import { ConfigError, configParsers, type LoadOptions, loadConfig } from '../../src/config/load.js';
import { CONFIG_PARTS } from '../../src/parts.js';

/** As inside the mailcerts container, unless a test says otherwise. */
const load = (env: Record<string, string>, opts: Partial<LoadOptions> = { inContainer: true }) =>
  loadConfig(env, { yaml, parts: CONFIG_PARTS, ...opts });

function problems(env: Record<string, string>, opts: Partial<LoadOptions> = { inContainer: true }): string[] {
  try {
    load(env, opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
const tmp = () => mkdtempSync(join(tmpdir(), 'mailcerts-config-'));

describe('configuration from the environment', () => {
  it('has the documented defaults for one certificate', () => {
    const c = load({ ACME_DOMAINS: 'Mail.Example.com, smtp.example.com' });
    expect(c.certificates).toEqual([
      {
        source: 'acme',
        customDir: undefined,
        name: 'mail.example.com',
        domains: ['mail.example.com', 'smtp.example.com'],
        keyTypes: ['ec-256'],
        challenge: 'http-01',
        dnsProvider: undefined,
      },
    ]);
    expect(c.acme).toEqual({
      directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
      directoryName: 'letsencrypt',
      email: undefined,
      timeoutMs: 30_000,
      concurrency: 4,
      profile: undefined,
      preferredChain: undefined,
      reuseKey: false,
      eab: undefined,
    });
    expect(c.http01).toEqual({ mode: 'standalone', port: 80, address: undefined, webroot: undefined });
    expect([
      c.certsDir,
      c.stateDir,
      c.renewCheckIntervalMs,
      c.files.keyMode,
      c.files.certMode,
      c.docker,
      c.statusAddress,
      c.logLevel,
    ]).toEqual([
      '/etc/ssl/mail',
      '/var/lib/mailcerts',
      12 * 3_600_000,
      0o600,
      0o644,
      { reload: true, scope: undefined, verifyHosts: [], mode: 'volume', leaseMs: 120_000 },
      { host: '127.0.0.1', port: 9090 },
      'info',
    ]);
    expect(load({ ACME_DOMAINS: 'a.example.com', ACME_DIRECTORY: 'letsencrypt-staging' }).acme.directoryUrl).toBe(
      'https://acme-staging-v02.api.letsencrypt.org/directory',
    );
  });

  it('lists every wrong variable at once, each by name with what to change', () => {
    const list = problems({
      ACME_DOMAINS: 'mail.example.com,bad_name,mail.example.com',
      ACME_EMAIL: 'not-an-address',
      ACME_DIRECTORY: 'ftp://ca.example',
      ACME_CHALLENGE: 'tls-alpn-01',
      ACME_KEY_TYPE: 'rsa-1024',
      HTTP01_MODE: 'proxy',
      HTTP01_PORT: '70000',
      HTTP01_ADDRESS: 'everywhere',
      CERTS_DIR: 'relative/dir',
      KEY_FILE_MODE: '0644',
      KEY_FILE_OWNER: 'dovecot',
      RENEW_CHECK_INTERVAL: 'often',
      DOCKER_RELOAD: 'maybe',
      LOG_LEVEL: 'loud',
    });
    const named = list.map((p) => p.split(':')[0]);
    expect(named).toEqual([
      'ACME_DOMAINS',
      'ACME_DOMAINS',
      'ACME_CHALLENGE',
      'ACME_KEY_TYPE',
      'ACME_EMAIL',
      'ACME_DIRECTORY',
      'HTTP01_MODE',
      'HTTP01_PORT',
      'HTTP01_ADDRESS',
      'CERTS_DIR',
      'KEY_FILE_MODE',
      'KEY_FILE_OWNER',
      'DOCKER_RELOAD',
      'RENEW_CHECK_INTERVAL',
      'LOG_LEVEL',
    ]);
    expect(list).toContain(
      'ACME_DOMAINS: "bad_name" is not a valid DNS name (letters, digits and hyphens between dots)',
    );
    expect(list).toContain('ACME_DOMAINS: "mail.example.com" is listed twice');
    expect(list).toContain(
      'KEY_FILE_MODE: 0644 lets every local user read the private key; use 0600, or 0640 with KEY_FILE_GROUP',
    );
    expect(list).toContain('RENEW_CHECK_INTERVAL: "often" is not a duration between 10s and 7d; write it like 12h');
  });

  it('KEY_FILE_OWNER and KEY_FILE_GROUP are ids chown can set: 0 to 4294967294', () => {
    expect(
      load({ ACME_DOMAINS: 'a.example.com', KEY_FILE_OWNER: '0', KEY_FILE_GROUP: '4294967294' }).files,
    ).toMatchObject({ owner: 0, group: 4294967294 });
    expect(
      problems({ ACME_DOMAINS: 'a.example.com', KEY_FILE_OWNER: '4294967295', KEY_FILE_GROUP: '99999999999' }),
    ).toEqual([
      'KEY_FILE_OWNER: use a numeric user id from 0 to 4294967294 (4294967295 is -1, which chown takes as "leave unchanged")',
      'KEY_FILE_GROUP: use a numeric group id from 0 to 4294967294 (4294967295 is -1, which chown takes as "leave unchanged")',
    ]);
    expect(problems({ ACME_DOMAINS: 'a.example.com', KEY_FILE_GROUP: '-1' })).toEqual([
      'KEY_FILE_GROUP: use the numeric group id as the mail containers see it, such as 0 or 101',
    ]);
  });

  it('requires the names, and the webroot in webroot mode', () => {
    expect(problems({})).toEqual([expect.stringMatching(/^ACME_DOMAINS: is required/)]);
    expect(problems({ ACME_DOMAINS: 'a.example.com', HTTP01_MODE: 'webroot' })).toEqual([
      expect.stringMatching(/^HTTP01_WEBROOT: is required when HTTP01_MODE=webroot/),
    ]);
  });

  it('dns-01 needs the Cloudflare token; wildcards need dns-01', () => {
    expect(problems({ ACME_DOMAINS: 'a.example.com', ACME_CHALLENGE: 'dns-01' })).toEqual([
      expect.stringMatching(
        /^CLOUDFLARE_API_TOKEN: is required for dns-01 with Cloudflare: create an API token with Zone:Read and DNS:Edit/,
      ),
    ]);
    expect(problems({ ACME_DOMAINS: '*.example.com' })).toEqual([
      expect.stringMatching(/^ACME_DOMAINS: wildcard names need the dns-01 challenge/),
    ]);
    const c = load({
      ACME_DOMAINS: 'example.com,*.example.com',
      ACME_CHALLENGE: 'dns-01',
      CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
      DNS01_RESOLVERS: '127.0.0.1:8053, [::1]:53, 1.1.1.1',
    });
    expect(c.certificates[0]).toMatchObject({
      challenge: 'dns-01',
      dnsProvider: 'cloudflare',
      domains: ['example.com', '*.example.com'],
    });
    expect(c.dns).toEqual({
      resolvers: ['127.0.0.1:8053', '[::1]:53', '1.1.1.1'],
      propagationTimeoutMs: 180_000,
      providers: {
        cloudflare: { apiToken: 'abcdefghijklmnopqrstuvwxyz0123456789', zoneId: undefined, baseUrl: undefined },
      },
    });
  });

  it('checks the DNS-01 settings, and never repeats a token in an error', () => {
    const token = 'has spaces and a secret value 0123456789';
    const list = problems({
      ACME_DOMAINS: 'a.example.com',
      ACME_CHALLENGE: 'dns-01',
      CLOUDFLARE_API_TOKEN: token,
      CLOUDFLARE_ZONE_ID: 'zone',
      DNS01_RESOLVERS: 'ns1.example.com',
      DNS01_PROPAGATION_TIMEOUT: '1s',
      ACME_DNS_PROVIDER: 'route53',
    });
    expect(list.map((p) => p.split(':')[0])).toEqual([
      'ACME_DNS_PROVIDER',
      'CLOUDFLARE_API_TOKEN',
      'CLOUDFLARE_ZONE_ID',
      'DNS01_RESOLVERS',
      'DNS01_PROPAGATION_TIMEOUT',
    ]);
    expect(list.join('\n')).not.toContain(token);
    expect(list).toContain(
      'DNS01_RESOLVERS: "ns1.example.com" is not an IP address (with an optional :port); name servers are given by address',
    );
  });

  it('reads the token from CLOUDFLARE_API_TOKEN_FILE (a Docker secret)', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'token'), 'abcdefghijklmnopqrstuvwxyz0123456789\n');
    const c = load({
      ACME_DOMAINS: 'a.example.com',
      ACME_CHALLENGE: 'dns-01',
      CLOUDFLARE_API_TOKEN_FILE: join(dir, 'token'),
    });
    expect((c.dns.providers.cloudflare as { apiToken: string } | undefined)?.apiToken).toBe(
      'abcdefghijklmnopqrstuvwxyz0123456789',
    );
  });

  it('reads NAME_FILE (Docker secrets), refuses both forms at once, and names an unreadable file', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'email'), 'postmaster@example.com\n');
    expect(load({ ACME_DOMAINS: 'a.example.com', ACME_EMAIL_FILE: join(dir, 'email') }).acme.email).toBe(
      'postmaster@example.com',
    );
    expect(
      problems({ ACME_DOMAINS: 'a.example.com', ACME_EMAIL: 'x@example.com', ACME_EMAIL_FILE: join(dir, 'email') }),
    ).toEqual(['ACME_EMAIL: set either ACME_EMAIL or ACME_EMAIL_FILE, not both']);
    expect(problems({ ACME_DOMAINS: 'a.example.com', ACME_EMAIL_FILE: '/nonexistent/secret' })).toEqual([
      'ACME_EMAIL_FILE: cannot read "/nonexistent/secret" (ENOENT); mount the secret file there or fix the path',
    ]);
  });

  it('knows the CA presets, and asks for EAB where the CA requires it', () => {
    expect(load({ ACME_DOMAINS: 'a.example.com', ACME_DIRECTORY: 'buypass' }).acme.directoryUrl).toBe(
      'https://api.buypass.com/acme/directory',
    );
    expect(problems({ ACME_DOMAINS: 'a.example.com', ACME_DIRECTORY: 'zerossl' })).toEqual([
      expect.stringMatching(/^ACME_EAB_KID: zerossl requires external account binding/),
    ]);
    expect(problems({ ACME_DOMAINS: 'a.example.com', ACME_EAB_KID: 'kid' })).toEqual([
      expect.stringMatching(/^ACME_EAB_HMAC_KEY: external account binding needs both/),
    ]);
    const c = load({
      ACME_DOMAINS: 'a.example.com',
      ACME_DIRECTORY: 'google',
      ACME_EAB_KID: 'kid',
      ACME_EAB_HMAC_KEY: 'c2VjcmV0LWhtYWMta2V5LWJhc2U2NA',
      ACME_PROFILE: 'tlsserver',
      ACME_REUSE_KEY: 'yes',
      ACME_PREFERRED_CHAIN: 'ISRG Root X1',
    });
    expect(c.acme).toMatchObject({
      directoryName: 'google',
      eab: { kid: 'kid', hmacKey: 'c2VjcmV0LWhtYWMta2V5LWJhc2U2NA' },
      profile: 'tlsserver',
      reuseKey: true,
      preferredChain: 'ISRG Root X1',
    });
    expect(
      problems({ ACME_DOMAINS: 'a.example.com', ACME_EAB_KID: 'k', ACME_EAB_HMAC_KEY: 'not a key!' }).join('\n'),
    ).not.toContain('not a key!');
  });

  it('treats empty variables as unset (compose writes FOO= as "")', () => {
    expect(load({ ACME_DOMAINS: 'a.example.com', ACME_EMAIL: '', HTTP01_PORT: '' }).http01.port).toBe(80);
  });
});

describe('values that used to be accepted and failed later', () => {
  it('STATUS_ADDRESS is parsed once, with the port range checked; loopback by default', () => {
    expect(problems({ ACME_DOMAINS: 'a.example.com', STATUS_ADDRESS: 'localhost:99999' })).toEqual([
      'STATUS_ADDRESS: "localhost:99999" is not host:port with a port from 1 to 65535; use 127.0.0.1:9090, 0.0.0.0:9090 to expose it, or off',
    ]);
    expect(load({ ACME_DOMAINS: 'a.example.com', STATUS_ADDRESS: '[::]:9091' }).statusAddress).toEqual({
      host: '::',
      port: 9091,
    });
    expect(load({ ACME_DOMAINS: 'a.example.com', STATUS_ADDRESS: 'off' }).statusAddress).toBeUndefined();
    expect(load({ ACME_DOMAINS: 'a.example.com' }).statusAddress).toEqual({ host: '127.0.0.1', port: 9090 });
  });

  it('durations have an upper bound: no timer overflows, no daemon crash', () => {
    expect(
      problems({
        ACME_DOMAINS: 'a.example.com',
        RENEW_CHECK_INTERVAL: '100000000000000000000d',
        ACME_TIMEOUT: '30d',
        DNS01_PROPAGATION_TIMEOUT: '2d',
      }),
    ).toEqual([
      'ACME_TIMEOUT: "30d" is not a duration between 1s and 10m; write it like 30s',
      'DNS01_PROPAGATION_TIMEOUT: "2d" is not a duration between 5s and 1h; write it like 180s',
      'RENEW_CHECK_INTERVAL: "100000000000000000000d" is not a duration between 10s and 7d; write it like 12h',
    ]);
    expect(problems({ ACME_DOMAINS: 'a.example.com', RENEW_CHECK_INTERVAL: '1e20d' })).toEqual([
      'RENEW_CHECK_INTERVAL: "1e20d" is not a duration between 10s and 7d; write it like 12h',
    ]);
  });

  it('ACME_CONCURRENCY: 1 to 32 certificates at once, anything else is named', () => {
    expect(load({ ACME_DOMAINS: 'a.example.com', ACME_CONCURRENCY: '1' }).acme.concurrency).toBe(1);
    expect(load({ ACME_DOMAINS: 'a.example.com', ACME_CONCURRENCY: '32' }).acme.concurrency).toBe(32);
    for (const bad of ['0', '33', '-1', '2.5', 'four', '1e3']) {
      const [problem, ...rest] = problems({ ACME_DOMAINS: 'a.example.com', ACME_CONCURRENCY: bad });
      expect(rest).toEqual([]);
      expect(problem).toMatch(/^ACME_CONCURRENCY: .*(1 .*to 32|1 to 32)/);
    }
  });

  it('a YAML alias bomb is a configuration error (exit 78), not a crash', () => {
    const dir = tmp();
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    bomb.push('certificates:\n  - domains: *i');
    writeFileSync(join(dir, 'bomb.yml'), `${bomb.join('\n')}\n`);
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'bomb.yml') })).toEqual([
      expect.stringMatching(/^MAILCERTS_CONFIG \(.*bomb.yml\): the YAML cannot be read: .*alias/),
    ]);
  });

  it('a certificate may not take the name of a published file; IP literals and numeric TLDs are not names', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - domains: [mail.example.com]\n  - name: privkey.pem\n    domains: [mail.example.org]\n',
    );
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'c.yml') })).toEqual([
      `MAILCERTS_CONFIG certificates[1].name: "privkey.pem" is the name of a published file at the top of CERTS_DIR; choose another certificate name`,
    ]);
    expect(problems({ ACME_DOMAINS: '192.0.2.1,mail.example.123' })).toEqual([
      'ACME_DOMAINS: "192.0.2.1" is an IP address; certificates here are for DNS names only',
      'ACME_DOMAINS: "mail.example.123" ends in an all-numeric label, which no top-level domain is',
    ]);
  });

  it('the Cloudflare token never travels in clear: http:// only for a loopback API', () => {
    const base = {
      ACME_DOMAINS: 'a.example.com',
      ACME_CHALLENGE: 'dns-01',
      CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
    };
    expect(problems({ ...base, CLOUDFLARE_API_BASE_URL: 'http://api.example.net/client/v4' })).toEqual([
      'CLOUDFLARE_API_BASE_URL: use an https:// URL such as https://api.cloudflare.com/client/v4 (plain http only for a loopback address: the token would travel in clear)',
    ]);
    expect(
      (
        load({ ...base, CLOUDFLARE_API_BASE_URL: 'http://127.0.0.1:8787/client/v4' }).dns.providers.cloudflare as {
          baseUrl?: string;
        }
      ).baseUrl,
    ).toBe('http://127.0.0.1:8787/client/v4');
  });

  it('a value read from NAME_FILE is never echoed in an error (the file may be a secret)', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'oops'), 'root:$y$j9T$secrethash:19000:0:99999:7:::\n');
    const list = problems({ ACME_DOMAINS_FILE: join(dir, 'oops') });
    expect(list).toEqual([
      `ACME_DOMAINS_FILE (${join(dir, 'oops')}): the file's content is not a valid ACME_DOMAINS: the value is not a valid DNS name (letters, digits and hyphens between dots)`,
    ]);
    expect(list.join('\n')).not.toContain('secrethash');
  });
});

describe('several certificates served by SNI', () => {
  it('internationalized names become their A-label form; SNI_CERTS_PATH must be absolute', () => {
    expect(
      load({
        ACME_DOMAINS: 'Mail.Bücher.Example,*.bücher.example',
        ACME_CHALLENGE: 'dns-01',
        CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
      }).certificates[0]!.domains,
    ).toEqual(['mail.xn--bcher-kva.example', '*.xn--bcher-kva.example']);
    expect(load({ ACME_DOMAINS: 'a.example.com' }).sniCertsPath).toBe('/etc/ssl/mail');
    expect(load({ ACME_DOMAINS: 'a.example.com', SNI_CERTS_PATH: '/certs/' }).sniCertsPath).toBe('/certs');
    for (const bad of ['certs', '/etc/ssl/mail,/x', '/etc/ssl/%{user}', '/a b']) {
      expect(problems({ ACME_DOMAINS: 'a.example.com', SNI_CERTS_PATH: bad }), bad).toEqual([
        'SNI_CERTS_PATH: use the absolute path at which the mail containers mount the certificates volume, such as /etc/ssl/mail (letters, digits, . _ - and /)',
      ]);
    }
  });

  it('two certificates claiming the same name, or a certificate named sni, are refused naming the entries', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - name: a\n    domains: [mail.a.example, mx.example.com]\n  - name: sni\n    domains: [mail.b.example, MX.example.com]\n',
    );
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'c.yml') })).toEqual([
      'MAILCERTS_CONFIG certificates[1].name: "sni" is the directory of the SNI files at the top of CERTS_DIR; choose another certificate name',
      'MAILCERTS_CONFIG certificates[1].domains[1]: "mx.example.com" is also in certificates[0] ("a"); a client asking for a name by SNI can get one certificate only: list each name once',
    ]);
  });
});

describe('DOCKER_SCOPE: which containers mailcerts may act on', () => {
  it('is required when mailcerts does not run in a container; * and a project name are accepted', () => {
    expect(problems({ ACME_DOMAINS: 'a.example.com' }, { inContainer: false })).toEqual([
      expect.stringMatching(
        /^DOCKER_SCOPE: mailcerts does not run in a container, so it cannot tell which compose project is its own; set DOCKER_SCOPE/,
      ),
    ]);
    expect(load({ ACME_DOMAINS: 'a.example.com', DOCKER_RELOAD: 'false' }, { inContainer: false }).docker.reload).toBe(
      false,
    );
    expect(load({ ACME_DOMAINS: 'a.example.com', DOCKER_SCOPE: 'mail' }, { inContainer: false }).docker.scope).toBe(
      'mail',
    );
    expect(
      load(
        { ACME_DOMAINS: 'a.example.com', DOCKER_SCOPE: '*', VERIFY_HOSTS: 'mail.example.com,203.0.113.5' },
        { inContainer: false },
      ).docker,
    ).toEqual({
      reload: true,
      scope: '*',
      verifyHosts: ['mail.example.com', '203.0.113.5'],
      mode: 'volume',
      leaseMs: 120_000,
    });
    expect(problems({ ACME_DOMAINS: 'a.example.com', DOCKER_SCOPE: 'My Stack!' })).toEqual([
      expect.stringMatching(/^DOCKER_SCOPE: use the compose project name of the mail stack/),
    ]);
  });
});

describe('dual certificates: several key types', () => {
  it('ACME_KEY_TYPE and keyType take one ECDSA and one RSA, the first first', () => {
    expect(
      load({ ACME_DOMAINS: 'mail.example.com', ACME_KEY_TYPE: 'ec-256, rsa-2048' }).certificates[0]!.keyTypes,
    ).toEqual(['ec-256', 'rsa-2048']);
    expect(
      load({ ACME_DOMAINS: 'mail.example.com', ACME_KEY_TYPE: 'rsa-3072,ec-384' }).certificates[0]!.keyTypes,
    ).toEqual(['rsa-3072', 'ec-384']);
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - name: a\n    domains: [mail.a.test]\n    keyType: [ec-256, rsa-2048]\n  - name: b\n    domains: [mail.b.test]\n    keyType: "rsa-4096,ec-256"\n  - name: c\n    domains: [mail.c.test]\n',
    );
    expect(
      load({ MAILCERTS_CONFIG: join(dir, 'c.yml'), ACME_KEY_TYPE: 'ec-384' }).certificates.map((c) => c.keyTypes),
    ).toEqual([['ec-256', 'rsa-2048'], ['rsa-4096', 'ec-256'], ['ec-384']]);
  });

  it('refuses an unknown key type, one listed twice, and two of one algorithm, naming the setting', () => {
    const env = (k: string) => problems({ ACME_DOMAINS: 'mail.example.com', ACME_KEY_TYPE: k });
    expect(env('ec-256,dsa-1024')).toEqual([
      'ACME_KEY_TYPE: "dsa-1024" is not a key type; use one of ec-256, ec-384, rsa-2048, rsa-3072, rsa-4096, or two of them for dual certificates, as in ec-256,rsa-2048',
    ]);
    expect(env('rsa-2048,rsa-2048')).toEqual(['ACME_KEY_TYPE: "rsa-2048" is listed twice']);
    expect(env('ec-256,rsa-2048,rsa-4096')).toEqual([
      'ACME_KEY_TYPE: rsa-2048 and rsa-4096 are both RSA: Postfix and Dovecot serve one key of each algorithm; keep one of them',
    ]);
    expect(env('ec-256,ec-384')).toEqual([
      'ACME_KEY_TYPE: ec-256 and ec-384 are both ECDSA: Postfix and Dovecot serve one key of each algorithm; keep one of them',
    ]);
    expect(env(',')).toEqual([
      'ACME_KEY_TYPE: list at least one key type: ec-256, ec-384, rsa-2048, rsa-3072, rsa-4096',
    ]);
    const dir = tmp();
    writeFileSync(join(dir, 'c.yml'), 'certificates:\n  - domains: [mail.a.test]\n    keyType: [ec-256, ec-384]\n');
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'c.yml') })).toEqual([
      `MAILCERTS_CONFIG (${join(dir, 'c.yml')}) certificates[0].keyType: ec-256 and ec-384 are both ECDSA: Postfix and Dovecot serve one key of each algorithm; keep one of them`,
    ]);
  });

  it("a certificate may not take the name of a dual certificate's file either", () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - domains: [mail.a.test]\n  - name: rsa-privkey-fullchain.pem\n    domains: [mail.b.test]\n',
    );
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'c.yml') }).join('\n')).toContain(
      '"rsa-privkey-fullchain.pem" is the name of a published file at the top of CERTS_DIR',
    );
  });
});

describe('the config file (MAILCERTS_CONFIG)', () => {
  it('declares several certificates, each with its own names and key type', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - name: mail\n    domains: [mail.example.com]\n  - domains: [web.example.org, "*.example.org"]\n    keyType: rsa-3072\n    challenge: dns-01\n    dnsProvider: cloudflare\n',
    );
    const c = load({
      MAILCERTS_CONFIG: join(dir, 'c.yml'),
      ACME_KEY_TYPE: 'ec-384',
      CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
    });
    expect(c.certificates).toEqual([
      {
        source: 'acme',
        customDir: undefined,
        name: 'mail',
        domains: ['mail.example.com'],
        keyTypes: ['ec-384'],
        challenge: 'http-01',
        dnsProvider: undefined,
      },
      {
        source: 'acme',
        customDir: undefined,
        name: 'web.example.org',
        domains: ['web.example.org', '*.example.org'],
        keyTypes: ['rsa-3072'],
        challenge: 'dns-01',
        dnsProvider: 'cloudflare',
      },
    ]);
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ certificates: [{ domains: ['a.example.com'] }] }));
    expect(load({ MAILCERTS_CONFIG: join(dir, 'c.json') }).certificates[0]!.name).toBe('a.example.com');
  });

  it('points at the exact entry that is wrong', () => {
    const dir = tmp();
    const file = join(dir, 'c.yml');
    writeFileSync(
      file,
      'certificates:\n  - name: Mail!\n    domains: [mail.example.com, "no_good"]\n    keyType: dsa\n    colour: blue\n',
    );
    const list = problems({ MAILCERTS_CONFIG: file });
    expect(list).toContain(
      `MAILCERTS_CONFIG (${file}) certificates[0].name: use 1-64 lower-case letters, digits, dots, hyphens or underscores, starting with a letter or digit`,
    );
    expect(list).toContain(
      `MAILCERTS_CONFIG (${file}) certificates[0].domains[1]: "no_good" is not a valid DNS name (letters, digits and hyphens between dots)`,
    );
    expect(list).toContain(
      `MAILCERTS_CONFIG (${file}) certificates[0].keyType: "dsa" is not a key type; use one of ec-256, ec-384, rsa-2048, rsa-3072, rsa-4096, or two of them for dual certificates, as in ec-256,rsa-2048`,
    );
    expect(list.some((p) => p.includes('colour'))).toBe(true);
  });

  it('supplied certificates: CUSTOM_CERTS_DIR for one, a sub-directory each for several, mixed with ACME ones', () => {
    expect(load({ ACME_DOMAINS: 'mail.example.com', CUSTOM_CERTS_DIR: '/custom' }).certificates[0]).toMatchObject({
      source: 'custom',
      customDir: '/custom',
    });
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - name: internal\n    domains: [mail.corp.example]\n  - name: public\n    domains: [mail.example.com]\n    source: acme\n',
    );
    const c = load({ MAILCERTS_CONFIG: join(dir, 'c.yml'), CUSTOM_CERTS_DIR: '/custom' });
    expect(c.certificates.map((x) => [x.name, x.source, x.customDir])).toEqual([
      ['internal', 'custom', '/custom/internal'],
      ['public', 'acme', undefined],
    ]);
    writeFileSync(join(dir, 'd.yml'), 'certificates:\n  - domains: [mail.corp.example]\n    source: custom\n');
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'd.yml') })).toEqual([
      expect.stringMatching(/source: custom needs CUSTOM_CERTS_DIR/),
    ]);
  });

  it('reports broken YAML, duplicate names, and ACME_DOMAINS set as well', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'bad.yml'), 'certificates: [\n');
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'bad.yml') })[0]).toMatch(/not valid YAML/);
    writeFileSync(
      join(dir, 'dup.yml'),
      'certificates:\n  - domains: [a.example.com]\n  - name: a.example.com\n    domains: [b.example.com]\n',
    );
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'dup.yml') })).toEqual([
      expect.stringMatching(/certificates\[1\]\.name: "a.example.com" is used twice/),
    ]);
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'dup.yml'), ACME_DOMAINS: 'c.example.com' })).toContain(
      'ACME_DOMAINS: set either ACME_DOMAINS or the certificates in MAILCERTS_CONFIG, not both',
    );
  });

  it('loads the YAML parser it needs, as the CLI does: for MAILCERTS_CONFIG and for MAILCERTS_CONFIG_FILE, not for JSON', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'c.yml'), 'certificates:\n  - domains: [mail.example.com]\n');
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ certificates: [{ domains: ['mail.example.org'] }] }));
    writeFileSync(join(dir, 'path'), `${join(dir, 'c.yml')}\n`); // a secret file holding the path
    const viaCli = async (env: Record<string, string>) =>
      loadConfig(env, { inContainer: true, parts: CONFIG_PARTS, ...(await configParsers(env)) });
    expect((await viaCli({ MAILCERTS_CONFIG: join(dir, 'c.yml') })).certificates[0]!.domains).toEqual([
      'mail.example.com',
    ]);
    expect((await viaCli({ MAILCERTS_CONFIG_FILE: join(dir, 'path') })).certificates[0]!.domains).toEqual([
      'mail.example.com',
    ]);
    expect(await configParsers({ MAILCERTS_CONFIG: join(dir, 'c.json') })).toEqual({});
    expect((await viaCli({ MAILCERTS_CONFIG: join(dir, 'c.json') })).certificates[0]!.domains).toEqual([
      'mail.example.org',
    ]);
  });
});

describe('DNS providers: each reads its own variables', () => {
  const secret = Buffer.from('a TSIG secret of 32 bytes, here!').toString('base64');
  const base = { ACME_DOMAINS: 'mail.example.com', ACME_CHALLENGE: 'dns-01', ACME_DNS_PROVIDER: 'rfc2136' };

  it('rfc2136: server with the default port, key name, hmac-sha256 by default, the secret decoded', () => {
    const c = load({
      ...base,
      RFC2136_SERVER: 'ns1.example.com',
      RFC2136_TSIG_KEY: 'mailcerts.',
      RFC2136_TSIG_SECRET: secret,
    });
    expect(c.certificates[0]!.dnsProvider).toBe('rfc2136');
    expect(c.dns.providers.rfc2136).toEqual({
      server: { host: 'ns1.example.com', port: 53 },
      keyName: 'mailcerts',
      algorithm: 'hmac-sha256',
      secret: Buffer.from('a TSIG secret of 32 bytes, here!'),
    });
    expect(c.dns.providers.cloudflare).toBeUndefined();
    expect(c.secrets).toContain(secret);
    const v6 = load({
      ...base,
      RFC2136_SERVER: '[2001:db8::53]:5353',
      RFC2136_TSIG_KEY: 'k',
      RFC2136_TSIG_SECRET: secret,
      RFC2136_TSIG_ALGORITHM: 'hmac-sha512',
    });
    expect(v6.dns.providers.rfc2136).toMatchObject({
      server: { host: '2001:db8::53', port: 5353 },
      algorithm: 'hmac-sha512',
    });
  });

  it('rfc2136 used without its settings, or with half of them, names what is missing; a provider nobody uses is not required', () => {
    expect(problems(base)).toEqual([
      'RFC2136_SERVER: is required for dns-01 with rfc2136: the primary name server that accepts updates, with RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET (or _FILE) for the key that signs them',
    ]);
    expect(problems({ ...base, RFC2136_SERVER: '192.0.2.53' })).toEqual([
      'RFC2136_TSIG_KEY: RFC 2136 updates need RFC2136_SERVER, RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET (or _FILE) together; missing: RFC2136_TSIG_KEY, RFC2136_TSIG_SECRET',
    ]);
    expect(problems({ ...base, ACME_DNS_PROVIDER: 'route53' })).toEqual([
      'ACME_DNS_PROVIDER: use one of cloudflare, rfc2136',
    ]);
    expect(
      load({ ...base, ACME_DNS_PROVIDER: 'cloudflare', CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789' })
        .dns.providers.rfc2136,
    ).toBeUndefined();
  });

  it('a secret that is not base64 is refused without echoing it; so is a bad server or algorithm', () => {
    const found = problems({
      ...base,
      RFC2136_SERVER: 'ns1 example',
      RFC2136_TSIG_KEY: 'k',
      RFC2136_TSIG_SECRET: 'hunter2 is not base64',
      RFC2136_TSIG_ALGORITHM: 'hmac-sha3',
    });
    expect(found).toEqual([
      'RFC2136_SERVER: "ns1 example" is not host[:port]; use the primary name server\'s address or name, such as 192.0.2.53, ns1.example.com:53 or [2001:db8::53]:53',
      'RFC2136_TSIG_ALGORITHM: use one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5',
      'RFC2136_TSIG_SECRET: is not base64; use the secret line of the key as tsig-keygen prints it (secret "…";), without the quotes',
    ]);
    expect(found.join('\n')).not.toContain('hunter2');
  });
});

describe('DANE settings', () => {
  const base = {
    ACME_DOMAINS: 'mx.example.com,mail.example.com',
    ACME_CHALLENGE: 'dns-01',
    CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
  };

  it('DANE_NAMES for the single certificate: ports 25, TTL 1 h, the DNS-01 provider, a key lifetime of a year', () => {
    expect(load({ ...base, DANE_NAMES: 'mx.example.com' }).certificates[0]!.dane).toEqual({
      names: ['mx.example.com'],
      ports: [25],
      ttlSeconds: 3600,
      provider: 'cloudflare',
      keyLifetimeMs: 365 * 86_400_000,
    });
    expect(
      load({
        ...base,
        DANE_NAMES: 'mx.example.com',
        DANE_PORTS: '25,465,25',
        DANE_TTL: '2h',
        DANE_PROVIDER: 'none',
        DANE_KEY_LIFETIME: '90d',
      }).certificates[0]!.dane,
    ).toEqual({
      names: ['mx.example.com'],
      ports: [25, 465],
      ttlSeconds: 7200,
      provider: 'none',
      keyLifetimeMs: 90 * 86_400_000,
    });
  });

  it('refuses a DANE name not in the certificate, a wildcard, a supplied certificate, and http-01 without DANE_PROVIDER', () => {
    expect(problems({ ...base, DANE_NAMES: 'mx.other.com' })).toEqual([
      'DANE_NAMES: "mx.other.com" is not one of the names of "mx.example.com" (mx.example.com, mail.example.com); a DANE name must be in the certificate',
    ]);
    expect(problems({ ...base, ACME_DOMAINS: '*.example.com,example.com', DANE_NAMES: '*.example.com' })).toEqual([
      'DANE_NAMES: "*.example.com" is a wildcard; TLSA records name the MX host itself, such as mx.example.com',
    ]);
    const dir = tmp();
    expect(problems({ ...base, CUSTOM_CERTS_DIR: dir, DANE_NAMES: 'mx.example.com' })[0]).toMatch(
      /^DANE_NAMES: DANE needs a key that mailcerts controls and rolls over; "mx.example.com" is supplied \(CUSTOM_CERTS_DIR\)/,
    );
    expect(problems({ ACME_DOMAINS: 'mx.example.com', DANE_NAMES: 'mx.example.com' })).toEqual([
      'DANE_PROVIDER: "mx.example.com" uses http-01, so no DNS provider writes its TLSA records: set DANE_PROVIDER to cloudflare or rfc2136, or to none to publish them by hand',
    ]);
    expect(problems({ ...base, DANE_NAMES: 'mx.example.com', DANE_PORTS: '25,70000' })).toEqual([
      'DANE_PORTS: use a port number between 1 and 65535',
    ]);
    expect(problems({ ...base, DANE_NAMES: 'mx.example.com', DANE_PROVIDER: 'route53' })).toEqual([
      'DANE_PROVIDER: use one of cloudflare, rfc2136, or none to publish the records by hand',
    ]);
  });

  it('in the config file, dane: is per certificate; DANE_NAMES beside it is refused', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - name: mx\n    domains: [mx.example.com]\n    dane: [mx.example.com]\n  - domains: [web.example.org]\n',
    );
    const c = load({
      MAILCERTS_CONFIG: join(dir, 'c.yml'),
      ACME_CHALLENGE: 'dns-01',
      CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
    });
    expect(c.certificates.map((x) => x.dane?.names)).toEqual([['mx.example.com'], undefined]);
    expect(
      problems({
        MAILCERTS_CONFIG: join(dir, 'c.yml'),
        ACME_CHALLENGE: 'dns-01',
        CLOUDFLARE_API_TOKEN: 'abcdefghijklmnopqrstuvwxyz0123456789',
        DANE_NAMES: 'mx.example.com',
      }),
    ).toEqual(['DANE_NAMES: with MAILCERTS_CONFIG, list the DANE names per certificate (dane: [mx.example.com])']);
  });
});

describe('certificates from Traefik', () => {
  it('TRAEFIK_ACME_JSON makes the single certificate come from Traefik; in the file, source: traefik per certificate', () => {
    expect(
      load({ ACME_DOMAINS: 'mail.example.com', TRAEFIK_ACME_JSON: '/traefik/acme.json', TRAEFIK_RESOLVER: 'le' })
        .certificates[0],
    ).toMatchObject({ source: 'traefik', traefik: { file: '/traefik/acme.json', resolver: 'le', verifyChain: true } });
    expect(
      load({ ACME_DOMAINS: 'mail.example.com', TRAEFIK_ACME_JSON: '/traefik/acme.json', TRAEFIK_VERIFY_CHAIN: 'false' })
        .certificates[0]?.traefik?.verifyChain,
    ).toBe(false);
    expect(
      problems({
        ACME_DOMAINS: 'mail.example.com',
        TRAEFIK_ACME_JSON: '/traefik/acme.json',
        TRAEFIK_VERIFY_CHAIN: 'maybe',
      }),
    ).toEqual(['TRAEFIK_VERIFY_CHAIN: use true or false']);
    const dir = tmp();
    writeFileSync(
      join(dir, 'c.yml'),
      'certificates:\n  - domains: [mail.example.com]\n    source: traefik\n  - domains: [mx.example.org]\n    source: acme\n',
    );
    expect(problems({ MAILCERTS_CONFIG: join(dir, 'c.yml') })).toEqual([
      "MAILCERTS_CONFIG certificates[0].source: traefik needs TRAEFIK_ACME_JSON, the path of Traefik's acme.json mounted read-only",
    ]);
    expect(
      load({ MAILCERTS_CONFIG: join(dir, 'c.yml'), TRAEFIK_ACME_JSON: '/t/acme.json' }).certificates.map(
        (c) => c.source,
      ),
    ).toEqual(['traefik', 'acme']);
  });

  it('refuses CUSTOM_CERTS_DIR with TRAEFIK_ACME_JSON for one certificate, a relative path, and DANE on a Traefik certificate', () => {
    const dir = tmp();
    expect(
      problems({ ACME_DOMAINS: 'mail.example.com', TRAEFIK_ACME_JSON: '/t/acme.json', CUSTOM_CERTS_DIR: dir }),
    ).toContain(
      'TRAEFIK_ACME_JSON: set either CUSTOM_CERTS_DIR or TRAEFIK_ACME_JSON for the certificate, not both (or list the certificates in MAILCERTS_CONFIG with a source each)',
    );
    expect(problems({ ACME_DOMAINS: 'mail.example.com', TRAEFIK_ACME_JSON: 'acme.json' })).toEqual([
      "TRAEFIK_ACME_JSON: use the absolute path at which Traefik's acme.json is mounted (read-only), such as /traefik/acme.json",
    ]);
    expect(
      problems({
        ACME_DOMAINS: 'mail.example.com',
        TRAEFIK_ACME_JSON: '/t/acme.json',
        DANE_NAMES: 'mail.example.com',
        DANE_PROVIDER: 'none',
      })[0],
    ).toMatch(
      /^DANE_NAMES: DANE needs a key that mailcerts controls and rolls over; "mail.example.com" is taken from Traefik \(TRAEFIK_ACME_JSON\)/,
    );
  });
});

describe('alert settings', () => {
  it('ALERT_EMAIL needs ALERT_SMTP; URLs are checked without being echoed; the from address defaults to the first name', () => {
    const base = { ACME_DOMAINS: 'mail.example.com' };
    expect(problems({ ...base, ALERT_EMAIL: 'admin@example.com' })).toEqual([
      "ALERT_SMTP: ALERT_EMAIL needs the SMTP submission server to send through, such as smtp://postfix:587 (the stack's Postfix, with STARTTLS) or smtps://user:password@smtp.example.com:465",
    ]);
    const bad = problems({
      ...base,
      ALERT_EMAIL: 'admin@example.com',
      ALERT_SMTP: 'http://u:hunter2pass@x',
      ALERT_WEBHOOK: 'ftp://tok3n-secret@h',
    });
    expect(bad).toEqual([
      'ALERT_SMTP: use smtp://[user:password@]host[:port] (STARTTLS, port 587 by default) or smtps://…:465, such as smtp://postfix:587',
      'ALERT_WEBHOOK: use an http(s):// URL, such as https://ntfy.sh/my-topic or a Slack incoming webhook',
    ]);
    expect(bad.join(' ')).not.toMatch(/hunter2pass|tok3n-secret/);
    const c = load({
      ...base,
      ALERT_EMAIL: 'a@example.com,b@example.com',
      ALERT_SMTP: 'smtp://mailcerts:s3cret-pass@postfix:587',
      ALERT_WEBHOOK: 'https://ntfy.sh/topic',
      ALERT_WEBHOOK_FORMAT: 'ntfy',
    });
    expect(c.alerts).toEqual({
      email: {
        to: ['a@example.com', 'b@example.com'],
        smtp: 'smtp://mailcerts:s3cret-pass@postfix:587',
        from: 'mailcerts@mail.example.com',
        servername: 'mail.example.com',
      },
      webhook: { url: 'https://ntfy.sh/topic', format: 'ntfy' },
      afterMs: 86_400_000,
      expiryMs: 14 * 86_400_000,
    });
    expect(c.secrets).toContain('s3cret-pass');
  });

  it('ALERT_WEBHOOK: plain http:// only to loopback, no user:pass@; refused at load without echoing the URL', () => {
    const base = { ACME_DOMAINS: 'mail.example.com' };
    const webhook = (url: string) => problems({ ...base, ALERT_WEBHOOK: url });
    const cleartext =
      'ALERT_WEBHOOK: use https://; plain http:// only to a loopback address (127.0.0.1, [::1], localhost)';
    expect(webhook('http://ntfy.example.com/topic-s3cret')).toEqual([cleartext]);
    expect(webhook('http://10.0.0.7:8080/hook')).toEqual([cleartext]);
    expect(webhook('http://127.0.0.1.evil.example/hook')).toEqual([cleartext]);
    expect(webhook('http://[::ffff:8.8.8.8]/hook')).toEqual([cleartext]);
    const userinfo = [
      "ALERT_WEBHOOK: a user name or password in the URL (user:pass@) cannot be sent; use the token the service puts in the URL's path or query (a Slack webhook URL, ntfy's ?auth=)",
    ];
    expect(webhook('https://admin:hunter2pass@ntfy.example.com/topic')).toEqual(userinfo);
    expect(webhook('https://tok3n-s3cret@ntfy.example.com/topic')).toEqual(userinfo);
    expect(webhook('http://u:hunter2pass@127.0.0.1:8080/hook')).toEqual(userinfo);
    expect(
      [
        webhook('http://ntfy.example.com/topic-s3cret'),
        webhook('https://admin:hunter2pass@h/'),
        webhook('https://tok3n-s3cret@h/'),
      ]
        .flat()
        .join(' '),
    ).not.toMatch(/s3cret|hunter2pass/);
    for (const ok of [
      'https://ntfy.sh/topic',
      'http://127.0.0.1:8080/hook',
      'http://127.8.9.10/hook',
      'http://[::1]:8080/hook',
      'http://localhost/hook',
    ]) {
      expect(load({ ...base, ALERT_WEBHOOK: ok }).alerts.webhook?.url).toBe(new URL(ok).href);
    }
  });
});
