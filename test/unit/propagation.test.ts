import { createSocket, type Socket } from 'node:dgram';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { authoritativeServers, waitForRecords } from '../../src/dns/propagation.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * Two tiny authoritative name servers for zone.test on 127.0.0.2:53 and 127.0.0.3:53, plus a
 * "recursive" one on 127.0.0.4:53 that only knows where zone.test's name servers are.
 */
const txt = new Map<string, Map<string, string[]>>(); // server -> name -> values
const asked: string[] = [];
const sockets: Socket[] = [];

function serve(address: string, answer: (q: packet.Question) => packet.Answer[]): Promise<void> {
  const s = createSocket('udp4');
  sockets.push(s);
  s.on('message', (msg, rinfo) => {
    const query = packet.decode(msg);
    const q = query.questions![0]!;
    asked.push(`${address} ${q.type} ${q.name}`);
    const answers = answer(q);
    s.send(
      packet.encode({
        id: query.id,
        type: 'response',
        flags: packet.AUTHORITATIVE_ANSWER,
        questions: query.questions,
        answers,
      }),
      rinfo.port,
      rinfo.address,
    );
  });
  return new Promise((resolve) => s.bind(53, address, () => resolve()));
}

const authoritative =
  (address: string) =>
  (q: packet.Question): packet.Answer[] =>
    q.type === 'TXT'
      ? (txt.get(address)?.get(q.name) ?? []).map((v) => ({ type: 'TXT', name: q.name, ttl: 300, data: v }))
      : [];

beforeAll(async () => {
  for (const a of ['127.0.0.2', '127.0.0.3']) {
    txt.set(a, new Map());
    await serve(a, authoritative(a));
  }
  await serve('127.0.0.4', (q) => {
    if (q.type === 'NS' && q.name === 'zone.test')
      return [
        { type: 'NS', name: 'zone.test', ttl: 300, data: 'ns1.zone.test' },
        { type: 'NS', name: 'zone.test', ttl: 300, data: 'ns2.zone.test' },
      ];
    if (q.type === 'A' && q.name === 'ns1.zone.test') return [{ type: 'A', name: q.name, ttl: 300, data: '127.0.0.2' }];
    if (q.type === 'A' && q.name === 'ns2.zone.test') return [{ type: 'A', name: q.name, ttl: 300, data: '127.0.0.3' }];
    // A cache in the way would say the record exists long before the authoritative servers do.
    if (q.type === 'TXT') return [{ type: 'TXT', name: q.name, ttl: 300, data: 'stale-cached-value' }];
    return [];
  });
});
afterAll(() => {
  for (const s of sockets) s.close();
});

describe('DNS-01 propagation', () => {
  const log = createLogger('silent');

  it("finds the zone's authoritative name servers", async () => {
    expect((await authoritativeServers('zone.test', ['127.0.0.4'])).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
  });

  it('waits until every authoritative server answers every value, asking them directly', async () => {
    const name = '_acme-challenge.zone.test';
    const clock = new FakeClock();
    txt.get('127.0.0.2')!.set(name, ['apex-value']);
    clock.at(400, () => txt.get('127.0.0.2')!.set(name, ['apex-value', 'wildcard-value']));
    clock.at(900, () => txt.get('127.0.0.3')!.set(name, ['wildcard-value', 'apex-value']));
    asked.length = 0;
    await waitForRecords([{ type: 'TXT', name, zone: 'zone.test', values: ['apex-value', 'wildcard-value'] }], {
      bootstrap: ['127.0.0.4'],
      timeoutMs: 10_000,
      log,
      clock,
    });
    expect(clock.now()).toBeGreaterThanOrEqual(900);
    expect(clock.slept).toEqual([500, 750]); // short, growing waits
    expect(asked.filter((a) => a.startsWith('127.0.0.4') && a.includes('TXT'))).toEqual([]); // never the recursive one
    expect(asked.filter((a) => a === `127.0.0.3 TXT ${name}`).length).toBeGreaterThan(1);
  });

  it('gives up after the timeout, naming the server and what is missing', async () => {
    txt.get('127.0.0.3')!.set('_acme-challenge.late.zone.test', []);
    await expect(
      waitForRecords([{ type: 'TXT', name: '_acme-challenge.late.zone.test', zone: 'zone.test', values: ['v'] }], {
        bootstrap: ['127.0.0.4'],
        timeoutMs: 1_200,
        log,
        clock: new FakeClock(),
      }),
    ).rejects.toThrow(
      /TXT records not visible after 1s: _acme-challenge.late.zone.test on 127.0.0.2 \(1 of 1 values missing\); _acme-challenge.late.zone.test on 127.0.0.3 \(1 of 1 values missing\)\. Check the zone at the provider, or raise DNS01_PROPAGATION_TIMEOUT/,
    );
  });
});
