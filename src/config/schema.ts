import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
// zod/mini: the same checks as zod's classic API at a fraction of its memory (it loads only what is used).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { DEPLOY_MODES } from '../deploy/modes/index.js';
import { DNS_PROVIDER_DEFINITIONS } from '../dns/providers/index.js';
import { CERTIFICATE_SOURCES, SOURCE_NAMES } from '../obtain/sources/index.js';
import { algorithmOf, KEY_TYPES, type KeyType } from '../pki/key-types.js';
import { absolutePath, bool, duration, matching, stringTo } from './fields.js';
import { splitHostPort } from '../util/host-port.js';

// The key types are one table (pki/key-types.ts).
export { type Algorithm, algorithmOf, KEY_TYPES, type KeyType } from '../pki/key-types.js';
export const CHALLENGES = ['http-01', 'dns-01'] as const;
export type Challenge = (typeof CHALLENGES)[number];
export const DNS_PROVIDERS = DNS_PROVIDER_DEFINITIONS.map((d) => d.name);
const DEPLOY_MODE_NAMES = DEPLOY_MODES.map((m) => m.name);
export type DnsProviderName = string;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  buypass: 'https://api.buypass.com/acme/directory',
  'buypass-staging': 'https://api.test4.buypass.no/acme/directory',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  'google-staging': 'https://dv.acme-v02.test-api.pki.goog/directory',
};
/** CAs that refuse accounts without external account binding. */
export const NEEDS_EAB = new Set(['zerossl', 'google', 'google-staging']);

// zod/mini leaves its own messages generic until a locale is set (an unknown key, a wrong type).
z.config(en());

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A name as certificates and SNI carry it: lower case, internationalized names in their A-label
 * (xn--) form. Undefined when it cannot be converted.
 */
/** Whether a name is all ASCII (else it is an internationalized name in its U-label form). */
const isAscii = (s: string) => [...s].every((c) => c.charCodeAt(0) < 0x80);

export function aLabelName(raw: string): string | undefined {
  const name = raw.trim().toLowerCase();
  if (isAscii(name)) return name;
  const wildcard = name.startsWith('*.');
  const ascii = domainToASCII(wildcard ? name.slice(2) : name);
  return ascii ? `${wildcard ? '*.' : ''}${ascii}` : undefined;
}

/** Why a DNS name is unusable, or undefined when it is fine. Expects lower case. */
export function dnsNameProblem(name: string): string | undefined {
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (!isAscii(name)) return 'is not a valid internationalized name';
  if (bare.includes('*')) return 'a wildcard is only allowed as the whole first label, as in *.example.com';
  if (bare.length > 253) return 'is longer than 253 characters';
  if (isIP(bare)) return 'is an IP address; certificates here are for DNS names only';
  const labels = bare.split('.');
  if (!labels.every((l) => LABEL.test(l))) return 'is not a valid DNS name (letters, digits and hyphens between dots)';
  if (labels.length < 2) return 'needs at least two labels, as in mail.example.com';
  if (/^\d+$/.test(labels.at(-1)!)) return 'ends in an all-numeric label, which no top-level domain is';
  return undefined;
}

/**
 * A list of DNS names, lower-cased, IDNs as A-labels (what the CA, the certificate and SNI use);
 * each bad or repeated name is reported at its position.
 */
const domainList = z.pipe(
  z.array(z.string()).check((ctx) => {
    if (ctx.value.length === 0)
      ctx.issues.push({ code: 'custom', input: ctx.value, message: 'needs at least one name' });
    const seen = new Set<string>();
    ctx.value.forEach((raw, i) => {
      const name = aLabelName(raw) ?? raw.trim().toLowerCase();
      const problem = dnsNameProblem(name);
      if (problem)
        ctx.issues.push({ code: 'custom', input: raw, path: [i], message: `"${name}" ${problem}`, continue: true });
      else if (seen.has(name))
        ctx.issues.push({
          code: 'custom',
          input: raw,
          path: [i],
          message: `"${name}" is listed twice`,
          continue: true,
        });
      seen.add(name);
    });
  }),
  z.transform((names: string[]) => names.map((n) => aLabelName(n) ?? n.trim().toLowerCase())),
);

