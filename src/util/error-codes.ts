/**
 * The catalogue of mailcerts' errors: a stable code for each kind of failure, shown in the logs
 * (`code`), in `status` and in alerts, and explained in docs/errors.md (rendered from this table
 * by `npm run docs`). A code never changes meaning; a new kind of failure gets a new code.
 */
export const ERROR_CODES = {
  MC_CONFIG: {
    title: 'The configuration is invalid',
    fix: 'Read the list of problems: each names its variable and what to write instead. Nothing was changed.',
  },
  MC_CANCELLED: {
    title: 'Stopped before it was done',
    fix: 'mailcerts was stopped (SIGTERM, docker stop) in the middle of a step. Nothing is left half done: the next pass starts the step again.',
  },
  MC_STATE: {
    title: 'A state file could not be read or written',
    fix: 'A file in STATE_DIR did not parse (it was moved aside as NAME.corrupt-<time>) or could not be written. Check that STATE_DIR is a writable volume with free space; the next pass rebuilds what it can.',
  },
  MC_LOCK: {
    title: 'Another pass holds the lock',
    fix: 'Another mailcerts (or `mailcerts renew`) runs a pass on the same STATE_DIR. Wait for it; if none runs, the lock of a dead process is taken over by itself.',
  },
  MC_LEASE: {
    title: 'Cannot tell who issues (Swarm lease)',
    fix: 'With DEPLOY_MODE=swarm, mailcerts could not read or renew its lease through the Docker API. Check the socket proxy and the manager; see docs/swarm.md.',
  },
  MC_ACME_UNREACHABLE: {
    title: 'The CA did not answer',
    fix: 'No answer from ACME_DIRECTORY (a timeout, a refused connection, a TLS error). Check the network and the URL; mailcerts tries again with backoff.',
  },
  MC_ACME_ACCOUNT: {
    title: 'The CA refused the ACME account',
    fix: 'The account could not be made or used: check ACME_EMAIL, and ACME_EAB_KID / ACME_EAB_HMAC_KEY for a CA that needs external account binding.',
  },
  MC_ACME_RATE_LIMITED: {
    title: 'The CA rate-limited the request',
    fix: 'mailcerts waits as long as the CA says (Retry-After) before it orders again. Many failed validations of the same name are the usual cause: fix the validation first.',
  },
  MC_ACME_CAA: {
    title: 'A CAA record forbids this CA',
    fix: 'A CAA record of the name (or a parent) does not list the CA: add one, such as `0 issue "letsencrypt.org"`, or remove the stale one.',
  },
  MC_ACME_VALIDATION: {
    title: 'The CA could not validate a name',
    fix: "HTTP-01: port 80 of the name must reach mailcerts (or the webroot). DNS-01: the TXT record must be visible at the zone's servers. The message names the name and what the CA saw.",
  },
  MC_ACME_ORDER: {
    title: 'The CA refused the order',
    fix: 'The CA refused the order, its finalization or the download; its words are in the message (a name it does not issue for, a key type it does not take).',
  },
  MC_DNS_PROVIDER: {
    title: 'The DNS provider refused a change',
    fix: 'The provider did not take the record: check its token or TSIG key and what it may change (see docs/dns-01.md).',
  },
  MC_DNS_PROPAGATION: {
    title: 'A DNS record was not seen in time',
    fix: "The zone's servers did not all answer the new record within DNS01_PROPAGATION_TIMEOUT: check that the provider writes to the zone they serve, or raise the timeout.",
  },
  MC_CERTIFICATE_INVALID: {
    title: 'A certificate or key failed its checks',
    fix: 'The set did not pass before it was published: a chain that does not sign, a key that does not match, a name missing, a date out of range. Nothing was published; the message says which check.',
  },
  MC_SUPPLIED_REFUSED: {
    title: 'A supplied certificate was refused',
    fix: 'The files in CUSTOM_CERTS_DIR or the entry of acme.json could not be taken (see the message). The published certificate stays; replace the files.',
  },
  MC_PUBLISH: {
    title: 'The certificate could not be published',
    fix: 'Writing into CERTS_DIR failed: check that it is a writable volume, KEY_FILE_OWNER/GROUP, and free space. The certificate published before stays in place.',
  },
  MC_RELOAD_CHECK: {
    title: "A server's own check refused its configuration",
    fix: "`postfix check` or `doveconf -n` failed, so the server was not reloaded and keeps its old certificate. The server's words are in the message.",
  },
  MC_RELOAD: {
    title: 'A server could not be reloaded',
    fix: 'The reload (command, signal or restart) failed; the container keeps its old certificate. Check its mailcerts.reload label and that it runs.',
  },
  MC_VERIFY: {
    title: 'A server does not serve the new certificate',
    fix: 'After the reload it still served another certificate, so the set was rolled back and the kept one restored. Check that it reads the files from CERTS_DIR (see docs/reload-and-verify.md).',
  },
  MC_DOCKER: {
    title: 'The Docker API refused or did not answer',
    fix: 'Check the socket (or the socket proxy) mounted into mailcerts, and DOCKER_SCOPE.',
  },
  MC_DANE: {
    title: 'The TLSA records could not be brought in step',
    fix: 'DANE: a TLSA record could not be written or was not seen; the rollover waits and tries again at the next pass (see docs/dane.md).',
  },
  MC_ALERT: {
    title: 'An alert could not be sent',
    fix: 'The mail or webhook alert was not delivered; it is tried again with backoff. Check ALERT_SMTP or ALERT_WEBHOOK.',
  },
  MC_UNEXPECTED: {
    title: 'An unexpected error',
    fix: 'Nothing in the catalogue says what went wrong: the message is all there is. Please report it with the log line.',
  },
} as const satisfies Record<string, { title: string; fix: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

const isCode = (c: unknown): c is ErrorCode => typeof c === 'string' && Object.hasOwn(ERROR_CODES, c);

/** An error that carries its code from where it is thrown. */
export class CodedError extends Error {
  override name = 'CodedError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The one cancellation error: a step stopped because its signal aborted. */
export class Cancelled extends CodedError {
  override name = 'Cancelled';
  constructor(what?: string) {
    super('MC_CANCELLED', `${what ? `${what} ` : ''}cancelled: shutting down`);
  }
}

/** Throws Cancelled when the signal has aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted) throw new Cancelled(what);
}

/** ACME problem types (RFC 8555 §6.7), without their urn:ietf:params:acme:error: prefix. */
const ACME_PROBLEM_CODES: Record<string, ErrorCode> = {
  rateLimited: 'MC_ACME_RATE_LIMITED',
  caa: 'MC_ACME_CAA',
  connection: 'MC_ACME_VALIDATION',
  dns: 'MC_ACME_VALIDATION',
  unauthorized: 'MC_ACME_VALIDATION',
  incorrectResponse: 'MC_ACME_VALIDATION',
  tls: 'MC_ACME_VALIDATION',
  accountDoesNotExist: 'MC_ACME_ACCOUNT',
  externalAccountRequired: 'MC_ACME_ACCOUNT',
  invalidContact: 'MC_ACME_ACCOUNT',
  unsupportedContact: 'MC_ACME_ACCOUNT',
};

/** The step a failure was recorded at, when the error itself carries no code. */
const STEP_CODES: Record<string, ErrorCode> = {
  config: 'MC_CONFIG',
  state: 'MC_STATE',
  lock: 'MC_LOCK',
  lease: 'MC_LEASE',
  account: 'MC_ACME_ACCOUNT',
  directory: 'MC_ACME_UNREACHABLE',
  order: 'MC_ACME_ORDER',
  authorization: 'MC_ACME_VALIDATION',
  finalize: 'MC_ACME_ORDER',
  download: 'MC_ACME_ORDER',
  'dns-01': 'MC_DNS_PROVIDER',
  preflight: 'MC_DNS_PROVIDER',
  validate: 'MC_CERTIFICATE_INVALID',
  publish: 'MC_PUBLISH',
  reload: 'MC_RELOAD',
  deploy: 'MC_DOCKER',
  verify: 'MC_VERIFY',
  rollback: 'MC_VERIFY',
  dane: 'MC_DANE',
  alert: 'MC_ALERT',
};

/**
 * The code of a failure: the error's own (a CodedError, or a `code` from the catalogue), the ACME
 * problem's type, a CA that did not answer, else the step it happened at.
 */
export function errorCode(err: unknown, step?: string): ErrorCode {
  const e = err as { code?: unknown; problem?: { type?: string; code?: string }; step?: string } | undefined;
  if (isCode(e?.code)) return e.code;
  if (err instanceof Error && err.name === 'AbortError') return 'MC_CANCELLED';
  if (e?.problem) {
    if (e.problem.code) return 'MC_ACME_UNREACHABLE';
    const own = ACME_PROBLEM_CODES[e.problem.type?.replace('urn:ietf:params:acme:error:', '') ?? ''];
    if (own) return own;
  }
  return STEP_CODES[e?.step ?? ''] ?? STEP_CODES[step ?? ''] ?? 'MC_UNEXPECTED';
}
