import { X509Certificate } from 'node:crypto';
import { join, relative } from 'node:path';
import type { CertificateSpec, Config } from '../config/schema.js';
import { AtomicDir, type PublishFile } from './atomic-dir.js';
import { type Bundle, BundleError, type BundleText, bundleText, covers, dnsNamesOf, digestOf, parseBundle, parseCheckedBundle } from './bundle.js';
import { FILE_NAMES, layoutFiles, PAIR, SNI_DIR, SNI_KEY_AND_CHAIN } from './layout.js';
import { isRefusedFile } from '../util/small-file.js';
import { renderSni, type SniCert } from './sni.js';

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
  bundle: Bundle;
  digest: string;
}

/**
 * The certificate as currently published, or undefined (none yet). Only the pair is needed: files
 * adopted from another tool may lack the rest, which the next pass fills in. Throws BundleError when
 * the files are broken. `checkedDigest`: the digest of a set mailcerts published and checked (the
 * deployed one); files that still have it are not checked again.
 */
export async function readPublished(config: Config, spec: CertificateSpec, checkedDigest?: string): Promise<Published | undefined> {
  // The first certificate may have lived at the top alone, before a second one was configured:
  // its own directory is then still empty, and what the servers read is at the top.
  for (const dir of publishDirs(config, spec)) {
    const files = await dir.read([PAIR.chain, PAIR.key]).catch((err: unknown) => {
      throw isRefusedFile(err) ? new BundleError(`the published certificate in ${dir.dir}: ${(err as Error).message}`) : err;
    });
    if (!files) continue;
    const [chain, key] = [files.get(PAIR.chain)!.toString(), files.get(PAIR.key)!.toString()];
    const source = `the published certificate in ${dir.dir}`;
    if (checkedDigest) {
      const text = bundleText(chain, key);
      const digest = digestOf(filesFor(config, text));
      if (digest === checkedDigest) return { bundle: parseCheckedBundle(text, source), digest };
    }
    const bundle = parseBundle(chain, key, source);
    return { bundle, digest: digestOf(filesFor(config, bundle)) };
  }
  return undefined;
}

/** The published files, or why they are unusable. */
export async function readPublishedOrBroken(config: Config, spec: CertificateSpec, checkedDigest?: string): Promise<{ published?: Published; broken?: string }> {
  try {
    return { published: await readPublished(config, spec, checkedDigest) };
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    return { broken: err.message };
  }
}

export function filesFor(config: Config, bundle: BundleText): PublishFile[] {
  return layoutFiles(bundle).map((f) =>
    f.secret
      ? { name: f.name, data: f.data, mode: config.files.keyMode, owner: config.files.owner, group: config.files.group }
      : { name: f.name, data: f.data, mode: config.files.certMode },
  );
}

/** Publishes a checked bundle into every directory of the certificate; returns it as now published. */
export async function publishBundle(config: Config, spec: CertificateSpec, bundle: Bundle): Promise<Published & { changed: boolean }> {
  const files = filesFor(config, bundle);
  let changed = false;
  for (const dir of publishDirs(config, spec)) changed = (await dir.publish(files)).changed || changed;
  return { changed, bundle, digest: digestOf(files) };
}

/**
 * Restores the version live before the current one, in every directory of the certificate. A
 * directory that has no previous version (a copy made later) gets the restored files published.
 * Refuses to restore a certificate that expired by `now`.
 */
export async function rollbackPublished(config: Config, spec: CertificateSpec, now: Date): Promise<{ published?: Published } | { expired: string }> {
  const dirs = publishDirs(config, spec);
  const withPrevious: AtomicDir[] = [];
  for (const dir of dirs) if (await dir.rollbackTarget()) withPrevious.push(dir);
  if (withPrevious.length === 0) return {};
  const files = await withPrevious[0]!.readPrevious([PAIR.chain, PAIR.key]);
  if (!files) return {};
  const bundle = parseBundle(files.get(PAIR.chain)!.toString(), files.get(PAIR.key)!.toString(), `the previous certificate in ${withPrevious[0]!.dir}`);
  if (bundle.notAfter <= now) return { expired: bundle.notAfter.toISOString() };
  for (const dir of withPrevious) await dir.rollback();
  const restored = filesFor(config, bundle);
  for (const dir of dirs) if (!withPrevious.includes(dir)) await dir.publish(restored);
  return { published: { bundle, digest: digestOf(restored) } };
}

/**
 * Publishes the certificate where a copy is missing or incomplete. A certificate with one directory
 * was just read from it, so a complete set of files there is what is published (the cheap check,
 * for many certificates); the first certificate's two copies are compared byte for byte, since a
 * crash between them leaves the top one older.
 */
export async function repairPublished(config: Config, spec: CertificateSpec, published: Published): Promise<{ changed: boolean }> {
  const dirs = publishDirs(config, spec);
  if (dirs.length === 1 && (await dirs[0]!.holds(FILE_NAMES, true))) return { changed: false };
  return publishBundle(config, spec, published.bundle);
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
 */
export async function publishSni(config: Config, known: ReadonlyMap<string, Published> = new Map()): Promise<{ changed: boolean; digest: string; listed: string[] } | undefined> {
  const listed: SniCert[] = [];
  for (const spec of config.certificates) {
    const dir = publishDirs(config, spec)[0]!;
    const names = await publishedNames(dir, known.get(spec.name));
    if (!names) continue; // not published: not listed
    const domains = spec.domains.filter((d) => covers(names, d));
    if (domains.length > 0) listed.push({ name: spec.name, domains, dir: relative(config.certsDir, dir.dir) });
  }
  const dir = new AtomicDir(join(config.certsDir, SNI_DIR));
  // Nothing published yet: nothing to name (and nothing written into CERTS_DIR).
  if (listed.length === 0 && !(await dir.currentVersion())) return undefined;
  const files = renderSni(listed, config.sniCertsPath).map((f) => ({ ...f, mode: 0o644 }));
  const { changed } = await dir.publish(files);
  return { changed, digest: digestOf(files), listed: listed.map((c) => c.name) };
}

/** The DNS names of the certificate published in dir, with the files a map names; undefined when not there. */
async function publishedNames(dir: AtomicDir, known: Published | undefined): Promise<string[] | undefined> {
  if (known) return (await dir.holds([PAIR.chain, SNI_KEY_AND_CHAIN])) ? known.bundle.names : undefined;
  // Unreadable: the last SNI files stay as they are (this throws).
  const files = await dir.read([PAIR.chain, SNI_KEY_AND_CHAIN]);
  if (!files) return undefined;
  try {
    return dnsNamesOf(new X509Certificate(files.get(PAIR.chain)!));
  } catch {
    throw new BundleError(`the published certificate in ${dir.dir} cannot be parsed; the SNI files were not changed`);
  }
}