const csv = z.pipe(
  z.string(),
  z.transform((s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  ),
);

/** A comma list whose every item is checked: `problem` says what is wrong with one, or undefined. */
const csvOf = (problem: (item: string) => string | undefined) =>
  csv.check((ctx) => {
    for (const item of ctx.value) {
      const message = problem(item);
      if (message) ctx.issues.push({ code: 'custom', input: item, message, continue: true });
    }
  });

const certName = matching(
  /^[a-z0-9][a-z0-9._-]{0,63}$/,
  'use 1-64 lower-case letters, digits, dots, hyphens or underscores, starting with a letter or digit',
);

/** Why a list of key types is unusable: an unknown one, one listed twice, two of one algorithm. */
export function keyTypesProblem(list: string[]): string | undefined {
  if (list.length === 0) return `list at least one key type: ${KEY_TYPES.join(', ')}`;
  const unknown = list.find((k) => !(KEY_TYPES as readonly string[]).includes(k));
  if (unknown !== undefined)
    return `"${unknown}" is not a key type; use one of ${KEY_TYPES.join(', ')}, or two of them for dual certificates, as in ec-256,rsa-2048`;
  const twice = list.find((k, i) => list.indexOf(k) !== i);
  if (twice) return `"${twice}" is listed twice`;
  const same = list.find((k, i) => list.findIndex((o) => algorithmOf(o) === algorithmOf(k)) !== i);
  if (same)
    return `${list.filter((k) => algorithmOf(k) === algorithmOf(same)).join(' and ')} are both ${algorithmOf(same)?.toUpperCase()}: Postfix and Dovecot serve one key of each algorithm; keep one of them`;
  return undefined;
}

/** ACME_KEY_TYPE, or keyType in the config file: one key type, or a comma list (or YAML list) of one ECDSA and one RSA. */
const keyTypes = z.pipe(
  z.union([z.string(), z.array(z.string())], {
    error: () => 'use a key type such as ec-256, or a list such as ec-256,rsa-2048',
  }),
  z.transform((v: string | string[], ctx) => {
    const list = (typeof v === 'string' ? v.split(',') : v).map((k) => k.trim()).filter(Boolean);
    const problem = keyTypesProblem(list);
    if (problem) {
      ctx.issues.push({ code: 'custom', input: v, message: problem });
      return z.NEVER;
    }
    return list as KeyType[];
  }),
);
const challenge = z.enum(CHALLENGES, { error: () => `use one of ${CHALLENGES.join(', ')}` });

/** Where plain http cannot be read or changed on the way. */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

function webhookProblem(url: URL | undefined): string | undefined {
  if (!url || !['http:', 'https:'].includes(url.protocol))
    return 'use an http(s):// URL, such as https://ntfy.sh/my-topic or a Slack incoming webhook';
  // fetch refuses such a URL, so every alert would fail
  if (url.username || url.password)
    return "a user name or password in the URL (user:pass@) cannot be sent; use the token the service puts in the URL's path or query (a Slack webhook URL, ntfy's ?auth=)";
  // In clear text, the alert and the URL's token could be read and changed on the way
  if (url.protocol === 'http:' && !LOOPBACK_HOST.test(url.hostname))
    return 'use https://; plain http:// only to a loopback address (127.0.0.1, [::1], localhost)';
  return undefined;
}

const fileMode = stringTo((s, ctx) => {
  if (!/^0?[0-7]{3}$/.test(s)) {
    ctx.issues.push({ code: 'custom', input: s, message: `"${s}" is not an octal file mode such as 0600 or 0640` });
    return z.NEVER;
  }
  const mode = parseInt(s, 8);
  if (mode & 0o007) {
    ctx.issues.push({
      code: 'custom',
      input: s,
      message: `${s} lets every local user read the private key; use 0600, or 0640 with KEY_FILE_GROUP`,
    });
    return z.NEVER;
  }
  return mode;
});

/** A whole number from min to max, written in decimal digits. */
const wholeNumber = (min: number, max: number, messages: { digits: string; min: string; max: string }) =>
  z.pipe(
    z.pipe(matching(/^\d+$/, messages.digits), z.transform(Number)),
    z.int().check(z.gte(min, messages.min), z.lte(max, messages.max)),
  );

/** A uid or gid as chown takes it: 4294967295 is (uid_t)-1, which chown reads as "leave it unchanged". */
const numericId = (what: string) => {
  const digits = `use the numeric ${what} id as the mail containers see it, such as 0 or 101`;
  return wholeNumber(0, 4294967294, {
    digits,
    min: digits,
    max: `use a numeric ${what} id from 0 to 4294967294 (4294967295 is -1, which chown takes as "leave unchanged")`,
  });
};

const PORT_MESSAGE = 'use a port number between 1 and 65535';
const port = wholeNumber(1, 65535, { digits: PORT_MESSAGE, min: PORT_MESSAGE, max: PORT_MESSAGE });

const dnsProvider = z.enum(DNS_PROVIDERS as [string, ...string[]], {
  error: () => `use one of ${DNS_PROVIDERS.join(', ')}`,
});

/** "1.1.1.1", "1.1.1.1:53", "[2606:4700::1111]:53" or "::1". */
function resolverProblem(s: string): string | undefined {
  const hp = splitHostPort(s, 53);
  if (!hp) return `"${s}" has a bad port`;
  if (isIP(hp.host) === 0)
    return `"${s}" is not an IP address (with an optional :port); name servers are given by address`;
  return undefined;
}

/** STATUS_ADDRESS: host:port, parsed once here. */
const listenAddress = stringTo((s, ctx) => {
  if (s === 'off') return 'off' as const;
  const hp = splitHostPort(s);
  if (!hp || (isIP(hp.host) === 0 && hp.host !== 'localhost')) {
    ctx.issues.push({
      code: 'custom',
      input: s,
      message: `"${s}" is not host:port with a port from 1 to 65535; use 127.0.0.1:9090, 0.0.0.0:9090 to expose it, or off`,
    });
    return z.NEVER;
  }
  return hp;
});

const COMPOSE_PROJECT = /^[a-z0-9][a-z0-9_-]{0,127}$/;

/**
 * The environment, one field per variable. Empty values count as unset (compose writes FOO= as "").
 * Built when the configuration is read and dropped after: a daemon does not keep a hundred field
 * schemas in memory for its lifetime.
 */
export const envSchema = () =>
  z.object({
    ACME_DOMAINS: z.optional(z.pipe(csv, domainList)),
    ACME_EMAIL: z.optional(z.email({ error: () => 'use a mail address such as postmaster@example.com' })),
    ACME_DIRECTORY: z._default(
      stringTo((s, ctx) => {
        const known = DIRECTORIES[s];
        if (known) return { name: s, url: known };
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          /* reported below */
        }
        if (url?.protocol !== 'https:') {
          ctx.issues.push({
            code: 'custom',
            input: s,
            message: `"${s}" is neither a known CA (${Object.keys(DIRECTORIES).join(', ')}) nor an https:// directory URL`,
          });
          return z.NEVER;
        }
        return { name: url.host, url: url.href };
      }),
      { name: 'letsencrypt', url: DIRECTORIES.letsencrypt! },
    ),
    ACME_CHALLENGE: z._default(challenge, 'http-01'),
    ACME_KEY_TYPE: z._default(keyTypes, ['ec-256']),
    ACME_DNS_PROVIDER: z._default(dnsProvider, DNS_PROVIDERS[0]!),
    // Each DNS provider's own variables (dns/providers/<name>/index.ts).
    ...(Object.assign({}, ...DNS_PROVIDER_DEFINITIONS.map((d) => d.env)) as Record<string, z.ZodMiniType>),
    DNS01_RESOLVERS: z.optional(csvOf(resolverProblem)),
    DNS01_PROPAGATION_TIMEOUT: z._default(duration(5_000, 3_600_000, '180s'), 180_000),
    DANE_NAMES: z.optional(z.pipe(csv, domainList)),
    DANE_PORTS: z._default(
      z.pipe(
        csv,
        z.array(
          z.pipe(
            z.pipe(
              z.string().check(z.regex(/^\d{1,5}$/, 'use port numbers such as 25 or 25,465')),
              z.transform(Number),
            ),
            z.int().check(z.gte(1, PORT_MESSAGE), z.lte(65535, PORT_MESSAGE)),
          ),
        ),
      ),
      [25],
    ),
    // Short TTLs are for tests and labs; a resolver may still keep an RRset longer than asked.
    DANE_TTL: z._default(duration(1_000, 86_400_000, '3600s'), 3_600_000),
    DANE_PROVIDER: z.optional(
      z.enum(['none', ...DNS_PROVIDERS] as [string, ...string[]], {
        error: () => `use one of ${DNS_PROVIDERS.join(', ')}, or none to publish the records by hand`,
      }),
    ),
    DANE_KEY_LIFETIME: z._default(duration(86_400_000, 10 * 365 * 86_400_000, '365d'), 365 * 86_400_000),
    DANE_RESOLVER: z.optional(csvOf(resolverProblem)),
    ACME_TIMEOUT: z._default(duration(1_000, 600_000, '30s'), 30_000),
    ACME_CONCURRENCY: z._default(
      wholeNumber(1, 32, {
        digits: 'use a whole number from 1 (one certificate at a time) to 32',
        min: 'use a whole number from 1 (one certificate at a time) to 32',
        max: 'use a whole number from 1 to 32: a CA limits how many orders an account may have in flight',
      }),
      4,
    ),
    ACME_PROFILE: z.optional(
      matching(/^[a-z0-9][a-z0-9_.-]{0,63}$/i, 'use a profile name the CA offers, such as tlsserver or shortlived'),
    ),
    ACME_PREFERRED_CHAIN: z.optional(z.string().check(z.minLength(1))),
    ACME_REUSE_KEY: z._default(bool, false),
    ACME_EAB_KID: z.optional(z.string().check(z.minLength(1))),
    ACME_EAB_HMAC_KEY: z.optional(
      matching(/^[A-Za-z0-9_=+/-]{16,}$/, 'use the base64url HMAC key the CA gave you with the key id'),
    ),
    HTTP01_MODE: z._default(
      z.enum(['standalone', 'webroot'], { error: () => 'use standalone or webroot' }),
      'standalone',
    ),
    HTTP01_PORT: z._default(port, 80),
    HTTP01_ADDRESS: z.optional(
      z
        .string()
        .check(
          z.refine((s) => isIP(s) !== 0, 'use an IP address such as 0.0.0.0 or ::; leave it unset for all interfaces'),
        ),
    ),
    HTTP01_WEBROOT: z.optional(absolutePath("use an absolute path, the web server's document root")),
    CERTS_DIR: z._default(absolutePath('use an absolute path'), '/etc/ssl/mail'),
    STATE_DIR: z._default(absolutePath('use an absolute path'), '/var/lib/mailcerts'),
    KEY_FILE_MODE: z._default(fileMode, 0o600),
    KEY_FILE_OWNER: z.optional(numericId('user')),
    KEY_FILE_GROUP: z.optional(numericId('group')),
    RENEW_CHECK_INTERVAL: z._default(duration(10_000, 7 * 86_400_000, '12h'), 43_200_000),
    DOCKER_RELOAD: z._default(bool, true),
    DEPLOY_MODE: z._default(
      z.enum(DEPLOY_MODE_NAMES as [string, ...string[]], {
        error: () => `use ${DEPLOY_MODES.map((m) => `${m.name} (${m.summary})`).join(' or ')}`,
      }),
      DEPLOY_MODE_NAMES[0]!,
    ),
    // Each deploy mode's own variables (deploy/modes/<name>/index.ts).
    ...(Object.assign({}, ...DEPLOY_MODES.map((m) => m.env ?? {})) as Record<string, z.ZodMiniType>),
    DOCKER_SCOPE: z.optional(
      z
        .string()
        .check(
          z.refine(
            (s) => s === '*' || COMPOSE_PROJECT.test(s),
            'use the compose project name of the mail stack (docker compose ls), or * for every labelled container on the host',
          ),
        ),
    ),
    VERIFY_HOSTS: z.optional(
      csvOf((h) =>
        h !== '*' && isIP(h) === 0 && dnsNameProblem(h.toLowerCase()) && !/^[a-z0-9][a-z0-9_.-]*$/i.test(h)
          ? `"${h}" is neither an address nor a host name`
          : undefined,
      ),
    ),
    LOG_LEVEL: z._default(z.enum(LOG_LEVELS, { error: () => `use one of ${LOG_LEVELS.join(', ')}` }), 'info'),
    ALERT_EMAIL: z.optional(
      z.pipe(
        csv,
        z.array(z.email({ error: () => 'use mail addresses such as postmaster@example.com, comma separated' })),
      ),
    ),
    ALERT_SMTP: z.optional(
      stringTo((s, ctx) => {
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          /* reported below */
        }
        if (!url || !['smtp:', 'smtps:'].includes(url.protocol) || !url.hostname) {
          ctx.issues.push({
            code: 'custom',
            input: '(url)',
            message:
              'use smtp://[user:password@]host[:port] (STARTTLS, port 587 by default) or smtps://…:465, such as smtp://postfix:587',
          });
          return z.NEVER;
        }
        return url.href;
      }),
    ),
    ALERT_FROM: z.optional(z.email({ error: () => 'use a mail address such as mailcerts@example.com' })),
    ALERT_WEBHOOK: z.optional(
      stringTo((s, ctx) => {
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          /* reported below */
        }
        const problem = webhookProblem(url);
        if (problem) {
          ctx.issues.push({ code: 'custom', input: '(url)', message: problem });
          return z.NEVER;
        }
        return url!.href;
      }),
    ),
    ALERT_WEBHOOK_FORMAT: z._default(
      z.enum(['json', 'ntfy', 'slack'], { error: () => 'use json, ntfy or slack' }),
      'json',
    ),
    ALERT_AFTER: z._default(duration(1_000, 30 * 86_400_000, '24h'), 86_400_000),
    ALERT_EXPIRY: z._default(duration(3_600_000, 90 * 86_400_000, '14d'), 14 * 86_400_000),
    LOG_FORMAT: z.optional(
      z.enum(['json', 'text'], {
        error: () => 'use json (for a log collector) or text (one short line per event, for people)',
      }),
    ),
    MAILCERTS_CONFIG: z.optional(absolutePath('use an absolute path to a .yml, .yaml or .json file')),
    STATUS_ADDRESS: z.optional(listenAddress),
    // Each certificate source's own variables (obtain/sources/<name>/index.ts).
    ...(Object.assign({}, ...CERTIFICATE_SOURCES.map((s) => s.env)) as Record<string, z.ZodMiniType>),
    // Written into Postfix's map and Dovecot's config: only characters neither of them treats specially.
    SNI_CERTS_PATH: z._default(
      matching(
        /^\/[A-Za-z0-9._/-]*$/,
        'use the absolute path at which the mail containers mount the certificates volume, such as /etc/ssl/mail (letters, digits, . _ - and /)',
      ),
      '/etc/ssl/mail',
    ),
  });

