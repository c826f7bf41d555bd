import { type CertificateSpec, type Config, variantsOf } from '../config/schema.js';
import { describeSource, type SuppliedSource, suppliedSourceOf } from '../obtain/sources/index.js';
import { errorMessage } from '../util/errors.js';
import { safeAriCertId } from '../pki/identity.js';
import { decide } from '../plan/renewal.js';
import { type Bundle, parseBundle } from '../pki/bundle.js';
import { bundleFor, readPublishedOrBroken } from '../publish/publisher.js';
import { type CertState, readCertState, readPending, variantStateKeys } from '../state/cert-state.js';
import { type ContainerRecord, readContainers } from '../state/containers.js';

export interface StatusRow {
  name: string;
  domains: string[];
  keyType: string;
  /** Where it comes from (obtain/sources/): acme, custom, traefik. */
  source: string;
  serial?: string;
  notAfter?: string;
  daysLeft?: number;
  nextRenewal?: string;
  nextReason: string;
  /** The CA's suggested renewal window (ARI), when it offers one. */
  ariWindow?: { start: string; end: string; explanationURL?: string };
  deployed: boolean;
  failures: number;
  /** The first failure since the last success. */
  failingSince?: string;
  lastSuccessAt?: string;
  lastError?: string;
  /** lastError's stable code (docs/errors.md). */
  errorCode?: string;
  /** The labelled containers at their last deploy. */
  containers: Record<string, ContainerRecord>;
  /** DANE: the TLSA records of this variant's key, as the last pass found them. */
  dane?: DaneStatus;
}

export interface DaneStatus {
  /** The served key was in the RRset on every authoritative server at the last check; undefined before one. */
  inStep?: boolean;
  checkedAt?: string;
  detail?: string;
  /** Each record name (_PORT._tcp.NAME): whether the served key is in it on every server. */
  names?: Record<string, boolean>;
  /** Since when the next key's record has been answered everywhere. */
  nextSeenSince?: string;
  /** When the current key is due for rollover (DANE_KEY_LIFETIME), or when one was asked for. */
  rolloverDueAt?: string;
  summary: string;
}

function daneStatus(spec: CertificateSpec, state: CertState): DaneStatus | undefined {
  if (!spec.dane) return undefined; // only for an ordered source (config/certificates.ts)
  const d = state.dane;
  if (!d) return { summary: 'TLSA records not written yet' };
  const dueAt = d.rolloverRequestedAt ?? new Date(Date.parse(d.keySince) + spec.dane.keyLifetimeMs).toISOString();
  const step = d.check ? (d.check.inStep ? 'in step' : `OUT OF STEP: ${d.check.detail}`) : 'not checked yet';
  const next = d.seenSince ? `next published since ${d.seenSince}` : 'next not yet answered everywhere';
  return {
    inStep: d.check?.inStep,
    checkedAt: d.check?.at,
    detail: d.check?.detail,
    names: d.check?.names,
    nextSeenSince: d.seenSince,
    rolloverDueAt: dueAt,
    summary: `${step}; ${next}; rollover ${d.rolloverRequestedAt ? 'asked for' : 'due'} ${dueAt.slice(0, 16).replace('T', ' ')}`,
  };
}

/**
 * One row per certificate, from the files alone. It only reads (a damaged state file is left for
 * the next pass to move aside), and one certificate whose files cannot be read gives a row with
 * the error instead of failing the whole status: /healthz must not go dark for the others.
 */
export async function collectStatus(config: Config, now = new Date()): Promise<StatusRow[]> {
  const rows: StatusRow[] = [];
  const containers = await readContainers(config.stateDir, undefined, { readOnly: true }).catch(() => ({}));
  for (const spec of config.certificates) {
    try {
      rows.push(...(await statusRows(config, spec, containers, now)));
    } catch (err) {
      rows.push({
        name: spec.name,
        domains: spec.domains,
        keyType: spec.keyTypes.join(','),
        source: spec.source,
        nextReason: 'unknown: its files cannot be read',
        deployed: false,
        failures: 0,
        lastError: errorMessage(err),
        errorCode: 'MC_CERTIFICATE_INVALID',
        containers,
      });
    }
  }
  return rows;
}

