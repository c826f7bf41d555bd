import { describe, expect, it } from 'vitest';
import { AcmeError, parseRetryAfter } from '../../src/obtain/acme-http.js';

describe('ACME errors say what went wrong and what to check', () => {
  it('names certificate, domain, step, the problem type and a hint that fits the challenge', () => {
    const http = new AcmeError(
      'authorization',
      { cert: 'mail', domain: 'mail.example.com', challenge: 'http-01' },
      new Error('x'),
      {
        status: 403,
        type: 'urn:ietf:params:acme:error:connection',
        detail: 'Connection refused',
      },
    );
    expect(http.message).toBe(
      'certificate "mail", domain mail.example.com: authorization failed: the CA said: Connection refused (connection, HTTP 403). The CA could not fetch http://mail.example.com/.well-known/acme-challenge/…: make sure the name resolves to this host and that port 80 reaches mailcerts (HTTP01_PORT / HTTP01_MODE)',
    );
    const dns = new AcmeError(
      'authorization',
      { cert: 'mail', domain: 'example.com', challenge: 'dns-01' },
      new Error('x'),
      {
        type: 'urn:ietf:params:acme:error:unauthorized',
        detail: 'No TXT records found for DNS challenge',
      },
    );
    expect(dns.message).toMatch(
      /The CA did not find the TXT record _acme-challenge.example.com: check that the zone at the DNS provider is the one the world sees/,
    );
    expect(dns.message).not.toMatch(/port 80/);
  });

  it('keeps the problem type and Retry-After, and says when the CA rate-limits', () => {
    const e = new AcmeError('order', { cert: 'mail' }, new Error('x'), {
      status: 429,
      type: 'urn:ietf:params:acme:error:rateLimited',
      detail: 'too many certificates',
      retryAfterMs: 3_600_000,
    });
    expect(e.problem.type).toBe('urn:ietf:params:acme:error:rateLimited');
    expect(e.message).toMatch(
      /rateLimited, HTTP 429\)\. The CA rate-limits this request; it asks to wait 60 min; mailcerts retries later$/,
    );
  });

  it('an account or network failure names no certificate', () => {
    expect(new AcmeError('account', {}, new Error('x'), { code: 'ECONNREFUSED' }).message).toBe(
      'the ACME account: account failed: no answer from the CA (ECONNREFUSED). Check that ACME_DIRECTORY is right and that this host can reach it',
    );
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('the logger', () => {
  it('never writes a configured secret, whatever field or message carries it', async () => {
    const { createLogger } = await import('../../src/log.js');
    const { registerSecrets } = await import('../../src/util/redact.js');
    registerSecrets(['s3cr3t-token-value']);
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => lines.push(l) });
    log.info({ error: 'Cloudflare said s3cr3t-token-value is bad', token: 'x' }, 'msg with s3cr3t-token-value');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('s3cr3t-token-value');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      error: 'Cloudflare said [redacted] is bad',
      token: '[redacted]',
      msg: 'msg with [redacted]',
    });
  });

  it('censors the fields that carry secrets by name, at the top and one level down, in child loggers too', async () => {
    const { createLogger } = await import('../../src/log.js');
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => lines.push(l) });
    const headers = { authorization: 'Bearer abc', accept: 'json' };
    log
      .child({ cert: 'a', password: 'hunter2' })
      .info({ key: 'PEM', headers, apiToken: 't', keyType: 'ec', url: 'https://api.example/zones' }, 'm');
    log.info({ step: 'plan', cert: 'b' }, 'no secret');
    const [first, second] = lines.map((l) => JSON.parse(l));
    expect(first).toMatchObject({
      cert: 'a',
      password: '[redacted]',
      key: '[redacted]',
      apiToken: '[redacted]',
      keyType: 'ec',
      url: 'https://api.example/zones',
      headers: { authorization: '[redacted]', accept: 'json' },
    });
    expect(headers.authorization).toBe('Bearer abc'); // the caller's object is not changed
    expect(second).toMatchObject({ step: 'plan', cert: 'b', msg: 'no secret' });
  });
});
