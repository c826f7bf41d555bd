import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Bind, startBind } from '../../scripts/lib/bind.mjs';
import { freePorts } from './ports.js';

const run = promisify(execFile);

/**
 * A BIND primary and a BIND secondary for one zone, each on port 53 of a loopback address of this
 * run's own (127.54.X.1 and .2, put on lo: BIND listens only on an interface's addresses). The
 * zone's NS records name both. The secondary lags: no NOTIFY and an hour's refresh, so it answers
 * what it transferred at start until release() makes it transfer again.
 */
export interface LaggingPair {
  primary: Bind;
  secondary: Bind;
  /** A resolv.conf naming the primary: what mailcerts' system resolver asks (runCli's resolvConf). */
  resolvConf: string;
  release(): void;
  stop(): Promise<void>;
}

const onLo = (op: 'add' | 'del', address: string) =>
  run('ip', ['addr', op, `${address}/32`, 'dev', 'lo']).catch((err: unknown) => {
    if (op === 'add') throw err;
  });

export async function startLaggingPair(
  dir: string,
  o: { zone: string; key: { name: string; secret: string }; dnssec?: boolean; records?: string[] },
): Promise<LaggingPair> {
  mkdirSync(dir, { recursive: true });
  const net = `127.54.${randomInt(1, 255)}`;
  const [primaryAddress, secondaryAddress] = [`${net}.1`, `${net}.2`];
  for (const a of [primaryAddress, secondaryAddress]) await onLo('add', a);
  const [rndcPort] = await freePorts(1);
  const started: Bind[] = [];
  const stop = async () => {
    for (const b of started.reverse()) await b.stop();
    for (const a of [primaryAddress, secondaryAddress]) await onLo('del', a);
  };
  try {
    started.push(
      await startBind({
        dir: join(dir, 'primary'),
        address: primaryAddress,
        port: 53,
        querylog: true,
        keys: [o.key],
        zones: [
          {
            name: o.zone,
            policy: `grant ${o.key.name} zonesub TXT TLSA;`,
            dnssec: o.dnssec,
            nameServers: [
              { name: 'ns1', address: primaryAddress },
              { name: 'ns2', address: secondaryAddress },
            ],
            refresh: 3600,
            transferTo: [secondaryAddress],
            records: o.records,
          },
        ],
      }),
    );
    // A signed zone is transferred signed: the secondary waits for the primary's signatures.
    if (o.dnssec) await started[0]!.ksk(o.zone);
    started.push(
      await startBind({
        dir: join(dir, 'secondary'),
        address: secondaryAddress,
        port: 53,
        rndcPort,
        keys: [],
        zones: [{ name: o.zone, secondaryOf: `${primaryAddress}:53` }],
      }),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${primaryAddress}\n`);
  const [primary, secondary] = started as [Bind, Bind];
  return { primary, secondary, resolvConf, release: () => void secondary.rndc('retransfer', o.zone), stop };
}