/** The rows of one certificate: one per variant (key type), or per supplied pair. */
async function statusRows(
  config: Config,
  spec: CertificateSpec,
  containers: Record<string, ContainerRecord>,
  now: Date,
): Promise<StatusRow[]> {
  const variants = variantsOf(spec);
  const supplied = suppliedSourceOf(spec);
  // A supplied set is one run, with one state file.
  const keys = supplied
    ? new Map(spec.keyTypes.map((kt) => [kt, spec.name]))
    : await variantStateKeys(config.stateDir, spec);
  const states = await Promise.all(
    variants.map((v) => readCertState(config.stateDir, keys.get(v.keyType)!, undefined, { readOnly: true })),
  );
  // As in a pass: files that still hold the deployed set were checked then; only their leaves are read.
  const { published, broken } = await readPublishedOrBroken(config, spec, states[0]!.deployedDigest);
  if (supplied) return suppliedRows(spec, supplied, states[0]!, { published, broken }, containers, now);
  const rows: StatusRow[] = [];
  for (const [i, v] of variants.entries()) {
    const state = states[i]!;
    const b = bundleFor(published, v);
    const ari = b && state.ari && state.ari.certId === safeAriCertId(b.certificates[0]!) ? state.ari : undefined;
    const kept = await readPending(config.stateDir, keys.get(v.keyType)!);
    let pending: Bundle | undefined;
    try {
      pending = kept ? parseBundle(kept.fullchain, kept.key) : undefined;
    } catch {
      pending = undefined;
    }
    if (pending && published?.bundles.some((p) => p.serial === pending!.serial)) pending = undefined;
    const d = decide({ spec: v, published: b, broken, pending, state, now, profile: config.acme.profile, ari });
    rows.push({
      ...rowOf(spec, b, v.keyType, now),
      nextRenewal:
        d.action === 'keep' ? d.renewAt.toISOString() : d.action === 'wait' ? d.until.toISOString() : now.toISOString(),
      nextReason: d.reason,
      ariWindow: ari ? { start: ari.start, end: ari.end, explanationURL: ari.explanationURL } : undefined,
      deployed: !!published && !!b && state.deployedDigest === published.digest,
      ...failureOf(state, broken),
      containers,
      dane: daneStatus(spec, state),
    });
  }
  return rows;
}

/** A supplied certificate's rows: one per published variant (or one without), from its one state. */
function suppliedRows(
  spec: CertificateSpec,
  supplied: SuppliedSource,
  state: CertState,
  { published, broken }: Awaited<ReturnType<typeof readPublishedOrBroken>>,
  containers: Record<string, ContainerRecord>,
  now: Date,
): StatusRow[] {
  return (published?.bundles ?? [undefined]).map((b) => ({
    ...rowOf(spec, b, spec.keyTypes[0]!, now),
    nextReason: `${describeSource(spec)}: ${supplied.renewal(spec, b)}`,
    deployed: !!published && state.deployedDigest === published.digest,
    ...failureOf(state, broken),
    containers,
  }));
}

/** A row's failure fields: the state's last failure, else published files that cannot be read. */
function failureOf(state: CertState, broken: string | undefined) {
  return {
    failures: state.failures,
    failingSince: state.failingSince ?? (state.failures > 0 ? state.failedAt : undefined),
    lastSuccessAt: state.lastSuccessAt,
    lastError: state.lastError ?? broken,
    errorCode: state.lastError ? state.lastErrorCode : broken ? 'MC_CERTIFICATE_INVALID' : undefined,
  };
}

