import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { Logger } from '../log.js';
import { pickInWindow } from '../plan/ari.js';
import { safeAriCertId } from '../pki/identity.js';
import type { AriState } from '../state/cert-state.js';
import { parseRetryAfter } from '../util/retry-after.js';

const MIN_RECHECK_MS = 60_000;
const MAX_RECHECK_MS = 12 * 3_600_000; // at least twice a day

const directories = new Map<string, Promise<Record<string, unknown>>>();

/** A CA's JSON answer is small; a longer one is not read into memory. */
const MAX_BODY = 256 * 1024;

/**
 * GETs a JSON document with node:https rather than fetch: a daemon with nothing due asks ARI and
 * nothing else, and fetch (undici) alone would add about 14 MB to its resident memory.
 */
function getJson(
  url: string,
  timeoutMs: number,
): Promise<{ body: Record<string, unknown>; retryAfter?: string | null }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const get = u.protocol === 'http:' ? httpGet : httpsGet;
    const req = get(u, { headers: { accept: 'application/json' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`${url} sent more than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url} answered HTTP ${res.statusCode}`));
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not a JSON object');
          const retryAfter = res.headers['retry-after'];
          resolve({
            body: body as Record<string, unknown>,
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          });
        } catch (err) {
          reject(new Error(`${url} did not answer JSON: ${(err as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url} did not answer within ${Math.round(timeoutMs / 1000)}s`)));
    req.on('error', reject);
  });
}

/**
 * A directory that could not be fetched is not asked for again this long: with the CA down, a pass
 * over 500 certificates would otherwise wait out one connection timeout per certificate.
 */
export const DIRECTORY_RETRY_MS = 60_000;

/** The CA's directory object, fetched once per process (a failure is remembered for a minute). */
export async function caDirectory(directoryUrl: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const known = directories.get(directoryUrl);
  if (known) return known;
  const fetching = getJson(directoryUrl, timeoutMs).then((r) => r.body);
  directories.set(directoryUrl, fetching);
  fetching.catch(() => {
    setTimeout(
      () => directories.get(directoryUrl) === fetching && directories.delete(directoryUrl),
      DIRECTORY_RETRY_MS,
    ).unref();
  });
  return fetching;
}

/** The renewalInfo URL of the CA, or undefined when it offers no ARI. */
export async function renewalInfoUrl(directoryUrl: string, timeoutMs: number): Promise<string | undefined> {
  const url = (await caDirectory(directoryUrl, timeoutMs)).renewalInfo;
  return typeof url === 'string' ? url : undefined;
}

/**
 * Asks the CA when to renew (RFC 9773). Returns the new ARI state, undefined when the CA has no
 * ARI, or throws when the CA could not be asked (the caller keeps the old state and falls back).
 */
export async function fetchAri(opts: {
  directoryUrl: string;
  certPem: string;
  previous?: AriState;
  timeoutMs: number;
  log: Logger;
  now?: Date;
}): Promise<AriState | undefined> {
  const base = await renewalInfoUrl(opts.directoryUrl, opts.timeoutMs);
  if (!base) return undefined;
  const certId = safeAriCertId(opts.certPem);
  if (!certId) return undefined; // no AKI: not a certificate the CA can be asked about
  const { body, retryAfter } = await getJson(`${base.replace(/\/$/, '')}/${certId}`, opts.timeoutMs);
  const w = body.suggestedWindow as { start?: string; end?: string } | undefined;
  const start = new Date(w?.start ?? '');
  const end = new Date(w?.end ?? '');
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start)
    throw new Error('renewalInfo has no valid suggestedWindow');
  const now = opts.now ?? new Date();
  const previous = opts.previous?.certId === certId ? opts.previous : undefined;
  const { selected, moved } = pickInWindow({ start, end }, previous);
  const explanationURL = typeof body.explanationURL === 'string' ? body.explanationURL : undefined;
  const wait = Math.min(
    Math.max(parseRetryAfter(retryAfter ?? undefined, now.getTime()) ?? MAX_RECHECK_MS / 2, MIN_RECHECK_MS),
    MAX_RECHECK_MS,
  );
  const state: AriState = {
    certId,
    start: start.toISOString(),
    end: end.toISOString(),
    selected: selected.toISOString(),
    explanationURL,
    fetchedAt: now.toISOString(),
    nextCheckAt: new Date(now.getTime() + wait).toISOString(),
  };
  if (moved)
    opts.log.warn(
      { step: 'ari', window: [state.start, state.end], selected: state.selected, explanation: explanationURL },
      'the CA moved the renewal window; picked a new moment',
    );
  else if (!previous)
    opts.log.info(
      { step: 'ari', window: [state.start, state.end], selected: state.selected, explanation: explanationURL },
      'renewal window from the CA',
    );
  return state;
}
