import type { CertificateSpec, Config, VariantSpec } from '../config/schema.js';
import type { Logger } from '../log.js';
import { DnsJournal } from '../state/dns-journal.js';
import type { AriState } from '../state/cert-state.js';
import { UserError } from '../util/errors.js';
import { caDirectory, fetchAri } from './ari.js';
import type { DnsProvider } from '../dns/provider.js';
import { DnsProviders } from '../dns/providers/index.js';
import { StandaloneHttp01 } from './solvers/http01-standalone.js';
import { WebrootHttp01 } from './solvers/http01-webroot.js';
import type { ChallengeSolver } from './solvers/types.js';

export interface IssueRequest {
  spec: VariantSpec;
  /** ARI id of the certificate this one replaces. */
  replaces?: string;
  /** A private key to keep (ACME_REUSE_KEY); a new one is made otherwise. */
  privateKey?: string;
  signal?: AbortSignal;
}

export interface Issued {
  privateKey: string;
  fullchain: string;
  /** The ACME profile it was ordered with. */
  profile?: string;
}

/** Where certificates come from: the engine asks for one and gets PEM back; how is this side's business. */
export interface Issuer {
  /** Checks, before any order, that this certificate can be obtained (a DNS token and its zones); says what it verified. */
  preflight(spec: CertificateSpec): Promise<string | undefined>;
  issue(req: IssueRequest): Promise<Issued>;
  /** The CA's renewal window (ARI), undefined when it offers none; throws when it could not be asked. */
  renewalInfo(certPem: string, previous: AriState | undefined, log: Logger): Promise<AriState | undefined>;
  /** Removes challenge records that a killed run left at a DNS provider. */
  sweepLeftovers(): Promise<void>;
}

/**
 * What the engine needs to know about a failed order without loading acme-client to test
 * `instanceof AcmeError` (it is loaded only when an order is placed): the names whose validation
 * failed, and how long the CA asked to wait.
 */
export function failureFacts(err: unknown): { failedValidations: string[]; retryAfterMs?: number } {
  const e = err as { name?: string; failedValidations?: unknown; problem?: { retryAfterMs?: number } };
  if (e?.name !== 'AcmeError') return { failedValidations: [] };
  const names = Array.isArray(e.failedValidations)
    ? e.failedValidations.filter((n): n is string => typeof n === 'string')
    : [];
  return { failedValidations: names, retryAfterMs: e.problem?.retryAfterMs };
}

/** Certificates from an RFC 8555 CA, through acme-client's manual order flow. */
export class AcmeIssuer implements Issuer {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly http01: ChallengeSolver;
  private readonly journal: DnsJournal;
  private readonly dns: DnsProviders;
  private account: Promise<{ client: import('acme-client').Client }> | undefined;

  constructor(config: Config, log: Logger, dns?: DnsProviders) {
    this.config = config;
    this.log = log;
    this.http01 =
      config.http01.mode === 'webroot'
        ? new WebrootHttp01({ webroot: config.http01.webroot!, log })
        : new StandaloneHttp01({ port: config.http01.port, address: config.http01.address, log });
    this.journal = new DnsJournal(config.stateDir, log);
    this.dns = dns ?? new DnsProviders(config.dns.providers, log);
  }

  /** The configured DNS providers; their SDKs load only when needed. */
  private async providers(): Promise<Map<string, DnsProvider>> {
    return this.dns.all();
  }

  /** The solver for a certificate: the shared HTTP-01 one, or a DNS-01 one over its provider. */
  private async solverFor(spec: CertificateSpec): Promise<ChallengeSolver> {
    if (spec.challenge === 'http-01') return this.http01;
    const provider = await this.dns.get(spec.dnsProvider ?? '');
    if (!provider)
      throw new UserError(`certificate "${spec.name}": no credentials for the DNS provider ${spec.dnsProvider}`);
    const { resolvers, propagationTimeoutMs } = this.config.dns;
    // DNS-01 and its resolver load only for a certificate that uses it.
    const { Dns01Solver } = await import('./solvers/dns01.js');
    return new Dns01Solver({
      provider,
      journal: this.journal,
      resolvers,
      propagationTimeoutMs,
      log: this.log.child({ cert: spec.name }),
      cert: spec.name,
    });
  }

  async preflight(spec: CertificateSpec): Promise<string | undefined> {
    return (await this.solverFor(spec)).preflight?.(spec.domains);
  }

  async sweepLeftovers(): Promise<void> {
    const entries = await this.journal.leftovers();
    if (entries.length > 0)
      await (await import('./solvers/dns01.js')).removeLeftoverRecords(await this.providers(), this.journal, this.log);
  }

  /** acme-client and the order flow load on the first order; its HTTP settings are process-wide. */
  private async acme() {
    const [{ openAccount }, { orderCertificate }, { configureAcmeHttp }] = await Promise.all([
      import('./account.js'),
      import('./order.js'),
      import('./acme-http.js'),
    ]);
    configureAcmeHttp({ timeoutMs: this.config.acme.timeoutMs, retries: 2, retryAfterCapMs: 30_000 });
    return { openAccount, orderCertificate };
  }

  async issue(req: IssueRequest): Promise<Issued> {
    const { spec, signal } = req;
    const log = this.log.child({ cert: spec.name });
    const solver = await this.solverFor(spec);
    const { openAccount, orderCertificate } = await this.acme();
    this.account ??= openAccount(this.config, this.log);
    this.account.catch(() => (this.account = undefined)); // a failed account call is retried next time
    const { client } = await this.account;
    const { profile, preferredChain } = this.config.acme;
    if (profile) await this.checkProfile(profile, log);
    const issued = await orderCertificate({
      client,
      spec,
      solver,
      log,
      signal,
      replaces: req.replaces,
      profile,
      preferredChain,
      privateKey: req.privateKey,
    });
    return { ...issued, profile };
  }

  async renewalInfo(certPem: string, previous: AriState | undefined, log: Logger): Promise<AriState | undefined> {
    return fetchAri({
      directoryUrl: this.config.acme.directoryUrl,
      certPem,
      previous,
      timeoutMs: this.config.acme.timeoutMs,
      log,
    });
  }

  /** Refuses a profile the CA does not offer, when it lists them (RFC 8555 meta.profiles). */
  private async checkProfile(profile: string, log: Logger): Promise<void> {
    const meta = (
      await caDirectory(this.config.acme.directoryUrl, this.config.acme.timeoutMs).catch(
        () => ({}) as Record<string, unknown>,
      )
    ).meta as { profiles?: Record<string, string> } | undefined;
    if (!meta?.profiles) {
      log.warn({ step: 'order', profile }, 'the CA lists no profiles; sending ACME_PROFILE anyway');
      return;
    }
    if (!(profile in meta.profiles))
      throw new UserError(
        `ACME_PROFILE=${profile} is not offered by this CA; it offers ${Object.keys(meta.profiles).join(', ')}`,
      );
  }
}
