import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CloudflareDouble, startCloudflareDouble, zoneId } from '../doubles/cloudflare.js';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  containerLogs,
  docker,
  ENDPOINTS,
  type Endpoint,
  MAIL_IMAGE_TRIXIE,
  removeTestContainers,
  ROOT,
  servedCertificate,
  startMailStack,
  waitForPort,
} from '../helpers/mailstack.js';

/**
 * One mail host, three certificates served by SNI: two plain names and a wildcard with its apex,
 * issued from Pebble (the wildcard by DNS-01 through the Cloudflare double), into Postfix (texthash
 * map) and Dovecot (2.3 include), then Postfix 3.10 and Dovecot 2.4 from Debian trixie.
 */
const pebble = inject('pebble');
const work = join(inject('workDir'), 'sni');
const TOKEN = 'sni-token-0123456789abcdefABCDEF_-xyz';
const ALL: Endpoint[] = ['smtp', 'smtps', 'submission', 'imap', 'imaps', 'pop3', 'pop3s', 'sieve'];
// mx.c.test has a certificate of its own, under wild's *.c.test: the specific name must win.
const NAMES = {
  a: ['mail.a.test'],
  b: ['mail.b.test'],
  wild: ['c.test', 'anything.c.test'],
  mx: ['mx.c.test'],
} as const;
const certsDir = join(work, 'certs');
const config = join(work, 'mailcerts.yml');
const mainCf = join(work, 'main.cf');
let cf: CloudflareDouble;
let env: Record<string, string>;

const serialIn = (name: string) => new X509Certificate(readFileSync(join(certsDir, name, 'cert.pem'))).serialNumber;
const servedSerial = async (e: Endpoint, sni: string | null) =>
  new X509Certificate(await servedCertificate(e, sni)).serialNumber;
/** Every name of every certificate on every endpoint, and no SNI: what each one serves. */
async function servedTable(): Promise<Record<string, string>> {
  const table: Record<string, string> = {};
  for (const e of ALL) {
    for (const [cert, names] of Object.entries(NAMES))
      for (const n of names) table[`${e} ${n}`] = `${cert}:${await servedSerial(e, n)}`;
    table[`${e} (no SNI)`] = `a:${await servedSerial(e, null)}`;
  }
  return table;
}
function expectedTable(): Record<string, string> {
  const table: Record<string, string> = {};
  for (const e of ALL) {
    for (const [cert, names] of Object.entries(NAMES))
      for (const n of names) table[`${e} ${n}`] = `${cert}:${serialIn(cert)}`;
    table[`${e} (no SNI)`] = `a:${serialIn('a')}`;
  }
  return table;
}
const reloads = async (name: string) =>
  (await containerLogs(name)).match(/postfix\/master\[\d+\]: reload/g)?.length ?? 0;

beforeAll(async () => {
  mkdirSync(certsDir, { recursive: true });
  cf = await startCloudflareDouble({
    zones: [{ id: zoneId(), name: 'c.test' }],
    tokens: { [TOKEN]: { zones: '*', permissions: ['#zone:read', '#dns_records:read', '#dns_records:edit'] } },
    challtestsrv: `http://127.0.0.1:${pebble.dnsMgmtPort}`,
  });
  writeFileSync(
    config,
    [
      'certificates:',
      '  - name: a',
      '    domains: [mail.a.test]',
      '  - name: b',
      '    domains: [mail.b.test]',
      '  - name: wild',
      '    domains: [c.test, "*.c.test"]',
      '    challenge: dns-01',
      '  - name: mx',
      '    domains: [mx.c.test]',
      '',
    ].join('\n'),
  );
  // The stack's Postfix config plus the SNI map; the default (no SNI) stays the top of the volume.
  writeFileSync(
    mainCf,
    `${readFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), 'utf8')}tls_server_sni_maps = texthash:/etc/ssl/mail/sni/postfix.map\n`,
  );
  env = pebbleEnv(work, {
    MAILCERTS_CONFIG: config,
    CLOUDFLARE_API_TOKEN: TOKEN,
    CLOUDFLARE_API_BASE_URL: cf.url,
    DNS01_RESOLVERS: `127.0.0.1:${pebble.dnsPort}`,
    DNS01_PROPAGATION_TIMEOUT: '60s',
  });
  // The first issuance, before the mail servers start (as compose's depends_on: service_healthy does).
  const first = await runCli(['run', '--once'], env);
  expect(first.code, first.stdout).toBe(0);
}, 180_000);
afterAll(async () => {
  await removeTestContainers();
  await cf?.stop();
});

