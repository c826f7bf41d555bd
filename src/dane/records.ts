/**
 * What DNS answers for a DANE certificate's TLSA records: each authoritative server asked
 * directly, with the DO bit (so a signed zone's answers carry their RRSIGs), and each validating
 * resolver of DANE_RESOLVER, whose answer counts only with the AD bit. Used by the DANE step
 * (before and after the orders), `mailcerts dane` and `mailcerts check`.
 */
import { randomInt } from 'node:crypto';
import * as packet from 'dns-packet';
import type { Config, DaneSpec } from '../config/schema.js';
import { authoritativeServers, zoneOfName } from '../dns/propagation.js';
import { type DnsProvider, formatTlsa, sameName } from '../dns/provider.js';
import { exchange } from '../dns/tcp.js';
import { splitHostPort } from '../util/host-port.js';
import { errorMessage } from '../util/errors.js';

/** What each server answers at each owner name; a string is an error (or an answer that does not count). */
export type Answers = Map<string, Map<string, string[] | string>>;

export type ZoneSigning = 'signed' | 'unsigned' | 'mixed' | 'unknown';

export interface TlsaView {
  /** The authoritative servers' answers; an unsigned answer from a signed zone counts as an error. */
  answers: Answers;
  /** The validating resolvers' answers (DANE_RESOLVER); one without the AD bit counts as an error. */
  validated: Answers;
  /** Per zone: whether its servers' answers carry DNSSEC signatures. */
  zones: Map<string, ZoneSigning>;
  resolvers: string[];
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

interface RawAnswer {
  rcode: string;
  ad: boolean;
  values: string[];
  /** RRSIGs came with it: over the TLSA RRset, or over the denial when there is none. */
  signed: boolean;
}

/**
 * One TLSA query with the DO bit over TCP; `validating` also sets AD, asking a validating resolver
 * to say whether it validated the answer. RD is set as any stub sets it: DNS01_RESOLVERS may name
 * recursive servers, and an authoritative one ignores it.
 */
export async function queryTlsa(
  server: string,
  name: string,
  validating: boolean,
  timeoutMs = 3_000,
): Promise<RawAnswer> {
  const where = splitHostPort(server, 53);
  if (!where) throw new Error(`"${server}" is not an address`);
  const id = randomInt(0, 0x10000);
  const query = packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED | (validating ? packet.AUTHENTIC_DATA : 0),
    questions: [{ type: 'TLSA', name }],
    additionals: [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: 4096,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: packet.DNSSEC_OK,
        flag_do: true,
        options: [],
      },
    ],
  });
  const raw = await exchange(where, query, timeoutMs);
  if (raw.length < 12 || raw.readUInt16BE(0) !== id || (raw[2]! & 0x80) === 0)
    throw new Error('an answer to another message');
  const answer = packet.decode(raw);
  const rcode = RCODES[raw.readUInt16BE(2) & 0xf] ?? `rcode ${raw.readUInt16BE(2) & 0xf}`;
  const answers = answer.answers ?? [];
  const values = answers.flatMap((a) =>
    a.type === 'TLSA' && sameName(a.name, name)
      ? [
          formatTlsa({
            usage: a.data.usage,
            selector: a.data.selector,
            matchingType: a.data.matchingType,
            data: a.data.certificate.toString('hex'),
          }),
        ]
      : [],
  );
  const rrsig = (records: packet.Answer[], covered?: string) =>
    records.some((r) => r.type === 'RRSIG' && (!covered || r.data.typeCovered === covered));
  const signed = values.length > 0 ? rrsig(answers, 'TLSA') : rrsig(answer.authorities ?? []);
  return { rcode, ad: answer.flag_ad ?? false, values, signed };
}

async function zoneAndServers(
  provider: DnsProvider | undefined,
  owner: string,
  config: Config,
): Promise<{ zone: string; servers: string[] }> {
  const fallback = owner.split('.').slice(-2).join('.');
  const zone = await (provider
    ? provider.zoneFor(owner).then((z) => z.name)
    : zoneOfName(owner, config.dns.resolvers)
  ).catch(() => fallback);
  return { zone, servers: config.dns.resolvers ?? (await authoritativeServers(zone)) };
}

const answered = (a: RawAnswer) => a.rcode === 'NOERROR' || a.rcode === 'NXDOMAIN';

