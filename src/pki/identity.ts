import { createHash, createPublicKey, X509Certificate } from 'node:crypto';

/**
 * One DER element: its tag and where its content lies. Certificates use single-byte tags and
 * definite lengths; anything else, or an element running past its container, is refused.
 */
interface Der {
  tag: number;
  start: number;
  end: number;
}

function derAt(buf: Buffer, at: number, limit: number): Der {
  if (at + 2 > limit) throw new Error('the certificate is truncated');
  const tag = buf[at]!;
  let length = buf[at + 1]!;
  let start = at + 2;
  if ((tag & 0x1f) === 0x1f) throw new Error('the certificate has a multi-byte DER tag');
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > limit) throw new Error('the certificate has a bad DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + buf[start + i]!;
    start += bytes;
  }
  if (start + length > limit) throw new Error('the certificate is truncated');
  return { tag, start, end: start + length };
}

function childrenOf(buf: Buffer, parent: Der): Der[] {
  const out: Der[] = [];
  for (let at = parent.start; at < parent.end; at = out.at(-1)!.end) out.push(derAt(buf, at, parent.end));
  return out;
}

function expectTag(el: Der | undefined, tag: number, what: string): Der {
  if (el?.tag !== tag) throw new Error(`the certificate's ${what} is not where X.509 puts it`);
  return el;
}

const SEQUENCE = 0x30;
const AKI_OID = Buffer.from([0x55, 0x1d, 0x23]); // 2.5.29.35

/**
 * RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(DER serial).
 * The two fields are read from the DER by hand: Node's X509Certificate does not expose the AKI,
 * and an ASN.1 library (the @peculiar schema packages) would add its weight to every idle daemon
 * for these few lines.
 */
export function ariCertId(pem: string | Buffer): string {
  const der = new X509Certificate(pem).raw;
  const cert = expectTag(derAt(der, 0, der.length), SEQUENCE, 'outer SEQUENCE');
  const tbs = childrenOf(der, expectTag(childrenOf(der, cert)[0], SEQUENCE, 'tbsCertificate'));
  const serial = expectTag(tbs[tbs[0]?.tag === 0xa0 ? 1 : 0], 0x02, 'serialNumber'); // after the optional [0] version
  const extensions = tbs.find((f) => f.tag === 0xa3); // [3] EXPLICIT Extensions
  let aki: Der | undefined;
  for (const ext of extensions
    ? childrenOf(der, expectTag(childrenOf(der, extensions)[0], SEQUENCE, 'extensions'))
    : []) {
    const parts = childrenOf(der, expectTag(ext, SEQUENCE, 'extension'));
    const oid = expectTag(parts[0], 0x06, 'extension id');
    if (der.subarray(oid.start, oid.end).equals(AKI_OID)) aki = expectTag(parts.at(-1), 0x04, 'extension value');
  }
  if (!aki) throw new Error('the certificate has no Authority Key Identifier, so ARI cannot name it');
  const akiFields = childrenOf(der, expectTag(derAt(der, aki.start, aki.end), SEQUENCE, 'Authority Key Identifier'));
  const keyId = akiFields.find((f) => f.tag === 0x80); // [0] IMPLICIT KeyIdentifier
  if (!keyId) throw new Error('the Authority Key Identifier has no keyIdentifier');
  return `${der.subarray(keyId.start, keyId.end).toString('base64url')}.${der.subarray(serial.start, serial.end).toString('base64url')}`;
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
  return createHash('sha256')
    .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** sha256 of a private key's SubjectPublicKeyInfo, hex: the TLSA 3 1 1 digest a certificate with that key will have. */
export function spkiOfKey(privateKeyPem: string): string {
  return createHash('sha256')
    .update(createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' }))
    .digest('hex');
}
