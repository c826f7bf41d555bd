/**
 * mailcerts pointed at a Pebble of the test's own that resolves through the test's BIND, with
 * DNS-01 over RFC 2136 signed by the given TSIG key; `extra` adds to it or overrides it.
 */
export function rfc2136Env(
  o: {
    pebble: { directoryUrl: string; caFile: string };
    bind: { address: string };
    key: string;
    secret: string;
    certsDir: string;
    stateDir: string;
  },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ACME_DIRECTORY: o.pebble.directoryUrl,
    NODE_EXTRA_CA_CERTS: o.pebble.caFile,
    CERTS_DIR: o.certsDir,
    STATE_DIR: o.stateDir,
    ACME_CHALLENGE: 'dns-01',
    ACME_DNS_PROVIDER: 'rfc2136',
    RFC2136_SERVER: o.bind.address,
    RFC2136_TSIG_KEY: o.key,
    RFC2136_TSIG_SECRET: o.secret,
    DNS01_RESOLVERS: o.bind.address,
    DNS01_PROPAGATION_TIMEOUT: '30s',
    ...extra,
  };
}
