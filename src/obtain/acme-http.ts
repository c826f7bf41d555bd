import { AsyncLocalStorage } from 'node:async_hooks';
import * as acme from 'acme-client';
import type { AxiosError, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import { type Clock, systemClock } from '../util/clock.js';
import { retry } from '../util/retry.js';
import { parseRetryAfter } from '../util/retry-after.js';

export { parseRetryAfter };

/** What the CA answered when a call failed: acme-client keeps only the detail text. */
export interface AcmeProblem {
  status?: number;
  type?: string;
  detail?: string;
  retryAfterMs?: number;
  /** Network-level failure (no HTTP answer), e.g. ECONNREFUSED or ECONNABORTED (timeout). */
  code?: string;
}

export type AcmeStep = 'directory' | 'account' | 'order' | 'authorization' | 'finalize' | 'download';

const problemScope = new AsyncLocalStorage<{ last?: AcmeProblem }>();

function shortType(type: string | undefined): string | undefined {
  return type?.replace('urn:ietf:params:acme:error:', '');
}

/** An ACME failure naming the certificate, the domain, the step and what the CA said. */
export class AcmeError extends Error {
  override name = 'AcmeError';
  readonly step: AcmeStep;
  readonly problem: AcmeProblem;
  /** The name the failure concerns, when there is one. */
  readonly domain?: string;
  /** Every name of the order whose validation failed (authorizations are validated together). */
  failedValidations: string[] = [];
  constructor(step: AcmeStep, where: Where, cause: unknown, problem: AcmeProblem) {
    const said = problem.code
      ? `no answer from the CA (${problem.code})`
      : `the CA said: ${problem.detail ?? (cause instanceof Error ? cause.message : String(cause))}` +
        (problem.type || problem.status
          ? ` (${[shortType(problem.type), problem.status && `HTTP ${problem.status}`].filter(Boolean).join(', ')})`
          : '');
    const subject = where.cert
      ? `certificate "${where.cert}"${where.domain ? `, domain ${where.domain}` : ''}`
      : step === 'directory'
        ? 'the CA directory'
        : 'the ACME account';
    super(`${subject}: ${step} failed: ${said}${hint(step, problem, where)}`, { cause });
    this.step = step;
    this.problem = problem;
    this.domain = where.domain;
    if (step === 'authorization' && problem.type && where.domain) this.failedValidations = [where.domain];
  }
}

/** What a failure is about: the certificate, the name, and for authorizations the challenge type. */
export interface Where {
  cert?: string;
  domain?: string;
  challenge?: 'http-01' | 'dns-01';
}

function hint(step: AcmeStep, p: AcmeProblem, { domain, challenge }: Where): string {
  const type = shortType(p.type);
  if (p.code === 'ECONNABORTED' || p.code === 'ETIMEDOUT')
    return '. The CA did not answer in time: check the network, or raise ACME_TIMEOUT';
  if (p.code) return '. Check that ACME_DIRECTORY is right and that this host can reach it';
  if (type === 'rateLimited')
    return `. The CA rate-limits this request${p.retryAfterMs ? `; it asks to wait ${Math.ceil(p.retryAfterMs / 60_000)} min` : ''}; mailcerts retries later`;
  if (
    step === 'authorization' &&
    challenge === 'dns-01' &&
    ['unauthorized', 'incorrectResponse', 'dns'].includes(type ?? '')
  ) {
    return `. The CA did not find the TXT record _acme-challenge.${domain ?? '<domain>'}: check that the zone at the DNS provider is the one the world sees (its NS delegation), or raise DNS01_PROPAGATION_TIMEOUT`;
  }
  if (
    step === 'authorization' &&
    ['connection', 'unauthorized', 'incorrectResponse', 'dns', 'tls'].includes(type ?? '')
  ) {
    return `. The CA could not fetch http://${domain ?? '<domain>'}/.well-known/acme-challenge/…: make sure the name resolves to this host and that port 80 reaches mailcerts (HTTP01_PORT / HTTP01_MODE)`;
  }
  if (type === 'rejectedIdentifier' || type === 'malformed') return '. Check the names in ACME_DOMAINS';
  if (type === 'externalAccountRequired') return '. This CA needs external account binding';
  if (step === 'account') return '. Check ACME_DIRECTORY and ACME_EMAIL';
  return '';
}

/** GETs the CA directory with the same timeout and retry rules as every ACME call. */
export async function getDirectory(url: string): Promise<Record<string, unknown>> {
  const res = await acmeStep('directory', {}, () => acme.axios.get(url, { validateStatus: (s) => s === 200 }));
  return res.data as Record<string, unknown>;
}

/** Runs one ACME step; any failure becomes an AcmeError carrying the CA's problem. */
export async function acmeStep<T>(step: AcmeStep, where: Where, fn: () => Promise<T>): Promise<T> {
  const store: { last?: AcmeProblem } = {};
  return problemScope.run(store, async () => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AcmeError) throw err;
      throw new AcmeError(step, where, err, store.last ?? {});
    }
  });
}

/** Records a problem seen outside a failed HTTP call (e.g. an invalid authorization body). */
export function problemFrom(status: number | undefined, body: unknown, headers?: Record<string, unknown>): AcmeProblem {
  const b = (body ?? {}) as { type?: unknown; detail?: unknown };
  return {
    status,
    type: typeof b.type === 'string' ? b.type : undefined,
    detail: typeof b.detail === 'string' ? b.detail.replace(/\n/g, ' ') : undefined,
    retryAfterMs: parseRetryAfter(headers?.['retry-after']),
  };
}

