import type { VariantSpec } from '../config/schema.js';
import type { Logger } from '../log.js';
import { isSupplied } from '../obtain/sources/index.js';
import { type Decision, nextAttemptAt, renewalTime } from '../plan/renewal.js';
import type { Bundle } from '../pki/bundle.js';
import { bundleFor, type Published } from '../publish/publisher.js';
import { type CertState, dropPending, keepPending, writeCertState } from '../state/cert-state.js';

/** What a pass did with one certificate, as `run --once`, the daemon and the logs report it. */
export interface CertOutcome {
  name: string;
  /** The variant's key type, for a certificate with several. */
  keyType?: string;
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

export type FailedStep = NonNullable<CertState['failedStep']>;

/**
 * One variant of a certificate (one key type) in one pass: the only code that changes its
 * CertState. A certificate's variants are planned and ordered each on its own, and published
 * together: `published` is the certificate's whole set. Stages call the event
 * methods (planned, issued, published, failed, deployed, rolledBack); the outcome is computed from
 * what happened, never read back by a stage to decide something.
 */
export class CertRun {
  readonly spec: VariantSpec;
  readonly log: Logger;
  readonly state: CertState;
  /** Where its state is kept under STATE_DIR/certificates/. */
  readonly stateKey: string;
  private readonly stateDir: string;
  /** A supplied certificate: one run for the whole set its source brings (obtain/sources/). */
  private readonly wholeSet: boolean;
  decision: Decision['action'] | 'publish' = 'keep';
  reason = '';
  /** What is published now (after this pass's publish or rollback). */
  published?: Published;
  /** A certificate issued but not yet deployed, kept in STATE_DIR. */
  pending?: Bundle;
  /** What this pass brought for this variant (issued, kept or supplied), to be published with the set. */
  toPublish?: Bundle;
  /** ARI: the certificate a new order replaces. */
  replaces?: string;
  /** DANE: the private key this variant's order must use (current, next in a rollover, or a new one while no TLSA record exists). */
  daneKey?: string;
  /** DANE: this pass orders with the next key. */
  daneRollover = false;
  /** This pass obtained a new certificate from the CA. */
  issuedNow = false;
  /** This pass changed the published files. */
  publishedNow = false;
  private error?: string;
  private nextAt?: Date;
  private dirty = false;

  constructor(opts: {
    spec: VariantSpec;
    state: CertState;
    stateKey: string;
    stateDir: string;
    log: Logger;
    published?: Published;
  }) {
    this.spec = opts.spec;
    this.state = opts.state;
    this.stateDir = opts.stateDir;
    this.stateKey = opts.stateKey;
    this.log = opts.log;
    this.published = opts.published;
    this.wholeSet = isSupplied(opts.spec);
  }

  get name(): string {
    return this.spec.name;
  }

  /** This variant's bundle in the published set. */
  get bundle(): Bundle | undefined {
    return this.bundleIn(this.published);
  }

  /** This variant's bundle in a set (the first, for a supplied set). */
  bundleIn(published: Published | undefined): Bundle | undefined {
    return this.wholeSet ? published?.bundle : bundleFor(published, this.spec);
  }

  /** The plan for this pass; `error` carries over a failure still being backed off. */
  planned(decision: Decision['action'] | 'publish', reason: string, nextAt?: Date, error?: string): void {
    this.decision = decision;
    this.reason = reason;
    this.nextAt = nextAt;
    this.error = error;
  }

  /** Something in this pass stops the certificate without recording a failure (a validation pause, a stop). */
  held(error: string, nextAt?: Date): void {
    this.error = error;
    if (nextAt) this.nextAt = nextAt;
  }

  /** Stopped by SIGTERM: not a failure, and nothing of the abandoned attempt is recorded. */
  cancelled(): void {
    this.error = 'cancelled: shutting down';
    if (!this.issuedNow) this.dirty = false;
  }

  /** A fresh certificate from the CA, checked: kept in STATE_DIR before it is published. */
  async issued(bundle: Bundle, profile: string | undefined): Promise<void> {
    this.issuedNow = true;
    this.pending = bundle;
    await keepPending(this.stateDir, this.stateKey, bundle.privateKey, bundle.certificates.join(''));
    this.state.pending = { serial: bundle.serial, profile, issuedAt: new Date().toISOString() };
    this.state.lastAttemptAt = new Date().toISOString();
    this.dirty = true;
    await this.save();
  }

  /** The attempt to obtain started (recorded even if it fails). */
  attempting(): void {
    this.state.lastAttemptAt = new Date().toISOString();
    this.dirty = true;
  }

