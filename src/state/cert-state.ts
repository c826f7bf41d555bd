import { existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { algorithmOf, type CertificateSpec, type KeyType } from '../config/schema.js';
import type { Logger } from '../log.js';
import { readSmallFile } from '../util/small-file.js';
import { readStateFile, replaceFile, writeJson } from './files.js';

/** What the CA suggested for one certificate (ARI), and the moment mailcerts picked in it. */
const AriStateSchema = z.object({
  certId: z.string(),
  start: z.iso.datetime(),
  end: z.iso.datetime(),
  /** A uniformly random moment in [start, end), picked once per window. */
  selected: z.iso.datetime(),
  explanationURL: z.optional(z.string()),
  fetchedAt: z.iso.datetime(),
  /** When to ask again (Retry-After of renewalInfo, at least twice a day). */
  nextCheckAt: z.iso.datetime(),
  /** Digest of the published files certId was computed from: the id is not recomputed while they stay. */
  digest: z.optional(z.string()),
});
export type AriState = z.infer<typeof AriStateSchema>;

/**
 * DANE: the key's TLSA records and its rollover (see dane/plan.ts), in dane.json beside the
 * certificate's state.json: a damaged state.json, moved aside, does not take the rollover's
 * clock with it. Losing this file too only delays things: which keys may be used is decided
 * from what DNS answers (run/dane-step.ts).
 */
const DaneStateSchema = z.object({
  /** Since when the key being served has been the current one. */
  keySince: z.iso.datetime(),
  /** When the next key (dane-next.pem beside this file) was made. */
  nextCreatedAt: z.optional(z.iso.datetime()),
  /** Since when every authoritative server has answered the whole RRset (current and next digests). */
  seenSince: z.optional(z.iso.datetime()),
  /** The RRset seenSince is about (its values, sorted): another set starts the count again. */
  seenValues: z.optional(z.string()),
  /** SPKI SHA-256 of the key last verified as served: its record stays until another is. */
  served: z.optional(z.string()),
  /** SPKI SHA-256 of the key of the last certificate mailcerts ordered (a key of its own). */
  ordered: z.optional(z.string()),
  /** `mailcerts dane rollover` asked for one. */
  rolloverRequestedAt: z.optional(z.iso.datetime()),
  /** The last check of the served key against the records the authoritative servers answer. */
  check: z.optional(
    z.object({
      at: z.iso.datetime(),
      inStep: z.boolean(),
      detail: z.string(),
      names: z.optional(z.record(z.string(), z.boolean())),
    }),
  ),
});
export type DaneState = z.infer<typeof DaneStateSchema>;

/** What mailcerts remembers about one certificate between passes and restarts. */
const CertStateSchema = z.object({
  /** The key type this state belongs to (absent in states written before dual certificates). */
  keyType: z.optional(z.string()),
  /** sha256 of the published bytes that the mail containers were last reloaded with. */
  deployedDigest: z.optional(z.string()),
  lastSuccessAt: z.optional(z.iso.datetime()),
  lastAttemptAt: z.optional(z.iso.datetime()),
  lastError: z.optional(z.string()),
  /** The stable code of lastError (util/error-codes.ts, docs/errors.md); a string, so that a code of a later version reads. */
  lastErrorCode: z.optional(z.string()),
  /** Which stage the last failure came from: a deploy failure is cleared by the next good deploy. */
  failedStep: z.optional(z.enum(['obtain', 'publish', 'deploy', 'verify'])),
  failures: z._default(z.int().check(z.nonnegative()), 0),
  /** A supplied (custom) bundle that broke TLS and was rolled back: not published again until the files change. */
  rejectedDigest: z.optional(z.string()),
  /** The ACME profile the published certificate was ordered with. */
  profile: z.optional(z.string()),
  /** The CA's renewal window for the published certificate (ARI), when the CA offers one. */
  ari: z.optional(AriStateSchema),
  /** Earliest next attempt after a failure (backoff). */
  nextAttemptAt: z.optional(z.iso.datetime()),
  /** When the last failure happened: the backoff is measured from it, whatever was stored. */
  failedAt: z.optional(z.iso.datetime()),
  /** The first failure since the last success (alerts count from it). */
  failingSince: z.optional(z.iso.datetime()),
  /** DANE, as states before dane.json kept it: read only when dane.json is absent. */
  dane: z.optional(DaneStateSchema),
  /** A certificate issued but not deployed (pending.pem beside this file): what it is and why it waits. */
  pending: z.optional(z.object({ serial: z.string(), profile: z.optional(z.string()), issuedAt: z.iso.datetime() })),
});
export type CertState = z.infer<typeof CertStateSchema>;

export function certStateDir(stateDir: string, key: string): string {
  return join(stateDir, 'certificates', key);
}

/**
 * Where each variant's state lives. The certificate's folder holds the state of the key type it
 * records (a state written before dual certificates records none: it is the first key type's,
 * where a single key type has always kept it); every other key type has a folder inside it, e.g.
 * certificates/mail/rsa-2048/. So a reordered list never hands one variant another's backoff, ARI
 * window or kept certificate. Read-only: settleVariantStates() tidies up after a list change.
 */
export async function variantStateKeys(
  stateDir: string,
  spec: Pick<CertificateSpec, 'name' | 'keyTypes'>,
): Promise<Map<KeyType, string>> {
  const recorded = (
    await readStateFile(certStatePath(stateDir, spec.name), CertStateSchema, undefined, { readOnly: true })
  )?.keyType;
  const owner = ownerOf(stateDir, spec, recorded);
  return new Map(spec.keyTypes.map((kt) => [kt, kt === owner ? spec.name : `${spec.name}/${kt}`]));
}

/**
 * The key type whose state the certificate's folder holds. A recorded type no longer listed passes
 * it on when the change is one variant's new key type: the only one of a single-type certificate,
 * or the listed one of the same algorithm (rsa-2048 → rsa-3072), unless that one has a state of
 * its own. Otherwise the state is of a removed variant: undefined.
 */
function ownerOf(
  stateDir: string,
  spec: Pick<CertificateSpec, 'name' | 'keyTypes'>,
  recorded: string | undefined,
): KeyType | undefined {
  if (!recorded) return spec.keyTypes[0];
  if (spec.keyTypes.includes(recorded as KeyType)) return recorded as KeyType;
  const heir =
    spec.keyTypes.length === 1
      ? spec.keyTypes[0]
      : spec.keyTypes.find((kt) => algorithmOf(kt) === algorithmOf(recorded));
  return heir && !existsSync(certStatePath(stateDir, `${spec.name}/${heir}`)) ? heir : undefined;
}

/**
 * After the key type list changed: the state of a removed key type is dropped (its kept
 * certificate must not come back if the type is added again later), and when the certificate's
 * folder held such a state, the first key type's state moves into it.
 */
export async function settleVariantStates(
  stateDir: string,
  spec: Pick<CertificateSpec, 'name' | 'keyTypes'>,
  log?: Logger,
): Promise<{ keys: Map<KeyType, string>; states: Map<string, CertState> }> {
  const dir = certStateDir(stateDir, spec.name);
  // The certificate's own state is read once here and handed on (a pass over hundreds of
  // certificates reads each state file once).
  let plain = await readStateFile(certStatePath(stateDir, spec.name), CertStateSchema, log);
  let owner = ownerOf(stateDir, spec, plain?.keyType);
  if (owner === undefined) {
    log?.info({ step: 'plan', keyType: plain?.keyType }, 'key type no longer configured: its state is dropped');
    await rm(join(dir, 'state.json'), { force: true });
    await rm(join(dir, 'pending.pem'), { force: true });
    await rm(join(dir, 'dane.json'), { force: true });
    const first = join(dir, spec.keyTypes[0]!);
    for (const f of ['pending.pem', 'dane.json', 'state.json'])
      await rename(join(first, f), join(dir, f)).catch(() => undefined);
    plain = await readStateFile(certStatePath(stateDir, spec.name), CertStateSchema, log);
    owner = ownerOf(stateDir, spec, plain?.keyType);
  }
  const keys = new Map(spec.keyTypes.map((kt) => [kt, kt === owner ? spec.name : `${spec.name}/${kt}`]));
  const states = new Map<string, CertState>([
    [spec.name, await withDane(stateDir, spec.name, plain ?? { failures: 0 }, log)],
  ]);
  const kept = new Set([...keys.values()]);
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    // Folders of key types no longer listed, or of the one the certificate's folder now holds.
    if (entry.isDirectory() && /^(ec|rsa)-\d+$/.test(entry.name) && !kept.has(`${spec.name}/${entry.name}`)) {
      log?.info({ step: 'plan', keyType: entry.name }, 'dropping the state of a key type that is no longer configured');
      await rm(join(dir, entry.name), { recursive: true, force: true });
    }
  }
  return { keys, states };
}

