import type { X509Certificate } from 'node:crypto';
import type { Algorithm } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ShippedFile } from '../publish/shipped.js';
import { covers, dnsNamesOf } from '../pki/bundle.js';
import type { Endpoint } from './probe.js';
import { probeAddress, type Reach } from './scope.js';
import { defaultEndpoints, KINDS_WITH_ENDPOINTS } from './kinds/index.js';
import type { ReloadTarget } from './targets.js';
import {
  CERTIFICATES_LABEL,
  type EndpointSpec,
  type Expectation,
  NO_SNI,
  parseVerifyLabel,
  VERIFY_LABEL,
  type VerifyOutcome,
} from './verify.js';

/**
 * What every deploy mode shares (deploy/modes/<name>/): what the containers should serve, the
 * result of a deploy, and how a container's endpoints and expectations are found from its labels.
 */
/** A configured certificate as the containers should serve it; no leaf when nothing is published for it. */
export interface ServedCert {
  name: string;
  /** Its names, each probed by SNI. */
  domains: string[];
  /** The first variant's leaf (what a client that does not choose gets). */
  leaf?: X509Certificate;
  /** A dual certificate: each variant, probed offering only its algorithm. */
  variants?: { algorithm: Algorithm; leaf: X509Certificate }[];
  /** Its published files, for a deployer that ships them itself (DEPLOY_MODE=swarm only). */
  files?: ShippedFile[];
}

/** Why a container is not deployed: each kind leads to a different reaction upstream. */
export type DeployProblem =
  /** TLS fails with the published certificate: roll back the certificates it serves. */
  | 'broken'
  /** It still serves an older certificate after reload (and restart). */
  | 'stale'
  /** It serves another certificate of the set for a name: its SNI setup is wrong. */
  | 'mismatch'
  /** Its endpoints could not be reached: never the certificate's fault. */
  | 'unreachable'
  /** Validation or reload failed, or the Docker API did. */
  | 'reload'
  /** Its labels ask for something mailcerts will not do. */
  | 'label';

export interface DeployResult {
  container: string;
  /** The certificates this container is expected to serve. */
  certs: string[];
  /** Those its problem is blamed on (default: all of `certs`): a handshake that fails for one name only blames that one. */
  blame?: string[];
  ok: boolean;
  /** The reload itself went through (validation passed, the command or signal succeeded). */
  reloaded: boolean;
  /** true: verified to serve the published certificate; false: it does not; null: not checked. */
  serves: boolean | null;
  /** Reloaded, but what it serves could not be checked, and why: reported, never a silent ok. */
  unverified?: string;
  /** Per name probed by SNI ('(no SNI)' for the default): served correctly on every endpoint. */
  names?: Record<string, boolean>;
  problem?: DeployProblem;
  /** Why it was not deployed, with the container's own output where there is some. */
  error?: string;
}

export interface DeployReport {
  results: DeployResult[];
  /** The results cover every container in scope (discovery worked). */
  complete: boolean;
}

/** Where published certificates go after a publish: reloaded, verified. The engine knows no more. */
export interface Deployer {
  /** The published files travel with the deploy (Swarm secrets and configs): `files` and `sni` are handed over. */
  readonly shipsFiles?: boolean;
  /** Each pass, even one that published nothing, gives back what a target lost (deploy with `repairOnly`). */
  readonly repairs?: boolean;
  /**
   * `sni`: the published SNI files, for a deployer that ships files itself. `repairOnly`: nothing new
   * was published; only targets that lost what they had (Swarm: a docker stack deploy reset a
   * service's secrets) are deployed to, and only they are reported.
   */
  deploy(certs: ServedCert[], signal?: AbortSignal, sni?: ShippedFile[], repairOnly?: boolean): Promise<DeployReport>;
  /**
   * Whether this mailcerts may issue and deploy now (Swarm: it holds the lease); a deployer without
   * the notion always may.
   */
  lead?(signal?: AbortSignal): Promise<{ leader: true } | { leader: false; why: string }>;
  /**
   * A certificate is being obtained: load what a deploy needs now, so that the moments between
   * its publish and the reload are not spent loading code. Never fails.
   */
  prepare?(): void;
}

/** How long verification of one container may take in all, restart included. */
export const VERIFY_BUDGET_MS = 120_000;

/**
 * The endpoints to check on a container (or a Swarm task), a reason to skip it, or a problem with
 * its labels: those of mailcerts.verify, else the preset's default ports it listens on. A host
 * named in the label must be one of its own addresses, or allowed by VERIFY_HOSTS.
 */
