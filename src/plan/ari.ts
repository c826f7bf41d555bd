import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, Certificate, id_ce_authorityKeyIdentifier } from '@peculiar/asn1-x509';

/** RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(DER serial). */
export function ariCertId(pem: string | Buffer): string {
  const cert = AsnConvert.parse(new X509Certificate(pem).raw, Certificate);
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_authorityKeyIdentifier);
  if (!ext) throw new Error('the certificate has no Authority Key Identifier, so ARI cannot name it');
  const aki = AsnConvert.parse(ext.extnValue, AuthorityKeyIdentifier);
  if (!aki.keyIdentifier) throw new Error('the Authority Key Identifier has no keyIdentifier');
  return `${Buffer.from(aki.keyIdentifier.buffer).toString('base64url')}.${Buffer.from(cert.tbsCertificate.serialNumber).toString('base64url')}`;
}

/** What the CA suggested for one certificate, and the moment mailcerts picked in it. */
export interface AriState {
  certId: string;
  start: string;
  end: string;
  /** A uniformly random moment in [start, end), picked once per window. */
  selected: string;
  explanationURL?: string;
  fetchedAt: string;
  /** When to ask again (Retry-After of renewalInfo, at least twice a day). */
  nextCheckAt: string;
}

/** Picks a moment in the window; keeps the earlier pick while the window is unchanged. */
export function pickInWindow(window: { start: Date; end: Date }, previous: AriState | undefined, random = Math.random): { selected: Date; moved: boolean } {
  const same = previous && previous.start === window.start.toISOString() && previous.end === window.end.toISOString();
  if (same) return { selected: new Date(previous.selected), moved: false };
  const span = Math.max(0, window.end.getTime() - window.start.getTime());
  return { selected: new Date(window.start.getTime() + Math.floor(random() * span)), moved: previous !== undefined };
}

/** Less than a tenth of the lifetime left: renew whatever any window says. */
export function emergency(notBefore: Date, notAfter: Date, now: Date): boolean {
  return notAfter.getTime() - now.getTime() < (notAfter.getTime() - notBefore.getTime()) / 10;
}
