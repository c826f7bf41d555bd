import { join } from 'node:path';
import { algorithmOf, type CertificateSpec, type Config } from '../config/schema.js';
import { type Bundle, digestOf } from '../pki/bundle.js';
import { AtomicDir, type PublishFile } from './atomic-dir.js';
import { layoutFiles, type SetText } from './layout.js';

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

/** The files of a set, with the modes (and, for keys, the owner) the configuration gives them. */
export function filesFor(config: Config, set: SetText): PublishFile[] {
  return layoutFiles(set).map((f) =>
    f.secret
      ? { name: f.name, data: f.data, mode: config.files.keyMode, owner: config.files.owner, group: config.files.group }
      : { name: f.name, data: f.data, mode: config.files.certMode },
  );
}
