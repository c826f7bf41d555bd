import { createHash, X509Certificate } from 'node:crypto';
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

/** The ARI id, or undefined for a certificate the CA cannot be asked about (no AKI). */
export function safeAriCertId(pem: string | Buffer): string | undefined {
  try {
    return ariCertId(pem);
  } catch {
    return undefined;
  }
}

/** sha256 of the SubjectPublicKeyInfo, hex: what DANE 3 1 1 pins and what verification compares. */
export function spkiOf(cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}
