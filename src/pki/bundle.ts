import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { keyTypeOf } from './keys.js';

/** A certificate with its key, checked and ready to publish. */
export interface Bundle {
  privateKey: string;
  /** Leaf first, then the intermediates, as PEM. */
  certificates: string[];
  leaf: X509Certificate;
  names: string[];
  keyType: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
  fingerprint256: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export class BundleError extends Error {
  override name = 'BundleError';
}

export function dnsNamesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4).toLowerCase());
}

/** True when the certificate's names cover the name (exact, or one wildcard label). */
export function covers(names: string[], name: string): boolean {
  if (names.includes(name)) return true;
  if (name.startsWith('*.')) return false;
  const dot = name.indexOf('.');
  return dot > 0 && names.includes(`*.${name.slice(dot + 1)}`);
}

/** The text a bundle's files are made of: the chain's PEM blocks, leaf first, and the key. */
export interface BundleText {
  privateKey: string;
  certificates: string[];
}

export function bundleText(fullchainPem: string, privateKeyPem: string): BundleText {
  return {
    privateKey: privateKeyPem.endsWith('\n') ? privateKeyPem : `${privateKeyPem}\n`,
    certificates: (fullchainPem.match(PEM_CERT) ?? []).map((c) => `${c}\n`),
  };
}

/** Parses a PEM chain and key. Throws BundleError saying what is wrong with which file. */
export function parseBundle(fullchainPem: string, privateKeyPem: string, source = 'the certificate'): Bundle {
  const text = bundleText(fullchainPem, privateKeyPem);
  if (text.certificates.length === 0) throw new BundleError(`${source}: the chain holds no PEM certificate`);
  const parsed = text.certificates.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new BundleError(`${source}: certificate ${i + 1} of the chain cannot be parsed`);
    }
  });
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch {
    throw new BundleError(`${source}: the private key cannot be parsed (expected a PEM private key)`);
  }
  const leaf = parsed[0]!;
  if (!leaf.checkPrivateKey(key)) throw new BundleError(`${source}: the private key does not match the certificate`);
  for (let i = 0; i + 1 < parsed.length; i++) {
    const child = parsed[i]!;
    const issuer = parsed[i + 1]!;
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
      throw new BundleError(
        `${source}: certificate ${i + 1} of the chain is not signed by certificate ${i + 2} ("${issuer.subject.replace(/\n/g, ', ')}")`,
      );
    }
  }
  return withLeaf(text, leaf);
}

/**
 * The bundle of text that passed parseBundle before, byte for byte (the caller compares digests):
 * only the leaf is parsed again, for its dates and names. The key and chain checks, two thirds of
 * parseBundle's time, are not repeated for files mailcerts itself published and verified.
 */
export function parseCheckedBundle(text: BundleText, source = 'the certificate'): Bundle {
  try {
    return withLeaf(text, new X509Certificate(text.certificates[0] ?? ''));
  } catch {
    throw new BundleError(`${source}: certificate 1 of the chain cannot be parsed`);
  }
}

function withLeaf(text: BundleText, leaf: X509Certificate): Bundle {
  return {
    ...text,
    leaf,
    names: dnsNamesOf(leaf),
    keyType: keyTypeOf(leaf.publicKey),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber,
    fingerprint256: leaf.fingerprint256,
  };
}

/**
 * How far a certificate's notBefore may lie ahead of this host's clock: a CA that does not backdate
 * and a host a minute behind must not refuse every new certificate. Beyond it, the clock is wrong.
 */
export const NOT_BEFORE_SKEW_MS = 5 * 60_000;

/**
 * Refuses a bundle that must not reach a mail server. Returns a warning when the certificate only
 * becomes valid a little later than this host's clock says (within NOT_BEFORE_SKEW_MS).
 */
export function checkBundle(
  bundle: Bundle,
  wantNames: string[],
  now = new Date(),
  source = 'the certificate',
): string | undefined {
  const missing = wantNames.filter((n) => !covers(bundle.names, n));
  if (missing.length > 0)
    throw new BundleError(
      `${source} does not cover ${missing.join(', ')} (it has ${bundle.names.join(', ') || 'no DNS names'})`,
    );
  if (now >= bundle.notAfter) throw new BundleError(`${source} expired on ${bundle.notAfter.toISOString()}`);
  const ahead = bundle.notBefore.getTime() - now.getTime();
  if (ahead > NOT_BEFORE_SKEW_MS)
    throw new BundleError(
      `${source} is not valid before ${bundle.notBefore.toISOString()}, ${Math.round(ahead / 60_000)} min from now by this host's clock; check the clock of this host (NTP)`,
    );
  if (ahead > 0)
    return `${source} becomes valid ${Math.ceil(ahead / 1000)}s from now by this host's clock: the clock of this host seems to be behind; check NTP`;
  return undefined;
}

export function digestOf(files: { name: string; data: string | Buffer }[]): string {
  const h = createHash('sha256');
  // Code-unit order: localeCompare would load ICU's collation data (3 MB) for the same order of
  // the names published (a unit test holds them to it).
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
    h.update(f.name).update('\0').update(f.data).update('\0');
  return h.digest('hex');
}