describe('per-domain certificates by SNI (Postfix 3.7 texthash map, Dovecot 2.3 include)', () => {
  let stack: { postfix: string; dovecot: string };

  it('publishes the SNI files beside the certificates, naming only published files', () => {
    const map = readFileSync(join(certsDir, 'sni', 'postfix.map'), 'utf8');
    expect(map.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem',
      'c.test /etc/ssl/mail/wild/privkey-fullchain.pem',
      '.c.test /etc/ssl/mail/wild/privkey-fullchain.pem',
      'mx.c.test /etc/ssl/mail/mx/privkey-fullchain.pem',
    ]);
    expect(readFileSync(join(certsDir, 'sni', 'dovecot.conf'), 'utf8')).toMatch(
      /^local_name \*\.c\.test \{\n {2}ssl_cert = <\/etc\/ssl\/mail\/wild\/privkey-fullchain\.pem/m,
    );
    expect(readFileSync(join(certsDir, 'sni', 'dovecot24.conf'), 'utf8')).toMatch(
      /^local_name mail\.b\.test \{\n {2}ssl_server_cert_file = \/etc\/ssl\/mail\/b\/privkey-fullchain\.pem/m,
    );
    expect(serialIn('a')).toBe(new X509Certificate(readFileSync(join(certsDir, 'cert.pem'))).serialNumber); // the first is also the default
  });

  it('each name on every endpoint (25/465/587/143/993/110/995/4190) gets its own certificate; no SNI gets the first', async () => {
    stack = await startMailStack(certsDir, { mainCf, labels: { 'mailcerts.certificates': '*' } });
    expect(await servedTable()).toEqual(expectedTable());
    // mailcerts checks the same, by itself.
    const r = await runCli(['renew', '--force', 'a'], env);
    expect(r.code, r.stdout).toBe(0);
    const checked = logsWith(r, { step: 'verify', msg: 'serves the published certificate' }).flatMap(
      (l) => l.endpoints as string[],
    );
    expect(checked).toContain(`smtp://127.0.0.1:${ENDPOINTS.smtp.port} (wild, mailcerts-probe.c.test)`);
    expect(checked).toContain(`imaps://127.0.0.1:${ENDPOINTS.imaps.port} (b, mail.b.test)`);
    expect(checked).toContain(`sieve://127.0.0.1:${ENDPOINTS.sieve.port} (a, no SNI)`);
    const status = (await runCli(['status'], env)).stdout;
    expect(status).toMatch(new RegExp(`${stack.postfix}\\s+yes\\s+all 6\\s+`));
  });

  it('renewing one certificate changes only its names, everywhere, after one reload', async () => {
    const before = expectedTable();
    const reloadsBefore = await reloads(stack.postfix);
    const r = await runCli(['renew', '--force', 'b'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(await reloads(stack.postfix)).toBe(reloadsBefore + 1);
    const after = await servedTable();
    expect(after).toEqual(expectedTable());
    for (const [k, v] of Object.entries(after)) {
      if (k.includes('mail.b.test')) expect(v, k).not.toBe(before[k]);
      else expect(v, k).toBe(before[k]);
    }
  });
});

describe('a Postfix that keeps its own indexed map (mailcerts.postmap)', () => {
  it('postmap -F rebuilds it before the reload, so the renewed certificate is served', async () => {
    await removeTestContainers();
    const maps = join(work, 'usermaps');
    mkdirSync(maps, { recursive: true });
    // The user's own map source, as certbot users keep it: mailcerts only rebuilds it.
    writeFileSync(join(maps, 'sni'), 'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem\n');
    const hashCf = join(work, 'main-hash.cf');
    writeFileSync(
      hashCf,
      `${readFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), 'utf8')}tls_server_sni_maps = hash:/etc/postfix/usermaps/sni\n`,
    );
    const { startContainer, VERIFY_LABELS } = await import('../helpers/mailstack.js');
    const postfix = await startContainer({
      name: 'postfix-hash',
      role: 'postfix',
      certsDir,
      mainCf: hashCf,
      reload: 'postfix',
      volumes: [`${maps}:/etc/postfix/usermaps`],
      labels: {
        'mailcerts.verify': VERIFY_LABELS.postfix,
        'mailcerts.certificates': 'a,b',
        'mailcerts.postmap': 'hash:/etc/postfix/usermaps/sni',
      },
      command: ['sh', '-c', 'postmap -F hash:/etc/postfix/usermaps/sni && exec postfix start-fg'],
    });
    await waitForPort(ENDPOINTS.smtp.port);
    expect(await servedSerial('smtp', 'mail.b.test')).toBe(serialIn('b'));
    const r = await runCli(['renew', '--force', 'b'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(
      logsWith(r, { container: postfix, command: 'postmap -F hash:/etc/postfix/usermaps/sni', exitCode: 0 }),
    ).toHaveLength(1);
    for (const e of ['smtp', 'smtps', 'submission'] as const)
      expect(await servedSerial(e, 'mail.b.test'), e).toBe(serialIn('b'));
    expect((await runCli(['check'], env)).stdout).toContain(
      `${postfix}: postconf -n, postfix check, postmap -F hash:/etc/postfix/usermaps/sni, then postfix reload`,
    );
  });

  it('a mailcerts.postmap that is not type:path: that container is not reloaded, and check names the label', async () => {
    const { startContainer } = await import('../helpers/mailstack.js');
    const odd = await startContainer({
      name: 'postfix-badmap',
      role: 'postfix',
      certsDir,
      network: 'none',
      reload: 'postfix',
      labels: { 'mailcerts.postmap': '/etc/postfix/sni' },
    });
    const r = await runCli(['renew', '--force', 'a'], env);
    expect(logsWith(r, { container: odd, msg: 'container not deployed' })[0]).toMatchObject({
      problem: 'label',
      error:
        'label mailcerts.postmap=/etc/postfix/sni: "/etc/postfix/sni" is not type:path; write it like hash:/etc/postfix/sni or lmdb:/etc/postfix/sni',
    });
    expect(logsWith(r, { container: odd, command: 'postfix reload' })).toHaveLength(0);
    const check = await runCli(['check'], env);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(
      `${odd}: INVALID LABEL mailcerts.postmap=/etc/postfix/sni: "/etc/postfix/sni" is not type:path`,
    );
    await docker('rm', '-f', odd);
  });
});

describe('Postfix 3.10 and Dovecot 2.4 (Debian trixie)', () => {
  it('serve each name with its certificate from the same files, Dovecot through sni/dovecot24.conf', async () => {
    await removeTestContainers();
    const stack = await startMailStack(certsDir, {
      mainCf,
      image: MAIL_IMAGE_TRIXIE,
      labels: { 'mailcerts.certificates': '*' },
    });
    expect(await docker('exec', stack.dovecot, 'dovecot', '--version')).toMatch(/^2\.4\./);
    expect(await docker('exec', stack.postfix, 'postconf', '-h', 'mail_version')).toMatch(/^3\.10\./);
    expect(await servedTable()).toEqual(expectedTable());
    const r = await runCli(['renew', '--force', 'wild'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { container: stack.dovecot, msg: 'serves the published certificate' })).toHaveLength(1);
    expect(await servedTable()).toEqual(expectedTable());
  });
});

describe('a server that does not serve a name by SNI', () => {
  it('is reported with the name, the endpoint and the certificate it serves instead, not restarted; status shows which names are wrong', async () => {
    await removeTestContainers();
    // Postfix without the SNI map: every name gets the default certificate.
    const stack = await startMailStack(certsDir, { labels: { 'mailcerts.certificates': '*' } });
    const r = await runCli(['renew', '--force', 'b'], env);
    expect(r.code).toBe(1);
    const failed = logsWith(r, { container: stack.postfix, msg: 'container not deployed' })[0];
    expect(failed).toMatchObject({ problem: 'mismatch' });
    expect(failed?.error).toMatch(
      new RegExp(
        `^serves another of the certificates for a name after reload: smtp://127\\.0\\.0\\.1:${ENDPOINTS.smtp.port} serves certificate a \\(serial ${serialIn('a')}, SHA-256 [0-9A-F:]{95}\\) instead of b \\(serial ${serialIn('b')}\\) for mail\\.b\\.test: its SNI setup does not pick the certificate by name`,
      ),
    );
    expect(
      logsWith(r, { msg: 'still serving an old certificate after reload: restarting the container' }),
    ).toHaveLength(0); // a restart would not help
    expect(logsWith(r, { step: 'rollback' })).toHaveLength(0); // nor would a rollback
    expect(logsWith(r, { container: stack.dovecot, msg: 'serves the published certificate' })).toHaveLength(1); // Dovecot has its include
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout)[0].containers[stack.postfix];
    expect(status.names).toEqual({
      'mail.a.test': true,
      '(no SNI)': true,
      'mail.b.test': false,
      'c.test': false,
      '*.c.test': false,
      'mx.c.test': false,
    });
    expect((await runCli(['status'], env)).stdout).toMatch(
      new RegExp(`${stack.postfix}\\s+NO\\s+2/6, wrong: mail\\.b\\.test c\\.test \\*\\.c\\.test mx\\.c\\.test`),
    );
  });
});
