import { describe, expect, it } from 'vitest';
import type { IssueRequest, Issued } from '../../src/obtain/issuer.js';
import { reuseNonces } from '../../src/obtain/acme-http.js';
import { captureLog, engineWith, FakeDeployer, FakeIssuer, testConfig } from '../helpers/fakes.js';

/** A CA that takes a while per order and records how many orders were in flight at once. */
class SlowIssuer extends FakeIssuer {
  inFlight = 0;
  maxInFlight = 0;
  started: string[] = [];
  override async issue(req: IssueRequest): Promise<Issued> {
    this.started.push(req.spec.name);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 30));
      return await super.issue(req);
    } finally {
      this.inFlight--;
    }
  }
}

const certs = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ name: `c${i}`, domains: [`mail${i}.example.test`] }));

describe('ACME_CONCURRENCY: certificates obtained side by side', () => {
  it('never more orders in flight than ACME_CONCURRENCY; every certificate published; outcomes in configuration order', async () => {
    const { config } = testConfig(certs(10), { ACME_CONCURRENCY: '3' });
    const issuer = new SlowIssuer();
    const result = await engineWith(
      config,
      issuer,
      new FakeDeployer([{ name: 'postfix', certs: ['c0'] }]),
      captureLog().log,
    ).pass();
    expect(issuer.maxInFlight).toBe(3);
    expect(result.ok).toBe(true);
    expect(result.certs.map((c) => c.name)).toEqual(certs(10).map((c) => c.name));
    expect(result.certs.every((c) => c.issued && c.published)).toBe(true);
  });

  it('1 keeps the order of the configuration, one at a time', async () => {
    const { config } = testConfig(certs(5), { ACME_CONCURRENCY: '1' });
    const issuer = new SlowIssuer();
    await engineWith(config, issuer, new FakeDeployer([]), captureLog().log).pass();
    expect(issuer.maxInFlight).toBe(1);
    expect(issuer.started).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
  });

  it('a failed order stops only its own certificate', async () => {
    const { config } = testConfig(certs(6), { ACME_CONCURRENCY: '4' });
    const issuer = new SlowIssuer();
    issuer.failWith = new Error('the CA said no');
    issuer.failFor = ['c2'];
    const result = await engineWith(config, issuer, new FakeDeployer([]), captureLog().log).pass();
    expect(result.certs.filter((c) => !c.ok).map((c) => c.name)).toEqual(['c2']);
    expect(result.certs.filter((c) => c.published).map((c) => c.name)).toEqual(['c0', 'c1', 'c3', 'c4', 'c5']);
  });
});

describe('Replay-Nonce reuse', () => {
  /** acme-client's HTTP side as reuseNonces sees it: every answer carries a fresh nonce. */
  function fakeClient() {
    let n = 0;
    const heads: string[] = [];
    type Answer = { status: number; headers: Record<string, string>; data: object };
    const http: { request(url: string, method: string): Promise<Answer>; getNonce(): Promise<string> } = {
      async request(_url: string, method: string): Promise<Answer> {
        if (method === 'head') heads.push(`head-${n}`);
        return {
          status: method === 'post' && _url.endsWith('/bad') ? 400 : 200,
          headers: { 'replay-nonce': `nonce-${n++}` },
          data: {},
        };
      },
      async getNonce() {
        const r = await http.request('https://ca/new-nonce', 'head');
        return r.headers['replay-nonce']!;
      },
    };
    return { client: { http } as never, http, heads };
  }

  it("hands out each answer's nonce once and asks newNonce only when none is left", async () => {
    const { client, http, heads } = fakeClient();
    reuseNonces(client);
    const used: string[] = [];
    used.push(await http.getNonce()); // nothing kept yet: a HEAD
    await http.request('https://ca/order', 'post');
    used.push(await http.getNonce()); // the order answer's nonce
    used.push(await http.getNonce()); // none left: a HEAD
    await http.request('https://ca/bad', 'post'); // an error's nonce is acme-client's to retry with
    used.push(await http.getNonce());
    expect(heads).toHaveLength(3);
    expect(new Set(used).size).toBe(used.length);
    expect(used[1]).toBe('nonce-1');
  });
});
