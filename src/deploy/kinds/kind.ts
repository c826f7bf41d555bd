import type { SniCert, SniFile } from '../../publish/sni.js';
import type { EndpointSpec } from '../verify.js';

/**
 * Everything mailcerts knows of one kind of mail server (or of reload), in its own folder: how
 * mailcerts.reload names it, what a reload runs (checks first, then the steps), the endpoints it
 * serves by default, and the files it needs generated to pick a certificate by name. Adding a
 * kind is one folder and one line in kinds/index.ts; the socket proxy allows exactly what the
 * kind's plan runs.
 */
export interface ServerKind<A extends ReloadAction = ReloadAction> {
  /** The word in mailcerts.reload (postfix), or the prefix before its argument (signal in signal:HUP). */
  name: string;
  /** How it is written, for errors and `check`: postfix, signal:<NAME>. */
  syntax: string;
  /**
   * For a kind that takes an argument (name:argument): the action it asks for, or what to write
   * instead. Absent: the label is the bare name.
   */
  argument?(raw: string): A | { error: string };
  /** What a reload of a container with these labels runs; the error names the label to fix. */
  plan(action: A, labels: Record<string, string>): ReloadPlan | { error: string };
  /** Labels of its own besides mailcerts.reload: on a container of another kind they are a mistake. */
  labels?: readonly string[];
  /** The endpoints it serves by default (a container without mailcerts.verify): those it listens on are probed. */
  endpoints?: readonly EndpointSpec[];
  /** The files it reads to pick a certificate by name, rendered into CERTS_DIR/sni/ from what is published. */
  sni?: { files: readonly string[]; render(certs: SniCert[], base: string): SniFile[] };
}

/** A parsed mailcerts.reload: the kind's name and what it needs (a signal, a command). */
export interface ReloadAction {
  kind: string;
}

/** A command run in the container; `tty`: on a terminal (for a command that prints its errors only there). */
export interface Step {
  argv: string[];
  tty?: boolean;
}

/** One step of a reload, after the checks: a command (its failure said as `failure: output`), a signal, a restart. */
export type ReloadStep = { exec: Step; failure: string } | { signal: string } | { restart: true };

export interface ReloadPlan {
  /** Run side by side before anything changes; any failure means no reload, and the server's own words are reported. */
  checks: Step[];
  /** Run in order once every check passed; the first failure stops the rest. */
  steps: ReloadStep[];
}