function rowOf(spec: CertificateSpec, b: Bundle | undefined, keyType: string, now: Date) {
  return {
    name: spec.name,
    domains: spec.domains,
    keyType: b?.keyType ?? keyType,
    serial: b?.serial,
    notAfter: b?.notAfter.toISOString(),
    daysLeft: b ? Math.floor((b.notAfter.getTime() - now.getTime()) / 86_400_000) : undefined,
    source: spec.source,
  };
}

/** Unhealthy when a certificate is missing, expired, or will expire before its next retry. */
export function health(rows: StatusRow[], now = new Date()): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  for (const r of rows) {
    const several = rows.filter((o) => o.name === r.name).length > 1;
    const name = several ? `${r.name} (${r.keyType})` : r.name;
    if (!r.notAfter) problems.push(`${name}: no certificate published`);
    else if (new Date(r.notAfter) <= now) problems.push(`${name}: expired on ${r.notAfter}`);
    else if (r.failures > 0 && r.nextRenewal && new Date(r.nextRenewal) >= new Date(r.notAfter))
      problems.push(`${name}: expires on ${r.notAfter}, before the next retry at ${r.nextRenewal}`);
  }
  return { ok: problems.length === 0, problems };
}

/** A container's problem as the table shows it: its error, or why it could not be verified. */
function problemOf(c: ContainerRecord): string {
  const text = c.error ?? (c.unverified ? `could not verify: ${c.unverified}` : undefined);
  return text ? text.replace(/\s+/g, ' ').slice(0, 120) : '-';
}

export function formatStatusTable(rows: StatusRow[]): string {
  const withDane = rows.some((r) => r.dane);
  const header = [
    'CERTIFICATE',
    'NAMES',
    'KEY',
    'SERIAL',
    'EXPIRES',
    'DAYS',
    'NEXT RENEWAL',
    'WHY',
    'DEPLOYED',
    ...(withDane ? ['DANE'] : []),
    'LAST ERROR',
  ];
  const day = (iso?: string) => (iso ? iso.slice(0, 16).replace('T', ' ') : '-');
  const lines = rows.map((r) => [
    r.name,
    r.domains.join(','),
    r.keyType,
    r.serial ? (r.serial.length > 12 ? `${r.serial.slice(0, 12)}…` : r.serial) : '-',
    day(r.notAfter),
    r.daysLeft === undefined ? '-' : String(r.daysLeft),
    day(r.nextRenewal),
    r.nextReason,
    r.deployed ? 'yes' : 'no',
    ...(withDane ? [r.dane?.summary ?? '-'] : []),
    r.lastError ? `${r.errorCode ? `${r.errorCode} ` : ''}${r.lastError.replace(/\s+/g, ' ').slice(0, 120)}` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const table = [header, ...lines]
    .map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
  const containers = Object.entries(rows[0]?.containers ?? {});
  if (containers.length === 0) return table;
  const serves = (c: ContainerRecord) =>
    c.serves === true ? 'yes' : c.serves === false ? 'NO' : c.reloaded ? 'could not verify' : 'not reloaded';
  const names = (c: ContainerRecord) => {
    const all = Object.entries(c.names ?? {});
    if (all.length === 0) return '-';
    const wrong = all.filter(([, ok]) => !ok).map(([n]) => n);
    return wrong.length === 0
      ? `all ${all.length}`
      : `${all.length - wrong.length}/${all.length}, wrong: ${wrong.join(' ')}`;
  };
  const cw = Math.max(9, ...containers.map(([n]) => n.length));
  const nw = Math.max(9, ...containers.map(([, c]) => names(c).length));
  return [
    table,
    '',
    `${'CONTAINER'.padEnd(cw)}  SERVES CURRENT    ${'NAMES OK'.padEnd(nw)}  LAST DEPLOY       PROBLEM`,
    ...containers.map(
      ([n, c]) =>
        `${n.padEnd(cw)}  ${serves(c).padEnd(16)}  ${names(c).padEnd(nw)}  ${c.at.slice(0, 16).replace('T', ' ')}  ${problemOf(c)}`,
    ),
  ].join('\n');
}
