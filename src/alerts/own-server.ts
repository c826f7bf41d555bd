/**
 * The stack's own Postfix as the alert SMTP server. It is known by name: the name its certificate
 * is checked against (ALERT_SMTP's ?servername=, its host, or the first certificate's first name
 * for an address or a container name) is a name of a certificate mailcerts publishes. When that
 * certificate has expired, which is when the alert matters most, its chain no longer verifies; so
 * the leaves mailcerts published for that name are pinned by SPKI SHA-256 and accepted besides a
 * verified chain. Any other certificate that does not verify is still refused.
 */
import type { Config } from '../config/schema.js';
import { spkiOf } from '../pki/identity.js';
import { covers } from '../pki/bundle.js';
import { readPublished } from '../publish/publisher.js';

/** The SPKI SHA-256 (hex) of the published leaves that cover the SMTP server's name; none when it is another server. */
export async function publishedPins(config: Config): Promise<string[]> {
  const name = config.alerts.email?.servername.toLowerCase();
  if (!name) return [];
  const pins = new Set<string>();
  for (const spec of config.certificates) {
    if (
      !covers(
        spec.domains.map((d) => d.toLowerCase()),
        name,
      )
    )
      continue;
    // Parsed in full (the key matches the leaf): only what mailcerts itself holds is pinned. Broken files pin nothing.
    const published = await readPublished(config, spec).catch(() => undefined);
    for (const b of published?.bundles ?? []) if (covers(b.names, name)) pins.add(spkiOf(b.leaf));
  }
  return [...pins];
}
