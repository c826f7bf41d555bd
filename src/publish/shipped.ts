import { join, relative } from 'node:path';
import { algorithmOf, type CertificateSpec, type Config } from '../config/schema.js';
import { AtomicDir } from './atomic-dir.js';
import { FILE_NAMES, isSecretFile, layoutFiles, SNI_DIR } from './layout.js';
import { publishDirs, type Published, setOf } from './publisher.js';

/**
 * A published file as a deployer that ships files itself (Swarm) needs it: its path under
 * CERTS_DIR, which is also its path under the containers' target directory, and the version it
 * belongs to. The layout stays the publisher's: a deployer copies it, never names a file.
 */
export interface ShippedFile {
  /** Relative to CERTS_DIR, e.g. fullchain.pem, other.example.com/rsa-privkey.pem, sni/postfix.map. */
  path: string;
  data: string;
  /** Holds a private key. */
  secret: boolean;
  /** Its name in a certificate's directory, or in sni/ (the same for every version). */
  file: string;
  /** The certificate variant it belongs to; undefined for the SNI files. */
  variant?: { cert: string; algorithm: string; fingerprint256: string; serial: string; notAfter: Date };
}

/** Every file of a published set, in each of the certificate's directories. */
export function shippedFiles(config: Config, spec: CertificateSpec, published: Published): ShippedFile[] {
  const set = setOf(published.bundles, published.dual);
  const files = layoutFiles(set);
  const out: ShippedFile[] = [];
  for (const dir of publishDirs(config, spec)) {
    const base = relative(config.certsDir, dir.dir);
    for (const f of files) {
      // A plain name holds the first variant; a prefixed one names its algorithm.
      const bundle = published.bundles.find((b) => f.name.startsWith(`${algorithmOf(b.keyType)}-`)) ?? published.bundle;
      const file = FILE_NAMES.includes(f.name) ? f.name : f.name.slice(f.name.indexOf('-') + 1);
      out.push({
        path: base ? `${base}/${f.name}` : f.name,
        data: f.data,
        secret: isSecretFile(f.name),
        file,
        variant: {
          cert: spec.name,
          algorithm: algorithmOf(bundle.keyType) ?? bundle.keyType,
          fingerprint256: bundle.fingerprint256,
          serial: bundle.serial,
          notAfter: bundle.notAfter,
        },
      });
    }
  }
  return out;
}

/** The SNI files as last published (CERTS_DIR/sni/), or none; `names`: those of every mail-server kind. */
export async function shippedSniFiles(config: Config, names: readonly string[]): Promise<ShippedFile[]> {
  const read = await new AtomicDir(join(config.certsDir, SNI_DIR)).read([...names]);
  if (!read) return [];
  return names.map((n) => ({ path: `${SNI_DIR}/${n}`, data: read.get(n)!.toString('utf8'), secret: false, file: n }));
}