export async function ask(
  owners: string[],
  provider: DnsProvider | undefined,
  config: Config,
  dane: Pick<DaneSpec, 'resolvers'>,
): Promise<TlsaView> {
  const raw = new Map<string, { zone: string; byServer: Map<string, RawAnswer | string> }>();
  for (const owner of owners) {
    const { zone, servers } = await zoneAndServers(provider, owner, config);
    const byServer = new Map<string, RawAnswer | string>();
    for (const server of servers)
      byServer.set(server, await queryTlsa(server, owner, false).catch((err: unknown) => errorMessage(err)));
    raw.set(owner, { zone, byServer });
  }
  const zones = new Map<string, ZoneSigning>();
  for (const { zone, byServer } of raw.values()) {
    for (const a of byServer.values()) {
      if (typeof a === 'string' || !answered(a)) continue;
      const was = zones.get(zone) ?? 'unknown';
      const now = a.signed ? 'signed' : 'unsigned';
      zones.set(zone, was === 'unknown' || was === now ? now : 'mixed');
    }
  }
  const answers: Answers = new Map();
  for (const [owner, { zone, byServer }] of raw) {
    answers.set(
      owner,
      new Map(
        [...byServer].map(([server, a]): [string, string[] | string] => {
          if (typeof a === 'string') return [server, a];
          if (!answered(a)) return [server, a.rcode];
          // A validating sender takes an unsigned answer from a signed zone as bogus.
          if (!a.signed && zones.get(zone) === 'mixed')
            return [server, 'an answer without DNSSEC signatures from a signed zone'];
          return [server, a.values];
        }),
      ),
    );
  }
  const resolvers = dane.resolvers ?? [];
  const validated = await askResolvers(resolvers.length > 0 ? owners : [], resolvers);
  return { answers, validated, zones, resolvers };
}

/** Each validating resolver of DANE_RESOLVER: an answer counts only with the AD bit. */
async function askResolvers(owners: string[], resolvers: string[]): Promise<Answers> {
  const validated: Answers = new Map();
  for (const owner of owners) {
    const byResolver = new Map<string, string[] | string>();
    for (const r of resolvers) {
      const a = await queryTlsa(r, owner, true).catch((err: unknown) => errorMessage(err));
      byResolver.set(
        `${r} (validating resolver)`,
        typeof a === 'string'
          ? a
          : a.rcode === 'SERVFAIL'
            ? 'SERVFAIL: the resolver could not validate the answer (bogus signatures?) or reach the zone'
            : !answered(a)
              ? a.rcode
              : !a.ad
                ? 'answered without the AD bit: not validated by DNSSEC'
                : a.values,
      );
    }
    validated.set(owner, byResolver);
  }
  return validated;
}

/** Owner names and servers where some wanted value is not answered. */
export function missingIn(answers: Answers, wanted: string[]): string[] {
  const missing: string[] = [];
  for (const [owner, byServer] of answers) {
    for (const [server, got] of byServer) {
      const lacking = typeof got === 'string' ? wanted : wanted.filter((w) => !got.includes(w));
      if (lacking.length > 0)
        missing.push(
          `${owner} on ${server}${typeof got === 'string' ? ` (${got})` : ` (${lacking.length} of ${wanted.length} missing)`}`,
        );
    }
  }
  return missing;
}

/** Where the wanted values are not answered, by the authoritative servers or the validating resolvers. */
export const missingInView = (view: TlsaView, wanted: string[]) => [
  ...missingIn(view.answers, wanted),
  ...missingIn(view.validated, wanted),
];

/** Every authoritative server answered, and none holds a TLSA record at any owner name. */
export function noRecordsAnywhere(view: TlsaView): boolean {
  const all = [...view.answers.values()].flatMap((byServer) => [...byServer.values()]);
  return all.length > 0 && all.every((got) => Array.isArray(got) && got.length === 0);
}

/** What DNSSEC says of the records: problems first (DANE is void or mail deferred), then how it was checked. */
export function dnssecNotes(view: TlsaView): { problems: string[]; checked: string } {
  const problems: string[] = [];
  if (view.zones.size === 0)
    problems.push('no name server answered for the TLSA records, so whether their zone is DNSSEC-signed is not known');
  for (const [zone, signing] of view.zones) {
    if (signing === 'unsigned')
      problems.push(
        `the zone ${zone} is not DNSSEC-signed (its name servers answer without RRSIG): validating senders ignore TLSA records there, so DANE is void until the zone is signed`,
      );
    if (signing === 'mixed')
      problems.push(
        `some name servers of ${zone} answer with DNSSEC signatures and some without: validating senders take the unsigned answers as bogus and defer mail`,
      );
  }
  const notValidated = [...view.validated.values()].flatMap((byResolver) =>
    [...byResolver].filter(([, got]) => typeof got === 'string').map(([r, got]) => `${r}: ${got as string}`),
  );
  if (notValidated.length > 0) problems.push(`not validated: ${[...new Set(notValidated)].join('; ')}`);
  const checked =
    view.resolvers.length > 0
      ? `validated by ${view.resolvers.join(', ')} (AD bit required)`
      : 'signatures looked for with the DO bit; not validated (set DANE_RESOLVER to a validating resolver to require the AD bit)';
  return { problems, checked };
}
