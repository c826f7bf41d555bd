import { X509Certificate } from 'node:crypto';
import { duplexPair } from 'node:stream';
import { connect, createSecureContext, TLSSocket } from 'node:tls';

/**
 * Whether a certificate chain leads to a root that a TLS client of this process trusts: Node's
 * bundled Mozilla roots plus NODE_EXTRA_CA_CERTS (tls.getCACertificates('default')). The verdict
 * is OpenSSL's own, as a mail client's would be (signatures, CA flags, path length, key usages,
 * dates along the path): the chain is served over an in-memory TLS connection, never the network,
 * and the client side says whether it trusts it. Names are not checked here (the caller does).
 */
export async function untrustedChain(
  chain: { privateKey: string; certificates: string[] },
  timeoutMs = 10_000,
): Promise<string | undefined> {
  const [serverSide, clientSide] = duplexPair();
  const server = new TLSSocket(serverSide, {
    isServer: true,
    secureContext: createSecureContext({ key: chain.privateKey, cert: chain.certificates.join('') }),
  });
  server.on('error', () => undefined); // the client's verdict is what counts
  const client = connect({ socket: clientSide, rejectUnauthorized: false, checkServerIdentity: () => undefined });
  let timer: NodeJS.Timeout | undefined;
  try {
    const verdict = await new Promise<string | null>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no verdict within ${timeoutMs / 1000}s`)), timeoutMs);
      client.once('secureConnect', () =>
        resolve(client.authorized ? null : String(client.authorizationError ?? 'not trusted')),
      );
      client.once('error', reject);
    });
    return verdict === null ? undefined : describeVerdict(verdict, chain.certificates);
  } catch (err) {
    return `its chain could not be checked (${(err as Error).message})`;
  } finally {
    clearTimeout(timer);
    client.destroy();
    server.destroy();
  }
}

const oneLine = (dn: string) => dn.replace(/\n/g, ', ');

/** OpenSSL's verify error code (the last problem it met on the path), in words; `certificates`: the chain as served, leaf first. */
function describeVerdict(code: string, certificates: string[]): string {
  const top = (() => {
    try {
      return new X509Certificate(certificates.at(-1)!);
    } catch {
      return undefined;
    }
  })();
  switch (code) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'it is self-signed, issued by no CA';
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return `its chain ends in a root that is not trusted (${top ? `"${oneLine(top.subject)}"` : 'unknown'})`;
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return `its chain does not lead to a trusted root (the last certificate is issued by ${top ? `"${oneLine(top.issuer)}"` : 'an unknown CA'}, which is not trusted)`;
    case 'CERT_NOT_YET_VALID':
      return "a certificate of its chain is not valid yet by this host's clock (check NTP; OpenSSL allows no skew)";
    case 'CERT_HAS_EXPIRED':
      return 'a certificate of its chain has expired';
    default:
      return `its chain does not verify (${code})`;
  }
}
