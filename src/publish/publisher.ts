import { X509Certificate } from 'node:crypto';
import { join, relative } from 'node:path';
import { algorithmOf, type CertificateSpec, type Config, type VariantSpec } from '../config/schema.js';
import { AtomicDir, type PublishFile } from './atomic-dir.js';
import {
  type Bundle,
  BundleError,
  type BundleText,
  bundleText,
  covers,
  dnsNamesOf,
  digestOf,
  parseBundle,
  parseCheckedBundle,
} from '../pki/bundle.js';
import {
  ALGORITHMS,
  layoutFiles,
  layoutNames,
  PAIR,
  type SetText,
  SNI_DIR,
  SNI_KEY_AND_CHAIN,
  sniFilesOf,
  variantName,
  variantPair,
} from './layout.js';
import { isRefusedFile } from '../util/small-file.js';
import { keyTypeOf } from '../pki/keys.js';
import type { SniCert, SniRenderer } from './sni.js';

/**
 * Where a certificate is published. One certificate: the top of CERTS_DIR. Several: CERTS_DIR/<name>/
 * each, and the first one also at the top (so /etc/ssl/mail/fullchain.pem always works).
 */
export function publishDirs(config: Config, spec: CertificateSpec): AtomicDir[] {
  if (config.certificates.length === 1) return [new AtomicDir(config.certsDir)];
  const own = new AtomicDir(join(config.certsDir, spec.name));
  return config.certificates[0]!.name === spec.name ? [own, new AtomicDir(config.certsDir)] : [own];
}

export interface Published {
  /** The first variant: what the plain file names hold. */
  bundle: Bundle;
  /** Every variant published, the first first (one for a single key type). */
  bundles: Bundle[];
  /** Each variant also has its own prefixed files (rsa-privkey-fullchain.pem, …). */
  dual: boolean;
  digest: string;
}

const OPTIONAL_PAIRS = ALGORITHMS.flatMap((a) => Object.values(variantPair(a)));

/** The files of a set of variants, the first one first; `dual`: each under its own names too. */
export function setOf(bundles: Bundle[], dual: boolean): SetText {
  return {
    primary: bundles[0]!,
    variants: dual ? bundles.map((b) => ({ algorithm: algorithmOf(b.keyType)!, text: b })) : undefined,
  };
}

/** The set as it would be published: its bundles and the digest of its files. */
export function publishedSet(config: Config, bundles: Bundle[], dual: boolean): Published {
  return { bundle: bundles[0]!, bundles, dual, digest: digestOf(filesFor(config, setOf(bundles, dual))) };
}

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

export function filesFor(config: Config, set: SetText): PublishFile[] {
  return layoutFiles(set).map((f) =>
    f.secret
      ? { name: f.name, data: f.data, mode: config.files.keyMode, owner: config.files.owner, group: config.files.group }
      : { name: f.name, data: f.data, mode: config.files.certMode },
  );
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

/**
 * CERTS_DIR/sni/: the Postfix map and the Dovecot includes for every certificate whose files are
 * published in its own directory, under the configured names its published certificate covers.
 * Published after the certificates it names (a map never names a file that is not there) and
 * before any reload, so the servers read a consistent set. `known`: certificates the caller holds
 * as published (the pass read and checked them), so that only their files' presence is looked at.
 * `render`: the files of every mail-server kind (deploy/kinds/), handed in by the rollout.
 */
export async function publishSni(
  config: Config,
  render: SniRenderer,
  known: ReadonlyMap<string, Published> = new Map(),
): Promise<{ changed: boolean; digest: string; listed: string[] } | undefined> {
  const listed: SniCert[] = [];
  for (const spec of config.certificates) {
    const dir = publishDirs(config, spec)[0]!;
    const found = await publishedForSni(dir, known.get(spec.name));
    if (!found) continue; // not published: not listed
    const domains = spec.domains.filter((d) => covers(found.names, d));
    if (domains.length > 0)
      listed.push({ name: spec.name, domains, dir: relative(config.certsDir, dir.dir), files: found.files });
  }
  const dir = new AtomicDir(join(config.certsDir, SNI_DIR));
  // Nothing published yet: nothing to name (and nothing written into CERTS_DIR).
  if (listed.length === 0 && !(await dir.currentVersion())) return undefined;
  const files = render(listed, config.sniCertsPath).map((f) => ({ ...f, mode: 0o644 }));
  const { changed } = await dir.publish(files);
  return { changed, digest: digestOf(files), listed: listed.map((c) => c.name) };
}

/**
 * The DNS names of the certificate published in dir and the key-and-chain files a map names
 * (every variant's); undefined when they are not there.
 */
async function publishedForSni(
  dir: AtomicDir,
  known: Published | undefined,
): Promise<{ names: string[]; files: string[] } | undefined> {
  if (known) {
    const files = sniFilesOf(setOf(known.bundles, known.dual));
    return (await dir.holds([PAIR.chain, ...files])) ? { names: known.bundle.names, files } : undefined;
  }
  // Unreadable: the last SNI files stay as they are (this throws).
  const read = await dir.read(
    [PAIR.chain],
    ALGORITHMS.map((a) => variantName(a, SNI_KEY_AND_CHAIN)).concat(SNI_KEY_AND_CHAIN),
  );
  if (!read) return undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(read.get(PAIR.chain)!);
  } catch {
    throw new BundleError(`the published certificate in ${dir.dir} cannot be parsed; the SNI files were not changed`);
  }
  // The first variant's file first, as sniFilesOf orders them.
  const first = algorithmOf(keyTypeOf(leaf.publicKey));
  const dual = [...ALGORITHMS]
    .sort((a, b) => Number(b === first) - Number(a === first))
    .map((a) => variantName(a, SNI_KEY_AND_CHAIN))
    .filter((f) => read.has(f));
  const files = dual.length > 0 ? dual : read.has(SNI_KEY_AND_CHAIN) ? [SNI_KEY_AND_CHAIN] : [];
  return files.length > 0 ? { names: dnsNamesOf(leaf), files } : undefined;
}
