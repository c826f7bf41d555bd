import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { containerLogs, docker, ENDPOINTS, mailConfig, startContainer } from './mailstack.js';

/** A sending Postfix that delivers with DANE (smtp_tls_security_level = dane) through a validating resolver. */
export interface DaneSender {
  container: string;
  /** Sends one message to postmaster@MX; resolves with what its SMTP client logged about it. */
  deliver(): Promise<string>;
}

/**
 * Starts it: no listener of its own, every message to [mx]:<the stack's SMTP port>, the resolver
 * at `resolver` (a validating one, e.g. unbound) as its /etc/resolv.conf.
 */
export async function startDaneSender(
  work: string,
  o: { name: string; mx: string; resolver: string; certsDir: string },
): Promise<DaneSender> {
  const conf = join(work, o.name);
  mkdirSync(conf, { recursive: true });
  writeFileSync(
    join(conf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      'myhostname = sender.test',
      'mydestination =',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'maillog_file = /dev/stdout',
      'smtp_connection_cache_on_demand = no',
      'smtp_dns_support_level = dnssec',
      'smtp_tls_security_level = dane',
      'smtp_tls_loglevel = 1',
      `relayhost = [${o.mx}]:${ENDPOINTS.smtp.port}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(conf, 'master.cf'),
    mailConfig('postfix/master.cf')
      .split('\n')
      .filter((l) => !/^\S+:\d+ inet/.test(l))
      .join('\n'),
  );
  writeFileSync(join(conf, 'resolv.conf'), `nameserver ${o.resolver}\noptions trust-ad edns0\n`);
  const container = await startContainer({
    name: o.name,
    role: 'postfix',
    certsDir: o.certsDir,
    mainCf: join(conf, 'main.cf'),
    masterCf: join(conf, 'master.cf'),
    volumes: [`${join(conf, 'resolv.conf')}:/etc/resolv.conf:ro`],
  });
  for (let i = 0; !/daemon started/.test(await containerLogs(container)); i++) {
    if (i > 150) throw new Error(`the sending Postfix did not start:\n${await containerLogs(container)}`);
    await delay(100);
  }
  let sent = 0;
  const deliver = async () => {
    const from = (await containerLogs(container)).split('\n').length - 1;
    const id = `${o.name}-${++sent}`;
    await docker(
      'exec',
      container,
      'sh',
      '-c',
      `printf 'Subject: ${id}\\n\\n${id}\\n' | sendmail -f sender@sender.test postmaster@${o.mx}`,
    );
    const until = Date.now() + 30_000;
    for (;;) {
      const smtp = (await containerLogs(container))
        .split('\n')
        .slice(from)
        .filter((l) => /postfix\/smtp\[/.test(l));
      if (smtp.some((l) => /status=/.test(l))) return smtp.join('\n');
      if (Date.now() > until) throw new Error(`no delivery attempt logged within 30s:\n${smtp.join('\n')}`);
      await delay(200);
    }
  };
  return { container, deliver };
}
