import type { X509Certificate } from 'node:crypto';
import pLimit from 'p-limit';
import type { Algorithm } from '../config/schema.js';
import type { Logger } from '../log.js';
import { spkiOf } from '../pki/identity.js';
import { sleep } from '../util/abort.js';
import { DEFAULT_PORTS, type Endpoint, endpointText, PROTOCOLS, type Protocol, ProbeError, probe } from './probe.js';
import { monotonicMs } from '../util/clock.js';

export const VERIFY_LABEL = 'mailcerts.verify';
export const CERTIFICATES_LABEL = 'mailcerts.certificates';
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

/** TCP ports in LISTEN state inside the container (from /proc/net/tcp{,6}). */
export function listeningPorts(procNetTcp: string): Set<number> {
  const ports = new Set<number>();
  for (const line of procNetTcp.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '0A') ports.add(parseInt(cols[1]!.split(':').pop()!, 16)); // 0A = LISTEN
  }
  return ports;
}

/**
 * What a container should serve: this certificate, to a client asking for `servername` by SNI
 * (undefined: no SNI). `name` is how it is reported: the configured name (a wildcard as
 * configured, though it is probed with a label made up under it), or '(no SNI)'.
 */
export interface Expectation {
  cert: string;
  name: string;
  servername: string | undefined;
  leaf: X509Certificate;
  /** A dual certificate's variant: probed offering only this algorithm's signatures. */
  algorithm?: Algorithm;
}

export const NO_SNI = '(no SNI)';

/**
 * stale: an older certificate is served (a restart may help); mismatch: another current
 * certificate of the set is served for the name (the server's SNI setup is wrong: neither a restart
 * nor a rollback helps); broken: the TLS dialogue or handshake fails (the new certificate is to
 * blame: roll back); unreachable: no TCP connection completed (never the certificate's fault).
 */
export type ProblemKind = 'stale' | 'mismatch' | 'broken' | 'unreachable';

/**
 * On failure, `certs` names the certificates whose probes showed the worst problem: what it is
 * blamed on. `names` says, per name probed, whether every endpoint served the right certificate.
 */
export type VerifyOutcome =
  | { ok: true; checked: string[]; names: Record<string, boolean> }
  | { ok: false; kind: ProblemKind; detail: string; certs: string[]; names: Record<string, boolean> };

/** Probes of one container in flight at once (each may add a second connection): a handshake costs the server a process or a thread. */
export const PROBES_AT_ONCE = 8;
/** A reload takes effect within tens of milliseconds; the first look again comes soon after. */
export const QUICK_RETRIES = [100, 200, 400, 800, 1_600, 3_000];
export const AFTER_RESTART_RETRIES = [500, 1_000, 2_000, 3_000, 4_000, 5_000, 5_000];
const SEVERITY: Record<ProblemKind, number> = { unreachable: 0, mismatch: 1, stale: 2, broken: 3 };
/**
 * A probe with no answer by then is raced by a second connection to the same endpoint. Just after a
 * reload an old idle process may take the first one (Postfix's smtpd does): it answers with the old
 * certificate, and late (about 1 s, reconnecting to its TLS manager). Whichever connection shows the
 * published certificate first decides, the other is dropped; both must fail for a problem.
 */
export const SECOND_PROBE_AFTER_MS = 250;
/** Endpoints that stay unreachable this long are not retried further: each try may cost a connect timeout. */
export const UNREACHABLE_GIVE_UP_MS = 15_000;
/** A probe is not started with less time left than this: a timeout near the deadline proves nothing. */
const MIN_PROBE_MS = 2_000;
/** Whose fault a probe failure is, by how far the dialogue got. */
const KIND_OF_STAGE = {
  connect: 'unreachable',
  greeting: 'unreachable',
  protocol: 'broken',
  handshake: 'broken',
} as const;

export interface VerifyOptions {
  waits: number[];
  log: Logger;
  container: string;
  /** monotonicMs() by which verification of this container must be over. */
  deadline: number;
  signal?: AbortSignal;
}

/** One probe's result: what it checked, or its problem (counted: a probe was made, so its name is wrong). */
type Probed = { ok: string } | { problem: { kind: ProblemKind; text: string }; counted: boolean };

/**
 * Probes every endpoint for every expected certificate, retrying with short waits until all match,
 * within the container's time budget; stops at once when the signal aborts.
 */
