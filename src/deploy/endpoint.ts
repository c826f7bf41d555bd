// Where a mail server is probed (protocol, host, port), and how a probe fails: shared by the probe
// (probe.ts) and the plaintext dialogue before STARTTLS (starttls.ts).

export const PROTOCOLS = [
  'smtp',
  'submission',
  'submissions',
  'smtps',
  'imap',
  'imaps',
  'pop3',
  'pop3s',
  'sieve',
] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const DEFAULT_PORTS: Record<Protocol, number> = {
  smtp: 25,
  submission: 587,
  submissions: 465,
  smtps: 465,
  imap: 143,
  imaps: 993,
  pop3: 110,
  pop3s: 995,
  sieve: 4190,
};
/** The protocols whose port speaks TLS from the first byte. */
export const IMPLICIT_TLS = new Set<Protocol>(['submissions', 'smtps', 'imaps', 'pop3s']);

export interface Endpoint {
  protocol: Protocol;
  host: string;
  port: number;
}

export function endpointText(e: Endpoint): string {
  return `${e.protocol}://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

/**
 * Where a probe failed, which says whose fault it is:
 *   connect    the TCP connection did not complete (refused, unreachable, no answer);
 *   greeting   no usable greeting (a 421 from postscreen or a rate limit, a server still starting,
 *              a greeting that never came): neither is the certificate's fault;
 *   protocol   the dialogue that leads to TLS failed (STARTTLS not offered or refused: what a
 *              server does when it cannot load its certificate);
 *   handshake  TLS itself failed.
 */
export type ProbeStage = 'connect' | 'greeting' | 'protocol' | 'handshake';

export class ProbeError extends Error {
  override name = 'ProbeError';
  readonly stage: ProbeStage;
  constructor(stage: ProbeStage, message: string) {
    super(message.trim().replace(/\s*\n\s*/g, ' '));
    this.stage = stage;
  }
}
