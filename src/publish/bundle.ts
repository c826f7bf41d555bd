import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { keyTypeOf } from '../obtain/keys.js';

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

/** Parses a PEM chain and key. Throws BundleError saying what is wrong with which file. */
export function parseBundle(fullchainPem: string, privateKeyPem: string, source = 'the certificate'): Bundle {
  const certificates = fullchainPem.match(PEM_CERT) ?? [];
  if (certificates.length === 0) throw new BundleError(`${source}: the chain holds no PEM certificate`);
  const parsed = certificates.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new BundleError(`${source}: certificate ${i + 1} of the chain cannot be parsed`);
    }
  });
  let key;
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
      throw new BundleError(`${source}: certificate ${i + 1} of the chain is not signed by certificate ${i + 2} ("${issuer.subject.replace(/\n/g, ', ')}")`);
    }
  }
  return {
    privateKey: privateKeyPem.endsWith('\n') ? privateKeyPem : `${privateKeyPem}\n`,
    certificates: certificates.map((c) => `${c}\n`),
    leaf,
    names: dnsNamesOf(leaf),
    keyType: keyTypeOf(leaf.publicKey),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber,
    fingerprint256: leaf.fingerprint256,
  };
}

/** Refuses a bundle that must not reach a mail server. */
export function checkBundle(bundle: Bundle, wantNames: string[], now = new Date(), source = 'the certificate'): void {
  const missing = wantNames.filter((n) => !covers(bundle.names, n));
  if (missing.length > 0) throw new BundleError(`${source} does not cover ${missing.join(', ')} (it has ${bundle.names.join(', ') || 'no DNS names'})`);
  if (now < bundle.notBefore) throw new BundleError(`${source} is not valid before ${bundle.notBefore.toISOString()}; check the clock of this host`);
  if (now >= bundle.notAfter) throw new BundleError(`${source} expired on ${bundle.notAfter.toISOString()}`);
}

/** The files published for a certificate, by name. Key-bearing files get the key mode. */
export function bundleFiles(b: Bundle): { name: string; data: string; secret: boolean }[] {
  const fullchain = b.certificates.join('');
  return [
    { name: 'fullchain.pem', data: fullchain, secret: false },
    { name: 'cert.pem', data: b.certificates[0]!, secret: false },
    { name: 'chain.pem', data: b.certificates.slice(1).join(''), secret: false },
    { name: 'privkey.pem', data: b.privateKey, secret: true },
    // For Postfix smtpd_tls_chain_files: key first, then its chain, in one file.
    { name: 'privkey-fullchain.pem', data: b.privateKey + fullchain, secret: true },
  ];
}

export function digestOf(files: { name: string; data: string | Buffer }[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => a.name.localeCompare(b.name))) h.update(f.name).update('\0').update(f.data).update('\0');
  return h.digest('hex');
}
