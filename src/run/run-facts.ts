/**
 * What a CertRun knows in a pass, as the stages read it: the plan, what is published and kept,
 * what the order is given, what happened. Only CertRun (cert-run.ts), its one subclass, changes
 * it, through its event methods; stages never write these fields.
 */
import type { VariantSpec } from '../config/schema.js';
import type { Logger } from '../log.js';
import { isSupplied } from '../obtain/sources/index.js';
import type { Bundle } from '../pki/bundle.js';
import { bundleFor, type Published } from '../publish/publisher.js';
import type { CertState } from '../state/cert-state.js';
import type { Action, StateView } from './run-types.js';

export abstract class RunFacts {
  readonly spec: VariantSpec;
  readonly log: Logger;
  /** Where its state is kept under STATE_DIR/certificates/. */
  readonly stateKey: string;
  protected readonly _state: CertState;
  protected readonly _stateDir: string;
  /** A supplied certificate: one run for the whole set its source brings (obtain/sources/). */
  protected readonly _wholeSet: boolean;
  protected _decision: Action = 'keep';
  protected _reason = '';
  protected _published?: Published;
  protected _pending?: Bundle;
  protected _toPublish?: Bundle;
  protected _replaces?: string;
  protected _daneKey?: string;
  protected _daneRollover = false;
  protected _issuedNow = false;
  protected _publishedNow = false;
  protected _error?: string;
  protected _nextAt?: Date;
  protected _dirty = false;

  constructor(opts: {
    spec: VariantSpec;
    state: CertState;
    stateKey: string;
    stateDir: string;
    log: Logger;
    published?: Published;
  }) {
    this.spec = opts.spec;
    this._state = opts.state;
    this._stateDir = opts.stateDir;
    this.stateKey = opts.stateKey;
    this.log = opts.log;
    this._published = opts.published;
    this._wholeSet = isSupplied(opts.spec);
  }

  get state(): StateView {
    return this._state;
  }
  get decision(): Action {
    return this._decision;
  }
  get reason(): string {
    return this._reason;
  }
  /** What is published now (after this pass's publish or rollback). */
  get published(): Published | undefined {
    return this._published;
  }
  /** A certificate issued but not yet deployed, kept in STATE_DIR. */
  get pending(): Bundle | undefined {
    return this._pending;
  }
  /** What this pass brought for this variant (issued, kept or supplied), to be published with the set. */
  get toPublish(): Bundle | undefined {
    return this._toPublish;
  }
  /** What this variant's order is given: ARI's certificate it replaces; DANE's key (current, next in a rollover, or fresh). */
  get order(): { replaces?: string; key?: string; rollover: boolean } {
    return { replaces: this._replaces, key: this._daneKey, rollover: this._daneRollover };
  }
  /** This pass obtained a new certificate from the CA. */
  get issuedNow(): boolean {
    return this._issuedNow;
  }
  /** This pass changed the published files. */
  get publishedNow(): boolean {
    return this._publishedNow;
  }

  get name(): string {
    return this.spec.name;
  }

  /** This variant's bundle in the published set. */
  get bundle(): Bundle | undefined {
    return this.bundleIn(this._published);
  }

  /** This variant's bundle in a set (the first, for a supplied set). */
  bundleIn(published: Published | undefined): Bundle | undefined {
    return this._wholeSet ? published?.bundle : bundleFor(published, this.spec);
  }

  get ok(): boolean {
    return this._error === undefined;
  }
}
