import { algorithmOf, type CertificateSpec, type Config, type VariantSpec } from '../config/schema.js';
import { AtomicDir } from './atomic-dir.js';
import {
  type Bundle,
  BundleError,
  type BundleText,
  bundleText,
  digestOf,
  parseBundle,
  parseCheckedBundle,
} from '../pki/bundle.js';
import { ALGORITHMS, layoutNames, PAIR, type SetText, variantPair } from './layout.js';
import { isRefusedFile } from '../util/small-file.js';
import { filesFor, type Published, publishDirs, setOf } from './set.js';

// What a pass reads of a published set, and where it goes (set.ts); the SNI files (sni-publish.ts).
export { filesFor, type Published, publishDirs, publishedSet, setOf } from './set.js';
export { publishSni } from './sni-publish.js';

const OPTIONAL_PAIRS = ALGORITHMS.flatMap((a) => Object.values(variantPair(a)));

/**
 * The published bundle of one variant: the one of its algorithm. A certificate with a single key
 * type takes whatever the plain names hold, so that a change of key type is seen as one.
 */
export function bundleFor(published: Published | undefined, spec: VariantSpec): Bundle | undefined {
  if (!published) return undefined;
  const alg = algorithmOf(spec.keyType);
  if (!published.dual && spec.keyTypes.length === 1) return published.bundle;
  return published.bundles.find((b) => algorithmOf(b.keyType) === alg);
}

/** The set in files read from a directory (the plain pair, and any prefixed pairs). */
function setText(files: Map<string, Buffer>): SetText {
  const text = (chain: string, key: string) => bundleText(files.get(chain)!.toString(), files.get(key)!.toString());
  const variants = ALGORITHMS.filter((a) => files.has(variantPair(a).chain) && files.has(variantPair(a).key)).map(
    (algorithm) => ({ algorithm, text: text(variantPair(algorithm).chain, variantPair(algorithm).key) }),
  );
  return { primary: text(PAIR.chain, PAIR.key), variants: variants.length > 0 ? variants : undefined };
}

/** Parses every bundle of a set; `checked`: the set passed the full checks before (same digest). */
function parseSet(
  config: Config,
  set: SetText,
  source: string,
  checked: boolean,
  digest = digestOf(filesFor(config, set)),
): Published {
  const parse = (t: BundleText, where: string) =>
    checked ? parseCheckedBundle(t, where) : parseBundle(t.certificates.join(''), t.privateKey, where);
  const primary = parse(set.primary, source);
  const bundles = [primary];
  for (const v of set.variants ?? []) {
    const same =
      v.text.privateKey === set.primary.privateKey &&
      v.text.certificates.join('') === set.primary.certificates.join('');
    const b = same ? primary : parse(v.text, `${source} (${variantPair(v.algorithm).chain})`);
    if (algorithmOf(b.keyType) !== v.algorithm)
      throw new BundleError(
        `${source}: ${variantPair(v.algorithm).chain} holds a ${b.keyType} certificate, not ${v.algorithm.toUpperCase()}`,
      );
    if (!same) bundles.push(b);
  }
  return { bundle: primary, bundles, dual: !!set.variants, digest };
}

/**
 * The certificate as currently published, or undefined (none yet). Only the pair is needed: files
 * adopted from another tool may lack the rest, which the next pass fills in. Throws BundleError when
 * the files are broken. `checkedDigest`: the digest of a set mailcerts published and checked (the
 * deployed one); files that still have it are not checked again.
 */
export async function readPublished(
  config: Config,
  spec: CertificateSpec,
  checkedDigest?: string,
): Promise<Published | undefined> {
  // The first certificate may have lived at the top alone, before a second one was configured:
  // its own directory is then still empty, and what the servers read is at the top.
  for (const dir of publishDirs(config, spec)) {
    const files = await dir.read([PAIR.chain, PAIR.key], OPTIONAL_PAIRS).catch((err: unknown) => {
      throw isRefusedFile(err)
        ? new BundleError(`the published certificate in ${dir.dir}: ${(err as Error).message}`)
        : err;
    });
    if (!files) continue;
    const set = setText(files);
    const digest = digestOf(filesFor(config, set));
    return parseSet(config, set, `the published certificate in ${dir.dir}`, digest === checkedDigest, digest);
  }
  return undefined;
}

