import { X509Certificate } from 'node:crypto';
import { join, relative } from 'node:path';
import { algorithmOf, type Config } from '../config/schema.js';
import { BundleError, covers, digestOf, dnsNamesOf } from '../pki/bundle.js';
import { keyTypeOf } from '../pki/keys.js';
import { AtomicDir } from './atomic-dir.js';
import { ALGORITHMS, PAIR, SNI_DIR, SNI_KEY_AND_CHAIN, sniFilesOf, variantName } from './layout.js';
import { type Published, publishDirs, setOf } from './set.js';
import type { SniCert, SniRenderer } from './sni.js';

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
