import type { Config } from '../config/schema.js';
import type { SuppliedSource } from '../obtain/sources/index.js';
import { renewalTime } from '../plan/renewal.js';
import type { Bundle } from '../pki/bundle.js';
import { publishedSet } from '../publish/publisher.js';
import type { CertRun } from './cert-run.js';

/** Files that cannot be taken: held with the error kept, not counted as a failure; nothing is published. */
function refuse(run: CertRun, error: string): undefined {
  run.refused(error);
  run.log.error({ step: 'validate', error }, 'supplied certificate refused');
  return undefined;
}

/**
 * A supplied certificate's intake (its source reads it: obtain/sources/<name>/read.ts): the set
 * to publish, or undefined when there is nothing new. A set that was rolled back is not taken
 * again until the source changes; one that is what is published clears an earlier refusal.
 */
export async function intakeSupplied(
  run: CertRun,
  source: SuppliedSource,
  config: Config,
  signal?: AbortSignal,
): Promise<{ bundles: Bundle[]; dual: boolean } | undefined> {
  const read = await source.read(run.spec, { config, log: run.log, signal });
  if ('missing' in read) return run.published ? undefined : refuse(run, read.missing);
  if ('refused' in read) return refuse(run, read.refused);
  if ('failed' in read) {
    run.failed('obtain', read.failed, read.message, undefined, 'MC_SUPPLIED_REFUSED');
    return undefined;
  }
  const { bundles, dual } = read.set;
  const { digest } = publishedSet(config, bundles, dual);
  if (digest === run.state.rejectedDigest) {
    run.held(run.state.lastError ?? source.rejected);
    return undefined;
  }
  const expiring = source.expiring?.(run.spec);
  for (const bundle of expiring ? bundles : []) {
    if (renewalTime(bundle.notBefore, bundle.notAfter) <= new Date()) {
      const days = Math.max(0, Math.floor((bundle.notAfter.getTime() - Date.now()) / 86_400_000));
      run.log.warn(
        { step: 'plan', notAfter: bundle.notAfter.toISOString() },
        `supplied certificate expires in ${days} days; ${expiring}`,
      );
    }
  }
  if (run.published?.digest === digest) {
    run.sourceRecovered();
    return undefined;
  }
  if (read.announce) run.log.info({ step: 'validate', ...read.announce.fields }, read.announce.message);
  run.replanned('publish', read.reason);
  return read.set;
}
