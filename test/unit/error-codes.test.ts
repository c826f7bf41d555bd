import { describe, expect, it } from 'vitest';
import { AcmeError } from '../../src/obtain/acme-http.js';
import { Cancelled, CodedError, ERROR_CODES, errorCode, throwIfCancelled } from '../../src/util/error-codes.js';
import { retry } from '../../src/util/retry.js';

const acme = (type: string | undefined, code?: string) =>
  new AcmeError('authorization', { cert: 'mail', domain: 'mail.example.com' }, new Error('x'), {
    type: type && `urn:ietf:params:acme:error:${type}`,
    code,
  } as never);

describe('the error codes', () => {
  it('takes an ACME problem type first, then the ACME step, then the step the failure was recorded at', () => {
    expect(errorCode(acme('caa'), 'order')).toBe('MC_ACME_CAA');
    expect(errorCode(acme('rateLimited'), 'order')).toBe('MC_ACME_RATE_LIMITED');
    expect(errorCode(acme('unauthorized'), 'order')).toBe('MC_ACME_VALIDATION');
    expect(errorCode(acme(undefined, 'ECONNREFUSED'), 'order')).toBe('MC_ACME_UNREACHABLE');
    expect(errorCode(acme('serverInternal'), 'order')).toBe('MC_ACME_VALIDATION'); // its step: authorization
    expect(errorCode(new Error('disk full'), 'publish')).toBe('MC_PUBLISH');
    expect(errorCode(new Error('?'))).toBe('MC_UNEXPECTED');
    expect(errorCode(new CodedError('MC_DANE', 'x'), 'publish')).toBe('MC_DANE');
    // A code that is not in the catalogue (Node's ENOENT) is not taken for one.
    expect(errorCode(Object.assign(new Error('x'), { code: 'ENOENT' }), 'publish')).toBe('MC_PUBLISH');
  });

  it('has one cancellation error, which a wait of the retry helper throws when mailcerts stops', async () => {
    const ac = new AbortController();
    ac.abort(new Cancelled()); // as mailcerts stops, on SIGTERM
    expect(() => throwIfCancelled(ac.signal, 'the order')).toThrow('the order cancelled: shutting down');
    const err = await retry(
      async () => {
        throw new Error('not yet');
      },
      { signal: ac.signal, attempts: 3, backoff: [10] },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Cancelled);
    expect(errorCode(err)).toBe('MC_CANCELLED');
    expect(errorCode(new DOMException('stop', 'AbortError'))).toBe('MC_CANCELLED');
  });

  it('explains each code with what to do', () => {
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^MC_[A-Z_]+$/);
      expect(e.title.length, code).toBeGreaterThan(10);
      expect(e.fix.length, code).toBeGreaterThan(30);
    }
  });
});
