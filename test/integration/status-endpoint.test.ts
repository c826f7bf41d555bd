import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { pebbleEnv, runCli } from '../helpers/cli.js';
import { removeTestContainers, seedSelfSigned, startMailStack } from '../helpers/mailstack.js';
import { makeExpired } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

const dir = join(inject('workDir'), 'status');
const ADDRESS = `127.0.0.1:${await freePort()}`;
const env = pebbleEnv(dir, { ACME_DOMAINS: 'status.example.test', STATUS_ADDRESS: ADDRESS });
const get = (path: string) => fetch(`http://${ADDRESS}${path}`);

type Family = { name: string; metrics: { value: string; labels?: Record<string, string> }[] };
const sample = (families: Family[], name: string, labels: Record<string, string> = {}) =>
  families
    .find((f) => f.name === name)
    ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;

afterAll(removeTestContainers);

describe('the status endpoint (/healthz, /status, /metrics) and mailcerts status', () => {
  it('reports health, status and Prometheus metrics from the same data; /healthz flips when a certificate is expired', async () => {
    mkdirSync(join(dir, 'certs'), { recursive: true });
    await seedSelfSigned(join(dir, 'certs'));
    const stack = await startMailStack(join(dir, 'certs'));
    let pid = 0;
    let ready = false;
    const daemon = runCli(['run'], env, {
      onLine: (l, p) => {
        pid = p;
        if (l.msg === 'waiting for the next pass') ready = true;
      },
    });
    try {
      while (!ready) await delay(100);

      const healthy = await get('/healthz');
      expect(healthy.status).toBe(200);
      expect(await healthy.json()).toEqual({ status: 'ok', problems: [] });

      const status = await (await get('/status')).json();
      const cli = JSON.parse((await runCli(['status', '--json'], env)).stdout);
      expect(status).toEqual(cli); // the endpoint and the command read the same data
      expect(status[0].containers[stack.postfix]).toMatchObject({ reloaded: true, serves: true });

      const text = await (await get('/metrics')).text();
      const families = parsePrometheusTextFormat(text) as Family[];
      const leaf = new X509Certificate(readFileSync(join(dir, 'certs', 'cert.pem')));
      expect(
        Number(
          sample(families, 'mailcerts_certificate_expiry_timestamp_seconds', { certificate: 'status.example.test' }),
        ),
      ).toBe(new Date(leaf.validTo).getTime() / 1000);
      expect(
        sample(families, 'mailcerts_certificate_consecutive_failures', { certificate: 'status.example.test' }),
      ).toBe('0');
      expect(sample(families, 'mailcerts_certificate_deployed', { certificate: 'status.example.test' })).toBe('1');
      expect(sample(families, 'mailcerts_container_serves_current', { container: stack.postfix })).toBe('1');
      expect(sample(families, 'mailcerts_container_serves_current', { container: stack.dovecot })).toBe('1');
      expect(sample(families, 'mailcerts_container_reload_success', { container: stack.dovecot })).toBe('1');
      expect(sample(families, 'mailcerts_healthy')).toBe('1');
      expect(
        Number(
          sample(families, 'mailcerts_certificate_next_renewal_timestamp_seconds', {
            certificate: 'status.example.test',
          }),
        ),
      ).toBeGreaterThan(Date.now() / 1000);

      const table = (await runCli(['status'], env)).stdout;
      expect(table).toMatch(new RegExp(`${stack.postfix}\\s+yes\\s+`));
      expect(table).toMatch(/^CONTAINER\s+SERVES CURRENT\s+NAMES OK\s+LAST DEPLOY\s+PROBLEM$/m);
      expect(table).toMatch(new RegExp(`${stack.postfix}\\s+yes\\s+all 2\\s+`)); // status.example.test by SNI, and no SNI

      // Time passes: the published certificate is now an expired one.
      const expired = makeExpired('status.example.test');
      const version = readlinkSync(join(dir, 'certs', '..data'));
      writeFileSync(join(dir, 'certs', version, 'fullchain.pem'), expired.cert);
      writeFileSync(join(dir, 'certs', version, 'privkey.pem'), expired.key);
      await delay(1_100); // the endpoint reads the files at most once a second
      const sick = await get('/healthz');
      expect(sick.status).toBe(503);
      expect(await sick.json()).toEqual({
        status: 'unhealthy',
        problems: ['status.example.test: expired on 2020-01-02T00:00:00.000Z'],
      });
      expect(
        sample(parsePrometheusTextFormat(await (await get('/metrics')).text()) as Family[], 'mailcerts_healthy'),
      ).toBe('0');

      expect((await get('/nothing')).status).toBe(404);
      expect((await fetch(`http://${ADDRESS}/healthz`, { method: 'POST' })).status).toBe(405);
    } finally {
      if (pid) process.kill(pid, 'SIGTERM');
      expect((await daemon).code).toBe(0);
    }
  });
});
