import type { CertificateSpec } from '../../../config/schema.js';
import type { Bundle } from '../../../pki/bundle.js';
import { errorMessage } from '../../../util/errors.js';
import type { ReadContext, SuppliedRead } from '../source.js';
import { pickTraefikEntry, readAcmeJsonStable, traefikEntries } from './acme-json.js';

/** Why an entry's chain is not trusted (TRAEFIK_VERIFY_CHAIN), or undefined; pki/trust.ts loads only then. */
async function distrustOf(verifyChain: boolean): Promise<((b: Bundle) => Promise<string | undefined>) | undefined> {
  if (!verifyChain) return undefined;
  const { untrustedChain } = await import('../../../pki/trust.js');
  return async (b: Bundle) => {
    const why = await untrustedChain(b);
    return why && `${why} (trust a private ACME CA's root with NODE_EXTRA_CA_CERTS, or set TRAEFIK_VERIFY_CHAIN=false)`;
  };
}

/**
 * A certificate taken from Traefik's acme.json: the entry that covers the names, is valid, chains
 * to a trusted root (unless TRAEFIK_VERIFY_CHAIN=false) and expires last, checked as an issued
 * one. A file that cannot be read, has no such entry, or only broken ones is a failure: the
 * current certificate stays.
 */
export async function readFromTraefik(spec: CertificateSpec, ctx: ReadContext): Promise<SuppliedRead> {
  const { log, signal } = ctx;
  const { file, resolver, verifyChain } = spec.traefik!;
  // A file anyone could have written is refused when read; an entry must also come from a CA.
  const distrust = await distrustOf(verifyChain);
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
    // Counted as a failure: it shows in status and, when it lasts, in an alert.
    return { failed: errorMessage(err).slice(0, 2000), message: "no usable certificate in Traefik's acme.json" };
  }
  for (const s of picked.skipped)
    log.warn({ step: 'validate', skipped: s }, "an entry of Traefik's acme.json was not used");
  const bundle = picked.entry.bundle!;
  return {
    set: { bundles: [bundle], dual: false },
    reason: `from Traefik's acme.json (resolver ${picked.entry.resolver})`,
    announce: {
      message: "certificate from Traefik's acme.json checked",
      fields: { serial: bundle.serial, notAfter: bundle.notAfter.toISOString(), resolver: picked.entry.resolver },
    },
  };
}
