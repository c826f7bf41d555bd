import { join } from 'node:path';
import { algorithmOf, type CertificateSpec } from '../../../config/schema.js';
import { type Bundle, BundleError, checkBundle, parseBundle } from '../../../pki/bundle.js';
import { ALGORITHMS, PAIR, variantPair } from '../../../util/cert-files.js';
import { isRefusedFile, readSmallFile } from '../../../util/small-file.js';
import type { ReadContext, SuppliedRead } from '../source.js';

/** The files of a folder, read as they are: missing or unreadable ones are undefined, a refused one says why. */
function readerOf(dir: string): { read: (f: string) => string | undefined; refused: () => string | undefined } {
  let refused: string | undefined;
  const read = (f: string) => {
    try {
      return readSmallFile(join(dir, f)).toString('utf8');
    } catch (err) {
      if (isRefusedFile(err)) refused = (err as Error).message;
      return undefined; // missing or unreadable: not there yet
    }
  };
  return { read, refused: () => refused };
}

/**
 * The supplied files of a certificate (CUSTOM_CERTS_DIR), read and checked exactly as an issued
 * certificate: fullchain.pem and privkey.pem, and for a dual certificate a second pair of the
 * other algorithm, rsa-fullchain.pem and rsa-privkey.pem (or ecdsa-…).
 */
export async function readSuppliedFiles(spec: CertificateSpec, ctx: ReadContext): Promise<SuppliedRead> {
  const dir = spec.customDir!;
  const files = readerOf(dir);
  const [fullchain, key] = [files.read(PAIR.chain), files.read(PAIR.key)];
  const others = ALGORITHMS.map((a) => ({
    algorithm: a,
    pair: variantPair(a),
    chain: files.read(variantPair(a).chain),
    key: files.read(variantPair(a).key),
  })).filter((o) => o.chain !== undefined || o.key !== undefined);
  const refused = files.refused();
  if (refused) return { refused: `${refused}; nothing was published` };
  if (fullchain === undefined || key === undefined)
    return { missing: `no certificate yet: drop ${PAIR.chain} and ${PAIR.key} into ${dir}` };
  const half = others.find((o) => o.chain === undefined || o.key === undefined);
  if (half)
    return {
      refused: `${join(dir, half.chain === undefined ? half.pair.chain : half.pair.key)} is missing: a second certificate needs both ${half.pair.chain} and ${half.pair.key}; nothing was published`,
    };
  const pairs = [
    [fullchain, key, `the supplied certificate in ${dir}`, undefined],
    ...others.map((o) => [o.chain!, o.key!, `the supplied ${o.pair.chain} in ${dir}`, o.algorithm] as const),
  ] as const;
  let bundles: Bundle[];
  try {
    bundles = checkedPairs(pairs, spec, ctx);
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    return { refused: `${err.message.replace(/; nothing was published$/, '')}; nothing was published` };
  }
  for (const bundle of bundles) {
    const bits = /^rsa-(\d+)$/.exec(bundle.keyType)?.[1];
    if (bits && Number(bits) < 2048)
      ctx.log.warn(
        { step: 'validate', keyType: bundle.keyType },
        'weak key: most TLS libraries refuse RSA keys under 2048 bits; mailcerts verifies after the reload and rolls back if the servers refuse it',
      );
  }
  return { set: { bundles, dual: others.length > 0 }, reason: `supplied in ${dir}` };
}

/** Each pair parsed and checked; a second pair must be of its algorithm, and not a second certificate of the first's. */
function checkedPairs(
  pairs: readonly (readonly [string, string, string, string | undefined])[],
  spec: CertificateSpec,
  ctx: ReadContext,
): Bundle[] {
  const bundles: Bundle[] = [];
  for (const [chainPem, keyPem, where, algorithm] of pairs) {
    const bundle = parseBundle(chainPem, keyPem, where);
    const skew = checkBundle(bundle, spec.domains, new Date(), where);
    if (skew) ctx.log.warn({ step: 'validate' }, skew);
    if (algorithm && algorithmOf(bundle.keyType) !== algorithm)
      throw new BundleError(
        `${where} holds a ${bundle.keyType} certificate, not ${algorithm.toUpperCase()}; nothing was published`,
      );
    const same = bundles.find((b) => algorithmOf(b.keyType) === algorithmOf(bundle.keyType));
    if (same && same.fingerprint256 !== bundle.fingerprint256)
      throw new BundleError(
        `${where} and ${PAIR.chain} are both ${algorithmOf(bundle.keyType)?.toUpperCase()} but different certificates: Postfix and Dovecot serve one key of each algorithm; drop the second pair of the other algorithm`,
      );
    if (!same) bundles.push(bundle);
  }
  return bundles;
}
