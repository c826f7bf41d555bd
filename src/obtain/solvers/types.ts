import type { Challenge } from '../../config/schema.js';

/** One challenge to answer: the identifier (without "*."), the token and the key authorization. */
export interface ChallengeItem {
  domain: string;
  wildcard: boolean;
  token: string;
  /** http-01: token.thumbprint; dns-01: the TXT value (base64url sha256). */
  keyAuthorization: string;
}

/**
 * Answers one challenge type. The order flow calls begin, then prepare with every pending challenge
 * of the order (so that values sharing a name exist together), then cleanup, then end.
 */
export interface ChallengeSolver {
  readonly type: Challenge;
  /** Checks, before any order is placed, that the solver can work for these names; says what it verified. */
  preflight?(domains: string[]): Promise<string>;
  begin(): Promise<void>;
  /** Makes every item answerable; resolves once the CA can see them all. */
  prepare(items: ChallengeItem[], signal?: AbortSignal): Promise<void>;
  /** Removes what prepare made; never throws. */
  cleanup(items: ChallengeItem[]): Promise<void>;
  end(): Promise<void>;
}

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
