import type { X509Certificate } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Algorithm } from '../config/schema.js';
import type { Logger } from '../log.js';
import { spkiOf } from '../pki/identity.js';
import { type Endpoint, endpointText, ProbeError, probe, type Served } from './probe.js';
import { monotonicMs } from '../util/clock.js';
import { poll } from '../util/retry.js';

export const VERIFY_LABEL = 'mailcerts.verify';
export const CERTIFICATES_LABEL = 'mailcerts.certificates';
export { type EndpointSpec, listeningPorts, MAX_ENDPOINTS, parseVerifyLabel } from './verify-label.js';

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

/** What every probe of a verification shares: its options, the time left, and each leaf's key digest (made once). */
interface ProbeContext {
  opts: VerifyOptions;
  expected: Expectation[];
  left: () => number;
  spkiOfLeaf: Map<X509Certificate, string>;
}

/**
 * Probes every endpoint for every expected certificate, retrying with short waits until all match,
 * within the container's time budget; stops at once when the signal aborts.
 */
export async function verifyServed(
  endpoints: Endpoint[],
  expected: Expectation[],
  opts: VerifyOptions,
): Promise<VerifyOutcome> {
  const noTime: VerifyOutcome = {
    ok: false,
    kind: 'unreachable',
    detail: 'no time left to check',
    certs: expected.map((x) => x.cert),
    names: {},
  };
  if (opts.signal?.aborted) return noTime;
  const c: ProbeContext = {
    opts,
    expected,
    left: () => opts.deadline - monotonicMs(),
    spkiOfLeaf: new Map(expected.map((x) => [x.leaf, spkiOf(x.leaf)])),
  };
  const started = monotonicMs();
  const atOnce = pLimit(PROBES_AT_ONCE);
  const pairs = endpoints.flatMap((e) => expected.map((x) => ({ e, x })));
  const r = await poll((attempt) => probeRound(c, pairs, atOnce, attempt), {
    // Served; or unreachable for so long that it is not retried further.
    until: (o) => o.ok || (o.kind === 'unreachable' && monotonicMs() - started >= UNREACHABLE_GIVE_UP_MS),
    attempts: opts.waits.length + 1,
    backoff: opts.waits,
    deadline: opts.deadline,
    atDeadline: 'stop',
    signal: opts.signal,
  });
  return r.value ?? noTime;
}

/** One attempt: every endpoint × name probed at once (a few at a time), the results read in order. */
async function probeRound(
  c: ProbeContext,
  pairs: { e: Endpoint; x: Expectation }[],
  atOnce: LimitFunction,
  attempt: number,
): Promise<VerifyOutcome> {
  const { opts } = c;
  const results = await Promise.all(pairs.map(({ e, x }) => atOnce(() => probeRacing(c, e, x))));
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
  opts.log.info(
    { step: 'verify', container: opts.container, attempt, problems: problems.map((p) => p.text) },
    'not yet serving the published certificate',
  );
  return { ok: false, kind, detail: problems.map((p) => p.text).join('; '), certs, names };
}

/**
 * One endpoint and name, raced by a second connection after SECOND_PROBE_AFTER_MS. The first
 * decides only by succeeding; when it fails, the second's answer is awaited.
 */
async function probeRacing(c: ProbeContext, e: Endpoint, x: Expectation): Promise<Probed> {
  const connections: AbortController[] = [];
  const connection = () => {
    const ac = new AbortController();
    connections.push(ac);
    return probeOnce(c, e, x, c.opts.signal ? AbortSignal.any([c.opts.signal, ac.signal]) : ac.signal);
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
    for (const ac of connections) ac.abort(); // the one still open, if any, is not needed
  }
}

/** One connection to an endpoint, asking for one name: what it served, judged against what is published. */
async function probeOnce(c: ProbeContext, e: Endpoint, x: Expectation, signal: AbortSignal): Promise<Probed> {
  if (signal.aborted || c.left() < MIN_PROBE_MS) {
    // Not probed: not counted as served wrong either.
    return {
      counted: false,
      problem: {
        kind: 'unreachable',
        text: `${endpointText(e)}: not checked (${c.opts.signal?.aborted ? 'shutting down' : 'verification time used up'})`,
      },
    };
  }
  try {
    const served = await probe(e, x.servername, {
      timeoutMs: Math.min(10_000, c.left()),
      signal,
      algorithm: x.algorithm,
    });
    return judge(c, e, x, served);
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
}

/** Whether what an endpoint served is the expected certificate, another one of the set (mismatch), or an old one (stale). */
function judge(c: ProbeContext, e: Endpoint, x: Expectation, served: Served): Probed {
  const same = (leaf: X509Certificate) => served.spki === c.spkiOfLeaf.get(leaf) && served.serial === leaf.serialNumber;
  const asked = `${x.servername ?? 'a client without SNI'}${x.algorithm ? ` offering only ${x.algorithm.toUpperCase()}` : ''}`;
  if (same(x.leaf))
    return {
      ok: `${endpointText(e)} (${x.cert}${x.servername ? `, ${x.servername}` : ', no SNI'}${x.algorithm ? `, ${x.algorithm}` : ''})`,
    };
  const other = c.expected.find((y) => y.cert !== x.cert && same(y.leaf));
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
}