export async function verifyServed(
  endpoints: Endpoint[],
  expected: Expectation[],
  opts: VerifyOptions,
): Promise<VerifyOutcome> {
  const atOnce = pLimit(PROBES_AT_ONCE);
  let last: VerifyOutcome = {
    ok: false,
    kind: 'unreachable',
    detail: 'no time left to check',
    certs: expected.map((x) => x.cert),
    names: {},
  };
  const left = () => opts.deadline - monotonicMs();
  const started = monotonicMs();
  // Each certificate's key digest, once: every probe of every attempt compares against it.
  const spkiOfLeaf = new Map(expected.map((x) => [x.leaf, spkiOf(x.leaf)]));
  const probeOnce = async (e: Endpoint, x: Expectation, signal: AbortSignal): Promise<Probed> => {
    if (signal.aborted || left() < MIN_PROBE_MS) {
      // Not probed: not counted as served wrong either.
      return {
        counted: false,
        problem: {
          kind: 'unreachable',
          text: `${endpointText(e)}: not checked (${opts.signal?.aborted ? 'shutting down' : 'verification time used up'})`,
        },
      };
    }
    try {
      const served = await probe(e, x.servername, {
        timeoutMs: Math.min(10_000, left()),
        signal,
        algorithm: x.algorithm,
      });
      const same = (leaf: X509Certificate) =>
        served.spki === spkiOfLeaf.get(leaf) && served.serial === leaf.serialNumber;
      const asked = `${x.servername ?? 'a client without SNI'}${x.algorithm ? ` offering only ${x.algorithm.toUpperCase()}` : ''}`;
      if (same(x.leaf))
        return {
          ok: `${endpointText(e)} (${x.cert}${x.servername ? `, ${x.servername}` : ', no SNI'}${x.algorithm ? `, ${x.algorithm}` : ''})`,
        };
      const other = expected.find((y) => y.cert !== x.cert && same(y.leaf));
      return {
        counted: true,
        problem: other
          ? {
              kind: 'mismatch',
              text: `${endpointText(e)} serves certificate ${other.cert} (serial ${served.serial}, SHA-256 ${served.fingerprint256}) instead of ${x.cert} (serial ${x.leaf.serialNumber}) for ${asked}: its SNI setup does not pick the certificate by name`,
            }
          : {
              kind: 'stale',
              text: `${endpointText(e)} serves serial ${served.serial} (SHA-256 ${served.fingerprint256}) instead of ${x.leaf.serialNumber} for ${asked}`,
            },
      };
    } catch (err) {
      const stage = err instanceof ProbeError ? err.stage : 'protocol';
      return {
        counted: true,
        problem: {
          kind: KIND_OF_STAGE[stage],
          text: `${(err as Error).message}${x.servername ? ` (SNI ${x.servername}` : ' (no SNI'}${x.algorithm ? `, only ${x.algorithm.toUpperCase()} offered)` : ')'}`,
        },
      };
    }
  };
  const probeOne = async (e: Endpoint, x: Expectation): Promise<Probed> => {
    const connections: AbortController[] = [];
    const connection = () => {
      const c = new AbortController();
      connections.push(c);
      return probeOnce(e, x, opts.signal ? AbortSignal.any([opts.signal, c.signal]) : c.signal);
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const one = connection();
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, SECOND_PROBE_AFTER_MS, 'late')));
      const early = await Promise.race([one, late]);
      if (early !== 'late') return early;
      const two = connection();
      let first: Probed | undefined;
      void one.then((r) => (first = r));
      // The first decides only by succeeding; when it fails, the second's answer is awaited.
      const r2 = await Promise.race([one.then((r) => ('ok' in r ? r : two)), two]);
      if ('ok' in r2) return r2;
      // The second connection failed. A first one still open is not waited for: after a reload an
      // old Postfix smtpd can hold it for a second while it retries its own tlsmgr, and the next
      // attempt connects again anyway. When both failed, the worse answer is reported (a broken
      // handshake outweighs an old process's old certificate); a connection never made does not count.
      const r1 = first as Exclude<Probed, { ok: string }> | undefined;
      return r1 && !(SEVERITY[r2.problem.kind] > SEVERITY[r1.problem.kind] && r2.counted) ? r1 : r2;
    } finally {
      clearTimeout(timer);
      for (const c of connections) c.abort(); // the one still open, if any, is not needed
    }
  };
  const pairs = endpoints.flatMap((e) => expected.map((x) => ({ e, x })));
  for (let attempt = 0; attempt <= opts.waits.length; attempt++) {
    if (attempt > 0 && !(await sleep(Math.min(opts.waits[attempt - 1]!, Math.max(0, left())), opts.signal))) break;
    if (left() <= 0 || opts.signal?.aborted) break;
    // Every endpoint × name is probed at once (a few at a time); the results are read in order.
    const results = await Promise.all(pairs.map(({ e, x }) => atOnce(() => probeOne(e, x))));
    const problems: { kind: ProblemKind; text: string; cert: string }[] = [];
    const checked: string[] = [];
    const names: Record<string, boolean> = {};
    pairs.forEach(({ x }, i) => {
      const r = results[i]!;
      if ('ok' in r) {
        names[x.name] ??= true;
        checked.push(r.ok);
        return;
      }
      problems.push({ ...r.problem, cert: x.cert });
      if (r.counted) names[x.name] = false;
    });
    if (problems.length === 0) {
      opts.log.info(
        { step: 'verify', container: opts.container, endpoints: checked },
        'serves the published certificate',
      );
      return { ok: true, checked, names };
    }
    const kind = problems.reduce<ProblemKind>((k, p) => (SEVERITY[p.kind] > SEVERITY[k] ? p.kind : k), 'unreachable');
    const certs = [...new Set(problems.filter((p) => p.kind === kind).map((p) => p.cert))];
    last = { ok: false, kind, detail: problems.map((p) => p.text).join('; '), certs, names };
    opts.log.info(
      { step: 'verify', container: opts.container, attempt: attempt + 1, problems: problems.map((p) => p.text) },
      'not yet serving the published certificate',
    );
    if (kind === 'unreachable' && monotonicMs() - started >= UNREACHABLE_GIVE_UP_MS) break;
  }
  return last;
}
