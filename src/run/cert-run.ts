import { renewalTime } from '../plan/renewal.js';
import type { Bundle } from '../pki/bundle.js';
import type { Published } from '../publish/publisher.js';
import { type AriState, type DaneState, dropPending, keepPending, writeCertState } from '../state/cert-state.js';
import { RunFacts } from './run-facts.js';
import { type Action, type CertOutcome, clearFailure, type FailedStep, type Plan, recordFailure } from './run-types.js';
import { Cancelled, type ErrorCode, errorCode } from '../util/error-codes.js';

export type { Action, CertOutcome, FailedStep, Plan, StateView } from './run-types.js';

/**
 * One variant of a certificate (one key type) in one pass: the only code that changes its
 * CertState. A certificate's variants are planned and ordered each on its own, and published
 * together: `published` is the certificate's whole set. Its fields (run-facts.ts) are read-only
 * to the stages: they report what happened through the event methods (decided, issued,
 * publishedFiles, failed, deployed, rolledBack, ...); the outcome is computed from what happened,
 * never read back by a stage to decide something.
 */
export class CertRun extends RunFacts {
  /** The plan for this pass, as the plan step computed it. */
  decided(plan: Plan): void {
    this.replanned(plan.action, plan.reason, plan.nextAt, plan.error);
    this._replaces = plan.replaces;
    this._pending = plan.kept;
  }

  /** A later stage changes the plan (DANE, the validation limit, a supplied set); `error` as in Plan. */
  replanned(action: Action, reason: string, nextAt?: Date, error?: string): void {
    this._decision = action;
    this._reason = reason;
    this._nextAt = nextAt;
    this._error = error;
  }

  /** The CA's renewal window for the published certificate changed (ARI); undefined: the CA offers none. */
  ariRefreshed(ari: AriState | undefined): void {
    if (JSON.stringify(ari) === JSON.stringify(this._state.ari)) return;
    this._state.ari = ari;
    this._dirty = true;
  }

  /** Something in this pass stops the certificate without recording a failure (a validation pause, a stop). */
  held(error: string, nextAt?: Date): void {
    this._error = error;
    if (nextAt) this._nextAt = nextAt;
  }

  /** Supplied files that cannot be taken: held, the error kept in the state but not counted as a failure. */
  refused(error: string): void {
    this.held(error);
    this._state.lastError = error;
    this._state.lastErrorCode = 'MC_SUPPLIED_REFUSED' satisfies ErrorCode;
    this._state.lastAttemptAt = new Date().toISOString();
    this._dirty = true;
  }

  /** Stopped by SIGTERM: not a failure, and nothing of the abandoned attempt is recorded. */
  cancelled(): void {
    this._error = new Cancelled().message;
    if (!this._issuedNow) this._dirty = false;
  }

  /** DANE: the key this variant's order must use; `rollover`: the announced next key. */
  orderWith(privateKey: string, rollover = false): void {
    this._daneKey = privateKey;
    if (rollover) this._daneRollover = true;
  }

  /** The attempt to obtain started (recorded even if it fails). */
  attempting(): void {
    this._state.lastAttemptAt = new Date().toISOString();
    this._dirty = true;
  }

  /** A fresh certificate from the CA, checked: kept in STATE_DIR before it is published. */
  async issued(bundle: Bundle, profile: string | undefined): Promise<void> {
    this._issuedNow = true;
    this._pending = bundle;
    await keepPending(this._stateDir, this.stateKey, bundle.privateKey, bundle.certificates.join(''));
    this._state.pending = { serial: bundle.serial, profile, issuedAt: new Date().toISOString() };
    this._state.lastAttemptAt = new Date().toISOString();
    this._dirty = true;
    await this.save();
  }

  /** What this pass brought for this variant (issued, kept or supplied), to be published with the set. */
  brought(bundle: Bundle | undefined): void {
    this._toPublish = bundle;
  }

  /**
   * The set is published with this variant's new bundle in it; `orderedWith` is set for a
   * certificate from the CA (not a supplied one).
   */
  publishedFiles(published: Published, changed: boolean, orderedWith?: { profile?: string }): void {
    this._published = published;
    this._publishedNow = this._publishedNow || changed;
    if (orderedWith) this._state.profile = orderedWith.profile;
    this.clearFailure();
    this._state.lastSuccessAt = new Date().toISOString();
    const mine = this.bundle ?? published.bundle;
    this._nextAt = renewalTime(mine.notBefore, mine.notAfter);
    this._dirty = true;
  }

  /** The set was published again for another variant's sake (or a changed list of key types): this one's bundle is as it was. */
  republishedSet(published: Published, changed: boolean): void {
    this._published = published;
    this._publishedNow = this._publishedNow || changed;
  }

