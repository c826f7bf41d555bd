import { join } from 'node:path';
import { algorithmOf, type Config } from '../config/schema.js';
import { renewalTime } from '../plan/renewal.js';
import { type Bundle, BundleError, checkBundle, parseBundle } from '../pki/bundle.js';
import { ALGORITHMS, PAIR, variantPair } from '../publish/layout.js';
import { publishedSet } from '../publish/publisher.js';
import { errorMessage } from '../util/errors.js';
import { isRefusedFile, readSmallFile } from '../util/small-file.js';
import type { CertRun } from './cert-run.js';

/**
 * A supplied certificate (CUSTOM_CERTS_DIR): reads and checks the files the user dropped exactly as
 * an issued certificate: fullchain.pem and privkey.pem, and for a dual certificate a second pair
 * of the other algorithm, rsa-fullchain.pem and rsa-privkey.pem (or ecdsa-…). Returns the set to
 * publish, or undefined when there is nothing new.
 */
export async function intakeSupplied(
  run: CertRun,
  config: Config,
): Promise<{ bundles: Bundle[]; dual: boolean } | undefined> {
  const { spec, log } = run;
  const dir = spec.customDir!;
  let refused: string | undefined;
  const read = (f: string) => {
    try {
      return readSmallFile(join(dir, f)).toString('utf8');
    } catch (err) {
      if (isRefusedFile(err)) refused = (err as Error).message;
      return undefined; // missing or unreadable: not there yet
    }
  };
  const [fullchain, key] = [read(PAIR.chain), read(PAIR.key)];
  const others = ALGORITHMS.map((a) => ({
    algorithm: a,
    pair: variantPair(a),
    chain: read(variantPair(a).chain),
    key: read(variantPair(a).key),
  })).filter((o) => o.chain !== undefined || o.key !== undefined);
  const refuse = (error: string) => {
    run.held(error);
    Object.assign(run.state, { lastError: error, lastAttemptAt: new Date().toISOString() });
    run.markDirty();
    log.error({ step: 'validate', error }, 'supplied certificate refused');
    return undefined;
  };
  if (refused) return refuse(`${refused}; nothing was published`);
  if (fullchain === undefined || key === undefined) {
    return run.published ? undefined : refuse(`no certificate yet: drop ${PAIR.chain} and ${PAIR.key} into ${dir}`);
  }
  const half = others.find((o) => o.chain === undefined || o.key === undefined);
  if (half)
    return refuse(
      `${join(dir, half.chain === undefined ? half.pair.chain : half.pair.key)} is missing: a second certificate needs both ${half.pair.chain} and ${half.pair.key}; nothing was published`,
    );
  const bundles: Bundle[] = [];
  try {
    for (const [chainPem, keyPem, where, algorithm] of [
      [fullchain, key, `the supplied certificate in ${dir}`, undefined],
      ...others.map((o) => [o.chain!, o.key!, `the supplied ${o.pair.chain} in ${dir}`, o.algorithm] as const),
    ] as const) {
      const bundle = parseBundle(chainPem, keyPem, where);
      const skew = checkBundle(bundle, spec.domains, new Date(), where);
      if (skew) log.warn({ step: 'validate' }, skew);
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
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    return refuse(`${err.message.replace(/; nothing was published$/, '')}; nothing was published`);
  }
  for (const bundle of bundles) {
    const bits = /^rsa-(\d+)$/.exec(bundle.keyType)?.[1];
    if (bits && Number(bits) < 2048)
      log.warn(
        { step: 'validate', keyType: bundle.keyType },
        'weak key: most TLS libraries refuse RSA keys under 2048 bits; mailcerts verifies after the reload and rolls back if the servers refuse it',
      );
  }
  const dual = others.length > 0;
  const { digest } = publishedSet(config, bundles, dual);
  if (digest === run.state.rejectedDigest) {
    run.held(run.state.lastError ?? 'these files were rolled back; replace them');
    return undefined;
  }
  for (const bundle of bundles) {
    if (renewalTime(bundle.notBefore, bundle.notAfter) <= new Date()) {
      const days = Math.max(0, Math.floor((bundle.notAfter.getTime() - Date.now()) / 86_400_000));
      log.warn(
        { step: 'plan', notAfter: bundle.notAfter.toISOString() },
        `supplied certificate expires in ${days} days; nothing renews it: replace the files in ${dir}`,
      );
    }
  }
  if (run.published?.digest === digest) return undefined;
  run.planned('publish', `supplied in ${dir}`);
  return { bundles, dual };
}

/**
 * A certificate taken from Traefik's acme.json: the entry that covers the names, is valid, chains
 * to a trusted root (unless TRAEFIK_VERIFY_CHAIN=false) and expires last, checked as an issued one. A file that cannot be read, has no such entry, or only
 * broken ones publishes nothing; the current certificate stays.
 */
export async function intakeTraefik(
  run: CertRun,
  config: Config,
  signal?: AbortSignal,
): Promise<{ bundles: Bundle[]; dual: boolean } | undefined> {
  const { spec, log } = run;
  const { file, resolver, verifyChain } = spec.traefik!;
  const { readAcmeJsonStable, traefikEntries, pickTraefikEntry } = await import('../obtain/traefik.js');
  // A file anyone could have written is refused when read; an entry must also come from a CA.
  const { untrustedChain } = verifyChain ? await import('../pki/trust.js') : { untrustedChain: undefined };
  const distrust =
    untrustedChain &&
    (async (b: Bundle) => {
      const why = await untrustedChain(b);
      return (
        why && `${why} (trust a private ACME CA's root with NODE_EXTRA_CA_CERTS, or set TRAEFIK_VERIFY_CHAIN=false)`
      );
    });
  let picked: Awaited<ReturnType<typeof pickTraefikEntry>>;
  try {
    const { data, partialReads } = await readAcmeJsonStable(file, signal);
    if (partialReads > 0)
      log.info(
        { step: 'validate', file, partialReads },
        "Traefik's acme.json was being rewritten; read again until it settled",
      );
    const entries = traefikEntries(data, file, resolver);
    picked = await pickTraefikEntry(entries, spec.domains, spec.keyTypes[0]!, file, { distrust });
  } catch (err) {
    if (signal?.aborted) throw err; // a stop, not a refusal
    // Counted as a failure: it shows in status and, when it lasts, in an alert; the published
    // certificate stays.
    run.failed('obtain', errorMessage(err).slice(0, 2000), "no usable certificate in Traefik's acme.json");
    return undefined;
  }
  for (const s of picked.skipped)
    log.warn({ step: 'validate', skipped: s }, "an entry of Traefik's acme.json was not used");
  const bundle = picked.entry.bundle!;
  const { digest } = publishedSet(config, [bundle], false);
  if (digest === run.state.rejectedDigest) {
    run.held(
      run.state.lastError ?? 'this certificate from Traefik was rolled back; mailcerts waits for Traefik to renew it',
    );
    return undefined;
  }
  if (run.published?.digest === digest) {
    run.sourceRecovered();
    return undefined;
  }
  log.info(
    {
      step: 'validate',
      serial: bundle.serial,
      notAfter: bundle.notAfter.toISOString(),
      resolver: picked.entry.resolver,
    },
    "certificate from Traefik's acme.json checked",
  );
  run.planned('publish', `from Traefik's acme.json (resolver ${picked.entry.resolver})`);
  return { bundles: [bundle], dual: false };
}