export function certStatePath(stateDir: string, name: string): string {
  return join(certStateDir(stateDir, name), 'state.json');
}

/** The certificate's state; a damaged file is moved aside and this certificate alone starts afresh. */
export async function readCertState(
  stateDir: string,
  name: string,
  log?: Logger,
  opts: { readOnly?: boolean } = {},
): Promise<CertState> {
  return withDane(
    stateDir,
    name,
    (await readStateFile(certStatePath(stateDir, name), CertStateSchema, log, opts)) ?? { failures: 0 },
    log,
    opts,
  );
}

const daneStatePath = (stateDir: string, name: string) => join(certStateDir(stateDir, name), 'dane.json');

/** The state with its DANE part from dane.json (or, before that file, from state.json). */
async function withDane(
  stateDir: string,
  name: string,
  state: CertState,
  log?: Logger,
  opts: { readOnly?: boolean } = {},
): Promise<CertState> {
  const dane = await readStateFile(daneStatePath(stateDir, name), DaneStateSchema, log, opts);
  return dane ? { ...state, dane } : state;
}

/** Writes the state: its DANE part to dane.json first, the rest to state.json. */
export async function writeCertState(stateDir: string, name: string, state: CertState): Promise<void> {
  const { dane, ...rest } = state;
  if (dane) await writeJson(daneStatePath(stateDir, name), dane);
  await writeJson(certStatePath(stateDir, name), rest);
}