  /** A rollback put the previous set back: what the containers must serve now (rolledBack follows once that is known). */
  restored(to: Published): void {
    this._published = to;
  }

  /** A failure: counted, backed off, reported. */
  failed(step: FailedStep, error: string, message: string, retryAfterMs?: number, code?: ErrorCode): void {
    const coded = code ?? errorCode(undefined, step);
    this._nextAt = recordFailure(this._state, step, error, new Date(), retryAfterMs, coded);
    this._error = error;
    this._dirty = true;
    const { failures, nextAttemptAt } = this._state;
    this.log.error({ step: 'report', code: coded, error, failures, nextAttemptAt }, message);
  }

  /** The containers serve what is published. */
  async deployed(): Promise<void> {
    const { digest } = this._published!;
    const bundle = this.bundle ?? this._published!.bundle;
    this._state.deployedDigest = digest;
    if (this._state.failedStep === 'deploy' || this._state.failedStep === 'publish') {
      this.clearFailure();
      this._nextAt = renewalTime(bundle.notBefore, bundle.notAfter);
    }
    if (this._state.pending && this._state.pending.serial === bundle.serial) await this.dropPending();
    this._dirty = true;
    this.log.info({ step: 'deploy', serial: bundle.serial }, 'deployed');
  }

  /**
   * The published certificate broke TLS and the previous one is live again; a supplied one is not
   * republished. `layoutOnly`: no certificate changed, only the set's files (a key type removed): recorded as a
   * failed deploy, so that after the backoff the set is tried again without a new order.
   */
  rolledBack(from: Published, to: Published, why: string, restored: boolean, layoutOnly = false): void {
    const serial = (p: Published) => this.bundleIn(p)?.serial ?? '(none)';
    this._published = to;
    const layout = layoutOnly && !this._wholeSet;
    const types = (p: Published) => p.bundles.map((b) => b.keyType).join(', ');
    this.failed(
      layout ? 'deploy' : 'verify',
      layout
        ? `the files for key types ${types(from)} broke TLS and were rolled back to those for ${types(to)} because ${why}`
        : `serial ${serial(from)} was rolled back to ${serial(to)} because ${why}`,
      layout ? 'new set of files rolled back' : 'new certificate rolled back',
    );
    if (restored) this._state.deployedDigest = to.digest;
    // A source that brings the same files again must not have them published again.
    if (this._wholeSet) this._state.rejectedDigest = from.digest;
  }

  /** The kept certificate is given up (damaged, or no longer usable). */
  async dropPending(): Promise<void> {
    this._pending = undefined;
    this._state.pending = undefined;
    await dropPending(this._stateDir, this.stateKey);
    this._dirty = true;
  }

  /** The next pass must come no later than this (a DANE rollover that waits for its records). */
  wakeBy(at: Date): void {
    if (!this._nextAt || at < this._nextAt) this._nextAt = at;
  }

  /** The DANE part of the state, made on first use (the key served now counts as current from now). */
  daneState(): Readonly<DaneState> {
    if (!this._state.dane) {
      this._state.dane = { keySince: new Date().toISOString() };
      this._dirty = true;
    }
    return this._state.dane;
  }

  /** The DANE state as dane/rollover.ts's rules made it after what this pass saw; written if it changed. */
  daneRecorded(next: DaneState): void {
    const before = this.daneState();
    const keys = new Set([...Object.keys(before), ...Object.keys(next)]) as Set<keyof DaneState>;
    if ([...keys].some((k) => JSON.stringify(before[k]) !== JSON.stringify(next[k]))) this._dirty = true;
    this._state.dane = next;
  }

  /** The served key checked against the records: written when the verdict changed, not for the time alone. */
  daneChecked(check: NonNullable<DaneState['check']>): void {
    const before = this.daneState().check;
    this._state.dane = { ...this.daneState(), check };
    if (!before || before.inStep !== check.inStep || before.detail !== check.detail) this._dirty = true;
  }

  /** The source is usable again and already published (a Traefik file read fine again). */
  sourceRecovered(): void {
    if (this._state.failures === 0 && !this._state.lastError) return;
    this.clearFailure();
    this._dirty = true;
  }

  /** Writes the state once, if anything changed. */
  async save(): Promise<void> {
    if (!this._dirty) return;
    await writeCertState(this._stateDir, this.stateKey, { ...this._state, keyType: this.spec.keyType });
    this._dirty = false;
  }

  outcome(): CertOutcome {
    return {
      name: this.name,
      keyType: this.spec.keyTypes.length > 1 ? this.spec.keyType : undefined,
      ok: this.ok,
      decision: this._decision,
      reason: this._reason,
      issued: this._issuedNow,
      published: this._publishedNow,
      error: this._error,
      nextAt: this._nextAt,
    };
  }

  private clearFailure(): void {
    clearFailure(this._state);
    this._error = undefined;
  }
}
