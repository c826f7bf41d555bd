import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CertificateSpec, DaneSpec } from '../../src/config/schema.js';
import { type OrderFacts, orderKey } from '../../src/dane/order-key.js';
import { tlsa311, tlsaOwners } from '../../src/dane/plan.js';
import { missingInView } from '../../src/dane/records.js';
import {
  afterDeploy,
  burnIn,
  isMine,
  keptValues,
  orderedWith,
  recordsFollowCertificate,
  wantedValues,
} from '../../src/dane/rollover.js';
import { writeRecords } from '../../src/dane/write-records.js';
import type { DaneState } from '../../src/state/cert-state.js';
import { FakeDnsProvider, tlsaView } from '../helpers/fake-dns.js';
import { captureLog } from '../helpers/fakes.js';

/**
 * DANE's rollover rules (dane/rollover.ts, dane/order-key.ts), pass after pass in process: the
 * records they want are written to an in-memory DNS provider, what its servers answer feeds the
 * burn-in clock, and the clock decides the order's key. The same steps against BIND, with real
 * certificates and a real deploy, are test/integration/dane.test.ts.
 */
const MIN = 60_000;
const HOUR = 60 * MIN;
const dane: DaneSpec = {
  names: ['mx.example.test'],
  ports: [25, 465],
  ttlSeconds: 3600,
  provider: 'fake',
  keyLifetimeMs: 30 * MIN,
};
const spec = { name: 'mail', dane } as CertificateSpec;
const owners = tlsaOwners(dane.names, dane.ports);
const [A, B, C] = ['aa', 'bb', 'cc'].map((h) => h.repeat(32)) as [string, string, string];
const t0 = new Date('2026-12-03T10:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

function world() {
  const dns = new FakeDnsProvider([{ id: 'z1', name: 'example.test' }]);
  const ctx = { stateDir: mkdtempSync(join(tmpdir(), 'dane-rollover-')), log: captureLog().log };
  /** The values every owner name holds (the same at each). */
  const held = () => [...new Set([...dns.snapshot(owners).values()].flat())].sort();
  /** One pass's DANE step before the orders: records written, the burn-in counted, the key chosen. */
  async function beforeOrders(
    st: DaneState,
    keys: { current?: string; next: string },
    now: Date,
    o: { lagging?: Map<string, string[]>; facts?: Partial<OrderFacts> } = {},
  ) {
    const k = { ...keys, served: st.served, currentIsMine: isMine(keys.current, st, keys.next) };
    const wanted = wantedValues([k]);
    const created = await writeRecords(spec, dane, dns, { wanted, keep: keptValues([k]) }, ctx);
    const view = tlsaView({ ns1: dns.snapshot(owners), ns2: o.lagging ?? dns.snapshot(owners) }, 'example.test');
    const everywhere = missingInView(view, wanted).length === 0;
    const seen = burnIn(st, { values: wanted, everywhere, rewritten: created > 0, now });
    const order = orderKey({
      keyType: 'ec-256',
      action: 'keep',
      ok: true,
      current: k.current,
      next: k.next,
      currentIsMine: k.currentIsMine,
      currentVouched: !!k.current && missingInView(view, [tlsa311(k.current)]).length === 0,
      currentKeyType: k.current && 'ec-256',
      renewalDue: false,
      nothingServed: !k.current,
      noRecords: false,
      dane: seen,
      ttlSeconds: dane.ttlSeconds,
      keyLifetimeMs: dane.keyLifetimeMs,
      now,
      ...o.facts,
    });
    return { st: seen, order, created };
  }
  return { dns, ctx, held, beforeOrders };
}

describe('a DANE rollover, pass after pass, against an in-memory DNS provider', () => {
  it('publishes the next key ahead, rolls only after 2 x TTL, and retires the old record once the next key is served', async () => {
    const { dns, ctx, held, beforeOrders } = world();
    // Pass 1: the served key A is mailcerts' own; A and the next key B are published.
    const p1 = await beforeOrders({ keySince: t0.toISOString(), served: A }, { current: A, next: B }, t0);
    expect(p1.created).toBe(4); // two values at two owner names
    expect(held()).toEqual([tlsa311(A), tlsa311(B)]);
    expect(p1.st.seenSince).toBe(t0.toISOString());
    expect(p1.order).toMatchObject({ key: 'current', rollover: false });
    expect([p1.order.replan, p1.order.wakeBy]).toEqual([undefined, undefined]);

    // Pass 2, an hour on: the key is past DANE_KEY_LIFETIME, but B's records are only an hour old.
    const p2 = await beforeOrders(p1.st, { current: A, next: B }, at(HOUR));
    expect(p2.created).toBe(0);
    expect(p2.st.seenSince).toBe(t0.toISOString()); // the same RRset, nothing rewritten: the clock goes on
    expect(p2.order).toMatchObject({ key: 'current', rollover: false, wakeBy: at(2 * HOUR) });
    expect(p2.order.replan).toBeUndefined();
    expect(p2.order.notes[0]).toMatchObject({
      msg: 'DANE rollover waits',
      fields: { readyAt: at(2 * HOUR).toISOString() },
    });

    // Pass 3, at 2 x TTL: the order uses B.
    const p3 = await beforeOrders(p2.st, { current: A, next: B }, at(2 * HOUR));
    expect(p3.order).toMatchObject({ key: 'next', rollover: true, replan: { action: 'issue' } });
    expect(p3.order.notes[0]!.msg).toBe('DANE rollover: ordering with the next key');
    expect(held()).toEqual([tlsa311(A), tlsa311(B)]); // nothing retired before B is served

    // After the deploy: B is served, so the rollover is done; C is the new next key, A's records go.
    const after = afterDeploy(orderedWith(p3.st, B), B, B, at(2 * HOUR));
    expect(after).toMatchObject({ foreign: false, changed: true, rolledOver: true });
    if (after.foreign) throw new Error('unreachable');
    expect(after.state).toMatchObject({ served: B, keySince: at(2 * HOUR).toISOString(), seenSince: undefined });
    const k = { current: B, next: C, served: B, currentIsMine: true };
    const created = await writeRecords(spec, dane, dns, { wanted: wantedValues([k]), keep: keptValues([k]) }, ctx);
    expect(created).toBe(2);
    expect(held()).toEqual([tlsa311(B), tlsa311(C)]);

    // Pass 4: another RRset, so its clock starts now; B is young: nothing is due.
    const p4 = await beforeOrders(after.state, { current: B, next: C }, at(2 * HOUR + MIN));
    expect(p4.st.seenSince).toBe(at(2 * HOUR + MIN).toISOString());
    expect(p4.order).toMatchObject({ key: 'current', rollover: false, notes: [] });
  });

  it('the burn-in stops while a server lags, and starts over when a record had to be written again', async () => {
    const { dns, beforeOrders } = world();
    const st = { keySince: at(-HOUR).toISOString(), served: A };
    const empty = new Map(owners.map((o) => [o, [] as string[]]));
    const lagging = await beforeOrders(st, { current: A, next: B }, t0, { lagging: empty });
    expect(lagging.st.seenSince).toBeUndefined();
    // Due, with no clock running: it waits a TTL and asks again.
    expect(lagging.order).toMatchObject({ key: 'current', rollover: false, wakeBy: at(HOUR) });

    const seen = await beforeOrders(lagging.st, { current: A, next: B }, at(MIN));
    expect(seen.st.seenSince).toBe(at(MIN).toISOString());
    // Someone deletes B's record at port 465: it is written again, and the count starts over.
    const [id] = [...dns.records].find(([, r]) => r.record.name === owners[1] && r.record.value === tlsa311(B))!;
    dns.records.delete(id);
    const rewritten = await beforeOrders(seen.st, { current: A, next: B }, at(90 * MIN));
    expect(rewritten.created).toBe(1);
    expect(rewritten.st.seenSince).toBe(at(90 * MIN).toISOString());
    expect((await beforeOrders(rewritten.st, { current: A, next: B }, at(150 * MIN))).order.key).toBe('current');
    expect((await beforeOrders(rewritten.st, { current: A, next: B }, at(210 * MIN))).order.key).toBe('next');
  });

  it('a key mailcerts did not make is never announced; with no record anywhere the records follow the first certificate', async () => {
    const { held, beforeOrders } = world();
    const st = { keySince: t0.toISOString() };
    const k = { current: A, next: B, currentIsMine: isMine(A, st, B) };
    expect(k.currentIsMine).toBe(false);
    expect(recordsFollowCertificate(true, [k])).toBe(true);
    expect(orderKey({ ...facts, noRecords: true, current: A, next: B })).toMatchObject({
      key: 'fresh',
      replan: { action: 'issue' },
    });
    // Records exist elsewhere: only the next key is published, and the order waits for its burn-in.
    const p = await beforeOrders(st, { current: A, next: B }, t0);
    expect(held()).toEqual([tlsa311(B)]);
    expect(p.order).toMatchObject({ key: 'none', wakeBy: at(2 * HOUR) });
    expect(afterDeploy(st, A, B, t0)).toEqual({ foreign: true });
  });

  it('a kept certificate goes out only with a key DANE allows now; otherwise it is dropped and a new one ordered', () => {
    const dane = { keySince: t0.toISOString(), served: A, seenSince: t0.toISOString() };
    const kept = (key: string) =>
      orderKey({ ...facts, action: 'republish', kept: { key, serial: '01' }, currentIsMine: true, dane });
    expect(kept(A)).toMatchObject({ dropKept: false, key: 'current' });
    expect(kept(A).replan).toBeUndefined();
    expect(kept(C)).toMatchObject({ dropKept: true, key: 'current', replan: { action: 'issue' } });
    expect(kept(C).notes[0]).toMatchObject({ fields: { serial: '01' } });
  });
});

const facts: OrderFacts = {
  keyType: 'ec-256',
  action: 'keep',
  ok: true,
  current: A,
  next: B,
  currentIsMine: false,
  currentVouched: false,
  currentKeyType: 'ec-256',
  renewalDue: false,
  nothingServed: false,
  noRecords: false,
  dane: { keySince: t0.toISOString() },
  ttlSeconds: 3600,
  keyLifetimeMs: 30 * MIN,
  now: t0,
};
