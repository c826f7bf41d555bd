import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  containerLogs,
  docker,
  removeTestContainers,
  seedSelfSigned,
  startContainer,
  waitForLog,
} from '../helpers/mailstack.js';
import { makeChain } from '../helpers/pki.js';

const pebble = inject('pebble');
const work = join(inject('workDir'), 'modes');
const base = (name: string) => {
  const dir = join(work, name);
  mkdirSync(join(dir, 'certs'), { recursive: true });
  return {
    dir,
    env: pebbleEnv(dir),
  };
};

let server: Server | undefined;
/** Stands in for a web server that owns port 80: serves files from a webroot, or hangs. */
function webServer(handler: Parameters<typeof createServer>[1]): Promise<void> {
  server = createServer(handler);
  return new Promise((resolve) => server!.listen(pebble.httpPort, resolve));
}
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});
afterAll(removeTestContainers);

describe('HTTP01_MODE=webroot', () => {
  it('writes the token files where the web server serves them, and removes them afterwards', async () => {
    const { dir, env } = base('webroot');
    const webroot = join(dir, 'www');
    mkdirSync(webroot);
    const served: string[] = [];
    await webServer((req, res) => {
      const file = join(webroot, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      if (!file.startsWith(webroot) || !existsSync(file)) return res.writeHead(404).end();
      served.push(req.url!);
      res.end(readFileSync(file));
    });
    const r = await runCli(['run', '--once'], {
      ...env,
      ACME_DOMAINS: 'web.example.test',
      HTTP01_MODE: 'webroot',
      HTTP01_WEBROOT: webroot,
      DOCKER_RELOAD: 'false',
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(served.length).toBeGreaterThan(0);
    expect(served.every((u) => u.startsWith('/.well-known/acme-challenge/'))).toBe(true);
    expect(readdirSync(join(webroot, '.well-known', 'acme-challenge'))).toEqual([]);
    expect(readFileSync(join(env.CERTS_DIR!, 'cert.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
  });
});

describe('several certificates from a config file', () => {
  it('publishes each into its own directory and the first also at the top', async () => {
    const { dir, env } = base('multi');
    const file = join(dir, 'mailcerts.yml');
    writeFileSync(
      file,
      `certificates:\n  - name: mail\n    domains: [mail.example.org, smtp.example.org]\n  - domains: [imap.example.net]\n    keyType: rsa-2048\n`,
    );
    const r = await runCli(['run', '--once'], { ...env, MAILCERTS_CONFIG: file, DOCKER_RELOAD: 'false' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const certs = env.CERTS_DIR!;
    const read = (...p: string[]) => readFileSync(join(certs, ...p), 'utf8');
    expect(read('mail', 'fullchain.pem')).toBe(read('fullchain.pem'));
    expect(read('mail', 'privkey.pem')).toBe(read('privkey.pem'));
    expect(read('imap.example.net', 'cert.pem')).not.toBe(read('cert.pem'));
    expect(readlinkSync(join(certs, 'imap.example.net', 'fullchain.pem'))).toBe('..data/fullchain.pem');
    const { X509Certificate } = await import('node:crypto');
    expect(
      new X509Certificate(read('imap.example.net', 'cert.pem')).publicKey.asymmetricKeyDetails?.modulusLength,
    ).toBe(2048);

    const status = JSON.parse((await runCli(['status', '--json'], { ...env, MAILCERTS_CONFIG: file })).stdout);
    expect(status.map((s: { name: string; keyType: string }) => [s.name, s.keyType])).toEqual([
      ['mail', 'ec-256'],
      ['imap.example.net', 'rsa-2048'],
    ]);

    // A changed name list is a reason to renew; the unchanged certificate is left alone.
    writeFileSync(
      file,
      `certificates:\n  - name: mail\n    domains: [mail.example.org, smtp.example.org, pop.example.org]\n  - domains: [imap.example.net]\n    keyType: rsa-2048\n`,
    );
    const again = await runCli(['run', '--once'], { ...env, MAILCERTS_CONFIG: file, DOCKER_RELOAD: 'false' });
    expect(again.code).toBe(0);
    expect(logsWith(again, { cert: 'mail', step: 'plan', reason: 'names changed (+pop.example.org)' })).toHaveLength(1);
    expect(logsWith(again, { cert: 'imap.example.net', step: 'plan', decision: 'keep' })).toHaveLength(1);

    // renew --force NAME renews that certificate only.
    const before = read('mail', 'cert.pem');
    const one = await runCli(['renew', '--force', 'imap.example.net'], {
      ...env,
      MAILCERTS_CONFIG: file,
      DOCKER_RELOAD: 'false',
    });
    expect(one.code).toBe(0);
    expect(logsWith(one, { step: 'plan' }).map((l) => l.cert)).toEqual(['imap.example.net']);
    expect(read('mail', 'cert.pem')).toBe(before);
    const unknown = await runCli(['renew', 'nope'], { ...env, MAILCERTS_CONFIG: file, DOCKER_RELOAD: 'false' });
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain('no certificate named \\"nope\\"; known: mail, imap.example.net');
  });
});

describe('migrating from acme.sh or certbot', () => {
  it('adopts the plain files it finds, keeps that certificate until due, and renews with the same key (ACME_REUSE_KEY)', async () => {
    const { env } = base('migrate');
    const old = makeChain(['mail.example.test'], { days: 30 });
    writeFileSync(join(env.CERTS_DIR!, 'fullchain.pem'), old.fullchain);
    writeFileSync(join(env.CERTS_DIR!, 'privkey.pem'), old.key, { mode: 0o600 });
    const migrate = { ...env, ACME_DOMAINS: 'mail.example.test', ACME_REUSE_KEY: 'true', DOCKER_RELOAD: 'false' };
    const first = await runCli(['run', '--once'], migrate);
    expect(first.code, first.stdout).toBe(0);
    expect(logsWith(first, { step: 'plan', decision: 'keep' })).toHaveLength(1); // no order: the old certificate is fine
    expect(logsWith(first, { step: 'order' })).toHaveLength(0);
    expect(logsWith(first, { msg: 'restored a missing published copy' })).toHaveLength(1); // cert.pem, chain.pem, privkey-fullchain.pem added
    expect(readFileSync(join(env.CERTS_DIR!, 'privkey-fullchain.pem'), 'utf8')).toBe(old.key + old.fullchain);
    const renewed = await runCli(['renew', '--force'], migrate);
    expect(renewed.code, renewed.stdout).toBe(0);
    expect(readFileSync(join(env.CERTS_DIR!, 'privkey.pem'), 'utf8')).toBe(old.key);
    expect(readFileSync(join(env.CERTS_DIR!, 'fullchain.pem'), 'utf8')).not.toBe(old.fullchain);
  });
});

describe('reload actions other than the presets', () => {
  it('signal:SIGHUP, exec:<command> and restart each reach their container', async () => {
    const { env } = base('actions');
    await seedSelfSigned(env.CERTS_DIR!);
    const signalled = await startContainer({
      name: 'dovecot-signal',
      role: 'dovecot',
      certsDir: env.CERTS_DIR!,
      network: 'none',
      reload: 'signal:SIGHUP',
    });
    const execd = await startContainer({
      name: 'dovecot-exec',
      role: 'dovecot',
      certsDir: env.CERTS_DIR!,
      network: 'none',
      reload: 'exec:doveadm reload',
    });
    const restarted = await startContainer({
      name: 'postfix-restart',
      role: 'postfix',
      certsDir: env.CERTS_DIR!,
      network: 'none',
      reload: 'restart',
    });
    await waitForLog(restarted, /postfix\/master\[\d+\]: daemon started/);
    for (const c of [signalled, execd]) await waitForLog(c, /starting up for imap, pop3/);
    const startedAt = await docker('inspect', '-f', '{{.State.StartedAt}}', restarted);
    const r = await runCli(['run', '--once'], { ...env, ACME_DOMAINS: 'actions.example.test' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await containerLogs(signalled)).toMatch(/SIGHUP received - reloading configuration/);
    expect(await containerLogs(execd)).toMatch(/SIGHUP received - reloading configuration/);
    expect(logsWith(r, { container: execd, command: 'doveadm reload', exitCode: 0 })).toHaveLength(1);
    expect(await docker('inspect', '-f', '{{.State.StartedAt}}', restarted)).not.toBe(startedAt);
    expect(await docker('inspect', '-f', '{{.State.Running}}', restarted)).toBe('true');
    await removeTestContainers();
  });
});

describe('stopping', () => {
  it('SIGTERM during an order ends the daemon within seconds, publishing nothing', async () => {
    const { dir, env } = base('sigterm');
    const webroot = join(dir, 'www');
    mkdirSync(webroot);
    await webServer(() => {
      /* never answers: the CA keeps the authorization pending */
    });
    let sentAt = 0;
    const r = await runCli(
      ['run'],
      {
        ...env,
        ACME_DOMAINS: 'slow.example.test',
        HTTP01_MODE: 'webroot',
        HTTP01_WEBROOT: webroot,
        DOCKER_RELOAD: 'false',
      },
      {
        onLine: (line, pid) => {
          if (line.msg === 'wrote challenge file' && !sentAt) {
            sentAt = Date.now();
            setTimeout(() => process.kill(pid, 'SIGTERM'), 300);
          }
        },
      },
    );
    const took = Date.now() - sentAt;
    expect(sentAt, r.stdout).toBeGreaterThan(0);
    expect(r.code).toBe(0);
    expect(took).toBeLessThan(5_000);
    expect(logsWith(r, { step: 'daemon', msg: 'mailcerts stopped' })).toHaveLength(1);
    expect(logsWith(r, { step: 'publish' })).toHaveLength(0);
    expect(existsSync(join(env.CERTS_DIR!, '..data'))).toBe(false);
    expect(readdirSync(join(webroot, '.well-known', 'acme-challenge'))).toEqual([]);
    expect(existsSync(join(env.STATE_DIR!, 'pass.lock'))).toBe(false);
    expect(logsWith(r, { step: 'order', msg: 'order abandoned on shutdown' })).toHaveLength(1);
    // A stop is not a failure: no backoff recorded.
    expect(existsSync(join(env.STATE_DIR!, 'certificates', 'slow.example.test', 'state.json'))).toBe(false);
  });

  it('the idle daemon stops at once on SIGTERM', async () => {
    const { env } = base('idle');
    let sentAt = 0;
    const r = await runCli(
      ['run'],
      { ...env, ACME_DOMAINS: 'idle.example.test', DOCKER_RELOAD: 'false', RENEW_CHECK_INTERVAL: '1h' },
      {
        onLine: (line, pid) => {
          if (line.msg === 'waiting for the next pass' && !sentAt) {
            sentAt = Date.now();
            process.kill(pid, 'SIGTERM');
          }
        },
      },
    );
    expect(r.code, r.stdout).toBe(0);
    expect(Date.now() - sentAt).toBeLessThan(2_000);
    expect(logsWith(r, { step: 'report' })).toHaveLength(0);
    expect(logsWith(r, { step: 'publish', changed: true })).toHaveLength(1);
  });

  it("SIGTERM while a container's endpoint holds verification (accepts, never answers) stops at once; the deploy is redone at the next start", async () => {
    const { dir, env } = base('verify-stop');
    await seedSelfSigned(join(dir, 'certs'));
    const { createServer: tcpServer } = await import('node:net');
    const silent = tcpServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const hanging = await startContainer({
      name: 'hanging',
      role: 'postfix',
      certsDir: join(dir, 'certs'),
      reload: 'exec:true',
      labels: { 'mailcerts.verify': `smtps://:${port},submissions://:${port}` },
    });
    let sentAt = 0;
    try {
      const r = await runCli(
        ['run'],
        { ...env, ACME_DOMAINS: 'verify-stop.example.test' },
        {
          onLine: (line, pid) => {
            if (line.msg === 'container reloaded' && line.container === hanging && !sentAt) {
              sentAt = Date.now();
              setTimeout(() => process.kill(pid, 'SIGTERM'), 500); // mid-probe: the TLS handshake waits for an answer
            }
          },
        },
      );
      expect(sentAt, r.stdout).toBeGreaterThan(0);
      expect(r.code).toBe(0);
      expect(Date.now() - sentAt).toBeLessThan(2_500);
      expect(logsWith(r, { step: 'daemon', msg: 'mailcerts stopped' })).toHaveLength(1);
      expect(logsWith(r, { msg: 'deployment failed' })).toHaveLength(0); // a stop is not a failure
      const state = JSON.parse(
        readFileSync(join(dir, 'state', 'certificates', 'verify-stop.example.test', 'state.json'), 'utf8'),
      );
      expect(state.deployedDigest).toBeUndefined(); // so the next start reloads and verifies again

      // The next start: the endpoint now answers with what was published. No new order; the
      // container is reloaded and verified, and the deploy is recorded.
      // Not waited for: the connections the stopped process left open are the server's to drop.
      silent.close();
      const { createServer: tlsServer } = await import('node:tls');
      const certs = join(dir, 'certs');
      const tls = tlsServer({
        cert: readFileSync(join(certs, 'fullchain.pem')),
        key: readFileSync(join(certs, 'privkey.pem')),
      });
      tls.on('tlsClientError', () => undefined);
      await new Promise<void>((r) => tls.listen(port, '127.0.0.1', r));
      try {
        const next = await runCli(['run', '--once'], { ...env, ACME_DOMAINS: 'verify-stop.example.test' });
        expect(next.code, next.stdout).toBe(0);
        expect(logsWith(next, { step: 'plan', decision: 'keep' })).toHaveLength(1);
        expect(logsWith(next, { msg: 'container reloaded', container: hanging })).toHaveLength(1);
        expect(
          logsWith(next, { step: 'verify', msg: 'serves the published certificate', container: hanging }),
        ).toHaveLength(1);
        const after = JSON.parse(
          readFileSync(join(dir, 'state', 'certificates', 'verify-stop.example.test', 'state.json'), 'utf8'),
        );
        expect(after.deployedDigest).toMatch(/^[0-9a-f]{64}$/);
      } finally {
        tls.close();
      }
    } finally {
      silent.close();
      await docker('rm', '-f', hanging);
    }
  });
});
