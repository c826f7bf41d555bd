import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { renewalTime } from '../plan/renewal.js';
import { type Bundle, BundleError, checkBundle, digestOf, parseBundle } from '../publish/bundle.js';
import { PAIR } from '../publish/layout.js';
import { filesFor } from '../publish/publisher.js';
import { isRefusedFile, readSmallFile } from '../util/small-file.js';
import type { CertRun } from './cert-run.js';

/**
 * A supplied certificate (CUSTOM_CERTS_DIR): reads and checks the files the user dropped exactly as
 * an issued certificate. Returns the bundle to publish, or undefined when there is nothing new.
 */
export async function intakeSupplied(run: CertRun, config: Config): Promise<Bundle | undefined> {
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
  let bundle: Bundle;
  try {
    bundle = parseBundle(fullchain, key, `the supplied certificate in ${dir}`);
    const skew = checkBundle(bundle, spec.domains, new Date(), `the supplied certificate in ${dir}`);
    if (skew) log.warn({ step: 'validate' }, skew);
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    return refuse(`${err.message}; nothing was published`);
  }
  const bits = /^rsa-(\d+)$/.exec(bundle.keyType)?.[1];
  if (bits && Number(bits) < 2048) log.warn({ step: 'validate', keyType: bundle.keyType }, 'weak key: most TLS libraries refuse RSA keys under 2048 bits; mailcerts verifies after the reload and rolls back if the servers refuse it');
  const digest = digestOf(filesFor(config, bundle));
  if (digest === run.state.rejectedDigest) {
    run.held(run.state.lastError ?? 'these files were rolled back; replace them');
    return undefined;
  }
  if (renewalTime(bundle.notBefore, bundle.notAfter) <= new Date()) {
    const days = Math.max(0, Math.floor((bundle.notAfter.getTime() - Date.now()) / 86_400_000));
    log.warn({ step: 'plan', notAfter: bundle.notAfter.toISOString() }, `supplied certificate expires in ${days} days; nothing renews it: replace the files in ${dir}`);
  }
  if (run.published?.digest === digest) return undefined;
  run.planned('publish', `supplied in ${dir}`);
  return bundle;
}