export type Env = z.output<ReturnType<typeof envSchema>>;

/** Variables whose values must never be logged. Filled as secret-bearing settings arrive. */
export const SECRET_KEYS: readonly string[] = [
  'ACME_EAB_HMAC_KEY',
  'ALERT_SMTP',
  'ALERT_WEBHOOK',
  ...DNS_PROVIDER_DEFINITIONS.flatMap((d) => d.secrets),
];

/** The optional config file: a list of certificates; everything else comes from the environment. */
export const fileSchema = () =>
  z.strictObject({
    certificates: z
      .array(
        z.strictObject({
          name: z.optional(certName),
          domains: domainList,
          keyType: z.optional(keyTypes),
          challenge: z.optional(challenge),
          dnsProvider: z.optional(dnsProvider),
          source: z.optional(
            z.enum(SOURCE_NAMES as [string, ...string[]], {
              error: () => `use ${SOURCE_NAMES.slice(0, -1).join(', ')} or ${SOURCE_NAMES.at(-1)}`,
            }),
          ),
          /** MX host names whose TLSA records mailcerts keeps in step with the key (DANE). */
          dane: z.optional(domainList),
        }),
      )
      .check(z.minLength(1, 'list at least one certificate')),
  });
export type ConfigFile = z.output<ReturnType<typeof fileSchema>>;

