import type { X509Certificate } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { discoverTargets, execIn, type ReloadResult, type ReloadTarget, RELOAD_LABEL, reloadTarget, restartContainer } from './docker.js';
import type { Endpoint } from './probe.js';
import {
  AFTER_RESTART_RETRIES, CERTIFICATES_LABEL, containerAddress, ESCALATE_LABEL, type Expectation, listeningPorts, parseVerifyLabel,
  PRESET_ENDPOINTS, QUICK_RETRIES, VERIFY_LABEL, verifyServed,
} from './verify.js';

/** A published certificate as the containers should serve it. */
export interface ServedCert {
  name: string;
  servername: string;
  leaf: X509Certificate;
}

export interface DeployResult extends ReloadResult {
  /** The reload itself went through (validation passed, the command or signal succeeded). */
  reloaded?: boolean;
  /** The TLS handshake or dialogue fails with the published certificate: a reason to roll back. */
  broken?: boolean;
  /** Its endpoints were checked and serve the published certificate. */
  verified?: boolean;
}

/** The endpoints to check on a container, or a reason there are none. */
async function endpointsOf(docker: Docker, t: ReloadTarget): Promise<Endpoint[] | string> {
  const label = t.labels[VERIFY_LABEL];
  const parsed = label !== undefined ? parseVerifyLabel(label) : undefined;
  if (parsed === 'off') return `${VERIFY_LABEL}=off`;
  if (parsed && 'error' in parsed) throw new Error(`label ${VERIFY_LABEL}: ${parsed.error}`);
  let specs = parsed;
  if (!specs) {
    const preset = 'error' in t.action ? undefined : PRESET_ENDPOINTS[t.action.kind];
    if (!preset) return `no ${VERIFY_LABEL} label (only the postfix and dovecot presets have default endpoints)`;
    const proc = await execIn(docker, t.id, ['cat', '/proc/net/tcp', '/proc/net/tcp6']).catch(() => undefined);
    const listening = proc?.exitCode === 0 ? listeningPorts(proc.output) : undefined;
    specs = listening ? preset.filter((p) => listening.has(p.port)) : preset;
    if (specs.length === 0) return `it listens on none of the default ports ${preset.map((p) => p.port).join(', ')}; set ${VERIFY_LABEL}`;
  }
  const needsAddress = specs.some((s) => !s.host);
  const address = needsAddress ? await containerAddress(docker, t.id) : undefined;
  if (needsAddress && !address) return `it has no network address to reach; give the endpoints a host in ${VERIFY_LABEL}, or set ${VERIFY_LABEL}=off`;
  return specs.map((s) => ({ protocol: s.protocol, port: s.port, host: s.host ?? address! }));
}

function expectationsFor(t: ReloadTarget, certs: ServedCert[]): Expectation[] {
  const wanted = t.labels[CERTIFICATES_LABEL]?.split(',').map((c) => c.trim()).filter(Boolean);
  const chosen = wanted ? certs.filter((c) => wanted.includes(c.name)) : certs.slice(0, 1);
  return chosen.map((c) => ({ cert: c.name, servername: c.servername, leaf: c.leaf }));
}

/** Checks what a reloaded container serves; restarts it once when it still serves an old certificate. */
async function verifyTarget(docker: Docker, t: ReloadTarget, certs: ServedCert[], log: Logger): Promise<DeployResult> {
  const endpoints = await endpointsOf(docker, t);
  if (typeof endpoints === 'string') {
    log.info({ step: 'verify', container: t.name, reason: endpoints }, 'not verified');
    return { container: t.name, ok: true, verified: false };
  }
  const expected = expectationsFor(t, certs);
  let outcome = await verifyServed(endpoints, expected, { waits: QUICK_RETRIES, log, container: t.name });
  let escalated = false;
  if (!outcome.ok && outcome.kind === 'stale' && (t.labels[ESCALATE_LABEL] ?? 'restart') === 'restart') {
    log.warn({ step: 'verify', container: t.name, problem: outcome.detail }, 'still serving an old certificate after reload: restarting the container');
    await restartContainer(docker, t);
    escalated = true;
    outcome = await verifyServed(endpoints, expected, { waits: AFTER_RESTART_RETRIES, log, container: t.name });
  }
  if (outcome.ok) return { container: t.name, ok: true, verified: true };
  const after = escalated ? 'after reload and restart' : 'after reload';
  const what = outcome.kind === 'stale' ? `still serves an old certificate ${after}` : `TLS fails with the published certificate ${after}`;
  return { container: t.name, ok: false, broken: outcome.kind === 'broken', error: `${what}: ${outcome.detail}` };
}

/** Reloads every labelled container and verifies what it serves; one failure does not stop the others. */
export async function deployAll(docker: Docker, certs: ServedCert[], log: Logger): Promise<DeployResult[]> {
  const targets = await discoverTargets(docker);
  if (targets.length === 0) log.warn({ step: 'reload' }, `no running container carries the label ${RELOAD_LABEL}; nothing to reload`);
  const results: DeployResult[] = [];
  for (const t of targets) {
    let r: DeployResult = await reloadTarget(docker, t, log);
    if (r.ok) {
      log.info({ step: 'reload', container: r.container }, 'container reloaded');
      r = await verifyTarget(docker, t, certs, log).catch((err: unknown) => ({ container: t.name, ok: false, error: `verification failed: ${errorMessage(err)}` }));
      r.reloaded = true;
    }
    if (!r.ok) log.error({ step: r.broken ? 'verify' : 'reload', container: r.container, error: r.error }, r.broken ? 'TLS broken with the published certificate' : 'container not deployed');
    results.push(r);
  }
  return results;
}
