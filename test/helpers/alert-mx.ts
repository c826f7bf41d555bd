import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { inject } from 'vitest';
import { containerLogs, mailConfig, startContainer } from './mailstack.js';
import { makeChain } from './pki.js';

/** The admin's mail server for alerts: a real Postfix delivering alerts.test to a maildir the test reads. */
export interface AlertMx {
  container: string;
  /** Pebble's CA and the root of the MX's certificate: NODE_EXTRA_CA_CERTS for a mailcerts that trusts it. */
  caBundle: string;
  /** The messages delivered to <box>@alerts.test, as files in its maildir. */
  mailbox(box?: string): string[];
  mailboxHas(n: number, box?: string): Promise<string[]>;
}

/**
 * Starts it on 127.0.0.1: `starttls` offers STARTTLS with a certificate for alerts.test (by a test
 * CA); `plain`, when given, offers no STARTTLS at all. `sniMap` (file content) and `volumes` let
 * it serve other certificates by SNI.
 */
export async function startAlertMx(
  work: string,
  o: { name: string; ports: { starttls: number; plain?: number }; sniMap?: string; volumes?: string[] },
): Promise<AlertMx> {
  const maildir = join(work, 'mail');
  mkdirSync(maildir, { recursive: true });
  chownSync(maildir, 5000, 5000);
  const chain = makeChain(['alerts.test']);
  const certs = join(work, 'mx-certs');
  mkdirSync(certs, { recursive: true });
  writeFileSync(join(certs, 'privkey-fullchain.pem'), chain.key + chain.fullchain);
  const caBundle = join(work, 'ca-bundle.pem');
  writeFileSync(caBundle, readFileSync(inject('pebble').caFile, 'utf8') + chain.root);
  const volumes = [`${maildir}:/var/mail/vhosts`, ...(o.volumes ?? [])];
  if (o.sniMap !== undefined) {
    writeFileSync(join(work, 'sni.map'), o.sniMap);
    volumes.push(`${join(work, 'sni.map')}:/etc/postfix/sni.map:ro`);
  }
  writeFileSync(
    join(work, 'main.cf'),
    [
      'compatibility_level = 3.6',
      'myhostname = alerts.test',
      'mydestination =',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'maillog_file = /dev/stdout',
      'smtpd_tls_security_level = may',
      'smtpd_tls_chain_files = /etc/ssl/mail/privkey-fullchain.pem',
      'smtpd_tls_loglevel = 1',
      'smtpd_tls_received_header = yes',
      ...(o.sniMap !== undefined ? ['tls_server_sni_maps = texthash:/etc/postfix/sni.map'] : []),
      'virtual_mailbox_domains = alerts.test',
      'virtual_mailbox_base = /var/mail/vhosts',
      'virtual_mailbox_maps = inline:{ admin@alerts.test=admin/, ops@alerts.test=ops/ }',
      'virtual_uid_maps = static:5000',
      'virtual_gid_maps = static:5000',
      'virtual_minimum_uid = 100',
      'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(work, 'master.cf'),
    [
      `127.0.0.1:${o.ports.starttls} inet n - n - - smtpd`,
      ...(o.ports.plain ? [`127.0.0.1:${o.ports.plain} inet n - n - - smtpd -o smtpd_tls_security_level=none`] : []),
      ...mailConfig('postfix/master.cf')
        .split('\n')
        .filter((l) => l && !/^\S+:\d+ inet/.test(l) && !l.startsWith('#')),
      'virtual   unix  -       n       n       -       -       virtual',
      '',
    ].join('\n'),
  );
  const container = await startContainer({
    name: o.name,
    role: 'postfix',
    certsDir: certs,
    mainCf: join(work, 'main.cf'),
    masterCf: join(work, 'master.cf'),
    volumes,
  });
  for (let i = 0; !/daemon started/.test(await containerLogs(container)); i++) {
    if (i > 150) throw new Error(`the alerts Postfix did not start:\n${await containerLogs(container)}`);
    await delay(100);
  }
  const mailbox = (box = 'admin') => {
    const dir = join(maildir, box, 'new');
    try {
      // Quoted-printable, as nodemailer writes long lines: soft breaks joined, =XX decoded.
      const qp = (t: string) =>
        t.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      return readdirSync(dir)
        .sort()
        .map((f) => qp(readFileSync(join(dir, f), 'utf8')));
    } catch {
      return [];
    }
  };
  const mailboxHas = async (n: number, box = 'admin') => {
    for (let i = 0; i < 150 && mailbox(box).length < n; i++) await delay(100);
    return mailbox(box);
  };
  return { container, caBundle, mailbox, mailboxHas };
}