export interface CertificateSpec {
  name: string;
  domains: string[];
  /**
   * One key type, or one ECDSA and one RSA: each is its own order (key, serial, renewal time), and
   * all are published together. The first keeps the plain file names.
   */
  keyTypes: KeyType[];
  challenge: Challenge;
  /** Set when challenge is dns-01. */
  dnsProvider?: DnsProviderName;
  /**
   * Where it comes from (obtain/sources/): acme, obtained from the CA; custom, supplied by the user;
   * traefik, taken from Traefik's acme.json. Each source declares its own settings on this type.
   */
  source: string;
  /** DANE: TLSA 3 1 1 records kept in step with the key (which is then reused across renewals); only for an ordered source. */
  dane?: DaneSpec;
}

export interface DaneSpec {
  /** MX host names (each one of the certificate's names): records at _PORT._tcp.NAME. */
  names: string[];
  ports: number[];
  ttlSeconds: number;
  /** The DNS provider that writes the records, or 'none': printed to be published by hand. */
  provider: string;
  /** A key older than this is rolled over (after the next key's record has been seen long enough). */
  keyLifetimeMs: number;
  /** Validating resolvers (DANE_RESOLVER): the burn-in counts only answers they give with the AD bit. */
  resolvers?: string[];
}

/** One key type of a certificate: what a single order obtains and a single state file follows. */
export interface VariantSpec extends CertificateSpec {
  keyType: KeyType;
}