export async function endpointsFor(
  t: ReloadTarget,
  how: { verifyHosts: string[] | '*'; reach: () => Reach; listening: () => Promise<Set<number> | undefined> },
): Promise<ContainerEndpoints> {
  const label = t.labels[VERIFY_LABEL];
  const parsed = label !== undefined ? parseVerifyLabel(label) : undefined;
  if (parsed === 'off') return { skip: `${VERIFY_LABEL}=off` };
  if (parsed && 'error' in parsed) return { problem: 'label', error: `label ${VERIFY_LABEL}: ${parsed.error}` };
  let specs: readonly EndpointSpec[] | undefined = parsed;
  if (!specs) {
    const preset = defaultEndpoints(t.action);
    if (!preset)
      return { skip: `no ${VERIFY_LABEL} label (only the ${KINDS_WITH_ENDPOINTS} presets have default endpoints)` };
    const listening = await how.listening();
    specs = listening ? preset.filter((p) => listening.has(p.port)) : preset;
    if (specs.length === 0)
      return {
        skip: `it listens on none of the default ports ${preset.map((p) => p.port).join(', ')}; set ${VERIFY_LABEL}`,
      };
  }
  const list: Endpoint[] = [];
  let own: string | undefined;
  for (const s of specs) {
    if (s.host) {
      const to = await probeAddress(s.host, t, how.verifyHosts);
      if ('problem' in to) return { problem: 'label', error: to.problem };
      list.push({ protocol: s.protocol, port: s.port, host: to.address });
      continue;
    }
    if (own === undefined) {
      const reach = how.reach();
      if ('unreachable' in reach)
        return { problem: 'unreachable', error: `unreachable, so not verified: ${reach.unreachable}` };
      if ('none' in reach) return { skip: reach.none };
      own = reach.host;
    }
    list.push({ protocol: s.protocol, port: s.port, host: own });
  }
  return { list };
}

/** A verification's outcome as a container's result; `after`: what was done to it before. */
export function resultOf(
  base: { container: string; certs: string[]; reloaded: boolean },
  outcome: VerifyOutcome,
  after: string,
): DeployResult {
  if (outcome.ok) return { ...base, ok: true, serves: true, names: outcome.names };
  const what = {
    stale: `still serves an old certificate ${after}`,
    mismatch: `serves another of the certificates for a name ${after}`,
    broken: `TLS fails with the published certificate ${after}`,
    unreachable: `unreachable ${after}, so not verified (not the certificate's fault)`,
  }[outcome.kind];
  return {
    ...base,
    blame: outcome.certs,
    ok: false,
    serves: outcome.kind === 'unreachable' ? null : false,
    names: outcome.names,
    problem: outcome.kind,
    error: `${what}: ${outcome.detail}`,
  };
}

/** Why a container serving only certificates with nothing published yet is not checked. */
export const NOTHING_TO_CHECK = 'none of its certificates is published yet, so there is nothing to check';

/**
 * A reloaded container whose verification was skipped: still deployed (its reload worked), but
 * reported as "could not verify" with the reason; logged as a warning unless the admin turned it off.
 */
export function unverifiedResult(
  base: { container: string; certs: string[]; reloaded: boolean },
  reason: string,
  log: Logger,
): DeployResult {
  const fields = { step: 'verify', container: base.container, reason };
  if (reason === `${VERIFY_LABEL}=off`) log.info(fields, 'could not verify');
  else log.warn(fields, 'could not verify');
  return { ...base, ok: true, serves: null, unverified: reason };
}

/** The endpoints to check on a container, a reason to skip it, or a problem with its labels. */
export type ContainerEndpoints =
  | { list: Endpoint[] }
  | { skip: string }
  | { problem: 'label' | 'unreachable'; error: string };

/** A certificate a container should serve; its leaf is missing when nothing is published for it. */
export type Wanted = Omit<Expectation, 'leaf'> & { leaf?: X509Certificate };

/** The name a wildcard is probed with: a label made up under it, as a client would ask. */
const PROBE_LABEL = 'mailcerts-probe';

/**
 * What a container must serve: for each of its certificates (its mailcerts.certificates, `*` for
 * all, or the first configured one), that certificate under each of its names by SNI; and, when it
 * serves the first certificate (the one at the top of CERTS_DIR), that one to a client that sends
 * no SNI. Chosen from the configured list, never from what happens to be published, so that a
 * first certificate with broken files does not make the second one "the default".
 */
export function expectationsFor(t: Pick<ReloadTarget, 'labels'>, certs: ServedCert[]): Wanted[] {
  const label = t.labels[CERTIFICATES_LABEL]
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  const chosen = label?.includes('*') ? certs : label ? certs.filter((c) => label.includes(c.name)) : certs.slice(0, 1);
  // Only the names the published certificate covers: a name added to the configuration whose
  // reissue failed is not in the SNI files either, and must not be probed for.
  const covered = (c: ServedCert) => (c.leaf ? c.domains.filter((d) => covers(dnsNamesOf(c.leaf!), d)) : c.domains);
  // A dual certificate is expected once per variant: a client offering only ECDSA (or only RSA)
  // signatures must get that variant's leaf.
  const asServed = (c: ServedCert) => c.variants ?? [{ algorithm: undefined, leaf: c.leaf }];
  const byName = chosen.flatMap((c) =>
    covered(c).flatMap((d) =>
      asServed(c).map((v) => ({
        cert: c.name,
        name: d,
        servername: d.startsWith('*.') ? `${PROBE_LABEL}.${d.slice(2)}` : d,
        leaf: v.leaf,
        algorithm: v.algorithm,
      })),
    ),
  );
  const first = certs[0];
  const noSni =
    first && chosen.includes(first)
      ? asServed(first).map((v) => ({
          cert: first.name,
          name: NO_SNI,
          servername: undefined,
          leaf: v.leaf,
          algorithm: v.algorithm,
        }))
      : [];
  return [...byName, ...noSni];
}