/**
 * A certificate that was issued but is not (or no longer) deployed: its publish failed, or it was
 * rolled back. It is kept (key, then chain, mode 0600) and published again at the next attempt
 * instead of ordering a new one, which would spend the CA's duplicate-certificate limit.
 */
export const pendingPath = (stateDir: string, name: string) => join(certStateDir(stateDir, name), 'pending.pem');

export async function keepPending(
  stateDir: string,
  name: string,
  privateKeyPem: string,
  fullchainPem: string,
): Promise<void> {
  await replaceFile(pendingPath(stateDir, name), privateKeyPem + fullchainPem, 0o600);
}

/** The kept key and chain, or undefined. */
export async function readPending(
  stateDir: string,
  name: string,
): Promise<{ key: string; fullchain: string } | undefined> {
  let text: string;
  try {
    text = readSmallFile(pendingPath(stateDir, name)).toString('utf8');
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  const at = text.indexOf('-----BEGIN CERTIFICATE-----');
  return at > 0 ? { key: text.slice(0, at), fullchain: text.slice(at) } : { key: '', fullchain: text };
}

export async function dropPending(stateDir: string, name: string): Promise<void> {
  await rm(pendingPath(stateDir, name), { force: true });
}

/** DANE's next key (mode 0600): its TLSA record is published long before a certificate uses it. */
export const daneNextKeyPath = (stateDir: string, key: string) => join(certStateDir(stateDir, key), 'dane-next.pem');

export async function readDaneNextKey(stateDir: string, key: string): Promise<string | undefined> {
  try {
    const text = readSmallFile(daneNextKeyPath(stateDir, key)).toString('utf8');
    return text.includes('PRIVATE KEY-----') ? text : undefined;
  } catch {
    return undefined;
  }
}

export async function writeDaneNextKey(stateDir: string, key: string, pem: string): Promise<void> {
  await replaceFile(daneNextKeyPath(stateDir, key), pem, 0o600);
}