export function variantsOf(spec: CertificateSpec): VariantSpec[] {
  return spec.keyTypes.map((keyType) => ({ ...spec, keyType }));
}

/** How certificates reach the containers; each deploy mode adds its own settings (deploy/modes/<name>/index.ts). */
export interface DockerConfig {
  /** false: publish without reloading any container. */
  reload: boolean;
  /** The compose project whose containers mailcerts acts on; '*' for every labelled container; undefined: its own project. */
  scope?: string;
  /** Hosts that mailcerts.verify labels may name besides the container's own addresses ('*': any). */
  verifyHosts: string[] | '*';
  /** The DEPLOY_MODE (deploy/modes/): volume (files in CERTS_DIR, containers reloaded), swarm (secrets and configs, services updated). */
  mode: string;
}

export interface Config {
  certificates: CertificateSpec[];
  acme: {
    directoryUrl: string;
    directoryName: string;
    email?: string;
    timeoutMs: number;
    /** Certificates obtained at the same time in a pass. */
    concurrency: number;
    /** Sent in newOrder; a change renews the certificate. */
    profile?: string;
    /** Issuer common name of the chain to prefer among the CA's alternates. */
    preferredChain?: string;
    /** Keep the private key across renewals (for DANE TLSA 3 1 1 records). */
    reuseKey: boolean;
    eab?: { kid: string; hmacKey: string };
  };
  http01: { mode: 'standalone' | 'webroot'; port: number; address?: string; webroot?: string };
  dns: {
    /** Name servers to ask instead of each zone's authoritative ones. */
    resolvers?: string[];
    propagationTimeoutMs: number;
    /** The settings of each configured DNS provider, by name (see dns/providers/). */
    providers: Record<string, unknown>;
  };
  certsDir: string;
  /** Where the mail containers see CERTS_DIR: the paths written into the sni/ files. */
  sniCertsPath: string;
  stateDir: string;
  files: { keyMode: number; certMode: number; owner?: number; group?: number };
  renewCheckIntervalMs: number;
  /** Where /healthz, /status and /metrics listen, or undefined when off. */
  statusAddress?: { host: string; port: number };
  docker: DockerConfig;
  logLevel: (typeof LOG_LEVELS)[number];
  /** Who is told when something is wrong (and again when it is fixed). */
  alerts: {
    /** servername: what the submission server's certificate is checked against. */
    email?: { to: string[]; smtp: string; from: string; servername: string };
    webhook?: { url: string; format: 'json' | 'ntfy' | 'slack' };
    afterMs: number;
    expiryMs: number;
  };
  /** Unset: text when the log goes to a terminal, JSON otherwise. */
  logFormat?: 'json' | 'text';
  /** The values of the secret variables (tokens, keys), for redaction only. */
  secrets: string[];
}

/** The certificate's default name: its first domain, "*." spelt "wildcard.". */
export function defaultCertName(domains: string[]): string {
  return domains[0]!.replace(/^\*\./, 'wildcard.');
}