/** The published files, or why they are unusable. */
export async function readPublishedOrBroken(
  config: Config,
  spec: CertificateSpec,
  checkedDigest?: string,
): Promise<{ published?: Published; broken?: string }> {
  try {
    return { published: await readPublished(config, spec, checkedDigest) };
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    return { broken: err.message };
  }
}

/** Publishes a checked set of variants into every directory of the certificate; returns it as now published. */
export async function publishSet(
  config: Config,
  spec: CertificateSpec,
  bundles: Bundle[],
  dual: boolean,
): Promise<Published & { changed: boolean }> {
  const files = filesFor(config, setOf(bundles, dual));
  let changed = false;
  for (const dir of publishDirs(config, spec)) changed = (await dir.publish(files)).changed || changed;
  return { changed, bundle: bundles[0]!, bundles, dual, digest: digestOf(files) };
}

/**
 * Restores the version live before the current one, in every directory of the certificate. A
 * directory that has no previous version (a copy made later) gets the restored files published.
 * Refuses to restore a certificate that expired by `now`.
 */
export async function rollbackPublished(
  config: Config,
  spec: CertificateSpec,
  now: Date,
): Promise<{ published?: Published } | { expired: string }> {
  const dirs = publishDirs(config, spec);
  const withPrevious: AtomicDir[] = [];
  for (const dir of dirs) if (await dir.rollbackTarget()) withPrevious.push(dir);
  if (withPrevious.length === 0) return {};
  const files = await withPrevious[0]!.readPrevious([PAIR.chain, PAIR.key], OPTIONAL_PAIRS);
  if (!files) return {};
  const set = setText(files);
  const published = parseSet(config, set, `the previous certificate in ${withPrevious[0]!.dir}`, false);
  const expired = published.bundles.find((b) => b.notAfter <= now);
  if (expired) return { expired: expired.notAfter.toISOString() };
  for (const dir of withPrevious) await dir.rollback();
  const restored = filesFor(config, set);
  for (const dir of dirs) if (!withPrevious.includes(dir)) await dir.publish(restored);
  return { published };
}

/**
 * Publishes the certificate where a copy is missing or incomplete. A certificate with one directory
 * was just read from it, so a complete set of files there is what is published (the cheap check,
 * for many certificates); the first certificate's two copies are compared byte for byte, since a
 * crash between them leaves the top one older.
 */
export async function repairPublished(
  config: Config,
  spec: CertificateSpec,
  published: Published,
): Promise<{ changed: boolean }> {
  const dirs = publishDirs(config, spec);
  if (dirs.length === 1 && (await dirs[0]!.holds(layoutNames(setOf(published.bundles, published.dual)), true)))
    return { changed: false };
  return publishSet(config, spec, published.bundles, published.dual);
}

/**
 * Every directory a publish will write, checked before anything is ordered. The top of CERTS_DIR
 * gets the whole proof (a file with the key's mode and owner, a link swapped by rename); the
 * certificates' own directories inside it only need to exist and be writable, which keeps the
 * check cheap with hundreds of certificates.
 */
export async function checkPublishable(config: Config): Promise<void> {
  const top = new AtomicDir(config.certsDir);
  await top.checkWritable(config.files.keyMode, config.files.owner, config.files.group);
  const seen = new Set([top.dir]);
  for (const spec of config.certificates) {
    for (const dir of publishDirs(config, spec)) {
      if (seen.has(dir.dir)) continue;
      seen.add(dir.dir);
      await dir.checkWritableHere();
    }
  }
}
