import { join } from 'node:path';
import type { AriState } from '../plan/ari.js';
import { readJson, writeJson } from './files.js';

/** What mailcerts remembers about one certificate between passes and restarts. */
export interface CertState {
  /** sha256 of the published bytes that the mail containers were last reloaded with. */
  deployedDigest?: string;
  lastSuccessAt?: string;
  lastAttemptAt?: string;
  lastError?: string;
  /** Which stage the last failure came from: a deploy failure is cleared by the next good deploy. */
  failedStep?: 'obtain' | 'deploy' | 'verify';
  failures: number;
  /** A supplied (custom) bundle that broke TLS and was rolled back: not published again until the files change. */
  rejectedDigest?: string;
  /** The ACME profile the published certificate was ordered with. */
  profile?: string;
  /** The CA's renewal window for the published certificate (ARI), when the CA offers one. */
  ari?: AriState;
  /** Earliest next attempt after a failure (backoff). */
  nextAttemptAt?: string;
}

export function certStatePath(stateDir: string, name: string): string {
  return join(stateDir, 'certificates', name, 'state.json');
}

export async function readCertState(stateDir: string, name: string): Promise<CertState> {
  return (await readJson<CertState>(certStatePath(stateDir, name))) ?? { failures: 0 };
}

export async function writeCertState(stateDir: string, name: string, state: CertState): Promise<void> {
  await writeJson(certStatePath(stateDir, name), state);
}
