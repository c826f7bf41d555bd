import type { X509Certificate } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { sleep } from '../util/abort.js';
import { DEFAULT_PORTS, type Endpoint, endpointText, PROTOCOLS, type Protocol, ProbeError, probe, spkiOf } from './probe.js';

export const VERIFY_LABEL = 'mailcerts.verify';
export const ESCALATE_LABEL = 'mailcerts.escalate';
export const CERTIFICATES_LABEL = 'mailcerts.certificates';

export interface EndpointSpec {
  protocol: Protocol;
  /** Empty: the container's own address (127.0.0.1 with host networking). */
  host?: string;
  port: number;
}

/** Parses mailcerts.verify: "off", or a comma list such as "smtp://:25,submissions://:465,imaps://mail:993". */
export function parseVerifyLabel(value: string): EndpointSpec[] | 'off' | { error: string } {
  const v = value.trim();
  if (v === 'off') return 'off';
  const specs: EndpointSpec[] = [];
  for (const part of v.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = part.match(/^([a-z0-9]+):\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]*)(?::(\d{1,5}))?\/?$/i);
    if (!m) return { error: `"${part}" is not an endpoint; write it like smtp://:25 or imaps://mail.example.com:993` };
    const protocol = m[1]!.toLowerCase() as Protocol;
    if (!PROTOCOLS.includes(protocol)) return { error: `"${m[1]}" is not a protocol mailcerts can check; use one of ${PROTOCOLS.join(', ')}` };
    const port = m[3] ? Number(m[3]) : DEFAULT_PORTS[protocol];
    if (port < 1 || port > 65535) return { error: `"${part}" has a bad port` };
    specs.push({ protocol, host: m[2]?.replace(/^\[|\]$/g, '') || undefined, port });
  }
  if (specs.length === 0) return { error: 'lists no endpoint; write e.g. smtp://:25,imaps://:993, or off' };
  return specs;
}

export const PRESET_ENDPOINTS: Record<string, EndpointSpec[]> = {
  postfix: [{ protocol: 'smtp', port: 25 }, { protocol: 'submissions', port: 465 }, { protocol: 'submission', port: 587 }],
  dovecot: [{ protocol: 'imaps', port: 993 }, { protocol: 'pop3s', port: 995 }, { protocol: 'imap', port: 143 }, { protocol: 'pop3', port: 110 }, { protocol: 'sieve', port: 4190 }],
};

/** TCP ports in LISTEN state inside the container (from /proc/net/tcp{,6}); undefined when it cannot be read. */
export function listeningPorts(procNetTcp: string): Set<number> {
  const ports = new Set<number>();
  for (const line of procNetTcp.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '0A') ports.add(parseInt(cols[1]!.split(':').pop()!, 16)); // 0A = LISTEN
  }
  return ports;
}

/** The container's own address: 127.0.0.1 with host networking, else its first network address. */
export async function containerAddress(docker: Docker, id: string): Promise<string | undefined> {
  const info = await docker.getContainer(id).inspect();
  if (info.HostConfig.NetworkMode === 'host') return '127.0.0.1';
  for (const net of Object.values(info.NetworkSettings.Networks ?? {})) {
    if (net.IPAddress) return net.IPAddress;
    if (net.GlobalIPv6Address) return net.GlobalIPv6Address;
  }
  return undefined;
}

/** What a container should serve, per certificate. */
export interface Expectation {
  cert: string;
  servername: string;
  leaf: X509Certificate;
}

export type VerifyOutcome =
  | { ok: true; checked: string[] }
  /** stale: an older certificate is served; broken: the TLS dialogue or handshake fails. */
  | { ok: false; kind: 'stale' | 'broken'; detail: string };

export const QUICK_RETRIES = [250, 500, 1_000, 2_000, 3_000];
export const AFTER_RESTART_RETRIES = [500, 1_000, 2_000, 3_000, 4_000, 5_000, 5_000];

/** Probes every endpoint for every expected certificate, retrying with short waits until all match. */
export async function verifyServed(endpoints: Endpoint[], expected: Expectation[], opts: { waits: number[]; log: Logger; container: string }): Promise<VerifyOutcome> {
  let last: VerifyOutcome = { ok: true, checked: [] };
  for (let attempt = 0; attempt <= opts.waits.length; attempt++) {
    if (attempt > 0) await sleep(opts.waits[attempt - 1]!);
    const problems: { kind: 'stale' | 'broken'; text: string }[] = [];
    const checked: string[] = [];
    for (const e of endpoints) {
      for (const x of expected) {
        try {
          const served = await probe(e, x.servername);
          if (served.spki === spkiOf(x.leaf) && served.serial === x.leaf.serialNumber) {
            checked.push(`${endpointText(e)} (${x.cert})`);
          } else {
            problems.push({ kind: 'stale', text: `${endpointText(e)} serves serial ${served.serial} (SHA-256 ${served.fingerprint256}) instead of ${x.leaf.serialNumber} for ${x.servername}` });
          }
        } catch (err) {
          problems.push({ kind: err instanceof ProbeError && err.stage === 'connect' ? 'stale' : 'broken', text: (err as Error).message });
        }
      }
    }
    if (problems.length === 0) {
      opts.log.info({ step: 'verify', container: opts.container, endpoints: checked }, 'serves the published certificate');
      return { ok: true, checked };
    }
    last = { ok: false, kind: problems.some((p) => p.kind === 'broken') ? 'broken' : 'stale', detail: problems.map((p) => p.text).join('; ') };
    opts.log.info({ step: 'verify', container: opts.container, attempt: attempt + 1, problems: problems.map((p) => p.text) }, 'not yet serving the published certificate');
  }
  return last;
}
