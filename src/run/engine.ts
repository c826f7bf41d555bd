import type { Config } from '../config/schema.js';
import type { DeployResult, Deployer } from '../deploy/deployer.js';
import type { Logger } from '../log.js';
import type { Issuer } from '../obtain/issuer.js';
import pLimit from 'p-limit';
import { type CertificateSpec, variantsOf } from '../config/schema.js';
import { DnsProviders } from '../dns/providers/index.js';
import { ordersByDns01 } from '../obtain/sources/index.js';
import { acquireLock, type PassLock } from '../state/lock.js';
import { errorMessage } from '../util/errors.js';
import { type CertOutcome, CertRun } from './cert-run.js';
import { obtainAndPublish } from './obtain-step.js';
import { planCertificate } from './plan-step.js';
import { rollOut } from './rollout.js';

export type { CertOutcome } from './cert-run.js';

export interface PassResult {
  certs: CertOutcome[];
  reloads: DeployResult[];
  ok: boolean;
  /** The alert round after this pass, which runs beside the next one: when an alert that could not be sent is tried again. */
  alerted?: Promise<Date | undefined>;
  /** Why nothing was done: another mailcerts holds the lease (DEPLOY_MODE=swarm). */
  passive?: string;
}

export interface PassOptions {
  force?: boolean;
  /** Restrict the pass to this certificate name. */
  only?: string;
  /** With force: force only the variant of this key type (the others renew only when due). */
  forceKeyType?: string;
  signal?: AbortSignal;
  /** How long to wait for another mailcerts' pass (same STATE_DIR) to finish. */
  lockWaitMs?: number;
}

/** What the engine works with; the defaults talk to the CA and Docker, tests hand in their own. */
export interface Components {
  issuer: Issuer;
  deployer: Deployer;
  /** The DNS providers (for DANE's records); made from the configuration when not given. */
  dns?: DnsProviders;
}

/**
 * Runs passes over the configured certificates: plan → obtain → publish → deploy. It owns only
 * the order of the stages and the lock; each stage lives in its own file.
 */
export class Engine {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly components: Components;
  private readonly dns: DnsProviders;
  private alerting: Promise<void> = Promise.resolve();
  /** Preflight DNS credentials on the first pass, even for certificates that are not due. */
  private firstPass = true;
  /** Passes run one after another within the process (the timer and the custom-certificate watcher). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(config: Config, log: Logger, components: Components) {
    this.config = config;
    this.log = log;
    this.components = components;
    this.dns = components.dns ?? new DnsProviders(config.dns.providers, log);
  }

  pass(opts: PassOptions = {}): Promise<PassResult> {
    const run = this.queue.then(() => this.runPass(opts));
    this.queue = run.catch(() => undefined);
    // Alerts after the pass, outside the queue and not awaited: a slow alert target holds neither
    // this pass's result nor the next pass. One round of alerts at a time, in order.
    const alerted = Promise.all([run, this.alerting]).then(() => this.alert(opts.signal));
    this.alerting = alerted.then(
      () => undefined,
      () => undefined,
    );
    return run.then((result) => ({ ...result, alerted }));
  }

  /**
   * After the pass, with the lock released: who must hear of what is wrong now (or fixed). Never
   * fails the pass; a channel that cannot be reached is retried with backoff.
   */
  private async alert(signal?: AbortSignal): Promise<Date | undefined> {
    const { email, webhook } = this.config.alerts;
    if ((!email && !webhook) || signal?.aborted) return undefined;
    try {
      const [{ collectStatus }, { notify }] = await Promise.all([
        import('../report/status.js'),
        import('../alerts/notify.js'),
      ]);
      return (await notify(this.config, await collectStatus(this.config), this.log, new Date(), { signal })).nextTryAt;
    } catch (err) {
      this.log.warn({ step: 'alert', error: errorMessage(err) }, 'could not work out or send the alerts');
      return undefined;
    }
  }

  /** Resolves when no pass is running or queued, and no alert round. */
  async idle(): Promise<void> {
    await this.queue;
    await this.alerting;
  }

  /** Plan → (preflight) → obtain → publish for one certificate; what happened is on its variants' CertRuns. */
  private async obtainOne(
    spec: CertificateSpec,
    o: { force: boolean; forceKeyType?: string; preflightAll: boolean; lock: PassLock; signal?: AbortSignal },
  ): Promise<CertRun[]> {
    const { config, log, components } = this;
    const runs = await planCertificate(
      { config, issuer: components.issuer, log, force: o.force, forceKeyType: o.forceKeyType },
      spec,
    ).catch((err: unknown) =>
      variantsOf(spec).map((v) => {
        // Never saved (nothing is dirty): its state on disk, whatever it is, stays as it was.
        const failed = new CertRun({
          spec: v,
          state: { failures: 0 },
          stateKey: spec.name,
          stateDir: config.stateDir,
          log: log.child({ cert: spec.name }),
        });
        failed.held(errorMessage(err));
        failed.log.error({ step: 'plan', error: errorMessage(err) }, 'cannot plan this certificate');
        return failed;
      }),
    );
    if (o.signal?.aborted) return runs;
    const obtaining = runs.filter((r) => r.decision === 'issue' && r.ok);
    if (ordersByDns01(spec) && (obtaining.length > 0 || o.preflightAll)) {
      const problem = await components.issuer.preflight(spec).then(
        () => undefined,
        (err: unknown) => errorMessage(err),
      );
      if (problem && obtaining.length > 0) {
        for (const run of obtaining) run.failed('obtain', problem, 'issuance failed', undefined, 'MC_DNS_PROVIDER'); // before any order: a bad token places none
      }
      // A certificate that is not due is not failed by a credential check: it is only reported.
      else if (problem)
        runs[0]!.log.warn(
          { step: 'preflight', error: problem },
          'the DNS provider check failed; this certificate is not due, so nothing is ordered now',
        );
    }
    if (runs.some((r) => r.ok && (r.decision === 'issue' || r.decision === 'republish')))
      components.deployer.prepare?.();
    // Also when nothing is due: a changed list of key types republishes the set without an order.
    if (runs.some((r) => !r.ok && r.decision === 'keep')) return runs; // cannot plan: nothing is touched
    if (spec.dane) await (await import('./dane-step.js')).prepareDane(runs, { config, dns: this.dns, log });
    await obtainAndPublish(runs, { config, issuer: components.issuer, lock: o.lock, signal: o.signal });
    return runs;
  }

