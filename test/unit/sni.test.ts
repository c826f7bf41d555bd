import { describe, expect, it } from 'vitest';
import { renderSni } from '../../src/deploy/kinds/index.js';

const certs = [
  { name: 'a', domains: ['mail.a.test', 'smtp.a.test'], dir: 'a', files: ['privkey-fullchain.pem'] },
  { name: 'b', domains: ['mail.b.test'], dir: 'b', files: ['privkey-fullchain.pem'] },
  { name: 'wild', domains: ['c.test', '*.c.test'], dir: 'wild', files: ['privkey-fullchain.pem'] },
];
const byName = (files: { name: string; data: string }[]) => Object.fromEntries(files.map((f) => [f.name, f.data]));

describe('the SNI files', () => {
  it('Postfix: one line per name, a wildcard as .parent, the combined key+chain file as the containers see it', () => {
    const map = byName(renderSni(certs, '/etc/ssl/mail'))['postfix.map']!;
    expect(map.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'smtp.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem',
      'c.test /etc/ssl/mail/wild/privkey-fullchain.pem',
      '.c.test /etc/ssl/mail/wild/privkey-fullchain.pem',
    ]);
    expect(map).toContain('# main.cf: tls_server_sni_maps = texthash:/etc/ssl/mail/sni/postfix.map');
  });

  it("Dovecot 2.3 and 2.4: one local_name block per name, in each version's syntax and match order (2.3: first match, 2.4: last)", () => {
    const files = byName(renderSni(certs, '/mnt/certs/'));
    expect(files['dovecot.conf']).toContain('# dovecot.conf: !include_try /mnt/certs/sni/dovecot.conf\n');
    const blocks23 = files['dovecot.conf']!.split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    expect(blocks23).toBe(
      [
        'local_name mail.a.test {',
        '  ssl_cert = </mnt/certs/a/privkey-fullchain.pem',
        '  ssl_key = </mnt/certs/a/privkey-fullchain.pem',
        '}',
        'local_name smtp.a.test {',
        '  ssl_cert = </mnt/certs/a/privkey-fullchain.pem',
        '  ssl_key = </mnt/certs/a/privkey-fullchain.pem',
        '}',
        'local_name mail.b.test {',
        '  ssl_cert = </mnt/certs/b/privkey-fullchain.pem',
        '  ssl_key = </mnt/certs/b/privkey-fullchain.pem',
        '}',
        'local_name c.test {',
        '  ssl_cert = </mnt/certs/wild/privkey-fullchain.pem',
        '  ssl_key = </mnt/certs/wild/privkey-fullchain.pem',
        '}',
        'local_name *.c.test {',
        '  ssl_cert = </mnt/certs/wild/privkey-fullchain.pem',
        '  ssl_key = </mnt/certs/wild/privkey-fullchain.pem',
        '}',
        '',
      ].join('\n'),
    );
    const first24 = files['dovecot24.conf']!.split('\n')
      .filter((l) => !l.startsWith('#'))
      .slice(0, 4);
    expect(first24).toEqual([
      'local_name *.c.test {',
      '  ssl_server_cert_file = /mnt/certs/wild/privkey-fullchain.pem',
      '  ssl_server_key_file = /mnt/certs/wild/privkey-fullchain.pem',
      '}',
    ]);
  });

  it('a single certificate at the top of CERTS_DIR is named there', () => {
    const map = byName(
      renderSni(
        [{ name: 'm', domains: ['mail.example.com'], dir: '', files: ['privkey-fullchain.pem'] }],
        '/etc/ssl/mail',
      ),
    )['postfix.map']!;
    expect(map.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mail.example.com /etc/ssl/mail/privkey-fullchain.pem',
    ]);
  });
});

describe('the SNI files with names from a configuration', () => {
  it('carry internationalized names in their A-label form, as the configuration converts them', async () => {
    const { aLabelName } = await import('../../src/config/schema.js');
    const map = byName(
      renderSni(
        [
          {
            name: 'idn',
            domains: [aLabelName('Mail.Bücher.Example')!, aLabelName('*.bücher.example')!],
            dir: 'idn',
            files: ['privkey-fullchain.pem'],
          },
        ],
        '/etc/ssl/mail',
      ),
    )['postfix.map']!;
    expect(map.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mail.xn--bcher-kva.example /etc/ssl/mail/idn/privkey-fullchain.pem',
      '.xn--bcher-kva.example /etc/ssl/mail/idn/privkey-fullchain.pem',
    ]);
  });
});

describe('the SNI files for a dual certificate', () => {
  const dual = [
    {
      name: 'd',
      domains: ['mail.d.test', '*.d.test'],
      dir: 'd',
      files: ['rsa-privkey-fullchain.pem', 'ecdsa-privkey-fullchain.pem'],
    },
    { name: 's', domains: ['mail.s.test'], dir: 's', files: ['privkey-fullchain.pem'] },
  ];
  const files = byName(renderSni(dual, '/etc/ssl/mail'));

  it('Postfix: both files on the map line, the first variant first; a single key type stays one file', () => {
    expect(files['postfix.map']!.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mail.d.test /etc/ssl/mail/d/rsa-privkey-fullchain.pem,/etc/ssl/mail/d/ecdsa-privkey-fullchain.pem',
      '.d.test /etc/ssl/mail/d/rsa-privkey-fullchain.pem,/etc/ssl/mail/d/ecdsa-privkey-fullchain.pem',
      'mail.s.test /etc/ssl/mail/s/privkey-fullchain.pem',
    ]);
  });

  it("Dovecot: the second variant as the alt certificate in each local_name block, in each version's syntax", () => {
    expect(files['dovecot.conf']).toContain(
      'local_name *.d.test {\n  ssl_cert = </etc/ssl/mail/d/rsa-privkey-fullchain.pem\n  ssl_key = </etc/ssl/mail/d/rsa-privkey-fullchain.pem\n  ssl_alt_cert = </etc/ssl/mail/d/ecdsa-privkey-fullchain.pem\n  ssl_alt_key = </etc/ssl/mail/d/ecdsa-privkey-fullchain.pem\n}\n',
    );
    expect(files['dovecot24.conf']).toContain(
      'local_name mail.d.test {\n  ssl_server_cert_file = /etc/ssl/mail/d/rsa-privkey-fullchain.pem\n  ssl_server_key_file = /etc/ssl/mail/d/rsa-privkey-fullchain.pem\n  ssl_server_alt_cert_file = /etc/ssl/mail/d/ecdsa-privkey-fullchain.pem\n  ssl_server_alt_key_file = /etc/ssl/mail/d/ecdsa-privkey-fullchain.pem\n}\n',
    );
    expect(files['dovecot.conf']).toContain(
      'local_name mail.s.test {\n  ssl_cert = </etc/ssl/mail/s/privkey-fullchain.pem\n  ssl_key = </etc/ssl/mail/s/privkey-fullchain.pem\n}\n',
    );
  });
});
