import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateSpec, Config } from '../config/schema.js';
import type { DeployResult, ServedCert } from '../deploy/deployer.js';
import type { Logger } from '../log.js';
import type { DnsProvider } from '../obtain/dns/provider.js';
import { Dns01Solver, removeLeftoverRecords } from '../obtain/solvers/dns01.js';
import { StandaloneHttp01 } from '../obtain/solvers/http01-standalone.js';
import { WebrootHttp01 } from '../obtain/solvers/http01-webroot.js';
import type { ChallengeSolver } from '../obtain/solvers/types.js';
import { recordContainers } from '../state/containers.js';
import { DnsJournal } from '../state/dns-journal.js';
import { recordFailedValidation, validationPause } from '../state/identifiers.js';
import { type Decision, decide, nextAttemptAt, renewalTime } from '../plan/renewal.js';
import { BundleError, checkBundle, digestOf, parseBundle } from '../publish/bundle.js';
import { filesFor, type Published, publishBundle, readPublished, rollbackPublished } from '../publish/publisher.js';
import { type CertState, readCertState, writeCertState } from '../state/cert-state.js';
import { caDirectory, fetchAri } from '../obtain/ari.js';
import { type AriState, ariCertId } from '../plan/ari.js';
import { acquireLock } from '../state/lock.js';
import { raceAbort } from '../util/abort.js';
import { errorMessage, UserError } from '../util/errors.js';

export interface CertOutcome {
  name: string;
  /** ok: a valid certificate is published and deployed; failed: see error. */
  ok: boolean;
  /** For supplied certificates, 'publish' (new files) or 'keep'. */
  decision: Decision['action'] | 'publish';
  reason: string;
  issued: boolean;
  published: boolean;
  error?: string;
  /** When this certificate next needs attention (renewal time or end of backoff). */
  nextAt?: Date;
}

export interface PassResult {
  certs: CertOutcome[];
  reloads: DeployResult[];
  ok: boolean;
}

export interface PassOptions {
  force?: boolean;
  /** Restrict the pass to this certificate name. */
  only?: string;
  signal?: AbortSignal;
}

interface Working {
  /** ARI: the certificate a new order replaces. */
  replaces?: string;
  spec: CertificateSpec;
  state: CertState;
  outcome: CertOutcome;
  published?: Published;
  log: Logger;
}

function earliest(a: Date, b?: Date): Date {
  return b && b < a ? b : a;
}

/** Runs passes over the configured certificates: plan → obtain → publish → deploy. */
export class Engine {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly http01: ChallengeSolver;
  private dnsProviders: Map<string, DnsProvider> | undefined;
  private readonly journal: DnsJournal;
  private firstPass = true;
  /** Passes run one after another within the process (the timer and the custom-certificate watcher). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    this.http01 =
      config.http01.mode === 'webroot'
        ? new WebrootHttp01({ webroot: config.http01.webroot!, log })
        : new StandaloneHttp01({ port: config.http01.port, address: config.http01.address, log });
    this.journal = new DnsJournal(config.stateDir);
  }

  /** The configured DNS providers; their SDKs load only when a pass needs them. */
  private async providers(): Promise<Map<string, DnsProvider>> {
    if (!this.dnsProviders) {
      this.dnsProviders = new Map();
      if (this.config.dns01.cloudflare) {
        const { CloudflareDns } = await import('../obtain/dns/cloudflare/cloudflare.js');
        this.dnsProviders.set('cloudflare', new CloudflareDns({ ...this.config.dns01.cloudflare, log: this.log }));
      }
    }
    return this.dnsProviders;
  }

  /** The ACME side (acme-client) loads on the first order. */
  private async acme() {
    const [{ openAccount }, { orderCertificate }, { configureAcmeHttp }] = await Promise.all([
      import('../obtain/account.js'),
      import('../obtain/order.js'),
      import('../obtain/acme-http.js'),
    ]);
    configureAcmeHttp({ timeoutMs: this.config.acme.timeoutMs, retries: 2, retryAfterCapMs: 30_000 });
    return { openAccount, orderCertificate };
  }