export interface AcmeHttpOptions {
  timeoutMs: number;
  /** Retries of 429, 5xx and network errors within one call. */
  retries: number;
  /** A Retry-After longer than this is not waited out inside the call; the scheduler retries later. */
  retryAfterCapMs: number;
}

type RetryConfig = InternalAxiosRequestConfig & {
  /** Set on a retry's request: its answer goes back to the retry loop of the first one. */
  retrying?: boolean;
  retryValidateStatus?: ((s: number) => boolean) | null;
};

const isTransient = (error: AxiosError): boolean =>
  !error.response || error.response.status === 429 || error.response.status >= 500;

/** The answer as acme-client's own validation takes it: the response, or the error when its status is refused. */
function settle(error: AxiosError): AxiosResponse {
  const response = error.response as AxiosResponse | undefined;
  if (!response) throw error;
  const validate = (error.config as RetryConfig).retryValidateStatus;
  if (!validate || validate(response.status)) return response;
  throw error;
}

/**
 * acme-client's axios instance has no timeout and waits out any Retry-After. Replace its retry
 * interceptor with one that caps the wait and records the ACME problem of every failed answer.
 * (acme-client sends every answer through this error handler, successes included.)
 */
export function configureAcmeHttp(opts: AcmeHttpOptions, clock: Clock = systemClock): void {
  const ax = acme.axios;
  ax.defaults.timeout = opts.timeoutMs;
  ax.interceptors.response.clear();
  ax.interceptors.response.use(null, async (error: AxiosError) => {
    const config = error.config as RetryConfig | undefined;
    if (!config) throw error;
    recordProblem(error);
    if (!isTransient(error)) return settle(error);
    if (config.retrying) throw error; // a retry's answer: the loop of the first request decides
    const asked = (e: unknown) => parseRetryAfter((e as AxiosError).response?.headers['retry-after']);
    try {
      return await retry(
        async (attempt) => {
          if (attempt === 1) throw error;
          config.retrying = true;
          return ax.request(config);
        },
        {
          attempts: opts.retries + 1,
          backoff: { initialMs: 1_000 },
          // A Retry-After beyond the cap is not waited out here: the scheduler retries later.
          retryIf: (e) => isTransient(e as AxiosError) && (asked(e) ?? 0) <= opts.retryAfterCapMs,
          retryAfter: asked,
          clock,
        },
      );
    } catch (e) {
      if ((e as AxiosError).isAxiosError && (e as AxiosError).config) return settle(e as AxiosError);
      throw e;
    }
  });
}

/** Keeps the ACME problem of a failed answer (or the network error) for the step that made the call. */
function recordProblem(error: AxiosError): void {
  const store = problemScope.getStore();
  if (!store) return;
  const response = error.response as AxiosResponse | undefined;
  if (response && response.status >= 400)
    store.last = problemFrom(response.status, response.data, response.headers as Record<string, unknown>);
  else if (!response) store.last = { code: error.code ?? 'network error' };
}

/**
 * A badNonce answer costs nothing but a retry, and a CA may reject many nonces in a row (Pebble
 * tests 50%); acme-client gives up after 5, which fails about one order in five at that rate.
 */
export function tolerateBadNonces(client: acme.Client, retries = 20): void {
  (client as unknown as { http: { maxBadNonceRetries: number } }).http.maxBadNonceRetries = retries;
}

interface NonceHttp {
  request(url: string, method: string, opts?: unknown): Promise<AxiosResponse>;
  getNonce(): Promise<string>;
}

/** Nonces kept at most: enough for every order in flight, few enough that none grows stale. */
const NONCE_POOL_MAX = 32;

/**
 * acme-client asks newNonce (a HEAD) before every signed request, though every answer carries a
 * fresh Replay-Nonce (RFC 8555 7.2). Keep those and hand them out; ask newNonce only when none is
 * left. Shared by concurrent orders on the same client: each nonce is handed out once.
 */
export function reuseNonces(client: acme.Client): void {
  const http = (client as unknown as { http: NonceHttp }).http;
  const pool: string[] = [];
  const request = http.request.bind(http);
  const fetchNonce = http.getNonce.bind(http);
  http.request = async (url, method, opts) => {
    const resp = await request(url, method, opts);
    const nonce = resp.headers?.['replay-nonce'];
    // Not a HEAD's (getNonce hands it out itself) nor an error's (acme-client retries a badNonce
    // with it): pooled as well, either would be sent twice.
    if (method !== 'head' && resp.status < 400 && typeof nonce === 'string' && nonce) {
      pool.push(nonce);
      if (pool.length > NONCE_POOL_MAX) pool.shift();
    }
    return resp;
  };
  // The newest first: a CA may expire old nonces.
  http.getNonce = async () => pool.pop() ?? fetchNonce();
}

/** acme-client keeps its raw API client private; the order flow needs headers (Retry-After) when polling. */
interface RawApi {
  apiRequest(url: string, payload: unknown, validStatusCodes: number[]): Promise<AxiosResponse>;
  /** newAccount only: registers or finds the account and remembers its URL, without acme-client's follow-up update. */
  createAccount(data: Record<string, unknown>): Promise<AxiosResponse>;
}
export function rawApi(client: acme.Client): RawApi {
  return (client as unknown as { api: RawApi }).api;
}
