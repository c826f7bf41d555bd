import type { Config } from '../config/schema.js';
import { ariCertId } from '../plan/ari.js';
import { decide } from '../plan/renewal.js';
import { BundleError } from '../publish/bundle.js';
import { readPublished } from '../publish/publisher.js';
import { readCertState } from '../state/cert-state.js';

function safeCertId(pem: string): string | undefined {
  try {
    return ariCertId(pem);
  } catch {
    return undefined;
  }
}

export interface StatusRow {
  name: string;
  domains: string[];
  keyType: string;
  source: 'acme' | 'custom';
  serial?: string;
  notAfter?: string;
  daysLeft?: number;
  nextRenewal?: string;
  nextReason: string;
  /** The CA's suggested renewal window (ARI), when it offers one. */
  ariWindow?: { start: string; end: string; explanationURL?: string };
  deployed: boolean;
  failures: number;
  lastSuccessAt?: string;
  lastError?: string;
}

export async function collectStatus(config: Config, now = new Date()): Promise<StatusRow[]> {
  const rows: StatusRow[] = [];
  for (const spec of config.certificates) {
    const state = await readCertState(config.stateDir, spec.name);
    let published;
    let broken: string | undefined;
    try {
      published = await readPublished(config, spec);
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      broken = err.message;
    }
    const b = published?.bundle;
    const d = spec.source === 'custom'
      ? { action: 'custom' as const, reason: `supplied in ${spec.customDir}: nothing renews it${b ? `, replace it before ${b.notAfter.toISOString().slice(0, 10)}` : ''}` }
      : decide({ spec, published: b, broken, state, now, profile: config.acme.profile, ari: b && state.ari?.certId === safeCertId(b.certificates[0]!) ? state.ari : undefined });
    rows.push({
      name: spec.name,
      domains: spec.domains,
      keyType: b?.keyType ?? spec.keyType,
      serial: b?.serial,
      notAfter: b?.notAfter.toISOString(),
      daysLeft: b ? Math.floor((b.notAfter.getTime() - now.getTime()) / 86_400_000) : undefined,
      source: spec.source,
      nextRenewal: d.action === 'keep' ? d.renewAt.toISOString() : d.action === 'wait' ? d.until.toISOString() : d.action === 'custom' ? undefined : now.toISOString(),
      nextReason: d.reason,
      ariWindow: state.ari && b && state.ari.certId === safeCertId(b.certificates[0]!) ? { start: state.ari.start, end: state.ari.end, explanationURL: state.ari.explanationURL } : undefined,
      deployed: !!published && state.deployedDigest === published.digest,
      failures: state.failures,
      lastSuccessAt: state.lastSuccessAt,
      lastError: state.lastError ?? broken,
    });
  }
  return rows;
}

export function formatStatusTable(rows: StatusRow[]): string {
  const header = ['CERTIFICATE', 'NAMES', 'EXPIRES', 'DAYS', 'NEXT RENEWAL', 'WHY', 'DEPLOYED', 'LAST ERROR'];
  const day = (iso?: string) => (iso ? iso.slice(0, 16).replace('T', ' ') : '-');
  const lines = rows.map((r) => [
    r.name,
    r.domains.join(','),
    day(r.notAfter),
    r.daysLeft === undefined ? '-' : String(r.daysLeft),
    day(r.nextRenewal),
    r.nextReason,
    r.deployed ? 'yes' : 'no',
    r.lastError ? r.lastError.replace(/\s+/g, ' ').slice(0, 120) : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