  /** The solver for a certificate: the shared HTTP-01 one, or a DNS-01 one over its provider. */
  async solverFor(spec: CertificateSpec): Promise<ChallengeSolver> {
    if (spec.challenge === 'http-01') return this.http01;
    const provider = (await this.providers()).get(spec.dnsProvider ?? '');
    if (!provider) throw new Error(`certificate "${spec.name}": no credentials for the DNS provider ${spec.dnsProvider}`);
    return new Dns01Solver({ provider, journal: this.journal, resolvers: this.config.dns01.resolvers, propagationTimeoutMs: this.config.dns01.propagationTimeoutMs, log: this.log.child({ cert: spec.name }), cert: spec.name });
  }

  pass(opts: PassOptions = {}): Promise<PassResult> {
    const run = this.queue.then(() => this.runPass(opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when no pass is running or queued. */
  async idle(): Promise<void> {
    await this.queue;
  }

  private async runPass(opts: PassOptions): Promise<PassResult> {
    const specs = this.config.certificates.filter((c) => !opts.only || c.name === opts.only);
    if (specs.length === 0) throw new Error(`no certificate named "${opts.only}"; known: ${this.config.certificates.map((c) => c.name).join(', ')}`);
    const release = await acquireLock(this.config.stateDir);
    try {
      if ((await this.journal.list()).length > 0) await removeLeftoverRecords(await this.providers(), this.journal, this.log);
      const checkAtStart = this.firstPass;
      this.firstPass = false;
      const work: Working[] = [];
      let account: { client: import('acme-client').Client } | undefined;
      let acme: Awaited<ReturnType<Engine['acme']>> | undefined;
      for (const spec of specs) {
        if (spec.source === 'custom') {
          work.push(await this.takeSupplied(spec));
          continue;
        }
        const w = await this.prepare(spec, opts.force ?? false);
        work.push(w);
        const issuing = w.outcome.decision === 'issue';
        if ((!issuing && !(checkAtStart && spec.challenge === 'dns-01')) || opts.signal?.aborted) continue;
        try {
          const solver = await this.solverFor(spec);
          await solver.preflight?.(spec.domains); // before any order: a bad token places none
          if (!issuing) continue;
          const pause = await validationPause(this.config.stateDir, spec.domains);
          if (pause) {
            // Not even --force: the CA counts failed validations per name, and pauses accounts that keep failing.
            const error = `${pause.count} failed validations of ${pause.name} in the last hour; no new order before ${pause.until.toISOString()} (the CA's limit is per name)`;
            Object.assign(w.outcome, { ok: false, decision: 'wait', error, nextAt: pause.until });
            w.log.warn({ step: 'plan', domain: pause.name, until: pause.until.toISOString() }, 'validation limit reached; waiting');
            continue;
          }
          acme ??= await this.acme();
          account ??= await acme.openAccount(this.config, this.log);
          await this.issue(w, solver, account.client, acme.orderCertificate, opts.signal);
        } catch (err) {
          if (opts.signal?.aborted) {
            // A stop is not a failure: no backoff, the next start simply tries again.
            Object.assign(w.outcome, { ok: false, error: 'cancelled: shutting down' });
            w.log.info({ step: 'order' }, 'order abandoned on shutdown');
            continue;
          }
          const failure = err as { step?: string; domain?: string; problem?: { retryAfterMs?: number; type?: string } };
          if (failure.step === 'authorization' && failure.domain && failure.problem?.type) await recordFailedValidation(this.config.stateDir, failure.domain);
          this.fail(w, 'obtain', errorMessage(err), 'issuance failed', failure.problem?.retryAfterMs);
        }
        await writeCertState(this.config.stateDir, spec.name, w.state);
      }
      const reloads = opts.signal?.aborted ? [] : await this.deploy(work);
      const certs = work.map((w) => w.outcome);
      return { certs, reloads, ok: certs.every((c) => c.ok) };
    } finally {
      await release();
    }
  }

  private async prepare(spec: CertificateSpec, force: boolean): Promise<Working> {
    const log = this.log.child({ cert: spec.name });
    const state = await readCertState(this.config.stateDir, spec.name);
    let published: Published | undefined;
    let broken: string | undefined;
    try {
      published = await readPublished(this.config, spec);
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      broken = err.message;
      log.warn({ step: 'plan', error: broken }, 'published certificate is unusable');
    }
    if (spec.source === 'custom') {
      const outcome: CertOutcome = { name: spec.name, ok: !broken, decision: 'keep', reason: `supplied in ${spec.customDir}`, issued: false, published: false, error: broken };
      return { spec, state, outcome, published, log };
    }
    const ari = published && !broken ? await this.renewalInfo(spec, published, state, log) : undefined;
    const decision = decide({ spec, published: published?.bundle, broken, state, now: new Date(), force, ari, profile: this.config.acme.profile });
    log.info({ step: 'plan', decision: decision.action, reason: decision.reason }, `plan: ${decision.action}`);
    const outcome: CertOutcome = {
      name: spec.name,
      ok: decision.action === 'keep',
      decision: decision.action,
      reason: decision.reason,
      issued: false,
      published: false,
      error: decision.action === 'wait' ? state.lastError : undefined,
      nextAt: decision.action === 'keep' ? earliest(decision.renewAt, ari && new Date(ari.nextCheckAt)) : decision.action === 'wait' ? decision.until : undefined,
    };
    return { spec, state, outcome, published, log, replaces: ari?.certId };
  }

  /** The CA's renewal window for the published certificate, fetched when due; undefined without ARI. */
  private async renewalInfo(spec: CertificateSpec, published: Published, state: CertState, log: Logger): Promise<AriState | undefined> {
    const certPem = published.bundle.certificates[0]!;
    let id: string;
    try {
      id = ariCertId(certPem);
    } catch {
      return undefined; // no AKI: not a certificate the CA can be asked about
    }
    const known = state.ari?.certId === id ? state.ari : undefined;
    if (known && new Date(known.nextCheckAt) > new Date()) return known;
    try {
      state.ari = await fetchAri({ directoryUrl: this.config.acme.directoryUrl, certPem, previous: known, timeoutMs: this.config.acme.timeoutMs, log });
    } catch (err) {
      log.warn({ step: 'ari', error: errorMessage(err) }, 'could not ask the CA for the renewal window; using the last one or the lifetime rule');
      if (known) state.ari = { ...known, nextCheckAt: new Date(Date.now() + 3_600_000).toISOString() };
    }
    await writeCertState(this.config.stateDir, spec.name, state);
    return state.ari;
  }

  /** Refuses a profile the CA does not offer, when it lists them (RFC 8555 meta.profiles). */
  private async checkProfile(profile: string, log: Logger): Promise<void> {
    const meta = (await caDirectory(this.config.acme.directoryUrl, this.config.acme.timeoutMs).catch(() => ({}) as Record<string, unknown>)).meta as { profiles?: Record<string, string> } | undefined;
    if (!meta?.profiles) {
      log.warn({ step: 'order', profile }, 'the CA lists no profiles; sending ACME_PROFILE anyway');
      return;
    }
    if (!(profile in meta.profiles)) throw new UserError(`ACME_PROFILE=${profile} is not offered by this CA; it offers ${Object.keys(meta.profiles).join(', ')}`);
  }

  /** A supplied certificate: read, check and publish the files the user dropped, exactly as an issued one. */
  private async takeSupplied(spec: CertificateSpec): Promise<Working> {
    const w = await this.prepare(spec, false);
    const { log } = w;
    const dir = spec.customDir!;
    Object.assign(w.outcome, { decision: 'keep', reason: `supplied in ${dir}`, nextAt: undefined });
    const read = (f: string) => readFile(join(dir, f), 'utf8').catch(() => undefined);
    const [fullchain, key] = [await read('fullchain.pem'), await read('privkey.pem')];
    const refuse = async (error: string) => {
      Object.assign(w.outcome, { ok: false, error });
      Object.assign(w.state, { lastError: error, lastAttemptAt: new Date().toISOString() });
      log.error({ step: 'validate', error }, 'supplied certificate refused');
      await writeCertState(this.config.stateDir, spec.name, w.state);
    };
    if (fullchain === undefined || key === undefined) {
      if (!w.published) await refuse(`no certificate yet: drop fullchain.pem and privkey.pem into ${dir}`);
      return w;
    }
    let bundle;
    try {
      bundle = parseBundle(fullchain, key, `the supplied certificate in ${dir}`);
      checkBundle(bundle, spec.domains, new Date(), `the supplied certificate in ${dir}`);
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      await refuse(`${err.message}; nothing was published`);
      return w;
    }
    const bits = /^rsa-(\d+)$/.exec(bundle.keyType)?.[1];
    if (bits && Number(bits) < 2048) log.warn({ step: 'validate', keyType: bundle.keyType }, 'weak key: most TLS libraries refuse RSA keys under 2048 bits; mailcerts verifies after the reload and rolls back if the servers refuse it');
    const digest = digestOf(filesFor(this.config, bundle));
    if (digest === w.state.rejectedDigest) {
      Object.assign(w.outcome, { ok: false, error: w.state.lastError ?? 'these files were rolled back; replace them' });
      return w;
    }
    if (renewalTime(bundle.notBefore, bundle.notAfter) <= new Date()) {
      log.warn({ step: 'plan', notAfter: bundle.notAfter.toISOString() }, `supplied certificate expires in ${Math.max(0, Math.floor((bundle.notAfter.getTime() - Date.now()) / 86_400_000))} days; nothing renews it: replace the files in ${dir}`);
    }
    if (w.published?.digest === digest) return w;
    const { changed, ...published } = await publishBundle(this.config, spec, bundle);
    log.info({ step: 'publish', changed, serial: bundle.serial, source: dir }, 'published the supplied certificate');
    Object.assign(w.outcome, { decision: 'publish', published: changed, ok: true, error: undefined });
    w.published = published;
    Object.assign(w.state, { lastError: undefined, failures: 0, failedStep: undefined, rejectedDigest: undefined, lastSuccessAt: new Date().toISOString() });
    await writeCertState(this.config.stateDir, spec.name, w.state);
    return w;
  }

  private async issue(
    w: Working,
    solver: ChallengeSolver,
    client: import('acme-client').Client,
    orderCertificate: typeof import('../obtain/order.js').orderCertificate,
    signal?: AbortSignal,
  ): Promise<void> {
    const { spec, log } = w;
    w.state.lastAttemptAt = new Date().toISOString();
    const { profile, preferredChain, reuseKey } = this.config.acme;
    if (profile) await this.checkProfile(profile, log);
    const keep = reuseKey && w.published?.bundle.keyType === spec.keyType ? w.published.bundle.privateKey : undefined;
    if (keep) log.info({ step: 'order', keyType: spec.keyType }, 'reusing the published private key (ACME_REUSE_KEY)');
    const issued = await raceAbort(
      orderCertificate({ client, spec, solver, log, signal, replaces: w.replaces, profile, preferredChain, privateKey: keep }),
      signal,
      `certificate "${spec.name}": order`,
    );
    w.outcome.issued = true;
    const bundle = parseBundle(issued.fullchain, issued.privateKey, `the new certificate "${spec.name}"`);
    checkBundle(bundle, spec.domains, new Date(), `the new certificate "${spec.name}"`);
    log.info({ step: 'validate', serial: bundle.serial, notAfter: bundle.notAfter.toISOString() }, 'new certificate checked');
    // From here on, no cancellation: a publish always completes.
    const { changed, ...published } = await publishBundle(this.config, spec, bundle);
    w.outcome.published = changed;
    log.info({ step: 'publish', changed, serial: bundle.serial }, changed ? 'published' : 'identical files already published');
    w.published = published;
    this.clearFailure(w);
    w.state.lastSuccessAt = new Date().toISOString();
    w.state.profile = profile;
    w.outcome.nextAt = renewalTime(bundle.notBefore, bundle.notAfter);
  }

  private clearFailure(w: Working): void {
    Object.assign(w.state, { failures: 0, lastError: undefined, failedStep: undefined, nextAttemptAt: undefined });
    Object.assign(w.outcome, { ok: true, error: undefined });
  }

  private fail(w: Working, step: 'obtain' | 'deploy' | 'verify', error: string, msg: string, retryAfterMs?: number): void {
    w.state.failures += 1;
    w.state.failedStep = step;
    w.state.lastError = error;
    const next = nextAttemptAt(w.state.failures, new Date(), retryAfterMs);
    w.state.nextAttemptAt = next.toISOString();
    w.outcome.ok = false;
    w.outcome.error = error;
    w.outcome.nextAt = next;
    w.log.error({ step: 'report', error, failures: w.state.failures, nextAttemptAt: w.state.nextAttemptAt }, msg);
  }

  /** Makes sure every certificate is also in its other directories, then reloads when a published set is not yet deployed. */
  private async deploy(work: Working[]): Promise<DeployResult[]> {
    const pending: Working[] = [];
    for (const w of work) {
      if (!w.published) continue;
      if (!w.outcome.published && w.outcome.decision !== 'issue') {
        const { changed } = await publishBundle(this.config, w.spec, w.published.bundle); // fills a missing copy (e.g. the top of CERTS_DIR)
        if (changed) w.log.info({ step: 'publish' }, 'restored a missing published copy');
      }
      if (w.state.deployedDigest !== w.published.digest) pending.push(w);
    }
    if (pending.length === 0) return [];
    if (!this.config.dockerReload) {
      this.log.info({ step: 'reload' }, 'DOCKER_RELOAD=false: not reloading any container');
      for (const w of pending) await this.markDeployed(w);
      return [];
    }
    let results = await this.reloadAndVerify(work);
    const broken = results.filter((r) => r.broken);
    if (broken.length > 0) results = await this.rollBack(work, pending, broken);
    await recordContainers(this.config.stateDir, results);
    const failed = results.filter((r) => !r.ok);
    for (const w of pending) {
      if (w.state.failedStep === 'verify' && w.outcome.error) continue; // rolled back: already reported
      if (failed.length === 0) {
        await this.markDeployed(w);
      } else {
        this.fail(w, 'deploy', failed.map((r) => `container ${r.container}: ${r.error}`).join('; '), 'deployment failed');
        await writeCertState(this.config.stateDir, w.spec.name, w.state);
      }
    }
    return results;
  }

  /** What the containers should serve: every published certificate in configuration order, even in a pass over one. */
  private async servedCerts(work: Working[]): Promise<ServedCert[]> {
    const served: ServedCert[] = [];
    for (const spec of this.config.certificates) {
      const w = work.find((x) => x.spec.name === spec.name);
      const published = w ? w.published : await readPublished(this.config, spec).catch(() => undefined);
      if (published) served.push({ name: spec.name, servername: spec.domains[0]!.replace(/^\*\./, ''), leaf: published.bundle.leaf });
    }
    return served;
  }

  private async reloadAndVerify(work: Working[]): Promise<DeployResult[]> {
    const served = await this.servedCerts(work);
    try {
      const [{ connectDocker, pingDocker }, { deployAll }] = await Promise.all([import('../deploy/docker.js'), import('../deploy/deployer.js')]);
      const docker = connectDocker();
      await pingDocker(docker);
      return await deployAll(docker, served, this.log);
    } catch (err) {
      return [{ container: '(docker)', ok: false, error: errorMessage(err) }];
    }
  }

  /** The new certificates break TLS: restore the previous versions, reload again, check the old ones are served. */
  private async rollBack(work: Working[], pending: Working[], broken: DeployResult[]): Promise<DeployResult[]> {
    const why = broken.map((r) => `container ${r.container}: ${r.error}`).join('; ');
    const rolled: { w: Working; from: Published }[] = [];
    for (const w of pending) {
      if (!w.outcome.published) continue; // only what this pass published
      const from = w.published!;
      const previous = await rollbackPublished(this.config, w.spec);
      if (!previous) {
        w.log.error({ step: 'rollback' }, 'no previous version to roll back to');
        continue;
      }
      w.log.warn({ step: 'rollback', from: from.bundle.serial, to: previous.bundle.serial }, 'rolled back to the previous certificate');
      w.published = previous;
      if (w.spec.source === 'custom') w.state.rejectedDigest = from.digest;
      rolled.push({ w, from });
    }
    if (rolled.length === 0) return broken;
    const again = await this.reloadAndVerify(work);
    const restored = again.every((r) => r.ok);
    for (const { w, from } of rolled) {
      this.fail(w, 'verify', `serial ${from.bundle.serial} was rolled back to ${w.published!.bundle.serial} because ${why}${restored ? '; the previous certificate is served again' : `; after the rollback: ${again.filter((r) => !r.ok).map((r) => `container ${r.container}: ${r.error}`).join('; ')}`}`, 'new certificate rolled back');
      if (restored) w.state.deployedDigest = w.published!.digest;
      await writeCertState(this.config.stateDir, w.spec.name, w.state);
    }
    return again;
  }

  private async markDeployed(w: Working): Promise<void> {
    const { bundle, digest } = w.published!;
    w.state.deployedDigest = digest;
    if (w.state.failedStep === 'deploy') {
      this.clearFailure(w);
      w.outcome.nextAt = renewalTime(bundle.notBefore, bundle.notAfter);
    }
    await writeCertState(this.config.stateDir, w.spec.name, w.state);
    w.log.info({ step: 'deploy', serial: bundle.serial }, 'deployed');
  }
}
