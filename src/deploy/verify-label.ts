/** The mailcerts.verify label (which endpoints of a container to check), and the ports a container listens on. */
import { DEFAULT_PORTS, PROTOCOLS, type Protocol } from './probe.js';

/** A label may list this many endpoints; more is a mistake or an attempt to hold the pass. */
export const MAX_ENDPOINTS = 16;

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
  const parts = v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length > MAX_ENDPOINTS)
    return { error: `lists ${parts.length} endpoints; at most ${MAX_ENDPOINTS} are checked per container` };
  for (const part of parts) {
    const m = part.match(/^([a-z0-9]+):\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]*)(?::(\d{1,5}))?\/?$/i);
    if (!m)
      return {
        error: `"${part.slice(0, 80)}" is not an endpoint; write it like smtp://:25 or imaps://mail.example.com:993`,
      };
    const protocol = m[1]!.toLowerCase() as Protocol;
    if (!PROTOCOLS.includes(protocol))
      return { error: `"${m[1]}" is not a protocol mailcerts can check; use one of ${PROTOCOLS.join(', ')}` };
    const port = m[3] ? Number(m[3]) : DEFAULT_PORTS[protocol];
    if (port < 1 || port > 65535) return { error: `"${part}" has a bad port` };
    specs.push({ protocol, host: m[2]?.replace(/^\[|\]$/g, '').toLowerCase() || undefined, port });
  }
  if (specs.length === 0) return { error: 'lists no endpoint; write e.g. smtp://:25,imaps://:993, or off' };
  return specs;
}

/** TCP ports in LISTEN state in the container's network namespace (from /proc/net/tcp{,6}). */
export function listeningPorts(procNetTcp: string): Set<number> {
  const ports = new Set<number>();
  for (const line of procNetTcp.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '0A') ports.add(parseInt(cols[1]!.split(':').pop()!, 16)); // 0A = LISTEN
  }
  return ports;
}