  private async runPass(opts: PassOptions): Promise<PassResult> {
    const { config, log, components } = this;
    const specs = config.certificates.filter((c) => !opts.only || c.name === opts.only);
    if (specs.length === 0)
      throw new Error(
        `no certificate named "${opts.only}"; known: ${config.certificates.map((c) => c.name).join(', ')}`,
      );
    const passive = await this.notLeading(opts.signal);
    if (passive) return passive;
    const lock = await acquireLock(config.stateDir, { waitMs: opts.lockWaitMs ?? 120_000, log, signal: opts.signal });
    const runs: CertRun[] = [];
    try {
      await components.issuer
        .sweepLeftovers()
        .catch((err: unknown) =>
          log.warn(
            { step: 'dns-01', error: errorMessage(err) },
            'could not remove the records left by an earlier run; will retry at the next pass',
          ),
        );
      await this.obtainAll(specs, opts, lock, runs);
      const reloads = opts.signal?.aborted
        ? []
        : await rollOut(runs, { config, deployer: components.deployer, lock, log, signal: opts.signal });
      await this.finishDane(specs, runs, opts.signal);
      const certs = runs.map((r) => r.outcome());
      return { certs, reloads, ok: certs.every((c) => c.ok) };
    } finally {
      await this.saveAll(runs, lock);
      await lock.release();
    }
  }

  /** DEPLOY_MODE=swarm: the pass's result when another mailcerts holds the lease (or who does is not known). */
  private async notLeading(signal?: AbortSignal): Promise<PassResult | undefined> {
    const { deployer } = this.components;
    if (!deployer.lead) return undefined;
    const lead = await deployer
      .lead(signal)
      .catch((err: unknown) => ({ leader: false as const, why: errorMessage(err), failed: true }));
    if (lead.leader) return undefined;
    // Not knowing who issues is a failure (nothing is done); another holder is not.
    if ('failed' in lead)
      this.log.error(
        { step: 'lease', error: lead.why },
        'cannot tell whether another mailcerts holds the lease; nothing was done',
      );
    else
      this.log.info(
        { step: 'lease', why: lead.why },
        'passive: another mailcerts issues and deploys; checking again at the next pass',
      );
    return { certs: [], reloads: [], ok: !('failed' in lead), passive: lead.why };
  }

  /**
   * Certificates are planned, obtained and published ACME_CONCURRENCY at a time, each on its own:
   * one certificate's broken state, files or failed order never stops the others. The reload
   * waits for all of them, so the containers reload once per pass. Their runs go into `runs`
   * even when one throws, so that what happened is saved.
   */
  private async obtainAll(specs: CertificateSpec[], opts: PassOptions, lock: PassLock, runs: CertRun[]): Promise<void> {
    const preflightAll = this.firstPass;
    this.firstPass = false;
    const atOnce = pLimit(this.config.acme.concurrency);
    // All settle before anything goes on: the lock is never released under a running publish.
    const settled = await Promise.allSettled(
      specs.map((spec) =>
        atOnce(() =>
          this.obtainOne(spec, {
            force: opts.force ?? false,
            forceKeyType: opts.forceKeyType,
            preflightAll,
            lock,
            signal: opts.signal,
          }),
        ),
      ),
    );
    for (const s of settled) if (s.status === 'fulfilled') runs.push(...s.value);
    const thrown = settled.find((s) => s.status === 'rejected');
    if (thrown) throw thrown.reason;
  }

  /** After the rollout: each DANE certificate's records follow what is served; a failure is retried next pass. */
  private async finishDane(specs: CertificateSpec[], runs: CertRun[], signal?: AbortSignal): Promise<void> {
    const { config, log } = this;
    for (const spec of specs.filter((s) => s.dane)) {
      if (signal?.aborted) break;
      const { finishDane } = await import('./dane-finish.js');
      await finishDane(
        runs.filter((r) => r.name === spec.name),
        { config, dns: this.dns, log, signal },
      ).catch((err: unknown) =>
        log.warn(
          { step: 'dane', cert: spec.name, error: errorMessage(err) },
          'DANE: the records could not be brought in step; retried at the next pass',
        ),
      );
    }
  }

  /** Written only while the lock is ours: a holder that lost it must not overwrite its successor's state. */
  private async saveAll(runs: CertRun[], lock: PassLock): Promise<void> {
    const owned = await lock.check('writing the state').then(
      () => true,
      (err: unknown) => {
        this.log.error({ step: 'state', error: errorMessage(err) }, 'state not written');
        return false;
      },
    );
    if (!owned) return;
    for (const run of runs)
      await run
        .save()
        .catch((err: unknown) =>
          run.log.error({ step: 'state', error: errorMessage(err) }, 'could not write the state'),
        );
  }
}
