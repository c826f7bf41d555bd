import { generateKeyPairSync } from 'node:crypto';
import type * as acme from 'acme-client';
import { describe, expect, it } from 'vitest';
import type { VariantSpec } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { type PollOptions, orderCertificate } from '../../src/obtain/order.js';
import type { ChallengeSolver } from '../../src/obtain/solvers/types.js';
import { FakeClock } from '../helpers/fake-clock.js';

const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
  type: 'pkcs8',
  format: 'pem',
}) as string;
const spec = {
  name: 'mail',
  domains: ['mail.example.test'],
  keyType: 'ec-p256',
  challenge: 'http-01',
} as unknown as VariantSpec;
const solver: ChallengeSolver = {
  type: 'http-01',
  begin: async () => {},
  prepare: async () => {},
  cleanup: async () => {},
  end: async () => {},
};

/**
 * A CA that answers each poll of the authorization with the next of `answers` (status and
 * Retry-After in seconds), and makes the order valid at once on finalize.
 */
function fakeClient(answers: { status: string; retryAfter?: number }[]) {
  const polled: number[] = [];
  let i = 0;
  const client = {
    createOrder: async () => ({ url: 'https://ca.test/order/1', status: 'pending' }),
    getAuthorizations: async () => [
      {
        identifier: { value: 'mail.example.test' },
        status: 'pending',
        url: 'https://ca.test/authz/1',
        challenges: [{ type: 'http-01', token: 'tok', url: 'https://ca.test/chall/1' }],
      },
    ],
    getChallengeKeyAuthorization: async () => 'tok.thumb',
    completeChallenge: async () => ({}),
    finalizeOrder: async () => ({ status: 'valid', url: 'https://ca.test/order/1' }),
    getCertificate: async () => '-----BEGIN CERTIFICATE-----\n',
    api: {
      apiRequest: async () => {
        const a = answers[Math.min(i++, answers.length - 1)]!;
        polled.push(i);
        return {
          status: 200,
          data: { status: a.status },
          headers: a.retryAfter !== undefined ? { 'retry-after': String(a.retryAfter) } : {},
        };
      },
    },
  };
  return { client: client as unknown as acme.Client, polled };
}

const POLL: PollOptions = { minIntervalMs: 20, maxIntervalMs: 100, retryAfterCapMs: 3_000, deadlineMs: 10_000 };
const order = (client: acme.Client, clock: FakeClock, poll = POLL) =>
  orderCertificate({ client, spec, solver, log: createLogger('silent'), privateKey: key, poll, clock });

describe('polling an ACME authorization', () => {
  it('waits before the first look, doubles up to the cap, and takes a Retry-After (cut to its cap) instead', async () => {
    const clock = new FakeClock();
    const { client, polled } = fakeClient([
      { status: 'pending' },
      { status: 'pending', retryAfter: 2 },
      { status: 'processing', retryAfter: 60 },
      { status: 'pending' },
      { status: 'pending' },
      { status: 'valid' },
    ]);
    await expect(order(client, clock)).resolves.toMatchObject({ privateKey: key });
    expect(polled).toHaveLength(6);
    expect(clock.slept).toEqual([20, 40, 2_000, 3_000, 100, 100]);
  });

  it('gives up, naming the step, when the next wait would end past the deadline', async () => {
    const clock = new FakeClock();
    const { client } = fakeClient([{ status: 'pending' }]);
    await expect(order(client, clock, { ...POLL, deadlineMs: 1_000 })).rejects.toThrow(
      /certificate "mail", domain mail\.example\.test: authorization failed: .*not valid after 1s/,
    );
    expect(clock.now()).toBeLessThanOrEqual(1_000);
    expect(clock.now() + 100).toBeGreaterThan(1_000);
  });

  it('an invalid authorization ends the poll at once with the CA’s problem', async () => {
    const clock = new FakeClock();
    const { client, polled } = fakeClient([{ status: 'pending' }, { status: 'invalid' }]);
    await expect(order(client, clock)).rejects.toThrow(
      /authorization failed: the CA said: the authorization became invalid/,
    );
    expect(polled).toHaveLength(2);
  });
});