  /**
   * The set is published with this variant's new bundle in it; `orderedWith` is set for a
   * certificate from the CA (not a supplied one).
   */
  publishedFiles(published: Published, changed: boolean, orderedWith?: { profile?: string }): void {
    this.published = published;
    this.publishedNow = this.publishedNow || changed;
    if (orderedWith) this.state.profile = orderedWith.profile;
    this.clearFailure();
    this.state.lastSuccessAt = new Date().toISOString();
    const mine = this.bundle ?? published.bundle;
    this.nextAt = renewalTime(mine.notBefore, mine.notAfter);
    this.dirty = true;
  }

  /** The set was published again for another variant's sake (or a changed list of key types): this one's bundle is as it was. */
  republishedSet(published: Published, changed: boolean): void {
    this.published = published;
    this.publishedNow = this.publishedNow || changed;
  }

  /** A failure: counted, backed off, reported. */
  failed(step: FailedStep, error: string, message: string, retryAfterMs?: number): void {
    const now = new Date();
    this.state.failures += 1;
    this.state.failedStep = step;
    this.state.lastError = error;
    this.state.failedAt = now.toISOString();
    this.state.failingSince ??= now.toISOString();
    const next = nextAttemptAt(this.state.failures, now, retryAfterMs);
    this.state.nextAttemptAt = next.toISOString();
    this.error = error;
    this.nextAt = next;
    this.dirty = true;
    this.log.error(
      { step: 'report', error, failures: this.state.failures, nextAttemptAt: this.state.nextAttemptAt },
      message,
    );
  }

  /** The containers serve what is published. */
  async deployed(): Promise<void> {
    const { digest } = this.published!;
    const bundle = this.bundle ?? this.published!.bundle;
    this.state.deployedDigest = digest;
    if (this.state.failedStep === 'deploy' || this.state.failedStep === 'publish') {
      this.clearFailure();
      this.nextAt = renewalTime(bundle.notBefore, bundle.notAfter);
    }
    if (this.state.pending && this.state.pending.serial === bundle.serial) await this.dropPending();
    this.dirty = true;
    this.log.info({ step: 'deploy', serial: bundle.serial }, 'deployed');
  }

  /**
   * The published certificate broke TLS and the previous one is live again; a supplied one is not
   * republished. `layoutOnly`: no certificate changed, only the set's files (a key type removed): recorded as a
   * failed deploy, so that after the backoff the set is tried again without a new order.
   */
  rolledBack(from: Published, to: Published, why: string, restored: boolean, layoutOnly = false): void {
    const serial = (p: Published) => this.bundleIn(p)?.serial ?? '(none)';
    this.published = to;
    if (layoutOnly && !this.wholeSet) {
      const types = (p: Published) => p.bundles.map((b) => b.keyType).join(', ');
      this.failed(
        'deploy',
        `the files for key types ${types(from)} broke TLS and were rolled back to those for ${types(to)} because ${why}`,
        'new set of files rolled back',
      );
    } else {
      this.failed(
        'verify',
        `serial ${serial(from)} was rolled back to ${serial(to)} because ${why}`,
        'new certificate rolled back',
      );
    }
    if (restored) this.state.deployedDigest = to.digest;
    // A source that brings the same files again must not have them published again.
    if (this.wholeSet) this.state.rejectedDigest = from.digest;
  }

  async dropPending(): Promise<void> {
    this.pending = undefined;
    this.state.pending = undefined;
    await dropPending(this.stateDir, this.stateKey);
    this.dirty = true;
  }

  /** Writes the state once, if anything changed. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await writeCertState(this.stateDir, this.stateKey, { ...this.state, keyType: this.spec.keyType });
    this.dirty = false;
  }

  /** The next pass must come no later than this (a DANE rollover that waits for its records). */
  wakeBy(at: Date): void {
    if (!this.nextAt || at < this.nextAt) this.nextAt = at;
  }

  /** The DANE part of the state, made on first use (the key served now counts as current from now). */
  daneState(): NonNullable<CertState['dane']> {
    if (!this.state.dane) {
      this.state.dane = { keySince: new Date().toISOString() };
      this.dirty = true;
    }
    return this.state.dane;
  }

  markDirty(): void {
    this.dirty = true;
  }

  get ok(): boolean {
    return this.error === undefined;
  }

  outcome(): CertOutcome {
    return {
      name: this.name,
      keyType: this.spec.keyTypes.length > 1 ? this.spec.keyType : undefined,
      ok: this.ok,
      decision: this.decision,
      reason: this.reason,
      issued: this.issuedNow,
      published: this.publishedNow,
      error: this.error,
      nextAt: this.nextAt,
    };
  }

  /** The source is usable again and already published (a Traefik file read fine again). */
  sourceRecovered(): void {
    if (this.state.failures === 0 && !this.state.lastError) return;
    this.clearFailure();
    this.dirty = true;
  }

  private clearFailure(): void {
    Object.assign(this.state, {
      failures: 0,
      lastError: undefined,
      failedStep: undefined,
      nextAttemptAt: undefined,
      failedAt: undefined,
      failingSince: undefined,
      rejectedDigest: undefined,
    });
    this.error = undefined;
  }
}
