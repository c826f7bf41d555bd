import type { SourceDefinition } from '../../config/parts.js';
import type { CertificateSpec, Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Bundle } from '../../pki/bundle.js';

/**
 * Everything mailcerts knows of one certificate source, in its own folder: what the configuration
 * reads (SourceDefinition: its variables, per-certificate settings and checks), and its answer
 * to "what is the current certificate for this spec, and is a new one needed". Adding a source is
 * one folder and one line in sources/index.ts. Each source's index.ts imports only zod, node:,
 * util/, config/fields.ts and types; the code that reads a certificate loads only when a pass needs it.
 *
 * There are two families. An ordered source (acme) has no `supplied`: mailcerts makes the key and
 * orders one certificate per key type, decides when to renew (plan/renewal.ts, ARI), and may keep
 * the key (ACME_REUSE_KEY, DANE). A supplied source takes a finished set from elsewhere (a folder,
 * Traefik's acme.json): it is one run for the whole set, published when it differs from what is
 * published, and never taken again once rolled back until it changes.
 */
export interface CertificateSource extends SourceDefinition {
  /** How status and logs say where its certificates come from. */
  describe(spec: CertificateSpec): string;
  /** Present for a supplied source. */
  supplied?: SuppliedSource;
}

/** What a supplied source brings, and how the rest of a pass speaks of it. */
export interface SuppliedSource {
  /** Reads the current set; never publishes, never records anything (the pass does, from the answer). */
  read(spec: CertificateSpec, ctx: ReadContext): Promise<SuppliedRead>;
  /** For status: what renews it (given the set now published). */
  renewal(spec: CertificateSpec, current?: Bundle): string;
  /** A certificate past its renewal time: what the warning tells the operator; absent: something renews it. */
  expiring?(spec: CertificateSpec): string;
  /** Why a set that was rolled back is not taken again, until the source changes. */
  rejected: string;
  /** Why DANE cannot use it: "supplied (CUSTOM_CERTS_DIR)". */
  takenAs: string;
  /** The log line of a publish, and where the set came from (the log's `source` field). */
  published: string;
  origin(spec: CertificateSpec): string | undefined;
  /** What the daemon watches to run a pass when the source changes. */
  watch(spec: CertificateSpec): Watched | undefined;
}

export interface ReadContext {
  config: Config;
  log: Logger;
  signal?: AbortSignal;
}

export type SuppliedRead =
  /** The set to publish when it differs from what is published; `announce`: logged when it is. */
  | {
      set: { bundles: Bundle[]; dual: boolean };
      reason: string;
      announce?: { message: string; fields: Record<string, unknown> };
    }
  /** Files that cannot be taken: nothing is published, the error is kept (not counted as a failure). */
  | { refused: string }
  /** Nothing there yet: refused only while nothing is published. */
  | { missing: string }
  /** The source could not be read at all: a failure, counted (status, alerts); `message` is the log's. */
  | { failed: string; message: string };

/**
 * A folder whose files are dropped there (settled before they are read), or one file rewritten in
 * place; `what` names it in the log ("Traefik's acme.json").
 */
export type Watched = { dir: string; files: readonly string[] } | { file: string; what: string };
